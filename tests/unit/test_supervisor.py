"""The supervisor's rules (stack/supervisor.py) without processes: backoff, crash loop, stability,
and a deliberate stop, driven by a clock; then its loop on a fake runner."""
from __future__ import annotations

import logging

import pytest
from prometheus_client import CollectorRegistry

from lakewatch import settings as settings_module
from stack import runner, supervisor
from stack.services import Service
from stack.supervisor import CRASH_LOOP, RESTARTING, RUNNING, STOPPED, Policy, Track

POLICY = Policy()  # 1 s doubling to 60 s; 5 failures in 10 minutes; stable after 60 s


def test_backoff_doubles_from_one_second_to_the_cap():
    track, now, waits = Track(POLICY), 0.0, []
    for _ in range(9):
        waits.append(track.failed(now, "exit code 1"))
        now += 1000  # far apart: never a crash loop, and no run long enough to be stable
    assert waits == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert track.state == RESTARTING


def test_five_failures_within_ten_minutes_are_a_crash_loop_which_retries_at_the_cap():
    track, now = Track(POLICY), 0.0
    for expected in (1, 2, 4, 8):
        assert track.failed(now, "exit code 1") == expected and track.state == RESTARTING
        now = track.next_try
        assert track.due(now)
        track.started(now)
        now += 5  # up for 5 s, then it fails again
    assert track.failed(now, "exit code 1") == 60 and track.state == CRASH_LOOP
    assert not track.due(now + 59) and track.due(now + 60)
    track.started(now + 60)
    assert track.state == CRASH_LOOP and track.restarts == 5  # up, but not yet stable
    assert track.failed(now + 70, "exit code 1") == 60


def test_failures_spread_wider_than_the_window_are_no_crash_loop():
    track, now = Track(POLICY), 0.0
    for _ in range(10):
        track.failed(now, "killed by signal 9")
        track.started(track.next_try)
        now += 200  # ten failures in half an hour, but at most three within any ten minutes
    assert track.state == RUNNING and len(track.failures) == 3


def test_a_service_up_for_a_minute_is_stable_again_its_backoff_and_crash_loop_cleared():
    track, now = Track(POLICY), 0.0
    for _ in range(5):
        track.failed(now, "exit code 1")
        now = track.next_try
        track.started(now)
    assert track.state == CRASH_LOOP
    track.alive(now + 59)
    assert track.state == CRASH_LOOP
    track.alive(now + 60)
    assert track.state == RUNNING and track.consecutive == 0 and not track.failures
    assert track.failed(now + 100, "exit code 1") == 1  # backoff starts over
    assert track.restarts == 5  # the count stays


def test_a_deliberate_stop_clears_pending_restarts_and_failures():
    track = Track(POLICY)
    track.failed(0.0, "exit code 1")
    track.stopped()
    assert track.state == STOPPED and not track.due(10_000) and not track.failures
    track.alive(20_000)  # `make up` started it again
    assert track.state == RUNNING


def test_state_survives_a_restart_of_the_supervisor():
    track = Track(POLICY)
    for now in (0.0, 1.0, 2.0, 3.0, 4.0):
        track.failed(now, "exit code 2")
    saved = track.to_json(5.0)
    assert saved["state"] == CRASH_LOOP and saved["last_exit"] == "exit code 2" and saved["next_try_in_s"] == 59
    again = Track.from_json(POLICY, {**saved, "restarts": 4})
    assert again.state == CRASH_LOOP and again.restarts == 4 and again.due(0.0)  # retried at once


class FakeRunner:
    """stack.runner's process functions, over a dict of what is alive."""

    def __init__(self, monkeypatch, names):
        self.alive = {name: True for name in names}
        self.pid_files = set(names)
        self.markers: set[str] = set()
        self.restarted: list[str] = []
        self.fail_next: set[str] = set()
        monkeypatch.setattr(runner, "running", lambda s, name: runner.Running(1, "1") if self.alive.get(name) else None)
        monkeypatch.setattr(runner, "recorded", lambda s, name: {"pid": 1} if name in self.pid_files else None)
        monkeypatch.setattr(runner, "deliberately_stopped", lambda s, name: name in self.markers)
        monkeypatch.setattr(runner, "restart", self.restart)

    def restart(self, settings, service, say):
        self.restarted.append(service.name)
        if service.name in self.fail_next:
            self.pid_files.discard(service.name)  # an exit during start-up leaves no pid file
            raise runner.StackError(f"{service.name} exited during start-up (exit code 1)")
        self.alive[service.name] = True
        return type("Proc", (), {"pid": 2, "poll": lambda self: None})()


@pytest.fixture
def watched(tmp_path, monkeypatch):
    settings = settings_module.load({"LAKEWATCH_STATE_DIR": str(tmp_path)})
    settings.run_dir.mkdir(parents=True)
    fakes = [Service(name=n, command=["true"], port=1, url="", health=lambda: True) for n in ("alpha", "beta")]
    fake = FakeRunner(monkeypatch, [s.name for s in fakes])
    clock = [1000.0]
    monkeypatch.setattr(supervisor.time, "monotonic", lambda: clock[0])
    registry = CollectorRegistry()
    sup = supervisor.Supervisor(settings, lambda s: fakes, Policy(), logging.getLogger("test"), registry)
    return sup, fake, clock, registry


def test_the_loop_restarts_an_exited_service_after_its_backoff_and_counts_it(watched):
    sup, fake, clock, registry = watched
    sup.step()
    fake.alive["beta"] = False
    sup.step()
    assert fake.restarted == [] and sup.tracks["beta"].state == RESTARTING
    clock[0] += 1
    sup.step()
    assert fake.restarted == ["beta"] and sup.tracks["beta"].state == RUNNING
    sup.publish()
    assert registry.get_sample_value("lakewatch_service_restarts_total", {"service": "beta"}) == 1
    assert registry.get_sample_value("lakewatch_service_restarts_total", {"service": "alpha"}) == 0
    assert runner.supervisor_state(sup.settings)["services"]["beta"]["restarts"] == 1


def test_the_loop_leaves_a_service_stopped_on_purpose_alone(watched):
    sup, fake, clock, _ = watched
    sup.step()
    fake.markers.add("alpha")
    fake.alive["alpha"] = False
    for _ in range(100):
        clock[0] += 10
        sup.step()
    assert fake.restarted == [] and sup.tracks["alpha"].state == STOPPED


def test_failed_restarts_end_in_a_crash_loop_shown_by_the_metric(watched):
    sup, fake, clock, registry = watched
    sup.step()
    fake.alive["alpha"] = False
    fake.fail_next.add("alpha")
    for _ in range(30):
        clock[0] += 1
        sup.step()
    # The exit, then failed tries 1, 2, 4 and 8 s after each failure: the fifth failure within a minute.
    assert fake.restarted.count("alpha") == 4 and sup.tracks["alpha"].state == CRASH_LOOP
    sup.publish()
    assert registry.get_sample_value("lakewatch_service_crash_loop", {"service": "alpha"}) == 1
    assert registry.get_sample_value("lakewatch_service_crash_loop", {"service": "beta"}) == 0
    fake.fail_next.clear()
    clock[0] += 60
    sup.step()
    assert fake.restarted.count("alpha") == 5 and sup.tracks["alpha"].state == CRASH_LOOP  # up, not yet stable
    clock[0] += 60
    sup.step()
    assert sup.tracks["alpha"].state == RUNNING
