"""`lakewatch stop` (make stop S=...): one service stopped on its own, e.g. to debug it in VS Code."""
import subprocess
import sys

from lakewatch.settings import REPO_ROOT


def lakewatch(*args, state) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack.cli", *args], capture_output=True, text=True, timeout=60,
                          cwd=REPO_ROOT, env={"PATH": "/usr/bin:/bin", "LAKEWATCH_STATE_DIR": str(state)})


def test_stopping_an_unknown_service_names_the_real_ones_in_one_sentence(tmp_path):
    done = lakewatch("stop", "scorre", state=tmp_path)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "no such service: scorre" in done.stderr and "scorer" in done.stderr


def test_stopping_a_service_that_is_not_running_says_so(tmp_path):
    done = lakewatch("stop", "scorer", state=tmp_path)
    assert done.returncode == 0 and "scorer     was not running" in done.stdout
