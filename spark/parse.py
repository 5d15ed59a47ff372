"""Kafka records -> typed rows per table, or a reject with its reason.

Runs in DuckDB on the driver, over the Arrow table Spark hands each micro-batch: DuckDB's
vectorised JSON functions parse and check a batch several times faster than the same
projection in Spark (measured: Spark's from_json projection cost 0.9-1.5 s per 100k records on
top of reading them, more than the read itself), and per record: a malformed value rejects
only itself. Nothing is dropped: every Kafka record becomes exactly one row, in its table when
valid, in `rejects` otherwise.

A reject's reason is the first failing check of its topic, in order. Finer detail (was the
price missing or not a number?) extracts the raw field only for failing records.

Every text field has a contract (a symbol's form, a length), because whatever is accepted
ends up in dashboards and filters: a 900,000-character symbol once became the first row of
"Latest prices". The limits are documented in docs/tables.md. A reject keeps its raw value,
cut to MAX_REJECT_VALUE_BYTES with its full length beside it, so a 10 MB record costs the lake
64 KiB, and a reason quotes at most SHOWN_CHARS of a bad value.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from lakewatch import tables
from lakewatch.settings import ASSET_CLASSES, Settings

LATEST_TS_MS = 4_102_444_800_000  # 2100-01-01: keeps timestamp arithmetic far from overflow
_KNOWN_CLASSES = ", ".join(f"'{c}'" for c in ASSET_CLASSES)
_JSON_BLANKS = "e' \\t\\n\\r'"  # DuckDB escape-string literal of JSON's insignificant whitespace
Check = tuple[str, str]  # (failing condition, reason expression), over the parsed struct `r`

# A record's value is not even parsed above this: Kafka's default message limit is about the
# same, and the largest real record (a fundamentals payload) is a few KiB.
MAX_VALUE_BYTES = 1 << 20
MAX_REJECT_VALUE_BYTES = 64 << 10  # rejects.raw_value keeps this much; raw_length the full size
MAX_REJECT_KEY_BYTES = 1 << 10  # a key is a symbol or a news category
SHOWN_CHARS = 64  # of a bad value quoted in a reason

# Finnhub's symbol forms: AAPL, BRK.B, 0700.HK, ^GSPC, OANDA:EUR_USD, FXCM:EUR/USD,
# BINANCE:BTCUSDT, COINBASE:BTC-USD. The one space allowed is inside an exchange prefix
# (Finnhub's forex exchange "IC MARKETS", which settings.asset_class_of knows); no other
# whitespace, no control characters or quotes, and at least one letter or digit.
SYMBOL_CHARS = "A-Za-z0-9.:_/^-"
SYMBOL_PATTERN = f"(?:[A-Za-z0-9.]+(?: [A-Za-z0-9.]+)+:)?[{SYMBOL_CHARS}]*[A-Za-z0-9][{SYMBOL_CHARS}]*"
SYMBOL_MAX = 64  # the longest Finnhub symbols are about 30 characters
TAG_MAX = 64  # provenance and category tags: source (but a news publisher), origin, category, kind
CONDITIONS_MAX, CONDITION_MAX = 16, 16  # Finnhub sends a few trade condition codes of 1-3 characters
RELATED_MAX = 100  # symbols a news article names
NEWS_LIMITS = {"headline": 1 << 10, "summary": 16 << 10, "url": 2 << 10, "image": 2 << 10, "source": 256,
               "category": TAG_MAX, "origin": TAG_MAX}


def _raw(field: str) -> str:
    return f"json_extract_string(value, '$.{field}')"


def _shown(text: str) -> str:
    """`text` as a reason quotes it: a value of any size must not make the reason as big."""
    return (f"CASE WHEN length({text}) > {SHOWN_CHARS} "
            f"THEN concat(left({text}, {SHOWN_CHARS}), '... (', length({text}), ' characters)') ELSE {text} END")


def _required(field: str, kind: str) -> Check:
    return (f"r.{field} IS NULL",
            f"CASE WHEN {_raw(field)} IS NULL THEN 'missing {field}' ELSE concat('{field} is not {kind}: ', {_shown(_raw(field))}) END")


def _non_empty(field: str) -> Check:
    return (f"r.{field} IS NULL OR trim(r.{field}) = ''", f"'missing {field}'")


def _longer(text: str, limit: int) -> str:
    # length() counts characters by walking the string; strlen() is its stored byte size and
    # never smaller, so most values are decided without the walk.
    return f"(strlen({text}) > {limit} AND length({text}) > {limit})"


def _max_length(field: str, limit: int) -> Check:
    """A NULL passes: whether the field may be missing is another check's business."""
    return (_longer(f"r.{field}", limit), f"concat('{field} longer than {limit} characters (', length(r.{field}), ')')")


