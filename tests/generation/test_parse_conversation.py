"""parse_conversation: well-formed, truncated, multi-turn, garbage and messy model outputs."""

from __future__ import annotations

from modeling import generation as g
from modeling.generation import parse_conversation
from modeling.prompting import Turn


def test_it_parses_a_well_formed_conversation() -> None:
    p = parse_conversation("<human>: Which way does it flow?\n<bot>: North.")
    assert p.ok
    assert p.reason == ""
    assert p.question == "Which way does it flow?"
    assert p.answer == "North."
    assert p.turns == (Turn("human", "Which way does it flow?"), Turn("bot", "North."))


def test_it_flags_a_conversation_truncated_before_the_answer() -> None:
    p = parse_conversation("<human>: Which way does the river")
    assert not p.ok
    assert p.reason == g.NO_ANSWER
    assert p.question == "Which way does the river"
    assert p.answer == ""


def test_it_flags_an_answer_cut_off_by_the_token_budget() -> None:
    p = parse_conversation("<human>: Why?\n<bot>: Because the", finished=False)
    assert not p.ok
    assert p.reason == g.TRUNCATED
    assert (p.question, p.answer) == ("Why?", "Because the")


def test_it_keeps_every_turn_of_a_multi_turn_conversation() -> None:
    raw = "<human>: Q1?\n<bot>: A1.\n<human>: Q2?\n<bot>: A2."
    p = parse_conversation(raw, finished=True)
    assert p.ok
    assert [t.role for t in p.turns] == ["human", "bot", "human", "bot"]
    assert (p.question, p.answer) == ("Q1?", "A1.")
    assert p.turns[3].text == "A2."


def test_it_drops_a_trailing_unanswered_human_turn() -> None:
    p = parse_conversation("<human>: Q1?\n<bot>: A1.\n<human>: Q2?")
    assert p.ok
    assert p.turns == (Turn("human", "Q1?"), Turn("bot", "A1."))


def test_it_rejects_garbage_without_tags() -> None:
    p = parse_conversation("sel{ime oE^or?e nQz It")
    assert not p.ok
    assert p.reason == g.NO_TAGS
    assert p.turns == ()


def test_it_rejects_an_empty_output() -> None:
    assert parse_conversation("  \n").reason == g.EMPTY_OUTPUT


def test_it_rejects_an_answer_without_a_question() -> None:
    p = parse_conversation("<bot>: North.")
    assert not p.ok
    assert p.reason == g.NO_QUESTION
    assert p.answer == "North."


def test_it_drops_an_echoed_background_before_the_first_tag() -> None:
    p = parse_conversation("Background: The river flows north.\n<human>: Where?\n<bot>: North.")
    assert p.ok
    assert (p.question, p.answer) == ("Where?", "North.")


def test_it_stops_at_a_new_example() -> None:
    raw = "<human>: Where?\n<bot>: North.\nBackground: Another passage.\n<human>: Other?"
    p = parse_conversation(raw)
    assert p.ok
    assert p.turns == (Turn("human", "Where?"), Turn("bot", "North."))


def test_it_tolerates_stray_and_loose_tags() -> None:
    p = parse_conversation("<human>: <Human> : Where?\n<bot> North.\n<bot>: Definitely north.")
    assert p.ok
    assert p.question == "Where?"
    assert p.answer == "North. Definitely north."
    assert len(p.turns) == 2


def test_it_rejects_tags_with_nothing_in_them() -> None:
    p = parse_conversation("<human>: <bot>:")
    assert not p.ok
    assert p.reason == g.EMPTY_QUESTION


def test_decoded_text_loses_control_characters_but_keeps_newlines_and_tabs() -> None:
    from modeling.generation import strip_control_chars

    assert strip_control_chars("a\x00b\x1bc\x7f\td\ne\r\nf") == "abc\td\ne\r\nf"
    assert strip_control_chars("ภาษาไทย 🌍") == "ภาษาไทย 🌍"
