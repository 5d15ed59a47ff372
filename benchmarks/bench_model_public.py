"""Every candidate detector on real data (the Numenta Anomaly Benchmark) and on the simulator's
held-out history, side by side in one run: raw, calibrated per symbol, without repeats, and
with time context.

NAB (github.com/numenta/NAB: 58 real and artificial series with labelled anomaly windows) runs
under its own rules and scorer (model/nab.py). Each candidate (model/detectors.py) is fit on
each series' probationary rows, and its scores are written as NAB results four ways: raw; as
tail probabilities in the series' own history (model/calibrate.py); those without repeats
(model/episodes.py); and those gated by the same time on earlier days (model/seasonal.py),
without repeats. In the same run NAB's scorer rescores the results NAB ships for its
reference detectors, so the scoreboard is measured beside the candidates, not copied. NAB's
checkout is the user's (docs/model.md says how to get one). Results go to var/bench/nab/.

The simulator's part: HOURS of seeded simulated market (the model test's settings), split as
model/train.py does. Each candidate is fit on the training bars no label covers (as training
fits the shipped model), gets its threshold on the training part (best event recall at
precision >= LAKEWATCH_MODEL_MIN_PRECISION), and is evaluated on the held-out bars per injected
kind. The set `simulator` is the clean market the model was designed on; `realistic` adds
drifts, level shifts, volatility regimes, news-led jumps, class-wide moves and microstructure
noise (LAKEWATCH_SIM_REALISM, ingestion/simulator.py), with each kind's recall and each market
event's false-alarm rate apart. Then each candidate's speed in-process: one bar at a time (p50,
p99) and 10,000-bar batches.

Usage: python benchmarks/bench_model_public.py --nab PATH [--candidates NAME ...] [--hours 48]
       [--sets nab simulator realistic]
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lakewatch import settings as settings_module
from model import detectors, nab
from model import train as training
from model.calibrate import surprise, tail_probabilities
from model.episodes import without_repeats
from model.evaluate import bar_truth, best_threshold, event_metrics
from model.features import build_features
from model.seasonal import gated
from stack.bootstrap import ensure_venv

# Each candidate's scores four ways: raw; as tail probabilities in the series' own history
# (model/calibrate.py, shown as -log10 p); those without repeats (model/episodes.py); and those
# gated by the same time of day on earlier days (model/seasonal.py), without repeats.
VARIANTS = ("raw", "calibrated", "episodes", "seasonal")


def variants(raw: np.ndarray, closes: np.ndarray, stamps: np.ndarray) -> dict[str, np.ndarray]:
    """One series' (symbol's) raw scores, in time order, in every variant; `closes` and
    `stamps` are its bars' closes and times, for the time-of-day baseline."""
    probability = tail_probabilities(raw)
    calibrated = surprise(probability)
    return {"raw": raw, "calibrated": calibrated, "episodes": without_repeats(calibrated),
            "seasonal": without_repeats(surprise(gated(probability, np.log(closes), stamps)))}


def score_series(fits: dict, bars: pd.DataFrame, probation: int, stamps: np.ndarray) -> dict[str, np.ndarray]:
    """Each candidate's scores of one series' bars, in time order, in every variant."""
    features = build_features(bars)
    train = features.iloc[:probation]
    closes = bars["close"].to_numpy(dtype=float)  # one bar per point, so one feature row per bar
    out = {}
    for name, fit in fits.items():
        for variant, scores in variants(fit(train)(features), closes, stamps).items():
            out[nab.detector_name(name, variant)] = nab.squash(scores)
    return out


def run_nab(checkout: Path, fits: dict, work: Path) -> dict:
    """Every candidate in every variant on NAB, beside NAB's reference detectors."""
    names = [nab.detector_name(name, variant) for name in fits for variant in VARIANTS]
    return nab.score(checkout, lambda *series: score_series(fits, *series), names, work,
                     ensure_venv("nab"))




REALISMS = {"simulator": "clean", "realistic": "realistic"}  # --sets name -> LAKEWATCH_SIM_REALISM


