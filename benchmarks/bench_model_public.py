"""Every candidate detector on real data (the Numenta Anomaly Benchmark) and on the simulator's
held-out history, side by side in one run: raw, calibrated per symbol, and without repeats.

NAB (github.com/numenta/NAB): 58 real and artificial series with labelled anomaly windows.
Its rules: each series is scored in time order with no look-ahead, and a detector learns only
from the series' probationary part (the first 15%, at most 750 rows). Here each point is a
bar (open = high = low = close, on a log scale where one probationary standard deviation is one
unit; volume = value above the probationary minimum). The bars go through model/features.py,
each candidate (model/detectors.py) is fit on the probationary rows, and its scores are written
as NAB results three ways: raw; as tail probabilities in the series' own history
(model/calibrate.py); and those without repeats (model/episodes.py). NAB's own scorer (run.py
--optimize --score --normalize, in the 'nab' venv) scores them. In the same run it rescores the
results NAB ships for its reference detectors, so the scoreboard is measured beside the
candidates, not copied.

NAB's checkout is the user's (docs/model.md says how to get one); nothing of it is copied into
lakewatch. Results go to var/bench/nab/.

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
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lakewatch import settings as settings_module
from model import detectors
from model import train as training
from model.calibrate import surprise, tail_probabilities
from model.episodes import without_repeats
from model.evaluate import bar_truth, best_threshold, event_metrics
from model.features import BAR_COLUMNS, build_features
from stack.bootstrap import ensure_venv

PROBATION, PROBATION_CAP = 0.15, 750  # NAB's nab/util.py getProbationPeriod
PROFILES = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
# NAB's reference detectors whose results it ships; "null" is the baseline its normalisation needs.
REFERENCES = {"numenta": "Numenta HTM", "contextOSE": "CAD OSE", "knncad": "KNN CAD",
              "randomCutForest": "random cut forest", "windowedGaussian": "windowed Gaussian"}
EPOCH = pd.Timestamp("2000-01-03", tz="UTC")


# Each candidate's scores three ways: raw; as tail probabilities in the series' own history
# (model/calibrate.py, shown as -log10 p); and those without repeats (model/episodes.py).
VARIANTS = ("raw", "calibrated", "episodes")


def variants(raw: np.ndarray) -> dict[str, np.ndarray]:
    """One series' (symbol's) raw scores, in time order, in every variant."""
    calibrated = surprise(tail_probabilities(raw))
    return {"raw": raw, "calibrated": calibrated, "episodes": without_repeats(calibrated)}


def nab_name(candidate: str, variant: str) -> str:
    """NAB's file names split detector from profile at the first underscore: camelCase only."""
    head, *rest = candidate.split("_")
    return head + "".join(part.title() for part in rest) + ("" if variant == "raw" else variant.title())


def probation_rows(length: int) -> int:
    return int(min(np.floor(PROBATION * length), PROBATION_CAP))


def series_bars(values: np.ndarray, probation: int, symbol: str) -> pd.DataFrame:
    """One bar per point, a minute apart. Only the probationary part sets the scales, so a later
    point changes nothing earlier."""
    head = values[:probation]
    spread = float(np.std(head)) or max(float(np.abs(head).mean()), 1.0)
    log_price = np.clip((values - head[0]) / spread, -600, 600)
    price = np.exp(log_price)
    starts = EPOCH + pd.to_timedelta(np.arange(len(values)), unit="min")
    return pd.DataFrame({
        "symbol": symbol, "asset_class": "stocks", "window_start": starts, "window_end": starts + pd.Timedelta(minutes=1),
        "open": price, "high": price, "low": price, "close": price,
        "volume": np.maximum(values - head.min(), 0.0), "trade_count": 1, "first_trade_ts": starts,
        "last_trade_ts": starts + pd.Timedelta(seconds=59), "longest_silence_s": 0.0,
        "longest_silence_end": pd.Series(pd.NaT, index=range(len(values)), dtype="datetime64[ns, UTC]")})[list(BAR_COLUMNS)]


