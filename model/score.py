"""The scorer: every final 1-minute bar gets the champion's verdict in `anomalies`, exactly once.

A bar is final once the stream job's watermark for its symbol has passed its end (the
watermarks ride on every bars_1m commit; lakewatch.tables.bar_watermarks). Each cycle the
scorer reads the final bars it has not scored yet with the bars their features depend on
(model.features.scoring_context), builds their features (model/features.py, the function training uses), sends them as CSV to
the serving REST endpoint in batches, and appends the verdicts to `anomalies`, which it
also compacts on the stream job's schedule (lakewatch/maintenance.py).

Exactly once: how far each symbol has been scored travels in the same Delta commit as the
rows (commit metadata STATE_KEY), so a crash before the commit redoes the cycle and a crash
after it finds the state already advanced. Each symbol's open anomaly episode travels the same
way (EPISODES_KEY), so an episode spanning cycles or a restart stays one episode. Each bar's
tail probability is measured against its symbol's previous scores by the same version
(model/calibrate.py), which the scorer reads back from `anomalies` itself, so a restart
measures against exactly what was committed. One scorer per
lake: two would both score. The model name and version on every row are the ones serving
reported before and after the batch; a promotion in between makes the cycle start again.

    python -m model.score
"""
from __future__ import annotations

import json
import logging
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import requests
import sqlalchemy as sa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from prometheus_client import Counter, Gauge, Histogram

from lakewatch import logs, service_http, tables
from lakewatch.maintenance import Schedule
from lakewatch import settings as settings_module
from lakewatch.sql import schema, sql_engine
from model.calibrate import WINDOW, following
from model.episodes import episode_starts
from model.explain import explain
from model.features import BAR_COLUMNS, FEATURES, MODEL_INPUT, build_features, scoring_context

STATE_KEY = "lakewatch.scored_until_us"  # symbol -> window_end (epoch us) of its last scored bar
# symbol -> [its episode's first bar, its last flagged bar] (window_start, epoch ns): model/episodes.py
EPISODES_KEY = "lakewatch.episodes_ns"
CONTEXT = timedelta(days=4)  # enough calendar time to hold LOOKBACK_BARS bars across a weekend
BATCH_ROWS = 10_000
# Calendar time that holds a symbol's last calibrate.WINDOW scored bars: a day of a coin's bars,
# about four trading days of a stock's, across a weekend and a holiday.
CALIBRATION_CONTEXT = timedelta(days=10)

