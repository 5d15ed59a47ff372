"""constraints.txt is the one place for a version several venvs or images share: every venv and
image installs with it, no requirements file, pyproject.toml or Dockerfile pins a constrained
package to another version, packages pinned apart are declared so in it, and the built venvs
hold its versions. Each service image installs only its own group of pyproject.toml."""
from __future__ import annotations

import json
import re
import subprocess
import tomllib

import pytest

from lakewatch.settings import REPO_ROOT
from stack import bootstrap
from testkit.processes import built_venv_python

CONSTRAINTS = REPO_ROOT / "constraints.txt"
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
REQUIREMENTS = ("superset/requirements.txt", "chatbot/requirements-actions.txt", "chatbot/requirements-rasa.txt")
# The compose images built here, and each one's group of pyproject.toml (None: not from pyproject).
IMAGES = {"ingestion/Dockerfile": "ingestion", "spark/Dockerfile": "stream", "model/Dockerfile": "model",
          "trino/Dockerfile": "sql", "superset/Dockerfile": None, "chatbot/Dockerfile.actions": None,
          "chatbot/Dockerfile.rasa": None}
REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*(.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse(line: str) -> tuple[str, str, str]:
    """(canonical name, extras, version specifier) of a requirement line."""
    match = REQUIREMENT.match(line.split("#", 1)[0].split(";", 1)[0].strip())
    assert match, f"cannot read the requirement {line!r}"
    return canonical(match[1]), match[2] or "", match[3].replace(" ", "")


def constraints() -> dict[str, str]:
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, extras, spec = parse(line)
            assert not extras and spec.startswith("=="), f"constraints.txt: {line!r} is not name==version"
            pins[name] = spec[2:]
    return pins


def kept_apart() -> set[str]:
    return {canonical(m) for m in re.findall(r"^#\s+apart:\s+(\S+)", CONSTRAINTS.read_text(), re.MULTILINE)}


def requirement_lines(path: str) -> list[str]:
    return [line for line in (REPO_ROOT / path).read_text().splitlines()
            if line.split("#", 1)[0].strip() and not line.startswith("-")]


def sources() -> dict[str, list[tuple[str, str, str]]]:
    """Every place a version is asked for: pyproject.toml's groups, the requirements files."""
    project = PYPROJECT["project"]
    found = {"pyproject.toml": [parse(r) for r in project["dependencies"]]}
    for group, requirements in project["optional-dependencies"].items():
        found[f"pyproject.toml [{group}]"] = [parse(r) for r in requirements]
    for path in REQUIREMENTS:
        found[path] = [parse(line) for line in requirement_lines(path)]
    return found


def exact_pins(place: str) -> dict[str, str]:
    return {name: spec[2:] for name, _, spec in sources()[place] if spec.startswith("==")}


def test_a_constrained_package_is_asked_for_without_a_version_or_at_the_constraint():
    pins = constraints()
    wrong = [f"{place} asks for {name}{spec}, constraints.txt pins {pins[name]}"
             for place, requirements in sources().items() for name, _, spec in requirements
             if name in pins and spec not in ("", f"=={pins[name]}")]
    assert wrong == []


def test_a_package_pinned_at_two_versions_is_declared_apart_and_nothing_is_both():
    pins = constraints()
    assert kept_apart() and not kept_apart() & set(pins)
    versions: dict[str, dict[str, str]] = {}
    for place in sources():
        for name, version in exact_pins(place).items():
            versions.setdefault(name, {})[place] = version
    split = {name: by_place for name, by_place in versions.items() if len(set(by_place.values())) > 1}
    assert {name: by_place for name, by_place in split.items() if name not in kept_apart()} == {}


def test_the_core_and_actions_venvs_agree_on_what_both_pin():
    """Both run lakewatch.sql (SQLAlchemy 2, pyarrow): packages kept apart from Superset and Rasa
    still have one version in these two."""
    core = {}
    for place in sources():
        if place.startswith("pyproject.toml"):
            core.update(exact_pins(place))
    actions = exact_pins("chatbot/requirements-actions.txt")
    assert {"sqlalchemy", "pyarrow"} <= set(actions)
    assert {name: (core[name], v) for name, v in actions.items() if name in core and core[name] != v} == {}


def test_pyproject_names_one_version_of_a_package_across_its_groups():
    specs: dict[str, set[str]] = {}
    for place, requirements in sources().items():
        if place.startswith("pyproject.toml"):
            for name, _, spec in requirements:
                if name != "lakewatch":
                    specs.setdefault(name, set()).add(spec)
    assert {name: s for name, s in specs.items() if len(s) > 1} == {}


def test_every_venv_installs_with_the_constraints_and_reinstalls_when_they_change():
    for name, (_, pip_args, inputs) in bootstrap.VENVS.items():
        assert pip_args[:2] == ["-c", str(CONSTRAINTS)], name
        assert "constraints.txt" in inputs, name
    for name in bootstrap.LAKEWATCH_WITHOUT_DEPS:  # the editable install follows pyproject.toml's packages
        assert "pyproject.toml" in bootstrap.VENVS[name][2]
        assert bootstrap.extra_pip_steps(name) == [["--no-deps", "-e", str(REPO_ROOT)]]


def group_closure(group: str) -> set[str]:
    """The packages a group of pyproject.toml brings, with the kernel's and the groups it names."""
    optional = PYPROJECT["project"]["optional-dependencies"]
    names, todo, seen = {parse(r)[0] for r in PYPROJECT["project"]["dependencies"]}, [group], set()
    while todo:
        current = todo.pop()
        seen.add(current)
        for name, extras, _ in (parse(r) for r in optional[current]):
            if name == "lakewatch":
                todo += [g for g in extras.strip("[]").split(",") if g not in seen]
            else:
                names.add(name)
    return names


def test_the_core_venv_is_everything_the_groups_and_the_tests_need():
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert bootstrap.VENVS["core"][1][-2:] == ["-e", f"{REPO_ROOT}[all,test]"]
    every = set().union(*(group_closure(g) for g in optional if g != "test"))
    assert group_closure("all") == every


@pytest.mark.parametrize("dockerfile, group", sorted(IMAGES.items()))
def test_each_image_installs_its_own_group_with_the_constraints(dockerfile, group):
    text = (REPO_ROOT / dockerfile).read_text().replace("\\\n", " ")
    assert re.search(r"^COPY (.* )?constraints\.txt .*\./$", text, re.MULTILINE), f"{dockerfile} copies no constraints"
    installs = [line for line in text.splitlines() if re.search(r"\bpip install\b", line)]
    for line in installs:
        for command in re.findall(r"pip install (.*?)(?:&&|$)", line):
            if "--no-deps" not in command:
                assert "-c constraints.txt" in command, f"{dockerfile}: pip install {command}"
    if group:
        assert any(f'".[{group}]"' in line for line in installs), f"{dockerfile} does not install .[{group}]"


def test_the_service_images_leave_out_what_other_services_need():
    assert not {"pyspark", "mlflow"} & group_closure("ingestion")
    assert not {"mlflow", "scikit-learn", "finnhub-python"} & group_closure("stream")
    assert not {"pyspark", "finnhub-python"} & group_closure("model")
    assert not {"pyspark", "mlflow", "confluent-kafka"} & group_closure("sql")


@pytest.mark.parametrize("venv", sorted(bootstrap.VENVS))
def test_each_built_venv_holds_the_constrained_versions(venv):
    script = ("import importlib.metadata as m, json\n"
              "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    done = subprocess.run([str(built_venv_python(venv)), "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    installed = {canonical(name): version for name, version in json.loads(done.stdout).items()}
    pins = constraints()
    assert {name: (installed[name], pins[name]) for name in pins
            if name in installed and installed[name] != pins[name]} == {}
