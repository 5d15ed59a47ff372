"""How much margin the training precision bar needs: held-out quality over many histories.

Training picks the threshold with the best recall at precision >= LAKEWATCH_MODEL_MIN_PRECISION
on its own (training) part. Held-out precision then lands some points lower and varies with
the history: a bar set right at the goal fails it every few trainings. This benchmark
simulates N histories of HOURS (the simulator and settings of the model's CI test, each with
its own seed and ending at a different time, so each holds other anomalies), makes the 1-minute bars from
the simulator's trades with the stream job's own aggregation (spark/bars.py: what it writes
for an in-order backfill, without broker and Spark, so a history takes a minute instead of
five), splits, fits and evaluates exactly as model/train.py does, and prints, per candidate
bar, the held-out recall and precision of every history and their worst case against the goal.
Each history is scored twice: with the shipped feature weights (model/ensemble.py's RULES) and
with equal weights (every weight 1 but the missing minute's 3, as before they were tuned), the
reference, in the same run. --realism realistic runs the realistic market instead of the clean
one (ingestion/simulator.py).
Usage: python benchmarks/bench_model_margin.py [--histories 12] [--bars 0.85 0.9 0.92] [--realism realistic]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time

import numpy as np
import pandas as pd

from bench_rule_weights import EQUAL
from lakewatch import settings as settings_module
from model import ensemble
from model import train as training
from model.evaluate import best_threshold, event_metrics
from model.features import build_features
from testkit.history import simulated_history


WEIGHTS = {"shipped": ensemble.RULES, "equal": ensemble.rules_with_weights(EQUAL)}


def held_out(bars: pd.DataFrame, labels: pd.DataFrame, min_precisions: list[float]) -> dict[tuple[str, float], dict]:
    """The robust ensemble's held-out metrics for each set of weights and training precision bar
    (model/train.py's steps)."""
    train_x, train_labels, test_x, test_labels, _ = training.split(build_features(bars), labels, training.TEST_FRACTION)
    fitted = training.fit_ensemble(train_x, train_labels)  # the scales do not depend on the weights
    out = {}
    for name, rules in WEIGHTS.items():
        params = {**fitted, "rules": rules}
        train_scored = train_x.assign(anomaly_score=ensemble.score(train_x, params))
        test_scored = test_x.assign(anomaly_score=ensemble.score(test_x, params))
        for p in min_precisions:
            out[(name, p)] = event_metrics(test_scored, test_labels, best_threshold(train_scored, train_labels, p)[0])
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--histories", type=int, default=12)
    parser.add_argument("--hours", type=float, default=48)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--bars", type=float, nargs="+", default=[0.85, 0.9, 0.92])
    parser.add_argument("--realism", choices=["clean", "realistic"], default="clean")
    args = parser.parse_args()
    # the model CI test's simulator settings (tests/integration/test_model_pipeline.py)
    settings = dataclasses.replace(settings_module.load(), sim_market_hours="always", sim_anomalies_per_hour=1.5,
                                   sim_realism=args.realism)
    now_ms = int(time.time() * 1000)
    results = {(name, p): [] for name in WEIGHTS for p in args.bars}
    print(f"{args.histories} {args.realism} histories of {args.hours:g} h at {args.rate:g} trades/s, 30% held out; "
          f"held-out recall / precision per weights and training precision bar (configured: "
          f"{settings.model_min_precision})")
    for i in range(args.histories):
        started = time.monotonic()
        # Another seed each: the simulator draws from its start on, so one seed ending at another
        # time would give the same anomalies at other hours. 7 h 10 min apart: other hours of the day.
        end_ms = now_ms - i * 7 * 3_700_000
        history_settings = dataclasses.replace(settings, sim_seed=settings.sim_seed + i)
        bars, labels = simulated_history(history_settings, end_ms, args.hours, args.rate)
        metrics = held_out(bars, labels, args.bars)
        for key, m in metrics.items():
            results[key].append((m["recall"], m["precision"]))
        print(f"history {i + 1:>2} ({len(bars):,} bars, {len(labels)} anomalies, {time.monotonic() - started:.0f} s): "
              + "  ".join(f"{name} {p:g}: {m['recall']:.3f} / {m['precision']:.3f}" for (name, p), m in metrics.items()),
              flush=True)
    print(f"\n{'weights':>8} {'bar':>5} {'recall min':>10} {'recall p50':>10} {'x equal':>8} {'precision min':>13} "
          f"{'precision p50':>13} {'meets goal':>10}")
    for (name, p), pairs in results.items():
        recall, precision = np.array(pairs).T
        reference = np.median(np.array(results[("equal", p)])[:, 0])
        met = sum(training.meets_goal({"recall": r, "precision": q}) for r, q in pairs)
        print(f"{name:>8} {p:5g} {recall.min():10.3f} {np.median(recall):10.3f} {np.median(recall) / reference:8.2f} "
              f"{precision.min():13.3f} {np.median(precision):13.3f} {met:>6}/{len(pairs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
