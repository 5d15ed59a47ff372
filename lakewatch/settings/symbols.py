"""The symbols lakewatch follows, by asset class: what ingestion subscribes to and simulates,
and what the stream, the model and the bot know by name.
"""
from __future__ import annotations

from dataclasses import dataclass

ASSET_CLASSES = ("stocks", "forex", "crypto")


@dataclass(frozen=True)
class Symbols:
    # The Finnhub free plan allows 50 per connection.
    stocks: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA")
    forex: tuple[str, ...] = ("OANDA:EUR_USD", "OANDA:GBP_USD", "OANDA:USD_JPY")
    crypto: tuple[str, ...] = ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "BINANCE:SOLUSDT")

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.stocks + self.forex + self.crypto

    def asset_class_of(self, symbol: str) -> str:
        """The asset class of a configured symbol, or a guess from Finnhub's exchange prefix."""
        for asset_class in ASSET_CLASSES:
            if symbol in getattr(self, asset_class):
                return asset_class
        prefix = symbol.split(":", 1)[0].upper() if ":" in symbol else ""
        if prefix in {"OANDA", "FXCM", "FOREX", "FXPRO", "IC MARKETS", "PEPPERSTONE"}:
            return "forex"
        if prefix in {"BINANCE", "COINBASE", "KRAKEN", "BITFINEX", "GEMINI", "BITSTAMP", "HUOBI", "POLONIEX"}:
            return "crypto"
        return "stocks"
