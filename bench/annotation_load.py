"""Load test of the rating API: simulated raters over HTTP against gunicorn + PostgreSQL.

Creates its own database (convgen_bench) on 127.0.0.1:5432, a study of 10,000 items with k = 3
and 50 raters with API tokens, starts gunicorn on 127.0.0.1, and lets every rater loop
GET /api/studies/<slug>/next/ -> POST /api/assignments/<id>/ratings/ (5% of submits are sent
twice with the same key, like a retry after a lost response). A second, small study with the same
50 raters is rated to the end, so that every item is fought over until it has its k ratings.
Afterwards the database is checked: no lost or duplicate ratings, no item over k, counters exact.
The baseline is /healthz/ (one SELECT 1 through the same gunicorn) under the same concurrency.

Run: .venv/bin/python bench/annotation_load.py [--raters 50 --items 10000 --k 3 --per-rater 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
PG_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@dataclass
class Stats:
    """Latencies (seconds) per request kind, and every problem seen."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    submitted: dict[int, list[int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def reset_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_data(n_items: int, k: int, n_raters: int, small_items: int) -> list[str]:
    """Migrate, create the two studies and the raters; returns the raters' API tokens."""
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from annotation.items import ItemRow
    from annotation.studies import StudySpec, create_study
    from convgen_site.roles import RATER, add_role

    call_command("migrate", verbosity=0)
    for slug, count in (("load", n_items), ("contention", small_items)):
        rows = [
            ItemRow(
                external_id=f"{slug}-{i}",
                background=f"Background {i}: " + "the river flows north. " * 8,
                question=f"Which way does river {i} flow?",
                answer="North, through the valley.",
                source="model-a" if i % 2 else "reference",
            )
            for i in range(count)
        ]
        create_study(StudySpec(title=slug, slug=slug, raters_per_item=k, seed=1), rows)
    tokens = []
    for i in range(n_raters):
        user = User.objects.create_user(f"bench-rater-{i:02d}")
        add_role(user, RATER)
        tokens.append(Token.objects.create(user=user).key)
    from django.db import connection

    with connection.cursor() as cursor:
        # Fresh planner statistics, as autovacuum would have them on a live database.
        cursor.execute("ANALYZE")
    return tokens


def start_gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> Any:
    command = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "convgen_site.wsgi:application",
        "--bind",
        f"{HOST}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=2)
            conn.request("GET", "/healthz/")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise SystemExit("gunicorn did not come up within 30 s")


def stop_gunicorn(process: Any) -> None:
    os.killpg(process.pid, signal.SIGTERM)  # our own session: gunicorn and its workers only
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def _request(
    conn: http.client.HTTPConnection, method: str, path: str, headers: dict, body: str | None
) -> tuple[int, bytes, float]:
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    return response.status, data, time.perf_counter() - start


def healthz_loop(port: int, count: int, stats: Stats) -> None:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    for _ in range(count):
        status, _, seconds = _request(conn, "GET", "/healthz/", {}, None)
        if status != 200:
            stats.error(f"healthz {status}")
        stats.add("healthz", seconds)
    conn.close()


def rater_loop(
    port: int,
    token: str,
    slug: str,
    max_items: int,
    deadline: float,
    retry_fraction: float,
    stats: Stats,
    seed: int,
    think: float = 0.0,
) -> int:
    """One rater: next -> ratings until done, `max_items` or the deadline; returns items rated."""
    rng = random.Random(seed)
    headers = {
        "Authorization": f"Token {token}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    conn = http.client.HTTPConnection(HOST, port, timeout=60)
    rated = 0
    if think:
        time.sleep(rng.uniform(0, think))  # raters do not all arrive in the same millisecond
    while rated < max_items and time.monotonic() < deadline:
        try:
            status, body, seconds = _request(
                conn, "GET", f"/api/studies/{slug}/next/?progress=1", headers, None
            )
            stats.add("next", seconds)
            if status == 404:
                break
            if status != 200:
                stats.error(f"next {status}: {body[:200]!r}")
                continue
            assignment_id = json.loads(body)["id"]
            scores = [rng.randint(1, 3) for _ in range(4)]
            payload = json.dumps(
                {
                    "ratings": [
                        {"target": t, "criterion": c, "score": s}
                        for (t, c), s in zip(
                            [
                                ("question", "correctness"),
                                ("question", "creativity"),
                                ("answer", "correctness"),
                                ("answer", "creativity"),
                            ],
                            scores,
                            strict=True,
                        )
                    ],
                    "submission_key": f"{assignment_id}-once",
                    "time_spent_ms": rng.randint(2000, 20000),
                }
            )
            path = f"/api/assignments/{assignment_id}/ratings/"
            status, body, seconds = _request(conn, "POST", path, headers, payload)
            stats.add("submit", seconds)
            if status != 201:
                stats.error(f"submit {status}: {body[:200]!r}")
                continue
            if rng.random() < retry_fraction:
                status, body, seconds = _request(conn, "POST", path, headers, payload)
                stats.add("retry", seconds)
                if status != 200:
                    stats.error(f"retry {status}: {body[:200]!r}")
            with stats.lock:
                stats.submitted[assignment_id] = scores
            rated += 1
            if think:
                time.sleep(rng.uniform(0.5, 1.5) * think)  # reading time, jittered
        except (OSError, http.client.HTTPException) as exc:
            stats.error(f"connection: {exc!r}")
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=60)
    conn.close()
    return rated