def _symbol(field: str = "symbol", required: bool = True) -> list[Check]:
    form = (f"NOT regexp_full_match(r.{field}, '{SYMBOL_PATTERN}')",
            f"concat('{field} has characters outside [{SYMBOL_CHARS}] or no letter or digit: ', to_json(r.{field}))")
    return [*([_non_empty(field)] if required else []), _max_length(field, SYMBOL_MAX), form]


def _text_list(field: str, items: int, item_chars: int) -> list[Check]:
    return [(f"len(r.{field}) > {items}", f"concat('{field} has more than {items} elements (', len(r.{field}), ')')"),
            (f"list_bool_or(list_transform(r.{field}, lambda x: {_longer('x', item_chars)}))",
             f"'{field} has an element longer than {item_chars} characters'")]


def _epoch_ms(field: str) -> list[Check]:
    return [_required(field, "an integer of epoch milliseconds"),
            (f"r.{field} < 0 OR r.{field} > {LATEST_TS_MS}", f"concat('{field} out of range: ', r.{field})")]


def _positive(field: str) -> list[Check]:
    return [_required(field, "a number"),
            (f"NOT (r.{field} > 0 AND isfinite(r.{field}))", f"concat('{field} must be positive and finite: ', r.{field})")]


KNOWN_ASSET_CLASS: Check = (f"r.asset_class IS NULL OR r.asset_class NOT IN ({_KNOWN_CLASSES})",
                            f"concat('unknown asset_class: ', coalesce({_shown(_raw('asset_class'))}, 'null'))")
# Fundamentals and labels may leave it out (fundamentals then default to stocks), not misspell it.
KNOWN_ASSET_CLASS_IF_ANY: Check = (f"r.asset_class NOT IN ({_KNOWN_CLASSES})", KNOWN_ASSET_CLASS[1])
# Optional, but epoch_ms() of a value past year 294247 raises, and one record must not fail its batch.
INGESTED_AT_RANGE: Check = (f"r.ingested_at < 0 OR r.ingested_at > {LATEST_TS_MS}",
                            "concat('ingested_at out of range: ', r.ingested_at)")


def _ts(field: str) -> str:
    return f"epoch_ms(r.{field})::TIMESTAMPTZ"


INGESTED_AT = "coalesce(epoch_ms(r.ingested_at)::TIMESTAMPTZ, kafka_ts)"


@dataclass(frozen=True)
class TopicSpec:
    topic: str
    table: tables.Table
    fields: dict[str, str]  # JSON field -> DuckDB type, for json_transform
    checks: list[Check]
    columns: dict[str, str]  # output column -> expression over `r` and the Kafka columns

    @property
    def json_structure(self) -> str:
        return json.dumps(self.fields)


