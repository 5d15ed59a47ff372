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
    assert done.returncode == 0 and done.stdout.split() == ["scorer", "was", "not", "running"]


def test_stopping_a_service_on_purpose_marks_it_so_the_supervisor_leaves_it_stopped(tmp_path):
    done = lakewatch("stop", "scorer", state=tmp_path)
    assert done.returncode == 0 and (tmp_path / "run" / "scorer.stopped").exists()


def test_status_shows_state_restarts_and_health_of_every_service_and_the_supervisor(tmp_path):
    (tmp_path / "run").mkdir(parents=True)
    (tmp_path / "run" / "supervisor.json").write_text('{"services": {"stream": {"state": "crash-loop", "restarts": 7}}}')
    done = lakewatch("status", state=tmp_path)
    assert done.returncode == 1  # nothing is healthy
    lines = [line.split()[:5] for line in done.stdout.splitlines()]
    assert lines[0] == ["service", "state", "pid", "restarts", "health"]
    # The counts are shown; a crash loop only while a supervisor runs to retry it.
    assert ["stream", "stopped", "-", "7", "-"] in lines and ["scorer", "stopped", "-", "0", "-"] in lines
    assert lines[-1] == ["supervisor", "stopped", "-", "-", "-"]
