"""Kafka topics as one streaming DataFrame, the same on both profiles: `read_kafka(...)`.

The distributed profile uses Spark's own `kafka` source. Its jar cannot be installed on the
embedded profile's machines (no Maven), so there lakewatch reads Kafka through a Spark Python
data source built on confluent-kafka, the project's one Kafka client. Both give KAFKA_SCHEMA,
so nothing downstream knows which one ran.

Offsets are Spark's Kafka JSON, `{"market.trades": {"0": next_offset, ...}, ...}`, plus
`"_cluster": <the broker's cluster id>` and, in a batch that starts partitions its start offset
does not know, `"_low": {topic: {partition: first_offset}}`, so every batch re-plans to the same
records after a crash.

The embedded broker (tansu) needs three rules:
- Its ListOffsets(latest) under-reports a partition's end (start of the last batch + 1), while
  the high watermark in a Fetch response is right. So the driver finds each end by fetching
  from the reported end - 1 and reading the watermark the response carried.
- It keeps nothing across a restart, and every start gets a fresh cluster id. When the
  broker's cluster id is not the one in the start offset, the source logs one warning and
  reads the new broker from its earliest offsets; records the old broker had and Spark had not
  read yet are gone with it.
- Topics and partitions that appear while the query runs are read from their earliest offset.

Should a partition's end fall below its start on the same cluster (a topic recreated, a broker
restarted with the same id), that batch reads nothing from it and logs a warning, and the next
batch goes on from the broker's end, as Spark's kafka source does with failOnDataLoss=false.

Values are decoded as UTF-8; a value that is not valid UTF-8 still arrives, with its bad bytes
replaced by U+FFFD, so the job can send it to the rejects table. Offsets within a partition are
taken to be contiguous (no transactions or compaction on lakewatch's topics).
"""
from __future__ import annotations

import bisect
import json
import logging
import os
import sys
import time
import weakref
from dataclasses import dataclass
from typing import Iterator

import pyarrow as pa
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from pyspark.sql.datasource import DataSource, DataSourceStreamReader, InputPartition
from pyspark.sql.streaming.datasource import ReadAllAvailable, ReadLimit, ReadMaxRows, SupportsTriggerAvailableNow

log = logging.getLogger("spark.kafka_source")
KAFKA_LOG = logging.getLogger("librdkafka")

KAFKA_SCHEMA = "topic STRING, partition INT, offset BIGINT, key STRING, value STRING, timestamp TIMESTAMP"
ARROW_SCHEMA = pa.schema([("topic", pa.string()), ("partition", pa.int32()), ("offset", pa.int64()),
                          ("key", pa.string()), ("value", pa.string()), ("timestamp", pa.timestamp("us", tz="UTC"))])
SOURCE_NAME = "lakewatch_kafka"

# Spark's kafka source gives binary key/value and a timestampType column; this makes it KAFKA_SCHEMA.
KAFKA_COLUMNS = ["topic", "CAST(partition AS INT) AS partition", "CAST(offset AS BIGINT) AS offset",
                 "CAST(key AS STRING) AS key", "CAST(value AS STRING) AS value", "timestamp"]

MAX_TASK_OFFSETS = 200_000  # a big backlog becomes several tasks, so both cores work on it
MIN_TASK_OFFSETS = 25_000  # below this a task's consumer start-up costs more than it saves
CONSUME_BATCH = 10_000
# Per partition and fetch, the least librdkafka accepts. Read tasks used to fetch twice their
# range's size at once (up to 32 MB): a backlog batch of 200k records then fetched and threw
# away about as much as it kept, and took 2.8-3.1 s instead of 2.0-2.3 s.
FETCH_BYTES = 1 << 20
POLL_SECONDS = 0.05
STALL_SECONDS = 30.0  # a read task with no record for this long fails instead of hanging
PROBE_SECONDS = 10.0
PROBE_POLL_SECONDS = 0.005  # a probe waits for one fetch answer per partition, not for a full batch