def topic_specs(settings: Settings) -> list[TopicSpec]:
    """One spec per topic; trades first (the sink treats them specially)."""
    t = settings.topics
    future_s, age_days = settings.max_trade_future_seconds, settings.max_trade_age_days
    return [
        TopicSpec(
            t.trades, tables.TRADES,
            {"symbol": "VARCHAR", "asset_class": "VARCHAR", "price": "DOUBLE", "volume": "DOUBLE", "trade_ts": "BIGINT",
             "conditions": "VARCHAR[]", "source": "VARCHAR", "ingested_at": "BIGINT"},
            [*_symbol(), KNOWN_ASSET_CLASS, *_positive("price"),
             _required("volume", "a number"),
             ("NOT (r.volume >= 0 AND isfinite(r.volume))", "concat('volume must be >= 0 and finite: ', r.volume)"),
             *_epoch_ms("trade_ts"),
             # In epoch milliseconds: TIMESTAMPTZ arithmetic goes through ICU for every row, which
             # cost more than parsing the JSON.
             (f"r.trade_ts > epoch_ms(kafka_ts) + {future_s * 1000}",
              f"'trade_ts is more than {future_s} s after the Kafka timestamp'"),
             (f"r.trade_ts < epoch_ms(kafka_ts) - {age_days * 86_400_000}",
              f"'trade_ts is more than {age_days} days before the Kafka timestamp'"),
             *_text_list("conditions", CONDITIONS_MAX, CONDITION_MAX), _max_length("source", TAG_MAX), INGESTED_AT_RANGE],
            {"symbol": "r.symbol", "asset_class": "r.asset_class", "price": "r.price", "volume": "r.volume",
             "trade_ts": _ts("trade_ts"), "conditions": "coalesce(r.conditions, []::VARCHAR[])", "source": "r.source",
             "kafka_partition": "partition", "kafka_offset": '"offset"', "ingested_at": INGESTED_AT,
             "trade_date": "CAST(epoch_ms(r.trade_ts) AS DATE)",  # the UTC date, without ICU
             "kafka_ts": "kafka_ts"}),  # for the bars watermark only; not stored
        TopicSpec(
            t.quotes, tables.QUOTES,
            {"symbol": "VARCHAR", "asset_class": "VARCHAR", "current": "DOUBLE", "change": "DOUBLE",
             "percent_change": "DOUBLE", "high": "DOUBLE", "low": "DOUBLE", "open": "DOUBLE", "prev_close": "DOUBLE",
             "quote_ts": "BIGINT", "source": "VARCHAR", "ingested_at": "BIGINT"},
            [*_symbol(), KNOWN_ASSET_CLASS, *_positive("current"), *_epoch_ms("quote_ts"), _max_length("source", TAG_MAX),
             INGESTED_AT_RANGE],
            {**{c: f"r.{c}" for c in ("symbol", "asset_class", "current", "change", "percent_change", "high", "low",
                                      "open", "prev_close", "source")},
             "quote_ts": _ts("quote_ts"), "ingested_at": INGESTED_AT}),
        TopicSpec(
            t.news, tables.NEWS,
            {"id": "BIGINT", "symbol": "VARCHAR", "category": "VARCHAR", "headline": "VARCHAR", "summary": "VARCHAR",
             "source": "VARCHAR", "url": "VARCHAR", "image": "VARCHAR", "related": "VARCHAR[]", "published_at": "BIGINT",
             "origin": "VARCHAR", "ingested_at": "BIGINT"},
            [_required("id", "an integer"), _non_empty("headline"), *_epoch_ms("published_at"),
             *_symbol(required=False),  # market news is about no symbol
             *(_max_length(field, limit) for field, limit in NEWS_LIMITS.items()),
             *_text_list("related", RELATED_MAX, SYMBOL_MAX), INGESTED_AT_RANGE],
            {**{c: f"r.{c}" for c in ("id", "symbol", "category", "headline", "summary", "source", "url", "image",
                                      "origin")},
             "related": "coalesce(r.related, []::VARCHAR[])", "published_at": _ts("published_at"),
             "ingested_at": INGESTED_AT}),
        TopicSpec(
            t.fundamentals, tables.FUNDAMENTALS,
            {"symbol": "VARCHAR", "asset_class": "VARCHAR", "kind": "VARCHAR", "data": "JSON", "source": "VARCHAR",
             "ingested_at": "BIGINT"},
            [*_symbol(), KNOWN_ASSET_CLASS_IF_ANY,
             ("r.kind IS NULL OR r.kind NOT IN ('metrics', 'profile')",
              f"concat('unknown kind: ', coalesce({_shown(_raw('kind'))}, 'null'))"),
             ("r.data IS NULL OR json_type(r.data) <> 'OBJECT'", "'data is not an object'"),
             _max_length("source", TAG_MAX), INGESTED_AT_RANGE],
            {"symbol": "r.symbol", "asset_class": "coalesce(r.asset_class, 'stocks')", "kind": "r.kind",
             "data": "r.data::VARCHAR", "source": "r.source", "ingested_at": INGESTED_AT}),
        TopicSpec(
            t.labels, tables.ANOMALY_LABELS,
            {"anomaly_id": "VARCHAR", "symbol": "VARCHAR", "asset_class": "VARCHAR", "kind": "VARCHAR",
             "start_ts": "BIGINT", "end_ts": "BIGINT", "magnitude": "DOUBLE", "source": "VARCHAR", "ingested_at": "BIGINT"},
            [_non_empty("anomaly_id"), _max_length("anomaly_id", 2 * SYMBOL_MAX), *_symbol(), KNOWN_ASSET_CLASS_IF_ANY,
             _non_empty("kind"), _max_length("kind", TAG_MAX), *_epoch_ms("start_ts"),
             *_epoch_ms("end_ts"), ("r.end_ts < r.start_ts", "'end_ts before start_ts'"),
             _max_length("source", TAG_MAX), INGESTED_AT_RANGE],
            {**{c: f"r.{c}" for c in ("anomaly_id", "symbol", "asset_class", "kind", "magnitude", "source")},
             "start_ts": _ts("start_ts"), "end_ts": _ts("end_ts"), "ingested_at": INGESTED_AT}),
    ]


@dataclass
class ParsedBatch:
    rows: dict[str, pa.Table]  # table name -> valid rows (its columns; trades also carry kafka_ts)
    rejects: pa.Table  # tables.REJECTS columns


