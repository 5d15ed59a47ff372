"""Retrain benchmark (issue 22): what Airflow's lakewatch_retrain costs, against references
measured in the same run.

- Duration. HOURS of simulated history go the whole way into a private lake (broker, stream
  job, Delta); a private MLflow and serving start. `make train`'s work in one process
  (model/train.py) is the reference; then `airflow dags test lakewatch_retrain` runs twice on
  the same lake: once with no champion (the gate passes, the alias moves, the confirm step
  waits for serving to follow) and once against that champion (the gate says no).
- Idle cost. Airflow (`airflow standalone`, as `make up` starts it) and its StatsD exporter
  idle for a minute; their memory (RSS summed over the processes, and PSS, which counts pages
  the forked workers share once) and CPU are printed beside the MLflow tracking server's,
  measured over the same minute.

Usage: python benchmarks/bench_retrain.py [--hours 48]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mlflow
import pytest

from model import train as training
from stack import runner
from testkit import lake
from testkit.processes import (airflow_dags_test, private_settings, start_mlflow, start_module, stop_process,
                               wait_until_serving)


def session_pids(leader: int) -> list[int]:
    return runner.session_members(leader) or [leader]


def memory_mib(pids: list[int]) -> tuple[float, float]:
    """(RSS, PSS) summed over the processes, MiB."""
    rss = pss = 0.0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup[1:]}
        rss, pss = rss + fields.get("Rss", 0) / 1024, pss + fields.get("Pss", 0) / 1024
    return rss, pss


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / 100


def idle_cost(groups: dict[str, int], seconds: float = 60) -> None:
    before = {name: cpu_seconds(session_pids(pid)) for name, pid in groups.items()}
    time.sleep(seconds)
    print(f"\nidle over {seconds:.0f} s:     {'RSS':>9} {'PSS':>9} {'CPU':>12}")
    for name, pid in groups.items():
        pids = session_pids(pid)
        rss, pss = memory_mib(pids)
        cpu = (cpu_seconds(pids) - before[name]) / seconds * 100
        print(f"{name:<22} {rss:6,.0f} MiB {pss:6,.0f} MiB {cpu:5.1f} % core  ({len(pids)} processes)")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=48)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-retrain-"))
    with pytest.MonkeyPatch.context() as mp:
        # The history ends when the backfill does; the lake must count as fresh for the whole run.
        settings = private_settings(mp, state / "var", sim_anomalies_per_hour=1.5, retrain_max_lake_age_seconds=86400)
        started = time.monotonic()
        lake.fill_with_history(settings, args.hours, args.rate)
        print(f"history: {args.hours:g} h simulated into the lake in {time.monotonic() - started:.0f} s")
        server = start_mlflow(settings)
        serving = start_module(settings, "model.serve")
        try:
            started = time.monotonic()
            first = training.train(settings)
            reference = time.monotonic() - started
            wait_until_serving(settings, first["version"])
            client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
            client.delete_registered_model_alias(settings.model_name, "champion")
            moved, moved_s = airflow_dags_test(settings)
            kept, kept_s = airflow_dags_test(settings)
            champion = client.get_model_version_by_alias(settings.model_name, "champion").version
            print(f"\n`make train` in one process (reference): {reference:5.1f} s")
            print(f"DAG, gate passes, alias moves, serving follows: {moved_s:5.1f} s ({moved_s / reference:.1f}x), "
                  f"exit {moved.returncode}")
            print(f"DAG, gate says no, champion kept:              {kept_s:5.1f} s ({kept_s / reference:.1f}x), "
                  f"exit {kept.returncode}")
            print(f"champion after both: version {champion} (the first DAG run's; the reference was {first['version']}); "
                  f"serving reloads every {settings.serving_reload_seconds:g} s")

            runner.up(settings, only=("statsd", "airflow"))
            try:
                time.sleep(60)  # past its start: the first DAG parse, the database's warm-up
                idle_cost({"airflow (standalone)": runner.running(settings, "airflow").pid,
                           "statsd exporter": runner.running(settings, "statsd").pid,
                           "mlflow (reference)": server.pid})
            finally:
                for name in ("airflow", "statsd"):
                    runner.stop(settings, name)
        finally:
            stop_process(serving)
            stop_process(server)
            shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
