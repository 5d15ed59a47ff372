"""The VS Code workspace files (.vscode/) point at Makefile targets, programs, modules and venvs;
VS Code only notices a renamed target or a moved module when someone clicks. These checks
notice it in CI, and keep each debug configuration starting its service the way the stack does.
docs/vscode.md walks through the files."""
from __future__ import annotations

import json
import re
import sys
import tomllib
from pathlib import Path

import pytest

from stack import services
from lakewatch import settings as settings_module
from stack.bootstrap import VENVS
from lakewatch.settings import REPO_ROOT

VSCODE = REPO_ROOT / ".vscode"
WORKSPACE = "${workspaceFolder}/"
REQUIRED_TASKS = {"up", "down", "status", "logs", "test", "test-unit", "bench", "train"}
DEBUGGED_SERVICES = {"stream", "scorer", "ingestion", "actions"}
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def workspace_file(name: str) -> dict:
    # Kept strict JSON (no comments, no trailing commas), so the standard parser reads what VS Code reads.
    return json.loads((VSCODE / name).read_text())


def tasks() -> list[dict]:
    return workspace_file("tasks.json")["tasks"]


def configurations() -> list[dict]:
    return workspace_file("launch.json")["configurations"]


def service_configurations() -> list[dict]:
    """The debug configurations of services: all but those that run pytest."""
    return [c for c in configurations() if c.get("module") != "pytest" and "debug-test" not in c.get("purpose", [])]


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE))


def repo_path(value: str) -> Path:
    assert value.startswith(WORKSPACE), f"{value} is not a path in the workspace"
    return REPO_ROOT / value.removeprefix(WORKSPACE)


def venv_of(python: str) -> str:
    match = re.fullmatch(r"\$\{workspaceFolder\}/var/venvs/([^/]+)/bin/python", python)
    assert match, f"{python} is not the python of a venv under var/venvs"
    return match[1]


@pytest.mark.parametrize("name", ["tasks.json", "launch.json", "settings.json", "extensions.json"])
def test_every_workspace_file_is_strict_json(name):
    assert isinstance(workspace_file(name), dict)


def test_every_task_calls_a_real_makefile_target_named_like_it():
    targets = makefile_targets()
    for task in tasks():
        match = re.fullmatch(r"make ([a-z-]+)", task["command"])
        assert match, f"task {task['label']} runs {task['command']!r}, not a make target"
        assert match[1] in targets, f"task {task['label']}: the Makefile has no target {match[1]}"
        assert task["label"] == match[1]


def test_the_stack_and_test_targets_have_tasks_and_test_is_the_default_test_task():
    by_label = {task["label"]: task for task in tasks()}
    assert REQUIRED_TASKS <= set(by_label)
    defaults = [t["label"] for t in tasks() if isinstance(t.get("group"), dict) and t["group"].get("isDefault")]
    assert defaults == ["test"] and by_label["test"]["group"]["kind"] == "test"


def test_the_logs_task_follows_in_the_background_in_its_own_panel():
    logs = next(task for task in tasks() if task["label"] == "logs")
    assert logs["isBackground"] is True
    assert logs["presentation"]["panel"] == "dedicated"


def test_every_debug_configuration_runs_a_file_or_module_of_the_repo():
    for config in configurations():
        if "program" in config:
            assert repo_path(config["program"]).is_file(), config["name"]
        elif config.get("module") == "pytest":
            assert any(dep.startswith("pytest==") for dep in PYPROJECT["project"]["optional-dependencies"]["test"])
        elif "module" in config:
            module = REPO_ROOT.joinpath(*config["module"].split("."))
            assert module.with_suffix(".py").is_file() or (module / "__init__.py").is_file(), config["name"]
        else:  # the Test Explorer supplies the program of its "Debug Test"
            assert config["purpose"] == ["debug-test"], f"{config['name']} runs nothing"


def test_every_interpreter_is_a_venv_that_bootstrap_builds_and_the_default_is_core():
    for config in configurations():
        assert venv_of(config["python"]) in VENVS, config["name"]
    assert venv_of(workspace_file("settings.json")["python.defaultInterpreterPath"]) == "core"


def test_each_service_is_debugged_with_the_command_venv_and_environment_the_stack_starts_it_with(tmp_path):
    settings = settings_module.load({"LAKEWATCH_STATE_DIR": str(tmp_path)})  # mlflow_command makes a folder
    started = {}
    for service in services.services(settings):
        python, *rest = service.command
        if rest[:1] == ["-m"]:
            key = ("module", rest[1])
        elif rest and rest[0].endswith(".py"):
            key = ("program", Path(rest[0]))
        else:
            continue  # no Python program of the repo: tansu, gunicorn, prometheus
        # The stack runs in the core venv (the Makefile's $(CORE)): its own python is core's.
        venv = "core" if python == sys.executable else Path(python).relative_to(settings.venv_dir).parts[0]
        started[key] = (service.name, venv, service.env)

    debugged = set()
    for config in service_configurations():
        key = ("module", config["module"]) if "module" in config else ("program", repo_path(config["program"]))
        assert key in started, f"{config['name']} runs {key[1]}, which the stack does not start"
        name, venv, env = started[key]
        assert venv_of(config["python"]) == venv, f"the stack runs {name} in the {venv} venv"
        assert env.items() <= config.get("env", {}).items(), f"the stack starts {name} with {env}"
        debugged.add(name)
    assert debugged == DEBUGGED_SERVICES


def test_debug_sessions_and_the_test_explorer_read_one_env_file_and_not_composes():
    env_file = workspace_file("settings.json")["python.envFile"]
    assert repo_path(env_file) != REPO_ROOT / ".env"  # docker-compose's; `make up` never reads it
    assert all(config["envFile"] == env_file for config in configurations())


def test_the_test_explorer_runs_pytest_as_pyproject_configures_it():
    settings = workspace_file("settings.json")
    assert settings["python.testing.pytestEnabled"] is True and settings["python.testing.unittestEnabled"] is False
    assert settings["python.testing.pytestArgs"] == []  # no paths: pytest takes pyproject's testpaths
    # Every module is installed in the core venv, so the editor resolves imports as the code does.
    assert "python.analysis.extraPaths" not in settings


def test_the_recommended_extensions_include_the_debugger_the_configurations_use():
    recommended = workspace_file("extensions.json")["recommendations"]
    assert {"ms-python.python", "ms-python.debugpy"} <= set(recommended)
    assert {config["type"] for config in configurations()} == {"debugpy"}
