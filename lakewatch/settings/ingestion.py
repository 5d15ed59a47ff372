"""The ingestion service (ingestion/) and its live source, Finnhub: WebSocket trades and polled
REST quotes, news and fundamentals. Without a Finnhub key the simulator (simulator.py) feeds
the same topics.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Ingestion:
    ingestion_port: int = 9101  # its metrics and health; the metrics ports start here

    # The key comes from FINNHUB_API_KEY (lakewatch/settings/__init__.py); repr=False keeps it out of logs.
    finnhub_api_key: str = field(default="", repr=False)
    finnhub_ws_url: str = "wss://ws.finnhub.io"
    finnhub_rest_url: str = "https://finnhub.io/api/v1"
    finnhub_calls_per_minute: int = 60
    finnhub_calls_per_second: int = 30
    quote_poll_seconds: float = 60.0
    news_poll_seconds: float = 300.0
    fundamentals_poll_seconds: float = 3600.0

    @property
    def uses_finnhub(self) -> bool:
        return bool(self.finnhub_api_key)
