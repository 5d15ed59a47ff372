"""The house plan (docs/architecture.md) as a test: the kernel at the bottom, the components on it,
the runner on top, and no import that runs back up.

- the kernel (`lakewatch/`) imports no component and not the runner;
- a component imports the kernel and its own room, nothing else of the project;
- only the runner (`stack/`), the hosting scripts, tests and benchmarks import components.

Imports are read from the source (ast), every one of them, also those inside functions.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from lakewatch.settings import REPO_ROOT

KERNEL, RUNNER = "lakewatch", "stack"
COMPONENTS = ("ingestion", "spark", "trino", "superset", "model", "chatbot", "monitoring", "airflow")
ABOVE_COMPONENTS = (RUNNER, "hosting", "tests", "testkit", "benchmarks")


def project_imports(path: Path, root: Path, packages: set[str]) -> list[str]:
    """The rooms of the project a file imports: package rooms by name, and a script folder's own
    modules imported by their bare names (superset/ holds files Superset loads by path, not a package)."""
    room = path.relative_to(root).parts[0]
    siblings = {p.stem for p in path.parent.glob("*.py")} if room not in packages else set()
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
        for name in names:
            top = name.split(".")[0]
            if top in packages:
                found.append(top)
            elif top in siblings:
                found.append(room)
    return found


def arrows_back_up(root: Path = REPO_ROOT) -> list[str]:
    packages = {p.parent.name for p in root.glob("*/__init__.py")}  # importable as `import <room>`
    wrong = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if len(parts) < 2 or parts[0] in ("var", ".git"):
            continue
        room = parts[0]
        for target in project_imports(path, root, packages):
            if target == room or target == KERNEL:
                continue
            if room == KERNEL or (room in COMPONENTS and target in COMPONENTS + (RUNNER,)) or (
                    room not in ABOVE_COMPONENTS and target in COMPONENTS):
                wrong.append(f"{path.relative_to(root)} imports {target}")
    return sorted(set(wrong))


def test_no_import_runs_back_up_the_house_plan():
    assert arrows_back_up() == []


@pytest.mark.parametrize("library", ["superset", "trino", "airflow"])
def test_no_folder_shadows_the_library_it_is_named_after(library):
    assert not (REPO_ROOT / library / "__init__.py").exists()


def test_import_trino_is_the_client_library():
    import trino

    assert REPO_ROOT / "trino" not in Path(trino.__file__).resolve().parents


def test_nothing_edits_the_import_path():
    """Every module is found the conventional way (installed, or run with -m): no sys.path edits,
    no PYTHONPATH set by the code, no pytest pythonpath."""
    edits = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+=]|\[\"PYTHONPATH\"\]\s*=")
    editing = [str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.rglob("*.py")
               if p.relative_to(REPO_ROOT).parts[0] not in ("var", ".git") and p != Path(__file__)
               and edits.search(p.read_text())]
    assert editing == []
    assert "pythonpath" not in (REPO_ROOT / "pyproject.toml").read_text()


def test_the_rule_sees_an_arrow_back_up(tmp_path):
    """A component importing the runner, and the kernel importing a component, are both caught."""
    for room in (KERNEL, RUNNER, "model", "ingestion"):
        (tmp_path / room).mkdir()
        (tmp_path / room / "__init__.py").write_text("")
    (tmp_path / "model" / "planted.py").write_text("from lakewatch import settings\nfrom stack import runner\n")
    (tmp_path / KERNEL / "planted.py").write_text("def f():\n    import ingestion.topics\n")
    (tmp_path / RUNNER / "fine.py").write_text("import model.planted\nimport ingestion\n")
    assert arrows_back_up(tmp_path) == ["lakewatch/planted.py imports ingestion", "model/planted.py imports stack"]


def test_the_repo_cites_nothing_outside_it():
    """Facts the code relies on live in docs/ (docs/platform.md), not in notes beside the repo."""
    outside = re.compile(r"RECIPES|DESIGN\.md|docs/DESIGN|\.\./shared")
    citing = [str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.rglob("*") if p.is_file()
              and p.relative_to(REPO_ROOT).parts[0] not in ("var", ".git") and p.suffix not in (".png", ".zip")
              and p != Path(__file__) and outside.search(p.read_text(errors="ignore"))]
    assert citing == []
