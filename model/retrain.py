"""The retrain DAG's steps (airflow/dags/lakewatch_retrain.py), one command each, so that Airflow
shows, retries and times each one apart, and any of them can be run by hand:

    python -m model.retrain freshness            exit 99 (Airflow: skipped) while the lake has no bars
    python -m model.retrain features --run RUN   RUN: the DAG run's id; the steps between them
    python -m model.retrain train    --run RUN   keep files under var/model/retrain/<RUN>/
    python -m model.retrain gate     --run RUN
    python -m model.retrain promote  --run RUN   exit 99 (Airflow: skipped) when the gate said no
    python -m model.retrain confirm  --run RUN
    python -m model.retrain report   --run RUN
    python -m model.retrain failed   --run RUN --step STEP   (the DAG's failure callback)

The work is model/train.py's, as `make train` does it in one process; here the held-out split
is kept on disk between steps and the MLflow run is resumed by id. Each DAG run, succeeded or
failed, leaves one run in the MLflow experiment `lakewatch-retrain` (RETRAIN_EXPERIMENT): what the bot
quotes when asked about the model.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import mlflow
import pandas as pd
import requests

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.settings.model import CHAMPION_ALIAS, RETRAIN_EXPERIMENT, SKIPPED
from lakewatch.sql import sql_engine
from model import train as training
from model.features import ANY_VERSION_INPUT
from model.registry import champion_version

KEPT_RUNS = 5  # work folders of older DAG runs are removed
FRAMES = ("train_x", "train_labels", "test_x", "test_labels")


def work_dir(settings, run: str) -> Path:
    """The DAG run's folder: its id made safe for a path (Airflow's ids hold ':' and '+')."""
    return settings.state_dir / "model" / "retrain" / re.sub(r"[^A-Za-z0-9_.-]", "_", run)


def read_json(folder: Path, name: str) -> dict:
    path = folder / name
    if not path.exists():
        raise SystemExit(f"retrain: {path} is missing: run the step that writes it first")
    return json.loads(path.read_text())


def freshness(settings) -> str | int:
    """Skip the run while the lake has no bars yet (a stack just started: its first model comes
    from `make up`), and stop it on a lake that stopped filling: a model fit on stale bars would
    be compared, and maybe promoted, on data the stream no longer delivers."""
    bars = 0
    if (tables.BARS_1M.path(settings.lake_dir) / "_delta_log").exists():
        with sql_engine(settings, "duckdb").connect() as connection:
            newest, bars = connection.exec_driver_sql("SELECT max(window_end), count(*) FROM market.bars_1m").one()
    if not bars:
        print("the lake has no bars yet: nothing to retrain on; this run is skipped")
        return SKIPPED
    age = (datetime.now(timezone.utc) - pd.Timestamp(newest).tz_convert("UTC")).total_seconds()
    if age > settings.retrain_max_lake_age_seconds:
        raise SystemExit(f"retrain: the lake is stale: its newest bar ended {age / 60:.0f} min ago, more than "
                         f"LAKEWATCH_RETRAIN_MAX_LAKE_AGE_SECONDS ({settings.retrain_max_lake_age_seconds:.0f} s); "
                         "is the stream job running?")
    return f"the lake is fresh: {bars:,} bars, the newest ended {age:.0f} s ago"


def features(settings, folder: Path) -> str:
    """Features and the time split, kept on disk for the steps after."""
    data = training.load(settings)
    if folder.exists():  # a retry starts over
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name in FRAMES:
        data[name].to_parquet(folder / f"{name}.parquet")
    (folder / "split.json").write_text(json.dumps({"cutoff": data["cutoff"].isoformat(),
                                                   "test_fraction": data["test_fraction"], "mode": data["mode"]}))
    siblings = sorted(folder.parent.iterdir(), key=lambda p: p.stat().st_mtime)
    for old in siblings[:-KEPT_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    return f"{len(data['train_x']):,} training and {len(data['test_x']):,} held-out bars in {folder}"


def load_split(folder: Path, frames: tuple[str, ...] = FRAMES) -> dict:
    """What the features step kept: the frames a step needs (all of them by default), and the split."""
    split = read_json(folder, "split.json")
    data = {name: pd.read_parquet(folder / f"{name}.parquet") for name in frames}
    return {**data, "cutoff": pd.Timestamp(split["cutoff"]), "test_fraction": split["test_fraction"],
            "mode": split.get("mode", training.SUPERVISED)}


def train(settings, folder: Path, run: str) -> str:
    data = load_split(folder)
    with training.start_run(settings) as mlflow_run:
        mlflow.set_tag("airflow_run", run)
        fitted = training.fit_and_register(settings, data)
    (folder / "candidate.json").write_text(json.dumps({
        "run_id": mlflow_run.info.run_id, "version": fitted["version"], "nab": fitted["nab"],
        "test": fitted["test"][fitted["detector"]]}))
    return f"registered version {fitted['version']} (MLflow run {mlflow_run.info.run_id})"


def gate(settings, folder: Path) -> str:
    candidate = read_json(folder, "candidate.json")
    data = load_split(folder, ("test_x", "test_labels"))
    with training.start_run(settings, candidate["run_id"]):
        promoted, why, champion = training.decide(settings, data["test_x"], data["test_labels"], candidate["test"],
                                                  candidate["nab"])
    (folder / "gate.json").write_text(json.dumps({"promoted": promoted, "why": why, "champion": champion}))
    return f"{'promote' if promoted else 'keep the champion'}: {why}"


def promote(settings, folder: Path) -> str | int:
    verdict, candidate = read_json(folder, "gate.json"), read_json(folder, "candidate.json")
    if not verdict["promoted"]:
        print(f"the alias stays on version {verdict['champion']}: {verdict['why']}")
        return SKIPPED
    training.promote(settings, candidate["version"])
    return f"{settings.model_name}@{CHAMPION_ALIAS} -> version {candidate['version']}"


def confirm(settings, folder: Path) -> str:
    """Serving follows the alias on its own (model/serve.py); wait until it answers with the
    champion, then score a few held-out bars through it as a client would."""
    wanted = champion_version(settings)
    timeout = 3 * settings.serving_reload_seconds + 60
    deadline, served = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        try:
            served = requests.get(settings.peer_url("serving", settings.serving_port, "/health"),
                                  timeout=5).json().get("version")
        except (requests.RequestException, ValueError):
            served = None
        if served == wanted:
            break
        time.sleep(1)
    else:
        raise SystemExit(f"retrain: serving answers with version {served}, not the champion {wanted}, after "
                         f"{timeout:.0f} s (is the serving service up? make status)")
    bars = load_split(folder, ("test_x",))["test_x"][list(ANY_VERSION_INPUT)].head(20)
    response = requests.post(settings.peer_url("serving", settings.serving_port, "/invocations"), timeout=30,
                             json={"dataframe_split": json.loads(bars.to_json(orient="split", index=False,
                                                                              date_format="iso"))})
    if response.status_code != 200:
        raise SystemExit(f"retrain: serving's /invocations answered {response.status_code}: {response.text[:300]}")
    return f"serving answers with version {wanted}: {len(response.json()['predictions'])} bars scored"


def record(settings, run: str, outcome: str, **tags) -> None:
    """One MLflow run per DAG run in the experiment RETRAIN_EXPERIMENT: what the bot reports."""
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    mlflow.set_experiment(RETRAIN_EXPERIMENT)
    with mlflow.start_run(run_name=run):
        mlflow.set_tags({"airflow_run": run, "outcome": outcome, **{k: str(v) for k, v in tags.items()}})


def report(settings, folder: Path, run: str) -> str:
    candidate, verdict = read_json(folder, "candidate.json"), read_json(folder, "gate.json")
    summary = (f"version {candidate['version']} {'promoted' if verdict['promoted'] else 'not promoted'}: "
               f"{verdict['why']}")
    record(settings, run, "succeeded", version=candidate["version"], promoted=verdict["promoted"],
           summary=summary, training_run=candidate["run_id"])
    return summary


def failed(settings, folder: Path, run: str, step: str, error: str) -> str:
    """The failed step's own words (what it wrote before exiting), else what Airflow knew."""
    written = folder / f"{step}.error"
    reason = written.read_text().strip() if written.exists() else error or "see the task's log in Airflow"
    summary = f"the retrain failed at step {step}: {reason.removeprefix('retrain: ')}"[:500]
    record(settings, run, "failed", failed_step=step, summary=summary)
    return summary


