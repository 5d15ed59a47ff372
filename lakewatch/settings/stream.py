"""The stream job (spark/): Kafka -> Delta, with 1-minute bars. How fast it reads, when a bar is
final, which trades it rejects, and the Spark it runs on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Stream:
    stream_port: int = 9102  # its metrics and health
    trigger_seconds: float = 1.0
    max_offsets_per_trigger: int = 200_000  # foreachBatch collects a batch on the driver: bound it
    kafka_api_timeout_seconds: float = 15.0  # how long an offset lookup waits for a dead leader
    bar_watermark_seconds: int = 10  # a 1-minute bar is final once event time passed its end by this
    # Bars are merged into bars_1m in the background at most this often: a MERGE costs about 1 s
    # of the 2 cores whatever its size (docs/benchmarks.md), too much for every 1 s trigger.
    bars_merge_seconds: float = 5.0
    max_trade_age_days: int = 366  # older trade_ts (vs the Kafka timestamp) is rejected as absurd
    max_trade_future_seconds: int = 300  # so is a trade_ts this far ahead of the Kafka timestamp
    spark_driver_memory: str = "2g"
    spark_master: str = "local[2]"  # compose's cluster profile: spark://spark-master:7077
    # Where executors reach the driver (default: host). In compose, host is 0.0.0.0, a bind
    # address only: executors on spark-worker need the stream service's name instead.
    spark_driver_host: str = ""

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints"
