"""Turn LAION OIG `unified_abstract_infill` lines into clean, deduplicated training records.

Pure core (no Django): parse one line, clean text, detect duplicates, split train/val, and
`prepare` a whole file in one streaming pass. Each output line is one record::

    {"id": "<16 hex>", "background": str, "turns": [{"role": "human"|"bot", "text": str}, ...],
     "source_line": int}

Turns alternate human/bot, start with a human turn and end with a bot turn.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import multiprocessing
import os
import re
import shutil
import string
import threading
import time
import unicodedata
import uuid
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring as _json_str  # the C encoder json.dumps uses
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from modeling.prompting import ROLES as _TAGS
from modeling.prompting import build_training_text

__all__ = [
    "DROP_REASONS",
    "MANIFEST_FORMAT",
    "Cancelled",
    "LineError",
    "MalformedLineError",
    "NearDuplicateIndex",
    "PrepareResult",
    "Record",
    "band_buckets",
    "clean_text",
    "dedupe_key",
    "effective_workers",
    "estimated_jaccard",
    "is_validation",
    "load_token_counter",
    "minhash_signature",
    "parse_oig_line",
    "prepare",
    "record_id",
    "shingle_hashes",
]

MANIFEST_FORMAT = "convgen-oig-records/1"
MALFORMED_REASONS = ("invalid_utf8", "malformed_json", "missing_text")
# Every reason a line can be dropped for; the manifest always lists all of them (fixed schema).
DROP_REASONS = (
    "blank_line",
    *MALFORMED_REASONS,
    "no_background",
    "empty_background",
    "no_turns",
    "no_human_bot_pair",
    "exact_duplicate",
    "near_duplicate",
    "over_token_budget",
)
# Keeps the manifest (and memory) bounded on a badly broken file; the count is still exact.
MAX_LISTED_MALFORMED = 10_000

ProgressCallback = Callable[[float, str], "bool | None"]
TokenCounter = Callable[[str], int]


class Cancelled(Exception):
    """Raised when the progress callback asks the run to stop."""


class LineError(ValueError):
    """A line that cannot become a record; `reason` is one of DROP_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


class MalformedLineError(ValueError):
    """A malformed line met with ``on_error="fail"``; names the file and the 1-based line."""

    def __init__(self, path: str, line: int, detail: str) -> None:
        super().__init__(f"{path}:{line}: {detail}")
        self.path = path
        self.line = line
        self.detail = detail


@dataclass(frozen=True)
class Record:
    """One training record: a Background and alternating human/bot turns."""

    id: str
    background: str
    turns: tuple[tuple[str, str], ...]
    source_line: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "background": self.background,
            "turns": [{"role": role, "text": text} for role, text in self.turns],
            "source_line": self.source_line,
        }

    def to_json(self) -> str:
        """Same text as ``json.dumps(self.to_dict(), ensure_ascii=False)``, built ~3x faster."""
        turns = ", ".join(
            f'{{"role": "{role}", "text": {_json_str(text)}}}' for role, text in self.turns
        )
        return (
            f'{{"id": "{self.id}", "background": {_json_str(self.background)}, '
            f'"turns": [{turns}], "source_line": {self.source_line}}}'
        )

    def content_text(self) -> str:
        """Background and turn texts without the template's tags (what near-dup compares)."""
        return "\n".join([self.background, *(text for _, text in self.turns)])

    def training_text(self) -> str:
        return build_training_text(self.background, [{"role": r, "text": t} for r, t in self.turns])


# --------------------------------------------------------------------------- cleaning

_ROLE_TAG_RE = re.compile(r"<\s*(human|bot)\s*>\s*:", re.IGNORECASE)
_ROLE_TAG_LOOSE_RE = re.compile(r"<\s*/?\s*(?:human|bot)\s*>\s*:?", re.IGNORECASE)
_HTML_BLOCK_RE = re.compile(
    r"<!--.*?-->|<(script|style|ref)\b[^>]*>.*?</\1\s*>|<ref\b[^>]*/>", re.IGNORECASE | re.DOTALL
)
# Only things shaped like real tags: "a < b > c" or "x<3" survive.
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>")
_WIKI_LINK_RE = re.compile(r"\[\[(?:[^\[\]|]*\|)?([^\[\]|]*)\]\]")
_WIKI_TEMPLATE_RE = re.compile(r"\{\{[^{}]*\}\}")
_WIKI_EXTLINK_RE = re.compile(r"\[(?:https?://|www\.)[^\s\]]+(?:\s+([^\]]*))?\]", re.IGNORECASE)
_WIKI_HEADING_RE = re.compile(r"={2,}\s*([^=\n]+?)\s*={2,}")
_WIKI_EMPHASIS_RE = re.compile(r"'{2,}")
# The URL keeps trailing punctuation out of the match so "see http://x.org." keeps its period.
_URL_RE = re.compile(r"(?:\bhttps?://|\bwww\.)[^\s<>\"'\]\[]*[^\s<>\"'\]\[.,;:!?)]", re.IGNORECASE)
_AFTER_REMOVAL_RE = re.compile(r"\(\s*\)|\[\s*\]|\s+(?=[,.;:!?])")
# C0/C1 controls and the BOM; never format characters such as ZWJ (emoji) or Thai marks.
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufeff]")


