"""Reading the lake in tests, and the stream job as a real process.

The bars check recomputes every bar from `trades` with plain SQL, independently of the
job's incremental merge, so a merge mistake cannot hide behind the code it tests.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import DeltaTable

from lakewatch import tables
from lakewatch.settings import Settings



def table(settings: Settings, name: str) -> pa.Table:
    """A table's rows; no rows (and no columns) before the job has created it."""
    path = str(settings.lake_dir / name)
    return DeltaTable(path).to_pyarrow_table() if DeltaTable.is_deltatable(path) else pa.table({})


def state_over(folder: Path, lake: Path) -> Path:
    """A state folder of its own (a server's config, metastore and logs) whose lake is a link to
    `lake`: two servers side by side read one lake without sharing anything else."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lake").unlink(missing_ok=True)
    (folder / "lake").symlink_to(lake)
    return folder


def final_bars(settings: Settings) -> int:
    """Bars at or below their symbol's watermark: the ones the scorer must score."""
    bars = DeltaTable(str(tables.BARS_1M.path(settings.lake_dir)))
    watermarks = tables.bar_watermarks(bars, settings.bar_watermark_seconds)
    frame = bars.to_pandas(columns=["symbol", "window_end"])
    end_us = frame["window_end"].dt.as_unit("us").astype("int64")
    return int((end_us <= frame["symbol"].map(watermarks)).sum())


def count(settings: Settings, name: str) -> int:
    path = settings.lake_dir / name
    return DeltaTable(str(path)).count() if DeltaTable.is_deltatable(str(path)) else 0


def run_available_now(env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "spark.stream_job", "--available-now"], env={**os.environ, **(env or {})},
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def backfill(settings: Settings, minutes: float, rate: float) -> collections.Counter:
    """Simulated history into the broker; returns the records produced per topic."""
    from ingestion import sim_feed
    from ingestion.producer import RecordProducer

    sent = collections.Counter()
    producer = RecordProducer(settings.bootstrap_servers)

    def publish(topic, record):
        sent[topic] += 1
        producer.publish(topic, record)

    sim_feed.backfill(settings, publish, days=minutes / 1440, rate=rate, progress=False, poll=producer.poll)
    assert producer.close() == 0
    return sent


def fill_with_history(settings: Settings, hours: float, rate: float) -> None:
    """Simulated history the whole way into the lake: a private broker, a backfill, one
    --available-now run of the stream job."""
    from ingestion.topics import ensure_topics
    from testkit.processes import start_kafka, stop_process

    settings.log_dir.mkdir(parents=True, exist_ok=True)
    broker = start_kafka(settings)
    try:
        ensure_topics(settings)
        backfill(settings, minutes=hours * 60, rate=rate)
        run_available_now()
    finally:
        stop_process(broker)


def start_job(env: dict | None = None, log_path=None) -> subprocess.Popen:
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        return subprocess.Popen([sys.executable, "-m", "spark.stream_job"], env={**os.environ, **(env or {})},
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    finally:
        if log_path:
            out.close()


def kill_hard(proc: subprocess.Popen) -> None:
    """kill -9 the job and everything it started (the JVM, Python workers)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def log_events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


RECOMPUTED_BARS = """
WITH minutes AS (SELECT *, time_bucket(INTERVAL 1 MINUTE, trade_ts) AS window_start FROM trades WHERE in_bar),
gaps AS (SELECT *, epoch_ms(trade_ts) - epoch_ms(lag(trade_ts) OVER (PARTITION BY symbol, window_start
                                                                      ORDER BY trade_ts)) AS gap_ms FROM minutes)
SELECT symbol, window_start,
       arg_min(price, (trade_ts, kafka_offset)) AS open, max(price) AS high, min(price) AS low,
       arg_max(price, (trade_ts, kafka_offset)) AS close, sum(volume) AS volume,
       CASE WHEN sum(volume) > 0 THEN sum(price * volume) / sum(volume) END AS vwap, count(*) AS trade_count,
       coalesce(max(gap_ms), 0) / 1e3 AS longest_silence_s
FROM gaps GROUP BY ALL
"""
BAR_FIELDS = ("open", "high", "low", "close", "volume", "vwap", "trade_count", "longest_silence_s")


def assert_bars_match_trades(settings: Settings) -> int:
    """Every bar equals its recomputation from trades (floats to 1e-9 relative); returns the bar count."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("trades", table(settings, "trades"))
    con.register("bars", table(settings, "bars_1m"))
    expected = {(r[0], r[1]): r[2:] for r in con.execute(RECOMPUTED_BARS).fetchall()}
    stored = {(r[0], r[1]): r[2:] for r in con.execute(
        f"SELECT symbol, window_start, {', '.join(BAR_FIELDS)} FROM bars").fetchall()}
    assert stored.keys() == expected.keys()
    for key, want in expected.items():
        got = stored[key]
        for name, g, w in zip(BAR_FIELDS, got, want):
            if w is None or g is None:
                assert g == w, (key, name, g, w)
            else:
                assert abs(g - w) <= 1e-9 * max(1.0, abs(w)), (key, name, g, w)
    return len(stored)
