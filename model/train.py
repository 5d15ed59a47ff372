"""Train the anomaly model on the lake's history, track it in MLflow, register it, and move
the `champion` alias only when the new model beats the current champion on the same data.

    python -m model.train [--test-fraction 0.3]      (make train)

Steps (each printed as it starts):
1. read bars_1m and anomaly_labels through the SQL surface (without labels, as live Finnhub data
   has none, steps 3, 4 and 7 work for a target alert rate instead: model/unsupervised.py);
2. build features (model/features.py), split by time: the last test-fraction is held out;
3. fit the IsolationForest baseline and the model's detector, LAKEWATCH_MODEL_DETECTOR (the robust
   ensemble, model/ensemble.py, unless another candidate of model/detectors.py is chosen); each gets
   the threshold with the best event recall at precision >= LAKEWATCH_MODEL_MIN_PRECISION on the
   training part;
4. evaluate both on the held-out part (model/evaluate.py) and log params, metrics and plots;
5. real data: with LAKEWATCH_NAB_DIR, score the detector on the Numenta Anomaly Benchmark under
   its rules and scorer (model/nab.py) and log NAB's three profiles; without it, say it is not measured;
6. register the detector as a new version of LAKEWATCH_MODEL_NAME, with its training
   distributions and drift threshold (model/drift.py);
7. promotion gate: the current champion is scored on the same held-out bars; the alias moves
   only if the new version is better there (meets the goal's precision, then higher F1) and no
   worse on NAB than the champion was, when the champion has a NAB score (`promotion`).

`train` runs them all in one process and one MLflow run. Airflow's DAG runs them as separate
steps (model/retrain.py): `load` (1-2), `fit_and_register` (3-6), `decide` and `promote` (7).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import cloudpickle  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow.models import infer_signature  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from lakewatch import settings as settings_module  # noqa: E402
from lakewatch.settings.model import CHAMPION_ALIAS, DEFAULT_DETECTOR, nab_metric  # noqa: E402
from lakewatch.sql import sql_engine  # noqa: E402
from model import detectors, drift, ensemble, nab, pyfunc, unsupervised  # noqa: E402
from model.evaluate import bar_truth, best_threshold, event_metrics, pr_auc  # noqa: E402
from model.features import ANY_VERSION_INPUT, BAR_COLUMNS, FEATURES, MODEL_INPUT, build_features  # noqa: E402
from model.registry import champion_version  # noqa: E402

PYFUNC = Path(__file__).resolve().parent / "pyfunc.py"
STEPS = 7
EXPERIMENT = "lakewatch-anomaly"
GOAL_RECALL, GOAL_PRECISION = 0.9, 0.8  # docs/model.md
TEST_FRACTION = 0.3  # the newest 30 % of the history is held out
BASELINE = "isolation_forest"
# How a version was trained (its tag `mode`, and its model card): on the simulator's labels, or,
# with none in the lake (live Finnhub data), for a target alert rate (model/unsupervised.py).
SUPERVISED, UNSUPERVISED = "supervised", "unsupervised"


def meets_goal(metrics: dict) -> bool:
    return metrics["recall"] >= GOAL_RECALL and metrics["precision"] >= GOAL_PRECISION


def step(n: int, text: str) -> None:
    print(f"[{n}/{STEPS}] {text}", flush=True)


def read_history(settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    with sql_engine(settings, "duckdb").connect() as connection:
        bars = pd.read_sql_query(f"SELECT {', '.join(BAR_COLUMNS)} FROM market.bars_1m", connection)
        labels = pd.read_sql_query("SELECT symbol, asset_class, kind, start_ts, end_ts, magnitude "
                                   "FROM market.anomaly_labels", connection)
    for frame, columns in ((bars, ("window_start", "window_end", "first_trade_ts", "last_trade_ts")),
                           (labels, ("start_ts", "end_ts"))):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column], utc=True)
    return bars, labels


def split(features: pd.DataFrame, labels: pd.DataFrame, test_fraction: float):
    cutoff = features["window_start"].quantile(1 - test_fraction)
    train, test = features[features["window_start"] < cutoff], features[features["window_start"] >= cutoff]
    # Bars without a baseline or next to a pipeline outage get no counted verdict: not learnt from either.
    counted = lambda part: part[part["warm"] & ~part["pipeline_gap"]]  # noqa: E731
    return (counted(train), labels[labels["end_ts"] < cutoff],
            counted(test), labels[labels["start_ts"] >= cutoff], cutoff)


def fit_ensemble(train_x: pd.DataFrame, train_labels: pd.DataFrame) -> dict:
    """The robust ensemble's params, its threshold not chosen yet: scales fit on the bars no label covers."""
    return ensemble.model_params(ensemble.fit_scales(train_x, ~bar_truth(train_x, train_labels)))


