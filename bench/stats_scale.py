"""Benchmark: the stats report on 1,000,000 ratings, and alpha against the krippendorff package.

Design: 100,000 items x 5 raters (drawn from a pool of 20, so the items x raters matrix is
incomplete) x 2 targets x 1 criterion, 1-5 scale. Times (a) reading and validating the CSV,
(b) the whole report (Wilcoxon, Hodges-Lehmann, sign-flip test, alpha x 3 levels, alpha's
1,000-resample bootstrap CI, Fleiss, Gwet, per-rater agreement) and (c) ordinal alpha alone
against ``krippendorff.alpha`` on the same matrix, in the same process.

Then (issue 14) the system comparison and the study planner: 1,000,000 ratings of 4 systems on
25,000 shared Backgrounds (100,000 items x 5 raters x 2 targets x 1 criterion): (d) the whole
report with the system comparison (Friedman, Kendall's W, 6 Holm-adjusted pairwise Wilcoxon
tests per cell, question vs answer per system) and the comparison alone, (e) the planner's
variance components and its default grid (17 item counts x 8 rater counts, 1,000 simulations
per design point).

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/stats_scale.py [--items 100000] [--only systems]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats.agreement import bootstrap_alpha, krippendorff_alpha, value_counts
from stats.ratings import Scale, read_ratings_csv
from stats.report import ReportSettings, build_report
from stats.study_plan import plan_from_table
from stats.system_report import SystemLabels, compare_table_systems


def make_csv(path: Path, n_items: int, n_raters: int, pool: int, seed: int) -> None:
    """Write the synthetic long-format CSV (questions ~0.3 points better than answers)."""
    rng = np.random.default_rng(seed)
    raters = np.argsort(rng.random((n_items, pool)), axis=1)[:, :n_raters]
    quality = rng.normal(3.0, 0.8, size=n_items)
    severity = rng.normal(0.0, 0.3, size=pool)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("rater,item,target,criterion,score\n")
        for target, shift in (("question", 0.3), ("answer", 0.0)):
            latent = quality[:, None] + shift + severity[raters]
            scores = np.clip(np.rint(latent + rng.normal(0, 0.7, latent.shape)), 1, 5).astype(int)
            items = np.repeat(np.arange(n_items), n_raters)
            lines = [
                f"r{r},i{i},{target},correctness,{s}\n"
                for r, i, s in zip(raters.ravel(), items, scores.ravel(), strict=True)
            ]
            fh.writelines(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--raters-per-item", type=int, default=5)
    parser.add_argument("--pool", type=int, default=20)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--systems", type=int, default=4, help="systems in the systems part")
    parser.add_argument("--simulations", type=int, default=1000, help="planner, per design")
    parser.add_argument("--only", choices=["report", "systems"], help="run one part")
    args = parser.parse_args()
    if args.only != "systems":
        bench_report(args)
    if args.only != "report":
        bench_systems(args)


def make_system_csv(path: Path, n_items: int, n_systems: int, n_raters: int, seed: int) -> None:
    """Items of n_systems systems on n_items / n_systems shared Backgrounds (system s is
    0.1 s points better; a Background's difficulty is shared by its systems)."""
    rng = np.random.default_rng(seed)
    n_blocks = n_items // n_systems
    pool = 20
    background = rng.normal(3.0, 0.6, size=n_blocks)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("rater,item,target,criterion,score\n")
        for s in range(n_systems):
            quality = background + 0.1 * s + rng.normal(0, 0.4, size=n_blocks)
            raters = np.argsort(rng.random((n_blocks, pool)), axis=1)[:, :n_raters]
            items = np.repeat(np.arange(n_blocks), n_raters)
            for target, shift in (("question", 0.3), ("answer", 0.0)):
                latent = quality[:, None] + shift
                noise = rng.normal(0, 0.7, (n_blocks, n_raters))
                scores = np.clip(np.rint(latent + noise), 1, 5).astype(int)
                fh.writelines(
                    f"r{r},s{s}b{b},{target},correctness,{v}\n"
                    for r, b, v in zip(raters.ravel(), items, scores.ravel(), strict=True)
                )


def bench_systems(args: argparse.Namespace) -> None:
    k = args.systems
    n_items = args.items // k * k
    n_ratings = n_items * args.raters_per_item * 2
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "systems.csv"
        make_system_csv(path, n_items, k, args.raters_per_item, seed=1)
        table = read_ratings_csv(path, Scale(1, 5))
    print(
        f"\nsystems: {n_ratings:,} ratings, {k} systems x {n_items // k:,} Backgrounds, "
        f"{args.raters_per_item} raters per item"
    )
    block = {name: name.split("b", 1)[1] for name in table.items}
    system = {name: name.split("b", 1)[0] for name in table.items}
    labels = SystemLabels(block, system)
    t0 = time.perf_counter()
    systems = compare_table_systems(table, labels)
    t_cmp = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = build_report(table, ReportSettings(n_bootstrap=args.bootstrap), labels=labels)
    t_report = time.perf_counter() - t0
    assert systems is not None and report.systems is not None
    print(f"system comparison alone (block means, Friedman, pairs, q-vs-a): {t_cmp:6.2f} s")
    print(f"whole report with the system comparison: {t_report:6.2f} s")
    for c in systems.comparisons:
        fr = c.friedman
        assert fr is not None
        print(
            f"  {c.target:<9} Friedman chi2 = {fr.statistic:.1f}, p = {fr.p_value:.3g}, "
            f"W = {fr.kendall_w:.4f} on {fr.n_blocks:,} blocks; means "
            + ", ".join(f"{x.system} {x.mean:.3f}" for x in c.summaries)
        )
    t0 = time.perf_counter()
    plan = plan_from_table(
        table, "correctness", 0.2, n_simulations=args.simulations, difference="systems"
    )
    t_plan = time.perf_counter() - t0
    n_designs = len(plan.plan.grid)
    rec = plan.plan.recommended
    print(
        f"planner: variance components + {n_designs} designs x {args.simulations} simulations: "
        f"{t_plan:6.2f} s ({t_plan / n_designs * 1000:.0f} ms per design point; "
        f"{'under' if t_plan < 30 else 'OVER'} the 30 s budget)"
    )
    if rec is not None:
        print(f"  recommended: {rec.n_items} items x {rec.n_raters} raters, power {rec.power:.3f}")


def bench_report(args: argparse.Namespace) -> None:
    n_ratings = args.items * args.raters_per_item * 2
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(f"threads: OMP_NUM_THREADS={threads}, cpus={os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ratings.csv"
        t0 = time.perf_counter()
        make_csv(path, args.items, args.raters_per_item, args.pool, seed=0)
        print(f"generated {n_ratings:,} ratings in {time.perf_counter() - t0:.2f} s")

        t0 = time.perf_counter()
        table = read_ratings_csv(path, Scale(1, 5))
        t_read = time.perf_counter() - t0
        t0 = time.perf_counter()
        report = build_report(table, ReportSettings(n_bootstrap=args.bootstrap))
        t_report = time.perf_counter() - t0
    total = t_read + t_report
    print(f"read + validate CSV: {t_read:6.2f} s")
    print(f"report ({args.bootstrap} bootstrap resamples per cell): {t_report:6.2f} s")
    print(f"total: {total:6.2f} s  ({'under' if total < 10 else 'OVER'} the 10 s budget)")
    c = report.comparisons[0]
    print(
        f"  W = {c.wilcoxon.statistic:.1f}, p = {c.wilcoxon.p_value:.3g} ({c.wilcoxon.method}), "
        f"r_rb = {c.wilcoxon.rank_biserial:.3f}, HL = {c.hodges_lehmann.estimate:.3f} "
        f"[{c.hodges_lehmann.ci_low:.3f}, {c.hodges_lehmann.ci_high:.3f}]"
    )
    for row in report.agreement:
        r = row.result
        print(
            f"  {row.target:<9} alpha ordinal {r.alpha_ordinal:.4f} "
            f"[{r.alpha_ordinal_ci.low:.4f}, {r.alpha_ordinal_ci.high:.4f}], "
            f"Fleiss {r.fleiss.kappa:.4f}, AC2 {r.gwet_ac2.coefficient:.4f}"
        )

    # Alpha alone against the krippendorff package on the same items x raters matrix.
    import krippendorff

    matrix = table.matrix("answer", "correctness")  # items x raters, NaN where not rated
    domain = np.arange(1, 6)
    t0 = time.perf_counter()
    ours = krippendorff_alpha(matrix, domain, "ordinal")
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    theirs = krippendorff.alpha(
        reliability_data=matrix.T, level_of_measurement="ordinal", value_domain=domain
    )
    t_theirs = time.perf_counter() - t0
    print(
        f"ordinal alpha on a {matrix.shape[0]:,} x {matrix.shape[1]} matrix: "
        f"convgen {t_ours * 1000:.0f} ms, krippendorff {t_theirs * 1000:.0f} ms "
        f"(ratio {t_theirs / t_ours:.1f}x), |difference| = {abs(ours - theirs):.1e}"
    )
    t0 = time.perf_counter()
    boot = bootstrap_alpha(value_counts(matrix, domain), domain, "ordinal", args.bootstrap)
    t_boot = time.perf_counter() - t0
    print(
        f"{args.bootstrap}-resample unit bootstrap of ordinal alpha: convgen {t_boot:.2f} s "
        f"[{boot.low:.4f}, {boot.high:.4f}]; calling krippendorff.alpha per resample would take "
        f"~{t_theirs * args.bootstrap:.0f} s (ratio ~{t_theirs * args.bootstrap / t_boot:.0f}x)"
    )


if __name__ == "__main__":
    main()
