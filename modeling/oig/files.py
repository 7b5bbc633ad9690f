"""Output plumbing for `prepare`: hashing writers, a background file hasher, an atomic swap.

Pure core (no Django).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["FileHasher", "HashingWriter", "swap_into_place"]


class HashingWriter:
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


class FileHasher(threading.Thread):
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


def swap_into_place(tmp_dir: Path, output_dir: Path) -> None:
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