def fit_detector(name: str, train_x: pd.DataFrame) -> detectors.Scorer | None:
    """The fitted candidate a version of `name` keeps beside its params, or None for the robust
    ensemble, which is its params. Fit on `train_x`, the bars it should learn as normal."""
    return None if name == "robust_ensemble" else detectors.CANDIDATES[name](train_x)


def detector_params(name: str) -> dict:
    """What a version's params say of its detector: its name, and what it takes besides the
    features (model/pyfunc.py's `inputs`; path_knn's symbol and recent returns)."""
    return {"detector": name, "inputs": detectors.OTHER_INPUTS.get(name, {})}


def model_input(params: dict) -> list[str]:
    """The columns a version with these params takes: MODEL_INPUT and its detector's other inputs."""
    return list(MODEL_INPUT) + list(params.get("inputs", {}))


def scorer_of(params: dict, detector: detectors.Scorer | None) -> detectors.Scorer:
    """Anomaly scores as the registered version will give them (model/pyfunc.py)."""
    return lambda rows: pyfunc.Scorer(params, detector).predict(rows[model_input(params)])["anomaly_score"].to_numpy()


def quality_key(metrics: dict) -> tuple:
    """Held-out models compare on the goal's precision bar first, then F1. The training bar
    (model_min_precision) is higher only to leave a margin when choosing the threshold."""
    return (metrics["precision"] >= GOAL_PRECISION, metrics["f1"])


def nab_python(settings) -> Path:
    """NAB's scorer's interpreter: the 'nab' venv, which `make train NAB=path` builds."""
    return settings.venv_dir / "nab" / "bin" / "python"


def check_nab(settings) -> None:
    """Stop in seconds, before any work, when LAKEWATCH_NAB_DIR is set but cannot be used."""
    if settings.nab_dir is None:
        return
    problem = nab.checkout_problem(settings.nab_dir)
    if problem:
        raise SystemExit(f"train: LAKEWATCH_NAB_DIR: {problem}")
    if not nab_python(settings).exists():
        raise SystemExit(f"train: NAB's scorer needs its venv, which is not built yet: run `make train NAB="
                         f"{settings.nab_dir}` (or `python3 -m stack.bootstrap nab` first)")


def nab_metrics(settings) -> dict[str, float]:
    """The detector as this code trains it, on NAB: fit on each series' probationary bars (NAB's
    rule) and scored raw, as the scorer scores; NAB's normalised score per profile and category."""
    name = nab.detector_name(settings.model_detector)

    def series(bars: pd.DataFrame, probation: int, _stamps: np.ndarray) -> dict[str, np.ndarray]:
        features = build_features(bars)
        fit = detectors.CANDIDATES[settings.model_detector]
        return {name: nab.squash(fit(features.iloc[:probation])(features))}

    result = nab.score(settings.nab_dir, series, [name], settings.state_dir / "model" / "nab",
                       nab_python(settings), references=False)
    final = result["final"][name]
    return {**{f"nab.{profile.lower().replace(' ', '_')}": final[key] for key, profile in nab.PROFILES.items()},
            **{f"nab.category.{category}": score for category, score in result["categories"][name].items()}}


def promotion(candidate: dict, champion: dict, candidate_nab: float | None,
              champion_nab: float | None) -> tuple[bool, str]:
    """Whether a new version replaces the champion, and why, in one sentence. It must be better
    on the simulator's held-out bars (quality_key), and no worse on real data (NAB's standard
    score) than the champion was, whenever the champion has a NAB score."""
    if quality_key(candidate) <= quality_key(champion):
        return False, "not better than the champion on the held-out bars"
    if champion_nab is None:
        return True, "better on the held-out bars; real data not compared (the champion has no NAB score)"
    if candidate_nab is None:
        return False, ("better on the held-out bars, but the champion scored on NAB and this version was not "
                       "measured there (set LAKEWATCH_NAB_DIR)")
    if candidate_nab < champion_nab:
        return False, f"better on the held-out bars, but worse on NAB ({candidate_nab:.1f} < {champion_nab:.1f})"
    return True, f"better on the held-out bars, and no worse on NAB ({candidate_nab:.1f} >= {champion_nab:.1f})"


