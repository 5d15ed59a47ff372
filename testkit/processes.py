"""Child processes for tests and benchmarks: a private Kafka broker, free ports, stopping by PID.

Each process gets its own session so stopping it also stops anything it started.
"""
from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from lakewatch import settings as settings_module
from lakewatch.settings import REPO_ROOT
from lakewatch.service_http import healthy
from stack.services import kafka_healthy, mlflow, trino
from stack.services import broker


SERVICE_PORTS = ("broker_port", "controller_port", "broker_metrics_port", "ingestion_port", "stream_port",
                 "scorer_port", "mlflow_port", "serving_port", "superset_port", "actions_port", "rasa_port", "chat_port", "prometheus_port", "supervisor_port",
                 "trino_port", "trino_sync_port", "airflow_port", "statsd_port", "statsd_metrics_port")


def private_settings(patch, state_dir, **overrides) -> settings_module.Settings:
    """Settings with state under state_dir and every service on a free port, so tests never
    collide with a running stack; exported to the environment through `patch` (a pytest
    MonkeyPatch) so services started as subprocesses agree. overrides: field name -> value."""
    env = {"state_dir": state_dir, **{name: free_port() for name in SERVICE_PORTS},
           "sim_market_hours": "always", "bootstrap_hours": 0,
           "venv_home": Path(sys.prefix).parent,  # the venvs (and trained bot) this test runs in
           "sql_engine": "duckdb",  # in-process reads need no server; tests of Trino ask for it
           **overrides}
    for name, value in env.items():
        patch.setenv(f"LAKEWATCH_{name.upper()}", str(value))
    for name in ("LAKEWATCH_KAFKA_BOOTSTRAP", "LAKEWATCH_MLFLOW_URL", "FINNHUB_API_KEY"):
        patch.delenv(name, raising=False)
    settings = settings_module.load()
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    return settings


def make(target: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """`make <target>` in the repo with the current environment (a test's private settings,
    which share the test's own venvs, so `make` builds none in the temp state folder)."""
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO_ROOT), target], env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def start_kafka(settings, log_path=None, heap: str = "512m") -> subprocess.Popen:
    """The stack's own broker (stack/services/broker.py) on settings' ports, its data in
    settings' state folder (formatted on first use, kept across restarts), ready for clients."""
    broker.format_storage(settings)
    log_path = log_path or settings.log_dir / "broker.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(broker.command(settings, heap), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 60
    while not kafka_healthy(settings.bootstrap_servers, timeout=1):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise RuntimeError(f"Kafka did not start on port {settings.broker_port}; see {log_path}")
        time.sleep(0.2)
    return proc


def start_mlflow(settings) -> subprocess.Popen:
    """The stack's MLflow tracking server on settings' port, ready to take runs."""
    with open(settings.log_dir / "mlflow.log", "ab") as log:
        proc = subprocess.Popen(mlflow.command(settings), stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **mlflow.ENV}, start_new_session=True)
    try:
        wait_for(lambda: healthy(settings.url(settings.mlflow_port, "/health")), 90,
                 "the MLflow server", every=0.5)
    except AssertionError:
        stop_process(proc)
        raise
    return proc


def start_trino(settings) -> subprocess.Popen:
    """The stack's Trino (stack/services/trino.py) on settings' port over settings' lake, with
    the lake's tables registered and the views created once; ready for queries."""
    from lakewatch.sql import trino_lake
    from lakewatch.sql.engine import trino_engine

    trino.write_config(settings)
    with open(settings.log_dir / "trino.log", "ab") as log:
        proc = subprocess.Popen(trino.command(settings), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"Trino exited with {proc.returncode}; see {settings.log_dir / 'trino.log'}")
            return trino.healthy(settings)

        wait_for(up, 180, "Trino", every=0.5)
        trino_lake.sync(trino_engine(settings, settings.trino_admin_user), settings.lake_dir, "local:///lake",
                        logging.getLogger("lakewatch.trino_sync"))
    except BaseException:
        stop_process(proc, timeout=30)
        raise
    return proc


def start_module(settings, module: str, env: dict | None = None) -> subprocess.Popen:
    """`python -m module` in its own session, logging to <log_dir>/<module>.log; `env` on top of ours."""
    with open(settings.log_dir / f"{module}.log", "ab") as log:
        return subprocess.Popen([sys.executable, "-m", module], stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, start_new_session=True, cwd=REPO_ROOT)


