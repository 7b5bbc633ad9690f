"""read_backgrounds: jsonl, csv and plain text, with errors that name the file and line."""

from __future__ import annotations

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
        Background("Line one\nline two", "b", 1),
    ]


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
