"""Benchmark: `modeling.oig.prepare` against the original project's `datasets` recipe.

Input: a generated OIG-like file (`modeling.synthetic`, no malformed lines because the baseline's
`load_dataset("json")` aborts on the first one), 232,000 lines by default with 1-3 KB passages,
cached under var/bench/. Both pipelines read the same file and write JSON lines.

Baseline (the original notebook and training script, reproduced faithfully, no tokenizer):
``load_dataset("json", data_files=...)`` -> ``.filter(text.startswith("Background:"))`` ->
``.map(setup)`` (split once on "<human>:", drop the "Background:" prefix, the emoji and
``http.+?`` regex substitutions) -> ``.map(format_prompt)`` (the Background/question/answer
prompt of ``generate_and_tokenize_prompt``; its per-record tokenizer call is left out because
ours also runs without one) -> ``.to_json()``. It has no cleaning, dedupe, split or manifest.

Ours: the full `prepare` (parse every turn, clean, NFC, exact + MinHash near-dup, split,
hashes, manifest). Throughput is timed in this process right before the baseline; peak RSS is
measured for ours in fresh subprocesses (ru_maxrss) at a quarter and the whole file, so the
baseline's memory does not pollute it and the growth with input size is visible.

Run: OMP_NUM_THREADS=1 .venv/bin/python bench/prepare_data.py [--lines 232000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modeling.oig.prepare import effective_workers  # noqa: E402
from modeling.oig.prepare import prepare as prepare_data  # noqa: E402
from modeling.synthetic import write_synthetic_oig  # noqa: E402

SENTENCES = (16, 40)  # English passages of about 1.5-4 KB; the real file averages ~2.5 KB/line

# VmHWM (this process's own peak RSS), not ru_maxrss: Linux carries ru_maxrss across
# fork+exec, so a child of a process that ran `datasets` would report the parent's peak.
# Worker processes (if any) are measured separately through RUSAGE_CHILDREN... but that one is
# inherited too, so their peak is read from /proc while they run by the sampler thread below.
_RSS_CHILD = """
import json, sys, threading, time
import psutil
sys.path.insert(0, sys.argv[1])
from modeling.oig.prepare import prepare

def hwm_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

before = hwm_kb()
me = psutil.Process()
peak_children = 0
done = threading.Event()

def sample():
    global peak_children
    while not done.wait(0.05):
        try:
            kids = sum(c.memory_info().rss for c in me.children(recursive=True))
        except psutil.Error:
            continue
        peak_children = max(peak_children, kids)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
t0 = time.perf_counter()
r = prepare(sys.argv[2], sys.argv[3], limit=int(sys.argv[4]) or None, overwrite=True,
            workers=int(sys.argv[5]))
elapsed = time.perf_counter() - t0
done.set()
print(json.dumps({"peak_kb": hwm_kb(), "import_kb": before, "children_kb": peak_children // 1024,
                  "seconds": elapsed, "lines": r.lines_read, "kept": r.kept}))