def _junk_flags(s: str) -> tuple[bool, bool, bool, bool, bool, bool]:
    """Which rules may apply: entities, tags, wiki, URLs, non-printables, double spaces.

    Ordered so that most text is cleared by single-character tests (memchr-fast); note that
    `isprintable` is False for every whitespace character except the plain space.
    """
    return (
        "&" in s,
        "<" in s,
        "[" in s or "{" in s or ("=" in s and "==" in s) or ("'" in s and "''" in s),
        "://" in s or "www." in s or "WWW." in s,
        not s.isprintable(),
        "  " in s,
    )


def clean_text(text: str) -> str:
    """Strip URLs, HTML/wiki markup and control characters; NFC; collapse whitespace to one space.

    Safe for scripts without spaces and with combining marks (Thai) and for emoji: it only
    removes markup-shaped ASCII and controls, and normalises with NFC (never NFKC, which would
    rewrite Thai SARA AM and full-width forms). Each rule is gated by a cheap substring test
    because most real lines contain no junk at all.
    """
    s = text.strip()  # OIG segments start or end with the space or newline around a tag
    entities, tags, wiki, urls, unprintable, spaced = _junk_flags(s)
    changed = removed = False
    if entities:
        s = html.unescape(s)
        if "&" in s:  # doubly escaped (&amp;lt;) is common in scraped text
            s = html.unescape(s)
        _, tags, wiki, urls, _, _ = _junk_flags(s)  # unescaping can reveal "<" or "[["
        changed = True
    if tags:
        s = _HTML_BLOCK_RE.sub(" ", s)
        s = _ROLE_TAG_LOOSE_RE.sub(" ", s)
        s = _HTML_TAG_RE.sub(" ", s)
        changed = True
    if wiki:
        s = _WIKI_EXTLINK_RE.sub(lambda m: m.group(1) or "", s)
        s = _WIKI_LINK_RE.sub(r"\1", s)
        for _ in range(3):  # nested templates, innermost first
            s, n = _WIKI_TEMPLATE_RE.subn("", s)
            removed = removed or n > 0
            if not n:
                break
        s = _WIKI_HEADING_RE.sub(r"\1", s)
        s = _WIKI_EMPHASIS_RE.sub("", s)
        changed = True
    if urls:
        s, n = _URL_RE.subn("", s)
        removed = removed or n > 0
        changed = True
    if changed:
        unprintable = not s.isprintable()
    if unprintable:
        s = _CONTROL_RE.sub("", s)
    if not s.isascii():
        s = unicodedata.normalize("NFC", s)
    # One space everywhere: the template puts a Background or a turn on exactly one line.
    # split/join allocates a string per word, hence the checks first.
    if changed or unprintable or spaced:
        s = " ".join(s.split())
    if removed:
        s = " ".join(_AFTER_REMOVAL_RE.sub("", s).split())
    return s


# --------------------------------------------------------------------------- parsing

_BACKGROUND = "Background:"
_TAG_SPLIT_RE = re.compile(r"<\s*(human|bot)\s*>\s*:", re.IGNORECASE)