def remember_error(folder: Path, step: str, error: str) -> None:
    """A failing step's reason, for the failure callback's record (Airflow only knows the exit code)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{step}.error").write_text(error)


STEPS = ("freshness", "features", "train", "gate", "promote", "confirm", "report", "failed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="One step of the lakewatch_retrain DAG.")
    parser.add_argument("step", choices=STEPS)
    parser.add_argument("--run", default="manual", help="the DAG run's id (Airflow's {{ run_id }})")
    parser.add_argument("--step", dest="failed_step", default="", help="failed: the step that failed")
    parser.add_argument("--error", default="", help="failed: its error")
    args = parser.parse_args(argv)
    settings = settings_module.load()
    folder = work_dir(settings, args.run)
    run_step = {
        "freshness": lambda: freshness(settings),
        "features": lambda: features(settings, folder),
        "train": lambda: train(settings, folder, args.run),
        "gate": lambda: gate(settings, folder),
        "promote": lambda: promote(settings, folder),
        "confirm": lambda: confirm(settings, folder),
        "report": lambda: report(settings, folder, args.run),
        "failed": lambda: failed(settings, folder, args.run, args.failed_step, args.error),
    }[args.step]
    try:
        done = run_step()
    except SystemExit as exc:
        if isinstance(exc.code, str):
            remember_error(folder, args.step, exc.code)
        raise
    except Exception as exc:
        remember_error(folder, args.step, f"{type(exc).__name__}: {exc}")
        raise
    if isinstance(done, int):
        return done
    print(f"retrain {args.step}: {done}", flush=True)  # the last line: Airflow's XCom of the task
    return 0


if __name__ == "__main__":
    sys.exit(main())
