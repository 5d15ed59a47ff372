"""lakewatch_retrain: retrain the anomaly model on the lake's history, daily (LAKEWATCH_RETRAIN_SCHEDULE)
and whenever it is triggered, and move the champion only when the new version passes the gate.

Each task is one step of model/retrain.py, run by the core venv's Python from the repo root:
Airflow's own venv has none of lakewatch's dependencies (Spark, scikit-learn, MLflow), and
it needs none of them to schedule, retry and show the steps. The last line a step prints is
its XCom.

A step that fails is retried once; if it fails again the run fails (red in the UI; the
Prometheus alert RetrainFailed), and the failure callback records which step failed
and why in MLflow, where the bot reads it (model/retrain.py).
"""
from __future__ import annotations

import subprocess
from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG
from airflow.timetables.trigger import CronTriggerTimetable

from lakewatch import settings as settings_module
from lakewatch.settings import REPO_ROOT

SETTINGS = settings_module.load()
PYTHON = SETTINGS.venv_dir / "core" / "bin" / "python"


def record_failure(context) -> None:
    """After the last retry: the failed step and its error, in MLflow for the bot."""
    step, error = context["task_instance"].task_id, str(context.get("exception") or "see the task's log")
    subprocess.run([str(PYTHON), "-m", "model.retrain", "failed", "--run", context["run_id"], "--step", step,
                    "--error", error], cwd=REPO_ROOT, timeout=120, check=False)


with DAG(
    "lakewatch_retrain",
    description="Retrain the anomaly model, gate it against the champion, move the alias, confirm serving",
    # No start date: the first run waits for the next scheduled time, so a stack just started
    # does not retrain at once on whatever the lake holds (run_immediately=False).
    schedule=CronTriggerTimetable(SETTINGS.retrain_schedule, timezone="UTC"),
    catchup=False,
    max_active_runs=1,  # two retrains at once would race for the alias
    is_paused_upon_creation=False,  # the schedule is the point; pause it in the UI to stop it
    default_args={"retries": 1, "retry_delay": timedelta(seconds=SETTINGS.retrain_retry_delay_seconds),
                  "cwd": str(REPO_ROOT), "execution_timeout": timedelta(minutes=30),
                  "on_failure_callback": record_failure},
    tags=["lakewatch", "model"],
    doc_md=__doc__,
) as dag:
    def step(name: str, doc: str, **extra) -> BashOperator:
        # {{ run_id }} is Jinja, rendered by Airflow: the DAG run's id names the run's folder.
        return BashOperator(task_id=name, bash_command=f"{PYTHON} -m model.retrain {name} --run '{{{{ run_id }}}}'",
                            doc=doc, **extra)

    freshness = step("freshness", "Stop on a lake whose newest bar is older than the allowed age; skip an empty one.")
    features = step("features", "Read bars_1m and the labels, build features, split off the held-out bars.")
    train = step("train", "Fit, evaluate on the held-out bars, log to MLflow, register a new version.")
    gate = step("gate", "Score the champion on the same bars; decide whether the new version replaces it.")
    # Exit 99 (skipped) when the gate said no: confirm and report run after the gate all the same.
    # A freshness step skipped (no bars yet) skips the whole run.
    promote = step("promote", "Move the champion alias to the new version, if the gate passed.")
    confirm = step("confirm", "Wait until serving answers with the champion; score a few bars through it.",
                   trigger_rule="none_failed_min_one_success")
    report = step("report", "Record the outcome in MLflow (experiment lakewatch-retrain).")
    freshness >> features >> train >> gate >> promote >> confirm >> report
    gate >> confirm