def simulated_set(hours: float, rate: float, realism: str, anomalies_per_hour: float, seed: int | None = None):
    """(settings, bars, features, labels, (train_x, train_labels, test_x, test_labels)) of one seeded
    simulated history with the model CI test's settings (tests/integration/test_model_pipeline.py)
    and a fixed end, split as model/train.py splits. The simulator draws from its start on, so
    two lengths of one seed share their draws (a 48 h history is a 72 h one's first 48 h, a day
    later): only another `seed` (the settings' by default) gives another market."""
    from testkit.history import simulated_history

    settings = dataclasses.replace(settings_module.load(), sim_market_hours="always",
                                   sim_anomalies_per_hour=anomalies_per_hour, sim_realism=realism)
    if seed is not None:
        settings = dataclasses.replace(settings, sim_seed=seed)
    end_ms = int(pd.Timestamp("2026-11-30 18:00", tz="UTC").value // 1_000_000)
    began = time.monotonic()
    bars, labels = simulated_history(settings, end_ms, hours, rate)
    features = build_features(bars)
    *split, cutoff = training.split(features, labels, training.TEST_FRACTION)
    print(f"simulator ({realism}, seed {settings.sim_seed}): {hours:g} h, {len(bars):,} bars, {len(labels)} labels, held out from {cutoff:%H:%M} "
          f"({time.monotonic() - began:.0f} s)")
    return settings, bars, features, labels, tuple(split)


def simulator_figures(fits: dict, hours: float, rate: float, realism: str, anomalies_per_hour: float) -> dict:
    """Held-out event metrics per candidate, raw and calibrated, on one simulated history."""
    settings, bars, features, labels, split = simulated_set(hours, rate, realism, anomalies_per_hour)
    train_x, train_labels, test_x, test_labels = split
    closes = features[["symbol", "window_start"]].merge(bars[["symbol", "window_start", "close"]], how="left",
                                                        on=["symbol", "window_start"])["close"].to_numpy(dtype=float)
    stamps = features["window_start"].to_numpy()
    out = {}
    for name, fit in fits.items():
        began = time.monotonic()
        scorer = fit(train_x[~bar_truth(train_x, train_labels)])  # as model/train.py fits: the normal bars
        raw = scorer(features)
        by_variant = {variant: pd.Series(0.0, index=features.index) for variant in VARIANTS}
        for _, rows in features.groupby("symbol").indices.items():  # features are in time order per symbol
            for variant, scores in variants(raw[rows], closes[rows], stamps[rows]).items():
                by_variant[variant].iloc[rows] = scores
        for variant, scores in by_variant.items():
            threshold, _ = best_threshold(train_x.assign(anomaly_score=scores[train_x.index]), train_labels,
                                          settings.model_min_precision)
            metrics = event_metrics(test_x.assign(anomaly_score=scores[test_x.index]), test_labels, threshold)
            out[(name, variant)] = metrics
        out[(name, "speed")] = speed(scorer, test_x)
        print(f"  {name}: fit and scored in {time.monotonic() - began:.0f} s")
    return out


def speed(scorer, rows: pd.DataFrame) -> dict:
    """In-process: one bar at a time (p50, p99 over 300 calls) and one 10,000-bar batch."""
    singles = []
    for i in range(min(300, len(rows))):
        one = rows.iloc[[i]]
        begun = time.perf_counter()
        scorer(one)
        singles.append(time.perf_counter() - begun)
    batch = rows.iloc[:10_000]
    begun = time.perf_counter()
    scorer(batch)
    return {"p50_ms": 1000 * float(np.median(singles)), "p99_ms": 1000 * float(np.quantile(singles, 0.99)),
            "rows_per_s": len(batch) / (time.perf_counter() - begun)}


def report(on_nab: dict | None, simulated: dict[str, dict], fits: dict) -> None:
    if on_nab:
        final, categories = on_nab["final"], on_nab["categories"]
        names = [*nab.REFERENCES, *sorted(d for d in final if d not in nab.REFERENCES and d != "null")]
        cats = sorted({c for d in categories.values() for c in d})
        print("\nNAB, normalised scores (NAB's scorer; 100 = perfect, 0 = the null detector)")
        print(f"{'detector':<32}" + "".join(f"{p:>10}" for p in nab.PROFILES.values())
              + "".join(f"{c.removeprefix('real').removeprefix('artificial'):>15}" for c in cats))
        for d in names:
            label = nab.REFERENCES.get(d, d)
            print(f"{label:<32}" + "".join(f"{final[d][p]:>10.1f}" for p in nab.PROFILES)
                  + "".join(f"{categories.get(d, {}).get(c, float('nan')):>15.1f}" for c in cats))
        print(f"candidates' detection time: {on_nab['detect_seconds']:.0f} s for the whole corpus")
    for realism, simulator in simulated.items():
        first = next(iter(simulator.values()))
        kinds = sorted(k.removeprefix("recall_") for k in first if k.startswith("recall_"))
        market = sorted(k.removeprefix("false_alarm_rate_") for k in first if k.startswith("false_alarm_rate_"))
        print(f"\nSimulator ({realism}) held-out (fit on the normal training bars, threshold chosen on the training "
              "part): recall per kind, then the share of market events that drew a false alarm")
        print(f"{'detector':<30}{'recall':>8}{'precision':>10}{'f1':>7}" + "".join(f"{k[:12]:>13}" for k in kinds)
              + "".join(f"{'FA ' + k[:9]:>13}" for k in market) + f"{'1 bar p50':>11}{'p99':>8}{'rows/s':>10}")
        for name in fits:
            s = simulator[(name, "speed")]
            for variant in VARIANTS:
                m = simulator[(name, variant)]
                print(f"{name + ' ' + variant:<30}{m['recall']:>8.3f}{m['precision']:>10.3f}{m['f1']:>7.3f}"
                      + "".join(f"{m.get(f'recall_{k}', float('nan')):>13.2f}" for k in kinds)
                      + "".join(f"{m.get(f'false_alarm_rate_{k}', float('nan')):>13.2f}" for k in market)
                      + f"{s['p50_ms']:>9.2f}ms{s['p99_ms']:>6.1f}ms{s['rows_per_s']:>10,.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nab", type=Path, help="a checkout of github.com/numenta/NAB (docs/model.md)")
    parser.add_argument("--candidates", nargs="*", default=list(detectors.CANDIDATES), choices=list(detectors.CANDIDATES))
    parser.add_argument("--hours", type=float, default=48)
    parser.add_argument("--rate", type=float, default=20)
    parser.add_argument("--anomalies-per-hour", type=float, default=1.5, help="per symbol (the model test's 1.5)")
    parser.add_argument("--sets", nargs="+", default=["nab", *REALISMS], choices=["nab", *REALISMS])
    args = parser.parse_args()
    problem = nab.checkout_problem(args.nab) if "nab" in args.sets else None
    if problem:
        raise SystemExit(f"bench_model_public: --nab {problem}")
    fits = {name: detectors.CANDIDATES[name] for name in args.candidates}
    settings = settings_module.load()
    on_nab = run_nab(args.nab.resolve(), fits, settings.state_dir / "bench" / "nab") if "nab" in args.sets else None
    simulated = {realism: simulator_figures(fits, args.hours, args.rate, realism, args.anomalies_per_hour) for name, realism in REALISMS.items()
                 if name in args.sets}
    report(on_nab, simulated, fits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