def _topic_query(spec: TopicSpec) -> str:
    checks = " ".join(f"WHEN {cond} THEN {reason}" for cond, reason in spec.checks)
    columns = ", ".join(f"CASE WHEN reason IS NULL THEN {expr} END AS {name}" for name, expr in spec.columns.items())
    return f"""
        WITH parsed AS (
            SELECT partition, "offset", key, value, "timestamp" AS kafka_ts,
                   -- Valid JSON is an object exactly when it starts with an opening brace: a string test, not a parse.
                   CASE WHEN strlen(value) <= {MAX_VALUE_BYTES} AND starts_with(ltrim(value, {_JSON_BLANKS}), '{{')
                             AND json_valid(value)
                        THEN json_transform(value, '{spec.json_structure}') END AS r
            FROM batch WHERE topic = '{spec.topic}'),
        checked AS (
            SELECT *, CASE WHEN value IS NULL THEN 'empty value'
                           WHEN strlen(value) > {MAX_VALUE_BYTES}
                           THEN concat('value larger than {MAX_VALUE_BYTES} bytes (', strlen(value), ')')
                           WHEN r IS NULL THEN 'not a JSON object'
                           {checks} END AS reason
            FROM parsed)
        SELECT reason, partition AS _partition, "offset" AS _offset, key AS _key, value AS _value,
               kafka_ts AS _kafka_ts, {columns} FROM checked"""


class Parser:
    """Parses micro-batches; holds one DuckDB connection and the compiled queries."""

    def __init__(self, specs: list[TopicSpec]):
        self.specs = specs
        self.queries = {spec.topic: _topic_query(spec) for spec in specs}
        known = ", ".join(f"'{spec.topic}'" for spec in specs)
        self.unknown_query = f"""SELECT concat('unknown topic: ', topic) AS reason, topic AS _topic, partition AS _partition,
                                        "offset" AS _offset, key AS _key, value AS _value, "timestamp" AS _kafka_ts
                                 FROM batch WHERE topic NOT IN ({known})"""
        self.con = duckdb.connect(config={"threads": 2})
        self.con.execute("SET TimeZone = 'UTC'")
        self._empties: dict[str, pa.Table] = {}

    def _arrow(self, sql: str) -> pa.Table:
        result = self.con.execute(sql).arrow()
        return result.read_all() if isinstance(result, pa.RecordBatchReader) else result

    def parse(self, batch: pa.Table) -> ParsedBatch:
        """`batch` has kafka_source.KAFKA_SCHEMA's columns."""
        present = set(pc.unique(batch["topic"]).to_pylist())
        # A live batch usually holds trades only: querying the other topics would cost a few
        # planning milliseconds each on the freshness path, for empty answers.
        rows, rejects = {}, []
        for spec in self.specs:
            result = self._run(self.queries[spec.topic], batch) if spec.topic in present else self._empty(spec.topic, batch)
            rows[spec.table.name] = result.filter(result["reason"].is_null()).select(list(spec.columns))
            rejects.append(_rejects(result.filter(result["reason"].is_valid()), spec.topic))
        if present - set(self.queries):
            rejects.append(_rejects(self._run(self.unknown_query, batch), None))
        return ParsedBatch(rows, pa.concat_tables(rejects))

    def _empty(self, topic: str, batch: pa.Table) -> pa.Table:
        """The topic's answer to no records, with the query's types: computed once."""
        if topic not in self._empties:
            self._empties[topic] = self._run(self.queries[topic], batch.slice(0, 0))
        return self._empties[topic]

    def _run(self, sql: str, batch: pa.Table) -> pa.Table:
        self.con.register("batch", batch)
        try:
            return self._arrow(sql)
        finally:
            self.con.unregister("batch")


def _rejects(result: pa.Table, topic: str | None) -> pa.Table:
    n = len(result)
    value = result["_value"].cast(pa.string())  # all-NULL values may come back untyped
    return pa.table({
        "topic": result["_topic"] if topic is None else pa.array([topic] * n, pa.string()),
        "kafka_partition": result["_partition"], "kafka_offset": result["_offset"],
        "key": truncated(result["_key"].cast(pa.string()), MAX_REJECT_KEY_BYTES),
        "raw_value": truncated(value, MAX_REJECT_VALUE_BYTES), "reason": result["reason"],
        "kafka_ts": result["_kafka_ts"], "rejected_at": pa.array([datetime.now(timezone.utc)] * n, tables.TS),
        "raw_length": pc.binary_length(value).cast(pa.int64()),
    }).cast(tables.REJECTS.schema)


def truncated(texts: pa.Array | pa.ChunkedArray, max_bytes: int) -> pa.Array:
    """Each text cut to at most max_bytes of UTF-8, at a character boundary (a cut inside a
    character would not be valid UTF-8). Oversized texts are rare, so only they go through Python."""
    texts = texts.combine_chunks() if isinstance(texts, pa.ChunkedArray) else texts
    over = pc.greater(pc.binary_length(texts), max_bytes)
    if not pc.any(over).as_py():
        return texts
    values = texts.to_pylist()
    for i in pc.indices_nonzero(over).to_pylist():
        values[i] = values[i].encode()[:max_bytes].decode("utf-8", "ignore")
    return pa.array(values, pa.string())
