"""clean_text and parse_oig_line: junk goes, Thai and emoji stay, turns are structured."""

from __future__ import annotations

import hashlib
import json
import unicodedata

import pytest

from modeling.oig.clean import clean_text
from modeling.oig.parse import LineError, parse_oig_line, parse_text, record_id
from modeling.prompting import build_training_text

THAI = "น้ำตกเอราวัณอยู่ที่จังหวัดกาญจนบุรี ผู้คนชอบไปเที่ยวที่นั่นในฤดูฝน"
EMOJI = "Family trip 👨\u200d👩\u200d👧 with love ❤️ and a thumbs up 👍🏽 🇹🇭"


def line(text: str, **extra: object) -> str:
    return json.dumps({"text": text, **extra}, ensure_ascii=False)


def test_it_leaves_thai_with_combining_vowels_and_tone_marks_untouched() -> None:
    assert clean_text(THAI) == THAI
    # SARA AM (U+0E33) would be split apart by NFKC; NFC must keep it.
    assert clean_text("น้ำ") == "น้ำ"
    assert "\u0e33" in clean_text("น้ำ")


def test_it_keeps_emoji_sequences_with_zwj_skin_tones_and_flags() -> None:
    assert clean_text(EMOJI) == EMOJI


def test_it_composes_decomposed_accents_to_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Café Zoë")
    assert clean_text(decomposed) == "Café Zoë"


def test_it_removes_urls_but_keeps_the_sentence_punctuation() -> None:
    text = "See https://example.org/a?b=1. Or www.example.com/x, then (http://x.org/y) stop."
    assert clean_text(text) == "See. Or, then stop."


def test_it_strips_html_tags_entities_and_comments() -> None:
    text = "<p>Tom &amp; Jerry<br/> are <b>friends</b><!-- hidden --> &quot;always&quot;</p>"
    assert clean_text(text) == 'Tom & Jerry are friends "always"'


def test_it_keeps_comparisons_that_only_look_like_brackets() -> None:
    assert clean_text("if a < b and b > c then x<3") == "if a < b and b > c then x<3"


def test_it_unwraps_wiki_links_and_drops_templates_and_emphasis() -> None:
    text = "== History == '''Paris''' is the [[capital city|capital]] of [[France]]{{cite web}}."
    assert clean_text(text) == "History Paris is the capital of France."


def test_it_collapses_all_whitespace_and_drops_control_characters() -> None:
    assert clean_text("  a\t\tb\n\nc\u00a0d\x07e\ufeff ") == "a b c de"


def test_it_removes_role_tags_smuggled_in_as_entities() -> None:
    assert clean_text("say &lt;human&gt;: hi") == "say hi"


def test_it_parses_the_example_line_from_the_brief() -> None:
    raw = line(
        "Background: Paris is the capital...<human>: What is the capital of France?<bot>: Paris."
    )
    record = parse_oig_line(raw, 7)
    assert record.background == "Paris is the capital..."
    assert record.turns == (("human", "What is the capital of France?"), ("bot", "Paris."))
    assert record.source_line == 7
    assert record.id == record_id(record.background, record.turns)
    assert len(record.id) == 16
    assert int(record.id, 16) >= 0
    assert record.to_dict() == {
        "id": record.id,
        "background": "Paris is the capital...",
        "turns": [
            {"role": "human", "text": "What is the capital of France?"},
            {"role": "bot", "text": "Paris."},
        ],
        "source_line": 7,
    }


def test_it_parses_every_turn_of_a_multi_turn_line_with_newlines() -> None:
    raw = line("Background: B.\n<human>: q1\n<bot>: a1\n<human>: q2\n<bot>: a2", metadata={"x": 1})
    assert parse_oig_line(raw).turns == (
        ("human", "q1"),
        ("bot", "a1"),
        ("human", "q2"),
        ("bot", "a2"),
    )


def test_it_merges_repeated_roles_and_trims_a_dangling_question() -> None:
    record = parse_text("Background: B <bot>: hello <human>: a <human>: b <bot>: c <human>: d", 1)
    assert record.turns == (("human", "a b"), ("bot", "c"))


def test_it_keeps_thai_and_emoji_through_parsing() -> None:
    record = parse_oig_line(line(f"Background: {THAI}<human>: น้ำตกอยู่ที่ไหน<bot>: กาญจนบุรี 🌊"))
    assert record.background == THAI
    assert record.turns[1] == ("bot", "กาญจนบุรี 🌊")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ('{"text": "Background: broken', "malformed_json"),
        ("[1, 2]", "missing_text"),
        ('{"text": 5}', "missing_text"),
        ('{"other": "x"}', "missing_text"),
        ("   ", "blank_line"),
        (line("<human>: hi<bot>: hello"), "no_background"),
        (line("Background: only a passage"), "no_turns"),
        (line("Background: B<human>: a question without answer"), "no_human_bot_pair"),
        (line("Background: https://example.org <b></b><human>: q<bot>: a"), "empty_background"),
        (b'{"text": "Background: \xff"}', "invalid_utf8"),
    ],
)
def test_it_rejects_unusable_lines_with_a_reason(raw: str | bytes, reason: str) -> None:
    with pytest.raises(LineError) as caught:
        parse_oig_line(raw, 3)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "text",
    [
        f'Background: {THAI}<human>: a "quoted" \\ back\\slash?<bot>: {EMOJI}',
        "Background: tab\there, </script> & ünïcödé<human>: q1<bot>: a1<human>: q2<bot>: a2",
        "Background: \u2028 line sep \ud7ff \U0001f600<human>: 'single'<bot>: {\"json\": [1]}",
    ],
)
def test_the_fast_json_line_equals_json_dumps(text: str) -> None:
    record = parse_text(text, 12)
    assert record.to_json() == json.dumps(record.to_dict(), ensure_ascii=False)
    assert json.loads(record.to_json()) == record.to_dict()


def test_the_record_id_is_the_sha1_of_the_shared_training_text() -> None:
    record = parse_text(f"Background: {THAI} <human>: q1 <bot>: {EMOJI} <human>: q2<bot>: a2", 1)
    text = build_training_text(record.background, [{"role": r, "text": t} for r, t in record.turns])
    assert record.id == hashlib.sha1(text.encode()).hexdigest()[:16]


def test_no_space_is_left_before_punctuation_after_a_removed_url_or_tag() -> None:
    assert clean_text("It opened in 1930 (https://example.org/x).") == "It opened in 1930."
    assert clean_text("<b>Mount Fuji</b>, a volcano") == "Mount Fuji, a volcano"
    assert clean_text("See [https://example.org] ; then go.") == "See; then go."
    assert clean_text("a < b > c , d") == "a < b > c , d"  # nothing removed: text left alone
