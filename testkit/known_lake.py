"""Rows with known values written straight into Delta tables, and a champion with known metrics in
the MLflow registry, so answers can be checked exactly; and the bot running over them."""
from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta

import pyarrow as pa
from deltalake import write_deltalake

from lakewatch import tables
from lakewatch.settings.model import CHAMPION_ALIAS, DEFAULT_DETECTOR, nab_metric

MINUTE = timedelta(minutes=1)


def write(lake_dir, table: tables.Table, rows: list[dict]) -> None:
    full = [{name: row.get(name) for name in table.schema.names} for row in rows]
    write_deltalake(str(table.path(lake_dir)), pa.Table.from_pylist(full, schema=table.schema), mode="append")


def bar(symbol: str, asset_class: str, start: datetime, close: float, *, open_: float | None = None,
        high: float | None = None, low: float | None = None, volume: float = 1.0, trades: int = 1) -> dict:
    open_ = close if open_ is None else open_
    return {"symbol": symbol, "asset_class": asset_class, "window_start": start, "window_end": start + MINUTE,
            "open": open_, "high": max(open_, close) if high is None else high,
            "low": min(open_, close) if low is None else low, "close": close, "volume": volume, "vwap": close,
            "trade_count": trades, "notional": close * volume, "first_trade_ts": start,
            "last_trade_ts": start + MINUTE / 2, "updated_at": start + MINUTE, "longest_silence_s": 0.0,
            "longest_silence_end": start}


def anomaly(symbol: str, asset_class: str, start: datetime, flagged: bool = True, score: float = 0.9,
            features: dict | None = None, top_features: str = "ret_z", version: str = "3",
            episode_start: datetime | None = None, explanation: str | None = None) -> dict:
    """A verdict; a flagged one opens an episode of its own unless `episode_start` names an earlier bar's."""
    return {"symbol": symbol, "asset_class": asset_class, "window_start": start, "window_end": start + MINUTE,
            "anomaly_score": score, "is_anomaly": flagged, "features": json.dumps(features or {"ret_z": 7.5}),
            "top_features": top_features, "model_name": "lakewatch-anomaly", "model_version": version,
            "scored_at": start + 2 * MINUTE, "episode_start": (episode_start or start) if flagged else None,
            "window_date": start.date(), "explanation": explanation if flagged else None}


def flagged_in(anomalies: list[dict], window, asset_class: str | None = None, symbol: str | None = None,
               bars: bool = False) -> int:
    """How many anomalies (episodes begun; flagged bars with `bars`) of these `anomaly()` rows
    fall inside window (a lakewatch.sql.periods.Window): the expected answer, counted from the
    rows a test wrote."""
    return sum(1 for a in anomalies if a["is_anomaly"] and window.start <= a["window_start"] < window.end
               and (bars or a["episode_start"] == a["window_start"])
               and asset_class in (None, a["asset_class"]) and symbol in (None, a["symbol"]))


def reject(key: str, at: datetime) -> dict:
    return {"topic": "market.trades", "kafka_partition": 0, "kafka_offset": 1, "key": key, "raw_value": "x",
            "reason": "not a JSON object", "kafka_ts": at, "rejected_at": at}


# What register_champion logs: the figures the bot reads back from MLflow.
CHAMPION_METRICS = {"robust_ensemble.test.recall": 0.971, "robust_ensemble.test.precision": 0.912,
                    "robust_ensemble.test.f1": 0.94, "robust_ensemble.test.pr_auc": 0.955,
                    "isolation_forest.test.f1": 0.61, nab_metric(DEFAULT_DETECTOR): 3.4}
CHAMPION_PARAMS = {"train_bars": 12345, "train_anomalies": 67}


def register_champion(settings) -> str:
    """A real model version (model/pyfunc.py with neutral scales), logged in a run with known
    metrics and made the champion, through the same register() training uses; returns its version."""
    import mlflow
    import pandas as pd

    from model import ensemble
    from model import train as training
    from model.features import FEATURES, MODEL_INPUT

    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(training.EXPERIMENT)
    with mlflow.start_run():
        mlflow.log_params({"features": ",".join(FEATURES), **CHAMPION_PARAMS})
        mlflow.log_metrics(CHAMPION_METRICS)
        example = pd.DataFrame([{"asset_class": "stocks", **{f: 0.5 for f in FEATURES}}])[list(MODEL_INPUT)]
        version = training.register(settings, ensemble.model_params({"*": {f: 1.0 for f in FEATURES}}, 3.0), example)
    mlflow.MlflowClient().set_registered_model_alias(settings.model_name, CHAMPION_ALIAS, version)
    return version


BOT = ("actions", "rasa", "chat")


@contextlib.contextmanager
def bot_running(settings):
    """MLflow with register_champion's version and the bot's three services as `make up` starts
    them, on settings' ports, behind Trino and its table registration when settings' engine is
    Trino; yields the champion's version; stops all of them by PID."""
    from stack import runner as stack
    from testkit.processes import start_mlflow, stop_process

    names = (("trino", "trino-sync") if settings.sql_engine == "trino" else ()) + BOT
    tracking = start_mlflow(settings)
    try:
        version = register_champion(settings)
        stack.up(settings, only=names)
        yield version
    finally:
        for name in reversed(names):
            stack.stop(settings, name)
        stop_process(tracking)
