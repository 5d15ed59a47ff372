"""Starts, watches and stops the embedded stack: the engine behind `make up/status/down`.

Services start in order, each waiting for the previous one to be healthy. Every service runs
in its own session (process group), logs to <state>/log/<name>.log, and is recorded in
<state>/run/<name>.pid together with its kernel start time, so a recycled PID is never taken
for ours. Stopping sends SIGTERM to the group, waits, then SIGKILLs what is left. Nothing is
started twice: a service whose recorded process is alive is left as it is, and one start at a
time holds a service's start lock (<state>/run/<name>.lock), so `make up` and the supervisor
never start the same service together.

A full `make up` starts the supervisor (stack/supervisor.py) last: it restarts a service that
exits unexpectedly through `restart()`, the same start path. `make stop` writes
<state>/run/<name>.stopped before it signals, and the supervisor leaves a service with that
marker alone until `make up` (which removes it) starts it again. `make down` stops the
supervisor first, then the services, so nothing restarts during shutdown.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import errno
import fcntl
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from lakewatch.settings import REPO_ROOT, Settings
from stack.sandbox import read_only_lake
from stack.services import NAME_WIDTH, Service, http_service, services


class StackError(RuntimeError):
    """A failure the user can act on; its message is one sentence."""


@dataclass
class Running:
    pid: int
    start_time: str


def _proc_start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counted after the ")" that ends the command name.
    return stat.rsplit(")", 1)[1].split()[19]


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.pid"


def _log_file(settings: Settings, name: str) -> Path:
    return settings.log_dir / f"{name}.log"


SUPERVISOR = "supervisor"  # its run/log names; stack/supervisor.py is the process


def _stopped_marker(settings: Settings, name: str) -> Path:
    return settings.run_dir / f"{name}.stopped"


def deliberately_stopped(settings: Settings, name: str) -> bool:
    """Whether `make stop`/`make down` stopped the service (the supervisor leaves it alone)."""
    return _stopped_marker(settings, name).exists()


def supervisor_state_file(settings: Settings) -> Path:
    return settings.run_dir / "supervisor.json"


@contextlib.contextmanager
def start_lock(settings: Settings, name: str):
    """Held while one process starts or stops a service: `make up`, `make stop` and the
    supervisor take it, so two of them never start one service twice. The kernel releases it
    when its holder dies."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.run_dir / f"{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def recorded(settings: Settings, name: str) -> dict | None:
    """What the pid file of a service says (pid, start_time, command), alive or not."""
    try:
        found = json.loads(_pid_file(settings, name).read_text())
        return found if isinstance(found, dict) and "pid" in found else None
    except (OSError, ValueError):
        return None


def running(settings: Settings, name: str) -> Running | None:
    """The recorded process of a service if it is still the same, live process."""
    found = recorded(settings, name)
    if found is None:
        return None
    pid, start_time = int(found["pid"]), str(found["start_time"])
    if _proc_start_time(pid) != start_time or _is_zombie(pid):
        return None
    return Running(pid, start_time)


def session_members(session_id: int) -> list[int]:
    """Live processes of a session: a service's children (Spark's JVM, its Python workers) too."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == session_id:
            members.append(int(stat.parent.name))
    return members


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else "(empty log)"


def _launch(settings: Settings, name: str, command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start a process in a session of its own, logging to log_path, recorded in its pid file.

    A supervisor told to stop (by `make down`) while it spawns stops once the pid file is
    written (exit_soon), so it leaves a recorded process, which `make down` then stops, never
    an unrecorded one. (Not a blocked SIGTERM: the child would inherit the signal mask.)"""
    global _launching
    for folder in (settings.run_dir, log_path.parent):  # before the spawn: no process goes unrecorded
        folder.mkdir(parents=True, exist_ok=True)
    _launching = True
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env, cwd=REPO_ROOT)
        _pid_file(settings, name).write_text(json.dumps({"pid": proc.pid, "start_time": _proc_start_time(proc.pid),
                                                         "command": command}))
    finally:
        _launching = False
    if _exit_deferred:
        raise SystemExit(0)
    return proc