def squash(scores: np.ndarray) -> np.ndarray:
    """Any real score into (0, 1), order kept: NAB's sweeper expects scores there."""
    return np.arctan(np.asarray(scores, dtype=float)) / np.pi + 0.5


def score_series(fits: dict, bars: pd.DataFrame, probation: int) -> dict[str, np.ndarray]:
    """Each candidate's scores of one series' bars, in time order, in every variant."""
    features = build_features(bars)
    train = features.iloc[:probation]
    out = {}
    for name, fit in fits.items():
        for variant, scores in variants(fit(train)(features)).items():
            out[nab_name(name, variant)] = squash(scores)
    return out


def run_nab(nab: Path, fits: dict, work: Path) -> dict:
    """Write every candidate's NAB results for every series, then score them with NAB's scorer."""
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    results = work / "results"
    shutil.rmtree(work, ignore_errors=True)
    for reference in ["null", *REFERENCES]:
        shutil.copytree(nab / "results" / reference, results / reference)
    started = time.monotonic()
    seconds: dict[str, float] = {}
    for i, relative in enumerate(sorted(windows), 1):
        frame = pd.read_csv(nab / "data" / relative)
        values = frame["value"].to_numpy(dtype=float)
        probation = probation_rows(len(values))
        begun = time.monotonic()
        scores = score_series(fits, series_bars(values, probation, Path(relative).stem), probation)
        seconds[relative] = time.monotonic() - begun
        label = np.zeros(len(frame), dtype=int)
        stamps = pd.to_datetime(frame["timestamp"])
        for start, end in windows[relative]:
            label[(stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(end))] = 1
        category, filename = relative.split("/")
        for detector, anomaly_score in scores.items():
            target = results / detector / category / f"{detector}_{filename}"
            target.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"timestamp": frame["timestamp"], "value": frame["value"],
                          "anomaly_score": anomaly_score, "label": label}).to_csv(target, index=False)
        print(f"  [{i}/{len(windows)}] {relative}: {len(values):,} points scored by {len(fits)} candidates "
              f"in {seconds[relative]:.1f} s ({time.monotonic() - started:.0f} s so far)", flush=True)
    detectors_ = ["null", *REFERENCES, *(nab_name(name, variant) for name in fits for variant in VARIANTS)]
    (work / "thresholds.json").write_text("{}")
    python = ensure_venv("nab")
    print(f"NAB's scorer (optimize, score, normalize) on {len(detectors_)} detectors ...", flush=True)
    begun = time.monotonic()
    log = work / "nab-scorer.log"
    with open(log, "w") as out:
        done = subprocess.run([str(python), "run.py", "--optimize", "--score", "--normalize", "--skipConfirmation",
                               "-d", ",".join(detectors_), "--resultsDir", str(results),
                               "--thresholdsFile", str(work / "thresholds.json"), "-n", "2"],
                              cwd=nab, env={"PYTHONPATH": str(nab), "PATH": "/usr/bin:/bin"}, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"NAB's scorer failed; the end of {log}:\n" + "\n".join(log.read_text().splitlines()[-8:]))
    print(f"  scored in {time.monotonic() - begun:.0f} s (log: {log})")
    final = json.loads((results / "final_results.json").read_text())
    return {"final": final, "categories": category_scores(results, windows, detectors_),
            "detect_seconds": sum(seconds.values())}


def category_scores(results: Path, windows: dict, detectors_: list[str]) -> dict:
    """NAB's normalised score per data category (its own formula, per category): 100 x (score -
    null's) / (perfect - null's), perfect being one true positive per labelled window."""
    out: dict[str, dict[str, float]] = {}
    null = pd.read_csv(results / "null" / "null_standard_scores.csv")
    base = null[null["File"].notna()].set_index("File")["Score"]
    tp_weight = 1.0  # every profile of NAB's config/profiles.json
    for detector in detectors_:
        if detector == "null":
            continue
        table = pd.read_csv(results / detector / f"{detector}_standard_scores.csv")
        table = table[table["File"].notna()]
        table["category"] = table["File"].str.split("/").str[0]
        table["base"] = table["File"].map(base)
        table["windows"] = table["File"].map(lambda f: len(windows[f]))
        for category, part in table.groupby("category"):
            perfect = part["windows"].sum() * tp_weight
            if perfect:
                out.setdefault(detector, {})[category] = round(
                    100 * (part["Score"].sum() - part["base"].sum()) / (perfect - part["base"].sum()), 1)
    return out