def server_cpu_seconds(gunicorn_pid: int, database: str) -> tuple[float, dict[int, float]]:
    """CPU seconds used so far by gunicorn (master + workers), and per backend of this database."""
    import psutil

    def cpu(proc: Any) -> float:
        try:
            times = proc.cpu_times()
            return float(times.user + times.system)
        except psutil.Error:
            return 0.0

    master = psutil.Process(gunicorn_pid)
    app = cpu(master) + sum(cpu(child) for child in master.children(recursive=True))
    db: dict[int, float] = {}
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if cmdline.startswith("postgres:") and f" {database} " in f"{cmdline} ":
            db[proc.pid] = cpu(proc)
    return app, db


def run_phase(threads: list[threading.Thread]) -> float:
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def verify(slug: str, k: int, submitted: dict[int, list[int]]) -> dict[str, int]:
    """Compare what the clients were told was stored with what the database holds."""
    from django.db.models import Count, Q

    from annotation.models import Assignment, Item, Rating

    expected_keys = [
        ("question", "correctness"),
        ("question", "creativity"),
        ("answer", "correctness"),
        ("answer", "creativity"),
    ]
    stored: dict[int, dict[tuple[str, str], int]] = {}
    for aid, target, criterion, score in Rating.objects.filter(
        assignment__item__study__slug=slug
    ).values_list("assignment_id", "target", "criterion", "score"):
        stored.setdefault(aid, {})[(target, criterion)] = score
    lost = sum(
        1
        for aid, scores in submitted.items()
        if [stored.get(aid, {}).get(key) for key in expected_keys] != scores
    )
    completed = Assignment.objects.filter(item__study__slug=slug, status="completed").count()
    ratings = Rating.objects.filter(assignment__item__study__slug=slug).count()
    items = Item.objects.filter(study__slug=slug).annotate(
        real=Count("assignments", filter=Q(assignments__status="completed")),
        leases=Count("assignments", filter=Q(assignments__status="leased")),
    )
    over_k = items.filter(real__gt=k).count()
    wrong_counter = sum(
        1 for i in items if i.real != i.completed_count or i.leases != i.leased_count
    )
    exact_k = items.filter(real=k).count()
    return {
        "submitted": len(submitted),
        "completed_in_db": completed,
        "lost": lost,
        "duplicate_ratings": ratings - 4 * completed,
        "phantom_completions": completed - len(submitted),
        "items_over_k": over_k,
        "wrong_counters": wrong_counter,
        "items_with_exactly_k": exact_k,
    }


