"""The Numenta Anomaly Benchmark (NAB) under its own rules and scored by its own scorer.

This is the real-data half of the model's evaluation. `benchmarks/bench_model_public.py` runs
every candidate through it. Training runs the shipped detector through it when
LAKEWATCH_NAB_DIR names a checkout, and the promotion gate compares the result with the
champion's (model/train.py).

NAB (github.com/numenta/NAB) has 58 real and artificial series with labelled anomaly windows.
Its rules: each series is scored in time order with no look-ahead, and a detector learns only
from the series' probationary part (the first 15%, at most 750 rows). Each point becomes a
bar: open = high = low = close, on a log scale where one probationary standard deviation is one
unit; volume = the value above the probationary minimum. A caller turns each series' bars into
scores. The scores are written as NAB results, and NAB's run.py --optimize --score --normalize
scores them. It runs in the 'nab' venv (model/nab-requirements.txt) and normalises against
the null detector's results that NAB ships.

NAB's checkout is the user's (docs/model.md says how to get one). Nothing of it is copied into
lakewatch.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from model.features import BAR_COLUMNS

PROBATION, PROBATION_CAP = 0.15, 750  # NAB's nab/util.py getProbationPeriod
PROFILES = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}
# NAB's reference detectors whose results it ships; "null" is the baseline its normalisation needs.
REFERENCES = {"numenta": "Numenta HTM", "contextOSE": "CAD OSE", "knncad": "KNN CAD",
              "randomCutForest": "random cut forest", "windowedGaussian": "windowed Gaussian"}
EPOCH = pd.Timestamp("2000-01-03", tz="UTC")
# (one series' bars, its probationary rows, its points' own timestamps) -> NAB detector name ->
# a score per bar, in (0, 1). The bars are a minute apart whatever the series' sampling, so the
# features see no missing minutes; the timestamps give time of day (model/seasonal.py).
SeriesScorer = Callable[[pd.DataFrame, int, np.ndarray], dict[str, np.ndarray]]


def checkout_problem(path: Path | None) -> str | None:
    """One sentence saying why `path` cannot be used as NAB, or None if it can."""
    if path is not None and (path / "labels" / "combined_windows.json").is_file() and (path / "run.py").is_file():
        return None
    return (f"{path or '(no path given)'} is not a checkout of NAB (it needs run.py and labels/combined_windows.json): "
            "`git clone https://github.com/numenta/NAB` and pass its path")


def detector_name(candidate: str, variant: str = "raw") -> str:
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


def score(nab: Path, score_series: SeriesScorer, detectors: list[str], work: Path, scorer_python: Path,
          references: bool = True) -> dict:
    """Score every NAB series with `score_series` (which names its detectors: `detectors`), then
    have NAB's scorer score them, beside its shipped reference detectors if `references`.
    Returns {"final": detector -> profile -> score, "categories": ..., "detect_seconds": ...}."""
    windows = json.loads((nab / "labels" / "combined_windows.json").read_text())
    results = work / "results"
    shutil.rmtree(work, ignore_errors=True)
    shipped = ["null", *(REFERENCES if references else ())]
    for reference in shipped:
        shutil.copytree(nab / "results" / reference, results / reference)
    started = time.monotonic()
    seconds = 0.0
    for i, relative in enumerate(sorted(windows), 1):
        frame = pd.read_csv(nab / "data" / relative)
        values = frame["value"].to_numpy(dtype=float)
        probation = probation_rows(len(values))
        stamps = pd.to_datetime(frame["timestamp"])
        begun = time.monotonic()
        scores = score_series(series_bars(values, probation, Path(relative).stem), probation, stamps.to_numpy())
        seconds += time.monotonic() - begun
        label = np.zeros(len(frame), dtype=int)
        for start, end in windows[relative]:
            label[(stamps >= pd.Timestamp(start)) & (stamps <= pd.Timestamp(end))] = 1
        category, filename = relative.split("/")
        for detector, anomaly_score in scores.items():
            target = results / detector / category / f"{detector}_{filename}"
            target.parent.mkdir(parents=True, exist_ok=True)
            pd.DataFrame({"timestamp": frame["timestamp"], "value": frame["value"],
                          "anomaly_score": anomaly_score, "label": label}).to_csv(target, index=False)
        print(f"  NAB [{i}/{len(windows)}] {relative}: {len(values):,} points scored "
              f"({time.monotonic() - started:.0f} s so far)", flush=True)
    everyone = [*shipped, *detectors]
    (work / "thresholds.json").write_text("{}")
    print(f"  NAB's scorer (optimize, score, normalize) on {len(everyone)} detectors ...", flush=True)
    begun = time.monotonic()
    log = work / "nab-scorer.log"
    with open(log, "w") as out:
        done = subprocess.run([str(scorer_python), "run.py", "--optimize", "--score", "--normalize",
                               "--skipConfirmation", "-d", ",".join(everyone), "--resultsDir", str(results),
                               "--thresholdsFile", str(work / "thresholds.json"), "-n", "2"],
                              cwd=nab, env={"PYTHONPATH": str(nab), "PATH": "/usr/bin:/bin"}, stdout=out,
                              stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"NAB's scorer failed; the end of {log}:\n" + "\n".join(log.read_text().splitlines()[-8:]))
    print(f"  NAB scored in {time.monotonic() - begun:.0f} s (log: {log})", flush=True)
    final = json.loads((results / "final_results.json").read_text())
    return {"final": final, "categories": category_scores(results, windows, everyone), "detect_seconds": seconds}


def category_scores(results: Path, windows: dict, detectors: list[str]) -> dict:
    """NAB's normalised score per data category (its own formula, per category): 100 x (score -
    null's) / (perfect - null's), perfect being one true positive per labelled window."""
    out: dict[str, dict[str, float]] = {}
    null = pd.read_csv(results / "null" / "null_standard_scores.csv")
    base = null[null["File"].notna()].set_index("File")["Score"]
    tp_weight = 1.0  # every profile of NAB's config/profiles.json
    for detector in detectors:
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
