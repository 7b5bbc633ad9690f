"""Backgrounds to generate from: read from jsonl, csv/tsv or text, cleaned like training data.

Pure core: no Django. Errors name the file and line.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from modeling.oig.clean import clean_text

__all__ = ["Background", "BackgroundFileError", "read_backgrounds"]


class BackgroundFileError(ValueError):
    """A Backgrounds file that cannot be read; the message names the file and line."""


@dataclass(frozen=True)
class Background:
    """One input passage, its optional item id and its position in the input file."""

    text: str
    item: str = ""
    position: int = 0


def _clean(text: str, where: str) -> str:
    """The cleaning that training data gets (markup, URLs, controls out; NFC), so a model is
    asked about the same kind of text it learned from; `where` names the line for errors."""
    cleaned = clean_text(text)
    if not cleaned:
        raise BackgroundFileError(f"{where}: the Background is empty once markup is removed")
    return cleaned


def read_backgrounds(path: str | Path) -> list[Background]:
    """Backgrounds from jsonl (`background`, optional `item`/`id`), csv (same columns) or text."""
    p = Path(path)
    if not p.is_file():
        raise BackgroundFileError(f"{p}: no such file")
    suffix = p.suffix.lower()
    out: list[Background] = []
    try:
        with p.open(encoding="utf-8", newline="") as fh:
            if suffix in (".jsonl", ".json", ".ndjson"):
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise BackgroundFileError(
                            f"{p}:{lineno}: invalid JSON ({exc.msg})"
                        ) from exc
                    except (ValueError, RecursionError) as exc:
                        # A number of thousands of digits, or nesting deeper than the parser goes.
                        raise BackgroundFileError(
                            f"{p}:{lineno}: JSON too large or too deeply nested to read"
                        ) from exc
                    if not isinstance(rec, dict):
                        raise BackgroundFileError(f"{p}:{lineno}: expected a JSON object")
                    bg = rec.get("background")
                    if not isinstance(bg, str) or not bg.strip():
                        raise BackgroundFileError(
                            f"{p}:{lineno}: missing or empty string field 'background'"
                        )
                    item = rec.get("item", rec.get("id", ""))
                    text = _clean(bg, f"{p}:{lineno}")
                    out.append(Background(text, "" if item is None else str(item), len(out)))
            elif suffix in (".csv", ".tsv"):
                reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
                if not reader.fieldnames or "background" not in reader.fieldnames:
                    raise BackgroundFileError(f"{p}:1: the header has no 'background' column")
                for row in reader:
                    lineno = reader.line_num
                    bg = row.get("background") or ""
                    if not bg.strip():
                        raise BackgroundFileError(f"{p}:{lineno}: empty 'background'")
                    item = row.get("item") or row.get("id") or ""
                    out.append(Background(_clean(bg, f"{p}:{lineno}"), item, len(out)))
            else:
                for lineno, line in enumerate(fh, 1):
                    if line.strip():
                        out.append(Background(_clean(line, f"{p}:{lineno}"), "", len(out)))
    except UnicodeDecodeError as exc:
        raise BackgroundFileError(f"{p}: not UTF-8 text ({exc.reason})") from exc
    except csv.Error as exc:
        raise BackgroundFileError(f"{p}: bad CSV ({exc})") from exc
    return out
