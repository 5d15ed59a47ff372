"""The DAGs as Airflow loads them (in the airflow venv, as its DAG processor does): no import
error, their steps in order, each one a step of model/, retried once, on the schedule settings give."""
from __future__ import annotations

import json
import os
import subprocess

from lakewatch.settings import REPO_ROOT
from testkit.processes import built_venv_python

INSPECT = """
import json
import sys
from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder="airflow/dags", include_examples=False)
dag = bag.dags[sys.argv[1]]  # as parsed; get_dag would ask the metadata database
print(json.dumps({
    "errors": {k: str(v)[-300:] for k, v in bag.import_errors.items()},
    "tasks": {t.task_id: {"downstream": sorted(t.downstream_task_ids), "retries": t.retries,
                          "command": getattr(t, "bash_command", None),
                          "trigger_dag_id": getattr(t, "trigger_dag_id", None), "trigger_rule": getattr(t.trigger_rule, "value", t.trigger_rule)} for t in dag.tasks},
    "schedule": dag.timetable.summary, "paused": dag.is_paused_upon_creation, "max_active_runs": dag.max_active_runs,
}))
"""


def inspect(dag: str, **env) -> dict:
    done = subprocess.run([str(built_venv_python("airflow")), "-c", INSPECT, dag], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=120, env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", **env})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_retrain_dag_loads_and_runs_its_seven_steps_in_order_each_retried_once(tmp_path):
    dag = inspect("lakewatch_retrain", AIRFLOW_HOME=str(tmp_path), LAKEWATCH_RETRAIN_SCHEDULE="30 3 * * *")
    assert dag["errors"] == {}
    tasks = dag["tasks"]
    order = ["freshness", "features", "train", "gate", "promote", "confirm", "report"]
    assert set(tasks) == set(order) and tasks["report"]["downstream"] == []
    assert all(after in tasks[before]["downstream"] for before, after in zip(order, order[1:]))
    assert tasks["gate"]["downstream"] == ["confirm", "promote"]  # confirm runs when promote is skipped
    assert tasks["confirm"]["trigger_rule"] == "none_failed_min_one_success"
    for name, task in tasks.items():
        assert task["retries"] == 1
        assert f"-m model.retrain {name} --run '{{{{ run_id }}}}'" in task["command"]
    assert dag["schedule"] == "30 3 * * *" and dag["paused"] is False and dag["max_active_runs"] == 1


def test_the_drift_dag_measures_hourly_and_triggers_the_retrain_only_through_its_decision(tmp_path):
    dag = inspect("lakewatch_drift", AIRFLOW_HOME=str(tmp_path))
    assert dag["errors"] == {}
    tasks = dag["tasks"]
    assert tasks["measure"]["downstream"] == ["decide"] and tasks["decide"]["downstream"] == ["retrain"]
    assert "-m model.drift measure{% if params.at %} --at '{{ params.at }}'{% endif %}" in tasks["measure"]["command"]
    assert tasks["decide"]["command"].endswith("-m model.drift decide")  # exit 99: skipped, and so is the trigger
    assert tasks["retrain"]["trigger_dag_id"] == "lakewatch_retrain" and tasks["retrain"]["trigger_rule"] == "all_success"
    assert all(task["retries"] == 1 for task in tasks.values())
    assert dag["schedule"] == "5 * * * *" and dag["paused"] is False and dag["max_active_runs"] == 1



def test_every_module_a_dag_step_runs_starts_as_a_program():
    """Each step is `python -m model.<module>` in a process of its own: an import that works
    inside the test process can still fail there (a cycle entered from the other end)."""
    for module in ("model.retrain", "model.drift"):
        done = subprocess.run([str(built_venv_python("core")), "-m", module, "--help"], capture_output=True,
                              text=True, cwd=REPO_ROOT, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
