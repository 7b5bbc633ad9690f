"""The report's system comparison (issue 14): matched by Background, from the database, in every
format, and the study planner (command and report page)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from scipy import stats as sps

from stats.paired import wilcoxon_signed_rank
from stats.plots import system_means_plot
from stats.ratings import Scale, ratings_from_rows
from stats.report import build_report, to_csv, to_json_dict, to_text
from stats.system_report import SystemLabels, compare_table_systems, system_order
from tests.stats.conftest import PILOT_DIR, synthetic_rows, write_csv

Row = tuple[str, str, str, str, int]
N = 16  # Backgrounds: over 13, so the pairwise tests need no 2^n sign-flip enumeration (slow)
# system -> (items per Background, score shift)
SYSTEMS = {"lora": (2, 1.0), "base": (1, 0.0), "reference": (1, 0.5)}


def _system_rows(
    n_blocks: int = N, systems: dict[str, tuple[int, float]] = SYSTEMS, seed: int = 0
) -> tuple[list[Row], dict[str, str], dict[str, str]]:
    """Three raters rate every item; a Background's difficulty is shared by its systems."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    block: dict[str, str] = {}
    system: dict[str, str] = {}
    for b in range(n_blocks):
        base = rng.uniform(1.5, 3.5)
        for name, (n_items, shift) in systems.items():
            for j in range(n_items):
                item = f"{name}-b{b}-{j}"
                block[item], system[item] = f"bg{b}", name
                for r in range(3):
                    for target in ("question", "answer"):
                        noise = rng.normal(0, 0.5)
                        score = int(np.clip(round(base + shift + noise), 1, 5))
                        rows.append((f"rater{r}", item, target, "correctness", score))
    return rows, block, system


def _block_means(rows: list[Row], block: dict[str, str], system: dict[str, str], target: str):
    """Independent reference: item means, then the mean of a system's items per Background."""
    per_item: dict[str, list[int]] = {}
    for _r, item, t, _c, score in rows:
        if t == target:
            per_item.setdefault(item, []).append(score)
    cells: dict[tuple[str, str], list[float]] = {}
    for item, scores in per_item.items():
        cells.setdefault((block[item], system[item]), []).append(float(np.mean(scores)))
    return {key: float(np.mean(v)) for key, v in cells.items()}


def test_two_systems_are_compared_on_background_means_with_several_items_averaged() -> None:
    systems = {"lora": SYSTEMS["lora"], "base": SYSTEMS["base"]}
    rows, block, system = _system_rows(systems=systems)
    table = ratings_from_rows(rows, Scale(1, 5))
    rep = compare_table_systems(table, SystemLabels(block, system))
    assert rep is not None and rep.systems == ("base", "lora")
    cell = next(c for c in rep.comparisons if c.target == "answer")
    assert cell.test == "wilcoxon" and cell.coverage.n_complete == N
    means = _block_means(rows, block, system, "answer")
    d = np.array([means[(f"bg{b}", "base")] - means[(f"bg{b}", "lora")] for b in range(N)])
    expected = wilcoxon_signed_rank(np.round(d, 12))
    pair = cell.pairwise[0]
    assert pair.n_blocks == N
    assert pair.wilcoxon.p_value == pytest.approx(expected.p_value)
    assert pair.mean_difference == pytest.approx(d.mean())
    assert pair.mean_difference < 0  # lora is a point better
    summary = {s.system: s for s in cell.summaries}
    assert summary["lora"].mean == pytest.approx(
        np.mean([means[(f"bg{b}", "lora")] for b in range(N)])
    )


def test_three_systems_use_friedman_as_scipy_and_state_incomplete_blocks() -> None:
    rows, block, system = _system_rows()
    # Background 0 loses its reference item: an incomplete block, stated, not silently dropped.
    rows = [r for r in rows if r[1] != "reference-b0-0"]
    table = ratings_from_rows(rows, Scale(1, 5))
    report = build_report(table, source="test", labels=SystemLabels(block, system))
    assert report.systems is not None
    assert report.systems.systems == ("base", "lora", "reference")  # the reference comes last
    cell = next(c for c in report.systems.comparisons if c.target == "question")
    assert cell.coverage.n_incomplete == 1 and cell.coverage.n_complete == N - 1
    means = _block_means(rows, block, system, "question")
    matrix = np.array(
        [[means[(f"bg{b}", s)] for s in ("base", "lora", "reference")] for b in range(1, N)]
    )
    # Rounded as the core rounds item means, so that float noise does not hide true ties.
    expected = sps.friedmanchisquare(*np.round(matrix, 12).T)
    assert cell.friedman is not None
    assert cell.friedman.statistic == pytest.approx(expected.statistic)
    assert cell.friedman.p_value == pytest.approx(expected.pvalue)
    assert any("1 incomplete blocks dropped" in w for w in report.warnings)
    assert any(
        c.startswith("Question correctness: the 3 systems differ") for c in report.conclusions
    )
    # Question vs answer within each system.
    assert [q.system for q in report.systems.question_vs_answer] == ["base", "lora", "reference"]

    data = to_json_dict(report)
    assert data["systems"]["systems"] == ["base", "lora", "reference"]
    assert data["systems"]["comparisons"][0]["coverage"]["n_incomplete"] == 1
    json.dumps(data, allow_nan=False)
    csv_text = to_csv(report)
    assert "system_test,question,correctness,,friedman_p_value," in csv_text
    assert "system_pair,answer,correctness,base vs lora,p_value_holm," in csv_text
    assert "system_question_answer,,correctness,lora,p_value," in csv_text
    text = to_text(report)
    assert "Systems on shared Backgrounds (3 systems" in text and "Kendall's W" in text


