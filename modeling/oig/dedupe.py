"""Near duplicates: the one definition convgen uses, and a streaming index to find them.

Pure core (no Django). Two texts are near duplicates when the Jaccard similarity of their sets of
16-byte windows of `dedupe_key(text)` (case-folded, without spaces and ASCII punctuation) is at
least a threshold (0.8 by default), as estimated by one-permutation MinHash. Data preparation
drops such records (`modeling.oig.prepare`); the diversity report of generated text counts them
(`modeling.diversity`).
"""

from __future__ import annotations

import functools
import string
from array import array

import numpy as np

__all__ = [
    "NearDuplicateIndex",
    "band_buckets",
    "dedupe_key",
    "estimated_jaccard",
    "minhash_signature",
    "shingle_hashes",
]

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