TRANSIENT_ERRORS = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE, KafkaError._TIMED_OUT}

Partition = tuple[str, int]  # (topic, partition)


def read_kafka(spark, settings, topics: list[str], max_offsets_per_trigger: int | None = None):
    """A streaming DataFrame of `topics` with exactly KAFKA_SCHEMA, from the earliest offsets."""
    distributed = settings.profile == "distributed"
    options = {"kafka.bootstrap.servers": settings.bootstrap_servers, "subscribe": ",".join(topics)}
    if distributed:
        options.update(startingOffsets="earliest", failOnDataLoss="false")
    elif spark not in _registered:  # registering again works but makes Spark log a warning
        spark.dataSource.register(LakewatchKafkaSource)
        _registered.add(spark)
    if max_offsets_per_trigger:
        options["maxOffsetsPerTrigger"] = str(max_offsets_per_trigger)
    df = spark.readStream.format("kafka" if distributed else SOURCE_NAME).options(**options).load()
    return df.selectExpr(*KAFKA_COLUMNS) if distributed else df


_registered: weakref.WeakSet = weakref.WeakSet()  # sessions the Python data source is registered in


# ---- offset planning (pure) ---------------------------------------------------------------

def limit_offsets(begin: dict[Partition, int], latest: dict[Partition, int], max_rows: int | None) -> dict[Partition, int]:
    """End offsets reading at most `max_rows` records in total, shared in proportion to each
    partition's backlog with at least one record per backlogged partition (while the limit
    allows). A partition whose latest is at or below its begin keeps its latest."""
    backlog = {tp: latest[tp] - begin[tp] for tp in begin if latest[tp] > begin[tp]}
    if max_rows is None or sum(backlog.values()) <= max_rows:
        return dict(latest)
    take = _fair_shares(backlog, max_rows)
    return {tp: begin[tp] + take.get(tp, 0) if tp in backlog else latest[tp] for tp in begin}


def _fair_shares(backlog: dict[Partition, int], n: int) -> dict[Partition, int]:
    """Split n (< total backlog) records: one each, the rest by largest remainder, in integers."""
    order = sorted(backlog, key=lambda tp: (-backlog[tp], tp))
    if len(order) >= n:
        return {tp: 1 for tp in order[:n]}
    rest, pool = n - len(order), sum(backlog.values()) - len(order)
    exact = {tp: divmod((backlog[tp] - 1) * rest, pool) for tp in order}
    shares = {tp: 1 + q for tp, (q, _) in exact.items()}
    left = rest - sum(q for q, _ in exact.values())
    for tp in sorted(order, key=lambda tp: -exact[tp][1])[:left]:
        shares[tp] += 1
    return shares


def offset_json(cluster: str, offsets: dict[Partition, int], lows: dict[Partition, int] | None = None) -> dict:
    """Spark's Kafka offset JSON in one canonical key order: Spark compares offsets as text."""
    result: dict = {"_cluster": cluster}
    result.update(_nest(offsets))
    if lows:
        result["_low"] = _nest(lows)
    return result


