"""Kafka records -> typed rows per table, or a reject with its reason: one Spark projection.

Parsing and validation run in Spark (JVM, both cores) as a single projection over the batch,
so the driver receives one Arrow table per micro-batch holding, for every record, either the
typed row for its table or the reason it was rejected (with its raw value). Nothing is
dropped: every Kafka record becomes exactly one row in exactly one table.

The reason of a reject is the first failing check of its topic, in order. Finer detail (was
the price missing or not a number?) reparses the value as a map only for failing records.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

import tables
from lakewatch.settings import ASSET_CLASSES, Settings

LATEST_TS_MS = 4_102_444_800_000  # 2100-01-01: beyond it timestamp arithmetic would overflow
_MAP = "from_json(value, 'MAP<STRING,STRING>')"  # only evaluated inside failing branches
_KNOWN_CLASSES = ", ".join(f"'{c}'" for c in ASSET_CLASSES)


def _field_missing_or_bad(r: str, field: str, kind: str) -> tuple[str, str]:
    return (f"{r}.{field} IS NULL",
            f"CASE WHEN {_MAP}['{field}'] IS NULL THEN 'missing {field}' "
            f"ELSE concat('{field} is not {kind}: ', {_MAP}['{field}']) END")


def _json_object_with(r: str, field: str) -> tuple[str, str]:
    return (f"{r}.{field} IS NULL OR trim({r}.{field}) = ''",
            f"CASE WHEN {_MAP} IS NULL THEN 'not a JSON object' ELSE 'missing {field}' END")


def _epoch_ms_in_range(r: str, field: str) -> list[tuple[str, str]]:
    return [_field_missing_or_bad(r, field, "an integer of epoch milliseconds"),
            (f"{r}.{field} < 0 OR {r}.{field} > {LATEST_TS_MS}", f"concat('{field} out of range: ', {r}.{field})")]


def _known_asset_class(r: str) -> tuple[str, str]:
    return (f"{r}.asset_class IS NULL OR {r}.asset_class NOT IN ({_KNOWN_CLASSES})",
            f"concat('unknown asset_class: ', coalesce({_MAP}['asset_class'], 'null'))")


def _ts(r: str, field: str) -> str:
    return f"timestamp_millis({r}.{field})"


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    table: tables.Table
    json_schema: str
    checks: Callable[[str], list[tuple[str, str]]]  # struct column -> [(failing condition, reason)]
    columns: Callable[[str], dict[str, str]]  # struct column -> {output column: expression}


def topic_specs(settings: Settings) -> list[TopicSpec]:
    t = settings.topics
    future_s, age_days = settings.max_trade_future_seconds, settings.max_trade_age_days

    def trade_checks(r):
        return [
            _json_object_with(r, "symbol"),
            _known_asset_class(r),
            _field_missing_or_bad(r, "price", "a number"),
            (f"NOT ({r}.price > 0 AND {r}.price < double('inf'))", f"concat('price must be positive and finite: ', {r}.price)"),
            _field_missing_or_bad(r, "volume", "a number"),
            (f"NOT ({r}.volume >= 0 AND {r}.volume < double('inf'))", f"concat('volume must be >= 0 and finite: ', {r}.volume)"),
            *_epoch_ms_in_range(r, "trade_ts"),
            (f"{_ts(r, 'trade_ts')} > kafka_ts + INTERVAL {future_s} SECONDS",
             f"'trade_ts is more than {future_s} s after the Kafka timestamp'"),
            (f"{_ts(r, 'trade_ts')} < kafka_ts - INTERVAL {age_days} DAYS",
             f"'trade_ts is more than {age_days} days before the Kafka timestamp'"),
        ]

    def trade_columns(r):
        return {"symbol": f"{r}.symbol", "asset_class": f"{r}.asset_class", "price": f"{r}.price",
                "volume": f"{r}.volume", "trade_ts": _ts(r, "trade_ts"),
                "conditions": f"coalesce({r}.conditions, array())", "source": f"{r}.source",
                "kafka_partition": "partition", "kafka_offset": "offset",
                "ingested_at": f"coalesce({_ts(r, 'ingested_at')}, kafka_ts)",
                "trade_date": f"to_date({_ts(r, 'trade_ts')})",
                "kafka_ts": "kafka_ts"}  # for the bars watermark only; not stored

    def quote_checks(r):
        return [_json_object_with(r, "symbol"), _known_asset_class(r),
                _field_missing_or_bad(r, "current", "a number"),
                (f"NOT ({r}.current > 0 AND {r}.current < double('inf'))", f"concat('current must be positive: ', {r}.current)"),
                *_epoch_ms_in_range(r, "quote_ts")]

    def quote_columns(r):
        cols = {c: f"{r}.{c}" for c in ("symbol", "asset_class", "current", "change", "percent_change", "high",
                                        "low", "open", "prev_close", "source")}
        return {**cols, "quote_ts": _ts(r, "quote_ts"), "ingested_at": f"coalesce({_ts(r, 'ingested_at')}, kafka_ts)"}

    def news_checks(r):
        return [(f"{_MAP} IS NULL", "'not a JSON object'"),
                _field_missing_or_bad(r, "id", "an integer"),
                (f"{r}.headline IS NULL OR trim({r}.headline) = ''", "'missing headline'"),
                *_epoch_ms_in_range(r, "published_at")]

    def news_columns(r):
        cols = {c: f"{r}.{c}" for c in ("id", "symbol", "category", "headline", "summary", "source", "url", "image",
                                        "origin")}
        return {**cols, "related": f"coalesce({r}.related, array())", "published_at": _ts(r, "published_at"),
                "ingested_at": f"coalesce({_ts(r, 'ingested_at')}, kafka_ts)"}

    def fundamentals_checks(r):
        return [_json_object_with(r, "symbol"),
                (f"{r}.kind IS NULL OR {r}.kind NOT IN ('metrics', 'profile')",
                 f"concat('unknown kind: ', coalesce({_MAP}['kind'], 'null'))"),
                (f"{r}.data IS NULL", "'missing data'")]

    def fundamentals_columns(r):
        return {"symbol": f"{r}.symbol", "asset_class": f"coalesce({r}.asset_class, 'stocks')", "kind": f"{r}.kind",
                "data": f"{r}.data", "source": f"{r}.source",
                "ingested_at": f"coalesce({_ts(r, 'ingested_at')}, kafka_ts)"}

    def label_checks(r):
        return [_json_object_with(r, "anomaly_id"), _json_object_with(r, "symbol"),
                (f"{r}.kind IS NULL", "'missing kind'"),
                *_epoch_ms_in_range(r, "start_ts"), *_epoch_ms_in_range(r, "end_ts"),
                (f"{r}.end_ts < {r}.start_ts", "'end_ts before start_ts'")]

    def label_columns(r):
        cols = {c: f"{r}.{c}" for c in ("anomaly_id", "symbol", "asset_class", "kind", "magnitude", "source")}
        return {**cols, "start_ts": _ts(r, "start_ts"), "end_ts": _ts(r, "end_ts"),
                "ingested_at": f"coalesce({_ts(r, 'ingested_at')}, kafka_ts)"}

    return [
        TopicSpec(t.trades, tables.TRADES,
                  "symbol STRING, asset_class STRING, price DOUBLE, volume DOUBLE, trade_ts BIGINT, "
                  "conditions ARRAY<STRING>, source STRING, ingested_at BIGINT", trade_checks, trade_columns),
        TopicSpec(t.quotes, tables.QUOTES,
                  "symbol STRING, asset_class STRING, current DOUBLE, change DOUBLE, percent_change DOUBLE, "
                  "high DOUBLE, low DOUBLE, open DOUBLE, prev_close DOUBLE, quote_ts BIGINT, source STRING, "
                  "ingested_at BIGINT", quote_checks, quote_columns),
        TopicSpec(t.news, tables.NEWS,
                  "id BIGINT, symbol STRING, category STRING, headline STRING, summary STRING, source STRING, "
                  "url STRING, image STRING, related ARRAY<STRING>, published_at BIGINT, origin STRING, "
                  "ingested_at BIGINT", news_checks, news_columns),
        TopicSpec(t.fundamentals, tables.FUNDAMENTALS,
                  "symbol STRING, asset_class STRING, kind STRING, data STRING, source STRING, ingested_at BIGINT",
                  fundamentals_checks, fundamentals_columns),
        TopicSpec(t.labels, tables.ANOMALY_LABELS,
                  "anomaly_id STRING, symbol STRING, asset_class STRING, kind STRING, start_ts BIGINT, end_ts BIGINT, "
                  "magnitude DOUBLE, source STRING, ingested_at BIGINT", label_checks, label_columns),
    ]


def column_prefix(spec: TopicSpec) -> str:
    """Prefix of a table's columns in the parsed frame: `trades__price` is trades' price."""
    return f"{spec.table.name}__"


def parse(kafka: DataFrame, specs: list[TopicSpec]) -> DataFrame:
    """Columns: topic, partition, offset, key, kafka_ts, reason, raw_value, then every table's columns.

    A record has either a `reason` or its table's columns set, never both. The columns are flat
    and nullable (a struct per table would not survive Arrow's null handling of its children).
    """
    parsed = kafka.select(
        "topic", "partition", "offset", "key", "value", F.col("timestamp").alias("kafka_ts"),
        *[F.expr(f"CASE WHEN topic = '{s.topic}' THEN from_json(value, '{s.json_schema}') END").alias(f"p_{s.table.name}")
          for s in specs])

    branches = []
    for s in specs:
        checks = " ".join(f"WHEN {cond} THEN {reason}" for cond, reason in s.checks(f"p_{s.table.name}"))
        branches.append(f"WHEN topic = '{s.topic}' THEN CASE WHEN value IS NULL THEN 'empty value' {checks} END")
    reasoned = parsed.withColumn("reason", F.expr(f"CASE {' '.join(branches)} ELSE concat('unknown topic: ', topic) END"))

    outputs = [F.expr(f"CASE WHEN topic = '{s.topic}' AND reason IS NULL THEN {expr} END").alias(column_prefix(s) + name)
               for s in specs for name, expr in s.columns(f"p_{s.table.name}").items()]
    return reasoned.select("topic", "partition", "offset", "key", "kafka_ts", "reason",
                           F.expr("CASE WHEN reason IS NOT NULL THEN value END").alias("raw_value"), *outputs)
