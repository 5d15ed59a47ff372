"""The words and reference numbers of the market simulator: company profiles, base
fundamentals, start prices and news templates.

Kept apart from ingestion/simulator.py so the price model there stays readable. Everything here
is static data or a pure function of its arguments (plus a numpy Generator handed in), so the
simulator stays deterministic. Companies and figures are round, plausible values for a demo,
not market data; news sources and URLs are fictitious (.invalid domains never resolve).
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

# Bare ticker -> profile and base fundamentals. shares/avg_volume in millions, as Finnhub gives them.
COMPANIES: dict[str, dict[str, Any]] = {
    "AAPL": dict(name="Apple Inc", price=190.0, industry="Technology", ipo="1980-12-12",
                 weburl="https://www.apple.com/", shares=15204.0, eps=6.43, beta=1.24,
                 dividend_yield=0.51, avg_volume=55.0),
    "MSFT": dict(name="Microsoft Corp", price=420.0, industry="Technology", ipo="1986-03-13",
                 weburl="https://www.microsoft.com/", shares=7433.0, eps=11.80, beta=0.90,
                 dividend_yield=0.72, avg_volume=20.0),
    "NVDA": dict(name="NVIDIA Corp", price=120.0, industry="Semiconductors", ipo="1999-01-22",
                 weburl="https://www.nvidia.com/", shares=24530.0, eps=1.71, beta=1.70,
                 dividend_yield=0.03, avg_volume=300.0),
    "AMZN": dict(name="Amazon.com Inc", price=180.0, industry="Retail", ipo="1997-05-15",
                 weburl="https://www.amazon.com/", shares=10490.0, eps=4.18, beta=1.15,
                 dividend_yield=0.0, avg_volume=40.0),
    "TSLA": dict(name="Tesla Inc", price=250.0, industry="Automobiles", ipo="2010-06-29",
                 weburl="https://www.tesla.com/", shares=3194.0, eps=3.10, beta=2.30,
                 dividend_yield=0.0, avg_volume=90.0),
    "GOOGL": dict(name="Alphabet Inc", price=170.0, industry="Media", ipo="2004-08-19",
                  weburl="https://abc.xyz/", shares=12300.0, eps=7.50, beta=1.05,
                  dividend_yield=0.47, avg_volume=25.0),
    "META": dict(name="Meta Platforms Inc", price=500.0, industry="Media", ipo="2012-05-18",
                 weburl="https://about.meta.com/", shares=2530.0, eps=21.0, beta=1.20,
                 dividend_yield=0.40, avg_volume=15.0),
    "JPM": dict(name="JPMorgan Chase & Co", price=200.0, industry="Banking", ipo="1969-03-05",
                weburl="https://www.jpmorganchase.com/", shares=2870.0, eps=16.2, beta=1.10,
                dividend_yield=2.30, avg_volume=9.0),
}

# Forex pairs without separators (EURUSD) and crypto base assets -> start price.
FOREX_PRICES = {"EURUSD": 1.08, "GBPUSD": 1.27, "USDJPY": 150.0, "AUDUSD": 0.66,
                "USDCHF": 0.88, "USDCAD": 1.36, "NZDUSD": 0.61, "EURJPY": 162.0}
CRYPTO_PRICES = {"BTC": 65000.0, "ETH": 3400.0, "SOL": 150.0, "BNB": 580.0, "XRP": 0.52,
                 "ADA": 0.45, "DOGE": 0.15, "AVAX": 35.0, "LTC": 80.0, "DOT": 7.0}
_QUOTE_ASSETS = ("USDT", "USDC", "BUSD", "USD", "EUR", "BTC")


def bare_ticker(symbol: str) -> str:
    """'OANDA:EUR_USD' -> 'EURUSD', 'BINANCE:BTCUSDT' -> 'BTCUSDT', 'AAPL' -> 'AAPL'."""
    bare = symbol.split(":", 1)[-1].upper()
    return "".join(ch for ch in bare if ch.isalnum() or ch == ".")


def crypto_base(symbol: str) -> str:
    bare = bare_ticker(symbol)
    for quote in _QUOTE_ASSETS:
        if bare.endswith(quote) and len(bare) > len(quote):
            return bare[: -len(quote)]
    return bare


def name_fraction(name: str, salt: str = "") -> float:
    """A stable number in [0, 1) from a name: Python's hash() is salted per process."""
    digest = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _log_uniform(lo: float, hi: float, u: float) -> float:
    return float(np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))))


