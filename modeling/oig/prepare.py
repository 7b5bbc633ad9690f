"""`prepare` a whole OIG file in one streaming pass: train.jsonl, val.jsonl and manifest.json.

Pure core (no Django). Lines are parsed and cleaned (`modeling.oig.parse`), exact and near
duplicates dropped (`modeling.oig.dedupe`), and records split train/val by a hash of their id.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from modeling.oig.dedupe import (
    NearDuplicateIndex,
    band_buckets,
    dedupe_key,
    minhash_signature,
)
from modeling.oig.files import FileHasher, HashingWriter, swap_into_place
from modeling.oig.parse import DROP_REASONS, MALFORMED_REASONS, LineError, parse_oig_line
from modeling.progress import Cancelled, ProgressCallback

__all__ = [
    "MANIFEST_FORMAT",
    "MalformedLineError",
    "PrepareResult",
    "TokenCounter",
    "effective_workers",
    "is_validation",
    "load_token_counter",
    "prepare",
]

MANIFEST_FORMAT = "convgen-oig-records/1"
# Keeps the manifest (and memory) bounded on a badly broken file; the count is still exact.
MAX_LISTED_MALFORMED = 10_000

TokenCounter = Callable[[str], int]


class MalformedLineError(ValueError):
    """A malformed line met with ``on_error="fail"``; names the file and the 1-based line."""

    def __init__(self, path: str, line: int, detail: str) -> None:
        super().__init__(f"{path}:{line}: {detail}")
        self.path = path
        self.line = line
        self.detail = detail


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
        swap_into_place(tmp_dir, dest)
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
    hasher = FileHasher(src)
    hasher.start()
    train = HashingWriter(tmp_dir / "train.jsonl")
    val = HashingWriter(tmp_dir / "val.jsonl")
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