def _plots(run_scores: dict[str, pd.DataFrame], test_labels: pd.DataFrame, metrics: dict[str, dict]) -> dict:
    figures = {}
    truth = None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, scored in run_scores.items():
        truth = bar_truth(scored, test_labels) if truth is None else truth
        precision, recall, _ = precision_recall_curve(truth, scored["anomaly_score"])
        ax.plot(recall, precision, label=f"{name} (PR-AUC {metrics[name]['pr_auc']:.2f})")
    ax.set(xlabel="recall (bars)", ylabel="precision (bars)", title="Held-out bars")
    ax.legend()
    figures["pr_curve.png"] = fig
    kinds = sorted(k.removeprefix("recall_") for k in next(iter(metrics.values())) if k.startswith("recall_"))
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(metrics)
    for i, (name, m) in enumerate(metrics.items()):
        ax.bar(np.arange(len(kinds)) + i * width, [m[f"recall_{k}"] for k in kinds], width, label=name)
    ax.set_xticks(np.arange(len(kinds)) + width / 2, kinds, rotation=20)
    ax.set(ylabel="event recall", ylim=(0, 1.05), title="Recall per injected kind (held out)")
    ax.legend()
    figures["recall_per_kind.png"] = fig
    return figures


def load(settings, test_fraction: float = TEST_FRACTION) -> dict:
    """Steps 1 and 2: the lake's history as features, split by time into the parts training
    learns from and the held-out part it is judged on."""
    check_nab(settings)
    step(1, "reading bars_1m and anomaly_labels from the lake")
    bars, labels = read_history(settings)
    if bars.empty:
        raise SystemExit("train: no history to learn from (bars_1m is empty); "
                         "run `make backfill DAYS=2` with the stack up first")
    mode = SUPERVISED if len(labels) else UNSUPERVISED
    step(2, f"building features for {len(bars):,} bars of {bars['symbol'].nunique()} symbols, "
            + (f"{len(labels)} labelled anomalies" if len(labels) else "no labels (live data): training without them"))
    train_x, train_labels, test_x, test_labels, cutoff = split(build_features(bars), labels, test_fraction)
    return {"train_x": train_x, "train_labels": train_labels, "test_x": test_x, "test_labels": test_labels,
            "cutoff": cutoff, "test_fraction": test_fraction, "mode": mode}


def fit_and_register(settings, data: dict) -> dict:
    """Steps 3 to 6, inside the active MLflow run: fit the baseline and the model's detector,
    evaluate them on the held-out bars, score on NAB when it is set, log it all, and register the
    detector. Without labels, the detector alone, for a target alert rate (model/unsupervised.py)."""
    if data.get("mode") == UNSUPERVISED:
        return fit_without_labels(settings, data)
    name = settings.model_detector
    train_x, train_labels, test_x, test_labels = (data[k] for k in ("train_x", "train_labels", "test_x", "test_labels"))
    step(3, f"fitting {name} and the {BASELINE} baseline on {len(train_x):,} bars before "
            f"{data['cutoff']:%Y-%m-%d %H:%M} UTC, choosing thresholds for precision >= {settings.model_min_precision}")
    # The ensemble's scales also name each verdict's top features, whichever detector scores it.
    params = {**fit_ensemble(train_x, train_labels), **detector_params(name)}
    detector = fit_detector(name, train_x[~bar_truth(train_x, train_labels)])
    scorers = {BASELINE: detectors.isolation_forest(train_x), name: scorer_of(params, detector)}
    thresholds, train_metrics = {}, {}
    for model, scorer in scorers.items():
        thresholds[model], train_metrics[model] = best_threshold(train_x.assign(anomaly_score=scorer(train_x)),
                                                                 train_labels, settings.model_min_precision)

    step(4, f"evaluating on {len(test_x):,} held-out bars with {len(test_labels)} anomalies")
    test_scores = {model: test_x.assign(anomaly_score=scorer(test_x)) for model, scorer in scorers.items()}
    test_metrics = {model: {**event_metrics(test_scores[model], test_labels, thresholds[model]),
                            "pr_auc": pr_auc(test_scores[model], test_labels)} for model in scorers}
    for model, m in test_metrics.items():
        print(f"      {model:<17} recall {m['recall']:.3f}  precision {m['precision']:.3f}  f1 {m['f1']:.3f}  "
              f"pr_auc {m['pr_auc']:.3f}  delay p50 {m['delay_p50_s']:.0f} s")

    print(f"      the candidate {'meets' if meets_goal(test_metrics[name]) else 'does NOT meet'} the goal "
          f"(event recall >= {GOAL_RECALL} at precision >= {GOAL_PRECISION})")
    real = real_data(settings)
    mlflow.log_params({"mode": SUPERVISED, "detector": name, "features": ",".join(FEATURES),
                       "test_fraction": data["test_fraction"],
                       "cutoff": data["cutoff"].isoformat(), "train_bars": len(train_x), "test_bars": len(test_x),
                       "train_anomalies": len(train_labels), "test_anomalies": len(test_labels),
                       "min_precision": settings.model_min_precision,
                       **{f"threshold_{model}": thresholds[model] for model in scorers},
                       "iforest_trees": detectors.FOREST_TREES})
    for model in scorers:
        mlflow.log_metrics({f"{model}.test.{k}": v for k, v in test_metrics[model].items() if np.isfinite(v)})
        mlflow.log_metrics({f"{model}.train.{k}": v for k, v in train_metrics[model].items() if np.isfinite(v)})
    mlflow.log_metrics({f"{name}.{k}": v for k, v in real.items()})
    mlflow.set_tag("real_data", f"NAB ({settings.nab_dir})" if real else "not measured")
    for filename, fig in _plots(test_scores, test_labels, test_metrics).items():
        mlflow.log_figure(fig, filename)
        plt.close(fig)

    m = test_metrics[name]
    card = (f"Mode: supervised, {name}. Trained on {len(train_x):,} bars with {len(train_labels)} labelled anomalies; one "
            f"threshold, chosen for the best event recall at precision >= {settings.model_min_precision} on them. "
            f"Held out ({len(test_x):,} bars, {len(test_labels)} anomalies): recall {m['recall']:.3f}, "
            f"precision {m['precision']:.3f}, F1 {m['f1']:.3f}.")
    version = register_with_drift(settings, {**params, **ensemble.model_params(params["scales"], thresholds[name])},
                                  train_x, test_x, SUPERVISED, card, detector)
    return {"version": version, "detector": name, "test": test_metrics, "thresholds": thresholds,
            "nab": real.get("nab.standard")}