def start_price(symbol: str, asset_class: str) -> float:
    """A realistic start price for known symbols, a stable made-up one for the others."""
    u = name_fraction(symbol, "price")
    if asset_class == "forex":
        bare = bare_ticker(symbol)
        if bare in FOREX_PRICES:
            return FOREX_PRICES[bare]
        return round(_log_uniform(80.0, 180.0, u), 3) if "JPY" in bare else round(_log_uniform(0.5, 2.0, u), 5)
    if asset_class == "crypto":
        base = crypto_base(symbol)
        return CRYPTO_PRICES.get(base, round(_log_uniform(0.05, 2000.0, u), 4))
    company = COMPANIES.get(bare_ticker(symbol))
    return company["price"] if company else round(_log_uniform(15.0, 600.0, u), 2)


def company(symbol: str) -> dict[str, Any]:
    """The company behind a stock symbol; unknown tickers get a stable invented one."""
    ticker = bare_ticker(symbol)
    if ticker in COMPANIES:
        return COMPANIES[ticker]
    u = name_fraction(symbol, "company")
    price = start_price(symbol, "stocks")
    return dict(name=f"{ticker.title()} Holdings Inc", price=price,
                industry=INDUSTRIES[int(u * len(INDUSTRIES))], ipo=f"{1980 + int(u * 40)}-06-15",
                weburl=f"https://{ticker.lower()}.example.invalid/", shares=round(200 + u * 4000, 1),
                eps=round(price / (12 + 30 * u), 2), beta=round(0.6 + 1.4 * u, 2),
                dividend_yield=round(3 * u, 2) if u < 0.6 else 0.0, avg_volume=round(2 + 40 * u, 1))


INDUSTRIES = ("Technology", "Banking", "Retail", "Pharmaceuticals", "Energy", "Media",
              "Semiconductors", "Automobiles", "Insurance", "Telecommunication")


def profile_payload(symbol: str, price: float) -> dict[str, Any]:
    """A Finnhub /stock/profile2 payload."""
    info = company(symbol)
    ticker = bare_ticker(symbol)
    phone = f"1555{int(name_fraction(symbol, 'phone') * 1e7):07d}"
    return {
        "country": "US",
        "currency": "USD",
        "exchange": "NASDAQ NMS - GLOBAL MARKET" if info["industry"] != "Banking" else "NEW YORK STOCK EXCHANGE, INC.",
        "finnhubIndustry": info["industry"],
        "ipo": info["ipo"],
        "logo": f"https://static.example.invalid/logo/{ticker}.png",
        "marketCapitalization": round(price * info["shares"], 2),
        "name": info["name"],
        "phone": phone,
        "shareOutstanding": info["shares"],
        "ticker": ticker,
        "weburl": info["weburl"],
    }


def metrics_payload(symbol: str, price: float, high_52w: float, low_52w: float,
                    rng: np.random.Generator) -> dict[str, Any]:
    """A Finnhub /stock/metric?metric=all payload around the simulated price.

    Earnings and volumes wobble a little from day to day so a daily refresh is not a no-op.
    """
    info = company(symbol)
    eps = info["eps"] * (1 + 0.01 * rng.standard_normal())
    avg_volume = info["avg_volume"] * float(np.exp(0.1 * rng.standard_normal()))
    metric = {
        "10DayAverageTradingVolume": round(avg_volume, 4),
        "3MonthAverageTradingVolume": round(info["avg_volume"], 4),
        "52WeekHigh": round(high_52w, 2),
        "52WeekLow": round(low_52w, 2),
        "beta": info["beta"],
        "dividendYieldIndicatedAnnual": info["dividend_yield"],
        "epsTTM": round(eps, 4),
        "epsAnnual": round(info["eps"], 4),
        "marketCapitalization": round(price * info["shares"], 2),
        "peNormalizedAnnual": round(price / info["eps"], 4),
        "peTTM": round(price / eps, 4),
        "netProfitMarginTTM": round(10 + 20 * name_fraction(symbol, "margin"), 4),
        "roeTTM": round(8 + 40 * name_fraction(symbol, "roe"), 4),
        "revenueGrowthTTMYoy": round(-5 + 25 * name_fraction(symbol, "growth"), 4),
    }
    return {"metric": metric, "metricType": "all", "symbol": symbol}


