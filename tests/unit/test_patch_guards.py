"""The patches of library internals still fit their libraries (lakewatch/patches.py), each checked
in the venv where its library is installed: superset/superset_patches.py in Superset's venv,
chatbot/rasa_patches.py in Rasa's. An upgrade that changes what a patch relies on fails here with
a sentence naming the patch to re-check. Also: each venv finds lakewatch the conventional way,
and `import superset` there is Apache Superset, not the repo's superset/ folder.

The venvs are the ones beside this test's own (`make test` builds them before pytest)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from chatbot.training import RASA_ENV
from lakewatch import patches
from lakewatch.settings import REPO_ROOT
from testkit.processes import built_venv_python

def run(venv: str, *args: str, cwd: Path = REPO_ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, **RASA_ENV} if venv == "rasa" else dict(os.environ)
    return subprocess.run([str(built_venv_python(venv)), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("venv, module", [("superset", "superset/superset_patches.py"),
                                          ("rasa", "chatbot.rasa_patches")])
def test_every_patch_still_fits_the_library_it_patches(venv, module):
    done = run(venv, "-m", "lakewatch.patches", module)
    assert done.returncode == 0, f"in the {venv} venv: {done.stderr.strip()[-3000:]}"
    assert "patches still fit their libraries" in done.stdout


def test_in_the_superset_venv_superset_is_apache_superset_and_lakewatch_is_installed(tmp_path):
    where = ("import json, superset, lakewatch, lakewatch.patches; "
             "print(json.dumps([superset.__file__, lakewatch.__file__]))")
    # From the repo root, the runner's working directory (gunicorn puts it on the path), and from elsewhere.
    for cwd in (REPO_ROOT, tmp_path):
        done = run("superset", "-c", where, cwd=cwd)
        assert done.returncode == 0, done.stderr[-2000:]
        superset_file, lakewatch_file = (Path(p) for p in json.loads(done.stdout.strip().splitlines()[-1]))
        assert "site-packages" in superset_file.parts and superset_file.parent != REPO_ROOT / "superset"
        assert lakewatch_file == REPO_ROOT / "lakewatch" / "__init__.py"


def test_in_the_actions_venv_lakewatch_and_the_chatbot_are_installed(tmp_path):
    done = run("actions", "-c", "import chatbot.actions, lakewatch.sql; print(lakewatch.sql.__file__)", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert Path(done.stdout.strip().splitlines()[-1]) == REPO_ROOT / "lakewatch" / "sql" / "__init__.py"


# The guard itself, on stand-in patches of the standard library.

def _fits():
    pass


def test_a_changed_or_missing_target_or_a_failing_check_is_a_sentence_naming_the_patch():
    recorded = patches.source_sha256("textwrap:dedent")

    def wrong():
        raise AssertionError("3 != 4")

    stand_ins = (patches.Patch("fine", {"textwrap:dedent": recorded}, _fits),
                 patches.Patch("upgraded", {"textwrap:dedent": "0" * 64}, _fits),
                 patches.Patch("gone", {"textwrap:no_such_function": recorded}, _fits),
                 patches.Patch("drifted", {"textwrap:": patches.source_sha256("textwrap:")}, wrong))
    problems = patches.drift(stand_ins, "somewhere/patches.py")
    assert len(problems) == 3
    assert problems[0].startswith("re-check the patch somewhere/patches.py:upgraded: textwrap:dedent changed in ")
    assert "recorded 000000000000" in problems[0]
    assert problems[1].startswith("re-check the patch somewhere/patches.py:gone: textwrap:no_such_function is gone")
    assert problems[2] == ("re-check the patch somewhere/patches.py:drifted: patched, it no longer answers as the "
                           "original did (AssertionError: 3 != 4).")


def test_each_component_keeps_its_patches_in_one_module():
    """The patches modules are the only code that assigns to another library's attributes by name."""
    modules = {"superset/superset_patches.py", "chatbot/rasa_patches.py"}
    assert all((REPO_ROOT / m).is_file() for m in modules)
    for folder in ("superset", "chatbot"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            rel = str(path.relative_to(REPO_ROOT))
            if rel not in modules:
                text = path.read_text()
                assert "RemoteAction._validate_action_result =" not in text and "_get_aggregate_funcs =" not in text \
                    and "DuckDBIdentifierPreparer." not in text, f"{rel} patches a library: move it to a patches module"