_launching = False  # between a spawn and its pid file (signal handlers run on the main thread)
_exit_deferred = False


def exit_soon() -> None:
    """A SIGTERM handler's body: exit now, or right after the spawn under way is recorded."""
    global _exit_deferred
    if _launching:
        _exit_deferred = True
    else:
        raise SystemExit(0)


def start_job(settings: Settings, name: str, command: list[str], log_name: str | None = None) -> int:
    """Start a job that ends by itself (no port, no health check) the way services start, so
    `make down` stops it too; returns its pid."""
    return _launch(settings, name, command, dict(os.environ), _log_file(settings, log_name or name)).pid


def _start(settings: Settings, service: Service, say) -> subprocess.Popen | None:
    """Start one service and wait until it is healthy; None if it was running already (or,
    for the supervisor, stopped on purpose meanwhile). Holds the service's start lock."""
    with start_lock(settings, service.name):
        if running(settings, service.name):
            return None
        return _start_locked(settings, service, say)


def _bind_error(settings: Settings, service: Service) -> int | None:
    """The errno of binding the service's port (EADDRINUSE: another program holds it), or None if
    it can be bound; a cluster node's port is in a namespace of its own, never checked here."""
    if service.netns is not None:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((settings.host, service.port))
            return None
        except OSError as exc:
            return exc.errno


def _free(settings: Settings, service: Service) -> bool:
    return _bind_error(settings, service) is None


def _command(settings: Settings, service: Service) -> list[str]:
    command = read_only_lake(settings.lake_dir, service.command) if service.lake_read_only else service.command
    # `ip netns exec` becomes the command (exec), so the recorded pid is the service's own.
    return ["ip", "netns", "exec", service.netns, *command] if service.netns else command


PORT_ADVICE = "stop that program or choose another port (setting LAKEWATCH_*_PORT, lakewatch/settings/)"


def _start_locked(settings: Settings, service: Service, say) -> subprocess.Popen:
    error = _bind_error(settings, service)
    if error == errno.EADDRNOTAVAIL:
        raise StackError(f"{settings.host} is not an address of this machine, so {service.name} cannot listen on it; "
                         f"set LAKEWATCH_HOST to one of its addresses.")
    if error:
        raise StackError(f"port {service.port} on {settings.host} is already taken by another program, so "
                         f"{service.name} cannot start; {PORT_ADVICE}.")
    log_path = _log_file(settings, service.name)
    env = {**os.environ, **service.env}
    launched = time.monotonic()  # a prepare step (Superset's metadata and dashboards) is part of its start
    if service.prepare:
        try:
            env.update(service.prepare())
        except (RuntimeError, ValueError) as exc:
            raise StackError(f"{service.name} cannot start: {exc}.") from None
    proc = _launch(settings, service.name, _command(settings, service), env, log_path)
    timeout = service.start_timeout or settings.start_timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            _pid_file(settings, service.name).unlink(missing_ok=True)
            raise StackError(f"{service.name} exited during start-up (exit code {code}): {_last_line(log_path)} "
                             f"(full log: {log_path})")
        if service.health():
            if service.after_start:
                service.after_start()
            # The seconds, as docker compose prints them: where a slow start goes is seen at once.
            say(f"  {service.name:<{NAME_WIDTH}} started in {time.monotonic() - launched:.1f} s (pid {proc.pid})  "
                f"{service.url}")
            return proc
        time.sleep(0.2)
    raise StackError(f"{service.name} did not become healthy within {timeout:.0f} s; see {log_path}.")


