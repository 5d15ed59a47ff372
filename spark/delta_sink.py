"""Writes each micro-batch into the Delta tables with delta-spark, exactly once, whatever crashes in between.

Spark may run a micro-batch again after a crash (its offsets were logged, its commit was
not). Every commit made here therefore records, in its userMetadata, the query's id (fixed
for the life of its checkpoint) and the batch id, and a table whose newest such commit
already holds the batch is skipped. A new checkpoint (a deliberate re-ingest) is a new query
id and never collides with an old one.

Why not Delta's own idempotent writes (txnAppId/txnVersion)? On delta-spark 4.4 looking the
key up replays the table's log in a Spark job on every write: 1-5 s per table and batch on
two cores (docs/benchmarks.md), where this costs a few file reads once at start and nothing
after. The job is the only writer of these keys, so the newest commit decides.

The tables are appended concurrently (Spark runs jobs from several threads); the trades commit
also records the watermarks after its batch. Bars are merged into bars_1m in the background
every few seconds (bars_merge.py), never before the trades they come from. A table of the
contract the job finds missing it creates with Spark, with its schema and partitioning
(lakewatch/tables.py).
"""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from lakewatch import tables
from spark import bars
from spark import stream_metrics as metrics
from spark.bars_merge import BarsMerge
from spark.parse import ParsedBatch, TopicSpec

BATCH_KEY = "lakewatch.stream_batch"  # {"query": <query id>, "batch": <batch id>}; trades' also "watermarks"
LOOKBACK_COMMITS = 200  # maintenance commits between two batch commits: at most a few
# delta-spark checkpoints a table's log every 10 commits by default: a Spark job of 1-2 s on the
# trigger's path, every 10 s for trades. Maintenance (delta-rs) checkpoints every table every
# few minutes anyway, so readers replay at most this many small JSON commits.
CHECKPOINT_INTERVAL = 100


def _actions(log_dir: Path, version: int) -> list[dict] | None:
    """A commit file's actions, or None when the table has no such version (any more)."""
    try:
        lines = (log_dir / f"{version:020d}.json").read_text().splitlines()
    except FileNotFoundError:
        return None
    return [json.loads(line) for line in lines if line.strip()]


def latest_version(log_dir: Path) -> int:
    """The table's newest version: from its last checkpoint (or 0), the last commit file that follows."""
    try:
        version = json.loads((log_dir / "_last_checkpoint").read_text())["version"]
    except FileNotFoundError:
        version = 0
    while (log_dir / f"{version + 1:020d}.json").exists():
        version += 1
    return version


def _query_commits(table_dir: Path, query: str):
    """(the batch key's value, the commit's actions) of the query's commits among the table's
    newest LOOKBACK_COMMITS versions, newest first."""
    log_dir = table_dir / "_delta_log"
    newest = latest_version(log_dir)
    for version in range(newest, max(-1, newest - LOOKBACK_COMMITS), -1):
        actions = _actions(log_dir, version) or []
        info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
        written = tables.committed_value([info], BATCH_KEY)
        if written is not None and written.get("query") == query:  # not maintenance, not another query's
            yield written, actions


def last_batch(table_dir: Path, query: str) -> int | None:
    """The newest batch id the query committed to the table, from its newest commits' userMetadata."""
    for written, _ in _query_commits(table_dir, query):
        return int(written["batch"])
    return None


def pending_trades_commits(trades_dir: Path, query: str, after: int | None) -> list[dict]:
    """The trades commits of `query` with a batch id after `after` (all of them when None), newest
    first, each with its batch id, the watermarks after it and the data files it added."""
    found = []
    for written, actions in _query_commits(trades_dir, query):
        if after is not None and int(written["batch"]) <= after:
            break
        found.append({"batch": int(written["batch"]), "watermarks": written.get("watermarks") or {},
                      "files": [a["add"]["path"] for a in actions if "add" in a]})
    return found


