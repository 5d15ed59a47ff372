"""The stream job on the one-host cluster against `make up`'s engines, in one run.

  reference   make up's engines: the embedded broker (one node) and Spark in the driver
              (local[2]); the stream job (--available-now) turns a backlog into Delta tables
  cluster     make cluster's engines: three brokers (topics replicated 3 times, acks=all with
              2 in sync) and a standalone Spark cluster (a master, two workers of 1 core each)
              running the job's executors; the same backlog, the same job
  throughput  trades/s from the first batch's start to the last batch's end, as
              bench_stream.py measures it (JVM start-up excluded); the ratio is cluster/reference
  memory      resident memory of each engine's processes (their sessions: a worker's executor
              too), sampled every second; the peak
Needs root (network namespaces). Usage: python benchmarks/bench_cluster.py [--backlog N]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import threading
from pathlib import Path

import pytest

from bench_stream import produce_backlog, rate_over
from ingestion.topics import ensure_topics
from stack import prerequisites
from stack import runner as stack
from stack.cluster import network
from testkit import lake
from testkit.processes import private_settings, start_kafka, stop_process, tree_rss_mb


def available_now(settings, backlog: int, peaks: dict[str, float], sessions) -> float:
    """Run the job over the backlog while sampling memory; its throughput."""
    done = threading.Event()

    def sample():
        while not done.wait(1):
            for name, pid in sessions().items():
                try:
                    peaks[name] = max(peaks.get(name, 0.0), tree_rss_mb(pid))
                except OSError:
                    pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = lake.run_available_now(timeout=1800)
    finally:
        done.set()
        sampler.join()
    batches = [e for e in lake.log_events(result.stderr) if e["msg"] == "batch written"]
    assert sum(b["trades"] for b in batches) == backlog, result.stderr[-2000:]
    return rate_over(batches[1:])  # without the first batch's one-time executor start-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=600_000)
    args = parser.parse_args()
    if lacking := prerequisites.missing(["root", "ip"]):
        raise SystemExit(prerequisites.advice("bench_cluster.py", lacking))
    work = Path(tempfile.mkdtemp(prefix="lakewatch-bench-cluster-"))

    reference_peaks: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, work / "reference" / "var")
        broker = start_kafka(settings, heap=settings.broker_heap)
        try:
            ensure_topics(settings)
            produce_backlog(settings.bootstrap_servers, args.backlog)
            reference = available_now(settings, args.backlog, reference_peaks, lambda: {"broker": broker.pid})
        finally:
            stop_process(broker)

    cluster_peaks: dict[str, float] = {}
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, work / "cluster" / "var", profile="cluster", cluster_subnet="10.79.0",
                                    cluster_netns_prefix="lwb")
        nodes = [s.name for s in stack.services(settings) if s.netns and not s.name.startswith("trino")]
        try:
            stack.up(settings, say=lambda line: None, only=tuple(nodes))
            produce_backlog(settings.bootstrap_servers, args.backlog)

            def sessions():
                return {name: current.pid for name in nodes if (current := stack.running(settings, name))}

            cluster = available_now(settings, args.backlog, cluster_peaks, sessions)
        finally:
            stack.down(settings, say=lambda line: None)
            network.down(settings)

    print(f"cluster benchmark: backlog {args.backlog:,} trades, the stream job --available-now "
          f"(max {settings.max_offsets_per_trigger:,} records a batch), {os.cpu_count()} cores")
    print(f"{'make up: 1 broker, local[2]':<44} {reference:>9,.0f} trades/s   1.00")
    print(f"{'cluster: 3 brokers (RF 3), 2 Spark workers':<44} {cluster:>9,.0f} trades/s   {cluster / reference:.2f} x make up")
    for label, peaks in (("make up", reference_peaks), ("cluster", cluster_peaks)):
        print(f"peak RSS, {label}: " + ", ".join(f"{name} {mb:,.0f} MiB" for name, mb in peaks.items())
              + f"; total {sum(peaks.values()):,.0f} MiB")


if __name__ == "__main__":
    main()
