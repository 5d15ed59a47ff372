"""lakewatch_drift: every hour, measure how far each asset class's live model inputs moved from
the champion's training distributions (model/drift.py), and retrain when one moved too far.

`measure` writes the hour to the model_drift table (the Anomalies dashboard's drift chart) and to
Prometheus (alert ModelDrift). `decide` is skipped (exit 99, BashOperator's skip code) when no class passed its threshold, or when a
retrain ran within the cooldown; otherwise lakewatch_retrain is triggered, with the reason in
its conf. Like lakewatch_retrain's, the steps run in the core venv's Python.
"""
from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param
from airflow.timetables.trigger import CronTriggerTimetable

from lakewatch import settings as settings_module
from lakewatch.settings import REPO_ROOT

SETTINGS = settings_module.load()
PYTHON = SETTINGS.venv_dir / "core" / "bin" / "python"

with DAG(
    "lakewatch_drift",
    description="Hourly drift of live model inputs against the champion's training data; retrain past its threshold",
    schedule=CronTriggerTimetable(SETTINGS.drift_schedule, timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=SETTINGS.retrain_retry_delay_seconds),
                  "cwd": str(REPO_ROOT), "execution_timeout": timedelta(minutes=10)},
    tags=["lakewatch", "model"],
    doc_md=__doc__,
    # The trigger form's field: measure the hour before another moment than now (a past hour, again).
    params={"at": Param("", type="string", title="Measure the hour before (ISO time, UTC; empty: now)")},
) as dag:
    measure = BashOperator(task_id="measure",
                           bash_command=f"{PYTHON} -m model.drift measure" + "{% if params.at %} --at '{{ params.at }}'{% endif %}",
                           doc="PSI per asset class and feature over the last whole hour, into model_drift and Prometheus.")
    decide = BashOperator(task_id="decide", bash_command=f"{PYTHON} -m model.drift decide",
                          doc="Skipped unless a class drifted past its threshold and no retrain ran within the cooldown.")
    retrain = TriggerDagRunOperator(task_id="retrain", trigger_dag_id="lakewatch_retrain",
                                    conf={"reason": "drift", "drift_run": "{{ run_id }}"},
                                    doc="Start lakewatch_retrain; it gates and promotes as on its schedule.")
    measure >> decide >> retrain
