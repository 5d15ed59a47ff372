"""Finnhub payloads -> the records lakewatch puts on its Kafka topics (the topic contract).

Both sources go through these functions: the live Finnhub clients and the market simulator,
which speaks Finnhub's formats. So a record looks the same whichever source made it, and the
stream job (issue 3) parses exactly one shape per topic.

Records are flat JSON objects keyed by symbol. Timestamps are epoch milliseconds (UTC).
Trade items are forwarded even when a field is missing or odd: validating them is the stream
job's work, and it sends what fails to the `rejects` table instead of losing it here.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterator

AssetClassOf = Callable[[str], str]


def now_ms() -> int:
    return int(time.time() * 1000)


class MalformedFrame(ValueError):
    """A websocket frame whose structure (not a single field) is unusable."""


def trades_from_frame(
    frame: dict, asset_class_of: AssetClassOf, source: str, ingested_at: int | None = None
) -> Iterator[dict]:
    """One record per trade of a Finnhub `{"type": "trade", "data": [...]}` frame."""
    data = frame.get("data")
    if not isinstance(data, list):
        raise MalformedFrame("trade frame without a list in 'data'")
    ingested_at = now_ms() if ingested_at is None else ingested_at
    for item in data:
        if not isinstance(item, dict):
            raise MalformedFrame(f"trade item is {type(item).__name__}, not an object")
        symbol = item.get("s")
        yield {
            "symbol": symbol,
            "asset_class": asset_class_of(symbol) if isinstance(symbol, str) else None,
            "price": item.get("p"),
            "volume": item.get("v"),
            "trade_ts": item.get("t"),
            "conditions": item.get("c") or [],
            "source": source,
            "ingested_at": ingested_at,
        }


def quote_record(symbol: str, asset_class: str, quote: dict, source: str) -> dict:
    """Finnhub /quote ({c, d, dp, h, l, o, pc, t}) -> a quotes record."""
    quote_ts = quote.get("t")
    return {
        "symbol": symbol,
        "asset_class": asset_class,
        "current": quote.get("c"),
        "change": quote.get("d"),
        "percent_change": quote.get("dp"),
        "high": quote.get("h"),
        "low": quote.get("l"),
        "open": quote.get("o"),
        "prev_close": quote.get("pc"),
        "quote_ts": int(quote_ts) * 1000 if isinstance(quote_ts, (int, float)) else None,
        "source": source,
        "ingested_at": now_ms(),
    }


def news_record(item: dict, source: str, symbol: str | None = None) -> dict:
    """Finnhub /company-news or /news item -> a news record.

    `related` is a comma-separated string in Finnhub's payload; the record carries a list.
    The record's key symbol is the one asked for, or the first related one (market news may
    have none: its key is then its category).
    """
    related = [s.strip() for s in str(item.get("related") or "").split(",") if s.strip()]
    published = item.get("datetime")
    return {
        "id": item.get("id"),
        "symbol": symbol or (related[0] if related else None),
        "category": item.get("category"),
        "headline": item.get("headline"),
        "summary": item.get("summary"),
        "source": item.get("source"),
        "url": item.get("url"),
        "image": item.get("image"),
        "related": related,
        "published_at": int(published) * 1000 if isinstance(published, (int, float)) else None,
        "origin": source,
        "ingested_at": now_ms(),
    }


def fundamentals_record(symbol: str, kind: str, payload: dict[str, Any], source: str) -> dict:
    """Finnhub /stock/metric (kind 'metrics') or /stock/profile2 (kind 'profile') -> a record.

    The payload is kept whole in `data`: Finnhub returns over a hundred metric names and adds
    new ones, so the fundamentals table flattens the ones it needs.
    """
    data = payload.get("metric", payload) if kind == "metrics" else payload
    return {
        "symbol": symbol,
        "asset_class": "stocks",
        "kind": kind,
        "data": data,
        "source": source,
        "ingested_at": now_ms(),
    }


def label_record(label: dict) -> dict:
    """A simulator anomaly label as published on market.labels (already flat)."""
    return {**label, "ingested_at": now_ms()}