def fit_without_labels(settings, data: dict) -> dict:
    """Steps 3 to 6 without labels: per-class thresholds for the target alert rate, judged on
    the held-out bars by their alert rates and steadiness (model/unsupervised.py)."""
    name, train_x, test_x, rate = settings.model_detector, data["train_x"], data["test_x"], settings.model_target_alert_rate
    step(3, f"no labels: fitting {name} on {len(train_x):,} bars before {data['cutoff']:%Y-%m-%d %H:%M} "
            f"UTC, one threshold per asset class for a target alert rate of {rate:.2%} of its bars")
    # Without labels every training bar is learnt from, the few anomalous ones too (as the scales are).
    detector = fit_detector(name, train_x)
    params = {**unsupervised.fit(train_x, rate, None if detector is None else detector(train_x)), **detector_params(name)}
    step(4, f"evaluating alert rates on {len(test_x):,} held-out bars")
    flagged = pyfunc.Scorer(params, detector).predict(test_x[model_input(params)])["is_anomaly"].to_numpy()
    test = unsupervised.alert_metrics(test_x, flagged, rate)
    print(f"      {name:<17} alert rate {test['alert_rate']:.2%} (target {rate:.2%}), "
          f"{test['rate_error']:.0%} off per class, instability {test['instability']:.2f}")
    real = real_data(settings)
    mlflow.log_params({"mode": UNSUPERVISED, "detector": name, "features": ",".join(FEATURES),
                       "test_fraction": data["test_fraction"],
                       "cutoff": data["cutoff"].isoformat(), "train_bars": len(train_x), "test_bars": len(test_x),
                       "train_anomalies": 0, "target_alert_rate": rate,
                       **{f"threshold_{name}.{'any' if c == pyfunc.ANY_CLASS else c}": t
                          for c, t in params["threshold"].items()}})  # MLflow refuses "*" in a name
    mlflow.log_metrics({f"{name}.test.{k}": v for k, v in test.items()})
    mlflow.log_metrics({f"{name}.{k}": v for k, v in real.items()})
    mlflow.set_tag("real_data", f"NAB ({settings.nab_dir})" if real else "not measured")
    card = (f"Mode: unsupervised, {name} (no anomaly labels in the lake, as with live Finnhub data). Trained on "
            f"{len(train_x):,} bars; one threshold per asset class, flagging {rate:.2%} of the class's own training "
            f"bars (LAKEWATCH_MODEL_TARGET_ALERT_RATE). Held out ({len(test_x):,} bars): alert rate "
            f"{test['alert_rate']:.2%}, {test['rate_error']:.0%} off the target per class, instability "
            f"{test['instability']:.2f}. No recall or precision: nothing says which bars were anomalies.")
    version = register_with_drift(settings, params, train_x, test_x, UNSUPERVISED, card, detector)
    return {"version": version, "detector": name, "test": {name: test}, "thresholds": {name: params["threshold"]},
            "nab": real.get("nab.standard")}


