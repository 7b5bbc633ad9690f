"""Parse one OIG `unified_abstract_infill` line into a Record, or say why it cannot be one.

Pure core (no Django). A record is a Background and turns that alternate human/bot, start with a
human turn and end with a bot turn::

    {"id": "<16 hex>", "background": str, "turns": [{"role": "human"|"bot", "text": str}, ...],
     "source_line": int}
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as _json_str  # the C encoder json.dumps uses
from typing import Any

from modeling.oig.clean import clean_text
from modeling.prompting import ROLES as _TAGS
from modeling.prompting import build_training_text

__all__ = [
    "DROP_REASONS",
    "MALFORMED_REASONS",
    "LineError",
    "Record",
    "parse_oig_line",
    "parse_text",
    "record_id",
]

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


class LineError(ValueError):
    """A line that cannot become a record; `reason` is one of DROP_REASONS."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason


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
    except (ValueError, RecursionError):  # a 5,000-digit number, very deep nesting
        raise LineError("malformed_json", "invalid JSON: a number or nesting too large") from None
    if not isinstance(obj, dict):
        raise LineError("missing_text", f"expected a JSON object, got {type(obj).__name__}")
    text = obj.get("text")
    if not isinstance(text, str):
        raise LineError("missing_text", "no string field 'text'")
    return parse_text(text, source_line)
