"""The system prerequisites check (stack/prerequisites.py): without Prometheus, `make up` built
every venv, backfilled, trained and started ten services before failing on the eleventh, 13
minutes in. Now it stops in its first second with one sentence naming the command to run, or,
as root with apt-get, installs what is missing; with everything present it costs next to nothing.

The real module runs in a subprocess with PATH narrowed to a temp folder holding links to only
some tools, so "missing" is real; auto-install is kept out by the opt-out or by a PATH without
apt-get, except where a stand-in apt-get on that PATH records what it was asked to install.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lakewatch import settings
from lakewatch.settings import REPO_ROOT
from stack import bootstrap, prerequisites
from stack.services import prometheus

# The interpreter behind this test's venv: the module is standard library only, as before any venv exists.
PYTHON = os.path.realpath(sys.executable)
SUDO = "" if os.geteuid() == 0 else "sudo "
APT = f"{SUDO}apt-get install -y --no-install-recommends"


def tools(folder: Path, *names: str) -> Path:
    """A folder for PATH with python3 and python3.11 (this interpreter), Java, Maven and kcat (so
    the tests below are about the others), and the named tools of this machine."""
    folder.mkdir()
    for name in ("python3", "python3.11"):
        (folder / name).symlink_to(PYTHON)
    for name in ("java", "mvn", "kcat", *names):
        (folder / name).symlink_to(shutil.which(name))
    return folder


def environment(path: Path, **extra: str) -> dict[str, str]:
    env = {"PATH": str(path), "HOME": os.environ["HOME"], **extra}
    if "PYENV_ROOT" in os.environ:  # where find_interpreter looks for python3.10 off PATH
        env.setdefault("PYENV_ROOT", os.environ["PYENV_ROOT"])
    return env


def run(command: list[str], env: dict[str, str], timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """The command and its seconds. In its own session: were the check to pass by mistake, `make
    up` would go on to build venvs, and the timeout stops all of it."""
    started = time.monotonic()
    proc = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{' '.join(command)} still ran after {timeout} s")
    return subprocess.CompletedProcess(command, proc.returncode, out, err), time.monotonic() - started


def check(which: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    return run([PYTHON, "-m", "stack.prerequisites", which], env)


def test_a_missing_tool_stops_the_check_at_once_with_one_sentence_naming_the_apt_get_command(tmp_path):
    done, seconds = check("up", environment(tools(tmp_path / "bin"), LAKEWATCH_AUTO_INSTALL="no"))
    assert done.returncode == 1 and seconds < 5
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("lakewatch: make up needs ") and "prometheus (the stack's monitoring)" in line
    assert f"install it with: {APT} prometheus" in line or f"install them with: {APT} prometheus" in line


def test_python310_is_to_be_installed_with_pyenv_as_debian_12_has_no_package(tmp_path):
    env = environment(tools(tmp_path / "bin"), LAKEWATCH_AUTO_INSTALL="no", PYENV_ROOT=str(tmp_path / "no-pyenv"))
    done, _ = check("up", env)
    [line] = done.stderr.splitlines()
    assert "python3.10 (with venv, for Rasa 3.6; Debian 12 has no package, pyenv's works)" in line
    # The console libraries come in the prometheus package too: one package, then pyenv.
    assert line.endswith(f"install them with: {APT} prometheus && pyenv install 3.10.")


def test_make_test_names_every_tool_it_lacks_and_each_package_once(tmp_path):
    done, _ = check("test", environment(tools(tmp_path / "bin"), LAKEWATCH_AUTO_INSTALL="no"))
    [line] = done.stderr.splitlines()
    assert line.startswith("lakewatch: make test needs ")
    assert all(f"{tool} (" in line for tool in ("prometheus", "promtool", "chromium", "docker-compose"))
    assert f"{APT} prometheus chromium docker-compose" in line


def test_with_everything_present_the_check_passes_in_a_fraction_of_a_second():
    if lacking := prerequisites.check("test"):  # .ci/run's `make test` installed them all
        advice = prerequisites.advice("make test", lacking)
        if os.environ.get("CI"):
            pytest.fail(advice)
        pytest.skip(advice)
    started = time.perf_counter()
    assert prerequisites.check("test") == []
    assert time.perf_counter() - started < 1
    done, seconds = check("test", {**os.environ, "LAKEWATCH_AUTO_INSTALL": "no"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert seconds < 3


def stand_in_apt_get(folder: Path) -> Path:
    """An apt-get that records its arguments and environment, and whose `install` puts the tools
    of the packages it is given on PATH (empty scripts: the check only looks them up)."""
    calls = folder / "apt-get-calls"
    script = folder / "apt-get"
    script.write_text(textwrap.dedent(f"""\
        #!{PYTHON}
        import os, sys
        from pathlib import Path
        with open({str(calls)!r}, "a") as calls:
            calls.write(" ".join(sys.argv[1:]) + " DEBIAN_FRONTEND=" + os.environ.get("DEBIAN_FRONTEND", "") + "\\n")
        provides = {{"prometheus": ["prometheus", "promtool"], "chromium": ["chromium"],
                     "docker-compose": ["docker-compose"]}}
        if sys.argv[1] == "install":
            for tool in [tool for package in sys.argv[2:] for tool in provides.get(package, [])]:
                path = Path(sys.argv[0]).parent / tool
                path.write_text("#!/bin/sh\\n")
                path.chmod(0o755)
        print("apt-get", sys.argv[1], "done")
        """))
    script.chmod(0o755)
    return calls


@pytest.fixture
def root_with_apt_get(tmp_path):
    """As root, a PATH with python3 and the stand-in apt-get, and its record of calls."""
    if os.geteuid() != 0:
        pytest.skip("the check installs only as root")
    # What the stand-in cannot provide must be on this machine already.
    if lacking := prerequisites.missing(["python3.10", "Prometheus's console libraries"]):
        pytest.skip(prerequisites.advice("make up", lacking))
    path = tools(tmp_path / "bin")
    return path, stand_in_apt_get(path)


def test_as_root_with_apt_get_the_missing_packages_are_installed_with_progress_then_checked_again(root_with_apt_get):
    path, calls = root_with_apt_get
    done, _ = check("test", environment(path))
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        "update -q DEBIAN_FRONTEND=noninteractive",
        "install -y -q --no-install-recommends prometheus chromium docker-compose DEBIAN_FRONTEND=noninteractive"]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lakewatch: make test needs prometheus (the stack's monitoring), promtool")
    assert "installing Debian's prometheus chromium docker-compose as root" in lines[0]
    assert lines[1:-1] == ["lakewatch:   [1/2] apt-get update -q ...", "apt-get update done",
                           "lakewatch:   [2/2] apt-get install -y -q --no-install-recommends prometheus chromium "
                           "docker-compose ...", "apt-get install done"]
    assert re.fullmatch(r"lakewatch: installed prometheus chromium docker-compose in \d+ s\.", lines[-1])


def test_the_opt_out_leaves_the_installing_to_the_user(root_with_apt_get):
    path, calls = root_with_apt_get
    done, _ = check("test", environment(path, LAKEWATCH_AUTO_INSTALL="no"))
    assert done.returncode == 1 and not calls.exists()
    assert f"install them with: {APT} prometheus chromium docker-compose." in done.stderr


@pytest.mark.parametrize("target", ["up", "test"])
def test_make_without_prometheus_stops_before_building_anything(tmp_path, target):
    path = tools(tmp_path / "bin", "make")
    assert shutil.which("prometheus", path=str(path)) is None  # else `make up` would start the stack
    state, venvs = tmp_path / "state", tmp_path / "venvs"
    env = environment(path, LAKEWATCH_AUTO_INSTALL="no", LAKEWATCH_STATE_DIR=str(state),
                      LAKEWATCH_VENV_HOME=str(venvs))
    done, seconds = run(["make", "--no-print-directory", "-C", str(REPO_ROOT), target], env)
    assert done.returncode != 0 and seconds < 10
    assert f"lakewatch: make {target} needs " in done.stderr and "prometheus (the stack's monitoring)" in done.stderr
    assert not state.exists() and not venvs.exists()


def test_make_venv_without_python310_stops_before_building_the_core_venv(tmp_path):
    env = environment(tools(tmp_path / "bin", "make"), PYENV_ROOT=str(tmp_path / "no-pyenv"),
                      LAKEWATCH_STATE_DIR=str(tmp_path / "state"), LAKEWATCH_VENV_HOME=str(tmp_path / "venvs"))
    done, seconds = run(["make", "--no-print-directory", "-C", str(REPO_ROOT), "venv"], env)
    assert done.returncode != 0 and seconds < 10
    assert "lakewatch: make venv needs python3.10 (" in done.stderr and "pyenv install 3.10" in done.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "venvs").exists()


def test_the_stack_and_the_venvs_say_the_same_sentence_when_started_another_way(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tools(tmp_path / "bin")))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "no-pyenv"))
    monkeypatch.setenv("LAKEWATCH_VENV_HOME", str(tmp_path / "venvs"))
    with pytest.raises(RuntimeError, match=re.escape("the stack needs prometheus (the stack's monitoring)")):
        prometheus.prepare(settings.load())
    with pytest.raises(bootstrap.BootstrapError,
                       match=re.escape("the 'rasa' venv needs python3.10 (with venv, for Rasa 3.6; Debian 12 has no "
                                       "package, pyenv's works), which is missing; install it with: pyenv install "
                                       "3.10.")):
        bootstrap.ensure_venv("rasa")


def test_ci_installs_only_what_runs_make_itself_and_leaves_the_package_list_to_the_module():
    packages = {r.package for r in prerequisites.REQUIREMENTS.values() if r.package}
    for script in (REPO_ROOT / ".ci" / "run", REPO_ROOT / "docs" / "ci-workflow.yml"):
        text = script.read_text()
        assert [p for p in packages if re.search(rf"(?<![\w.-]){re.escape(p)}(?![\w.-])", text)] == [], script
