"""Superset dashboards benchmark: time until every chart of a dashboard has its data, >= 10M trades.

The lake is bench_sql.py's (a week of synthetic trades, default 10.5M, their 1-minute bars and
one `anomalies` row per bar, today's rows in one commit per minute as a live lake has them
between maintenance runs), plus a week of headlines and the fundamentals payloads, under
var/bench/superset. Superset is started as `make up` starts it (its venv, provisioning, gunicorn)
on a free port, once on Trino (make up's engine) and once on DuckDB, the reference of the same run.

Measured per dashboard, N times after a warm-up, p50/p95/max, in three lake states: today's
700 one-minute commits never maintained (a stack whose maintenance was off all day); right
after lakewatch/maintenance.py's pass; and 10 minutes later, when the stack's next pass is due
(the last 10 minutes of bars and verdicts in one commit per minute). The goal is judged on the
two states a running stack is in (its stream and scorer maintain every table every 10 minutes):
  browser   headless Chromium opens the dashboard: from its first chart-data request until every
            chart has its data (the goal's measure), and from navigation until then (adds the
            page and Superset's JavaScript, the same for every dashboard)
  REST      every chart-data request the browser sent (the charts' and the native filters'
            value lists), POSTed to /api/v1/chart/data with force (no cache), six at a time as a
            browser sends them: the server's part, without Chromium rendering on the same 2 cores
  SQL       the same queries' SQL (Superset's result_type=query), six at a time, straight on
            sql_engine(): the reference measured in the same run, so REST/SQL is what Superset adds
Superset caches nothing (its default), so every load runs every query.
Usage: python benchmarks/bench_superset.py [--trades N] [--runs N]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake

import bench_sql
from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.maintenance import maintain
from lakewatch.service_http import healthy
from lakewatch.sql import sql_engine
from stack.services import superset
from testkit import lake as lake_module
from testkit.processes import free_port, start_trino, stop_process, wait_for
from testkit.superset_client import SupersetAPI, browser_page, chart_of

DASHBOARDS = ("market-overview", "anomalies", "news-and-fundamentals")
PARALLEL = 6  # a browser's connections per host


def add_news_and_fundamentals(settings, now: datetime) -> None:
    """A week of headlines (6 per stock per hour) and two fundamentals payloads per stock."""
    if DeltaTable(str(tables.NEWS.path(settings.lake_dir))).count():
        return
    rng = np.random.default_rng(11)
    n = 7 * 24 * 6 * len(settings.stocks)
    symbols = np.array(settings.stocks)[rng.integers(0, len(settings.stocks), n)]
    published = np.datetime64(now.replace(tzinfo=None), "us") - rng.integers(0, 7 * 86_400_000_000, n).astype(
        "timedelta64[us]")
    ts = pa.array(published, pa.timestamp("us", tz="UTC"))
    news = pa.table({
        "id": np.arange(n), "symbol": symbols, "category": np.full(n, "company"),
        "headline": [f"{s} headline {i}" for i, s in enumerate(symbols)], "summary": np.full(n, "..."),
        "source": np.full(n, "bench"), "url": [f"https://news.example.invalid/{i}" for i in range(n)],
        "image": np.full(n, ""), "related": [[s] for s in symbols], "published_at": ts, "origin": np.full(n, "bench"),
        "ingested_at": ts}).cast(tables.NEWS.schema)
    write_deltalake(str(tables.NEWS.path(settings.lake_dir)), news, mode="append")
    rows = []
    for symbol in settings.stocks:
        rows.append({"symbol": symbol, "asset_class": "stocks", "kind": "profile", "source": "bench",
                     "data": json.dumps({"name": f"{symbol} Inc", "finnhubIndustry": "Technology"})})
        rows.append({"symbol": symbol, "asset_class": "stocks", "kind": "metrics", "source": "bench",
                     "data": json.dumps({"marketCapitalization": 1e6, "peTTM": 30.0, "epsTTM": 5.0, "beta": 1.1,
                                         "52WeekHigh": 250.0, "52WeekLow": 150.0, "dividendYieldIndicatedAnnual": 0.5})})
    fundamentals = pa.Table.from_pylist([{**r, "ingested_at": now} for r in rows], schema=tables.FUNDAMENTALS.schema)
    write_deltalake(str(tables.FUNDAMENTALS.path(settings.lake_dir)), fundamentals, mode="append")


def recommit_last_minutes(settings, minutes: int) -> None:
    """The state a live lake is in `minutes` after a maintenance run: the bars (and verdicts) of
    the last minutes taken out and written back one commit per minute, as the stream and the
    scorer add them (bars_1m's merges keep it at about that many files too)."""
    for table in (tables.BARS_1M, tables.ANOMALIES):
        path = str(table.path(settings.lake_dir))
        data = DeltaTable(path).to_pyarrow_table()
        cutoff = pc.subtract(pc.max(data["window_start"]), pa.scalar(timedelta(minutes=minutes)))
        recent = data.filter(pc.greater(data["window_start"], cutoff))
        DeltaTable(path).delete(f"window_start > '{cutoff.as_py().isoformat()}'")
        for minute in sorted(set(recent["window_start"].to_pylist())):
            rows = recent.filter(pc.equal(recent["window_start"], pa.scalar(minute, recent["window_start"].type)))
            write_deltalake(path, rows, mode="append", partition_by=list(table.partition_by) or None)


def start_superset(settings) -> subprocess.Popen:
    env = {**os.environ, **superset.prepare(settings, say=lambda text: print(text.strip()))}
    log = open(settings.log_dir / "superset.log", "ab")
    proc = subprocess.Popen(superset.command(settings), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    wait_for(lambda: healthy(settings.url(settings.superset_port, "/health")), 120, "Superset", every=0.5)
    return proc


def browser_load(page, base: str, slug: str, chart_ids: set[int]) -> tuple[float, float, list[dict]]:
    """Open the dashboard once: (seconds from the first chart's data request until every chart
    has its data, seconds from navigation until then, the query contexts of every chart-data
    request it sent, the native filters' value queries included)."""
    sent: dict[int, float] = {}
    finished: dict[int, float] = {}
    bodies: list[dict] = []

    def on_request(request):
        if "/api/v1/chart/data" in request.url:
            bodies.append(request.post_data_json)
        if (chart := chart_of(request.url)) is not None:
            sent.setdefault(chart, time.perf_counter())

    def on_finished(request):
        if (chart := chart_of(request.url)) is not None:
            finished[chart] = time.perf_counter()

    page.on("request", on_request)
    page.on("requestfinished", on_finished)
    started = time.perf_counter()
    try:
        page.goto(f"{base}/superset/dashboard/{slug}/")
        while not chart_ids <= set(finished):  # Playwright delivers events only inside its own calls
            if time.perf_counter() > started + 120:
                raise AssertionError(f"not every chart of {slug} had its data within 120 s")
            page.wait_for_timeout(20)
    finally:
        page.remove_listener("request", on_request)
        page.remove_listener("requestfinished", on_finished)
    last = max(finished[c] for c in chart_ids)
    return last - min(sent[c] for c in chart_ids), last - started, bodies


def measure(api, engine, page, base: str, runs: int, title: str) -> tuple[float, float, dict[str, float]]:
    """Every dashboard, `runs` times each way; prints a table, returns the worst p95s (browser,
    REST) and each dashboard's browser p95."""
    print(f"\n{title}\n{'dashboard':<24} {'measure':<36} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
    worst_browser = worst_rest = 0.0
    per_dashboard = {}
    for slug in DASHBOARDS:
        ids = {c["id"] for c in api.get(f"/api/v1/dashboard/{slug}/charts")["result"]}
        # Warm-up, and the query contexts the dashboard really sends (its filters' defaults
        # included): REST and SQL below replay exactly these.
        _, _, contexts = browser_load(page, base, slug, ids)
        # Superset shows its SQL with a closing ';', which Trino's protocol refuses.
        sqls = [q["query"].rstrip().rstrip(";") for c in contexts
                for q in api.post("/api/v1/chart/data", {**c, "result_type": "query"}).json()["result"]]

        def rest():
            def one(context):
                response = api.post("/api/v1/chart/data", {**context, "force": True})
                assert response.status_code == 200, response.text[:300]

            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(one, contexts))

        def sql():
            def run(statement):
                with engine.connect() as con:
                    return con.exec_driver_sql(statement).fetchall()

            with ThreadPoolExecutor(PARALLEL) as pool:
                list(pool.map(run, sqls))

        def timed(fn) -> float:
            started = time.perf_counter()
            fn()
            return time.perf_counter() - started

        rest(), sql()
        loads = [browser_load(page, base, slug, ids) for _ in range(runs)]
        data_phase = bench_sql.summary([d for d, _, _ in loads])
        whole_page = bench_sql.summary([w for _, w, _ in loads])
        served = bench_sql.summary([timed(rest) for _ in range(runs)])
        direct = bench_sql.summary([timed(sql) for _ in range(runs)])
        worst_browser, worst_rest = max(worst_browser, data_phase["p95"]), max(worst_rest, served["p95"])
        per_dashboard[slug] = data_phase["p95"]
        for name, s in ((f"browser: chart data ({len(ids)} charts)", data_phase),
                        ("browser: navigation to last data", whole_page),
                        (f"REST: same {len(contexts)} requests, 6 at a time", served),
                        ("SQL on sql_engine (reference)", direct)):
            print(f"{slug:<24} {name:<36} {s['p50']:7.2f} {s['p95']:7.2f} {s['max']:7.2f}")
        print(f"{'':<24} {'REST / SQL at p50':<36} {served['p50'] / direct['p50']:6.2f}x")
    return worst_browser, worst_rest, per_dashboard


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=10_500_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    state = settings_module.load().state_dir / "bench" / "superset"
    os.environ.setdefault("LAKEWATCH_VENV_HOME", str(Path(sys.prefix).parent))
    os.environ.update({"LAKEWATCH_STATE_DIR": str(state), "LAKEWATCH_TRINO_PORT": str(free_port())})
    base_settings = settings_module.load()
    now = datetime.now(timezone.utc)
    bench_sql.ready_lake(base_settings, args.trades, now)
    tables.ensure(base_settings.lake_dir)
    add_news_and_fundamentals(base_settings, now)
    lake = base_settings.lake_dir

    def files(name: str) -> int:
        return len(DeltaTable(str(lake / name)).file_uris())

    print(f"lake: {DeltaTable(str(lake / 'trades')).count():,} trades, {DeltaTable(str(lake / 'bars_1m')).count():,} "
          f"bars, {DeltaTable(str(lake / 'anomalies')).count():,} anomalies, "
          f"{DeltaTable(str(lake / 'news')).count():,} headlines ({lake})")
    # One Superset per engine, side by side over the same lake: the Trino one (make up's) is
    # measured, the DuckDB one is the reference of the same run. Each has its own state folder
    # (metadata database, secrets) with a link to the one lake.
    stacks = {}
    try:
        for engine_name in ("trino", "duckdb"):
            folder = lake_module.state_over(state.parent / f"superset-{engine_name}", lake)
            os.environ.update({"LAKEWATCH_STATE_DIR": str(folder), "LAKEWATCH_SQL_ENGINE": engine_name,
                               "LAKEWATCH_SUPERSET_PORT": str(free_port())})
            settings = settings_module.load()
            settings.log_dir.mkdir(parents=True, exist_ok=True)
            if engine_name == "trino":
                started = time.perf_counter()
                stacks["trino-server"] = start_trino(settings)
                print(f"Trino: healthy, tables registered, in {time.perf_counter() - started:.1f} s")
            stacks[engine_name] = (settings, start_superset(settings))
        results = {}
        for state_name, prepare in (
                ("never maintained", lambda: None),
                ("right after maintenance", lambda: [maintain(DeltaTable(str(lake / n)), n,
                                                              base_settings.vacuum_retention_hours)
                                                     for n in ("trades", "bars_1m", "anomalies")]),
                ("10 minutes after maintenance", lambda: recommit_last_minutes(base_settings, 10))):
            prepare()
            if state_name == "right after maintenance":
                (base_settings.state_dir / "generated.json").unlink()  # compacted: the next run rebuilds the commits
            for engine_name in ("trino", "duckdb"):
                settings, _ = stacks[engine_name]
                base = settings.url(settings.superset_port)
                with browser_page(base) as page:
                    results[state_name, engine_name] = measure(
                        SupersetAPI(base), sql_engine(settings), page, base, args.runs,
                        f"{engine_name}, {state_name} ({files('bars_1m')} bars_1m files, {files('anomalies')} "
                        f"anomalies files):")
        print("\nbrowser p95 per dashboard, Trino against DuckDB in the same run:")
        for state_name in ("never maintained", "right after maintenance", "10 minutes after maintenance"):
            for slug in DASHBOARDS:
                trino_s, duck_s = results[state_name, "trino"][2][slug], results[state_name, "duckdb"][2][slug]
                print(f"  {state_name:<30} {slug:<24} Trino {trino_s:5.2f} s  DuckDB {duck_s:5.2f} s  "
                      f"{trino_s / duck_s:5.2f}x")
        for i, name in enumerate(("in the browser", "server (REST replay of the dashboard's requests)")):
            live = max(results["right after maintenance", "trino"][i], results["10 minutes after maintenance", "trino"][i])
            print(f"\ngoal on Trino, {name}: every dashboard's charts have their data within 3 s at p95 on a lake "
                  f"the stack maintains: {'met' if live <= 3 else 'NOT met'} (worst p95 "
                  f"{results['right after maintenance', 'trino'][i]:.2f} s right after a maintenance run, "
                  f"{results['10 minutes after maintenance', 'trino'][i]:.2f} s 10 minutes after; "
                  f"{results['never maintained', 'trino'][i]:.2f} s with a day of per-minute commits never maintained)")
    finally:
        for name, entry in stacks.items():
            stop_process(entry if name == "trino-server" else entry[1], timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
