"""The supervisor: restarts a service of the embedded stack that exits unexpectedly.

`make up` starts it last (`python -m stack.supervisor`), recorded in <state>/run like the
services; `make down` stops it first, so nothing restarts during shutdown. It follows
supervisord's and systemd's `Restart=on-failure` conventions:

- It watches each service's recorded process (stack.runner.running: the same PID *and* kernel
  start time) every second. A service that exits without `make stop`/`make down` having
  stopped it (they write <state>/run/<name>.stopped first) is restarted through the runner's
  own start path (stack.runner.restart: prepare step, same command and environment, health
  wait, after-start step), after what is left of its session is killed.
- Backoff: the first restart waits 1 s, each further failure doubles the wait, up to 60 s.
  A failed start (exit during start-up, or not healthy in time) is a failure too.
- Crash loop: 5 failures within 10 minutes put the service in `crash-loop` (systemd's
  StartLimitBurst=5 in StartLimitIntervalSec). Unlike systemd it keeps retrying, every 60 s
  (the cap), as Kubernetes' CrashLoopBackOff does: on one machine the cause is often another
  service (the broker) that comes back by itself.
- A service that stays up 60 s is stable again: its backoff and its crash loop are cleared.
- It restarts on exit only, never on a failing health check (no watchdog); health is shown.
- Jobs that end by themselves (the first model's training) are not services and are left alone.

Its state goes to <state>/run/supervisor.json (`make status` reads it: restarts, state) and to
its /health and /metrics on settings.supervisor_port:
`lakewatch_service_restarts_total{service}`, `lakewatch_service_crash_loop{service}` (0/1),
`lakewatch_service_up{service}` (its process runs and its health check passes) and
`lakewatch_service_restart_backoff_seconds{service}`. monitoring/rules/alerts.yml raises
ServiceCrashLooping on the crash-loop gauge. docs/guarantees.md has the tested figures.

Restarts go one at a time, in stack order (a service waits for the one before it, as in
`make up`), on the loop's thread.
"""
from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from lakewatch import logs
from lakewatch import settings as settings_module
from lakewatch.settings import Settings
from stack import runner
from stack.services import Service

RUNNING, RESTARTING, CRASH_LOOP, STOPPED = "running", "restarting", "crash-loop", "stopped"


@dataclass(frozen=True)
class Policy:
    first_backoff: float = 1.0  # seconds before the first restart
    backoff_cap: float = 60.0  # the longest wait, and the retry period in a crash loop
    crash_loop_failures: int = 5  # this many failures ...
    crash_loop_window: float = 600.0  # ... within this many seconds: crash-loop
    stable_after: float = 60.0  # up this long: backoff and crash loop cleared
    poll: float = 1.0  # how often liveness is checked
    health_every: float = 10.0  # how often the health checks behind lakewatch_service_up run


