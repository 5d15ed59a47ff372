"""Anomaly model benchmark: quality on held-out simulator data, and the model's own speed.

A private lake under var/bench/model gets HOURS of simulated history the whole way through
(broker, stream job, Delta; reused while it exists), a private MLflow server takes a training
run (model/train.py), and the held-out figures of the model's detector (the robust ensemble, or
LAKEWATCH_MODEL_DETECTOR) and the IsolationForest baseline are printed per injected kind. Then the registered champion scores held-out feature
rows, single rows (p50/p99 over 1,000 sequential calls) and 10k-row batches (rows/s): over
REST through model/serve.py (one keep-alive connection; batch bodies are encoded before the
clock starts, as JSON dataframe_split and as CSV), and in-process as the reference measured
in the same run.
Usage: [LAKEWATCH_MODEL_DETECTOR=knn|path_knn] python benchmarks/bench_model.py [--hours 48]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import time

import mlflow
import numpy as np

from lakewatch import settings as settings_module
from model import train as training
from model.features import build_features
from testkit import lake
from testkit.processes import free_port, serving_health, start_mlflow, start_module, stop_process, wait_for

KINDS = ("price_spike", "flash_crash", "volume_burst", "volatility_shift", "frozen_feed")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=48)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    base = settings_module.load()
    settings = dataclasses.replace(
        base, state_dir=base.state_dir / "bench" / "model", venv_home=base.venv_dir, broker_port=free_port(), stream_port=free_port(),
        mlflow_port=free_port(), mlflow_url="", kafka_bootstrap="", sim_market_hours="always",
        sim_anomalies_per_hour=1.5)
    marker = settings.state_dir / "history.json"
    wanted = {"hours": args.hours, "rate": args.rate}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        shutil.rmtree(settings.state_dir, ignore_errors=True)
        import os

        os.environ.update({"LAKEWATCH_STATE_DIR": str(settings.state_dir), "LAKEWATCH_VENV_HOME": str(settings.venv_dir),
                           "LAKEWATCH_BROKER_PORT": str(settings.broker_port),
                           "LAKEWATCH_STREAM_PORT": str(settings.stream_port),
                           "LAKEWATCH_SIM_MARKET_HOURS": "always", "LAKEWATCH_SIM_ANOMALIES_PER_HOUR": "1.5"})
        started = time.monotonic()
        lake.fill_with_history(settings, args.hours, args.rate)
        print(f"history: {args.hours:g} h simulated into the lake in {time.monotonic() - started:.0f} s")
        marker.write_text(json.dumps(wanted))
    shutil.rmtree(settings.mlflow_dir, ignore_errors=True)  # a fresh registry: this run's model is the champion
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    server = start_mlflow(settings)
    try:
        result = training.train(settings)
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        champion = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
        bars, labels = training.read_history(settings)
        _, _, test_x, test_labels, _ = training.split(build_features(bars), labels, training.TEST_FRACTION)
        report_quality(result, test_x, test_labels, settings.model_detector)
        report_speed(settings, champion, test_x[champion.metadata.get_input_schema().input_names()])
    finally:
        stop_process(server)
    return 0


def report_quality(result, test_x, test_labels, detector: str) -> None:
    print(f"\nheld out: {len(test_x):,} bars, {len(test_labels)} injected anomalies "
          f"({', '.join(f'{k} {n}' for k, n in test_labels['kind'].value_counts().items())})")
    print(f"{'model':<18} {'recall':>7} {'precision':>9} {'f1':>6} {'pr_auc':>7} {'delay p50':>9}  "
          + " ".join(f"{k:>16}" for k in KINDS))
    for name, m in result["test"].items():
        print(f"{name:<18} {m['recall']:7.3f} {m['precision']:9.3f} {m['f1']:6.3f} {m['pr_auc']:7.3f} "
              f"{m['delay_p50_s']:8.0f}s  " + " ".join(f"{m.get('recall_' + k, float('nan')):16.3f}" for k in KINDS))
    model = result["test"][detector]
    print(f"per-kind delay p50 ({detector}): " + ", ".join(
        f"{k} {model.get('delay_p50_s_' + k, float('nan')):.0f} s" for k in KINDS))
    print(f"goal (recall >= 0.9 at precision >= 0.8): {'met' if training.meets_goal(model) else 'NOT met'}; "
          f"beats the IsolationForest on F1: {model['f1'] > result['test'][training.BASELINE]['f1']}")



def timings(call, bodies: list, batch) -> tuple[float, float, float]:
    """(single-row p50 ms, p99 ms, 10-batch rows/s) of call over 1,000 single-row bodies and `batch`."""
    singles = []
    for i in range(1000):
        body = bodies[i % len(bodies)]
        started = time.perf_counter()
        call(body)
        singles.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for _ in range(10):
        call(batch)
    return float(np.percentile(singles, 50)), float(np.percentile(singles, 99)), 100_000 / (time.perf_counter() - started)


def report_speed(settings, champion, rows) -> None:
    import requests

    settings = dataclasses.replace(settings, serving_port=free_port())
    serving_url = settings.url(settings.serving_port)
    singles = [rows.iloc[[i]] for i in range(min(1000, len(rows)))]
    batch = rows.sample(10_000, replace=True, random_state=1)

    def split_json(frame):
        return json.dumps({"dataframe_split": frame.to_dict(orient="split", index=False)})

    serving = start_module(settings, "model.serve", {
        "LAKEWATCH_STATE_DIR": str(settings.state_dir), "LAKEWATCH_VENV_HOME": str(settings.venv_dir),
        "LAKEWATCH_MLFLOW_PORT": str(settings.mlflow_port),
        "LAKEWATCH_SERVING_PORT": str(settings.serving_port), "LAKEWATCH_MLFLOW_URL": ""})
    session = requests.Session()
    try:
        wait_for(lambda: (serving_health(settings) or {}).get("version"), 60, "serving to load the champion", every=0.2)

        def post(content_type):
            def call(body):
                response = session.post(f"{serving_url}/invocations", data=body, headers={"Content-Type": content_type})
                response.raise_for_status()
            return call

        results = {
            "REST, JSON": timings(post("application/json"), [split_json(f) for f in singles], split_json(batch)),
            "REST, CSV": timings(post("text/csv"), [f.to_csv(index=False) for f in singles], batch.to_csv(index=False)),
        }
    finally:
        stop_process(serving)
    results["in-process (reference)"] = timings(champion.predict, singles, batch)
    print(f"{'champion':<24} {'single p50':>11} {'single p99':>11} {'10k batches':>14}")
    for name, (p50, p99, rate) in results.items():
        print(f"{name:<24} {p50:8.2f} ms {p99:8.2f} ms {rate:9,.0f} rows/s")
    best = max(results["REST, JSON"][2], results["REST, CSV"][2])
    print(f"goals: single-row p99 <= 15 ms: {'met' if results['REST, JSON'][1] <= 15 else 'NOT met'}; "
          f"batches >= 50k rows/s: {'met' if best >= 50_000 else 'NOT met'} (JSON "
          f"{results['REST, JSON'][2]:,.0f}, CSV {results['REST, CSV'][2]:,.0f} rows/s)")


if __name__ == "__main__":
    sys.exit(main())
