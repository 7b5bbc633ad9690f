import pytest

from convgen_site.env import ImproperlyConfiguredValue, envbool, envint, envlist, envsecret


def test_envbool_accepts_common_spellings(monkeypatch: pytest.MonkeyPatch) -> None:
    for raw, expected in [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False)]:
        monkeypatch.setenv("X_FLAG", raw)
        assert envbool("X_FLAG", "0") is expected


def test_envbool_fails_loudly_on_nonsense(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfiguredValue, match="X_FLAG='maybe' is not a boolean"):
        envbool("X_FLAG", "0")


def test_envint_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_INT", "12a")
    with pytest.raises(ImproperlyConfiguredValue, match="X_INT='12a' is not an integer"):
        envint("X_INT", "1")
    monkeypatch.setenv("X_INT", " 42 ")
    assert envint("X_INT", "1") == 42


def test_envlist_drops_empty_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_LIST", "a.example, b.example,,")
    assert envlist("X_LIST", "") == ["a.example", "b.example"]


def test_envsecret_reads_the_file_variant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory
) -> None:
    secret = tmp_path / "secret"  # type: ignore[operator]
    secret.write_text("s3cret\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert envsecret("X_SECRET") == "s3cret"
    monkeypatch.setenv("X_SECRET_FILE", str(tmp_path / "missing"))  # type: ignore[operator]
    with pytest.raises(ImproperlyConfiguredValue, match="X_SECRET_FILE"):
        envsecret("X_SECRET")
