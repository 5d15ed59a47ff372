"""Does the first model's live false-alarm rate depend on the hour `make up` ran at?

The stack test (tests/integration/test_stack.py) trains its first model on 8 h of simulated
history and watches the live minutes after it, at whatever hour CI happens to run. This
benchmark does the same without broker and Spark, for several hours of one weekday: the
simulator's trades up to each hour T (bars by the stream job's own aggregation, as
bench_model_margin.py makes them), training's split, scales and threshold, then the
verdicts on the 15 minutes after T. It prints, per T, the flagged bars and the false alarms
among them (flagged outside every injected anomaly), next to the reference measured on the
same bars: the bars inside a labelled window, what a perfect detector flags.

Usage: python benchmarks/bench_first_model_hours.py [--hours 8] [--market-hours always]
       [--at 0020 1420 ...]   (UTC, HHMM, on 2026-12-02, a Wednesday)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np
import pandas as pd

from testkit.history import simulated_history
from lakewatch import settings as settings_module
from model import ensemble
from model import train as training
from model.evaluate import bar_truth, best_threshold, live_false_alarms
from model.features import build_features

LIVE_MINUTES = 15


def first_model_live(settings, at: pd.Timestamp, hours: float) -> dict:
    end_ms = int((at + pd.Timedelta(minutes=LIVE_MINUTES)).value // 1_000_000)
    bars, labels = simulated_history(settings, end_ms, hours + LIVE_MINUTES / 60, settings.sim_rate)
    features = build_features(bars)
    history = features[features["window_start"] < at]
    train_x, train_labels, _, _, _ = training.split(history, labels[labels["end_ts"] < at], training.TEST_FRACTION)
    params = training.fit_ensemble(train_x, train_labels)
    threshold, _ = best_threshold(train_x.assign(anomaly_score=ensemble.score(train_x, params)), train_labels,
                                  settings.model_min_precision)
    live = features[(features["window_start"] >= at)
                    & (features["window_start"] < at + pd.Timedelta(minutes=LIVE_MINUTES))].copy()
    live["is_anomaly"] = ensemble.score(live, params) >= threshold
    live["excluded_reason"] = np.where(live["pipeline_gap"], "pipeline_gap", None)
    figures = live_false_alarms(live, labels)
    figures["false_by_class"] = live[live["is_anomaly"] & ~bar_truth(live, labels)]["asset_class"].value_counts().to_dict()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hours", type=float, default=8.0, help="history the first model trains on")
    parser.add_argument("--market-hours", default="always", choices=("always", "us"))
    parser.add_argument("--at", nargs="+", default=["0020", "0420", "0820", "1220", "1420", "1425", "1620", "2050"])
    args = parser.parse_args()
    settings = dataclasses.replace(settings_module.load(), sim_market_hours=args.market_hours)
    day = pd.Timestamp("2026-12-02", tz="UTC")
    print(f"first model on {args.hours:g} h of history ({args.market_hours} market hours, "
          f"{settings.sim_rate:g} trades/s), then {LIVE_MINUTES} live minutes")
    print(f"{'live from':>9} {'bars':>5} {'flagged':>7} {'false':>5} {'labelled (ref.)':>15}  false alarms by class")
    for hhmm in args.at:
        at = day + pd.Timedelta(hours=int(hhmm[:2]), minutes=int(hhmm[2:]))
        f = first_model_live(settings, at, args.hours)
        print(f"{at:%H:%M} UTC {f['bars']:>5} {f['flagged']:>7} {f['false_alarms']:>5} {f['labelled_bars']:>15}  "
              f"{f['false_by_class']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
