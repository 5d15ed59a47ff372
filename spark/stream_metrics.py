"""Prometheus metrics of the stream job, defined once for the job and its sink."""
from prometheus_client import Counter, Gauge, Histogram

BATCH_SECONDS = Histogram(
    "lakewatch_stream_batch_duration_seconds", "Time to write one micro-batch to every Delta table.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
BARS_MERGE_SECONDS = Histogram(
    "lakewatch_stream_bars_merge_duration_seconds", "Time of one background merge of waiting bars into bars_1m.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
BARS_MERGED_BATCH = Gauge("lakewatch_stream_bars_merged_batch_id", "Id of the newest micro-batch whose bars are in bars_1m.")
INPUT_ROWS = Counter("lakewatch_stream_input_rows_total", "Kafka records read by the stream job.")
ROWS_WRITTEN = Counter("lakewatch_stream_rows_written_total", "Rows committed to Delta, by table.", ["table"])
REJECTS = Counter("lakewatch_stream_rejects_total", "Records sent to the rejects table, by topic.", ["topic"])
LATE_TRADES = Counter(
    "lakewatch_stream_late_trades_total",
    "Trades older than the watermark: stored in trades with in_bar = false, not merged into their bar.",
)
INPUT_RATE = Gauge("lakewatch_stream_input_rows_per_second", "Spark's input rate over the last micro-batch.")
PROCESSED_RATE = Gauge("lakewatch_stream_processed_rows_per_second", "Spark's processing rate over the last micro-batch.")
LAG = Gauge("lakewatch_stream_consumer_lag", "Records on the broker not yet processed, by topic and partition.",
            ["topic", "partition"])
WATERMARK = Gauge("lakewatch_stream_watermark_timestamp_seconds", "Newest per-symbol event-time watermark of the bars.")
LAST_BATCH = Gauge("lakewatch_stream_last_batch_timestamp_seconds", "When the last micro-batch finished (epoch s).")
BATCH_ID = Gauge("lakewatch_stream_batch_id", "Id of the last micro-batch written.")
