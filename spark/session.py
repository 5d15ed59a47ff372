"""The one SparkSession builder: the stream job and the tests start Spark the same way.

`spark_conf` is a pure function of the settings and the jars, so tests check the
configuration without a JVM. The jars (Spark's Kafka source, delta-spark) are local files
fetched once by stack/jars.py: nothing is downloaded when Spark starts.
"""
from __future__ import annotations

import os
import sys

from pathlib import Path

from lakewatch.settings import Settings

APP_NAME = "lakewatch-stream"

# delta-spark on the local file system. Each was measured on 2 cores (docs/benchmarks.md).
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # Delta's default log store for file: goes through Hadoop's FileContext, which forks
    # `chmod` for every log file it writes; the local one renames with plain Java calls.
    "spark.delta.logStore.file.impl": "io.delta.storage.LocalLogStore",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs",
    # Each commit carries the table's app transactions (the exactly-once keys) into its .crc
    # file, so the next batch's "was this batch written?" can be answered without replaying the log.
    "spark.databricks.delta.setTransactionsInCrc.writeOnCommit": "true",
    # A full state reconstruction every few commits to re-verify the .crc: seconds per table
    # on a long-running stream, for a check meant for tests.
    "spark.databricks.delta.versionChecksum.forcedValidationInterval": "-1",
    # MERGE's source is a batch already on the driver, deterministic: no need to copy it first.
    "spark.databricks.delta.merge.materializeSource": "none",
    # On this version every new table version is read back in a Spark job (its state: files,
    # sizes) before the next write. One task instead of 50 for a log this small, and no
    # adaptive re-planning of these tiny jobs: the bars MERGE went from 3.5 s to 1.3-1.8 s.
    "spark.databricks.delta.snapshotPartitions": "1",
    "spark.sql.adaptive.enabled": "false",
    # Spark's default INT96 timestamps are deprecated in Parquet; delta-rs, pyarrow and the
    # tables the lake had before delta-spark use microseconds, which every reader takes as such.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def spark_conf(settings: Settings, jars: list[Path]) -> dict[str, str]:
    """The stream job's Spark configuration, with `jars` on its classpath."""
    return {
        "spark.jars": ",".join(str(j) for j in jars),
        **DELTA_CONF,
        "spark.master": settings.spark_master,
        "spark.driver.memory": settings.spark_driver_memory,
        # The driver listens on `host`; executors, local or on a worker, connect back to this name.
        "spark.driver.host": settings.spark_driver_host or settings.host,
        "spark.driver.bindAddress": settings.host,
        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
        "spark.sql.session.timeZone": "UTC",
        # A record that overflows an expression must become a reject, not stop the stream forever.
        "spark.sql.ansi.enabled": "false",
        "spark.sql.shuffle.partitions": "2",
        "spark.local.dir": str(settings.state_dir / "spark-tmp"),
        # Made at every start, though no table is named: under the state, not in the working folder.
        "spark.sql.warehouse.dir": str(settings.state_dir / "spark-warehouse"),
        "spark.sql.streaming.metricsEnabled": "true",
        # Every trigger writes an offset-log file (before reading: on the freshness path) and a
        # commit-log file. Through Hadoop's FileContext on the local file system each write forks
        # `chmod` and `readlink` (no native Hadoop library in pip's or Apache's Spark): 55-65 ms
        # per file. The FileSystem-based manager over the raw local file system does the same
        # atomic write-then-rename with plain Java calls: 8-10 ms.
        "spark.sql.streaming.checkpointFileManagerClass":
            "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
        "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
        # foreachBatch collects every batch to the driver. A task's result over 1 MB (the default)
        # takes a detour through the block manager: 30-40 ms more per live batch of 10k records.
        # Spark caps this at spark.rpc.message.maxSize (128 MB).
        "spark.task.maxDirectResultSize": "128m",
    }


def spark_jars(settings: Settings) -> list[Path]:
    folder = settings.jars_dir / "spark"
    jars = sorted(folder.glob("*.jar"))
    if not jars:
        raise FileNotFoundError(f"Spark's Kafka source and delta-spark are not in {folder}; fetch them with: make venv")
    return jars


def spark_session(settings: Settings, app_name: str = APP_NAME):
    """A SparkSession on `spark_conf(settings)` with the spark jars. Its Python workers run this
    interpreter, so they import this venv's packages, not whatever `python3` is on PATH."""
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", settings.host)
    spark = SparkSession.builder.appName(app_name).config(map=spark_conf(settings, spark_jars(settings))).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark
