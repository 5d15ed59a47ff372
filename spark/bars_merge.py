"""Merges the batches' bars into bars_1m in the background, so a batch's trades never wait for it.

A delta-spark MERGE costs about a second whatever its size: two Spark jobs (find the touched
files, rewrite them) and the new snapshot read back (docs/benchmarks.md). Run on every 1 s
trigger it made each batch late, the next one larger and later still. So a batch appends its
trades and hands its in-bar trades here; a background thread aggregates everything waiting into
bars and merges it in one commit, at most every `bars_merge_seconds`. That commit records the
newest batch it holds and the watermarks after it, as the per-batch MERGE did.

Exactly once across a crash: every trades commit records its batch id and the watermarks after
it. Trades committed whose bars were not merged yet are read back from the files of those trades
commits and merged before the query's first batch (`recover`). The merge thread has its own
Spark session, so its commit message and interpreted-code setting reach no other write.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from lakewatch import tables
from lakewatch.logs import event
from spark import bars
from spark import stream_metrics as metrics

log = logging.getLogger("spark.bars_merge")
# Spark generates and compiles code for the MERGE's projections (an expression per bars column)
# on every MERGE: 4-6 s a batch, the generated source being formatted before its cache is even
# looked up. Interpreted, the few thousand rows of a merge take milliseconds.
_INTERPRETED = {"spark.sql.codegen.factoryMode": "NO_CODEGEN"}
_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"  # the session's, which MERGE takes
_TRADE_COLUMNS = ["symbol", "asset_class", "price", "volume", "trade_ts", "kafka_offset", "in_bar"]


class BarsMerge:
    """Waiting in-bar trades, the newest batch among them, and the thread that merges them."""

    def __init__(self, spark, path: str, every_s: float, metadata):
        from delta.tables import DeltaTable

        self.session = spark.newSession()
        for key, value in _INTERPRETED.items():
            self.session.conf.set(key, value)
        self.table = DeltaTable.forPath(self.session, path)
        self.every_s = every_s
        self.metadata = metadata  # (batch id, watermarks) -> the commit's userMetadata
        self.merged: int | None = None  # the newest batch id in bars_1m
        self.seconds: float | None = None  # the last merge's time
        self.error: BaseException | None = None  # the merge that failed; every later batch fails with it
        self._lock = threading.Lock()  # guards the waiting trades
        self._merging = threading.Lock()  # one merge at a time: the thread's or a flush
        self._waiting: list[pa.Table] = []
        self._batch: int | None = None
        self._watermarks: bars.Watermarks = {}
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bars-merge", daemon=True)
        self._thread.start()

    def add(self, in_bar: pa.Table, watermarks: bars.Watermarks, batch_id: int) -> None:
        """Queue one batch's in-bar trades for the next merge. A merge that failed raises here and
        fails the batch: its trades are safe in their table, and `recover` merges them at the restart."""
        if self.error is not None:
            raise RuntimeError("merging bars into bars_1m failed") from self.error
        with self._lock:
            self._waiting.append(in_bar)
            self._batch, self._watermarks = batch_id, watermarks
        self._wake.set()

    def flush(self) -> None:
        """Merge everything waiting now: before maintenance, at the end of a backlog, at a stop."""
        if self.error is not None:
            raise RuntimeError("merging bars into bars_1m failed") from self.error
        self._merge_waiting()

    def _loop(self) -> None:
        # Trades may stop (a market closes): what waits is merged by this thread, not by the next batch.
        next_at = time.monotonic() + self.every_s
        while True:
            time.sleep(max(0.0, next_at - time.monotonic()))
            self._wake.wait()
            self._wake.clear()
            next_at = time.monotonic() + self.every_s
            try:
                self._merge_waiting()
            except BaseException as error:  # noqa: BLE001 - reported by the next batch and /health
                self.error = error
                event(log, "bars merge failed", logging.ERROR, error=str(error))
                return

    def _merge_waiting(self) -> None:
        with self._merging:
            with self._lock:
                waiting, batch, watermarks = self._waiting, self._batch, self._watermarks
                self._waiting = []
            if batch is not None and batch != self.merged:
                self.merge(pa.concat_tables(waiting), watermarks, batch)

    def merge(self, in_bar: pa.Table, watermarks: bars.Watermarks, batch_id: int) -> None:
        partial = bars.aggregate(in_bar)
        if len(partial):
            started = time.monotonic()
            self.session.conf.set(_USER_METADATA, self.metadata(batch_id, watermarks))
            (self.table.alias("t").merge(self.session.createDataFrame(tables.BARS_1M.conform(partial)).alias("s"),
                                         bars.MERGE_PREDICATE)
             .whenMatchedUpdate(set=bars.MERGE_UPDATES).whenNotMatchedInsertAll()
             .withSchemaEvolution()  # bars from before longest_silence_s
             .execute())
            self.seconds = round(time.monotonic() - started, 3)
            metrics.BARS_MERGE_SECONDS.observe(self.seconds)
            metrics.ROWS_WRITTEN.labels(tables.BARS_1M.name).inc(len(partial))
        self.merged = batch_id
        metrics.BARS_MERGED_BATCH.set(batch_id)

    def recover(self, trades_dir: Path, commits: list[dict]) -> bars.Watermarks | None:
        """Merge the bars of `commits` (trades commits of this query newer than bars_1m's newest
        batch, each {"batch", "watermarks", "files"}); return the watermarks after the newest."""
        if not commits:
            return None
        files = [trades_dir / unquote(name) for commit in commits for name in commit["files"]]
        trades = (pa.concat_tables([pq.read_table(f, columns=_TRADE_COLUMNS) for f in files]) if files
                  else tables.TRADES.schema.empty_table().select(_TRADE_COLUMNS))
        newest = max(commits, key=lambda c: c["batch"])
        self.merge(trades.filter(trades["in_bar"]), newest["watermarks"], newest["batch"])
        event(log, "bars recovered from trades", batches=sorted(c["batch"] for c in commits), trades=len(trades))
        return newest["watermarks"]

