"""Polls Finnhub's REST API for quotes, news and fundamentals and publishes them as records.

The websocket carries trades only; everything slower moving comes from polling. All calls
share one rate limiter, and a failing call never stops the scheduler: it is retried where
retrying can help (429, 5xx, timeouts, network errors), then counted, logged and skipped.
Only a rejected API key ends run(), because no retry can fix it.

finnhub.Client sends the key as the `token` query parameter, so URLs are never logged and
request exceptions (whose text contains the URL) are logged by type only.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Iterator

import finnhub
import requests
from finnhub.exceptions import FinnhubAPIException, FinnhubRequestException

from ingestion import metrics, records
from ingestion.finnhub_errors import InvalidApiKey
from ingestion.rate_limit import RateLimiter
from lakewatch.logs import event, redact
from lakewatch.settings import Settings

SOURCE = "finnhub"
NEWS_DAYS = 2  # company news window: every poll in two days returns an article again, hence dedup
SEEN_NEWS_MAX = 10_000  # several days of news for a few dozen symbols

log = logging.getLogger(__name__)

Publish = Callable[[str, dict], None]


@dataclass(frozen=True)
class _Failure:
    status: str  # the API_CALLS status label
    reason: str  # the API_ERRORS reason label
    retryable: bool
    retry_after: float | None = None
    detail: str = ""


class FinnhubRest:
    def __init__(
        self,
        settings: Settings,
        publish: Publish,
        limiter: RateLimiter | None = None,
        client: finnhub.Client | None = None,
        *,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        timeout: float = 10.0,
    ):
        """`timeout` (seconds per request) applies to the client made here, not to one passed in."""
        self.settings = settings
        self.publish = publish
        self.limiter = limiter or RateLimiter.for_settings(settings)
        self.client = client or _make_client(settings.finnhub_api_key, settings.finnhub_rest_url, timeout)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._stop = threading.Event()
        self._seen_news: OrderedDict[tuple, None] = OrderedDict()

    # ---- one call ---------------------------------------------------------------------
    def call(self, endpoint: str, fn: Callable[..., Any], *args, **kwargs) -> Any | None:
        """fn(*args, **kwargs) within the rate limit, retried where that can help; None on failure.

        `endpoint` is the metrics label. Raises InvalidApiKey when Finnhub rejects the key.
        """
        attempts = 0
        while True:
            self.limiter.acquire()
            attempts += 1
            result, failure = self._attempt(endpoint, fn, args, kwargs)
            if failure is None:
                return result
            if failure.reason == "invalid_key":
                metrics.API_ERRORS.labels(endpoint, failure.reason).inc()
                raise InvalidApiKey(f"HTTP {failure.status}")
            if not failure.retryable or attempts > self.max_retries:
                break
            event(log, "finnhub call failed; will retry", logging.WARNING,
                  endpoint=endpoint, status=failure.status, attempt=attempts)
            if not self._wait_to_retry(failure, attempts):
                break
        return self._give_up(endpoint, failure, attempts)

    def _attempt(self, endpoint, fn, args, kwargs) -> tuple[Any, _Failure | None]:
        started = time.monotonic()
        try:
            result, failure = fn(*args, **kwargs), None
        except (FinnhubAPIException, FinnhubRequestException, requests.RequestException) as exc:
            result, failure = None, _classify(exc)
        metrics.API_LATENCY.labels(endpoint).observe(time.monotonic() - started)
        metrics.API_CALLS.labels(endpoint, failure.status if failure else "200").inc()
        return result, failure

    def _wait_to_retry(self, failure: _Failure, retry: int) -> bool:
        """Wait before retry number `retry`; False if stop was set meanwhile."""
        if failure.retry_after is not None:
            # Pausing the limiter (not just this call) keeps every other caller off the API too.
            self.limiter.pause(failure.retry_after)
            return not self._stop.is_set()
        step = min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1))
        # Half fixed, half random: retries spread out, yet a 429 always backs off.
        return not self._stop.wait(step / 2 + random.uniform(0, step / 2))

    def _give_up(self, endpoint: str, failure: _Failure, attempts: int) -> None:
        metrics.API_ERRORS.labels(endpoint, failure.reason).inc()
        event(log, "finnhub call failed; skipped", logging.ERROR if failure.retryable else logging.WARNING,
              endpoint=endpoint, status=failure.status, reason=failure.reason, attempts=attempts,
              detail=redact(failure.detail, self.settings.finnhub_api_key))
        return None

    # ---- pollers ------------------------------------------------------------------------
    def poll_quotes(self) -> int:
        """Publish a quote for every configured symbol; returns the number published."""
        published = 0
        for symbol in self._until_stopped(self.settings.symbols):
            quote = self.call("quote", self.client.quote, symbol)
            # Finnhub answers symbols it has no quote for with zeros (t == 0), not an error.
            if isinstance(quote, dict) and quote.get("t"):
                asset_class = self.settings.asset_class_of(symbol)
                self.publish(self.settings.topics.quotes, records.quote_record(symbol, asset_class, quote, SOURCE))
                published += 1
        return published

    def poll_news(self) -> int:
        """Publish news not seen before: each stock's last NEWS_DAYS days, and market news."""
        today = datetime.now(timezone.utc).date()
        since = (today - timedelta(days=NEWS_DAYS)).isoformat()
        published = 0
        for symbol in self._until_stopped(self.settings.stocks):
            items = self.call("company-news", self.client.company_news, symbol, _from=since, to=today.isoformat())
            published += self._publish_news(items, symbol)
        if not self._stop.is_set():
            published += self._publish_news(self.call("news", self.client.general_news, "general"), None)
        return published

    def poll_fundamentals(self) -> int:
        """Publish the basic financials and the profile of every stock."""
        published = 0
        for symbol in self._until_stopped(self.settings.stocks):
            basics = self.call("stock/metric", self.client.company_basic_financials, symbol, "all")
            published += self._publish_fundamentals(symbol, "metrics", basics)
            profile = self.call("stock/profile2", self.client.company_profile2, symbol=symbol)
            published += self._publish_fundamentals(symbol, "profile", profile)
        return published

    def _publish_news(self, items: Any, symbol: str | None) -> int:
        if not isinstance(items, list):
            return 0
        published = 0
        for item in items:
            if not isinstance(item, dict):
                continue
            record = records.news_record(item, SOURCE, symbol)
            # Market news may relate to no symbol; the Kafka key is then its category.
            record["symbol"] = record["symbol"] or record["category"] or "general"
            if self._first_sighting(record):
                self.publish(self.settings.topics.news, record)
                published += 1
        return published

    def _first_sighting(self, record: dict) -> bool:
        # Keyed by symbol too: one article about two companies is news for each of them.
        key = (record["symbol"], record["id"] or record["url"])
        if key in self._seen_news:
            # Still being returned, so still needed: keep it away from the eviction end.
            self._seen_news.move_to_end(key)
            return False
        self._seen_news[key] = None
        if len(self._seen_news) > SEEN_NEWS_MAX:
            self._seen_news.popitem(last=False)
        return True

    def _publish_fundamentals(self, symbol: str, kind: str, payload: Any) -> int:
        # An empty object is Finnhub's answer for a symbol it has nothing on.
        if not isinstance(payload, dict) or not payload:
            return 0
        self.publish(self.settings.topics.fundamentals, records.fundamentals_record(symbol, kind, payload, SOURCE))
        return 1

    def _until_stopped(self, symbols: Iterable[str]) -> Iterator[str]:
        for symbol in symbols:
            if self._stop.is_set():
                return
            yield symbol

    # ---- scheduler ----------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Run every poller at its interval (all at once first) until stop is set.

        Raises InvalidApiKey; any other failure of a poll is logged and the poll runs again
        at its next turn.
        """
        self._stop = stop
        schedule = [
            (self.poll_quotes, self.settings.quote_poll_seconds),
            (self.poll_news, self.settings.news_poll_seconds),
            (self.poll_fundamentals, self.settings.fundamentals_poll_seconds),
        ]
        due = [time.monotonic()] * len(schedule)
        event(log, "finnhub polling started", symbols=len(self.settings.symbols))
        while not stop.is_set():
            for i, (poll, interval) in enumerate(schedule):
                if time.monotonic() >= due[i] and not stop.is_set():
                    due[i] = time.monotonic() + interval
                    self._run_poll(poll)
            stop.wait(max(0.0, min(due) - time.monotonic()))
        event(log, "finnhub polling stopped")

    def _run_poll(self, poll: Callable[[], int]) -> None:
        started = time.monotonic()
        try:
            published = poll()
        except InvalidApiKey:
            raise
        except Exception as exc:  # a bug or a broker hiccup must not end polling for good
            event(log, "finnhub poll failed", logging.ERROR, poll=poll.__name__,
                  error=redact(f"{type(exc).__name__}: {exc}", self.settings.finnhub_api_key))
            return
        event(log, "finnhub poll done", poll=poll.__name__, published=published,
              seconds=round(time.monotonic() - started, 3))


def _make_client(api_key: str, url: str, timeout: float) -> finnhub.Client:
    client = finnhub.Client(api_key=api_key)
    client.API_URL = url.rstrip("/")
    client.DEFAULT_TIMEOUT = timeout
    return client


def _classify(exc: Exception) -> _Failure:
    if isinstance(exc, FinnhubAPIException):
        return _http_failure(exc.status_code, str(exc.message), exc.response.headers)
    if isinstance(exc, FinnhubRequestException):
        return _Failure("bad_response", "bad_response", retryable=False, detail=str(exc.message)[:200])
    if isinstance(exc, requests.Timeout):
        return _Failure("timeout", "timeout", retryable=True)
    return _Failure("connection_error", "connection_error", retryable=True, detail=type(exc).__name__)


def _http_failure(code: int, message: str, headers) -> _Failure:
    status = str(code)
    # Finnhub answers 401 to a bad key but 403 to a good key asking for a premium resource
    # ("You don't have access to this resource."): only the first should stop the service.
    if code == 401 or (code == 403 and ("key" in message.lower() or "token" in message.lower())):
        return _Failure(status, "invalid_key", retryable=False)
    if code == 429:
        return _Failure(status, "rate_limited", retryable=True, retry_after=_seconds(headers.get("Retry-After")))
    if code >= 500:
        return _Failure(status, "server_error", retryable=True, detail=message)
    return _Failure(status, "client_error", retryable=False, detail=message)


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds; None when absent or an HTTP date (then we back off instead)."""
    try:
        seconds = float(retry_after)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None
