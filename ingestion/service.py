"""The ingestion service: Finnhub (with FINNHUB_API_KEY) or the market simulator, into Kafka.

`python -m ingestion.service` runs until SIGTERM/SIGINT, then stops its sources, flushes the
producer and exits 0. A key Finnhub rejects stops it with one readable line and exit code 2,
so the stack runner can show that line instead of a restart loop. /health and /metrics are
served on settings.ingestion_port.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time

from ingestion import metrics, sim_feed
from ingestion.finnhub_errors import InvalidApiKey
from ingestion.producer import RecordProducer
from ingestion.topics import ensure_topics
from lakewatch import logs, service_http
from lakewatch.logs import event
from lakewatch.markets import hours_of, market_open
from lakewatch.settings import ASSET_CLASSES, Settings, load

EXIT_BAD_KEY = 2


class _Source(threading.Thread):
    """A source running on its own thread; remembers the exception that ended it."""

    def __init__(self, name: str, target):
        super().__init__(name=name, daemon=True)
        self._target_fn = target
        self.error: BaseException | None = None

    def run(self):
        try:
            self._target_fn()
        except BaseException as exc:  # reported by the main loop
            self.error = exc


def _finnhub_sources(settings: Settings, publish, stop: threading.Event) -> tuple[list[_Source], object]:
    from ingestion.finnhub_rest import FinnhubRest
    from ingestion.finnhub_ws import FinnhubStream

    stream = FinnhubStream(settings, publish)
    rest = FinnhubRest(settings, publish)

    def run_stream():
        async def main():
            async_stop = asyncio.Event()

            async def relay_stop():  # threading.Event -> asyncio.Event, without a helper thread
                while not stop.is_set():
                    await asyncio.sleep(0.2)
                async_stop.set()

            relay = asyncio.create_task(relay_stop())
            try:
                await stream.run(async_stop)
            finally:
                relay.cancel()

        asyncio.run(main())

    return [_Source("finnhub-ws", run_stream), _Source("finnhub-rest", lambda: rest.run(stop))], stream


def main() -> int:
    settings = load()
    log = logs.setup("ingestion")
    source = "finnhub" if settings.uses_finnhub else "simulator"
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    try:
        ensure_topics(settings)
    except Exception as exc:
        print(f"ingestion: cannot reach the Kafka broker at {settings.bootstrap_servers} ({exc}).", file=sys.stderr)
        return 1
    producer = RecordProducer(settings.bootstrap_servers)

    stream = None
    if settings.uses_finnhub:
        sources, stream = _finnhub_sources(settings, producer.publish, stop)
    else:
        sources = [_Source("simulator", lambda: sim_feed.run_live(settings, producer.publish, stop))]
    metrics.SOURCE.labels(source).set(1)
    hours = hours_of(settings)
    for asset_class in ASSET_CLASSES:
        metrics.MARKET_OPEN.labels(asset_class).set_function(
            lambda c=asset_class: float(market_open(c, int(time.time() * 1000), hours)))

    def health() -> tuple[bool, dict]:
        details = {"source": source, "delivered": producer.delivered, "failed": producer.failed,
                   "pending": producer.pending(), "sources_alive": all(s.is_alive() for s in sources)}
        if stream is not None:
            details["finnhub_ws_connected"] = stream.connected
            details["finnhub_key_accepted"] = stream.key_accepted
        # Not healthy before Finnhub has taken the key: `make up` then waits for the verdict on
        # it instead of reporting success a moment before a rejected key stops the service.
        ok = details["sources_alive"] and producer.broker_reachable() and (stream is None or stream.key_accepted)
        return ok, details

    server = service_http.serve(settings.host, settings.ingestion_port, health)
    for s in sources:
        s.start()
    event(log, "ingestion started", source=source, broker=settings.bootstrap_servers,
          symbols=len(settings.symbols), port=settings.ingestion_port)

    code, fatal = 0, ""
    while not stop.is_set():
        producer.poll(0.2)
        failed = next((s for s in sources if not s.is_alive()), None)
        if failed is not None:
            if isinstance(failed.error, InvalidApiKey):
                code, fatal = EXIT_BAD_KEY, f"ingestion: {failed.error}"
            else:
                event(log, "source stopped", logging.ERROR, source=failed.name, error=repr(failed.error))
                code = 1
            stop.set()

    started = time.monotonic()
    for s in sources:
        s.join(timeout=10)
    left = producer.close(timeout=20)
    server.shutdown()
    event(log, "ingestion stopped", delivered=producer.delivered, failed=producer.failed,
          unflushed=left, stop_seconds=round(time.monotonic() - started, 2))
    if fatal:  # last, so it is the line the stack runner shows
        print(fatal, file=sys.stderr)
    return code or (1 if left else 0)


if __name__ == "__main__":
    sys.exit(main())