def up(settings: Settings, say=print, only: tuple[str, ...] = ()) -> None:
    """Start every service not already running (or only those named, in stack order); on
    failure stop what this call started. A full `up` ends by starting the supervisor (if it is
    not running), which restarts any of them that exits unexpectedly from then on."""
    for folder in (settings.log_dir, settings.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in services(settings) if not only or s.name in only]
    if only and {s.name for s in chosen} != set(only):
        raise StackError(f"no such service: {', '.join(sorted(set(only) - {s.name for s in chosen}))}.")
    if running(settings, SUPERVISOR) is None:  # else it may be restarting one of them: each start checks its own
        # In a second, before anything starts, rather than after the services before it have.
        # Only a port in use counts here: the cluster's host address (settings.host) exists once
        # its first node's prepare step has made the bridge; each start checks its port again.
        needed = chosen + ([] if only else [supervisor_service(settings)])
        taken = [s for s in needed if not running(settings, s.name) and _bind_error(settings, s) == errno.EADDRINUSE]
        if taken:
            ports = ", ".join(f"{s.port} ({s.name})" for s in taken)
            raise StackError(f"port{'s' * (len(taken) > 1)} {ports} on {settings.host} "
                             f"{'are' if len(taken) > 1 else 'is'} already taken by another program, so nothing was "
                             f"started; {PORT_ADVICE}.")
    started: list[Service] = []
    try:
        for service in chosen:
            _stopped_marker(settings, service.name).unlink(missing_ok=True)  # wanted again
            current = running(settings, service.name)
            if current:
                say(f"  {service.name:<{NAME_WIDTH}} already running (pid {current.pid})  {service.url}")
                continue
            try:
                if _start(settings, service, say) is None:  # the supervisor started it meanwhile
                    say(f"  {service.name:<{NAME_WIDTH}} already running  {service.url}")
                    continue
            except BaseException:
                stop(settings, service.name, say)  # one that never became healthy; and a supervisor must not retry it
                raise
            started.append(service)
        if not only:
            start_supervisor(settings, say)
    except BaseException:
        for service in reversed(started):
            stop(settings, service.name, say)
        raise


def supervisor_service(settings: Settings, extra: list[str] = ()) -> Service:
    """The supervisor, started like a service (its own session, pid file, health wait)."""
    return http_service(settings, SUPERVISOR, [sys.executable, "-m", "stack.supervisor", *extra],
                        settings.supervisor_port)


def start_supervisor(settings: Settings, say=print, extra: list[str] = ()) -> None:
    """Start the supervisor unless it runs; `extra` are its arguments (tests give it fake services)."""
    current = running(settings, SUPERVISOR)
    service = supervisor_service(settings, list(extra))
    if current:
        say(f"  {SUPERVISOR:<{NAME_WIDTH}} already running (pid {current.pid})  {service.url}")
        return
    _start(settings, service, say)


def restart(settings: Settings, service: Service, say=print) -> subprocess.Popen | None:
    """The supervisor's restart of a service that exited: what is left of its session (a
    gunicorn or uvicorn worker still holding the port, Spark's JVM) is killed, then the service
    starts as `make up` starts it: prepare step, same command and environment, health wait,
    after-start step. None if it is running again, or was stopped on purpose, by then. A start
    that does not become healthy in time is stopped again and raises StackError."""
    with start_lock(settings, service.name):
        if deliberately_stopped(settings, service.name) or running(settings, service.name):
            return None
        found = recorded(settings, service.name)
        if found:
            for pid in session_members(int(found["pid"])):
                _signal_pid(pid, signal.SIGKILL)
            _pid_file(settings, service.name).unlink(missing_ok=True)
        deadline = time.monotonic() + 10  # a killed listener's port frees within moments
        while not _free(settings, service) and time.monotonic() < deadline:
            time.sleep(0.1)
        try:
            return _start_locked(settings, service, say)
        except StackError:
            _stop_locked(settings, service.name, say)  # one that never became healthy
            raise


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the service's own session: its pid is the group id
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(settings: Settings, name: str, say=print) -> bool:
    """Stop one service and everything in its session, on purpose: the supervisor leaves it
    stopped until `make up` starts it again. False if it was not running."""
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    _stopped_marker(settings, name).touch()  # before any signal: its exit is no crash to restart
    with start_lock(settings, name):  # a restart under way finishes first, then stops here
        return _stop_locked(settings, name, say)


