"""Fixtures shared by lakewatch's tests."""
from __future__ import annotations

import pytest

from tests.fakes.fake_finnhub import FakeFinnhub

FAKE_KEY = "good"


@pytest.fixture
def fake_finnhub():
    """A fake Finnhub (websocket + REST) on free 127.0.0.1 ports that accepts FAKE_KEY."""
    with FakeFinnhub(key=FAKE_KEY) as fake:
        yield fake
