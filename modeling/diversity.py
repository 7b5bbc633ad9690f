"""Diversity and error analysis of generated conversations.

Repeated phrases (word n-grams present in many outputs, such as "examples include :"),
distinct-1/2 (Li et al., 2016: unique n-grams / all n-grams), the share of near-duplicate outputs
(the definition data preparation uses, from `modeling.oig.dedupe`) and parse failures. Words are
``\\w+`` runs and single punctuation marks, lower-cased. Scripts written without spaces (Thai)
count a whole run as one word; the near-duplicate check uses bytes and is unaffected.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from modeling.oig.dedupe import NearDuplicateIndex, dedupe_key

__all__ = [
    "DiversityReport",
    "Phrase",
    "TextStats",
    "analyze_records",
    "distinct_n",
    "format_report",
    "near_duplicate_groups",
    "repeated_phrases",
    "text_stats",
    "tokenize",
]

_WORD = re.compile(r"\w+|[^\w\s]")
_SPACE_BEFORE_PUNCT = re.compile(r" ([^\w\s])")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _WORD.findall(text.lower())


def _ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(texts: Iterable[str], n: int) -> float:
    """Unique n-grams divided by all n-grams over the texts (0.0 when there are none)."""
    total = 0
    unique: set[tuple[str, ...]] = set()
    for text in texts:
        grams = _ngrams(tokenize(text), n)
        total += len(grams)
        unique.update(grams)
    return len(unique) / total if total else 0.0


@dataclass(frozen=True)
class Phrase:
    """A word n-gram found in `count` outputs (`share` of them), with one example output."""

    phrase: str
    n: int
    count: int
    share: float
    example: str


def _show(gram: tuple[str, ...]) -> str:
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(gram))


def repeated_phrases(
    texts: Sequence[str],
    *,
    min_n: int = 2,
    max_n: int = 5,
    min_share: float = 0.05,
    min_count: int = 2,
    top: int = 15,
) -> list[Phrase]:
    """N-grams (min_n..max_n words) that occur in at least `min_share` of the texts.

    Counts are document frequencies (an output repeating a phrase counts once). A phrase is hidden
    when a longer reported phrase contains it and occurs in as many outputs, so "examples include"
    is not listed beside "examples include :" unless it also occurs on its own.
    """
    n_texts = len(texts)
    if not n_texts:
        return []
    threshold = max(min_count, int(np.ceil(min_share * n_texts)))
    doc_freq: Counter[tuple[str, ...]] = Counter()
    first_seen: dict[tuple[str, ...], int] = {}
    for idx, text in enumerate(texts):
        tokens = tokenize(text)
        grams: set[tuple[str, ...]] = set()
        for n in range(min_n, max_n + 1):
            grams.update(g for g in _ngrams(tokens, n) if g[0][0].isalnum())
        for g in grams:
            doc_freq[g] += 1
            first_seen.setdefault(g, idx)
    frequent = [g for g, c in doc_freq.items() if c >= threshold]
    # Longest first, so containment checks only look at already-kept phrases.
    frequent.sort(key=lambda g: (-len(g), -doc_freq[g], g))
    kept: list[tuple[str, ...]] = []
    for g in frequent:
        shown = " " + " ".join(g) + " "
        if any(doc_freq[k] >= doc_freq[g] and shown in " " + " ".join(k) + " " for k in kept):
            continue
        kept.append(g)
    kept.sort(key=lambda g: (-doc_freq[g], -len(g), g))
    docs = [" " + " ".join(tokenize(t)) + " " for t in texts]
    kept = _stitch(kept, doc_freq, docs)
    for g in kept:
        if g not in first_seen:  # a stitched phrase: find its first output
            needle = " " + " ".join(g) + " "
            first_seen[g] = next(i for i, d in enumerate(docs) if needle in d)
    return [
        Phrase(
            phrase=_show(g),
            n=len(g),
            count=doc_freq[g],
            share=doc_freq[g] / n_texts,
            example=texts[first_seen[g]][:200],
        )
        for g in kept[:top]
    ]


def _stitch(
    kept: list[tuple[str, ...]],
    doc_freq: Counter[tuple[str, ...]],
    docs: Sequence[str],
) -> list[tuple[str, ...]]:
    """Join overlapping phrases with the same count ("examples include : 2" + "include : 2 , 3")
    into the longer phrase they come from, when that phrase occurs in as many outputs."""
    out: list[tuple[str, ...]] = []
    for g in kept:
        merged = False
        for idx, k in enumerate(out):
            if doc_freq[k] != doc_freq[g]:
                continue
            for cand in (_overlap(k, g), _overlap(g, k)):
                if cand is None:
                    continue
                needle = " " + " ".join(cand) + " "
                if sum(needle in d for d in docs) == doc_freq[g]:
                    doc_freq[cand] = doc_freq[g]
                    out[idx] = cand
                    merged = True
                    break
            if merged:
                break
        if not merged:
            out.append(g)
    return out


def _overlap(left: tuple[str, ...], right: tuple[str, ...]) -> tuple[str, ...] | None:
    """`left` extended by `right` when right's prefix overlaps left's suffix by >= 1 token."""
    for size in range(min(len(left), len(right)) - 1, 0, -1):
        if left[-size:] == right[:size]:
            return left + right[size:]
    return None


def near_duplicate_groups(texts: Sequence[str], threshold: float = 0.8) -> list[list[int]]:
    """Groups (size >= 2) of texts that are near duplicates of the group's first text.

    "Near duplicate" is data preparation's definition (`modeling.oig.dedupe`): MinHash-estimated
    Jaccard similarity >= `threshold` of the 16-byte windows of the case-folded text without
    spaces and punctuation. Texts are taken in order; each joins the group of the first earlier
    text it nearly duplicates, as `prepare` would drop it in favour of that one.
    """
    index = NearDuplicateIndex(threshold)
    firsts: list[int] = []  # text index of each indexed text
    groups: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        sig = index.signature(dedupe_key(text))
        buckets = index.band_buckets(sig)
        found = index.find_near(sig, buckets)
        if found is None:
            firsts.append(i)
            index.add(f"{i:x}", sig, buckets)
        else:
            groups.setdefault(firsts[found], [firsts[found]]).append(i)
    return list(groups.values())


@dataclass(frozen=True)
class TextStats:
    """Diversity of one field (questions or answers) across outputs."""

    n: int
    mean_words: float
    distinct_1: float
    distinct_2: float
    near_duplicate_share: float
    n_near_duplicate_groups: int
    top_phrases: tuple[Phrase, ...]


def text_stats(
    texts: Sequence[str], *, near_dup_threshold: float = 0.8, **phrase_kw: Any
) -> TextStats:
    """Distinct-n, near-duplicate share ((outputs - groups) / outputs) and repeated phrases."""
    groups = near_duplicate_groups(texts, threshold=near_dup_threshold)
    # Outputs one could drop keeping one per group: what near-duplication costs the dataset.
    redundant = sum(len(g) - 1 for g in groups)
    n = len(texts)
    return TextStats(
        n=n,
        mean_words=float(np.mean([len(t.split()) for t in texts])) if n else 0.0,
        distinct_1=distinct_n(texts, 1),
        distinct_2=distinct_n(texts, 2),
        near_duplicate_share=redundant / n if n else 0.0,
        n_near_duplicate_groups=len(groups),
        top_phrases=tuple(repeated_phrases(texts, **phrase_kw)),
    )


@dataclass(frozen=True)
class DiversityReport:
    """Diversity of questions and answers plus parse failures, for a run's page and summary."""

    n_records: int
    n_parse_ok: int
    parse_failures: dict[str, int]
    questions: TextStats
    answers: TextStats
    # Outputs whose raw text still contains a banned phrase (case-insensitive): the token-level
    # ban misses other spellings and tokenizations, so the run reports what got through.
    banned_phrase_hits: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def parse_failure_share(self) -> float:
        return (self.n_records - self.n_parse_ok) / self.n_records if self.n_records else 0.0