def test_one_system_or_no_labels_leaves_the_report_as_it_was() -> None:
    table = ratings_from_rows(synthetic_rows(n_items=6), Scale(1, 5))
    assert build_report(table).systems is None
    one = SystemLabels({}, {f"item{i}": "lora" for i in range(6)})
    report = build_report(table, labels=one)
    assert report.systems is None and to_json_dict(report)["systems"] is None
    assert system_order(["x", "reference", "a"]) == ["a", "x", "reference"]


def test_the_plot_shows_every_system_with_its_interval_and_escapes_names() -> None:
    rows, block, system = _system_rows(systems={"<b>lora</b>": (1, 1.0), "base": (1, 0.0)})
    table = ratings_from_rows(rows, Scale(1, 5))
    rep = compare_table_systems(table, SystemLabels(block, system))
    assert rep is not None
    svg = system_means_plot(rep, Scale(1, 5))
    assert svg.startswith("<svg") and "<b>" not in svg and "&lt;b&gt;lora" in svg
    assert svg.count("<circle") == 4  # 2 systems x 2 targets


@pytest.mark.django_db
def test_the_study_report_reads_blocks_and_sources_from_the_database(
    researcher_client: Client, make_study: Callable[..., object]
) -> None:
    from annotation.models import Item

    rows, block, system = _system_rows()
    make_study(rows, slug="sys")
    for item in Item.objects.filter(study__slug="sys"):
        item.block, item.source = block[item.external_id], system[item.external_id]
        item.save(update_fields=["block", "source"])
    html = researcher_client.get(reverse("stats:study_report", args=["sys"])).content.decode()
    assert "Systems on shared Backgrounds" in html and "Kendall" in html
    assert "Question vs answer within each system" in html
    assert "Plan the next study" in html
    data = researcher_client.get(reverse("stats:study_report_json", args=["sys"])).json()
    assert data["systems"]["systems"] == ["base", "lora", "reference"]
    csv_text = researcher_client.get(reverse("stats:study_report_csv", args=["sys"])).content
    assert b"system_pair" in csv_text
    out = io.StringIO()
    call_command("stats_report", study="sys", format="text", stdout=out)
    assert "Systems on shared Backgrounds" in out.getvalue()

    planned = researcher_client.get(
        reverse("stats:study_report", args=["sys"]),
        {"delta": "0.5", "difference": "systems", "target": "answer", "criterion": "correctness",
         "power": "0.8"},
    )  # fmt: skip
    assert "To detect a 0.5-point difference in answer correctness" in planned.content.decode()


def test_plan_study_prints_the_smallest_design_from_a_csv(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", synthetic_rows(n_items=20, n_raters=3, shift=0.5))
    out = io.StringIO()
    call_command(
        "plan_study", ratings_csv=str(path), delta=0.5, difference="question-answer",
        items="10,20,40", raters="1,3", simulations=200, stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert text.startswith("To detect a 0.5-point difference in correctness between questions")
    assert "Noether" in text and "items" in text
    out = io.StringIO()
    call_command(
        "plan_study", ratings_csv=str(path), items="10,20", raters="1,2", simulations=100,
        format="json", stdout=out,
    )  # fmt: skip
    data = json.loads(out.getvalue())
    assert data["difference"] == "systems" and data["target"] == "answer"
    assert data["item_variance"] == pytest.approx(2 * data["components"]["item_variance"])
    assert len(data["plan"]["grid"]) == 4
    with pytest.raises(CommandError, match="criterion"):
        call_command("plan_study", ratings_csv=str(path), criterion="fluency", simulations=10)


@pytest.mark.skipif(not (PILOT_DIR / "ratings.csv").is_file(), reason="pilot study not present")
def test_plan_study_on_the_pilot_study_answer_correctness() -> None:
    out = io.StringIO()
    call_command(
        "plan_study", ratings_csv=str(PILOT_DIR / "ratings.csv"), delta=0.2, raters="1,3",
        stdout=out,
    )  # fmt: skip
    first = out.getvalue().splitlines()[0]
    # Recorded in docs/pilot-study.md.
    assert first.startswith(
        "To detect a 0.2-point difference in answer correctness between two systems with 80% power"
    )
    assert "you need 300 Backgrounds rated for each system with 1 rater per item" in first