SCORED = Counter("lakewatch_scorer_bars_total", "Bars scored")
FLAGGED = Counter("lakewatch_scorer_anomalies_total", "Bars scored as anomalies", ["asset_class"])
EPISODES = Counter("lakewatch_scorer_episodes_total", "Anomaly episodes opened (model/episodes.py)")
CYCLE = Histogram("lakewatch_scorer_cycle_seconds", "One cycle: read, features, REST, commit")
REST = Histogram("lakewatch_scorer_rest_seconds", "One batch to the serving endpoint",
                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
LAG = Histogram("lakewatch_scorer_lag_seconds", "Scored at - bar end, for bars scored live",
                buckets=(5, 10, 12, 15, 20, 30, 60, 120, 300))
PIPELINE_GAPS = Counter("lakewatch_scorer_pipeline_gap_bars_total",
                        "Bars a pipeline outage cut short: scored, left out of anomaly counts")
ERRORS = Counter("lakewatch_scorer_errors_total", "Cycles that failed", ["reason"])
PENDING = Gauge("lakewatch_scorer_pending_bars", "Final bars waiting for a verdict after the last cycle")


class NoChampion(Exception):
    pass


def served_model(settings) -> tuple[str | None, list[str]]:
    """The version serving answers with, and the columns it takes (MODEL_INPUT, and path_knn's
    symbol and recent returns for a version of it)."""
    health = requests.get(settings.peer_url("serving", settings.serving_port, "/health"), timeout=5).json()
    return health.get("version"), health.get("inputs") or list(MODEL_INPUT)


def score_rows(settings, rows: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The serving endpoint's verdicts for rows (features, as build_features gives them), and the version that gave them."""
    version, inputs = served_model(settings)
    if version is None:
        raise NoChampion("no champion model is being served yet")
    answers = []
    for start in range(0, len(rows), BATCH_ROWS):
        body = rows.iloc[start:start + BATCH_ROWS][inputs].to_csv(index=False)
        started = time.perf_counter()
        response = requests.post(settings.peer_url("serving", settings.serving_port, "/invocations"), data=body,
                                 headers={"Content-Type": "text/csv"}, timeout=60)
        REST.observe(time.perf_counter() - started)
        response.raise_for_status()
        answers.append(pd.DataFrame(response.json()["predictions"]))
    if served_model(settings)[0] != version:
        raise NoChampion(f"the champion changed while scoring with version {version}: starting again")
    return pd.concat(answers, ignore_index=True), version


MINUTE_US = 60_000_000


def pending(settings, anomalies: DeltaTable, bars: DeltaTable, memo: dict) -> tuple[pd.DataFrame, dict[str, int]]:
    """Features of the final bars not scored yet (oldest first, at most max_bars), and the state.

    Bars end on whole minutes, so only a watermark that crossed a minute boundary since the
    last read can have made a bar final: otherwise the bars are not read at all (`memo`
    remembers the boundaries of the last read that found nothing).
    """
    scored_until = tables.commit_value(anomalies, STATE_KEY) or {}
    watermarks = tables.bar_watermarks(bars, settings.bar_watermark_seconds)
    boundaries = {s: us // MINUTE_US * MINUTE_US for s, us in watermarks.items()}
    if not any(b > scored_until.get(s, -1) for s, b in boundaries.items()) or boundaries == memo.get("idle"):
        return pd.DataFrame(), scored_until
    b = schema.bars_1m
    query = sa.select(*(b.c[name] for name in BAR_COLUMNS))
    if scored_until and set(watermarks) <= set(scored_until):  # else some symbol was never scored: read all
        query = query.where(b.c.window_start >= datetime.fromtimestamp(min(scored_until.values()) / 1e6,
                                                                      timezone.utc) - CONTEXT)
    with sql_engine(settings, "duckdb").connect() as connection:
        context = pd.read_sql_query(query, connection)
    if context.empty:
        return context, scored_until
    for column in ("window_start", "window_end", "first_trade_ts", "last_trade_ts"):
        context[column] = pd.to_datetime(context[column], utc=True)
    end_us = context["window_end"].dt.as_unit("us").astype("int64")
    done = context["symbol"].map(scored_until).fillna(-1).astype("int64")
    final = context["symbol"].map(watermarks).fillna(-1).astype("int64")
    todo = context[(end_us > done) & (end_us <= final)]
    PENDING.set(len(todo))
    todo = todo.sort_values("window_start").head(settings.scorer_max_bars)
    memo["idle"] = boundaries if todo.empty else None
    if todo.empty:
        return todo, scored_until
    features = build_features(scoring_context(context, todo.groupby("symbol")["window_start"].min().to_dict()),
                              known_until=watermarks)
    features = features.merge(todo[["symbol", "window_start"]], on=["symbol", "window_start"])
    # A bar next to a silence other symbols cannot speak for yet waits, and so do its symbol's later bars.
    waiting = features["undecided"].groupby(features["symbol"]).cummax()
    return features[~waiting], scored_until


def score_history(anomalies: DeltaTable, version: str, since: datetime) -> dict[str, np.ndarray]:
    """Each symbol's last WINDOW scores by model `version` from `since` on, oldest first, leaving
    out bars a pipeline gap cut short: what its next bars' tail probabilities are measured
    against. Another version's scores live on another scale, so a new champion starts afresh."""
    scored = anomalies.to_pandas(columns=["symbol", "window_start", "anomaly_score", "excluded_reason"],
                                 filters=[("window_date", ">=", since.date()), ("model_version", "=", version)])
    scored = scored[scored["excluded_reason"].isna()].sort_values("window_start")
    return {symbol: group["anomaly_score"].to_numpy(dtype=float)[-WINDOW:]
            for symbol, group in scored.groupby("symbol")}


def calibrated(history: dict[str, np.ndarray], features: pd.DataFrame, scores: np.ndarray,
               gap: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Each bar's tail probability among its symbol's previous WINDOW scores (NaN while fewer
    than calibrate.MIN_HISTORY precede it, and for a bar a pipeline gap cut short), and the
    histories with this batch's scores added."""
    probability = np.full(len(features), np.nan)
    kept = dict(history)
    batch = pd.DataFrame({"symbol": features["symbol"].to_numpy(), "at": features["window_start"].to_numpy(),
                          "score": np.asarray(scores, dtype=float)})
    for symbol, rows in batch[~gap].sort_values("at", kind="stable").groupby("symbol"):
        before = history.get(symbol, np.zeros(0))
        probability[rows.index.to_numpy()] = following(before, rows["score"].to_numpy())
        kept[symbol] = np.r_[before, rows["score"].to_numpy()][-WINDOW:]
    return probability, kept


def cycle(settings, log: logging.Logger, memo: dict, anomalies: DeltaTable) -> int:
    """Score what is pending and commit it with the new state; returns the bars scored."""
    anomalies.update_incremental()
    bars = DeltaTable(str(tables.BARS_1M.path(settings.lake_dir)))
    features, scored_until = pending(settings, anomalies, bars, memo)
    if features.empty:
        return 0
    verdicts, version = score_rows(settings, features)
    gap = features["pipeline_gap"].to_numpy(dtype=bool)
    flagged = verdicts["is_anomaly"].astype(bool).to_numpy() & ~gap
    scores = verdicts["anomaly_score"].astype(float).to_numpy()
    if memo.get("calibration", (None,))[0] != version:
        memo["calibration"] = (version, score_history(anomalies, version,
                                                      features["window_start"].min() - CALIBRATION_CONTEXT))
    probability, kept = calibrated(memo["calibration"][1], features, scores, gap)
    episodes, open_episodes = episode_starts(features[["symbol", "window_start"]].assign(is_anomaly=flagged),
                                             tables.commit_value(anomalies, EPISODES_KEY) or {})
    explanation, evidence = np.full(len(features), None, object), np.full(len(features), None, object)
    for i, measured in zip(np.flatnonzero(flagged), features[flagged].to_dict("records")):
        explanation[i], evidence[i] = explain(verdicts["top_features"].iat[i], measured)
    now = datetime.now(timezone.utc)
    feature_json = [json.dumps({f: round(float(v), 4) for f, v in zip(FEATURES, row)}, separators=(",", ":"))
                    for row in features[list(FEATURES)].to_numpy()]
    rows = pa.table({
        "symbol": features["symbol"].to_numpy(), "asset_class": features["asset_class"].to_numpy(),
        "window_start": features["window_start"], "window_end": features["window_end"],
        "anomaly_score": scores,
        "is_anomaly": flagged,
        "features": feature_json, "top_features": verdicts["top_features"].to_numpy(),
        "model_name": [settings.model_name] * len(features), "model_version": [version] * len(features),
        "scored_at": pa.array([now] * len(features), pa.timestamp("us", tz="UTC")),
        "excluded_reason": np.where(gap, "pipeline_gap", None),
        "episode_start": pa.array(episodes, pa.int64(), mask=episodes < 0).cast(pa.timestamp("ns", tz="UTC")),
        "window_date": features["window_start"].dt.date.to_numpy(),
        "explanation": explanation, "evidence": evidence,
        "tail_probability": pa.array(probability, pa.float64(), mask=np.isnan(probability)),
    }).cast(tables.ANOMALIES.schema)
    state = dict(scored_until)
    ends = features.groupby("symbol")["window_end"].max()
    state.update({symbol: int(ts.value // 1000) for symbol, ts in ends.items()})
    write_deltalake(anomalies, rows, mode="append", schema_mode="merge",  # lakes from before a column
                    commit_properties=CommitProperties(custom_metadata={
                        STATE_KEY: tables.encode_commit_value(state),
                        EPISODES_KEY: tables.encode_commit_value(open_episodes)}))
    memo["calibration"] = (version, kept)  # only once committed: what the table now holds
    SCORED.inc(len(rows))
    EPISODES.inc(int((episodes == features["window_start"].dt.as_unit("ns").astype("int64").to_numpy()).sum()))
    PIPELINE_GAPS.inc(int(gap.sum()))
    for asset_class, n in pd.Series(features["asset_class"].to_numpy()[flagged]).value_counts().items():
        FLAGGED.labels(asset_class).inc(int(n))
    lag = (now - features["window_end"]).dt.total_seconds().to_numpy()
    for seconds in lag[lag < 600]:  # live bars, not a backlog
        LAG.observe(seconds)
    logs.event(log, "bars scored", bars=len(rows), anomalies=int(flagged.sum()), pipeline_gap=int(gap.sum()),
               model_version=version,
               lag_p50_s=round(float(np.median(lag)), 1))
    return len(rows)


def main() -> int:
    settings = settings_module.load()
    log = logs.setup("scorer")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    tables.ensure(settings.lake_dir, (tables.ANOMALIES,))
    anomalies = DeltaTable(str(tables.ANOMALIES.path(settings.lake_dir)))
    maintenance = Schedule({tables.ANOMALIES.name: str(tables.ANOMALIES.path(settings.lake_dir))},
                           settings.maintenance_minutes, settings.vacuum_retention_hours)
    status = {"scored": 0, "last_cycle_ok": None, "waiting_for": None}
    memo: dict = {}

    def health() -> tuple[bool, dict]:
        return True, dict(status)

    server = service_http.serve(settings.host, settings.scorer_port, health)
    logs.event(log, "scorer started", port=settings.scorer_port,
               serving=settings.peer_url("serving", settings.serving_port))
    while not stop.is_set():
        started = time.monotonic()
        try:
            with CYCLE.time():
                scored = cycle(settings, log, memo, anomalies)
            maintenance.run_if_due()
            status.update(scored=status["scored"] + scored, last_cycle_ok=datetime.now(timezone.utc).isoformat(),
                          waiting_for=None)
        except NoChampion as exc:
            scored = 0
            status["waiting_for"] = str(exc)
        except Exception as exc:  # the next cycle retries: nothing was committed
            scored = 0
            ERRORS.labels(type(exc).__name__).inc()
            memo.pop("calibration", None)  # read again from what was committed
            logs.event(log, "scoring cycle failed", logging.WARNING, error=f"{type(exc).__name__}: {exc}")
        if not scored:
            stop.wait(max(0.0, settings.scorer_interval_seconds - (time.monotonic() - started)))
    server.shutdown()
    logs.event(log, "scorer stopped", scored=status["scored"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
