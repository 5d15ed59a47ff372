"""Drift: does the market still look like the one the champion was trained on?

A model fit on a calm crypto market scores a thin, wild one with the wrong scales: it floods
or it goes quiet, and nothing else in the stack would say why. So every hour (Airflow's
lakewatch_drift) each asset class's model inputs over the last hour, as the scorer sent them to
the model (`anomalies.features`), are compared feature by feature with the champion's training
distributions by the population stability index:

    PSI = sum over bins of (live share - training share) x ln(live share / training share)

over the training deciles of the feature. Training stores, with each model version (its
params.json, key "drift", so the version serving is the version compared with):
- per asset class and feature, the decile edges and the share of training bars in each bin;
- per asset class and feature, the threshold: the tail of the feature's hourly PSI over the
  training history itself, read as log-normal (THRESHOLD_Z log-standard-deviations above its
  log-mean), and at least THRESHOLD_FLOOR (0.2, where the PSI literature starts to call a shift
  significant). Per feature, because some wander hour to hour in a calm market (a 5-bar
  volatility, trades at a session's open) and some hardly move. A fitted tail, not the largest
  hour seen: a day of training holds some 24 hours per feature, and 1.5x their 99th percentile
  (in effect, their largest) flagged 8 % of calm hours, against 0.9 % (docs/benchmarks.md).

Each measured hour writes `model_drift` (one row per asset class and feature) and StatsD gauges
the exporter turns into lakewatch_model_drift_* for Prometheus (alert ModelDrift). When a
feature of a class passes its threshold, the DAG triggers lakewatch_retrain, unless a retrain ran
within LAKEWATCH_DRIFT_RETRAIN_COOLDOWN_HOURS.

    python -m model.drift measure [--at 2026-12-05T10:00:00Z]   the hour before --at (default: now)
    python -m model.drift decide                                 exit 0: retrain; 99 (skipped): no need
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from deltalake import DeltaTable, write_deltalake

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.settings.model import RETRAIN_EXPERIMENT, SKIPPED
from lakewatch.sql import schema, sql_engine
from model.features import FEATURES, HISTORY, MIN_HISTORY
from model.pyfunc import ANY_CLASS
from model.registry import champion_version

BINS = 10
SHARE_FLOOR = 1e-4  # an empty bin's share, so the logarithm stays finite
MIN_BARS = 60  # an hour of a class with fewer bars says too little: not measured
THRESHOLD_FLOOR = 0.2
# A log-normal passes its log-mean + 4 log-sigmas once in 30,000 draws. Calm hours' PSI has a
# heavier tail than that, and 21 class-features are measured an hour (docs/benchmarks.md: calm
# hours flagged at 3, 3.5 and 4).
THRESHOLD_Z = 4.0
PSI_FLOOR = 1e-3  # a feature that hardly moves has hours of PSI ~0, whose logarithm says nothing
HOUR = pd.Timedelta(hours=1)


def _shares(edges: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The share of `values` in each bin the edges make (below the first, between, above the last)."""
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return counts / counts.sum()


def _bins(values: np.ndarray) -> dict:
    edges = np.unique(np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]))
    return {"edges": edges.round(6).tolist(), "shares": _shares(edges, values).round(6).tolist()}


def psi(reference: dict, values: np.ndarray) -> float:
    """The population stability index of `values` against a reference's bins."""
    live = np.maximum(_shares(np.asarray(reference["edges"]), values), SHARE_FLOOR)
    expected = np.maximum(np.asarray(reference["shares"]), SHARE_FLOOR)
    return float(((live - expected) * np.log(live / expected)).sum())


def hourly(features: pd.DataFrame, reference: dict) -> pd.DataFrame:
    """Per hour and asset class with at least MIN_BARS bars: each feature's PSI against the
    reference (the class's, or ANY_CLASS's for a class training did not see), and the bars."""
    rows = []
    hours = features["window_start"].dt.floor("h")
    for (hour, asset_class), part in features.groupby([hours, "asset_class"]):
        if len(part) < MIN_BARS:
            continue
        bins = reference.get(asset_class, reference[ANY_CLASS])
        rows += [{"window_start": hour, "asset_class": asset_class, "feature": f, "bars": len(part),
                  "psi": psi(bins[f], part[f].to_numpy(dtype=float)), "threshold": bins[f].get("threshold")}
                 for f in FEATURES]
    return pd.DataFrame(rows, columns=["window_start", "asset_class", "feature", "bars", "psi", "threshold"])


