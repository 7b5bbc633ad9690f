"""The one prompt template shared by training and generation (OIG `unified_abstract_infill` format).

A training record is a Background followed by turns. The model sees the prompt
``Background: <passage>\n`` and learns to write the completion
``<human>: <question>\n<bot>: <answer>`` (more turns may follow), ended by the EOS token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BOT_TAG",
    "HUMAN_TAG",
    "ROLES",
    "SPECIAL_TOKENS",
    "Turn",
    "build_completion",
    "build_prompt",
    "build_training_text",
    "render_oig",
]

HUMAN_TAG = "<human>:"
BOT_TAG = "<bot>:"
SPECIAL_TOKENS = (HUMAN_TAG, BOT_TAG)
ROLES = {"human": HUMAN_TAG, "bot": BOT_TAG}


@dataclass(frozen=True)
class Turn:
    """One utterance of a conversation: role is "human" or "bot"."""

    role: str
    text: str


def _turn(t: Turn | Mapping[str, str]) -> Turn:
    return t if isinstance(t, Turn) else Turn(role=t["role"], text=t["text"])


def build_prompt(background: str) -> str:
    """The text the model is conditioned on (not trained on)."""
    return f"Background: {background.strip()}\n"


def build_completion(turns: Iterable[Turn | Mapping[str, str]]) -> str:
    """The conversation the model learns to write, one tagged turn per line."""
    lines = []
    for raw in turns:
        turn = _turn(raw)
        if turn.role not in ROLES:
            raise ValueError(f"unknown role {turn.role!r}; expected 'human' or 'bot'")
        lines.append(f"{ROLES[turn.role]} {turn.text.strip()}")
    return "\n".join(lines)


def build_training_text(background: str, turns: Sequence[Turn | Mapping[str, str]]) -> str:
    """Prompt and completion as one string (without the EOS token)."""
    return build_prompt(background) + build_completion(turns)


def render_oig(background: str, turns: Sequence[Turn | Mapping[str, str]]) -> str:
    """The OIG `text` field: ``Background: ...<human>: ...<bot>: ...`` (tags inline)."""
    parts = [f"Background: {background.strip()}"]
    for raw in turns:
        turn = _turn(raw)
        parts.append(f"{ROLES[turn.role]} {turn.text.strip()}")
    return "".join(parts)
