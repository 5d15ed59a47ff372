"""Where the shipped ensemble's feature weights (model/ensemble.py's RULES) come from, and what they
are worth against equal weights, measured in the same run.

The ensemble scores a bar by its largest scaled feature contribution. Each contribution is
divided by its own 99.5th percentile over normal training bars, so on normal bars every feature
passes a given level about as often: equal weights give every feature the same share of the
false alerts. They need not give it the same share of the anomalies. This bench chooses the
weights with labels, on one history's training part only: coordinate ascent, one feature at a
time, each weight multiplied by each of FACTORS in turn, keeping the vector with the best
training event recall at the training precision (then precision). The shipped weights are its
result on the 72 h realistic history of the settings' seed, rounded. Every vector is then
evaluated on the held-out part of every history, with the threshold training would choose,
beside equal weights (the reference: every weight 1 but the missing minute's 3, as before the
tuning): the tuning's own history, and 48 h histories of other seeds, realistic and clean, which
the tuning never saw. (Another length of the same seed would not do: it shares the tuning
history's draws, bench_model_public.simulated_set.) Figures: docs/model.md ("Feature weights").

Usage: python benchmarks/bench_rule_weights.py [--tune-hours 72] [--seeds 8 9 10] [--no-tune]
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from bench_model_public import simulated_set
from model import ensemble
from model.evaluate import bar_truth, best_threshold, event_metrics
from model.features import FEATURES

FACTORS = (0.5, 0.6, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5, 2.0)
SWEEPS = 2
SHIPPED = np.array([ensemble.RULES[f][1] for f in FEATURES])
EQUAL = np.array([3.0 if f == "gap_minutes" else 1.0 for f in FEATURES])  # the weights before the tuning


class History:
    """One simulated history's training and held-out parts, with each bar's unweighted scaled
    contributions computed once (a weight vector's score is then their weighted maximum)."""

    def __init__(self, name: str, hours: float, realism: str, rate: float, min_precision: float,
                 seed: int | None = None):
        self.name, self.min_precision = name, min_precision
        _, _, _, _, (self.train, self.train_labels, self.test, self.test_labels) = simulated_set(
            hours, rate, realism, 1.5, seed)
        scales = ensemble.fit_scales(self.train, ~bar_truth(self.train, self.train_labels))
        # each bar's contributions over its class's scales, at unit weights (the pyfunc's arithmetic)
        self.train_c, self.test_c = (ensemble.contributions(x, scales).to_numpy() for x in (self.train, self.test))
        # The weighted maximum is the shipped score: check it once against model/pyfunc.py's.
        shipped = ensemble.score(self.test, ensemble.model_params(scales))
        assert np.allclose((self.test_c * SHIPPED).max(axis=1), shipped), "the bench must score as the pyfunc does"

    def training(self, weights: np.ndarray) -> tuple[float, dict]:
        """(threshold, training metrics) as model/train.py chooses it."""
        return best_threshold(self.train.assign(anomaly_score=(self.train_c * weights).max(axis=1)),
                              self.train_labels, self.min_precision)

    def held_out(self, weights: np.ndarray) -> dict:
        threshold, _ = self.training(weights)
        return event_metrics(self.test.assign(anomaly_score=(self.test_c * weights).max(axis=1)),
                             self.test_labels, threshold)


def tune(history: History) -> np.ndarray:
    """Coordinate ascent on the training part: the weights with the best training recall (then precision)."""
    weights = EQUAL.copy()
    for sweep in range(SWEEPS):
        for i, feature in enumerate(FEATURES):
            trials = []
            for factor in FACTORS:
                trial = weights.copy()
                trial[i] *= factor
                _, m = history.training(trial)
                trials.append(((m["recall"], m["precision"]), trial))
            weights = max(trials, key=lambda t: t[0])[1]
            print(f"  sweep {sweep + 1}, {feature}: " + " ".join(f"{w:.2f}" for w in weights), flush=True)
    return weights


def main() -> int:
    from lakewatch import settings as settings_module

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tune-hours", type=float, default=72, help="the realistic history the weights are tuned on")
    parser.add_argument("--seeds", type=int, nargs="*", default=[8, 9, 10],
                        help="the seeds of the 48 h histories to evaluate on, each realistic and clean")
    parser.add_argument("--no-tune", action="store_true", help="evaluate the shipped and equal weights only")
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    min_precision = settings_module.load().model_min_precision
    histories = [History(f"realistic {args.tune_hours:g} h", args.tune_hours, "realistic", args.rate, min_precision)]
    for realism in ("realistic", "clean"):
        histories += [History(f"{realism} 48 h, seed {seed}", 48, realism, args.rate, min_precision, seed)
                      for seed in args.seeds]

    vectors = {"equal (the reference)": EQUAL, "shipped": SHIPPED}
    if not args.no_tune:
        began = time.monotonic()
        print(f"tuning on {histories[0].name}'s training part:")
        vectors["tuned"] = tune(histories[0])
        print(f"  ({time.monotonic() - began:.0f} s)")
    print("\nweights: " + ", ".join(FEATURES))
    for name, weights in vectors.items():
        print(f"  {name:<22} " + " ".join(f"{w:.2f}" for w in weights))
    print(f"\nheld-out event recall / precision, threshold from training at precision {min_precision}; "
          "x = recall over the reference's in the same history")
    for history in histories:
        reference = history.held_out(EQUAL)["recall"]
        for name, weights in vectors.items():
            m = history.held_out(weights)
            kinds = " ".join(f"{k[len('recall_'):]} {v:.2f}" for k, v in m.items()
                             if k.startswith("recall_") and np.isfinite(v))
            print(f"{history.name:<26} {name:<22} {m['recall']:.3f} / {m['precision']:.3f}  "
                  f"x{m['recall'] / reference:.2f}  {kinds}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