def analyze_records(
    records: Iterable[Mapping[str, Any]], ban_phrases: Iterable[str] = (), **phrase_kw: Any
) -> DiversityReport:
    """Analyse output records (`question`, `answer`, `raw_text`, `parse_ok`, `parse_error`)."""
    recs = list(records)
    raws = [
        str(r.get("raw_text") or f"{r.get('question', '')} {r.get('answer', '')}").lower()
        for r in recs
    ]
    hits = {p: sum(p.lower() in raw for raw in raws) for p in ban_phrases}
    ok = [r for r in recs if r.get("parse_ok")]
    failures = Counter(
        str(r.get("parse_error") or "unknown") for r in recs if not r.get("parse_ok")
    )
    # Diversity of what would be exported: parsed questions and answers that are non-empty.
    questions = [str(r["question"]) for r in recs if r.get("question")]
    answers = [str(r["answer"]) for r in recs if r.get("answer")]
    return DiversityReport(
        n_records=len(recs),
        n_parse_ok=len(ok),
        parse_failures=dict(failures.most_common()),
        questions=text_stats(questions, **phrase_kw),
        answers=text_stats(answers, **phrase_kw),
        banned_phrase_hits=hits,
    )


def format_report(report: DiversityReport | Mapping[str, Any], top: int = 8) -> str:
    """Plain-text summary for the `generate` command."""
    d = report.to_dict() if isinstance(report, DiversityReport) else dict(report)
    n = d["n_records"]
    lines = [f"records: {n}   parsed ok: {d['n_parse_ok']}   parse failures: {n - d['n_parse_ok']}"]
    for reason, count in d["parse_failures"].items():
        lines.append(f"  {count:6d}  {reason}")
    for phrase, count in d.get("banned_phrase_hits", {}).items():
        lines.append(f"banned phrase {phrase!r} still in {count} outputs")
    for name in ("questions", "answers"):
        s = d[name]
        lines.append(
            f"{name}: n={s['n']} mean words={s['mean_words']:.1f} "
            f"distinct-1={s['distinct_1']:.3f} distinct-2={s['distinct_2']:.3f} "
            f"near-duplicates={s['near_duplicate_share']:.1%}"
        )
        for p in s["top_phrases"][:top]:
            lines.append(f"  {p['share']:6.1%}  ({p['count']})  {p['phrase']!r}")
    return "\n".join(lines)