def _structure(raw_turns: Sequence[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Merge same-role neighbours, drop leading bot and trailing human turns."""
    merged: list[tuple[str, str]] = []
    for role, text in raw_turns:
        if not text:
            continue
        if merged and merged[-1][0] == role:
            merged[-1] = (role, f"{merged[-1][1]} {text}")
        else:
            merged.append((role, text))
    while merged and merged[0][0] != "human":
        merged.pop(0)
    while merged and merged[-1][0] != "bot":
        merged.pop()
    return tuple(merged)


def record_id(background: str, turns: Sequence[tuple[str, str]]) -> str:
    """First 16 hex chars of the sha1 of the record's training text (cleaned, normalised).

    The text is `build_training_text(background, turns)`, spelled out here because this runs
    once per line (tests check that the two agree).
    """
    text = f"Background: {background}\n" + "\n".join(
        f"{_TAGS[role]} {body}" for role, body in turns
    )
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def parse_text(text: str, source_line: int) -> Record:
    """Parse and clean one OIG `text` value; raises LineError with a drop reason."""
    body = text.lstrip("\ufeff \t\r\n")
    if not body.startswith(_BACKGROUND):
        raise LineError("no_background", "text does not start with 'Background:'")
    parts = _TAG_SPLIT_RE.split(body[len(_BACKGROUND) :])
    background = clean_text(parts[0])
    if len(parts) == 1:
        raise LineError("no_turns", "no <human>:/<bot>: turn")
    raw_turns = [(parts[i].lower(), clean_text(parts[i + 1])) for i in range(1, len(parts) - 1, 2)]
    if not background:
        raise LineError("empty_background", "Background is empty after cleaning")
    turns = _structure(raw_turns)
    if not turns:
        raise LineError("no_human_bot_pair", "no human turn followed by a bot turn")
    return Record(
        id=record_id(background, turns), background=background, turns=turns, source_line=source_line
    )


def parse_oig_line(line: str | bytes, source_line: int = 0) -> Record:
    """Parse one JSON line of the OIG file into a Record; raises LineError with a drop reason."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineError(
                "invalid_utf8", f"not UTF-8 ({exc.reason} at byte {exc.start})"
            ) from None
    if not line.strip():
        raise LineError("blank_line", "blank line")
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LineError("malformed_json", f"invalid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise LineError("missing_text", f"expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise LineError("missing_text", "no string field 'text'")
    return parse_text(text, source_line)


# --------------------------------------------------------------------------- deduplication

_DEDUPE_DROP = (string.punctuation + " ").encode("ascii")
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S27, _S31 = np.uint64(27), np.uint64(31)
_SHINGLE = 16  # bytes
_EMPTY_BIN = 0xFFFF
_BAND_MULT = 0x9E3779B97F4A7C15F39CC0605CEDC8341082276BF3A27251F86C6A11D0C18E95  # odd
_M16 = np.uint64(0xFFFF)


def dedupe_key(text: str) -> bytes:
    """Case-folded text without spaces and ASCII punctuation: formatting-only edits vanish."""
    # Deleting ASCII bytes from UTF-8 is safe (they never occur inside a multibyte character)
    # and bytes.translate is a C table lookup, far faster than str.translate with a dict.
    return text.casefold().encode("utf-8").translate(None, _DEDUPE_DROP)


def shingle_hashes(key: bytes) -> np.ndarray:
    """64-bit hashes of every 16-byte window of `key` (any script; no word spaces needed).

    16 bytes (about 16 Latin or 5 Thai characters, spaces removed) rather than 8: short
    shingles such as "ofthepop" recur in most English texts, so their minima would make
    unrelated documents share whole LSH bands and the buckets would grow with the corpus.
    """
    if len(key) < _SHINGLE:
        key = key.ljust(_SHINGLE, b"\0")
    n = len(key) - _SHINGLE + 1
    # Every 8-byte window as one uint64: an overlapping view with a 1-byte stride (no copy);
    # a 16-byte shingle combines the windows at i and i + 8.
    head = np.ndarray((n,), dtype="<u8", buffer=key, strides=(1,))
    tail = np.ndarray((n,), dtype="<u8", buffer=key, offset=8, strides=(1,))
    # Only the top 22 bits are used (bin and value); a multiply carries every input bit
    # upwards, so multiply-xor-shift-multiply mixes them well enough at half the cost.
    h = head * _MIX1
    h ^= tail
    h ^= h >> _S31
    h *= _MIX2
    return h


def minhash_signature(key: bytes, num_bins: int = 64) -> np.ndarray:
    """One-permutation MinHash (Li, Owen & Zhang 2012) of the shingle set, as uint16 per bin.

    The top bits of each shingle hash pick its bin and the next 16 bits are its value; a sort
    then yields every bin's minimum at once, instead of num_bins hash permutations. (No
    subsampling of shingles: a length-dependent rule would make a text and its near copy on
    either side of the cut incomparable.) Truncating to 16 bits adds ~1/65536 to the Jaccard
    estimate: harmless.
    """
    starts, bins, shift, value_shift = _bin_layout(num_bins)
    h = shingle_hashes(key)
    h.sort()
    at = np.searchsorted(h, starts)
    np.minimum(at, len(h) - 1, out=at)
    first = h[at]
    values = ((first >> value_shift) & _M16).astype(np.uint16)
    values[(first >> shift) != bins] = _EMPTY_BIN
    return values


@functools.cache
def _bin_layout(num_bins: int) -> tuple[np.ndarray, np.ndarray, np.uint64, np.uint64]:
    bin_bits = num_bins.bit_length() - 1
    if num_bins != 1 << bin_bits:
        raise ValueError("num_bins must be a power of two")
    bins = np.arange(num_bins, dtype=np.uint64)
    shift = np.uint64(64 - bin_bits)
    return bins << shift, bins, shift, np.uint64(48 - bin_bits)


def band_buckets(sig: np.ndarray, bands: int, mask: int) -> tuple[int, ...]:
    """LSH bucket of each band; -1 for an all-empty band (short texts), which is never used.

    An all-empty band would make every short text a candidate of every other one. Buckets
    come from multiply-shift hashing of the band's bits: the values are bin minima, hence
    small numbers, and Python's own int hash would keep too few distinct low bits.
    """
    raw = sig.tobytes()
    width = len(raw) // bands
    bits = 8 * width
    shift = bits - mask.bit_length()
    full = (1 << bits) - 1
    empty = b"\xff" * width
    return tuple(
        -1 if band == empty else (((int.from_bytes(band, "little") * _BAND_MULT) & full) >> shift)
        for band in (raw[b * width : (b + 1) * width] for b in range(bands))
    )


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard estimate from two one-permutation signatures; bins empty in both do not count."""
    equal = a == b
    both_empty = int(np.count_nonzero(equal & (a == _EMPTY_BIN)))
    counted = len(a) - both_empty
    return (int(np.count_nonzero(equal)) - both_empty) / counted if counted else 1.0


class NearDuplicateIndex:
    """Exact (record id) and near (MinHash Jaccard >= threshold) duplicate lookup.

    Banded LSH (Broder 1997; Leskovec, Rajaraman & Ullman, MMDS ch. 3): records sharing all
    rows of any band become candidates, and a candidate counts only if the full signatures
    estimate a Jaccard similarity of at least `threshold`. With 64 bins in 8 bands of 8 rows,
    pairs at Jaccard 0.9 are candidates 99% of the time and pairs at 0.5 about 3% (then
    rejected). Storage is flat `array`/`bytearray` buffers, not dicts of objects: 128 bytes of
    signature plus 4 bytes per band per kept record, a fixed 8 x 1 MiB of bucket heads and the
    id set (~70 B per record), so memory grows slowly and predictably with kept records.
    """

    def __init__(
        self,
        threshold: float = 0.8,
        num_bins: int = 64,
        bands: int = 8,
        bucket_bits: int = 18,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("threshold must be in (0, 1]")
        if num_bins % bands:
            raise ValueError("bands must divide num_bins")
        self.threshold = threshold
        self.num_bins = num_bins
        self.bands = bands
        self.rows = num_bins // bands
        self.bucket_bits = bucket_bits
        self._mask = (1 << bucket_bits) - 1
        self._sig_bytes = 2 * num_bins
        self._band_bytes = 2 * self.rows
        # Chained hash tables, one per band: heads[b][bucket] -> newest record, nxt[b][i] -> older.
        self._heads = [array("i", [-1]) * (1 << bucket_bits) for _ in range(bands)]
        self._next = [array("i") for _ in range(bands)]
        self._sigs = bytearray()
        self._size = 0
        self._ids: set[int] = set()

    def __len__(self) -> int:
        return self._size

    def signature(self, key: bytes) -> np.ndarray:
        return minhash_signature(key, self.num_bins)

    def band_buckets(self, sig: np.ndarray) -> tuple[int, ...]:
        return band_buckets(sig, self.bands, self._mask)

    def has_exact(self, rid: str) -> bool:
        return int(rid, 16) in self._ids

    def stored_signature(self, i: int) -> np.ndarray:
        start = i * self._sig_bytes
        return np.frombuffer(bytes(self._sigs[start : start + self._sig_bytes]), dtype=np.uint16)

    def find_near(self, sig: np.ndarray, buckets: tuple[int, ...] | None = None) -> int | None:
        """Index of a kept record whose estimated Jaccard similarity is >= threshold, or None.

        Candidates (everything chained in this record's buckets) are verified in one numpy
        step, so text that shares boilerplate with many others costs one array op, not one
        per candidate.
        """
        candidates: list[int] = []
        raw = sig.tobytes()
        width, size, stored_sigs = self._band_bytes, self._sig_bytes, self._sigs
        for b, bucket in enumerate(self.band_buckets(sig) if buckets is None else buckets):
            if bucket < 0:
                continue
            band = raw[b * width : (b + 1) * width]
            nxt = self._next[b]
            j = self._heads[b][bucket]
            while j >= 0:
                at = j * size + b * width
                # Same bucket is not same band: skip hash collisions before any numpy work.
                if stored_sigs[at : at + width] == band and j not in candidates:
                    candidates.append(j)
                j = nxt[j]
        if not candidates:
            return None
        stored = np.frombuffer(self._sigs, dtype=np.uint16).reshape(-1, self.num_bins)
        rows = stored[candidates]  # a copy: the view must go before _sigs grows again
        del stored
        equal = rows == sig
        both_empty = np.count_nonzero(equal & (sig == _EMPTY_BIN), axis=1)
        matches = np.count_nonzero(equal, axis=1) - both_empty
        counted = self.num_bins - both_empty
        ok = np.flatnonzero(matches >= self.threshold * counted - 1e-9)
        return candidates[int(ok[0])] if len(ok) else None

    def add(
        self,
        rid: str,
        sig: np.ndarray | None = None,
        buckets: tuple[int, ...] | None = None,
    ) -> None:
        """Remember a kept record (its signature too, unless near-dup detection is off)."""
        self._ids.add(int(rid, 16))
        if sig is None:
            return
        i = self._size
        self._sigs += sig.tobytes()
        for b, bucket in enumerate(self.band_buckets(sig) if buckets is None else buckets):
            if bucket < 0:
                self._next[b].append(-1)  # an all-empty band is never looked up
            else:
                heads = self._heads[b]
                self._next[b].append(heads[bucket])
                heads[bucket] = i
        self._size = i + 1


# --------------------------------------------------------------------------- split, tokens


def is_validation(rid: str, seed: int, val_fraction: float) -> bool:
    """Hash-based split: depends only on the record id and the seed, so streaming-stable."""
    if val_fraction <= 0:
        return False
    digest = hashlib.blake2b(f"{seed}:{rid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < val_fraction * 2.0**64


def load_token_counter(path: str | os.PathLike[str]) -> TokenCounter:
    """Token counter for a local HF tokenizer dir (tokenizer.json, else transformers)."""
    directory = Path(path)
    tokenizer_json = directory / "tokenizer.json" if directory.is_dir() else directory
    if tokenizer_json.is_file():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(tokenizer_json))
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    from transformers import AutoTokenizer

    hf_tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    return lambda text: len(hf_tok(text, add_special_tokens=False)["input_ids"])


# --------------------------------------------------------------------------- prepare


@dataclass(frozen=True)
class PrepareResult:
    """What `prepare` wrote and counted; `manifest` is exactly what manifest.json holds."""

    output_dir: Path
    train_path: Path
    val_path: Path
    manifest_path: Path
    n_train: int
    n_val: int
    lines_read: int
    dropped: dict[str, int]
    malformed_lines: tuple[int, ...]
    input_sha256: str
    manifest: dict[str, Any] = field(repr=False)

    @property
    def kept(self) -> int:
        return self.n_train + self.n_val

    def summary(self) -> str:
        dropped = ", ".join(f"{k} {v}" for k, v in self.dropped.items() if v) or "none"
        text = (
            f"{self.lines_read} lines read, {self.kept} kept "
            f"({self.n_train} train / {self.n_val} val); dropped: {dropped}"
        )
        if self.malformed_lines:
            shown = ", ".join(str(n) for n in self.malformed_lines[:10])
            more = " ..." if len(self.malformed_lines) > 10 else ""
            text += f"; malformed lines: {shown}{more}"
        return text


class _HashingWriter:
    """Binary JSONL writer that hashes and counts as it writes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh: BinaryIO = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - see close()
        self.sha256 = hashlib.sha256()
        self.records = 0
        self.bytes = 0

    def write_bytes(self, data: bytes) -> None:
        self._fh.write(data)
        self.sha256.update(data)
        self.records += 1
        self.bytes += len(data)

    def close(self) -> None:
        self._fh.close()

    def describe(self) -> dict[str, Any]:
        return {"sha256": self.sha256.hexdigest(), "records": self.records, "bytes": self.bytes}


class _FileHasher(threading.Thread):
    """sha256 of a whole file in a background thread (hashlib releases the GIL on big blocks)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True)
        self.path = path
        self.stop = threading.Event()
        self.digest = hashlib.sha256()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    if self.stop.is_set():
                        return
                    self.digest.update(block)
        except BaseException as exc:  # reported by hexdigest() in the main thread
            self.error = exc

    def hexdigest(self) -> str:
        self.join()
        if self.error is not None:
            raise self.error
        return self.digest.hexdigest()


def _swap_into_place(tmp_dir: Path, output_dir: Path) -> None:
    """Replace output_dir with tmp_dir; the old directory survives any failure before the end."""
    if not output_dir.exists():
        tmp_dir.rename(output_dir)
        return
    backup = output_dir.with_name(f".{output_dir.name}.old-{uuid.uuid4().hex[:8]}")
    output_dir.rename(backup)
    try:
        tmp_dir.rename(output_dir)
    except BaseException:
        backup.rename(output_dir)
        raise
    shutil.rmtree(backup, ignore_errors=True)


def prepare(
    input_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    val_fraction: float = 0.05,
    seed: int = 0,
    limit: int | None = None,
    on_error: Literal["skip", "fail"] = "skip",
    near_dup_threshold: float | None = 0.8,
    tokenizer: str | os.PathLike[str] | None = None,
    max_tokens: int | None = None,
    token_counter: TokenCounter | None = None,
    overwrite: bool = False,
    progress_callback: ProgressCallback | None = None,
    progress_every: int = 2000,
    workers: int = 0,
    chunk_bytes: int = 1 << 20,
) -> PrepareResult:
    """Stream INPUT once and write train.jsonl, val.jsonl and manifest.json into OUTPUT_DIR.

    Memory stays flat: one line at a time, plus a duplicate index of a few tens of bytes per
    kept record. Output goes to a temporary sibling directory that replaces OUTPUT_DIR only
    when everything succeeded, so a failed or cancelled run never touches an existing dataset.
    ``near_dup_threshold=None`` keeps near duplicates (exact duplicates are always dropped).
    ``workers`` >= 1 parses, cleans and signs blocks of about ``chunk_bytes`` in that many
    forked processes (each reads its block from the file) while this process decides
    duplicates and writes in input order, so the output is byte-identical to ``workers=0``
    (all in this process); -1 means one worker per CPU but one.
    """
    started = time.monotonic()
    src = Path(input_path)
    dest = Path(output_dir)
    if on_error not in ("skip", "fail"):
        raise ValueError("on_error must be 'skip' or 'fail'")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError("val_fraction must be in [0, 1)")
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")
    if workers < -1:
        raise ValueError("workers must be >= -1 (-1: one per CPU but one)")
    if near_dup_threshold is not None and not 0.0 < near_dup_threshold <= 1.0:
        raise ValueError("near_dup_threshold must be in (0, 1]")
    if max_tokens is not None and token_counter is None:
        if tokenizer is None:
            raise ValueError("max_tokens needs a tokenizer")
        token_counter = load_token_counter(tokenizer)
    if not src.is_file():
        raise FileNotFoundError(f"{src}: no such file")
    if dest.exists() and any(dest.iterdir()) and not overwrite:
        raise FileExistsError(f"{dest} exists and is not empty (pass overwrite=True to replace it)")

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
    tmp_dir.mkdir()
    try:
        result = _prepare_into(
            src,
            dest,
            tmp_dir,
            val_fraction=val_fraction,
            seed=seed,
            limit=limit,
            on_error=on_error,
            near_dup_threshold=near_dup_threshold,
            tokenizer=str(tokenizer) if tokenizer is not None else None,
            max_tokens=max_tokens,
            token_counter=token_counter,
            progress_callback=progress_callback,
            progress_every=max(1, progress_every),
            workers=effective_workers(workers),
            chunk_bytes=max(1, chunk_bytes),
            started=started,
        )
        _swap_into_place(tmp_dir, dest)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return result


@dataclass(frozen=True)
class _LineConfig:
    """What a worker needs to turn raw lines into records (sent once per worker)."""

    seed: int
    val_fraction: float
    near_dup: bool
    num_bins: int
    bands: int
    bucket_bits: int
    token_counter: TokenCounter | None


# A processed line is a plain tuple (cheap to pickle between processes):
#   dropped: (number, reason, detail)
#   record:  (number, id, json_line, signature | None, buckets | None, is_val, tokens)
_Item = tuple[Any, ...]
# A chunk: (byte offset, byte length, number of its first line, how many lines to use).
_Chunk = tuple[int, int, int, int]


def _process_lines(first: int, lines: list[bytes], cfg: _LineConfig) -> list[_Item]:
    """Parse, clean, id, sign and encode each line; everything but the order-dependent part."""
    out: list[_Item] = []
    mask = (1 << cfg.bucket_bits) - 1
    for number, raw in enumerate(lines, start=first):
        try:
            record = parse_oig_line(raw, number)
        except LineError as exc:
            out.append((number, exc.reason, exc.detail))
            continue
        sig = buckets = None
        if cfg.near_dup:
            signature = minhash_signature(dedupe_key(record.content_text()), cfg.num_bins)
            buckets = band_buckets(signature, cfg.bands, mask)
            sig = signature.tobytes()
        tokens = cfg.token_counter(record.training_text()) if cfg.token_counter else -1
        payload = (record.to_json() + "\n").encode("utf-8")
        is_val = is_validation(record.id, cfg.seed, cfg.val_fraction)
        out.append((number, record.id, payload, sig, buckets, is_val, tokens))
    return out


def _split_block(block: bytes, first: int, count: int) -> list[bytes]:
    lines = block.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline ends the last line, it does not start an empty one
    if first == 1 and lines and lines[0].startswith(b"\xef\xbb\xbf"):
        lines[0] = lines[0][3:]  # a UTF-8 byte order mark is not part of the JSON
    return lines[:count]


def _scan_chunks(
    fh: BinaryIO, chunk_bytes: int, limit: int | None
) -> Iterator[tuple[_Chunk, bytes]]:
    """Cut the file into blocks of whole lines (newlines are counted in C, not per line)."""
    offset, number = 0, 1
    while limit is None or number <= limit:
        fh.seek(offset)
        block = fh.read(chunk_bytes)
        if not block:
            return
        cut = block.rfind(b"\n")
        while cut < 0:  # a line longer than the block: read on to its end
            more = fh.read(chunk_bytes)
            if not more:
                cut = len(block) - 1
                break
            found = more.find(b"\n")
            if found >= 0:
                cut = len(block) + found
            block += more
        block = block[: cut + 1]
        lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        use = lines if limit is None else min(lines, limit - number + 1)
        yield (offset, len(block), number, use), block
        offset += len(block)
        number += lines


_WORKER: tuple[_LineConfig, str] | None = None


def _init_worker(cfg: _LineConfig, path: str) -> None:
    global _WORKER
    _WORKER = (cfg, path)


def _work(chunk: _Chunk) -> list[_Item]:
    """In a worker: read the chunk's bytes from the file itself (nothing big goes by pipe)."""
    assert _WORKER is not None
    cfg, path = _WORKER
    offset, length, first, count = chunk
    with open(path, "rb") as fh:
        fh.seek(offset)
        block = fh.read(length)
    return _process_lines(first, _split_block(block, first, count), cfg)


def _processed(
    src: Path, cfg: _LineConfig, workers: int, chunk_bytes: int, limit: int | None
) -> Iterator[tuple[_Chunk, list[_Item]]]:
    """Processed chunks in input order; with workers, at most 2 per worker in flight."""
    with open(src, "rb") as fh:
        chunks = _scan_chunks(fh, chunk_bytes, limit)
        if workers <= 0:
            for chunk, block in chunks:
                first, count = chunk[2], chunk[3]
                yield chunk, _process_lines(first, _split_block(block, first, count), cfg)
            return
        # fork: workers inherit the config (and any tokenizer) without pickling it.
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(workers, initializer=_init_worker, initargs=(cfg, str(src))) as pool:
            pending: deque[tuple[_Chunk, Any]] = deque()
            for chunk, _ in chunks:
                pending.append((chunk, pool.apply_async(_work, (chunk,))))
                if len(pending) >= 2 * workers:  # back-pressure keeps memory flat
                    done, result = pending.popleft()
                    yield done, result.get()
            while pending:
                done, result = pending.popleft()
                yield done, result.get()


def effective_workers(workers: int) -> int:
    """Worker processes actually used: -1 means CPUs - 1; daemons (Celery prefork) get 0."""
    if workers < 0:
        workers = (os.cpu_count() or 1) - 1
    if workers > 0 and (
        multiprocessing.current_process().daemon
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return 0  # daemonic processes may not have children; no fork on this platform
    return max(0, workers)


def _prepare_into(
    src: Path,
    dest: Path,
    tmp_dir: Path,
    *,
    val_fraction: float,
    seed: int,
    limit: int | None,
    on_error: str,
    near_dup_threshold: float | None,
    tokenizer: str | None,
    max_tokens: int | None,
    token_counter: TokenCounter | None,
    progress_callback: ProgressCallback | None,
    progress_every: int,
    workers: int,
    chunk_bytes: int,
    started: float,
) -> PrepareResult:
    total_bytes = src.stat().st_size or 1
    dropped = dict.fromkeys(DROP_REASONS, 0)
    malformed: list[int] = []
    index = NearDuplicateIndex(near_dup_threshold or 1.0)
    cfg = _LineConfig(
        seed=seed,
        val_fraction=val_fraction,
        near_dup=near_dup_threshold is not None,
        num_bins=index.num_bins,
        bands=index.bands,
        bucket_bits=index.bucket_bits,
        token_counter=token_counter if max_tokens is not None else None,
    )
    hasher = _FileHasher(src)
    hasher.start()
    train = _HashingWriter(tmp_dir / "train.jsonl")
    val = _HashingWriter(tmp_dir / "val.jsonl")
    lines_read = 0
    bytes_read = 0
    next_report = progress_every

    def report(message: str) -> None:
        if progress_callback is None:
            return
        fraction = bytes_read / total_bytes
        if limit:
            fraction = max(fraction, lines_read / limit)
        if progress_callback(min(fraction, 1.0), message):
            raise Cancelled(f"cancelled after {lines_read} lines")

    try:
        for chunk, items in _processed(src, cfg, workers, chunk_bytes, limit):
            for item in items:
                if len(item) == 3:
                    number, reason, detail = item
                    dropped[reason] += 1
                    if reason in MALFORMED_REASONS:
                        if on_error == "fail":
                            raise MalformedLineError(str(src), number, detail)
                        if len(malformed) < MAX_LISTED_MALFORMED:
                            malformed.append(number)
                    continue
                _, rid, payload, sig_bytes, buckets, is_val, tokens = item
                if index.has_exact(rid):
                    dropped["exact_duplicate"] += 1
                    continue
                sig = None
                if sig_bytes is not None:
                    sig = np.frombuffer(sig_bytes, dtype=np.uint16)
                    if index.find_near(sig, buckets) is not None:
                        dropped["near_duplicate"] += 1
                        continue
                if max_tokens is not None and tokens > max_tokens:
                    dropped["over_token_budget"] += 1
                    continue
                index.add(rid, sig, buckets)
                (val if is_val else train).write_bytes(payload)
            lines_read = chunk[2] + chunk[3] - 1
            bytes_read = chunk[0] + chunk[1]
            if lines_read >= next_report:
                next_report = lines_read + progress_every
                report(f"{lines_read} lines, {train.records + val.records} kept")
    except BaseException:
        hasher.stop.set()
        raise
    finally:
        train.close()
        val.close()
    report(f"{lines_read} lines, {train.records + val.records} kept")
    input_sha256 = hasher.hexdigest()  # of the whole file, even with a limit

    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "input": {
            "path": str(src.resolve()),
            "sha256": input_sha256,
            "bytes": total_bytes,
        },
        "options": {
            "val_fraction": val_fraction,
            "seed": seed,
            "limit": limit,
            "on_error": on_error,
            "near_dup_threshold": near_dup_threshold,
            "tokenizer": tokenizer,
            "max_tokens": max_tokens,
        },
        "counts": {
            "lines_read": lines_read,
            "kept": train.records + val.records,
            "train": train.records,
            "val": val.records,
            "dropped": dropped,
        },
        "malformed_lines": malformed,
        "malformed_lines_truncated": sum(dropped[r] for r in MALFORMED_REASONS) > len(malformed),
        "dedupe": {
            "exact": "sha1 of the normalised training text (the record id)",
            "near": (
                None
                if near_dup_threshold is None
                else "one-permutation MinHash (64 bins) over 16-byte shingles of the case-folded "
                "background and turn texts without spaces and punctuation, LSH 8 bands x 8 "
                f"rows, estimated Jaccard >= {near_dup_threshold}"
            ),
        },
        "split": "val if blake2b('<seed>:<id>') / 2**64 < val_fraction",
        "outputs": {"train.jsonl": train.describe(), "val.jsonl": val.describe()},
        "output_dir": str(dest.resolve()),
        "run": {"workers": workers, "elapsed_s": round(time.monotonic() - started, 3)},
    }
    manifest_path = tmp_dir / "manifest.json"
    manifest_path.write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return PrepareResult(
        output_dir=dest,
        train_path=dest / "train.jsonl",
        val_path=dest / "val.jsonl",
        manifest_path=dest / "manifest.json",
        n_train=train.records,
        n_val=val.records,
        lines_read=lines_read,
        dropped=dropped,
        malformed_lines=tuple(malformed),
        input_sha256=manifest["input"]["sha256"],
        manifest=manifest,
    )
