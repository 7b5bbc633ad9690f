"""read_backgrounds: jsonl, csv and plain text, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeling.generation import Background, BackgroundFileError, read_backgrounds


def test_it_reads_jsonl_with_item_and_id(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text(
        '{"background": " A river. ", "item": "x1"}\n\n{"background": "A mill.", "id": 7}\n',
        encoding="utf-8",
    )
    assert read_backgrounds(path) == [
        Background("A river.", "x1", 0),
        Background("A mill.", "7", 1),
    ]


def test_it_reads_csv_with_quoted_commas_and_newlines(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text('id,background\na,"One, two"\nb,"Line one\nline two"\n', encoding="utf-8")
    assert read_backgrounds(path) == [
        Background("One, two", "a", 0),
        Background("Line one line two", "b", 1),  # whitespace collapsed, as in training data
    ]


def test_backgrounds_get_the_same_cleaning_as_training_data(tmp_path: Path) -> None:
    from modeling.oig.clean import clean_text

    raw = "The <b>Nile</b> flows north [[Egypt|through Egypt]] (see https://example.org/x).\x07"
    path = tmp_path / "b.jsonl"
    path.write_text(json.dumps({"background": raw}) + "\n", encoding="utf-8")
    text = read_backgrounds(path)[0].text
    assert text == clean_text(raw)
    assert "<b>" not in text and "[[" not in text and "https://" not in text and "\x07" not in text
    assert text.startswith("The Nile flows north through Egypt")


def test_a_background_that_is_only_markup_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    rows = [{"background": "Fine text."}, {"background": "<br/> https://example.org"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(BackgroundFileError, match=r"b\.jsonl:2: the Background is empty"):
        read_backgrounds(path)


def test_it_reads_one_background_per_line_of_text(tmp_path: Path) -> None:
    path = tmp_path / "b.txt"
    path.write_text("ภาษาไทย\n\n  Second one  \n", encoding="utf-8")
    assert [b.text for b in read_backgrounds(path)] == ["ภาษาไทย", "Second one"]
    assert [b.position for b in read_backgrounds(path)] == [0, 1]


def test_it_names_the_line_of_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"background": "ok"}\n{"background": \n', encoding="utf-8")
    with pytest.raises(BackgroundFileError, match=r"b\.jsonl:2: invalid JSON"):
        read_backgrounds(path)


def test_it_names_the_line_missing_a_background(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"background": "ok"}\n{"text": "no"}\n', encoding="utf-8")
    with pytest.raises(BackgroundFileError, match=r"b\.jsonl:2: missing or empty"):
        read_backgrounds(path)


def test_it_rejects_a_csv_without_a_background_column(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("text\nhello\n", encoding="utf-8")
    with pytest.raises(BackgroundFileError, match=r"b\.csv:1: .*'background' column"):
        read_backgrounds(path)


def test_it_rejects_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackgroundFileError, match="no such file"):
        read_backgrounds(tmp_path / "nope.txt")


@pytest.mark.parametrize(
    "line", ['{"background": "x", "n": ' + "9" * 5000 + "}", "[" * 100_000 + "]" * 100_000]
)
def test_a_huge_number_or_deep_nesting_is_an_error_naming_the_line(
    tmp_path: Path, line: str
) -> None:
    path = tmp_path / "b.jsonl"
    path.write_text('{"background": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(BackgroundFileError, match=r"b\.jsonl:2: JSON too large"):
        read_backgrounds(path)
