"""The market simulator (ingestion/simulator.py): the source when no Finnhub key is set, and
the history the first model is trained on (`make backfill`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple


@dataclass(frozen=True)
class Simulator:
    sim_seed: int = 7
    # Trades/s over all symbols at mean seasonality with every market open. Live and backfilled
    # history (the first model's, `make backfill`) share it: a model trained on a slower history
    # would flag every live bar until its baseline filled with live ones (docs/model.md).
    sim_rate: float = 20.0
    sim_anomalies_per_hour: float = 1.0  # per symbol
    sim_market_hours: str = "us"  # "us": stocks trade 09:30-16:00 New York, weekdays; "always"
    sim_news_per_hour: float = 6.0  # per stock symbol
    # "clean": the five injected kinds on a calm market; "realistic" adds drifts, level shifts,
    # volatility regimes, news-led jumps, class-wide moves and microstructure noise (simulator.py).
    sim_realism: str = "clean"
    # A lasting change of one asset class's market from a moment on, not labelled (it is no anomaly):
    # "crypto@2026-12-05T10:00:00Z,volatility=3,trades=0.3" multiplies its volatility and trade rate
    # from then on. Empty: none. For drift tests and the drift benchmark (docs/model.md, Drift).
    sim_regime_shift: str = ""

    @property
    def regime_shift(self) -> "RegimeShift | None":
        return RegimeShift.parse(self.sim_regime_shift) if self.sim_regime_shift else None


class RegimeShift(NamedTuple):
    """LAKEWATCH_SIM_REGIME_SHIFT, read (ingestion/simulator.py applies it)."""
    asset_class: str
    at_ms: int
    volatility: float = 1.0
    trades: float = 1.0

    @classmethod
    def parse(cls, text: str) -> "RegimeShift":
        """From "<class>@<ISO time>[,volatility=<x>][,trades=<x>]"; a ValueError names what is wrong."""
        usage = "expected <class>@<ISO time>,volatility=<x>,trades=<x>"
        head, *options = [part.strip() for part in text.split(",")]
        asset_class, _, at = head.partition("@")
        try:
            when = datetime.fromisoformat(at.replace("Z", "+00:00"))
            factors = {key.strip(): float(value) for key, _, value in (o.partition("=") for o in options)}
        except ValueError:
            raise ValueError(f"LAKEWATCH_SIM_REGIME_SHIFT={text!r}: {usage}") from None
        if when.tzinfo is None or set(factors) - {"volatility", "trades"} or not all(v > 0 for v in factors.values()):
            raise ValueError(f"LAKEWATCH_SIM_REGIME_SHIFT={text!r}: {usage}, with a time zone and factors > 0")
        return cls(asset_class, int(when.timestamp() * 1000), **factors)

