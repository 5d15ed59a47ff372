"""The Delta tables of the lake: names, schemas and partitioning, in one place.

The stream job writes most of them and the scorer writes `anomalies`; the SQL surface,
Superset and the bot read them all (schema `market`), so the schemas here are the contract.
docs/tables.md describes every column. Every table is created empty when the stream job
starts, so readers (and the curated SQL views over them) work before the first row lands.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class Table:
    name: str
    schema: pa.Schema
    partition_by: tuple[str, ...] = ()

    def path(self, lake_dir: Path) -> Path:
        return lake_dir / self.name

    def conform(self, data: pa.Table) -> pa.Table:
        """`data` with exactly this table's columns, in its order and types."""
        return data.select(self.schema.names).cast(self.schema)


TRADES = Table("trades", pa.schema([
    ("symbol", pa.string()), ("asset_class", pa.string()), ("price", pa.float64()), ("volume", pa.float64()),
    ("trade_ts", TS), ("conditions", pa.list_(pa.string())), ("source", pa.string()),
    ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()), ("ingested_at", TS),
    ("in_bar", pa.bool_()), ("trade_date", pa.date32()),
]), partition_by=("trade_date",))

REJECTS = Table("rejects", pa.schema([
    ("topic", pa.string()), ("kafka_partition", pa.int32()), ("kafka_offset", pa.int64()), ("key", pa.string()),
    ("raw_value", pa.string()),  # the value as received, cut to its first 64 KiB (spark/parse.py)
    ("reason", pa.string()), ("kafka_ts", TS), ("rejected_at", TS),
    # The value's full size in UTF-8 bytes, so a cut raw_value still tells what arrived. Last,
    # because the sink adds it to a rejects table written before it existed, at the end.
    ("raw_length", pa.int64()),
]))

BARS_1M = Table("bars_1m", pa.schema([
    ("symbol", pa.string()), ("asset_class", pa.string()), ("window_start", TS), ("window_end", TS),
    ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
    ("volume", pa.float64()), ("vwap", pa.float64()), ("trade_count", pa.int64()),
    # Kept so a later batch can merge into the bar exactly: vwap = notional / volume.
    ("notional", pa.float64()), ("first_trade_ts", TS), ("last_trade_ts", TS), ("updated_at", TS),
    # The longest silence between two trades inside the bar, and the trade that ended it (0 s and the
    # first trade for a bar of one trade): an outage of the pipeline can hide inside one minute.
    ("longest_silence_s", pa.float64()), ("longest_silence_end", TS),
]))