# ---- news -----------------------------------------------------------------------------------
NEWS_SOURCES = ("SimWire", "Market Pulse", "Example Business Daily", "Ticker Tape News")
_BANKS = ("Northbridge Capital", "Harbor & Finch", "Granite Securities", "Bluewater Partners")
_RATINGS = ("buy", "overweight", "neutral", "outperform", "hold")
_EVENTS = ("a product update", "a new partnership", "a share buyback", "a leadership change",
           "an investor day", "a cost-cutting plan", "an expansion in Asia")

_UP_BIG = ("{ticker} shares climb {pct:.1f}% in heavy trading",
           "{name} jumps {pct:.1f}% as buyers pile in",
           "{name} rallies {pct:.1f}% in the past hour")
_DOWN_BIG = ("{ticker} shares slide {pct:.1f}% as sellers take control",
             "{name} tumbles {pct:.1f}% in the past hour",
             "{name} drops {pct:.1f}% amid broad selling")
_UP_SMALL = ("{ticker} edges higher, up {pct:.1f}%", "{name} inches up {pct:.1f}% in quiet trade")
_DOWN_SMALL = ("{ticker} edges lower, down {pct:.1f}%", "{name} slips {pct:.1f}% in quiet trade")
_FLAT = ("{name} shares little changed as investors await fresh catalysts",
         "Analysts at {bank} reiterate {rating} rating on {name}",
         "{name} announces {event}",
         "{industry} stocks in focus: {name} among the most active names",
         "{name} schedules its quarterly earnings call")


def news_text(symbol: str, move: float, price: float, rng: np.random.Generator) -> tuple[str, str, str]:
    """(headline, summary, source) for a stock whose price moved by `move` (fraction) in the last hour.

    Big moves get move headlines so news lines up with what the charts show.
    """
    info = company(symbol)
    pct = abs(move) * 100
    if move >= 0.01:
        templates = _UP_BIG
    elif move <= -0.01:
        templates = _DOWN_BIG
    elif move >= 0.003:
        templates = _UP_SMALL
    elif move <= -0.003:
        templates = _DOWN_SMALL
    else:
        templates = _FLAT
    fields = dict(ticker=bare_ticker(symbol), name=info["name"], pct=pct, industry=info["industry"],
                  bank=_pick(_BANKS, rng), rating=_pick(_RATINGS, rng), event=_pick(_EVENTS, rng))
    headline = _pick(templates, rng).format(**fields)
    direction = "up" if move >= 0 else "down"
    summary = (f"Shares of {info['name']} ({fields['ticker']}) last traded at ${price:,.2f}, "
               f"{direction} {pct:.2f}% over the past hour. This story was generated by the "
               f"lakewatch market simulator.")
    return headline, summary, _pick(NEWS_SOURCES, rng)


_SURPRISES_UP = ("{name} beats earnings expectations and raises its outlook",
                 "{name} wins regulatory approval for {event_short}",
                 "{name} to be acquired at a premium, people familiar say")
_SURPRISES_DOWN = ("{name} cuts its full-year outlook", "{name} misses earnings expectations",
                   "Regulator opens probe into {name}")


def surprise_news_text(symbol: str, up: bool, rng: np.random.Generator) -> tuple[str, str, str]:
    """(headline, summary, source) of news that moves a stock: published before the price jumps."""
    info = company(symbol)
    headline = _pick(_SURPRISES_UP if up else _SURPRISES_DOWN, rng).format(
        name=info["name"], event_short="its new product")
    summary = (f"{info['name']} ({bare_ticker(symbol)}) news crossed the wires; the shares have yet to react. "
               f"This story was generated by the lakewatch market simulator.")
    return headline, summary, _pick(NEWS_SOURCES, rng)


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[int(rng.integers(len(options)))]
