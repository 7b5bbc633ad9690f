import pytest

from modeling.prompting import Turn, build_completion, build_prompt, build_training_text, render_oig


def test_prompt_is_the_background_line() -> None:
    assert build_prompt("  Paris is in France. ") == "Background: Paris is in France.\n"


def test_completion_tags_each_turn_on_its_own_line() -> None:
    turns: list[Turn | dict[str, str]] = [
        {"role": "human", "text": "Where is Paris?"},
        Turn("bot", " In France. "),
    ]
    assert build_completion(turns) == "<human>: Where is Paris?\n<bot>: In France."


def test_training_text_is_prompt_then_completion() -> None:
    turns = [Turn("human", "q"), Turn("bot", "a")]
    assert build_training_text("bg", turns) == "Background: bg\n<human>: q\n<bot>: a"


def test_render_oig_matches_the_oig_text_format() -> None:
    turns = [Turn("human", "คืออะไร"), Turn("bot", "ภาษาไทย 🙂")]
    assert render_oig("ภาษา", turns) == "Background: ภาษา<human>: คืออะไร<bot>: ภาษาไทย 🙂"


def test_unknown_roles_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown role 'system'"):
        build_completion([Turn("system", "x")])
