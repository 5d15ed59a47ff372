"""The retrain DAG's steps (model/retrain.py) where they decide without services: the run's
folder, a gate that said no, and a step run before the one it needs."""
from __future__ import annotations

import json

import pytest

from lakewatch import settings as settings_module
from model import retrain


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEWATCH_STATE_DIR", str(tmp_path))  # main() loads its own
    return settings_module.load()


def test_a_dag_run_id_becomes_a_safe_folder_under_the_state_folder(settings):
    folder = retrain.work_dir(settings, "manual__2026-12-05T08:55:12.356385+00:00")
    assert folder.parent == settings.state_dir / "model" / "retrain"
    assert folder.name == "manual__2026-12-05T08_55_12.356385_00_00"
    assert retrain.work_dir(settings, "../../etc").name == ".._.._etc"


def test_promote_is_skipped_and_leaves_the_alias_when_the_gate_said_no(settings, capsys):
    folder = retrain.work_dir(settings, "r1")
    folder.mkdir(parents=True)
    (folder / "gate.json").write_text(json.dumps({"promoted": False, "why": "not better", "champion": "3"}))
    (folder / "candidate.json").write_text(json.dumps({"version": "4", "run_id": "x", "nab": None, "test": {}}))
    assert retrain.promote(settings, folder) == retrain.SKIPPED  # no MLflow call: there is none to reach
    assert "the alias stays on version 3: not better" in capsys.readouterr().out


def test_a_step_run_before_the_one_it_needs_says_which_file_is_missing(settings):
    folder = retrain.work_dir(settings, "r2")
    with pytest.raises(SystemExit, match="gate.json is missing: run the step that writes it first"):
        retrain.promote(settings, folder)


def test_the_failure_record_gives_the_failed_steps_own_reason_bounded(settings, monkeypatch):
    recorded = {}
    monkeypatch.setattr(retrain, "record", lambda s, run, outcome, **tags: recorded.update(outcome=outcome, **tags))
    monkeypatch.setattr(retrain, "freshness", lambda s: (_ for _ in ()).throw(SystemExit("retrain: the lake is stale")))
    with pytest.raises(SystemExit):
        retrain.main(["freshness", "--run", "r3"])
    folder = retrain.work_dir(settings, "r3")
    summary = retrain.failed(settings, folder, "r3", "freshness", "Bash command failed")
    assert recorded["outcome"] == "failed" and recorded["failed_step"] == "freshness"
    assert summary == "the retrain failed at step freshness: the lake is stale"
    # Without the step's own words, Airflow's; and never more than 500 characters.
    assert retrain.failed(settings, folder, "r3", "train", "x" * 2000) == ("the retrain failed at step train: "
                                                                          + "x" * 2000)[:500]
