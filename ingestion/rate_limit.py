"""Client-side rate limiting for the Finnhub REST API.

Finnhub's free plan allows 60 calls a minute and 30 a second, and answers 429 past that.
Staying under the limits on our side is cheaper than being throttled: a 429 still counts
as a call and may come with a long Retry-After. The limiter keeps the timestamps of recent
calls (a sliding window, not fixed buckets) so no window of the given length, wherever it
starts, ever holds more than N calls.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Sequence

from ingestion import metrics
from lakewatch.settings import Settings

# Finnhub counts calls on its own clock, when requests arrive; network jitter can make two
# calls we spaced exactly one window apart look closer to the server. 20 ms was too little:
# on a loaded 2-core machine a request's arrival was seen over 20 ms late (31 calls in one
# second at the server). 100 ms covers that and WAN jitter, and costs nothing at 60 a minute.
SAFETY_MARGIN = 0.1

# Float rounding can leave a sliver of wait that adding it to the clock does not cover;
# never sleeping less than this keeps acquire() from spinning on it.
_MIN_SLEEP = 0.001


class RateLimiter:
    def __init__(
        self,
        limits: Sequence[tuple[int, float]],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if not limits or any(n < 1 or seconds <= 0 for n, seconds in limits):
            raise ValueError(f"limits must be (calls >= 1, seconds > 0) pairs, got {limits!r}")
        self._windows = [(n, seconds + SAFETY_MARGIN, deque()) for n, seconds in limits]
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._paused_until = float("-inf")

    @classmethod
    def for_settings(
        cls,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> RateLimiter:
        limits = [(settings.finnhub_calls_per_minute, 60.0), (settings.finnhub_calls_per_second, 1.0)]
        return cls(limits, clock=clock, sleep=sleep)

    def acquire(self) -> float:
        """Block until one more call fits every limit, record it, and return the seconds waited."""
        started = self._clock()
        while True:
            # Sleep outside the lock so pause() and other callers are never held up by a sleeper.
            with self._lock:
                now = self._clock()
                wait = self._wait_needed(now)
                if wait <= 0:
                    for _, _, stamps in self._windows:
                        stamps.append(now)
                    break
            self._sleep(max(wait, _MIN_SLEEP))
        waited = now - started
        if waited > 0:
            metrics.API_THROTTLE_WAIT.inc(waited)
        return waited

    def pause(self, seconds: float) -> None:
        """Hold every acquire() for `seconds` from now (after a 429 with Retry-After)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _wait_needed(self, now: float) -> float:
        wait = self._paused_until - now
        for n, span, stamps in self._windows:
            while stamps and stamps[0] + span <= now:
                stamps.popleft()
            if len(stamps) >= n:
                # The call may go when the oldest recorded call leaves the window.
                wait = max(wait, stamps[0] + span - now)
        return wait
