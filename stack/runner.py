"""Starts, watches and stops the embedded stack: the engine behind `make up/status/down`.

Services start in order, each waiting for the previous one to be healthy. Every service runs
in its own session (process group), logs to <state>/log/<name>.log, and is recorded in
<state>/run/<name>.pid together with its kernel start time, so a recycled PID is never taken
for ours. Stopping sends SIGTERM to the group, waits, then SIGKILLs what is left. Nothing is
started twice: a service whose recorded process is alive is left as it is.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from stack.services import Service, services
from lakewatch.settings import REPO_ROOT, Settings


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


def running(settings: Settings, name: str) -> Running | None:
    """The recorded process of a service if it is still the same, live process."""
    path = _pid_file(settings, name)
    try:
        recorded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    pid, start_time = int(recorded["pid"]), str(recorded["start_time"])
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


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            return True
        except OSError:
            return False


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else "(empty log)"


def _launch(settings: Settings, name: str, command: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """Start a process in a session of its own, logging to log_path, recorded in its pid file."""
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env, cwd=REPO_ROOT)
    _pid_file(settings, name).write_text(json.dumps({"pid": proc.pid, "start_time": _proc_start_time(proc.pid),
                                                     "command": command}))
    return proc


def start_job(settings: Settings, name: str, command: list[str], log_name: str | None = None) -> int:
    """Start a job that ends by itself (no port, no health check) the way services start, so
    `make down` stops it too; returns its pid."""
    return _launch(settings, name, command, dict(os.environ), _log_file(settings, log_name or name)).pid


def _start(settings: Settings, service: Service, say) -> None:
    if not _port_free(settings.host, service.port):
        raise StackError(
            f"port {service.port} on {settings.host} is already taken by another program, so {service.name} "
            f"cannot start; stop that program or choose another port in lakewatch/settings.py (environment LAKEWATCH_*_PORT)."
        )
    log_path = _log_file(settings, service.name)
    env = {**os.environ, **service.env}
    if service.prepare:
        try:
            env.update(service.prepare())
        except (RuntimeError, ValueError) as exc:
            raise StackError(f"{service.name} cannot start: {exc}.") from None
    proc = _launch(settings, service.name, service.command, env, log_path)
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
            say(f"  {service.name:<10} started (pid {proc.pid})  {service.url}")
            return
        time.sleep(0.2)
    raise StackError(f"{service.name} did not become healthy within {timeout:.0f} s; see {log_path}.")


def up(settings: Settings, say=print, only: tuple[str, ...] = ()) -> None:
    """Start every service not already running (or only those named, in stack order); on
    failure stop what this call started."""
    for folder in (settings.log_dir, settings.run_dir):
        folder.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in services(settings) if not only or s.name in only]
    if only and {s.name for s in chosen} != set(only):
        raise StackError(f"no such service: {', '.join(sorted(set(only) - {s.name for s in chosen}))}.")
    started: list[Service] = []
    try:
        for service in chosen:
            current = running(settings, service.name)
            if current:
                say(f"  {service.name:<10} already running (pid {current.pid})  {service.url}")
                continue
            _start(settings, service, say)
            started.append(service)
    except BaseException:
        for service in reversed(started):
            stop(settings, service.name, say)
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
    """Stop one service and everything in its session; False if it was not running."""
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
    say(f"  {name:<10} {how} (pid {current.pid}) in {time.monotonic() - started:.1f} s")
    return True


def down(settings: Settings, say=print) -> int:
    """Stop every service, last started first; return how many were running."""
    names = [s.name for s in services(settings)]
    # Pid files of services no longer in the list (an older checkout) are stopped too.
    if settings.run_dir.exists():
        names += sorted(p.stem for p in settings.run_dir.glob("*.pid") if p.stem not in names)
    return sum(stop(settings, name, say) for name in reversed(names))


def status(settings: Settings) -> list[dict]:
    rows = []
    for service in services(settings):
        current = running(settings, service.name)
        rows.append({
            "service": service.name,
            "pid": current.pid if current else None,
            "state": "running" if current else "stopped",
            "health": ("ok" if service.health() else "unhealthy") if current else "-",
            "url": service.url,
        })
    return rows


def log_files(settings: Settings) -> list[Path]:
    return [_log_file(settings, s.name) for s in services(settings) if _log_file(settings, s.name).exists()]