def real_data(settings) -> dict[str, float]:
    """Step 5: NAB's scores of the detector as this code trains it, or none without LAKEWATCH_NAB_DIR."""
    if settings.nab_dir is None:
        step(5, "real data: not measured (LAKEWATCH_NAB_DIR names no NAB checkout; docs/model.md)")
        return {}
    step(5, f"real data: scoring {settings.model_detector} on NAB's series in {settings.nab_dir}")
    real = nab_metrics(settings)
    print(f"      NAB standard {real['nab.standard']:.1f}  low FP {real['nab.low_fp']:.1f}  "
          f"low FN {real['nab.low_fn']:.1f}  (100 = perfect, 0 = NAB's null detector)")
    return real


def register_with_drift(settings, params: dict, train_x: pd.DataFrame, test_x: pd.DataFrame, mode: str,
                        card: str, detector: detectors.Scorer | None = None) -> str:
    """Step 6: the version, with its training distributions for drift detection and its model
    card (the version's description in MLflow's registry, and its tag `mode`)."""
    step(6, f"registering {settings.model_detector} as a new version of {settings.model_name} ({mode}), with its "
            f"training distributions for drift detection")
    reference = drift.fit(train_x)
    mlflow.log_param("drift_training_hours", reference["training_hours"])
    version = register(settings, {**params, "drift": reference}, test_x[model_input(params)].head(5), detector)
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    client.update_model_version(settings.model_name, version, description=card)
    client.set_model_version_tag(settings.model_name, version, "mode", mode)
    mlflow.set_tags({"model_version": version, "mode": mode})
    return version


def start_run(settings, run_id: str | None = None):
    """The training run: a new one, or (run_id) the one an earlier step of the same retrain started."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    return mlflow.start_run(run_id=run_id, run_name=None if run_id else f"{settings.model_detector} vs {BASELINE}")


def train(settings, test_fraction: float = TEST_FRACTION) -> dict:
    """Every step in one process and one MLflow run (make train; the Airflow DAG runs them apart)."""
    started = time.monotonic()
    data = load(settings, test_fraction)
    with start_run(settings) as run:
        fitted = fit_and_register(settings, data)
        version = fitted["version"]
        step(7, "promotion gate: scoring the current champion on the same held-out bars")
        promoted, _, champion = decide(settings, data["test_x"], data["test_labels"],
                                       fitted["test"][fitted["detector"]], fitted["nab"])
        if promoted:
            promote(settings, version)
        result = {"run_id": run.info.run_id, "version": version, "promoted": promoted, "test": fitted["test"],
                  "thresholds": fitted["thresholds"], "previous_champion": champion,
                  "seconds": round(time.monotonic() - started, 1)}
    print(f"train: version {version} {'is the champion now' if promoted else 'did not beat the champion'} "
          f"({result['seconds']} s); MLflow UI: {settings.mlflow_tracking_uri}")
    return result


def register(settings, params: dict, example: pd.DataFrame, detector: detectors.Scorer | None = None) -> str:
    """Log model/pyfunc.py with these params (its params.json) and the fitted detector, when the
    version is another candidate than the ensemble, as a new version; returns it."""
    if mlflow.active_run() is None:  # called on its own: MLflow caches the last experiment id per process
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_experiment(EXPERIMENT)
    with tempfile.TemporaryDirectory() as tmp:
        params_path = Path(tmp) / "params.json"
        params_path.write_text(json.dumps(params, indent=1))
        artifacts = {"params": str(params_path)}
        if detector is not None:
            # By value: the version keeps scoring as this code did, whatever model/detectors.py becomes
            # (the libraries it fit, scikit-learn, pyod or river, are pinned in pyproject.toml).
            cloudpickle.register_pickle_by_value(detectors)
            artifacts["detector"] = str(Path(tmp) / "detector.pkl")
            Path(artifacts["detector"]).write_bytes(cloudpickle.dumps(detector))
        output = pd.DataFrame({"anomaly_score": [0.5], "is_anomaly": [True], "top_features": ["ret_z,range_z,count_z"]})
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(PYFUNC), artifacts=artifacts,
            signature=infer_signature(example, output), input_example=example,
            registered_model_name=settings.model_name)
    return str(info.registered_model_version)


def decide(settings, test_x: pd.DataFrame, test_labels: pd.DataFrame, candidate: dict,
           candidate_nab: float | None) -> tuple[bool, str, str | None]:
    """Whether the active run's version should replace the champion, why, and the champion it was
    compared with. The verdict is the run's tags `gate` and `promoted`."""
    current = champion_version(settings)
    if current is None:
        promoted, why = True, "the first version: there was no champion"
    elif "rate_error" in candidate:  # trained without labels: alert rates, not F1
        promoted, why = against_champion_without_labels(settings, current, test_x, candidate)
    else:
        promoted, why = against_champion(settings, current, test_x, test_labels, candidate, candidate_nab)
    print(f"      {'promoted' if promoted else 'not promoted'}: {why}")
    mlflow.set_tags({"gate": why, "promoted": str(promoted), "previous_champion": current or "none"})
    return promoted, why, current


