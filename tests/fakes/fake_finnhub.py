"""A fake Finnhub on 127.0.0.1: the websocket trade stream and the REST endpoints lakewatch polls.

Finnhub cannot be reached from tests (and its free plan would throttle a test suite), so the
clients are tested against this fake. It can do what the clients must survive: reject a bad
key at the handshake (HTTP 401) or with an error frame, send malformed frames and pings, drop
every connection, answer 429 with Retry-After, 5xx, or too slowly. It logs the arrival time of
every REST call so tests can check the rate limits from the server's side.

As a process, for the stack test (it streams a trickle of trades for subscribed symbols):
    python -m tests.fakes.fake_finnhub --ws-port N --rest-port M --key K
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import threading
import time
import zlib
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

HOST = "127.0.0.1"  # never reachable from outside the machine
REST_PREFIX = "/api/v1"


@dataclass(frozen=True)
class Fault:
    """What the next call to an endpoint gets instead of a normal answer.

    status None means a normal answer, after `delay` seconds (longer than the client's timeout
    makes a timeout).
    """

    status: int | None = 500
    retry_after: float | None = None
    delay: float = 0.0


@dataclass
class WsConnection:
    """One client connection as the fake saw it."""

    token: str
    subscriptions: list[str] = field(default_factory=list)
    pongs: int = 0
    open: bool = True
    ws: ServerConnection | None = field(default=None, repr=False)


class FakeFinnhub:
    def __init__(self, key: str = "good", ws_port: int = 0, rest_port: int = 0,
                 trickle_interval: float | None = None):
        self.key = key
        self.ws_port = ws_port
        self.rest_port = rest_port
        self.trickle_interval = trickle_interval  # seconds between trade frames; None: only pushed
        # How a bad key is refused on the websocket: "http_401" at the handshake, or
        # "error_frame": accept, then send {"type":"error","msg":"Invalid API key"}.
        self.ws_auth_failure = "http_401"
        self.rest_calls: list[tuple[float, str]] = []  # (time.monotonic() on arrival, path)
        self._faults: dict[str, list[Fault]] = {}
        self._extra_news: dict[str, list[dict]] = {}
        self._connections: list[WsConnection] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._ws_server = None
        self._trickle_task: asyncio.Task | None = None
        self._http: ThreadingHTTPServer | None = None

    # ---- lifecycle --------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.ws_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{HOST}:{self.rest_port}{REST_PREFIX}"

    def start(self) -> "FakeFinnhub":
        self._http = ThreadingHTTPServer((HOST, self.rest_port), _rest_handler(self))
        self._http.daemon_threads = True
        self.rest_port = self._http.server_address[1]
        # A short poll interval: shutdown() waits for one, and tests start many fakes.
        threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.05},
                         name="fake-finnhub-rest", daemon=True).start()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="fake-finnhub-ws", daemon=True)
        self._loop_thread.start()
        self._run(self._start_ws())
        return self

    def stop(self) -> None:
        self._closing.set()  # wakes REST handlers sleeping on a delay fault
        if self._loop is not None:
            self._run(self._stop_ws())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._loop_thread.join(5)
            self._loop.close()
            self._loop = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> "FakeFinnhub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, coro, timeout: float = 10.0) -> Any:
        """Run a coroutine on the fake's event loop from any other thread."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start_ws(self) -> None:
        self._ws_server = await serve(self._ws_handler, HOST, self.ws_port, process_request=self._check_token)
        self.ws_port = self._ws_server.sockets[0].getsockname()[1]
        if self.trickle_interval:
            self._trickle_task = asyncio.create_task(self._trickle())

    async def _stop_ws(self) -> None:
        if self._trickle_task is not None:
            self._trickle_task.cancel()
        self._ws_server.close()
        await self._ws_server.wait_closed()

    # ---- websocket: the server side ---------------------------------------------------
    def _check_token(self, connection: ServerConnection, request):
        if _token(request.path) == self.key or self.ws_auth_failure == "error_frame":
            return None
        return connection.respond(HTTPStatus.UNAUTHORIZED, "Invalid API key\n")

    async def _ws_handler(self, ws: ServerConnection) -> None:
        conn = WsConnection(token=_token(ws.request.path), ws=ws)
        with self._lock:
            self._connections.append(conn)
        try:
            if conn.token != self.key:
                await ws.send(json.dumps({"type": "error", "msg": "Invalid API key"}))
            async for message in ws:
                _on_client_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            conn.open = False

    async def _trickle(self) -> None:
        while True:
            await asyncio.sleep(self.trickle_interval)
            for conn in self.connections:
                if conn.open and conn.subscriptions:
                    await _send(conn, trade_frame(conn.subscriptions))

    # ---- websocket: what tests do -----------------------------------------------------
    @property
    def connections(self) -> list[WsConnection]:
        with self._lock:
            return list(self._connections)

    def open_connections(self) -> list[WsConnection]:
        return [c for c in self.connections if c.open]

    def push(self, frame: str | dict | list) -> None:
        """Send a frame to every open connection: a str as is, anything else as JSON."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        self._run(self._push_all(lambda conn: text))

    def push_trades(self, symbols: list[str] | None = None) -> None:
        """One trade frame per open connection, for `symbols` or what it subscribed to."""
        self._run(self._push_all(lambda conn: trade_frame(symbols or conn.subscriptions)))

    def send_ping(self) -> None:
        self.push({"type": "ping"})

    def disconnect_all(self, abrupt: bool = False) -> None:
        """Close every connection: with a close frame, or (abrupt) by cutting the TCP connection."""
        self._run(self._disconnect_all(abrupt))

    async def _push_all(self, frame_for: Callable[[WsConnection], str]) -> None:
        for conn in self.open_connections():
            await _send(conn, frame_for(conn))

    async def _disconnect_all(self, abrupt: bool) -> None:
        for conn in self.open_connections():
            if abrupt:
                conn.ws.transport.abort()
            else:
                await conn.ws.close(1001, "going away")

    # ---- REST ---------------------------------------------------------------------------
    def fail(self, endpoint: str, fault: Fault, times: int = 1) -> None:
        """The next `times` calls to endpoint (e.g. "/quote") get `fault`."""
        with self._lock:
            self._faults.setdefault(endpoint, []).extend([fault] * times)

    def add_news(self, symbol: str | None, headline: str) -> dict:
        """A new article for symbol's company news (None: market news); returns it."""
        with self._lock:
            news_id = 5_000_000 + sum(len(items) for items in self._extra_news.values())
            item = _news_item(news_id, symbol or "", headline, "company" if symbol else "general")
            self._extra_news.setdefault(symbol or "", []).append(item)
        return item

    def calls_to(self, endpoint: str) -> list[float]:
        """Arrival times of the calls to endpoint (e.g. "/quote")."""
        with self._lock:
            return [t for t, path in self.rest_calls if path == REST_PREFIX + endpoint]

    def serve_rest(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        # finnhub.Client asks for API_URL + "/" + "/quote": collapse the double slash.
        path = re.sub("/+", "/", url.path)
        params = {name: values[-1] for name, values in parse_qs(url.query).items()}
        endpoint = path.removeprefix(REST_PREFIX)
        with self._lock:
            self.rest_calls.append((time.monotonic(), path))
            faults = self._faults.get(endpoint)
            fault = faults.pop(0) if faults else None
        if params.get("token") != self.key:
            return _reply(request, 401, {"error": "Invalid API key"})
        if fault is not None:
            if fault.delay and self._closing.wait(fault.delay):
                return None
            if fault.status is not None:
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                return _reply(request, fault.status, {"error": f"fake fault {fault.status}"}, headers)
        answer = self._routes().get(endpoint)
        if answer is None:
            return _reply(request, 404, {"error": f"fake finnhub has no {endpoint}"})
        return _reply(request, 200, answer(params))

    def _routes(self) -> dict[str, Callable[[dict], Any]]:
        return {
            "/quote": lambda p: _quote(p.get("symbol", "")),
            "/company-news": lambda p: self._news(p.get("symbol", ""), "company"),
            "/news": lambda p: self._news("", p.get("category", "general")),
            "/stock/metric": lambda p: _metrics(p.get("symbol", "")),
            "/stock/profile2": lambda p: _profile(p.get("symbol", "")),
        }

    def _news(self, symbol: str, category: str) -> list[dict]:
        base = zlib.crc32(symbol.encode()) % 100_000 * 10
        items = [_news_item(base + i, symbol, f"{symbol or 'Market'} story {i}", category) for i in range(3)]
        with self._lock:
            return items + list(self._extra_news.get(symbol, []))


# ---- payloads, Finnhub-shaped ---------------------------------------------------------------
def _price(symbol: str) -> float:
    return 10.0 + zlib.crc32(symbol.encode()) % 500


def trade_frame(symbols: list[str]) -> str:
    now_ms = int(time.time() * 1000)
    data = [
        {"s": s, "p": round(_price(s) * random.uniform(0.995, 1.005), 4),
         "v": round(random.uniform(0.01, 100), 4), "t": now_ms, "c": ["1"]}
        for s in symbols
    ]
    return json.dumps({"type": "trade", "data": data})


def _quote(symbol: str) -> dict:
    p = _price(symbol)
    return {"c": p, "d": 0.5, "dp": 0.25, "h": p + 1, "l": p - 1, "o": p - 0.5, "pc": p - 0.5,
            "t": int(time.time())}


def _news_item(news_id: int, symbol: str, headline: str, category: str) -> dict:
    return {"category": category, "datetime": int(time.time()) - 3600, "headline": headline,
            "id": news_id, "image": "", "related": symbol, "source": "Fake Wire",
            "summary": f"{headline}.", "url": f"https://news.example/{news_id}"}


def _metrics(symbol: str) -> dict:
    p = _price(symbol)
    return {"metric": {"52WeekHigh": p * 1.2, "52WeekLow": p * 0.8, "peTTM": 25.0, "beta": 1.1},
            "metricType": "all", "series": {"annual": {}}, "symbol": symbol}


def _profile(symbol: str) -> dict:
    return {"country": "US", "currency": "USD", "exchange": "NASDAQ NMS - GLOBAL MARKET",
            "finnhubIndustry": "Technology", "ipo": "2000-01-01", "logo": "",
            "marketCapitalization": 1_000_000.0, "name": f"{symbol} Inc", "phone": "",
            "shareOutstanding": 1000.0, "ticker": symbol, "weburl": ""}


# ---- plumbing -------------------------------------------------------------------------------
def _token(path: str) -> str:
    return parse_qs(urlsplit(path).query).get("token", [""])[-1]


def _on_client_message(conn: WsConnection, message: str | bytes) -> None:
    try:
        msg = json.loads(message)
    except ValueError:
        return
    if not isinstance(msg, dict):
        return
    if msg.get("type") == "subscribe":
        conn.subscriptions.append(msg.get("symbol"))
    elif msg.get("type") == "unsubscribe" and msg.get("symbol") in conn.subscriptions:
        conn.subscriptions.remove(msg.get("symbol"))
    elif msg.get("type") == "pong":
        conn.pongs += 1


async def _send(conn: WsConnection, text: str) -> None:
    try:
        await conn.ws.send(text)
    except ConnectionClosed:
        conn.open = False


def _rest_handler(fake: FakeFinnhub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            fake.serve_rest(self)

        def log_message(self, *args):
            pass

    return Handler


def _reply(request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict | None = None) -> None:
    data = json.dumps(body).encode()
    try:
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the client gave up (a delay fault longer than its timeout)


def max_calls_in_any_window(stamps: list[float], window: float) -> int:
    """The most calls in any window [t, t + window), wherever it starts.

    The busiest window can always slide right until it starts on a call, so the windows
    starting at each call are the only ones to check.
    """
    stamps = sorted(stamps)
    most, end = 0, 0
    for start, t in enumerate(stamps):
        while end < len(stamps) and stamps[end] < t + window:
            end += 1
        most = max(most, end - start)
    return most


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Finnhub (websocket + REST) on 127.0.0.1")
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--rest-port", type=int, default=0)
    parser.add_argument("--key", default=os.environ.get("FINNHUB_API_KEY", ""),
                        help="the only key accepted (default: $FINNHUB_API_KEY)")
    parser.add_argument("--trade-interval", type=float, default=0.2,
                        help="seconds between trade frames to each subscribed connection")
    args = parser.parse_args(argv)
    if not args.key:
        parser.error("--key (or FINNHUB_API_KEY) is required")
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with FakeFinnhub(args.key, args.ws_port, args.rest_port, trickle_interval=args.trade_interval) as fake:
        print(json.dumps({"ws_url": fake.ws_url, "rest_url": fake.rest_url}), flush=True)
        while not stopping.wait(0.5):
            pass


if __name__ == "__main__":
    main()