def airflow_dags_test(settings, dag: str = "lakewatch_retrain", conf: dict | None = None,
                      **env) -> tuple[subprocess.CompletedProcess, float]:
    """`airflow dags test DAG [--conf CONF]` in the airflow venv, as the stack's Airflow runs it: the
    same environment (stack/services/airflow.py) with its SQLite under settings' state folder, `env`
    on top. Returns the run and its seconds; its output is in <log_dir>/airflow-dags-test.log."""
    from stack.services import airflow

    environment = {**os.environ, **airflow.environment(settings), **env}
    cli = str(built_venv_python("airflow").parent / "airflow")
    log_path = settings.log_dir / "airflow-dags-test.log"
    with open(log_path, "ab") as log:
        subprocess.run([cli, "db", "migrate"], stdout=log, stderr=subprocess.STDOUT, env=environment, check=True,
                       cwd=REPO_ROOT, timeout=300)
        started = time.monotonic()
        done = subprocess.run([cli, "dags", "test", dag, *(["--conf", json.dumps(conf)] if conf else [])], stdout=log, stderr=subprocess.STDOUT, env=environment,
                              cwd=REPO_ROOT, timeout=600)
    return done, time.monotonic() - started


def airflow_cli(settings, *args: str) -> subprocess.CompletedProcess:
    """The airflow venv's `airflow ARGS` in the stack's Airflow environment; output captured."""
    from stack.services import airflow

    return subprocess.run([str(built_venv_python("airflow").parent / "airflow"), *args], capture_output=True, text=True,
                          env={**os.environ, **airflow.environment(settings)}, cwd=REPO_ROOT, timeout=300, check=True)


def serving_health(settings) -> dict | None:
    """model/serve.py's /health answer, or None while it does not answer."""
    try:
        return requests.get(settings.url(settings.serving_port, "/health"), timeout=2).json()
    except requests.RequestException:
        return None


def wait_until_serving(settings, version: str, timeout: float = 60) -> dict:
    """Wait until serving answers with `version` (it loads a new champion in the background);
    returns its /health answer."""
    def serving_it() -> dict | None:
        health = serving_health(settings) or {}
        return health if health.get("version") == version else None

    return wait_for(serving_it, timeout, f"serving to load version {version}", every=0.2)


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS), MiB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmRSS:")), 0.0)


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and all its descendants (a job's Python driver, its JVM and
    Spark's Python workers), MiB."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += rss_mb(current)
        todo += children.get(current, [])
    return total


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback port, so test services never collide with a running stack. Picked below
    the kernel's ephemeral range: a port from that range (what binding port 0 gives) can be taken
    by any outgoing connection's local end before the service that should listen on it starts,
    and a stack with a dozen services and their clients made that happen."""
    ephemeral = _ephemeral_ports()
    for _ in range(1000):
        port = random.randint(20000, ephemeral.start - 1 if ephemeral.start > 20001 else 29999)
        if port in _handed_out or port in ephemeral:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port found between 20000 and the ephemeral range")


def wait_for(predicate, timeout: float = 5.0, what: str = "condition", every: float = 0.01):
    """Poll predicate until it is truthy; AssertionError after timeout. Returns its value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)
    return value


def status_rows(timeout: float = 60) -> dict[str, dict]:
    """`make status` as {service: {"state", "pid", "restarts", "health"}} (its columns, in order)."""
    done = make("status", timeout=timeout)
    rows = {}
    for line in done.stdout.splitlines()[1:]:
        name, state, pid, restarts, health = line.split()[:5]
        rows[name] = {"state": state, "pid": pid, "restarts": restarts, "health": health}
    return rows


def kill_9_and_time_recovery(settings, name: str, healthy, timeout: float = 300) -> tuple[int, float]:
    """kill -9 a stack service's main process (as a user would, not its session) and wait until
    the supervisor has it running again under a new pid and `healthy()` is true; returns the new
    pid and the seconds from the kill to healthy."""
    from stack import runner

    old = runner.running(settings, name)
    assert old is not None, f"{name} is not running"
    killed_at = time.monotonic()
    os.kill(old.pid, signal.SIGKILL)

    def back():
        current = runner.running(settings, name)
        return current is not None and current.pid != old.pid and healthy() and current.pid

    pid = wait_for(back, timeout, f"{name} restarted by the supervisor and healthy", every=0.25)
    return pid, time.monotonic() - killed_at


def built_venv_python(name: str) -> Path:
    """The python of a venv the tests' own venvs sit beside (var/venvs/<name>). A venv not built
    yet skips the test on a developer's machine, and fails it in CI, where `make test` builds them all."""
    venvs = settings_module.load({"LAKEWATCH_VENV_HOME": str(Path(sys.prefix).parent)}).venv_dir
    python = venvs / name / "bin" / "python"
    if not python.exists():
        advice = f"the {name} venv is not built: python3 -m stack.bootstrap {name} (make test builds it)"
        if os.environ.get("CI"):
            pytest.fail(advice)
        pytest.skip(advice)
    return python