def champion_verdict(settings, test_x: pd.DataFrame) -> pd.DataFrame | str:
    """The champion's verdicts on the held-out bars, or why it cannot give them (e.g. trained on
    features this data lacks): both gates score it the same way."""
    try:
        return mlflow.pyfunc.load_model(f"models:/{settings.model_name}@{CHAMPION_ALIAS}").predict(
            test_x[list(ANY_VERSION_INPUT)])
    except mlflow.exceptions.MlflowException as exc:
        return str(exc)


def against_champion(settings, current: str, test_x: pd.DataFrame, test_labels: pd.DataFrame, candidate: dict,
                     candidate_nab: float | None) -> tuple[bool, str]:
    """`promotion` against the champion: scored on the same held-out bars, and its NAB score as
    logged in its run; logged beside the candidate's."""
    verdict = champion_verdict(settings, test_x)
    if isinstance(verdict, str):
        return True, f"champion v{current} cannot score this data ({verdict}): the new version replaces it"
    flagged = test_x.assign(anomaly_score=verdict["is_anomaly"].astype(float).to_numpy())
    champion_metrics = event_metrics(flagged, test_labels, 0.5)
    print(f"      champion v{current}: recall {champion_metrics['recall']:.3f}  "
          f"precision {champion_metrics['precision']:.3f}  f1 {champion_metrics['f1']:.3f}")
    mlflow.log_metrics({f"champion.test.{k}": v for k, v in champion_metrics.items() if np.isfinite(v)})
    client = mlflow.MlflowClient()
    champion_run = client.get_run(client.get_model_version(settings.model_name, current).run_id).data
    champion_nab = champion_run.metrics.get(nab_metric(champion_run.params.get("detector", DEFAULT_DETECTOR)))
    if champion_nab is not None:
        mlflow.log_metric("champion.nab.standard", champion_nab)
    return promotion(candidate, champion_metrics, candidate_nab, champion_nab)


def against_champion_without_labels(settings, current: str, test_x: pd.DataFrame, candidate: dict) -> tuple[bool, str]:
    """unsupervised.promotion against the champion's alert rates on the same held-out bars."""
    verdict = champion_verdict(settings, test_x)
    if isinstance(verdict, str):
        return True, f"champion v{current} cannot score this data ({verdict}): the new version replaces it"
    champion = unsupervised.alert_metrics(test_x, verdict["is_anomaly"].to_numpy(), settings.model_target_alert_rate)
    print(f"      champion v{current}: alert rate {champion['alert_rate']:.2%}, {champion['rate_error']:.0%} off per "
          f"class, instability {champion['instability']:.2f}")
    mlflow.log_metrics({f"champion.test.{k}": v for k, v in champion.items()})
    return unsupervised.promotion(candidate, champion)


def promote(settings, version: str) -> None:
    """Move the `champion` alias: serving and the scorer follow it (model/serve.py)."""
    mlflow.MlflowClient(settings.mlflow_tracking_uri).set_registered_model_alias(settings.model_name, CHAMPION_ALIAS, version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train, evaluate, register and maybe promote the anomaly model.")
    parser.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    args = parser.parse_args(argv)
    result = train(settings_module.load(), args.test_fraction)
    print(json.dumps({k: result[k] for k in ("version", "promoted", "run_id")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
