"""The supervisor (stack/supervisor.py) with real processes: two tiny fake services
(testkit/fake_services.py), one of them crash-looping, and `make down` stopping everything with
no restart racing it. The kill -9 of every real service is in test_stack.py, on its stack."""
from __future__ import annotations

import json
import os
import signal
import time

import pytest
import requests

from stack import runner
from testkit.fake_services import COMMANDS
from testkit.processes import make, wait_for

pytestmark = pytest.mark.integration

FAST = ["--services", "testkit.fake_services:services", "--first-backoff", "0.2", "--backoff-cap", "1",
        "--poll", "0.1", "--stable-after", "5", "--crash-loop-window", "60", "--health-every", "0.5"]


def sample(text: str, name: str, service: str) -> float | None:
    prefix = f'{name}{{service="{service}"}} '
    return next((float(line[len(prefix):]) for line in text.splitlines() if line.startswith(prefix)), None)


def session_alive(pid: int) -> bool:
    return bool(runner.session_members(pid))


def test_a_crash_loop_is_shown_and_make_down_stops_everything_with_no_restart_racing_it(lw_settings):
    settings = lw_settings
    seen_pids: set[int] = set()
    metrics_url = settings.url(settings.supervisor_port, "/metrics")

    def watched() -> dict:
        return runner.supervisor_state(settings).get("services", {})

    def note_pids():
        for name in (*COMMANDS, runner.SUPERVISOR):
            found = runner.recorded(settings, name)
            if found:
                seen_pids.add(int(found["pid"]))
        return True

    def crash_looping():
        note_pids()
        return watched().get("flaky", {}).get("state") == "crash-loop"

    try:
        for name, command in COMMANDS.items():
            runner.start_job(settings, name, command)  # recorded like `make up` records a service
        runner.start_supervisor(settings, say=lambda line: None, extra=FAST)
        wait_for(crash_looping, 60, "flaky in crash-loop", every=0.1)
        state = watched()
        assert state["flaky"]["restarts"] >= 4 and state["flaky"]["last_exit"] == "exit code 3"
        assert state["steady"] == {**state["steady"], "state": "running", "restarts": 0}
        metrics = requests.get(metrics_url, timeout=5).text
        assert sample(metrics, "lakewatch_service_crash_loop", "flaky") == 1
        assert sample(metrics, "lakewatch_service_crash_loop", "steady") == 0
        assert sample(metrics, "lakewatch_service_restarts_total", "flaky") >= 4
        assert sample(metrics, "lakewatch_service_up", "steady") == 1
        health = requests.get(settings.url(settings.supervisor_port, "/health"), timeout=5).json()
        assert health["status"] == "ok" and health["services"]["flaky"]["state"] == "crash-loop"

        # kill -9 of the steady one: back by itself, counted, its exit seen as the signal.
        steady = runner.running(settings, "steady")
        os.kill(steady.pid, signal.SIGKILL)
        wait_for(lambda: note_pids() and watched().get("steady", {}).get("restarts") == 1
                 and runner.running(settings, "steady"), 30, "steady restarted", every=0.1)
        assert "exited" in watched()["steady"]["last_exit"]  # `make up`'s child, not the supervisor's

        # A deliberate stop is left alone.
        runner.stop(settings, "steady", say=lambda line: None)
        time.sleep(2)
        assert runner.running(settings, "steady") is None and watched()["steady"]["state"] == "stopped"
    finally:
        note_pids()
        down = make("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.splitlines()[0].split()[0] == "supervisor"  # stopped first
    # Nothing restarts afterwards: no pid file comes back, no process of any session is left.
    for _ in range(20):
        assert list(settings.run_dir.glob("*.pid")) == []
        time.sleep(0.1)
    assert [pid for pid in seen_pids if session_alive(pid)] == []
    assert not runner.supervisor_state_file(settings).exists()
    log = [json.loads(line) for line in (settings.log_dir / "supervisor.log").read_text().splitlines()
           if line.startswith("{")]
    stopped_at = max(i for i, entry in enumerate(log) if entry.get("msg") == "supervisor stopped")
    assert not [entry for entry in log[stopped_at:] if "restart" in entry.get("msg", "")]
