"""Generated records on disk: shards, torn-line-tolerant reading, ordered merging, and the OIG
and chat-messages export rows.

Pure core: no Django.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from modeling.prompting import ROLES, render_oig

T = TypeVar("T")

__all__ = ["merge_records", "order_key", "read_records", "shard", "to_messages", "to_oig"]


def order_key(rec: Mapping[str, Any]) -> tuple[int, int]:
    return int(rec["position"]), int(rec["sample_index"])


def shard(items: Sequence[T], n_shards: int, index: int) -> list[T]:
    """The `index`-th of `n_shards` contiguous, near-equal slices (shards concatenate in order)."""
    if n_shards < 1 or not 0 <= index < n_shards:
        raise ValueError(f"shard index {index} out of range for {n_shards} shards")
    q, r = divmod(len(items), n_shards)
    start = index * q + min(index, r)
    return list(items[start : start + q + (1 if index < r else 0)])


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Output records from a jsonl file; a torn last line (a crash mid-write) is ignored."""
    p = Path(path)
    if not p.exists():
        return []
    lines = p.read_text(encoding="utf-8").split("\n")
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as exc:
            if lineno == len(lines):  # no trailing newline: the write was cut short
                break
            raise ValueError(f"{p}:{lineno}: invalid JSON ({exc.msg})") from exc
    return out


def merge_records(paths: Iterable[str | Path], output: str | Path) -> int:
    """Merge record files into `output` in input order (position, sample); returns the count."""
    by_id: dict[str, dict[str, Any]] = {}
    for path in paths:
        for rec in read_records(path):
            by_id.setdefault(rec["id"], rec)
    records = sorted(by_id.values(), key=order_key)
    out = Path(output)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    tmp.replace(out)
    return len(records)


def to_oig(record: Mapping[str, Any]) -> dict[str, Any]:
    """An OIG jsonl row: `text` = ``Background: ...<human>: ...<bot>: ...`` plus metadata."""
    turns = [t for t in record["turns"] if t.get("role") in ROLES]
    return {
        "text": render_oig(record["background"], turns),
        "metadata": {"id": record["id"], "source": "convgen"},
    }


def to_messages(record: Mapping[str, Any]) -> dict[str, Any]:
    """A chat row: the Background as the system message, then user/assistant turns."""
    role_map = {"human": "user", "bot": "assistant"}
    messages = [{"role": "system", "content": f"Background: {record['background']}"}]
    messages += [
        {"role": role_map[t["role"]], "content": t["text"]}
        for t in record["turns"]
        if t.get("role") in role_map
    ]
    return {"id": record["id"], "messages": messages}
