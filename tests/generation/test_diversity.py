"""Diversity analysis: repeated phrases, distinct-n, near duplicates and parse failures."""

from __future__ import annotations

import random

import pytest

from modeling.diversity import (
    analyze_records,
    distinct_n,
    format_report,
    near_duplicate_groups,
    repeated_phrases,
    tokenize,
)


def test_tokenize_keeps_punctuation_as_words() -> None:
    assert tokenize("Examples include: 2, 3.") == ["examples", "include", ":", "2", ",", "3", "."]


def test_distinct_n_counts_unique_over_all_ngrams() -> None:
    texts = ["a b a", "a c"]
    # unigrams: a b a a c -> 3 unique / 5; bigrams: ab ba ac -> 3 / 3
    assert distinct_n(texts, 1) == pytest.approx(3 / 5)
    assert distinct_n(texts, 2) == pytest.approx(1.0)
    assert distinct_n([], 2) == 0.0


def test_it_finds_the_boilerplate_the_original_study_found_by_reading() -> None:
    rng = random.Random(0)
    words = [
        "river",
        "mill",
        "valley",
        "light",
        "water",
        "sugar",
        "oxygen",
        "prime",
        "flour",
        "autumn",
    ]
    answers = [" ".join(rng.choices(words, k=8)) for _ in range(40)]
    for i in range(0, 40, 2):
        answers[i] += " Examples include: the old mill."
    phrases = repeated_phrases(answers, min_share=0.2)
    top = phrases[0]
    assert top.phrase == "examples include: the old mill."
    assert (top.count, top.share) == (20, 0.5)
    assert "Examples include:" in top.example
    # Its pieces are not listed again beside it.
    assert not any(p.phrase == "examples include" for p in phrases)


def test_a_sub_phrase_that_also_occurs_alone_is_listed() -> None:
    texts = ["Examples include: x"] * 3 + ["examples include many things"] * 3
    phrases = {p.phrase: p.count for p in repeated_phrases(texts, min_share=0.3)}
    assert phrases["examples include"] == 6
    assert phrases["examples include: x"] == 3


def test_near_duplicates_are_grouped_and_distinct_texts_are_not() -> None:
    base = "The river flows north through the valley and feeds the old mill every spring."
    texts = [
        base,
        base.upper(),
        base.replace("spring", "springs"),
        "Sugar and oxygen.",
        "Exactly two.",
    ]
    groups = near_duplicate_groups(texts)
    assert groups == [[0, 1, 2]]


def test_minhash_path_finds_near_duplicates_among_many_texts() -> None:
    rng = random.Random(1)
    words = [f"w{i}" for i in range(500)]
    texts = [" ".join(rng.choices(words, k=30)) for _ in range(300)]
    texts += [t + " extra" for t in texts[:30]]
    groups = near_duplicate_groups(texts)
    assert sorted(sorted(g) for g in groups) == [[i, 300 + i] for i in range(30)]


def test_analyze_records_reports_parse_failures_and_both_fields() -> None:
    records = [
        {"question": "Where?", "answer": "North.", "parse_ok": True, "parse_error": ""},
        {"question": "Where?", "answer": "North.", "parse_ok": True, "parse_error": ""},
        {"question": "Why", "answer": "", "parse_ok": False, "parse_error": "no <bot>: turn"},
        {"question": "", "answer": "", "parse_ok": False, "parse_error": "garbage"},
    ]
    report = analyze_records(records)
    assert (report.n_records, report.n_parse_ok) == (4, 2)
    assert report.parse_failures == {"no <bot>: turn": 1, "garbage": 1}
    assert report.parse_failure_share == 0.5
    assert report.questions.n == 3
    assert report.answers.n == 2
    assert report.answers.near_duplicate_share == 0.5
    d = report.to_dict()
    assert d["answers"]["n_near_duplicate_groups"] == 1
    text = format_report(report)
    assert "parse failures: 2" in text
    assert "no <bot>: turn" in text


def test_it_counts_outputs_where_a_banned_phrase_got_through() -> None:
    records = [
        {"raw_text": "<human>: q\n<bot>: EXAMPLES INCLUDE: x", "parse_ok": True},
        {"raw_text": "<human>: q\n<bot>: fine", "parse_ok": True},
        {"question": "q", "answer": "Examples include: y", "parse_ok": True},
    ]
    report = analyze_records(records, ban_phrases=["Examples include:", "As an AI"])
    assert report.banned_phrase_hits == {"Examples include:": 2, "As an AI": 0}
    assert "banned phrase 'Examples include:' still in 2 outputs" in format_report(report)