def tail(hourly_psi: np.ndarray) -> float:
    """The PSI a calm hour passes rarely: log-mean + THRESHOLD_Z log-sigmas of the training hours'."""
    if len(hourly_psi) < 2:
        return 0.0
    logs = np.log(np.maximum(hourly_psi, PSI_FLOOR))
    return float(np.exp(logs.mean() + THRESHOLD_Z * logs.std(ddof=1)))


def fit(train_x: pd.DataFrame, rule=tail) -> dict:
    """What a model version keeps for drift detection (params.json "drift"): per asset class
    (and ANY_CLASS) and feature, its training distribution and the threshold its own history
    sets (features that wander hour to hour in calm markets, like a 5-bar volatility, get a
    higher one than steady ones).

    Only bars with a full HISTORY-bar baseline count, as every bar the live measure reads has
    (the scorer builds features with LOOKBACK_BARS before them). A symbol's first training bars
    have shorter baselines, and their hour's PSI was 1.6-2.5 where every settled hour's stayed
    under 0.3: that one hour set the threshold.

    `rule` makes the threshold of a feature's training hours' PSIs (benchmarks compare others)."""
    settled = train_x[train_x.groupby("symbol").cumcount() >= HISTORY - MIN_HISTORY]  # training keeps warm bars only
    train_x = settled if len(settled) else train_x
    reference = {ANY_CLASS: {f: _bins(train_x[f].to_numpy(dtype=float)) for f in FEATURES}}
    for asset_class, part in train_x.groupby("asset_class"):
        if len(part) >= MIN_BARS:
            reference[str(asset_class)] = {f: _bins(part[f].to_numpy(dtype=float)) for f in FEATURES}
    calm = hourly(train_x, reference)
    for asset_class, bins in reference.items():
        for feature, entry in bins.items():
            own = calm.loc[(calm["asset_class"] == asset_class) & (calm["feature"] == feature), "psi"]
            entry["threshold"] = round(max(THRESHOLD_FLOOR, rule(own.to_numpy(dtype=float))), 4)
    return {"reference": reference, "training_hours": int(calm["window_start"].nunique()) if len(calm) else 0}


# ---- the hourly measure ------------------------------------------------------------------

def champion_drift(settings) -> tuple[str, dict] | None:
    """The champion's version and its params.json "drift", or None without a champion (or for a
    version trained before drift detection existed)."""
    version = champion_version(settings)
    if version is None:
        return None
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    with tempfile.TemporaryDirectory() as folder:  # the version's params.json (model/train.py `register`)
        params = json.loads(Path(mlflow.artifacts.download_artifacts(
            f"models:/{settings.model_name}/{version}/artifacts/params.json", dst_path=folder)).read_text())
    return (version, params["drift"]) if "drift" in params else None


def live_features(settings, start: datetime, end: datetime) -> pd.DataFrame:
    """The model inputs of the bars scored in [start, end), as the scorer sent them: counted
    verdicts only (no pipeline gaps), and no bar without a baseline (every feature 0)."""
    a = schema.anomalies
    query = (sa.select(a.c.asset_class, a.c.window_start, a.c.features)
             .where(a.c.window_start >= start, a.c.window_start < end, a.c.excluded_reason.is_(None)))
    with sql_engine(settings, "duckdb").connect() as connection:
        rows = pd.read_sql_query(query, connection)
    values = pd.DataFrame([json.loads(text) for text in rows["features"]], columns=list(FEATURES)).fillna(0.0)
    frame = pd.concat([rows[["asset_class"]], values], axis=1)
    frame["window_start"] = pd.to_datetime(rows["window_start"], utc=True)
    return frame[values.abs().sum(axis=1).to_numpy() > 0]


def measure(settings, end: datetime) -> pd.DataFrame:
    """Drift of the hour before `end` (whole hours), written to model_drift (replacing an earlier
    measure of the same hour) and sent to Prometheus; returns the rows written."""
    end = pd.Timestamp(end).floor("h")
    champion = champion_drift(settings)
    if champion is None:
        print("drift: no champion with training distributions yet (train one: make train); nothing measured")
        return pd.DataFrame()
    version, drift = champion
    features = live_features(settings, (end - HOUR).to_pydatetime(), end.to_pydatetime())
    rows = hourly(features, drift["reference"])
    rows = rows[rows["window_start"] == end - HOUR]
    if rows.empty:
        print(f"drift: fewer than {MIN_BARS} scored bars per asset class in the hour before {end:%Y-%m-%d %H:%M} UTC")
        return rows
    rows = rows.assign(window_end=end, drifted=rows["psi"] > rows["threshold"],
                       model_name=settings.model_name, model_version=version,
                       computed_at=pd.Timestamp.now(tz="UTC"))
    path = tables.MODEL_DRIFT.path(settings.lake_dir)
    tables.ensure(settings.lake_dir, (tables.MODEL_DRIFT,))
    data = tables.MODEL_DRIFT.conform(pa.Table.from_pandas(rows, preserve_index=False))
    write_deltalake(str(path), data, mode="overwrite",
                    predicate=f"window_start = '{(end - HOUR).isoformat()}'")  # a rerun replaces its hour
    report(settings, rows)
    return rows