"""


def bench_file(lines: int, seed: int) -> Path:
    """The generated input, written once per (lines, seed) and reused."""
    path = ROOT / "var" / "bench" / f"oig_synthetic_{lines}_s{seed}.jsonl"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        write_synthetic_oig(tmp, lines, seed, malformed_rate=0.0, sentences=SENTENCES)
        tmp.rename(path)
        print(f"generated {path} in {time.perf_counter() - t0:.1f}s")
    return path


def run_baseline(path: Path, workdir: Path) -> tuple[float, int]:
    """The original recipe; returns (seconds, records written)."""
    from datasets import disable_progress_bars, load_dataset

    disable_progress_bars()

    def setup(data: dict[str, Any]) -> dict[str, str]:
        conversation = data["text"].split("<human>:", 1)
        conversation[1] = "<human>:" + conversation[1]
        conversation[0] = conversation[0][11:]
        conversation[0] = re.sub("😃🧘😂🌍🍞🚗📞🎉❤🍆👨👩👧", "", conversation[0])
        conversation[1] = re.sub("http.+?", "", conversation[1])
        return {"Background:": conversation[0], "<human>:_<bot>:": conversation[1]}

    def generate_prompt(inputs: str, label: str) -> str:
        # The Prompter template of the original training script: Background, then the turns.
        return f"Background: {inputs}\n{label}"

    def format_prompt(data_point: dict[str, Any]) -> dict[str, Any]:
        full_prompt = generate_prompt(data_point["Background:"], data_point["<human>:_<bot>:"])
        return {"prompt": full_prompt, "length": len(full_prompt)}

    # A fresh cache dir each time: a warm datasets cache would skip the JSON -> Arrow step
    # and the map/filter work (cached by fingerprint), which no first run can do.
    cache = Path(tempfile.mkdtemp(prefix="hf-cache-", dir=workdir))
    t0 = time.perf_counter()
    data = load_dataset("json", data_files=str(path), cache_dir=str(cache))
    train = data["train"].filter(lambda x: x["text"].startswith("Background:"))
    train = train.map(setup)
    train = train.map(format_prompt)
    train.to_json(str(workdir / "baseline.jsonl"))
    return time.perf_counter() - t0, len(train)


def rss_of_ours(path: Path, out: Path, limit: int, workers: int) -> dict[str, Any]:
    """Run prepare in a fresh interpreter and return its peak RSS and timing."""
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            _RSS_CHILD,
            str(ROOT),
            str(path),
            str(out),
            str(limit),
            str(workers),
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def timed(fn: Any) -> tuple[float, float, Any]:
    """(wall seconds, CPU seconds of this process and its finished children, result)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c0, t0 = time.process_time(), time.perf_counter()
    result = fn()
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    children = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return wall, time.process_time() - c0 + children, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=232_000, help="lines in the generated file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes for the second run of ours (default: one per CPU)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="alternate the runs N times and keep each best"
    )
    args = parser.parse_args()
    workers = effective_workers(args.workers)
    print(f"cpus: {os.cpu_count()}, workers for ours: {workers}, load: {os.getloadavg()[0]:.1f}")

    path = bench_file(args.lines, args.seed)
    size_mb = path.stat().st_size / 1e6
    print(f"input: {args.lines} lines, {size_mb:.0f} MB ({size_mb * 1e6 / args.lines:.0f} B/line)")
    runs: dict[str, Any] = {"ours, 1 process": lambda w: ours(w, 0)}
    if workers > 0:
        runs[f"ours, {workers} workers"] = lambda w: ours(w, workers)
    if not args.skip_baseline:
        runs["baseline (datasets)"] = lambda w: run_baseline(path, w)
    best: dict[str, tuple[float, float]] = {}
    records: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bench-prepare-") as tmp:
        work = Path(tmp)

        def ours(w: Path, n: int) -> Any:
            return prepare_data(path, w / "ours", overwrite=True, workers=n)

        for _ in range(max(1, args.repeat)):
            for label, run in runs.items():
                wall, cpu, result = timed(lambda run=run: run(work))
                old = best.get(label, (float("inf"), float("inf")))
                best[label] = (min(old[0], wall), min(old[1], cpu))
                records[label] = result[1] if isinstance(result, tuple) else result.kept
                if not isinstance(result, tuple):
                    summary = result.summary()
        print(f"  ours: {summary}")
        for label, (wall, cpu) in best.items():
            print(
                f"{label:20s}: {wall:7.2f}s wall {cpu:7.2f}s CPU  {args.lines / wall:8.0f} lines/s"
                f"  {records[label] / wall:8.0f} records/s ({records[label]} records)"
            )
        if "baseline (datasets)" in best:
            base_wall, base_cpu = best["baseline (datasets)"]
            for label, (wall, cpu) in best.items():
                if label.startswith("ours"):
                    print(
                        f"speed-up of {label}: {base_wall / wall:.2f}x wall, "
                        f"{base_cpu / cpu:.2f}x CPU (target >= 2x)"
                    )
        rows = [
            ("1/4 file", rss_of_ours(path, work / "rss-quarter", args.lines // 4, 0)),
            ("whole file", rss_of_ours(path, work / "rss-whole", 0, 0)),
        ]
        if workers > 0:
            rows.append((f"whole, {workers}w", rss_of_ours(path, work / "rss-w", 0, workers)))
        for label, row in rows:
            kids = (
                f", workers {row['children_kb'] / 1024:.0f} MB total" if row["children_kb"] else ""
            )
            print(
                f"ours peak RSS, {label:11s}: {row['peak_kb'] / 1024:6.1f} MB{kids} "
                f"(after imports {row['import_kb'] / 1024:.1f} MB; {row['lines']} lines, "
                f"{row['kept']} kept, {row['seconds']:.1f}s in a fresh process)"
            )
        whole = rows[1][1]["peak_kb"]
        print(f"peak RSS target (< 300 MB, 1 process): {'met' if whole < 300 * 1024 else 'MISSED'}")


if __name__ == "__main__":
    main()
