"""Streams Finnhub trades over its websocket and publishes one record per trade.

Finnhub's socket is the only real-time source, and its free tier is flaky: it drops
connections, sometimes without closing them. So the stream treats silence as a drop,
reconnects with jittered exponential backoff, and subscribes to every symbol again on each
new connection (Finnhub forgets subscriptions with the connection). A frame that cannot be
parsed is counted and skipped; only a rejected API key ends run(), since no reconnect fixes it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any, Callable
from urllib.parse import quote

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ingestion import metrics, records
from ingestion.finnhub_errors import InvalidApiKey
from lakewatch.logs import event, redact
from lakewatch.settings import Settings

SOURCE = "finnhub"
_KNOWN_TYPES = ("trade", "ping", "error")

log = logging.getLogger(__name__)

Publish = Callable[[str, dict], None]


class FinnhubStream:
    def __init__(
        self,
        settings: Settings,
        publish: Publish,
        *,
        idle_timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        open_timeout: float = 10.0,
    ):
        self.settings = settings
        self.publish = publish
        self.idle_timeout = idle_timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.open_timeout = open_timeout
        self.connected = False  # True while connected and subscribed
        self.key_accepted = False  # a handshake succeeded once: Finnhub took the key
        self.last_message_at: float | None = None  # epoch seconds of the last frame received
        self._carried_frames = False  # whether the current connection has delivered a frame

    async def run(self, stop: asyncio.Event) -> None:
        """Stream until stop is set; reconnect on every drop. Raises InvalidApiKey."""
        failures = 0
        while not stop.is_set():
            self._carried_frames = False
            try:
                await self._session(stop)
                reason = "closed"
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    raise InvalidApiKey(f"HTTP {status} on the websocket handshake") from None
                reason = f"handshake HTTP {status}"
            # TimeoutError (an OSError) is also idle_timeout of silence, Finnhub's silent drop.
            except (ConnectionClosed, InvalidHandshake, OSError) as exc:
                reason = type(exc).__name__
            if stop.is_set():
                break
            failures = 0 if self._carried_frames else failures + 1
            await self._back_off(stop, failures, reason)
        event(log, "finnhub websocket stopped")

    async def _session(self, stop: asyncio.Event) -> None:
        """One connection, until it drops (raising or not) or stop is set."""
        # A silent peer would hold a close for the default 10 s before a reconnect.
        async with connect(self._url(), open_timeout=self.open_timeout, close_timeout=2) as ws:
            closer = asyncio.create_task(_close_when_set(stop, ws))
            try:
                await self._subscribe(ws)
                await self._receive(ws)
            finally:
                closer.cancel()
                self._set_connected(False)

    def _url(self) -> str:
        return f"{self.settings.finnhub_ws_url}?token={quote(self.settings.finnhub_api_key, safe='')}"

    async def _subscribe(self, ws: ClientConnection) -> None:
        for symbol in self.settings.symbols:
            await ws.send(json.dumps({"type": "subscribe", "symbol": symbol}))
        self.key_accepted = True
        self._set_connected(True)
        event(log, "finnhub websocket subscribed", symbols=len(self.settings.symbols))

    async def _receive(self, ws: ClientConnection) -> None:
        """Handle frames until the connection closes; TimeoutError after idle_timeout of silence."""
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.idle_timeout) as idle:
            async for raw in ws:
                idle.reschedule(loop.time() + self.idle_timeout)
                self.last_message_at = time.time()
                self._carried_frames = True
                await self._handle(ws, raw)

    async def _handle(self, ws: ClientConnection, raw: str | bytes) -> None:
        frame = _parse(raw)
        kind = frame.get("type") if frame is not None else None
        if kind not in _KNOWN_TYPES:
            kind = "malformed"  # a fixed label: server text must not create metric series
        metrics.WS_FRAMES.labels(kind).inc()
        if kind == "trade":
            self._publish_trades(frame, raw)
        elif kind == "ping":
            await ws.send('{"type":"pong"}')
        elif kind == "error":
            self._on_error(frame)
        else:
            self._malformed(raw, "not a JSON object with a known type")

    def _publish_trades(self, frame: dict, raw: str | bytes) -> None:
        try:
            # All or nothing: a frame that turns out malformed halfway publishes no trade.
            trades = list(records.trades_from_frame(frame, self.settings.asset_class_of, source=SOURCE))
        except records.MalformedFrame as exc:
            self._malformed(raw, str(exc))
            return
        for trade in trades:
            self.publish(self.settings.topics.trades, trade)

    def _on_error(self, frame: dict) -> None:
        message = redact(str(frame.get("msg", "")), self.settings.finnhub_api_key)
        lowered = message.lower()
        if "invalid" in lowered and ("key" in lowered or "token" in lowered):
            raise InvalidApiKey(f"websocket error: {message}")
        event(log, "finnhub websocket error frame", logging.ERROR, error=message[:200])

    def _malformed(self, raw: str | bytes, why: str) -> None:
        metrics.WS_MALFORMED.inc()
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        frame = redact(text[:200], self.settings.finnhub_api_key)
        event(log, "malformed finnhub frame skipped", logging.WARNING, why=why, frame=frame)

    def _set_connected(self, connected: bool) -> None:
        self.connected = connected
        metrics.WS_CONNECTED.set(1 if connected else 0)

    async def _back_off(self, stop: asyncio.Event, failures: int, reason: str) -> None:
        metrics.WS_RECONNECTS.inc()
        # Full jitter: clients dropped together by a server restart do not return together.
        delay = random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** failures))
        event(log, "finnhub websocket dropped; reconnecting", logging.WARNING,
              reason=reason, idle_timeout=self.idle_timeout, delay=round(delay, 3))
        try:
            await asyncio.wait_for(stop.wait(), delay)
        except TimeoutError:
            pass


def _parse(raw: str | bytes) -> dict | None:
    try:
        frame: Any = json.loads(raw)
    except ValueError:  # includes UnicodeDecodeError of a binary frame
        return None
    return frame if isinstance(frame, dict) else None


async def _close_when_set(stop: asyncio.Event, ws: ClientConnection) -> None:
    await stop.wait()
    await ws.close()
