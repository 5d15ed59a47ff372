"""Superset dashboards benchmark: time until every chart of a dashboard has its data, >= 10M trades.

The lake is bench_sql.py's (a week of synthetic trades, default 10.5M, their 1-minute bars and
one `anomalies` row per bar, today's rows in one commit per minute as a live lake has them
between maintenance runs), plus a week of headlines and the fundamentals payloads, under
var/bench/superset. Superset is started as `make up` starts it (its venv, provisioning, gunicorn)
on a free port.

Measured per dashboard, N times after a warm-up, p50/p95/max:
  browser   headless Chromium opens the dashboard; from navigation until the last chart's data
            arrived (page load, Superset's dashboard API, every chart's data query)
  REST      every chart's /api/v1/chart/<id>/data (force: no cache), six at a time as a
            browser sends them; wall time until all answered
  SQL       the same charts' SQL (from Superset's type=query answer), six at a time, straight on
            sql_engine(): the reference measured in the same run, so REST/SQL is what Superset adds
Usage: python benchmarks/bench_superset.py [--trades N] [--runs N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from deltalake import DeltaTable, write_deltalake  # noqa: E402

import bench_sql  # noqa: E402
from lakewatch import services, tables  # noqa: E402
from lakewatch import settings as settings_module  # noqa: E402
from lakewatch.sql import sql_engine  # noqa: E402
from tests.processes import free_port, stop_process, wait_for  # noqa: E402
from tests.superset_client import SupersetAPI, browser_page  # noqa: E402

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


def summary(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    return {"p50": statistics.median(ordered), "p95": ordered[int(0.95 * (len(ordered) - 1))], "max": ordered[-1]}


def start_superset(settings) -> subprocess.Popen:
    env = {**os.environ, **services.prepare_superset(settings, say=lambda text: print(text.strip()))}
    log = open(settings.log_dir / "superset.log", "ab")
    proc = subprocess.Popen(services.superset_command(settings), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    wait_for(lambda: services.http_healthy(settings.url(settings.superset_port, "/health")), 120, "Superset", every=0.5)
    return proc


def browser_load(page, base: str, slug: str, chart_ids: set[int]) -> float:
    """Seconds from navigation until every chart of the dashboard has its data."""
    finished: dict[int, float] = {}

    def done(request):
        form_data = parse_qs(urlparse(request.url).query).get("form_data")
        if "/api/v1/chart/data" in request.url and form_data:
            finished[json.loads(form_data[0]).get("slice_id")] = time.perf_counter()

    page.on("requestfinished", done)
    started = time.perf_counter()
    try:
        page.goto(f"{base}/superset/dashboard/{slug}/")
        wait_for(lambda: chart_ids <= set(finished), 120, f"every chart of {slug}", every=0.02)
    finally:
        page.remove_listener("requestfinished", done)
    return max(finished[c] for c in chart_ids) - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trades", type=int, default=10_500_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    state = settings_module.load().state_dir / "bench" / "superset"
    os.environ.update({"LAKEWATCH_STATE_DIR": str(state), "LAKEWATCH_SUPERSET_PORT": str(free_port())})
    os.environ.setdefault("LAKEWATCH_VENV_HOME", str(Path(sys.prefix).parent))
    settings = settings_module.load()
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(timezone.utc)
    bench_sql.ready_lake(settings, args.trades, now)
    tables.ensure(settings.lake_dir)
    add_news_and_fundamentals(settings, now)
    lake = settings.lake_dir
    print(f"lake: {DeltaTable(str(lake / 'trades')).count():,} trades, {DeltaTable(str(lake / 'bars_1m')).count():,} "
          f"bars, {DeltaTable(str(lake / 'anomalies')).count():,} anomalies, "
          f"{DeltaTable(str(lake / 'news')).count():,} headlines ({lake})")

    proc = start_superset(settings)
    try:
        base = settings.url(settings.superset_port)
        api = SupersetAPI(base)
        engine = sql_engine(settings)
        print(f"\n{'dashboard':<24} {'measure':<34} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
        goal_p95 = {}
        with browser_page(base) as page:
            for slug in DASHBOARDS:
                charts = api.get(f"/api/v1/dashboard/{slug}/charts")["result"]
                ids = {c["id"] for c in charts}
                sqls = [api.get(f"/api/v1/chart/{i}/data/", type="query")["result"][0]["query"] for i in ids]

                def rest():
                    with ThreadPoolExecutor(PARALLEL) as pool:
                        list(pool.map(api.chart_data, ids))

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

                browser_load(page, base, slug, ids)  # warm-up: Superset's first query per dataset reads metadata
                rest(), sql()
                browser = summary([browser_load(page, base, slug, ids) for _ in range(args.runs)])
                served = summary([timed(rest) for _ in range(args.runs)])
                direct = summary([timed(sql) for _ in range(args.runs)])
                goal_p95[slug] = browser["p95"]
                for name, s in ((f"browser ({len(ids)} charts)", browser), ("REST chart data, 6 at a time", served),
                                ("same SQL on sql_engine (reference)", direct)):
                    print(f"{slug:<24} {name:<34} {s['p50']:7.2f} {s['p95']:7.2f} {s['max']:7.2f}")
                print(f"{'':<24} {'REST / SQL at p50':<34} {served['p50'] / direct['p50']:6.2f}x")
        worst = max(goal_p95.values())
        print(f"\ngoal: every dashboard's charts have their data within 3 s at p95 (browser): "
              f"{'met' if worst <= 3 else 'NOT met'} (worst {worst:.2f} s)")
    finally:
        stop_process(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