REALISMS = {"simulator": "clean", "realistic": "realistic"}  # --sets name -> LAKEWATCH_SIM_REALISM


def simulator_figures(fits: dict, hours: float, rate: float, realism: str, anomalies_per_hour: float) -> dict:
    """Held-out event metrics per candidate, raw and calibrated, on one simulated history."""
    from bench_model_margin import simulated_history

    # the model CI test's simulator settings (tests/integration/test_model_pipeline.py), a fixed end
    settings = dataclasses.replace(settings_module.load(), sim_market_hours="always",
                                   sim_anomalies_per_hour=anomalies_per_hour, sim_realism=realism)
    end_ms = int(pd.Timestamp("2026-11-30 18:00", tz="UTC").value // 1_000_000)
    began = time.monotonic()
    bars, labels = simulated_history(settings, end_ms, hours, rate)
    features = build_features(bars)
    train_x, train_labels, test_x, test_labels, cutoff = training.split(features, labels, training.TEST_FRACTION)
    print(f"simulator ({realism}): {hours:g} h, {len(bars):,} bars, {len(labels)} labels, held out from {cutoff:%H:%M} "
          f"({time.monotonic() - began:.0f} s)")
    out = {}
    for name, fit in fits.items():
        began = time.monotonic()
        scorer = fit(train_x[~bar_truth(train_x, train_labels)])  # as model/train.py fits: the normal bars
        raw = scorer(features)
        by_variant = {variant: pd.Series(0.0, index=features.index) for variant in VARIANTS}
        for _, rows in features.groupby("symbol").indices.items():  # features are in time order per symbol
            for variant, scores in variants(raw[rows]).items():
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


def report(nab: dict | None, simulated: dict[str, dict], fits: dict) -> None:
    if nab:
        final, categories = nab["final"], nab["categories"]
        names = [*REFERENCES, *sorted(d for d in final if d not in REFERENCES and d != "null")]
        cats = sorted({c for d in categories.values() for c in d})
        print("\nNAB, normalised scores (NAB's scorer; 100 = perfect, 0 = the null detector)")
        print(f"{'detector':<32}" + "".join(f"{p:>10}" for p in PROFILES.values())
              + "".join(f"{c.removeprefix('real').removeprefix('artificial'):>15}" for c in cats))
        for d in names:
            label = REFERENCES.get(d, d)
            print(f"{label:<32}" + "".join(f"{final[d][p]:>10.1f}" for p in PROFILES)
                  + "".join(f"{categories.get(d, {}).get(c, float('nan')):>15.1f}" for c in cats))
        print(f"candidates' detection time: {nab['detect_seconds']:.0f} s for the whole corpus")
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
    if "nab" in args.sets and (args.nab is None or not (args.nab / "labels" / "combined_windows.json").is_file()
                               or not (args.nab / "run.py").is_file()):
        where = args.nab or "(none given)"
        raise SystemExit(f"bench_model_public: --nab {where} is not a checkout of NAB (it needs run.py and "
                         f"labels/combined_windows.json): `git clone https://github.com/numenta/NAB` and pass its path")
    fits = {name: detectors.CANDIDATES[name] for name in args.candidates}
    settings = settings_module.load()
    nab = run_nab(args.nab.resolve(), fits, settings.state_dir / "bench" / "nab") if "nab" in args.sets else None
    simulated = {realism: simulator_figures(fits, args.hours, args.rate, realism, args.anomalies_per_hour) for name, realism in REALISMS.items()
                 if name in args.sets}
    report(nab, simulated, fits)
    return 0


if __name__ == "__main__":
    sys.exit(main())