QUOTES = Table("quotes", pa.schema([
    ("symbol", pa.string()), ("asset_class", pa.string()), ("current", pa.float64()), ("change", pa.float64()),
    ("percent_change", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("open", pa.float64()),
    ("prev_close", pa.float64()), ("quote_ts", TS), ("source", pa.string()), ("ingested_at", TS),
]))

NEWS = Table("news", pa.schema([
    ("id", pa.int64()), ("symbol", pa.string()), ("category", pa.string()), ("headline", pa.string()),
    ("summary", pa.string()), ("source", pa.string()), ("url", pa.string()), ("image", pa.string()),
    ("related", pa.list_(pa.string())), ("published_at", TS), ("origin", pa.string()), ("ingested_at", TS),
]))

FUNDAMENTALS = Table("fundamentals", pa.schema([
    ("symbol", pa.string()), ("asset_class", pa.string()), ("kind", pa.string()),
    ("data", pa.string()),  # Finnhub's payload as JSON text: over a hundred metric names, and growing
    ("source", pa.string()), ("ingested_at", TS),
]))

# anomaly_labels kinds that are market events, not anomalies: the realistic simulator publishes
# them so the evaluation can count the alerts they draw (false alarms a detector should avoid).
MARKET_EVENT_KINDS = ("class_move", "tiny_trades")
ANOMALY_LABELS = Table("anomaly_labels", pa.schema([
    ("anomaly_id", pa.string()), ("symbol", pa.string()), ("asset_class", pa.string()), ("kind", pa.string()),
    ("start_ts", TS), ("end_ts", TS), ("magnitude", pa.float64()), ("source", pa.string()), ("ingested_at", TS),
]))

# Written by the scorer (model/): one row per scored 1-minute bar.
ANOMALIES = Table("anomalies", pa.schema([
    ("symbol", pa.string()), ("asset_class", pa.string()), ("window_start", TS), ("window_end", TS),
    ("anomaly_score", pa.float64()), ("is_anomaly", pa.bool_()),
    ("features", pa.string()),  # the model's inputs for this bar, as a JSON object
    ("top_features", pa.string()),  # the features that contributed most, most first, comma-separated
    ("model_name", pa.string()), ("model_version", pa.string()), ("scored_at", TS),
    # Why this verdict is left out of anomaly counts (is_anomaly is then false), or null:
    # "pipeline_gap" for the bars either side of an outage of the pipeline (docs/model.md).
    ("excluded_reason", pa.string()),
    # The first bar of the anomaly episode a flagged bar belongs to (model/episodes.py), null when
    # not flagged: the rows with window_start = episode_start are the episodes anomaly counts count.
    ("episode_start", TS),
    ("window_date", pa.date32()),
    # For a flagged bar, what its top features measured against their usual level, in one plain
    # sentence, and the same numbers as JSON (model/explain.py); null otherwise. Last, because
    # a lake from before them gains them at the end (ensure).
    ("explanation", pa.string()), ("evidence", pa.string()),
    # The bar's score as a tail probability among its symbol's previous day of scores by the same
    # model version (model/calibrate.py): a threshold on it means the same on every symbol. Null
    # while the symbol has under an hour of them, and for a bar a pipeline gap cut short.
    ("tail_probability", pa.float64()),
]), partition_by=("window_date",))

# Written by the hourly drift measure (model/drift.py): per hour, asset class and model input, how
# far the live distribution moved from the champion's training one (PSI), against its threshold.
MODEL_DRIFT = Table("model_drift", pa.schema([
    ("window_start", TS), ("window_end", TS), ("asset_class", pa.string()), ("feature", pa.string()),
    ("psi", pa.float64()), ("bars", pa.int64()), ("threshold", pa.float64()), ("drifted", pa.bool_()),
    ("model_name", pa.string()), ("model_version", pa.string()), ("computed_at", TS),
]))

# Write order inside a micro-batch: trades first (the freshest data readers wait for), bars
# last, because the bars table is what a restarted job reads its watermarks from, so it must
# only show a batch once everything else of it is written.
STREAM_TABLES = (TRADES, REJECTS, QUOTES, NEWS, FUNDAMENTALS, ANOMALY_LABELS, BARS_1M)
ALL_TABLES = STREAM_TABLES + (ANOMALIES, MODEL_DRIFT)


TABLE_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def in_lake(lake_dir: Path) -> tuple[str, ...]:
    """Names of the Delta tables in the lake folder: every folder holding a _delta_log,
    including tables outside this contract (a user's own), so SQL shows them too."""
    if not lake_dir.is_dir():
        return ()
    return tuple(sorted(p.name for p in lake_dir.iterdir()
                        if TABLE_NAME.match(p.name) and (p / "_delta_log").is_dir()))


# Commit metadata other writers read. The stream job records its per-symbol bar watermarks
# (epoch microseconds) in every bars_1m commit: a bar whose window_end is at or below its
# symbol's watermark is final (docs/tables.md#bars_1m). delta-rs writers (the scorer) put a
# value under its key in the commit itself; delta-spark (the stream job) has one string per
# commit, userMetadata, which holds a JSON object of such keys.
BAR_WATERMARKS_KEY = "lakewatch.watermarks_us"


def encode_commit_value(mapping: dict) -> str:
    return json.dumps(mapping, sort_keys=True, separators=(",", ":"))


def _value_in(commit: dict, key: str) -> dict | None:
    if key in commit:
        return json.loads(commit[key])
    try:
        user = json.loads(commit.get("userMetadata") or "null")
    except ValueError:  # a user's own commit message
        return None
    return user.get(key) if isinstance(user, dict) else None


def committed_value(commits, key: str) -> dict | None:
    """The value under `key` of the first of `commits` (newest first, as a history lists them) that has one."""
    for commit in commits:
        value = _value_in(commit, key)
        if value is not None:
            return value
    return None


def commit_value(table, key: str, history: int = 50) -> dict | None:
    """The newest of the last `history` commits of a delta-rs DeltaTable that carries `key`, decoded."""
    return committed_value(table.history(history), key)


def watermarks_from_newest_bars(newest, delay_s: int) -> dict[str, int]:
    """Watermarks from each symbol's newest bar: an Arrow table of symbol and its max(last_trade_ts)."""
    symbols, last = newest.column(0).to_pylist(), newest.column(1).to_pylist()
    return {symbol: int(ts.timestamp() * 1_000_000) - delay_s * 1_000_000 for symbol, ts in zip(symbols, last)}


def bar_watermarks(bars, delay_s: int) -> dict[str, int]:
    """The watermarks the last bars merge recorded ({} before the first one), from a delta-rs DeltaTable.

    Maintenance commits carry none; past a long run of them (hours without a trade) each
    symbol's newest bar stands in.
    """
    saved = commit_value(bars, BAR_WATERMARKS_KEY)
    if saved is not None:
        return {symbol: int(us) for symbol, us in saved.items()}
    newest = bars.to_pyarrow_table(columns=["symbol", "last_trade_ts"]).group_by("symbol").aggregate(
        [("last_trade_ts", "max")])
    return watermarks_from_newest_bars(newest, delay_s)


def ensure(lake_dir: Path, tables=ALL_TABLES) -> None:
    """Create every missing table, empty, with its schema; add to a table from an older release the
    contract's columns it lacks (null in its rows so far), so views that read them can be created.
    Only for tables the caller alone writes: the change of schema conflicts with concurrent writes."""
    from deltalake import DeltaTable, Schema  # here, so readers of the contract need only pyarrow

    for table in tables:
        path = table.path(lake_dir)
        if not DeltaTable.is_deltatable(str(path)):
            path.mkdir(parents=True, exist_ok=True)
            DeltaTable.create(str(path), schema=table.schema, partition_by=list(table.partition_by) or None,
                              name=table.name)
            continue
        existing = DeltaTable(str(path))
        have = {field.name for field in existing.schema().fields}
        missing = pa.schema([field for field in table.schema if field.name not in have])
        if len(missing):
            existing.alter.add_columns(list(Schema.from_arrow(missing).fields))