class DeltaSink:
    def __init__(self, spark, lake_dir, specs: list[TopicSpec], watermark_delay_s: int, bars_merge_seconds: float):
        from delta.tables import DeltaTable

        self.spark = spark
        self.lake_dir = lake_dir
        self.specs = specs
        self.delay_s = watermark_delay_s
        self.paths = {t.name: str(t.path(lake_dir)) for t in tables.STREAM_TABLES}
        # Every table of the contract, the scorer's too, so SQL shows them all from the first minute.
        for table in tables.ALL_TABLES:
            if not DeltaTable.isDeltaTable(spark, str(table.path(lake_dir))):
                self._save(table, table.schema.empty_table(), {})
        for path in self.paths.values():
            self._checkpoint_every(path, CHECKPOINT_INTERVAL)
        self.bars = DeltaTable.forPath(spark, self.paths[tables.BARS_1M.name])
        self.watermarks = self._saved_watermarks()
        self.query: str | None = None  # the query's id, known once the query started
        self.written: dict[str, int] = {}  # table -> the newest batch id committed to it by this query
        self.last_batch_id: int | None = None
        self.seconds: dict[str, float] = {}  # the last batch's write time per table
        self.pool = ThreadPoolExecutor(len(specs) + 1, thread_name_prefix="delta-append")
        self.bars_merge = BarsMerge(spark, self.paths[tables.BARS_1M.name], bars_merge_seconds, self._bars_metadata)

    def _checkpoint_every(self, path: str, commits: int) -> None:
        from deltalake import DeltaTable as LogReader  # reads the table's properties without a Spark job

        if LogReader(path).metadata().configuration.get("delta.checkpointInterval") != str(commits):
            self.spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.checkpointInterval' = '{commits}')")

    def start(self, query: str) -> None:
        """Learn what the query already committed, and merge the bars of trades committed
        without them (a crash between the two): once, before its first batch."""
        self.query = query
        for name, path in self.paths.items():
            batch = last_batch(Path(path), query)
            if batch is not None:
                self.written[name] = batch
        trades_dir = Path(self.paths[tables.TRADES.name])
        merged = self.written.get(tables.BARS_1M.name)
        if self.written.get(tables.TRADES.name, -1) > (-1 if merged is None else merged):
            pending = pending_trades_commits(trades_dir, query, merged)
            self.watermarks = self.bars_merge.recover(trades_dir, pending) or self.watermarks
            self.written[tables.BARS_1M.name] = self.written[tables.TRADES.name]
        self.bars_merge.merged = self.written.get(tables.BARS_1M.name)

    def flush(self) -> None:
        """Merge the bars still waiting (before maintenance, at the end of a backlog, at a stop)."""
        self.bars_merge.flush()
        if self.bars_merge.merged is not None:
            self.written[tables.BARS_1M.name] = self.bars_merge.merged

    def _done(self, table: tables.Table, batch_id: int) -> bool:
        return self.written.get(table.name, -1) >= batch_id

    def _metadata(self, batch_id: int, **more) -> str:
        return tables.encode_commit_value({BATCH_KEY: {"query": self.query, "batch": batch_id, **more}})

    def _bars_metadata(self, batch_id: int, watermarks: bars.Watermarks) -> str:
        return tables.encode_commit_value({BATCH_KEY: {"query": self.query, "batch": batch_id},
                                           tables.BAR_WATERMARKS_KEY: watermarks})

    def _saved_watermarks(self) -> bars.Watermarks:
        history = self.bars.history(50).select("userMetadata").collect()
        saved = tables.committed_value((row.asDict() for row in history), tables.BAR_WATERMARKS_KEY)
        if saved is not None:
            return {symbol: int(us) for symbol, us in saved.items()}
        newest = (self.spark.read.format("delta").load(self.paths[tables.BARS_1M.name])
                  .groupBy("symbol").agg({"last_trade_ts": "max"}).toArrow())
        return tables.watermarks_from_newest_bars(newest, self.delay_s)

    def _save(self, table: tables.Table, data: pa.Table, options: dict[str, str]) -> None:
        # mergeSchema: a lake written before a column joined the contract (rejects.raw_length)
        # takes it on its next append; conform() lets no other column through.
        (self.spark.createDataFrame(table.conform(data)).write.format("delta").mode("append")
         .partitionBy(*table.partition_by).option("mergeSchema", "true").options(**options)
         .save(str(table.path(self.lake_dir))))

    def _append(self, table: tables.Table, data: pa.Table, batch_id: int, **metadata) -> None:
        if len(data) == 0 or self._done(table, batch_id):
            return
        started = time.monotonic()
        self._save(table, data, {"userMetadata": self._metadata(batch_id, **metadata)})
        self.written[table.name] = batch_id
        self.seconds[table.name] = round(time.monotonic() - started, 3)
        metrics.ROWS_WRITTEN.labels(table.name).inc(len(data))

    def write(self, parsed: ParsedBatch, batch_id: int) -> dict:
        """Write one parsed batch to every table; return counts."""
        self.seconds = {}
        trades = parsed.rows[tables.TRADES.name]
        in_bar = bars.in_bar_mask(trades, self.watermarks)
        trades = trades.append_column("in_bar", in_bar)
        late = len(trades) - (pc.sum(in_bar).as_py() or 0)
        metrics.LATE_TRADES.inc(late)
        rejects = parsed.rejects
        for item in pc.value_counts(rejects["topic"]).to_pylist():
            metrics.REJECTS.labels(item["values"]).inc(item["counts"])
        # The trades commit carries the watermarks after its batch: a restart resumes from them
        # even when the batch's bars were not merged yet.
        watermarks = bars.advance(self.watermarks, trades, self.delay_s)
        appends = [(tables.TRADES, trades, {"watermarks": watermarks}), (tables.REJECTS, rejects, {}),
                   *((spec.table, parsed.rows[spec.table.name], {}) for spec in self.specs[1:])]
        for done in [self.pool.submit(self._append, table, rows, batch_id, **more) for table, rows, more in appends]:
            done.result()
        counts = {"trades": len(trades), "late": late, **{table.name: len(rows) for table, rows, _ in appends[1:]}}

        if not self._done(tables.BARS_1M, batch_id):
            self.bars_merge.add(trades.filter(in_bar), watermarks, batch_id)
        if self.bars_merge.merged is not None:
            self.written[tables.BARS_1M.name] = self.bars_merge.merged
        self.watermarks = watermarks
        self.last_batch_id = batch_id
        if watermarks:
            metrics.WATERMARK.set(max(watermarks.values()) / 1e6)
        counts["bars_merge_seconds"] = self.bars_merge.seconds  # the last merge's, in the background
        counts["write_seconds"] = self.seconds
        return counts