def _nest(offsets: dict[Partition, int]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for topic, partition in sorted(offsets):
        nested.setdefault(topic, {})[str(partition)] = offsets[topic, partition]
    return nested


def flat_offsets(nested: dict) -> dict[Partition, int]:
    return {(topic, int(p)): offset for topic, partitions in nested.items() if not topic.startswith("_")
            for p, offset in partitions.items()}


def plan_ranges(start: dict, end: dict, tasks: int = 8) -> list[tuple[str, int, int, int]]:
    """(topic, partition, from, until) ranges between two offset JSONs, cut into about `tasks`
    similar pieces: 3 partitions on 2 cores would otherwise leave a core idle for a third of
    the batch, and one big partition would use one core only."""
    known = flat_offsets(start) if start.get("_cluster") == end["_cluster"] else {}
    lows = flat_offsets(end.get("_low", {}))
    spans = []
    for (topic, partition), until in flat_offsets(end).items():
        begin = known[topic, partition] if (topic, partition) in known else lows[topic, partition]
        if until < begin:
            _warn("partition end offset went below the start offset; nothing read from it in this batch",
                  topic=topic, partition=partition, start=begin, end=until)
        elif until > begin:
            spans.append((topic, partition, begin, until))
    size = _task_size(sum(until - begin for _, _, begin, until in spans), tasks)
    return [(topic, partition, a, min(a + size, until))
            for topic, partition, begin, until in spans for a in range(begin, until, size)]


def plan_tasks(start: dict, end: dict, tasks: int = 8) -> list[list[tuple[str, int, int, int]]]:
    """plan_ranges' pieces packed into read tasks of at most one piece's size: a live batch of a
    few thousand records over several partitions becomes one task with one consumer, instead of
    a task (and a consumer start) per partition on the freshness path."""
    ranges = plan_ranges(start, end, tasks)
    size = _task_size(sum(until - begin for _, _, begin, until in ranges), tasks)
    packed: list[list[tuple[str, int, int, int]]] = []
    for piece in ranges:
        if packed and sum(b - a for _, _, a, b in packed[-1]) + piece[3] - piece[2] <= size:
            packed[-1].append(piece)
        else:
            packed.append([piece])
    return packed


def _task_size(total: int, tasks: int) -> int:
    return min(MAX_TASK_OFFSETS, max(MIN_TASK_OFFSETS, -(-total // tasks)))


# ---- the Spark data source ---------------------------------------------------------------

@dataclass(frozen=True)
class KafkaRange:
    topic: str
    partition: int
    start: int
    end: int  # exclusive


@dataclass
class KafkaTask(InputPartition):
    ranges: tuple[KafkaRange, ...]


class LakewatchKafkaSource(DataSource):
    """Options: kafka.bootstrap.servers, subscribe (comma-separated topics), maxOffsetsPerTrigger."""

    @classmethod
    def name(cls) -> str:
        return SOURCE_NAME

    def schema(self) -> str:
        return KAFKA_SCHEMA

    def streamReader(self, schema) -> "KafkaStreamReader":
        return KafkaStreamReader(self.options)


@dataclass(frozen=True)
class Snapshot:
    cluster: str
    lows: dict[Partition, int]
    ends: dict[Partition, int]


class KafkaStreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Plans offsets on the driver with one long-lived consumer; read() runs in Spark's workers."""

    def __init__(self, options):
        _ensure_log_output()
        self.bootstrap = options["kafka.bootstrap.servers"]
        self.topics = [t.strip() for t in options["subscribe"].split(",") if t.strip()]
        self.max_rows = int(options["maxOffsetsPerTrigger"]) if options.get("maxOffsetsPerTrigger") else None
        self._consumer: Consumer | None = None
        self._known_cluster: str | None = None
        self._known: dict[Partition, tuple[int, int]] = {}  # (low, end) last seen on that cluster
        self._target: Snapshot | None = None  # set by Trigger.AvailableNow: never read past it
        self._warned: set[tuple] = set()

    def initialOffset(self) -> dict:
        snap = self._snapshot()
        return offset_json(snap.cluster, snap.lows)

    def getDefaultReadLimit(self) -> ReadLimit:
        return ReadMaxRows(self.max_rows) if self.max_rows else ReadAllAvailable()

    def prepareForTriggerAvailableNow(self) -> None:
        self._target = self._snapshot()

    def latestOffset(self, start: dict, limit: ReadLimit) -> dict:
        try:
            snap = self._target or self._snapshot()
        except KafkaException as exc:  # broker down or restarting: no batch now, try at the next trigger
            self._warn_once(("unreachable",), "kafka broker unreachable; no new batch until it answers",
                            bootstrap=self.bootstrap, error=str(exc))
            return start
        self._warned.discard(("unreachable",))
        if start.get("_cluster") == snap.cluster:
            known = flat_offsets(start)
        else:
            self._warn_once(("cluster", start.get("_cluster"), snap.cluster),
                            "kafka cluster changed (broker restarted empty?); reading the new broker from its earliest offsets",
                            old_cluster=start.get("_cluster"), new_cluster=snap.cluster)
            known = {}
        firsts = {tp: low for tp, low in snap.lows.items() if tp not in known}
        begin = {**known, **firsts}
        latest = {tp: snap.ends.get(tp, offset) for tp, offset in begin.items()}
        max_rows = limit.max_rows if isinstance(limit, ReadMaxRows) else None
        return offset_json(snap.cluster, limit_offsets(begin, latest, max_rows), firsts)

    def partitions(self, start: dict, end: dict) -> list[KafkaTask]:
        # A batch Spark replays after a restart was planned against the broker of that time.
        # If the broker since came back empty, those offsets now name other records (or none):
        # read nothing, and the next batch starts the new broker from its earliest offsets.
        # A batch this reader just planned needs no second look at the broker (a metadata
        # request on the freshness path); one planned before a restart of the job does.
        current = self._known_cluster if end.get("_cluster") == self._known_cluster else self._cluster_id()
        if current is not None and end.get("_cluster") != current:
            _warn("batch planned on a broker that is gone (restarted empty?); its records are lost with it, "
                  "reading nothing for it", batch_cluster=end.get("_cluster"), broker_cluster=current)
            return []
        return [KafkaTask(tuple(KafkaRange(*r) for r in task)) for task in plan_tasks(start, end)]

    def read(self, partition: KafkaTask) -> Iterator[pa.RecordBatch]:
        _ensure_log_output()
        return read_ranges(self.bootstrap, partition.ranges)

    def commit(self, end: dict) -> None:
        pass  # Spark's checkpoint holds the offsets; nothing is committed to Kafka

    def stop(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    # -- driver-side broker probing --

    def _cluster_id(self) -> str | None:
        """The broker's cluster id now, or None when it cannot be asked (then nothing is assumed)."""
        try:
            return self._driver_consumer().list_topics(timeout=PROBE_SECONDS).cluster_id or ""
        except KafkaException:
            return None

    def _driver_consumer(self) -> Consumer:
        if self._consumer is None:
            self._consumer = Consumer(_consumer_config(self.bootstrap, **{
                "enable.partition.eof": True, "fetch.wait.max.ms": 10}))
        return self._consumer

    def _snapshot(self) -> Snapshot:
        """Cluster id, earliest and real end offset of every partition of the subscribed topics.

        tansu's in-memory log answers ListOffsets and Fetch in time that grows with the number
        of record batches it holds, so the partitions seen before are probed from their last
        known end with one fetch, and only new ones are asked for their offsets."""
        consumer = self._driver_consumer()
        metadata = consumer.list_topics(timeout=PROBE_SECONDS)
        cluster = metadata.cluster_id or ""
        if cluster != self._known_cluster:
            self._known_cluster, self._known = cluster, {}
        tps = [(t, p) for t in self.topics if t in metadata.topics and metadata.topics[t].error is None
               for p in sorted(metadata.topics[t].partitions)]
        remembered = bool(self._known)
        try:
            return Snapshot(cluster, *self._offsets(tps))
        except KafkaException:
            if not remembered:
                raise
            self._known = {}  # a known end the broker no longer has (topic recreated?): ask afresh
            return Snapshot(cluster, *self._offsets(tps))

    def _offsets(self, tps: list[Partition]) -> tuple[dict[Partition, int], dict[Partition, int]]:
        """(lows, ends) of `tps`; remembers both for the next call."""
        consumer = self._consumer
        probes = {}
        for tp in tps:
            if tp not in self._known:
                self._known[tp] = consumer.get_watermark_offsets(TopicPartition(*tp), timeout=PROBE_SECONDS)
            probes[tp] = self._known[tp]
        ends = self._fetch_ends(probes)
        self._known.update({tp: (probes[tp][0], ends[tp]) for tp in tps})
        return {tp: probes[tp][0] for tp in tps}, ends

    def _fetch_ends(self, reported: dict[Partition, tuple[int, int]]) -> dict[Partition, int]:
        """The high watermark of a Fetch response for each partition (tansu: ListOffsets is low)."""
        consumer = self._consumer
        consumer.assign([TopicPartition(t, p, max(high - 1, low)) for (t, p), (low, high) in reported.items()])
        try:
            waiting = set(reported)
            deadline = time.monotonic() + PROBE_SECONDS
            while waiting:
                for msg in consumer.consume(CONSUME_BATCH, timeout=PROBE_POLL_SECONDS):
                    err = msg.error()
                    if err is None or err.code() == KafkaError._PARTITION_EOF:
                        waiting.discard((msg.topic(), msg.partition()))
                    elif err.code() not in TRANSIENT_ERRORS:
                        raise KafkaException(err)
                if waiting and time.monotonic() > deadline:
                    raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"no fetch answer for {sorted(waiting)}"))
            return {(t, p): max(high, consumer.get_watermark_offsets(TopicPartition(t, p), cached=True)[1])
                    for (t, p), (_, high) in reported.items()}
        finally:
            consumer.unassign()

    def _warn_once(self, key: tuple, msg: str, **fields) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _warn(msg, **fields)


# ---- reading ranges (in Spark's Python workers) -------------------------------------------

def read_ranges(bootstrap: str, ranges: tuple[KafkaRange, ...]) -> Iterator[pa.RecordBatch]:
    """Arrow batches of exactly the records at offsets [start, end) of each range, with one
    consumer for all of them (ranges are of different partitions)."""
    # Small fetches: librdkafka prefetches every partition up to its queue limits, and whatever
    # it fetches past a range's end is work for the broker and this process thrown away.
    consumer = Consumer(_consumer_config(bootstrap, **{
        "max.partition.fetch.bytes": FETCH_BYTES, "fetch.max.bytes": FETCH_BYTES * len(ranges),
        "receive.message.max.bytes": FETCH_BYTES * (len(ranges) + 1),
        "queued.min.messages": sum(r.end - r.start for r in ranges),
        "queued.max.messages.kbytes": 2 * FETCH_BYTES >> 10}))
    open_ranges = {(r.topic, r.partition): r for r in ranges}
    position = {tp: r.start for tp, r in open_ranges.items()}
    try:
        consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in ranges])
        last_progress = time.monotonic()
        while open_ranges:
            left = sum(r.end - position[tp] for tp, r in open_ranges.items())
            # consume() waits for all it asks for or the timeout: never ask for more than the ranges hold.
            msgs = consumer.consume(min(CONSUME_BATCH, left), timeout=POLL_SECONDS)
            if any(m.error() is not None for m in msgs):
                msgs = _without_transient_errors(msgs, open_ranges, position)
            if len(ranges) == 1:  # a backlog's tasks: no per-message sorting
                by_partition = {(ranges[0].topic, ranges[0].partition): msgs}
            else:
                by_partition = {}
                for m in msgs:
                    by_partition.setdefault((m.topic(), m.partition()), []).append(m)
            for tp, part_msgs in by_partition.items():
                if tp not in open_ranges:
                    continue  # prefetched past a finished range
                batch = _record_batch(open_ranges[tp], part_msgs, position[tp])
                if batch.num_rows:
                    position[tp] = batch.column(2)[-1].as_py() + 1
                    last_progress = time.monotonic()
                    if position[tp] >= open_ranges[tp].end:
                        consumer.pause([TopicPartition(*tp)])  # stop fetching what would be thrown away
                        del open_ranges[tp]
                    yield batch
            if open_ranges and time.monotonic() - last_progress > STALL_SECONDS:
                r = min(open_ranges.values(), key=lambda r: (r.topic, r.partition))
                raise TimeoutError(f"{r.topic}/{r.partition}: offsets [{position[r.topic, r.partition]}, {r.end}) not "
                                   f"readable, nothing came for {STALL_SECONDS:.0f} s (broker down, emptied or restarted?)")
    finally:
        consumer.close()


def _without_transient_errors(msgs: list, open_ranges: dict[Partition, KafkaRange], position: dict[Partition, int]) -> list:
    """librdkafka reports a lost connection as an event and reconnects by itself: only the stall
    timeout gives up on those. A missing offset or topic will not heal: fail the task now."""
    for m in msgs:
        err = m.error()
        if err is not None and err.code() not in TRANSIENT_ERRORS:
            r = open_ranges.get((m.topic(), m.partition()))
            where = f"{r.topic}/{r.partition}: cannot read offsets [{position[m.topic(), m.partition()]}, {r.end})" \
                if r else f"cannot read {sorted(open_ranges)}"
            raise RuntimeError(f"{where}: {err.str()} (broker emptied or restarted?)")
    return [m for m in msgs if m.error() is None]


def _record_batch(part: KafkaRange, msgs: list, position: int) -> pa.RecordBatch:
    """The records of one partition's messages from `position` to the range's end."""
    offsets = [m.offset() for m in msgs]
    # A fetch returns whole broker batches: drop what is before `position` or past the range.
    lo, hi = bisect.bisect_left(offsets, position), bisect.bisect_left(offsets, part.end)
    msgs, offsets = msgs[lo:hi], offsets[lo:hi]
    n = len(msgs)
    millis = pa.array([m.timestamp()[1] for m in msgs], pa.int64())
    return pa.RecordBatch.from_arrays([
        pa.array([part.topic] * n, pa.string()),
        pa.array([part.partition] * n, pa.int32()),
        pa.array(offsets, pa.int64()),
        _utf8([m.key() for m in msgs]),
        _utf8([m.value() for m in msgs]),
        millis.cast(pa.timestamp("ms", tz="UTC")).cast(pa.timestamp("us", tz="UTC")),
    ], schema=ARROW_SCHEMA)


def _utf8(raw: list[bytes | None]) -> pa.Array:
    """Bytes to Arrow strings, validated in C; only a batch with invalid UTF-8 pays for Python decoding."""
    try:
        return pa.array(raw, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array([b.decode("utf-8", errors="replace") if b is not None else None for b in raw], pa.string())


def _consumer_config(bootstrap: str, **overrides) -> dict:
    config = {
        "bootstrap.servers": bootstrap,
        # assign() only: the group is never joined and nothing is committed, offsets live in Spark's checkpoint.
        "group.id": "lakewatch-spark-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "error",  # a missing offset must fail loudly, never silently jump
        "logger": KAFKA_LOG,
    }
    config.update(overrides)
    return config


# ---- logging ------------------------------------------------------------------------------

def _warn(msg: str, **fields) -> None:
    log.warning(msg, extra={"fields": fields})


class _JsonLines(logging.Formatter):
    """The line shape of lakewatch.logs, which Spark's Python processes cannot be assumed to import."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
                 "level": record.levelname.lower(), "service": "spark", "logger": record.name, "msg": record.getMessage()}
        entry.update(getattr(record, "fields", {}))
        return json.dumps(entry, default=str)


def _ensure_log_output() -> None:
    """Spark's Python workers configure no logging: give them JSON lines on stderr, which Spark
    copies to the driver's log. A process that configured logging itself is left alone."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JsonLines())
        root.addHandler(handler)
        root.setLevel(os.environ.get("LAKEWATCH_LOG_LEVEL", "WARNING"))