@dataclass
class Track:
    """One service's supervision state: a state machine driven by the loop, with no processes
    in it (tests/unit/test_supervisor.py drives it with a clock)."""
    policy: Policy
    state: str = RUNNING
    restarts: int = 0
    failures: deque = field(default_factory=deque)  # times of the failures within the window
    consecutive: int = 0  # failures since it was last stable: the backoff's exponent
    up_since: float | None = None  # when it was last seen started (None: not known to run)
    next_try: float | None = None
    last_exit: str | None = None

    def backoff(self) -> float:
        if self.state == CRASH_LOOP:
            return self.policy.backoff_cap
        return min(self.policy.backoff_cap, self.policy.first_backoff * 2 ** max(0, self.consecutive - 1))

    def failed(self, now: float, why: str) -> float:
        """The service exited, or a restart of it failed: the wait until the next try."""
        self.consecutive += 1
        self.failures.append(now)
        while self.failures and self.failures[0] <= now - self.policy.crash_loop_window:
            self.failures.popleft()
        if len(self.failures) >= self.policy.crash_loop_failures:
            self.state = CRASH_LOOP
        elif self.state != CRASH_LOOP:
            self.state = RESTARTING
        self.last_exit, self.up_since = why, None
        self.next_try = now + self.backoff()
        return self.next_try - now

    def due(self, now: float) -> bool:
        return self.next_try is not None and now >= self.next_try

    def started(self, now: float) -> None:
        """A restart brought it up (healthy)."""
        self.restarts += 1
        self.up_since, self.next_try = now, None
        if self.state != CRASH_LOOP:
            self.state = RUNNING

    def alive(self, now: float) -> None:
        """Seen running; after stable_after of it, it is a healthy service again."""
        if self.up_since is None:
            self.up_since = now
            if self.state in (RESTARTING, STOPPED):  # started by `make up`
                self.state, self.next_try = RUNNING, None
        elif now - self.up_since >= self.policy.stable_after and (self.consecutive or self.state != RUNNING):
            self.state, self.consecutive, self.next_try = RUNNING, 0, None
            self.failures.clear()

    def stopped(self) -> None:
        """Stopped on purpose (`make stop`): nothing to restart, nothing to count against it."""
        self.state, self.next_try, self.up_since, self.consecutive = STOPPED, None, None, 0
        self.failures.clear()

    def to_json(self, now: float) -> dict:
        return {"state": self.state, "restarts": self.restarts, "last_exit": self.last_exit,
                "failures_in_window": len(self.failures),
                "next_try_in_s": round(max(0.0, self.next_try - now), 1) if self.next_try is not None else None}

    @classmethod
    def from_json(cls, policy: Policy, saved: dict) -> "Track":
        """A track from a previous supervisor's state file: its counts go on; a pending restart
        is tried at once."""
        track = cls(policy, restarts=int(saved.get("restarts", 0)), last_exit=saved.get("last_exit"))
        if saved.get("state") in (RESTARTING, CRASH_LOOP):
            track.state, track.next_try, track.consecutive = saved["state"], 0.0, 1
        return track


