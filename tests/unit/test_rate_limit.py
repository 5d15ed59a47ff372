"""The Finnhub rate limiter: never more than N calls in any sliding window, pauses, threads."""
from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import REGISTRY

from ingestion.rate_limit import SAFETY_MARGIN, RateLimiter
from lakewatch import settings
from tests.fakes.fake_finnhub import max_calls_in_any_window

FINNHUB_LIMITS = [(60, 60.0), (30, 1.0)]  # the free plan's, as for_settings builds them


class FakeClock:
    """Time that passes only when someone sleeps, so a 200-call burst takes no real time."""

    def __init__(self, start: float = 1000.0):
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def burst(limiter: RateLimiter, clock: FakeClock, calls: int) -> list[float]:
    stamps = []
    for _ in range(calls):
        limiter.acquire()
        stamps.append(clock())
    return stamps


def test_for_settings_uses_the_per_minute_and_per_second_limits():
    clock = FakeClock()
    limiter = RateLimiter.for_settings(settings.load({}), clock=clock, sleep=clock.sleep)
    stamps = burst(limiter, clock, 61)
    assert max_calls_in_any_window(stamps, 1.0) == 30
    assert max_calls_in_any_window(stamps, 60.0) == 60


def test_a_burst_of_200_never_exceeds_either_limit_in_any_sliding_window():
    clock = FakeClock()
    limiter = RateLimiter(FINNHUB_LIMITS, clock=clock, sleep=clock.sleep)
    stamps = burst(limiter, clock, 200)
    assert max_calls_in_any_window(stamps, 60.0) <= 60
    assert max_calls_in_any_window(stamps, 1.0) <= 30
    # A window a safety margin wider still holds no more: server-side jitter cannot show N+1.
    assert max_calls_in_any_window(stamps, 60 + SAFETY_MARGIN * 0.99) <= 60
    assert max_calls_in_any_window(stamps, 1 + SAFETY_MARGIN * 0.99) <= 30
    # ...and the limiter is not needlessly slow: 200 calls fit in a little over 3 minutes.
    assert stamps[-1] - stamps[0] < 3 * 60 + 2


def test_calls_within_the_limits_do_not_wait():
    clock = FakeClock()
    limiter = RateLimiter(FINNHUB_LIMITS, clock=clock, sleep=clock.sleep)
    assert [limiter.acquire() for _ in range(30)] == [0.0] * 30
    assert clock.sleeps == []


def test_acquire_returns_and_counts_the_time_waited():
    clock = FakeClock()
    limiter = RateLimiter([(2, 1.0)], clock=clock, sleep=clock.sleep)
    before = REGISTRY.get_sample_value("lakewatch_finnhub_api_throttle_seconds_total")
    limiter.acquire()
    limiter.acquire()
    waited = limiter.acquire()
    assert waited == pytest.approx(1 + SAFETY_MARGIN, abs=0.005)
    after = REGISTRY.get_sample_value("lakewatch_finnhub_api_throttle_seconds_total")
    assert after - before == pytest.approx(waited)


def test_pause_blocks_every_caller_until_it_ends():
    clock = FakeClock()
    limiter = RateLimiter(FINNHUB_LIMITS, clock=clock, sleep=clock.sleep)
    limiter.pause(5.0)
    assert limiter.acquire() == pytest.approx(5.0, abs=0.002)
    assert limiter.acquire() == 0.0  # the pause is over for everyone


def test_a_shorter_pause_does_not_cut_a_longer_one_short():
    clock = FakeClock()
    limiter = RateLimiter(FINNHUB_LIMITS, clock=clock, sleep=clock.sleep)
    limiter.pause(5.0)
    limiter.pause(1.0)
    assert limiter.acquire() == pytest.approx(5.0, abs=0.002)


def test_pause_from_another_thread_holds_a_caller_in_real_time():
    limiter = RateLimiter(FINNHUB_LIMITS)
    limiter.pause(0.3)
    started = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - started >= 0.29


def test_invalid_limits_are_refused():
    with pytest.raises(ValueError):
        RateLimiter([(0, 1.0)])
    with pytest.raises(ValueError):
        RateLimiter([])


def test_threads_sharing_a_limiter_are_held_to_the_limit_together():
    # Smoke test with real time: 8 threads x 10 calls under 20 per 0.2 s. If threads could
    # slip past each other, the 80 calls would finish sooner than the 3 full windows they need.
    limiter = RateLimiter([(20, 0.2)])
    errors: list[BaseException] = []

    def worker():
        try:
            for _ in range(10):
                limiter.acquire()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - started
    assert not errors
    assert not any(t.is_alive() for t in threads)
    assert 3 * 0.2 <= elapsed < 5
