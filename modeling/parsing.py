"""Parsing generated text into `<human>`/`<bot>` turns, tolerating what small models write.

Pure core: no Django. Failures carry one of a fixed set of reasons, so they can be counted by kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modeling.prompting import Turn

__all__ = [
    "EMPTY_ANSWER",
    "EMPTY_OUTPUT",
    "EMPTY_QUESTION",
    "NO_ANSWER",
    "NO_QUESTION",
    "NO_TAGS",
    "OUT_OF_MEMORY",
    "PROMPT_TOO_LONG",
    "TRUNCATED",
    "ParsedConversation",
    "cut_after_turns",
    "parse_conversation",
    "strip_control_chars",
]

# Fixed reasons, so that failures can be counted by kind.
NO_TAGS = "no <human>:/<bot>: tags (garbage)"
NO_QUESTION = "no <human>: turn before the first <bot>:"
NO_ANSWER = "no <bot>: turn (truncated?)"
EMPTY_QUESTION = "empty question"
EMPTY_ANSWER = "empty answer"
TRUNCATED = "no EOS within max_new_tokens (truncated)"
EMPTY_OUTPUT = "empty output"
PROMPT_TOO_LONG = "Background too long for the model's context (not generated)"
OUT_OF_MEMORY = "out of memory even alone in a batch (not generated)"


@dataclass(frozen=True)
class ParsedConversation:
    """Turns parsed from generated text; `ok` is False with a fixed `reason` when unusable."""

    turns: tuple[Turn, ...]
    question: str
    answer: str
    ok: bool
    reason: str = ""

    def turns_as_dicts(self) -> list[dict[str, str]]:
        return [{"role": t.role, "text": t.text} for t in self.turns]


# Tolerant tags: "<human>:", "<Human> :", "<bot>" without colon; roles as in the training data.
_TAG = re.compile(r"<\s*(human|bot)\s*>\s*:?", re.IGNORECASE)
# A new example after the conversation ("\nBackground: ...") ends it.
_NEW_EXAMPLE = re.compile(r"(?:^|\n)\s*Background\s*:", re.IGNORECASE)


def parse_conversation(raw_text: str, finished: bool | None = None) -> ParsedConversation:
    """Parse `<human>:`/`<bot>:` turns from generated text, tolerating common defects.

    Tolerated: an echoed ``Background: ...`` before the first tag (dropped), a new example started
    after the conversation (cut), stray repeated tags and empty turns (dropped), consecutive turns
    of one role (joined), and a trailing unanswered `<human>:` turn (dropped). `finished=False`
    (no EOS within the token budget) marks the output as truncated.
    """
    text = raw_text.replace("\r\n", "\n")
    first_tag = _TAG.search(text)
    if first_tag is None:
        reason = EMPTY_OUTPUT if not text.strip() else NO_TAGS
        return ParsedConversation((), "", "", False, reason)
    body = text[first_tag.start() :]
    cut = _NEW_EXAMPLE.search(body)
    if cut is not None:
        body = body[: cut.start()]
    pieces = _TAG.split(body)
    # split() gives ["", role, text, role, text, ...] because body starts with a tag.
    turns: list[Turn] = []
    for role_raw, chunk in zip(pieces[1::2], pieces[2::2], strict=True):
        role = role_raw.lower()
        chunk = chunk.strip()
        if not chunk:
            continue
        if turns and turns[-1].role == role:
            turns[-1] = Turn(role, f"{turns[-1].text} {chunk}")
        else:
            turns.append(Turn(role, chunk))
    if not turns:
        return ParsedConversation((), "", "", False, EMPTY_QUESTION)
    if turns[0].role != "human":
        return ParsedConversation(tuple(turns), "", turns[0].text, False, NO_QUESTION)
    if len(turns) == 1:
        return ParsedConversation(tuple(turns), turns[0].text, "", False, NO_ANSWER)
    question, answer = turns[0].text, turns[1].text
    if len(turns) > 2 and turns[-1].role == "human":
        turns = turns[:-1]
    if finished is False:
        return ParsedConversation(tuple(turns), question, answer, False, TRUNCATED)
    return ParsedConversation(tuple(turns), question, answer, True, "")


def cut_after_turns(text: str, turns: int) -> tuple[str, bool]:
    """The text before the (turns + 1)-th `<human>:` tag or a new ``Background:``, and whether
    such an end was found (a clean stop, like EOS). `turns` = 0 never cuts."""
    if turns <= 0:
        return text, False
    humans = [m for m in _TAG.finditer(text) if m.group(1).lower() == "human"]
    ends = [humans[turns].start()] if len(humans) > turns else []
    if humans:
        new_example = _NEW_EXAMPLE.search(text, humans[0].end())
        if new_example is not None:
            ends.append(new_example.start())
    if not ends:
        return text, False
    return text[: min(ends)].rstrip(), True


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def strip_control_chars(text: str) -> str:
    """Drop C0 control characters (NUL included) except tab and newlines.

    Byte-level tokenizers can decode a sampled byte token to any control character; no rater
    should see one, and PostgreSQL rejects NUL in text and JSON columns.
    """
    return _CONTROL_CHARS.sub("", text)