def _stop_locked(settings: Settings, name: str, say=print) -> bool:
    current = running(settings, name)
    pid_file = _pid_file(settings, name)
    if current is None:
        pid_file.unlink(missing_ok=True)
        return False
    started = time.monotonic()
    _signal_group(current.pid, signal.SIGTERM)
    deadline = started + settings.stop_timeout

    def alive() -> bool:  # the service started its own session: its pid is the session id
        return bool(running(settings, name) or session_members(current.pid))

    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    how = "stopped"
    if alive():
        _signal_group(current.pid, signal.SIGKILL)
        for pid in session_members(current.pid):  # any that moved to a process group of its own
            _signal_pid(pid, signal.SIGKILL)
        how = f"killed after {settings.stop_timeout:.0f} s"
        gone_by = time.monotonic() + 10
        while alive() and time.monotonic() < gone_by:
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    say(f"  {name:<{NAME_WIDTH}} {how} (pid {current.pid}) in {time.monotonic() - started:.1f} s")
    return True


def down(settings: Settings, say=print) -> int:
    """Stop the supervisor first (nothing restarts from then on), then every service, last
    started first, a quorum's members at once; return how many were running. The supervisor's
    counts start again at 0."""
    stopped = int(stop(settings, SUPERVISOR, say))
    supervisor_state_file(settings).unlink(missing_ok=True)
    listed = services(settings)
    names = [s.name for s in listed]
    # Pid files of services no longer in the list (an older checkout) and of jobs are stopped too.
    if settings.run_dir.exists():
        names += sorted(p.stem for p in settings.run_dir.glob("*.pid") if p.stem not in names)
    quorum = {s.name: s.quorum for s in listed if s.quorum}

    def batch(name: str) -> tuple[str, str]:
        return ("quorum", quorum[name]) if name in quorum else ("service", name)

    for _, group in itertools.groupby(reversed(names), key=batch):
        group = list(group)
        with concurrent.futures.ThreadPoolExecutor(len(group)) as pool:  # one thread unless a quorum
            stopped += sum(pool.map(lambda name: stop(settings, name, say), group))
    return stopped


def supervisor_state(settings: Settings) -> dict:
    """The supervisor's last written state: {"services": {name: {"state", "restarts", ...}}}."""
    try:
        found = json.loads(supervisor_state_file(settings).read_text())
        return found if isinstance(found, dict) else {}
    except (OSError, ValueError):
        return {}


def status(settings: Settings) -> list[dict]:
    """One row per service, then the supervisor's. state: running, stopped, restarting (exited,
    the supervisor brings it back) or crash-loop (it failed too often: docs/guarantees.md)."""
    supervisor = running(settings, SUPERVISOR)
    watched = supervisor_state(settings).get("services", {})
    rows = []
    for service in services(settings):
        current = running(settings, service.name)
        seen = watched.get(service.name, {})
        state = "running" if current else "stopped"
        if supervisor and seen.get("state") == "crash-loop":
            state = "crash-loop"
        elif supervisor and not current and seen.get("state") == "restarting":
            state = "restarting"
        rows.append({
            "service": service.name,
            "pid": current.pid if current else None,
            "state": state,
            "restarts": int(seen.get("restarts", 0)),
            "health": ("ok" if service.health() else "unhealthy") if current else "-",
            "url": service.url,
        })
    service = supervisor_service(settings)
    rows.append({"service": SUPERVISOR, "pid": supervisor.pid if supervisor else None,
                 "state": "running" if supervisor else "stopped", "restarts": None,
                 "health": ("ok" if service.health() else "unhealthy") if supervisor else "-", "url": service.url})
    return rows


def log_files(settings: Settings) -> list[Path]:
    return [_log_file(settings, s.name) for s in services(settings) if _log_file(settings, s.name).exists()]
