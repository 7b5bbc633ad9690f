"""The import contracts in pyproject.toml hold, and `lint-imports` fails on a deliberate break."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("modeling", "annotation", "stats", "convgen_site")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_tree(dest: Path) -> None:
    """The four packages' Python files and pyproject.toml: enough for import-linter's graph."""
    shutil.copy(ROOT / "pyproject.toml", dest / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package,
            dest / package,
            ignore=lambda _dir, names: [
                n for n in names if not n.endswith(".py") and not (Path(_dir) / n).is_dir()
            ],
        )


def test_the_code_keeps_every_import_contract() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_lower_app_or_a_pure_core_importing_upwards_breaks_the_lint(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "modeling" / "violation.py").write_text("import annotation.models\n")
    (tmp_path / "modeling" / "oig" / "violation.py").write_text("import django.db\n")
    (tmp_path / "annotation" / "violation.py").write_text("from stats import report\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    out = " ".join(result.stdout.split())
    assert "modeling never imports annotation or stats BROKEN" in out
    assert "annotation never imports stats BROKEN" in out
    assert "Pure cores never import Django" in out
    assert "modeling.oig.violation -> django (l.1)" in out
    assert "modeling.violation -> annotation.models (l.1)" in out
    assert "3 broken" in out