def report(settings, rows: pd.DataFrame) -> None:
    """The hour's figures as StatsD gauges (monitoring/statsd-mapping.yml names them), and a summary line."""
    by_class = (rows["psi"] / rows["threshold"]).groupby(rows["asset_class"])
    ratios = by_class.max()
    lines = [f"lakewatch.drift.psi.{r.asset_class}.{r.feature}:{r.psi:.6f}|g" for r in rows.itertuples()]
    lines += [f"lakewatch.drift.ratio.{c}:{ratio:.6f}|g" for c, ratio in ratios.items()]
    lines += [f"lakewatch.drift.drifted.{c}:{int(ratio > 1)}|g" for c, ratio in ratios.items()]
    host = "statsd" if settings.peers_by_name else settings.host
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for line in lines:
            sock.sendto(line.encode(), (host, settings.statsd_port))
    worst = rows.loc[by_class.idxmax()]
    print(f"drift of the hour from {rows['window_start'].iat[0]:%Y-%m-%d %H:%M} UTC against champion "
          f"v{rows['model_version'].iat[0]}: " + "; ".join(
              f"{r.asset_class} {'DRIFTED' if r.drifted else 'calm'} (worst {r.feature}: PSI {r.psi:.3f}, "
              f"threshold {r.threshold:.3f})" for r in worst.itertuples()))


def decide(settings) -> int:
    """0 when the hour measured last (within the last hour) drifted and no retrain ran within the
    cooldown, else SKIPPED."""
    path = str(tables.MODEL_DRIFT.path(settings.lake_dir))
    if not DeltaTable.is_deltatable(path):
        print("drift: nothing measured yet")
        return SKIPPED
    # The hour this run measured: an older measure is no reason to retrain now. Read by a filter,
    # so the files' statistics skip the table's older hours (a year of them is 200,000 rows).
    since = (pd.Timestamp.now(tz="UTC") - HOUR).to_pydatetime()
    rows = DeltaTable(path).to_pandas(filters=[("computed_at", ">=", since)])
    if rows.empty:
        print("drift: no hour was measured in the last hour (see the measure step's log)")
        return SKIPPED
    newest = rows[rows["window_start"] == rows["window_start"].max()]
    drifted = sorted(set(newest.loc[newest["drifted"], "asset_class"]))
    if not drifted:
        print(f"drift: no asset class drifted in the hour from {newest['window_start'].max():%Y-%m-%d %H:%M} UTC")
        return SKIPPED
    last = last_retrain(settings)
    cooldown = timedelta(hours=settings.drift_retrain_cooldown_hours)
    if last is not None and datetime.now(timezone.utc) - last < cooldown:
        print(f"drift: {', '.join(drifted)} drifted, but a retrain ran at {last:%Y-%m-%d %H:%M} UTC, within the "
              f"{settings.drift_retrain_cooldown_hours:g} h cooldown: not retraining again")
        return SKIPPED
    print(f"drift: {', '.join(drifted)} drifted past the champion's threshold: retraining")
    return 0


def last_retrain(settings) -> datetime | None:
    """When the newest retrain (a lakewatch_retrain run, reported in MLflow) started."""
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    experiment = client.get_experiment_by_name(RETRAIN_EXPERIMENT)
    if experiment is None:
        return None
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
    return datetime.fromtimestamp(runs[0].info.start_time / 1000, timezone.utc) if runs else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure drift against the champion's training data, hourly.")
    parser.add_argument("step", choices=("measure", "decide"))
    parser.add_argument("--at", type=lambda text: datetime.fromisoformat(text.replace("Z", "+00:00")),
                        default=None, help="measure the hour before this time (default: now)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per download, in Airflow's log
    settings = settings_module.load()
    if args.step == "decide":
        return decide(settings)
    measure(settings, args.at or datetime.now(timezone.utc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