def describe(name: str, values: list[float]) -> str:
    return (
        f"{name:8s} n={len(values):6d}  p50={percentile(values, 50) * 1000:7.1f} ms  "
        f"p95={percentile(values, 95) * 1000:7.1f} ms  p99={percentile(values, 99) * 1000:7.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--per-rater", type=int, default=60, help="items each rater rates")
    parser.add_argument("--contention-items", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=240, help="time bound of each phase")
    parser.add_argument("--retry-fraction", type=float, default=0.05)
    parser.add_argument(
        "--think-ms", type=float, default=0, help="mean pause per item (0 = closed loop, flat out)"
    )
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--port", type=int, default=18765)
    parser.add_argument("--database", default="convgen_bench")
    parser.add_argument("--keep-database", action="store_true")
    args = parser.parse_args()

    var_dir = tempfile.mkdtemp(prefix="convgen-bench-")
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.database}",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-secret-key-not-for-production-0123456789",
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "SECURE_HSTS_SECONDS": "0",
        "CONVGEN_VAR_DIR": var_dir,
        "LOG_LEVEL": "ERROR",  # 404 at the end of a study is expected, not news
        "DJANGO_SETTINGS_MODULE": "convgen_site.settings",
    }
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))

    reset_database(args.database)
    t0 = time.perf_counter()
    tokens = setup_data(args.items, args.k, args.raters, args.contention_items)
    print(
        f"setup: {args.items} + {args.contention_items} items, {args.raters} raters "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    from django.db import connections

    connections.close_all()
    server = start_gunicorn(env, args.port, args.workers, args.threads)
    try:
        base = Stats()
        per_thread = max(1, (args.raters * args.per_rater * 2) // args.raters)
        base_before = server_cpu_seconds(server.pid, args.database)[0]
        base_time = run_phase(
            [
                threading.Thread(target=healthz_loop, args=(args.port, per_thread, base))
                for _ in range(args.raters)
            ]
        )
        base_cpu = server_cpu_seconds(server.pid, args.database)[0] - base_before
        results: dict[str, Any] = {}
        for slug, per_rater in (("load", args.per_rater), ("contention", 10**9)):
            stats = Stats()
            deadline = time.monotonic() + args.seconds
            threads = [
                threading.Thread(
                    target=rater_loop,
                    args=(args.port, token, slug, per_rater, deadline, args.retry_fraction),
                    kwargs={"stats": stats, "seed": i, "think": args.think_ms / 1000},
                )
                for i, token in enumerate(tokens)
            ]
            cpu_before = server_cpu_seconds(server.pid, args.database)
            elapsed = run_phase(threads)
            cpu_after = server_cpu_seconds(server.pid, args.database)
            # Backends that exit during the phase are missed: the database figure is a floor.
            db_cpu = sum(v - cpu_before[1].get(pid, 0.0) for pid, v in cpu_after[1].items())
            cpu = (cpu_after[0] - cpu_before[0], db_cpu)
            results[slug] = (stats, elapsed, cpu)
    finally:
        stop_gunicorn(server)

    healthz = base.latencies.get("healthz", [])
    print(
        f"\nbaseline /healthz/: {len(healthz)} requests, {args.raters} clients, "
        f"{len(healthz) / base_time:.0f} req/s"
    )
    print(describe("healthz", healthz))
    if healthz:
        print(f"  server CPU per request: gunicorn {base_cpu / len(healthz) * 1000:.1f} ms")
    failed = bool(base.errors)
    for slug, (stats, elapsed, cpu) in results.items():
        requests = sum(len(v) for v in stats.latencies.values())
        print(
            f"\nphase {slug}: {len(stats.submitted)} items rated by {args.raters} raters in "
            f"{elapsed:.1f} s: {requests / elapsed:.0f} req/s, "
            f"{len(stats.submitted) / elapsed:.0f} rating sets/s"
        )
        for kind in ("next", "submit", "retry"):
            if stats.latencies.get(kind):
                print(describe(kind, stats.latencies[kind]))
        if requests:
            print(
                f"  server CPU per request: gunicorn {cpu[0] / requests * 1000:.1f} ms, "
                f"postgres >= {cpu[1] / requests * 1000:.1f} ms"
            )
        for kind in ("next", "submit"):
            values = stats.latencies.get(kind, [])
            if values and healthz:
                print(
                    f"  {kind} p95 / healthz p95 = "
                    f"{percentile(values, 95) / percentile(healthz, 95):.1f}x"
                )
        checks = verify(slug, args.k, stats.submitted)
        print(f"  errors={len(stats.errors)} " + " ".join(f"{k}={v}" for k, v in checks.items()))
        for text in stats.errors[:5]:
            print("   ", text)
        bad = (
            stats.errors
            or checks["lost"]
            or checks["duplicate_ratings"]
            or checks["phantom_completions"]
            or checks["items_over_k"]
            or checks["wrong_counters"]
        )
        everyone = min(args.raters, args.k) == args.k
        if (
            slug == "contention"
            and everyone
            and checks["items_with_exactly_k"] != args.contention_items
        ):
            print("  not every contention item reached k (time bound hit?)")
            bad = True
        failed = failed or bool(bad)
        if slug == "load":
            p95 = max(percentile(stats.latencies.get(k, []), 95) for k in ("next", "submit"))
            print(
                f"  target p95 < 100 ms: {'met' if p95 < 0.1 else 'NOT met'} ({p95 * 1000:.0f} ms)"
            )

    connections.close_all()
    if not args.keep_database:
        drop_database(args.database)
    print("\nRESULT:", "FAIL" if failed else "OK")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
