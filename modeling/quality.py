"""Quality measures of generated conversations: parse rate, grounding, boilerplate, distinct-2.

Pure core: no Django. The measures behind the original study's findings (questions were rated
better than answers, and answers repeated openings such as "Examples include:"):

- **grounding** of a question: the share of its content words (words of three or more letters
  that are not stop words, lower-cased, plural ``s`` folded) that also occur in its Background.
  A question about the passage reuses its names and facts; a generic one does not.
- **boilerplate rate**: the share of answers that contain a known boilerplate phrase, or whose
  opening (first three words) is shared by at least 10% of all answers and by at least three
  answers to different Backgrounds.
- **distinct-2** (Li et al., 2016) of the answers: unique word bigrams / all word bigrams.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from modeling.diversity import distinct_n

__all__ = [
    "BOILERPLATE_PHRASES",
    "QualitySummary",
    "boilerplate_flags",
    "content_words",
    "grounding",
    "summarize_quality",
]

# Phrases the original study's answers repeated, and their close relatives.
BOILERPLATE_PHRASES = ("examples include", "some examples", "for example, some")
_OPENING_WORDS = 3
_OPENING_SHARE = 0.10
_OPENING_MIN = 3

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_STOP = frozenset(
    """
    the and for are but not you all any can had her was one our out has him his how its may new
    now old see two way who did get let put say she too use what when where which while whom why
    with this that these those there their them then than they from have into more most much
    must only other over some such very will would could should about after again also been
    before being between both does doing down during each few further here just like made make
    many off once same so own under until upon well were your yours ours does tell give name
    explain describe according passage background text write question answer
    """.split()  # noqa: SIM905  (a word list reads better as prose)
)


def content_words(text: str) -> set[str]:
    """Lower-cased words of three or more letters, minus stop words, with plural s folded."""
    out = set()
    for word in _WORD.findall(text.lower()):
        if len(word) < 3 or word in _STOP:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.add(word)
    return out


def grounding(question: str, background: str) -> float | None:
    """Share of the question's content words found in the Background (None: no content words)."""
    words = content_words(question)
    if not words:
        return None
    return len(words & content_words(background)) / len(words)


def _opening(text: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(text)[:_OPENING_WORDS])


def boilerplate_flags(
    answers: Sequence[str], backgrounds: Sequence[str] | None = None
) -> list[bool]:
    """For each answer, whether it carries boilerplate (see the module docstring)."""
    backgrounds = backgrounds if backgrounds is not None else [str(i) for i in range(len(answers))]
    openings = [_opening(a) for a in answers]
    spread: dict[str, set[str]] = {}
    for op, bg in zip(openings, backgrounds, strict=True):
        if op.count(" ") == _OPENING_WORDS - 1:  # a full three-word opening
            spread.setdefault(op, set()).add(bg)
    counts = Counter(op for op in openings if op in spread)
    threshold = max(_OPENING_MIN, _OPENING_SHARE * len(answers))
    shared = {op for op, n in counts.items() if n >= threshold and len(spread[op]) >= _OPENING_MIN}
    flags = []
    for answer, op in zip(answers, openings, strict=True):
        low = answer.lower()
        flags.append(op in shared or any(p in low for p in BOILERPLATE_PHRASES))
    return flags


@dataclass(frozen=True)
class QualitySummary:
    """Quality of a set of generated records (rates are shares of `n` or of parsed records)."""

    n: int
    parsed: int
    parse_rate: float
    grounding: float  # mean over parsed records with content words in the question
    boilerplate_rate: float  # share of parsed answers
    distinct_2: float  # of parsed answers
    top_openings: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        return (
            f"parsed {self.parsed}/{self.n} ({self.parse_rate:.0%}), grounding "
            f"{self.grounding:.2f}, boilerplate {self.boilerplate_rate:.0%}, "
            f"distinct-2 {self.distinct_2:.2f}"
        )


def summarize_quality(records: Iterable[Mapping[str, Any]]) -> QualitySummary:
    """Summarise generation records (`parse_ok`, `question`, `answer`, `background`)."""
    recs = list(records)
    ok = [r for r in recs if r.get("parse_ok")]
    answers = [str(r["answer"]) for r in ok]
    scores = [grounding(str(r["question"]), str(r["background"])) for r in ok]
    ground_all = [g for g in scores if g is not None]
    flags = boilerplate_flags(answers, [str(r["background"]) for r in ok])
    openings = Counter(_opening(a) for a in answers if _opening(a))
    return QualitySummary(
        n=len(recs),
        parsed=len(ok),
        parse_rate=round(len(ok) / len(recs), 4) if recs else 0.0,
        grounding=round(sum(ground_all) / len(ground_all), 4) if ground_all else 0.0,
        boilerplate_rate=round(sum(flags) / len(flags), 4) if flags else 0.0,
        distinct_2=round(distinct_n(answers, 2), 4) if answers else 0.0,
        top_openings=tuple(openings.most_common(3)),
    )
