"""Loading and validating long-format ratings CSVs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from stats.ratings import RatingsError, Scale, ratings_from_rows, read_ratings_csv

HEADER = "rater,item,target,criterion,score\n"


def _csv(body: str, header: str = HEADER) -> io.StringIO:
    return io.StringIO(header + body)


GOOD = (
    "r1,1,question,correctness,3\n"
    "r1,1,answer,correctness,2\n"
    "r2,1,question,correctness,2\n"
    "r2,1,answer,correctness,2\n"
    "r1,2,question,correctness,1\n"
    "r1,2,answer,correctness,3\n"
)


def test_it_reads_a_valid_file_into_codes_and_arrays() -> None:
    table = read_ratings_csv(_csv(GOOD), Scale(1, 3))
    assert len(table) == 6
    assert table.raters == ("r1", "r2")
    assert table.items == ("1", "2")
    assert table.criteria == ("correctness",)
    assert table.score.tolist() == [3, 2, 2, 2, 1, 3]
    assert table.target.tolist() == [0, 1, 0, 1, 0, 1]


def test_it_builds_item_by_rater_matrices_with_nan_for_missing() -> None:
    m = read_ratings_csv(_csv(GOOD), Scale(1, 3)).matrix("question", "correctness")
    assert m.shape == (2, 2)
    assert m[0].tolist() == [3.0, 2.0]
    assert m[1, 0] == 1.0 and np.isnan(m[1, 1])


def test_it_averages_item_scores_per_target() -> None:
    items, q, a = read_ratings_csv(_csv(GOOD), Scale(1, 3)).item_means("correctness")
    assert items == ["1", "2"]
    assert q.tolist() == [2.5, 1.0]
    assert a.tolist() == [2.0, 3.0]


def test_it_accepts_any_column_order_extra_columns_and_a_bom() -> None:
    text = "\ufeffscore,Criterion,TARGET,item,rater,comment\n3,c,question,7,x,hi\n2,c,answer,7,x,\n"
    table = read_ratings_csv(io.StringIO(text), Scale(1, 3))
    assert table.items == ("7",) and table.score.tolist() == [3, 2]


def test_it_sorts_names_naturally() -> None:
    rows = [
        (f"respondent-{r}", f"1.{i}", t, "c", 1)
        for r in (10, 9)
        for i in (10, 2)
        for t in ("question", "answer")
    ]
    table = ratings_from_rows(rows, Scale(1, 3))
    assert table.raters == ("respondent-9", "respondent-10")
    assert table.items == ("1.2", "1.10")


def test_it_names_missing_columns() -> None:
    with pytest.raises(RatingsError, match=r"line 1: missing column\(s\) target, score"):
        read_ratings_csv(_csv("", header="rater,item,criterion\n"))


def test_it_rejects_non_numeric_scores_naming_the_line() -> None:
    with pytest.raises(RatingsError, match=r"line 3: score 'good' is not a whole number"):
        read_ratings_csv(_csv("r1,1,question,c,3\nr1,1,answer,c,good\n"))


def test_it_rejects_fractional_scores_but_accepts_integral_floats() -> None:
    with pytest.raises(RatingsError, match=r"line 2: score '2.5' is not a whole number"):
        read_ratings_csv(_csv("r1,1,question,c,2.5\nr1,1,answer,c,2\n"))
    assert read_ratings_csv(_csv("r1,1,question,c,2.0\nr1,1,answer,c,1\n")).score.tolist() == [
        2,
        1,
    ]


def test_it_rejects_off_scale_scores() -> None:
    with pytest.raises(RatingsError, match=r"line 3: score 7 is outside the scale 1-5"):
        read_ratings_csv(_csv("r1,1,question,c,3\nr1,1,answer,c,7\n"), Scale(1, 5))


def test_it_rejects_unknown_targets_and_empty_fields() -> None:
    with pytest.raises(RatingsError) as err:
        read_ratings_csv(_csv("r1,1,qestion,c,3\n,1,answer,c,2\n"))
    assert err.value.problems == [
        "line 2: target 'qestion' must be 'question' or 'answer'",
        "line 3: empty rater",
    ]


def test_it_rejects_duplicate_ratings_naming_both_lines() -> None:
    body = "r1,1,question,c,3\nr1,1,answer,c,2\nr1,1,question,c,1\n"
    with pytest.raises(RatingsError, match=r"line 4: duplicate rating by rater 'r1' of item '1', "
                       r"question, 'c' \(first on line 2\)"):  # fmt: skip
        read_ratings_csv(_csv(body))


def test_it_rejects_an_item_rated_on_only_one_target() -> None:
    body = GOOD + "r1,3,question,correctness,2\n"
    with pytest.raises(
        RatingsError,
        match=r"item '3' has question ratings but no answer ratings for criterion 'correctness'",
    ):
        read_ratings_csv(_csv(body), Scale(1, 3))


def test_it_reports_short_rows_and_empty_files() -> None:
    with pytest.raises(RatingsError, match="line 2: expected 5 fields, got 3"):
        read_ratings_csv(_csv("r1,1,question\n"))
    with pytest.raises(RatingsError, match="empty file"):
        read_ratings_csv(io.StringIO(""))
    with pytest.raises(RatingsError, match="no ratings"):
        read_ratings_csv(_csv(""))


def test_it_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(RatingsError, match="file not found"):
        read_ratings_csv(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes(HEADER.encode() + "r\xe9,1,question,c,1\n".encode("latin-1"))
    with pytest.raises(RatingsError, match="not UTF-8"):
        read_ratings_csv(bad)


def test_it_infers_the_scale_when_none_is_given() -> None:
    assert read_ratings_csv(_csv(GOOD)).scale == Scale(1, 3)


@pytest.mark.parametrize(
    ("text", "expected"), [("1-5", Scale(1, 5)), ("0..10", Scale(0, 10)), ("-2-2", Scale(-2, 2))]
)
def test_scale_parses_min_max(text: str, expected: Scale) -> None:
    assert Scale.parse(text) == expected


@pytest.mark.parametrize("text", ["5", "a-b", "5-1", "3-3"])
def test_scale_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="scale"):
        Scale.parse(text)
