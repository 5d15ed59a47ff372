"""The Finnhub clients against a fake Finnhub on 127.0.0.1: what they publish, and how they
survive drops, malformed frames, throttling, server errors, timeouts and a bad key."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import select
import socket
import subprocess
import sys
import threading
import time

import pytest
from prometheus_client import REGISTRY

from ingestion.finnhub_errors import InvalidApiKey
from ingestion.finnhub_rest import FinnhubRest
from ingestion.finnhub_ws import FinnhubStream
from ingestion.rate_limit import RateLimiter
from lakewatch import settings as settings_module
from testkit.processes import wait_for
from tests.conftest import FAKE_KEY
from tests.fakes.fake_finnhub import FakeFinnhub, Fault, max_calls_in_any_window

pytestmark = pytest.mark.integration

BAD_KEY = "bad-key-0123456789"


# ---- helpers ------------------------------------------------------------------------------
def make_settings(fake, key: str = FAKE_KEY, **overrides):
    fields = {"finnhub_api_key": key, "finnhub_ws_url": fake.ws_url, "finnhub_rest_url": fake.rest_url}
    return dataclasses.replace(settings_module.load({}), **{**fields, **overrides})


class Published(list):
    """The records a client published, as (topic, record); pass .publish to the client."""

    def publish(self, topic: str, record: dict) -> None:
        self.append((topic, record))

    def on(self, topic: str) -> list[dict]:
        return [record for t, record in list(self) if t == topic]


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class StreamThread:
    """FinnhubStream.run on its own event loop in a thread, as the ingestion service runs it."""

    def __init__(self, stream: FinnhubStream):
        self.stream = stream
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._main, name="finnhub-stream", daemon=True)
        self._thread.start()

    def _main(self) -> None:
        try:
            self._loop.run_until_complete(self.stream.run(self._stop))
        except BaseException as exc:  # the test inspects it
            self.error = exc

    def stop(self, timeout: float = 5.0) -> float:
        """Set stop and wait for run() to return; returns the seconds that took."""
        started = time.monotonic()
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout)
        assert not self._thread.is_alive(), "FinnhubStream.run did not return after stop"
        if not self._loop.is_closed():
            self._loop.close()
        return time.monotonic() - started


@pytest.fixture
def start_stream(fake_finnhub):
    """Start FinnhubStream threads; every one is stopped before the fake Finnhub is."""
    threads: list[StreamThread] = []

    def start(stream: FinnhubStream) -> StreamThread:
        threads.append(StreamThread(stream))
        return threads[-1]

    yield start
    for t in threads:
        t.stop()


def fast_stream(settings, published: Published, **overrides) -> FinnhubStream:
    options = {"backoff_base": 0.05, "backoff_cap": 0.2, "idle_timeout": 30.0, **overrides}
    return FinnhubStream(settings, published.publish, **options)


def fast_rest(settings, published: Published, **overrides) -> FinnhubRest:
    options = {"backoff_base": 0.01, "backoff_cap": 0.05, "timeout": 2.0, **overrides}
    return FinnhubRest(settings, published.publish, **options)


def subscribed(fake, symbols, connections: int = 1):
    """The open connection once `connections` have been made and the last subscribed to all."""
    def check():
        conns = fake.connections
        last = conns[-1] if len(conns) >= connections else None
        if last and last.open and len(last.subscriptions) == len(symbols):
            return last
        return None
    return check


def run_to_completion(stream: FinnhubStream, timeout: float = 10.0) -> None:
    asyncio.run(asyncio.wait_for(stream.run(asyncio.Event()), timeout))


def assert_one_line_without_key(error: InvalidApiKey, key: str) -> None:
    text = str(error)
    assert "\n" not in text
    assert key not in text
    assert "FINNHUB_API_KEY" in text and "https://finnhub.io/dashboard" in text


# ---- websocket ----------------------------------------------------------------------------
def test_stream_subscribes_to_every_symbol_and_publishes_flat_trade_records(fake_finnhub, start_stream):
    settings = make_settings(fake_finnhub)
    published = Published()
    runner = start_stream(fast_stream(settings, published))

    conn = wait_for(subscribed(fake_finnhub, settings.symbols), what="subscriptions")
    assert sorted(conn.subscriptions) == sorted(settings.symbols)  # each exactly once
    wait_for(lambda: runner.stream.connected, what="connected")
    assert sample("lakewatch_finnhub_ws_connected") == 1

    fake_finnhub.push_trades()
    trades = wait_for(lambda: len(published.on(settings.topics.trades)) == len(settings.symbols)
                      and published.on(settings.topics.trades), what="trade records")
    assert {t["symbol"] for t in trades} == set(settings.symbols)
    for t in trades:
        assert t["asset_class"] == settings.asset_class_of(t["symbol"])
        assert t["source"] == "finnhub"
        assert isinstance(t["ingested_at"], int) and isinstance(t["trade_ts"], int)
        assert isinstance(t["price"], float) and isinstance(t["volume"], float)
        assert t["conditions"] == ["1"]
    assert {t["asset_class"] for t in trades} == {"stocks", "forex", "crypto"}
    assert runner.stream.last_message_at is not None
    assert [topic for topic, _ in published] == [settings.topics.trades] * len(trades)

    assert runner.stop() < 3
    assert runner.error is None
    assert not runner.stream.connected and sample("lakewatch_finnhub_ws_connected") == 0


@pytest.mark.parametrize("abrupt", [False, True], ids=["close-frame", "tcp-cut"])
def test_stream_resubscribes_everything_after_a_forced_disconnect(fake_finnhub, start_stream, abrupt):
    settings = make_settings(fake_finnhub)
    published = Published()
    start_stream(fast_stream(settings, published))
    first = wait_for(subscribed(fake_finnhub, settings.symbols), what="first subscriptions")
    fake_finnhub.push_trades(["AAPL"])
    wait_for(lambda: published, what="a trade on the first connection")  # a healthy connection
    reconnects = sample("lakewatch_finnhub_ws_reconnects_total")

    fake_finnhub.disconnect_all(abrupt=abrupt)
    second = wait_for(subscribed(fake_finnhub, settings.symbols, connections=2), what="resubscription")

    assert second is not first and not first.open
    assert sorted(second.subscriptions) == sorted(first.subscriptions)
    assert sample("lakewatch_finnhub_ws_reconnects_total") - reconnects == 1
    fake_finnhub.push_trades(["MSFT"])
    wait_for(lambda: any(r["symbol"] == "MSFT" for r in published.on(settings.topics.trades)),
             what="a trade on the new connection")


def test_a_silent_connection_is_dropped_after_idle_timeout_and_resubscribed(fake_finnhub, start_stream):
    settings = make_settings(fake_finnhub)
    reconnects = sample("lakewatch_finnhub_ws_reconnects_total")
    start_stream(fast_stream(settings, Published(), idle_timeout=0.3))
    wait_for(subscribed(fake_finnhub, settings.symbols, connections=2), what="reconnect after silence")
    assert sample("lakewatch_finnhub_ws_reconnects_total") - reconnects >= 1


def test_stream_answers_pings(fake_finnhub, start_stream):
    settings = make_settings(fake_finnhub)
    pings = sample("lakewatch_finnhub_ws_frames_total", type="ping")
    start_stream(fast_stream(settings, Published()))
    conn = wait_for(subscribed(fake_finnhub, settings.symbols), what="subscriptions")

    fake_finnhub.send_ping()
    fake_finnhub.send_ping()
    wait_for(lambda: conn.pongs == 2, what="two pongs")
    assert sample("lakewatch_finnhub_ws_frames_total", type="ping") - pings == 2


MALFORMED_FRAMES = [
    "this is not JSON",
    "[1, 2, 3]",  # JSON, not an object
    '"a string"',
    '{"data": []}',  # no type
    '{"type": "news-flash"}',  # a type we do not know
    '{"type": "trade", "data": "oops"}',  # data not a list
    '{"type": "trade", "data": [{"s": "AAPL", "p": 1, "v": 1, "t": 1}, 42]}',  # an item not an object
]


def test_malformed_frames_are_counted_and_the_stream_survives(fake_finnhub, start_stream):
    settings = make_settings(fake_finnhub)
    published = Published()
    runner = start_stream(fast_stream(settings, published))
    wait_for(subscribed(fake_finnhub, settings.symbols), what="subscriptions")
    malformed = sample("lakewatch_finnhub_ws_malformed_frames_total")
    reconnects = sample("lakewatch_finnhub_ws_reconnects_total")

    for frame in MALFORMED_FRAMES:
        fake_finnhub.push(frame)
    fake_finnhub.push_trades(["NVDA"])

    trades = wait_for(lambda: published.on(settings.topics.trades), what="the valid trade after them")
    assert [t["symbol"] for t in trades] == ["NVDA"]  # nothing from the half-valid frame
    assert sample("lakewatch_finnhub_ws_malformed_frames_total") - malformed == len(MALFORMED_FRAMES)
    assert sample("lakewatch_finnhub_ws_reconnects_total") == reconnects
    assert len(fake_finnhub.connections) == 1 and runner.error is None


def test_an_error_frame_about_something_else_is_logged_and_streaming_goes_on(fake_finnhub, start_stream):
    settings = make_settings(fake_finnhub)
    published = Published()
    runner = start_stream(fast_stream(settings, published))
    wait_for(subscribed(fake_finnhub, settings.symbols), what="subscriptions")

    fake_finnhub.push({"type": "error", "msg": "Subscribing to too many symbols"})
    fake_finnhub.push_trades(["TSLA"])

    wait_for(lambda: published.on(settings.topics.trades), what="a trade after the error frame")
    assert runner.error is None and len(fake_finnhub.connections) == 1


def test_a_key_rejected_at_the_handshake_raises_invalid_api_key(fake_finnhub):
    stream = fast_stream(make_settings(fake_finnhub, key=BAD_KEY), Published())
    with pytest.raises(InvalidApiKey) as raised:
        run_to_completion(stream)
    assert "HTTP 401" in str(raised.value)
    assert_one_line_without_key(raised.value, BAD_KEY)
    assert fake_finnhub.connections == []  # refused before any websocket existed


def test_an_invalid_api_key_error_frame_raises_invalid_api_key(fake_finnhub):
    fake_finnhub.ws_auth_failure = "error_frame"
    stream = fast_stream(make_settings(fake_finnhub, key=BAD_KEY), Published())
    with pytest.raises(InvalidApiKey) as raised:
        run_to_completion(stream)
    assert "Invalid API key" in str(raised.value)
    assert_one_line_without_key(raised.value, BAD_KEY)


def test_stream_keeps_retrying_an_unreachable_server_and_stops_promptly(fake_finnhub, start_stream):
    settings = make_settings(fake_finnhub, finnhub_ws_url=f"ws://127.0.0.1:{closed_port()}")
    reconnects = sample("lakewatch_finnhub_ws_reconnects_total")
    runner = start_stream(fast_stream(settings, Published()))
    wait_for(lambda: sample("lakewatch_finnhub_ws_reconnects_total") - reconnects >= 3, what="retries")
    assert runner.stop() < 2
    assert runner.error is None


# ---- REST -----------------------------------------------------------------------------------
def test_quotes_are_published_for_every_symbol_on_the_quotes_topic(fake_finnhub):
    settings = make_settings(fake_finnhub)
    published = Published()
    assert fast_rest(settings, published).poll_quotes() == len(settings.symbols)

    quotes = published.on(settings.topics.quotes)
    assert len(published) == len(quotes) == len(settings.symbols)
    assert [q["symbol"] for q in quotes] == list(settings.symbols)
    for q in quotes:
        assert q["asset_class"] == settings.asset_class_of(q["symbol"])
        assert q["source"] == "finnhub" and isinstance(q["current"], float)
        assert isinstance(q["quote_ts"], int) and q["quote_ts"] > 1_600_000_000_000  # ms


def test_fundamentals_are_published_per_stock_on_the_fundamentals_topic(fake_finnhub):
    settings = make_settings(fake_finnhub)
    published = Published()
    assert fast_rest(settings, published).poll_fundamentals() == 2 * len(settings.stocks)

    records = published.on(settings.topics.fundamentals)
    assert len(published) == len(records)
    assert {(r["symbol"], r["kind"]) for r in records} == {
        (s, kind) for s in settings.stocks for kind in ("metrics", "profile")}
    metrics_ = next(r for r in records if r["kind"] == "metrics")
    assert "peTTM" in metrics_["data"]  # the "metric" object, not the whole payload
    profile = next(r for r in records if r["kind"] == "profile")
    assert profile["data"]["ticker"] == profile["symbol"]


def test_news_is_deduplicated_by_id_across_polls(fake_finnhub):
    settings = make_settings(fake_finnhub, stocks=("AAPL", "MSFT"))
    published = Published()
    rest = fast_rest(settings, published)

    first = rest.poll_news()
    assert first == 3 * 3  # three stories for each of two stocks, three market stories
    news = published.on(settings.topics.news)
    assert len({(n["symbol"], n["id"]) for n in news}) == len(news) == first
    market = [n for n in news if n["category"] == "general"]
    assert len(market) == 3 and all(n["symbol"] == "general" for n in market)  # keyed by category

    assert rest.poll_news() == 0  # the same stories again: nothing new

    fresh = fake_finnhub.add_news("AAPL", "Fresh AAPL story")
    fresh_market = fake_finnhub.add_news(None, "Fresh market story")
    assert rest.poll_news() == 2
    newest = published.on(settings.topics.news)[-2:]
    assert {(n["id"], n["symbol"]) for n in newest} == {(fresh["id"], "AAPL"), (fresh_market["id"], "general")}
    assert len(fake_finnhub.calls_to("/company-news")) == 3 * 2


def test_rate_limits_hold_at_the_server_while_429s_are_retried(fake_finnhub):
    # The real per-second limit (30 in any 1 s), with the per-minute one scaled to 40 in any
    # 2 s: the real 60/min would need minutes of test to bind, and the scaled one binds within
    # this burst, so both limits and their interplay are checked from the server's side.
    settings = make_settings(fake_finnhub)
    limiter = RateLimiter([(40, 2.0), (30, 1.0)])
    rest = fast_rest(settings, Published(), limiter=limiter)
    fake_finnhub.fail("/quote", Fault(429, retry_after=1), times=2)
    throttled = sample("lakewatch_finnhub_api_calls_total", endpoint="quote", status="429")

    results = [rest.call("quote", rest.client.quote, "AAPL") for _ in range(60)]

    assert all(isinstance(r, dict) and r["c"] > 0 for r in results)
    seen = fake_finnhub.calls_to("/quote")
    assert len(seen) == 60 + 2
    assert max_calls_in_any_window(seen, 1.0) <= 30
    assert max_calls_in_any_window(seen, 2.0) <= 40
    assert seen[1] - seen[0] >= 0.95 and seen[2] - seen[1] >= 0.95  # Retry-After: 1 honoured
    assert sample("lakewatch_finnhub_api_calls_total", endpoint="quote", status="429") - throttled == 2


@pytest.mark.parametrize("fault", [Fault(500), Fault(503), Fault(429)], ids=["500", "503", "429-no-retry-after"])
def test_server_errors_and_throttling_without_retry_after_are_retried(fake_finnhub, fault):
    settings = make_settings(fake_finnhub, stocks=("AAPL",))
    published = Published()
    fake_finnhub.fail("/stock/metric", fault, times=2)

    assert fast_rest(settings, published).poll_fundamentals() == 2
    assert len(fake_finnhub.calls_to("/stock/metric")) == 3


def test_a_call_that_keeps_failing_is_skipped_and_the_poll_goes_on(fake_finnhub):
    settings = make_settings(fake_finnhub, stocks=("AAPL",))
    published = Published()
    fake_finnhub.fail("/stock/metric", Fault(500), times=10)
    errors = sample("lakewatch_finnhub_api_errors_total", endpoint="stock/metric", reason="server_error")

    assert fast_rest(settings, published, max_retries=2).poll_fundamentals() == 1  # the profile
    assert len(fake_finnhub.calls_to("/stock/metric")) == 3
    assert sample("lakewatch_finnhub_api_errors_total", endpoint="stock/metric", reason="server_error") - errors == 1
    assert published.on(settings.topics.fundamentals)[0]["kind"] == "profile"


def test_a_timed_out_call_is_retried(fake_finnhub):
    settings = make_settings(fake_finnhub)
    rest = fast_rest(settings, Published(), timeout=0.3)
    fake_finnhub.fail("/quote", Fault(status=None, delay=2.0))
    timeouts = sample("lakewatch_finnhub_api_calls_total", endpoint="quote", status="timeout")

    started = time.monotonic()
    quote = rest.call("quote", rest.client.quote, "AAPL")

    assert isinstance(quote, dict) and quote["c"] > 0
    assert time.monotonic() - started < 1.5  # did not wait for the slow answer
    assert len(fake_finnhub.calls_to("/quote")) == 2
    assert sample("lakewatch_finnhub_api_calls_total", endpoint="quote", status="timeout") - timeouts == 1


def test_an_unreachable_server_is_retried_then_skipped(fake_finnhub):
    settings = make_settings(fake_finnhub, finnhub_rest_url=f"http://127.0.0.1:{closed_port()}/api/v1")
    errors = sample("lakewatch_finnhub_api_errors_total", endpoint="quote", reason="connection_error")
    rest = fast_rest(settings, Published(), max_retries=2)
    assert rest.call("quote", rest.client.quote, "AAPL") is None
    assert sample("lakewatch_finnhub_api_calls_total", endpoint="quote", status="connection_error") >= 3
    assert sample("lakewatch_finnhub_api_errors_total", endpoint="quote", reason="connection_error") - errors == 1


def test_a_forbidden_resource_is_skipped_without_retry_or_stopping(fake_finnhub):
    # Finnhub answers 403 "You don't have access to this resource." to a valid free key asking
    # for a premium symbol; that must not be mistaken for a bad key.
    settings = make_settings(fake_finnhub)
    published = Published()
    fake_finnhub.fail("/quote", Fault(403))
    assert fast_rest(settings, published).poll_quotes() == len(settings.symbols) - 1
    assert len(fake_finnhub.calls_to("/quote")) == len(settings.symbols)


def test_a_rejected_key_raises_invalid_api_key_from_polls_and_run(fake_finnhub):
    settings = make_settings(fake_finnhub, key=BAD_KEY)
    rest = fast_rest(settings, Published())
    with pytest.raises(InvalidApiKey) as raised:
        rest.poll_quotes()
    assert "HTTP 401" in str(raised.value)
    assert_one_line_without_key(raised.value, BAD_KEY)
    with pytest.raises(InvalidApiKey):
        rest.run(threading.Event())
    assert len(fake_finnhub.calls_to("/quote")) == 2  # no retries of a rejected key


def test_run_polls_each_kind_at_its_interval_and_returns_promptly_on_stop(fake_finnhub):
    settings = make_settings(fake_finnhub, stocks=("AAPL",), forex=(), crypto=(),
                             quote_poll_seconds=0.2, news_poll_seconds=0.5, fundamentals_poll_seconds=60.0)
    published = Published()
    rest = fast_rest(settings, published)
    stop = threading.Event()
    thread = threading.Thread(target=rest.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(published.on(settings.topics.quotes)) >= 5, what="five quote polls")
    finally:
        stop.set()
        thread.join(2)
    assert not thread.is_alive()
    assert 1 <= len(fake_finnhub.calls_to("/company-news")) <= 3
    assert len(fake_finnhub.calls_to("/stock/metric")) == 1  # first run immediately, then hourly


# ---- both --------------------------------------------------------------------------------
def test_the_key_never_reaches_the_clients_logs(caplog):
    secret, bad = "sekrit-KEY-42", "bad-sekrit-KEY-43"
    caplog.set_level(logging.DEBUG, logger="ingestion")
    with FakeFinnhub(key=secret) as fake:
        settings = make_settings(fake, key=secret)
        rest = fast_rest(settings, Published(), timeout=0.3, max_retries=1)
        fake.fail("/quote", Fault(500))
        fake.fail("/quote", Fault(403))
        fake.fail("/quote", Fault(status=None, delay=1.0))
        rest.poll_quotes()
        unreachable = f"http://127.0.0.1:{closed_port()}/api/v1"
        fast_rest(make_settings(fake, key=secret, finnhub_rest_url=unreachable), Published(), max_retries=1).call(
            "quote", rest.client.quote, "AAPL")
        with pytest.raises(InvalidApiKey):
            fast_rest(make_settings(fake, key=bad), Published()).poll_quotes()

        trades = Published()
        runner = StreamThread(fast_stream(settings, trades))
        try:
            wait_for(subscribed(fake, settings.symbols), what="subscriptions")
            fake.push(f"not json, token={secret}")
            fake.push({"type": "error", "msg": f"Subscription failed for {secret}"})
            fake.push_trades(["AAPL"])
            wait_for(lambda: trades, what="the trade after the frames that get logged")
        finally:
            runner.stop()
        with pytest.raises(InvalidApiKey):
            run_to_completion(fast_stream(make_settings(fake, key=bad), Published()))

    ours = [r for r in caplog.records if r.name.startswith("ingestion")]
    logged_events = {r.getMessage() for r in ours}
    assert {"malformed finnhub frame skipped", "finnhub websocket error frame",
            "finnhub call failed; skipped"} <= logged_events  # the logging did happen
    logged = " ".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in ours)
    assert secret not in logged and bad not in logged


def test_the_fake_runs_as_a_process_and_streams_trades_to_subscribers():
    key = "process-key"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.fake_finnhub", "--ws-port", "0", "--rest-port", "0",
         "--key", key, "--trade-interval", "0.05"],
        cwd=settings_module.REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert select.select([proc.stdout], [], [], 15)[0], "the fake printed no ready line"
        urls = json.loads(proc.stdout.readline())
        settings = dataclasses.replace(settings_module.load({}), finnhub_api_key=key,
                                       finnhub_ws_url=urls["ws_url"], finnhub_rest_url=urls["rest_url"])
        published = Published()
        assert fast_rest(settings, published).poll_quotes() == len(settings.symbols)
        runner = StreamThread(fast_stream(settings, published))
        try:
            trades = wait_for(lambda: {r["symbol"] for r in published.on(settings.topics.trades)}
                              == set(settings.symbols), timeout=10, what="a trickle for every symbol")
            assert trades
        finally:
            runner.stop()
        proc.terminate()
        assert proc.wait(10) == 0  # SIGTERM is a clean stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
