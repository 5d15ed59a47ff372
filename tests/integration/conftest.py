"""Fixtures that start real services: a Kafka broker per test, settings on free ports.

Every process started here is stopped by its PID in the fixture's teardown, pass or fail.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakewatch.settings import load
from testkit.processes import private_settings, start_kafka, stop_process


@pytest.fixture
def lw_settings(tmp_path, monkeypatch):
    """Settings on free ports with state under tmp_path, also exported to the environment
    so services started as subprocesses agree with the test."""
    return private_settings(monkeypatch, tmp_path / "var")  # test_stack's first-model test turns bootstrap on


@pytest.fixture
def broker(lw_settings):
    """A real Kafka broker on lw_settings' ports, its data in the test's state folder; yields the settings."""
    proc = start_kafka(lw_settings)
    try:
        yield lw_settings
    finally:
        stop_process(proc)


@contextlib.contextmanager
def _stderr_to(path):
    """Point fd 2 at a file while the JVM starts: Spark and its Python workers (whose stderr
    the JVM copies to its own) then log there, where tests can read them."""
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _stop_jvm() -> None:
    """session.stop() leaves the JVM running until this process exits; closing its stdin is
    how pyspark asks it to exit, and its Popen (held by the gateway) gets it waited for."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is not None:
        gateway.shutdown()
        gateway.proc.stdin.close()
        try:
            gateway.proc.wait(30)
        except subprocess.TimeoutExpired:
            gateway.proc.kill()
            gateway.proc.wait()
        SparkContext._gateway = SparkContext._jvm = None


@pytest.fixture(scope="session")
def spark_log(tmp_path_factory):
    """The file the session's JVM and Python workers write their stderr to."""
    return tmp_path_factory.mktemp("spark") / "spark.log"


@pytest.fixture(scope="session")
def spark(spark_log):
    """One SparkSession for the whole test session (it takes 10-25 s to start), built by the
    stream job's own builder on its own configuration, its state beside spark_log."""
    from spark.session import spark_session

    saved = {key: os.environ.get(key) for key in ("PYSPARK_PYTHON", "SPARK_LOCAL_IP")}
    with _stderr_to(spark_log):
        session = spark_session(load({"LAKEWATCH_STATE_DIR": str(spark_log.parent),
                                      "LAKEWATCH_VENV_HOME": str(Path(sys.prefix).parent)}),  # this venv's jars
                                app_name="lakewatch-tests")
    try:
        yield session
    finally:
        session.stop()
        _stop_jvm()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
