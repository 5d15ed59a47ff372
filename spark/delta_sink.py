"""Writes each micro-batch into the Delta tables exactly once, whatever crashes in between.

Spark may run a micro-batch again after a crash (its offsets were logged, its commit was
not). Every Delta commit made here therefore carries an application transaction
(app_id, batch_id), and a table whose recorded transaction version already reached the batch
is skipped. app_id is fixed per checkpoint folder, so a new checkpoint (a deliberate
re-ingest) never collides with an old one. Tables are written in tables.STREAM_TABLES order,
bars last: the bars commit also stores the watermark the next batch starts from.
"""
from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

from lakewatch import tables
from spark import bars
from spark import stream_metrics as metrics
from spark.parse import ParsedBatch, TopicSpec


def app_id_for(checkpoint: Path) -> str:
    """The writer id of a checkpoint folder: created with it, kept for its lifetime."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    marker = checkpoint / "lakewatch_app_id"
    if not marker.exists():
        marker.write_text(f"lakewatch-stream-{uuid.uuid4()}")
    return marker.read_text().strip()


def conform(data: pa.Table, table: tables.Table) -> pa.Table:
    return data.select(table.schema.names).cast(table.schema)


def behind_contract(delta: DeltaTable, table: tables.Table) -> bool:
    """Whether a table was written before a column joined its contract (rejects.raw_length): an
    append then has to add the column (schema_mode="merge"), or delta-rs refuses the write."""
    return bool(set(table.schema.names) - {field.name for field in delta.schema().fields})


class DeltaSink:
    def __init__(self, lake_dir: Path, app_id: str, specs: list[TopicSpec], watermark_delay_s: int):
        tables.ensure(lake_dir)
        self.app_id = app_id
        self.specs = specs
        self.delay_s = watermark_delay_s
        self.delta = {t.name: DeltaTable(str(t.path(lake_dir))) for t in tables.STREAM_TABLES}
        # Merged only while needed: the first append adds the column, later ones are plain.
        self.evolve = {t.name for t in tables.STREAM_TABLES if behind_contract(self.delta[t.name], t)}
        self.watermarks = tables.bar_watermarks(self.delta[tables.BARS_1M.name], watermark_delay_s)
        self.last_batch_id: int | None = None

    def _done(self, table: tables.Table, batch_id: int) -> bool:
        version = self.delta[table.name].transaction_version(self.app_id)
        return version is not None and version >= batch_id

    def _commit(self, batch_id: int, **metadata: str) -> CommitProperties:
        return CommitProperties(app_transactions=[Transaction(self.app_id, batch_id)], custom_metadata=metadata or None)

    def _append(self, table: tables.Table, data: pa.Table, batch_id: int) -> None:
        if len(data) == 0 or self._done(table, batch_id):
            return
        write_deltalake(self.delta[table.name], conform(data, table), mode="append",
                        partition_by=list(table.partition_by) or None, commit_properties=self._commit(batch_id),
                        schema_mode="merge" if table.name in self.evolve else None)
        self.evolve.discard(table.name)
        metrics.ROWS_WRITTEN.labels(table.name).inc(len(data))

    def _merge_bars(self, partial: pa.Table, watermarks: bars.Watermarks, batch_id: int) -> None:
        if len(partial) == 0 or self._done(tables.BARS_1M, batch_id):
            return
        (self.delta[tables.BARS_1M.name]
         .merge(partial, predicate=bars.MERGE_PREDICATE, source_alias="s", target_alias="t",
                merge_schema=True,  # bars from before longest_silence_s
                commit_properties=self._commit(batch_id, **{tables.BAR_WATERMARKS_KEY: tables.encode_commit_value(watermarks)}))
         .when_matched_update(updates=bars.MERGE_UPDATES)
         .when_not_matched_insert_all()
         .execute())
        metrics.ROWS_WRITTEN.labels(tables.BARS_1M.name).inc(len(partial))

    def write(self, parsed: ParsedBatch, batch_id: int) -> dict:
        """Write one parsed batch to every table; return counts."""
        trades = parsed.rows[tables.TRADES.name]
        in_bar = bars.in_bar_mask(trades, self.watermarks)
        trades = trades.append_column("in_bar", in_bar)
        late = len(trades) - (pc.sum(in_bar).as_py() or 0)
        metrics.LATE_TRADES.inc(late)
        self._append(tables.TRADES, trades, batch_id)
        counts = {"trades": len(trades), "late": late}

        rejects = parsed.rejects
        for item in pc.value_counts(rejects["topic"]).to_pylist():
            metrics.REJECTS.labels(item["values"]).inc(item["counts"])
        self._append(tables.REJECTS, rejects, batch_id)
        counts["rejects"] = len(rejects)

        for spec in self.specs[1:]:
            rows = parsed.rows[spec.table.name]
            self._append(spec.table, rows, batch_id)
            counts[spec.table.name] = len(rows)

        watermarks = bars.advance(self.watermarks, trades, self.delay_s)
        partial = bars.aggregate(trades.filter(in_bar))
        self._merge_bars(partial, watermarks, batch_id)
        counts["bars"] = len(partial)
        self.watermarks = watermarks
        self.last_batch_id = batch_id
        if watermarks:
            metrics.WATERMARK.set(max(watermarks.values()) / 1e6)
        return counts
