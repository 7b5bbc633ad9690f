"""Fixtures for the data-preparation tests: a hand-built OIG file whose answer is known."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

THAI_BG = "น้ำตกเอราวัณอยู่ที่จังหวัดกาญจนบุรี มีน้ำใสสีเขียวมรกตเจ็ดชั้น ผู้คนชอบไปเที่ยวในฤดูฝน"


def _j(text: object, **extra: object) -> str:
    return json.dumps({"text": text, **extra}, ensure_ascii=False)


PARIS = "Background: Paris is the capital of France."
PARIS_QA = "<human>: What is the capital of France?<bot>: Paris."
DANUBE = (
    "Background: The Danube flows through ten countries, more than any other river."
    "<human>: How many countries does the Danube flow through?<bot>: Ten."
    "<human>: Which sea does it reach?<bot>: The Black Sea, see https://example.org/danube."
)
FIREWORKS = (
    "Background: The festival ends with fireworks 🎆 over the bay."
    "<human>: How does it end?<bot>: With fireworks 🎉👨\u200d👩\u200d👧"
)
COPPER = (
    "Background: Copper conducts heat and electricity well, so it is used in wiring."
    "<human>: Why is copper used in wiring?<bot>: It conducts electricity well."
)

# (line, what prepare must do with it); line numbers are 1-based positions in this list.
HAND_BUILT: list[tuple[str, str]] = [
    (_j(PARIS + PARIS_QA), "kept"),
    (_j("<human>: Write a haiku about rain.<bot>: Soft rain on the roof."), "no_background"),
    ('{"text": "Background: a line cut in the mid', "malformed_json"),
    (_j(PARIS + PARIS_QA), "exact_duplicate"),
    (_j(PARIS.replace("capital", " <b>capital</b>  ") + "\n" + PARIS_QA + " "), "exact_duplicate"),
    (_j("Background: PARIS IS THE CAPITAL OF FRANCE!" + PARIS_QA.rstrip(".")), "near_duplicate"),
    (_j(DANUBE), "kept"),
    (_j(f"Background: {THAI_BG}<human>: น้ำตกเอราวัณอยู่จังหวัดอะไร<bot>: จังหวัดกาญจนบุรี"), "kept"),
    (_j(FIREWORKS), "kept"),
    (_j("Background: A passage with no conversation at all."), "no_turns"),
    (_j("Background: A passage.<human>: A question nobody answers?"), "no_human_bot_pair"),
    (
        _j("Background: https://example.org/only-a-link <br/><human>: q?<bot>: a."),
        "empty_background",
    ),
    ("[1, 2, 3]", "missing_text"),
    ("", "blank_line"),
    ('{"text": 42}', "missing_text"),
    (_j(COPPER, metadata={"source": "hand"}), "kept"),
]
HAND_BUILT_KEPT_LINES = [i + 1 for i, (_, kind) in enumerate(HAND_BUILT) if kind == "kept"]
HAND_BUILT_MALFORMED_LINES = [3, 13, 15]


@pytest.fixture
def hand_built_file(tmp_path: Path) -> Path:
    path = tmp_path / "oig.jsonl"
    path.write_text("".join(text + "\n" for text, _ in HAND_BUILT), encoding="utf-8")
    return path
