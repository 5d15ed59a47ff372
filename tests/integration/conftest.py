"""Fixtures that start real services: a tansu broker per test, settings on free ports.

Every process started here is stopped by its PID in the fixture's teardown, pass or fail.
"""
from __future__ import annotations

import pytest

from lakewatch import settings as settings_module
from tests.processes import free_port, start_tansu, stop_process


@pytest.fixture
def lw_settings(tmp_path, monkeypatch):
    """Settings on free ports with state under tmp_path, also exported to the environment
    so services started as subprocesses agree with the test."""
    env = {
        "LAKEWATCH_STATE_DIR": str(tmp_path / "var"),
        "LAKEWATCH_BROKER_PORT": str(free_port()),
        "LAKEWATCH_INGESTION_PORT": str(free_port()),
        "LAKEWATCH_SIM_MARKET_HOURS": "always",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("LAKEWATCH_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("FINNHUB_API_KEY", raising=False)
    s = settings_module.load()
    s.log_dir.mkdir(parents=True, exist_ok=True)
    return s


@pytest.fixture
def broker(lw_settings):
    """A real tansu broker on lw_settings' port; yields the settings."""
    proc = start_tansu(lw_settings.broker_port, lw_settings.log_dir / "broker.log")
    try:
        yield lw_settings
    finally:
        stop_process(proc)

