"""Property-based fuzzing of the parser: whatever arrives on whatever topic becomes exactly one
row, in its table or in `rejects`, and never crashes the batch.

A crash would be worse than a bad row: the stream job would retry the same batch forever.
Examples are derandomized and bounded, so CI runs the same 200 batches in a few seconds.
"""
import json

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lakewatch import tables
from lakewatch.settings import load
from spark.parse import MAX_REJECT_VALUE_BYTES, Parser, topic_specs
from tests.unit.test_parse import KAFKA_TS, NOW_MS, TRADE

SPECS = topic_specs(load({}))
PARSER = Parser(SPECS)
TABLE_OF = {spec.topic: spec.table.name for spec in SPECS}
VALID = {  # one valid record per topic: mutating one field of it reaches the deep checks
    "market.trades": TRADE,
    "market.quotes": {"symbol": "AAPL", "asset_class": "stocks", "current": 1.0, "quote_ts": NOW_MS, "source": "t"},
    "market.news": {"id": 1, "headline": "h", "published_at": NOW_MS, "related": ["AAPL"], "symbol": "AAPL"},
    "market.fundamentals": {"symbol": "AAPL", "kind": "metrics", "data": {"beta": 1.0}, "source": "t"},
    "market.labels": {"anomaly_id": "a", "symbol": "AAPL", "kind": "price_spike", "start_ts": NOW_MS - 1,
                      "end_ts": NOW_MS, "asset_class": "stocks", "source": "t"},
}
FIELDS = {spec.topic: list(spec.fields) for spec in SPECS}

# Edges a uniform draw would rarely hit: the ends of BIGINT and of the timestamp range and past
# them (epoch_ms() of 9e18 once failed a whole batch), infinities, symbols near their limits.
EDGES = [NOW_MS, -1, 0, 9 * 10**18, 2**63 - 1, -(2**63), 2**63, 10**30, 1e300, float("nan"), None, True, 1.5,
         "AAPL", "", " ", "OANDA:EUR_USD", "IC MARKETS:1", "A" * 64, "A" * 65, "é" * 2000, "\x00", ["1"] * 17,
         ["x" * 100], [None], {}, {"a": 1}, []]
edges = st.sampled_from(EDGES)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80) | edges,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=12)


@st.composite
def mutated(draw, topic: str) -> str:
    """A valid record of `topic` with one to four fields replaced, removed or added."""
    record = dict(VALID.get(topic, VALID["market.trades"]))
    fields = FIELDS.get(topic, ["symbol"]) + ["other"]
    for _ in range(draw(st.integers(1, 4))):
        field = draw(st.sampled_from(fields))
        if draw(st.booleans()):
            record[field] = draw(edges | json_values)
        else:
            record.pop(field, None)
    # allow_nan: Python writes NaN and Infinity, which JSON has not; the parser must cope.
    return json.dumps(record)


def value_for(topic: str) -> st.SearchStrategy:
    return st.one_of(
        st.none(),
        st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),  # as kafka_source decodes
        st.text(max_size=200),
        json_values.map(json.dumps),
        mutated(topic),
        mutated(topic),  # twice: most of what reaches the deep checks comes from here
    )


records = st.lists(
    st.sampled_from([*TABLE_OF, "market.other"]).flatmap(lambda topic: st.tuples(st.just(topic), value_for(topic))),
    min_size=1, max_size=60)  # a batch costs its queries' planning more than its records: many records each


def as_batch(items: list[tuple[str, str | None]]) -> pa.Table:
    n = len(items)
    return pa.table({"topic": pa.array([t for t, _ in items], pa.string()),
                     "partition": pa.array([0] * n, pa.int32()), "offset": pa.array(range(n), pa.int64()),
                     "key": pa.array(["AAPL"] * n, pa.string()), "value": pa.array([v for _, v in items], pa.string()),
                     "timestamp": pa.array([KAFKA_TS] * n, tables.TS)})


@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(records)
def test_any_value_on_any_topic_lands_exactly_once_in_its_table_or_in_rejects(items):
    assert_each_lands_once(items, PARSER.parse(as_batch(items)))  # and parse must not raise


def test_every_edge_value_in_any_one_field_of_a_valid_record_lands_exactly_once():
    """The sweep random draws would take thousands of examples to cover: every topic, every
    field, every edge value, one batch per topic."""
    for topic, valid in VALID.items():
        items = [(topic, json.dumps({**valid, field: edge})) for field in FIELDS[topic] for edge in EDGES]
        assert_each_lands_once(items, PARSER.parse(as_batch(items)))


def assert_each_lands_once(items: list[tuple[str, str | None]], parsed) -> None:
    rejects = parsed.rejects.to_pylist()
    for topic in {t for t, _ in items}:
        landed = len(parsed.rows[TABLE_OF[topic]]) if topic in TABLE_OF else 0
        assert landed + sum(r["topic"] == topic for r in rejects) == sum(t == topic for t, _ in items), topic
    # and each record once: by its offset, where the table keeps one
    offsets = [r["kafka_offset"] for r in rejects] + parsed.rows["trades"]["kafka_offset"].to_pylist()
    assert len(offsets) == len(set(offsets))
    for reject in rejects:
        assert reject["reason"] and len(reject["reason"]) < 1000
        value = items[reject["kafka_offset"]][1]
        assert reject["raw_length"] == (None if value is None else len(value.encode()))
        assert value is None or value.encode().startswith(reject["raw_value"].encode())
        assert len((reject["raw_value"] or "").encode()) <= MAX_REJECT_VALUE_BYTES


@pytest.mark.parametrize("topic", list(VALID))
def test_every_valid_record_of_the_fuzzer_is_accepted(topic):
    """Otherwise the fuzzer's mutations would start from a reject and prove little."""
    parsed = PARSER.parse(as_batch([(topic, json.dumps(VALID[topic]))]))
    assert len(parsed.rejects) == 0, parsed.rejects["reason"].to_pylist()