class Supervisor:
    def __init__(self, settings: Settings, services: Callable[[Settings], list[Service]], policy: Policy, log,
                 registry=None):
        self.settings, self.services, self.policy, self.log = settings, services, policy, log
        self.registry = registry
        saved = runner.supervisor_state(settings).get("services", {})
        self.tracks = {name: Track.from_json(policy, value) for name, value in saved.items()}
        self.children: dict[str, object] = {}  # name -> Popen of the processes this supervisor started
        self.healthy: dict[str, bool] = {}
        self.last_loop = time.monotonic()
        self._metrics()

    def _metrics(self) -> None:
        from prometheus_client import REGISTRY, Counter, Gauge

        registry = self.registry or REGISTRY
        self.restarts_metric = Counter("lakewatch_service_restarts", "Restarts of a service by the supervisor",
                                       ["service"], registry=registry)
        self.crash_loop_metric = Gauge("lakewatch_service_crash_loop",
                                       "1 while a service is in a crash loop (5 failures in 10 minutes)", ["service"],
                                       registry=registry)
        self.up_metric = Gauge("lakewatch_service_up", "1 while a service's process runs and its health check passes",
                               ["service"], registry=registry)
        self.backoff_metric = Gauge("lakewatch_service_restart_backoff_seconds",
                                    "The wait before the next restart of a service (0 when running)", ["service"],
                                    registry=registry)
        for name, track in self.tracks.items():
            if track.restarts:
                self.restarts_metric.labels(name).inc(track.restarts)

    def track(self, name: str) -> Track:
        if name not in self.tracks:
            self.tracks[name] = Track(self.policy)
            self.restarts_metric.labels(name).inc(0)
        return self.tracks[name]

    def _exit_of(self, name: str) -> str:
        child = self.children.pop(name, None)
        code = child.poll() if child is not None else None
        if code is None:
            return "exited (not started by this supervisor: exit status unknown)"
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"

    def step(self) -> None:
        """One look at every service: restart what is due."""
        settings = self.settings
        for service in self.services(settings):
            name, now = service.name, time.monotonic()
            track = self.track(name)
            if runner.deliberately_stopped(settings, name):
                if track.state != STOPPED:
                    track.stopped()
                continue
            if runner.running(settings, name):
                track.alive(now)
                continue
            if track.state in (RUNNING, STOPPED):
                if runner.recorded(settings, name) is None:
                    continue  # never started while this supervisor watched: not ours to start
                wait = track.failed(now, self._exit_of(name))
                logs.event(self.log, "service exited", logging.WARNING, service_name=name, exit=track.last_exit,
                           state=track.state, restart_in_s=round(wait, 1))
            if track.due(now):
                self._restart(service, track)

    def _restart(self, service: Service, track: Track) -> None:
        name = service.name
        logs.event(self.log, "restarting service", service_name=name, attempt=track.consecutive, state=track.state)
        began = time.monotonic()
        try:
            proc = runner.restart(self.settings, service, say=lambda line: logs.event(self.log, line.strip()))
        except (runner.StackError, RuntimeError, ValueError, OSError) as exc:
            wait = track.failed(time.monotonic(), f"restart failed: {exc}")
            logs.event(self.log, "restart failed", logging.WARNING, service_name=name, error=str(exc), state=track.state,
                       restart_in_s=round(wait, 1))
            return
        if proc is None:  # stopped on purpose meanwhile, or started by `make up`
            return
        self.children[name] = proc
        track.started(time.monotonic())
        self.restarts_metric.labels(name).inc()
        logs.event(self.log, "service restarted", service_name=name, pid=proc.pid, seconds=round(time.monotonic() - began, 1),
                   restarts=track.restarts, state=track.state)

    def publish(self) -> None:
        now = time.monotonic()
        for name, track in self.tracks.items():
            self.crash_loop_metric.labels(name).set(1 if track.state == CRASH_LOOP else 0)
            self.backoff_metric.labels(name).set(max(0.0, track.next_try - now) if track.next_try is not None else 0)
            self.up_metric.labels(name).set(1 if self.healthy.get(name) and runner.running(self.settings, name) else 0)
        state = {"pid": os.getpid(), "updated": time.time(),
                 "services": {name: track.to_json(now) for name, track in self.tracks.items()}}
        path = runner.supervisor_state_file(self.settings)
        temporary = path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps(state, indent=1))
        temporary.replace(path)  # `make status` never reads half a file

    def check_health(self) -> None:
        """The services' health checks, on a thread of their own (a check can take seconds)."""
        while True:
            for service in self.services(self.settings):
                alive = runner.running(self.settings, service.name) is not None
                try:
                    self.healthy[service.name] = alive and bool(service.health())
                except Exception:
                    self.healthy[service.name] = False
            time.sleep(self.policy.health_every)

    def health(self) -> tuple[bool, dict]:
        age = time.monotonic() - self.last_loop
        details = {"loop_age_s": round(age, 1),
                   "services": {name: {"state": t.state, "restarts": t.restarts} for name, t in self.tracks.items()}}
        return age < max(30.0, 10 * self.policy.poll), details

    def run(self) -> None:
        while True:
            try:
                self.step()
            except Exception as exc:  # a failure of one look is logged, the next look comes
                logs.event(self.log, "supervision step failed", logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            self.last_loop = time.monotonic()
            self.publish()
            time.sleep(self.policy.poll)


def _load(reference: str) -> Callable[[Settings], list[Service]]:
    module, _, function = reference.partition(":")
    return getattr(importlib.import_module(module), function or "services")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="stack.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--services", default="stack.services:services",
                        help="module:function giving the services to watch (tests give fake ones)")
    defaults = Policy()
    for name in ("first_backoff", "backoff_cap", "crash_loop_window", "stable_after", "poll", "health_every"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=float, default=getattr(defaults, name))
    parser.add_argument("--crash-loop-failures", type=int, default=defaults.crash_loop_failures)
    args = parser.parse_args(argv)
    policy = Policy(**{name: getattr(args, name) for name in Policy.__dataclass_fields__})

    settings = settings_module.load()
    log = logs.setup(runner.SUPERVISOR)

    def terminate(signum, frame):  # `make down`: stop looking at once (a restart under way stops too)
        runner.exit_soon()

    signal.signal(signal.SIGTERM, terminate)
    supervisor = Supervisor(settings, _load(args.services), policy, log)
    from lakewatch.service_http import serve

    server = serve(settings.host, settings.supervisor_port, supervisor.health)
    threading.Thread(target=supervisor.check_health, name="health", daemon=True).start()
    logs.event(log, "supervisor started", port=settings.supervisor_port, policy=policy.__dict__)
    try:
        supervisor.run()
    finally:
        server.shutdown()
        logs.event(log, "supervisor stopped")


if __name__ == "__main__":
    sys.exit(main())
