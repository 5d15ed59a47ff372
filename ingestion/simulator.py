"""A market simulator that speaks Finnhub's formats, with labelled anomalies.

Finnhub cannot be reached in tests and needs a key in the demo, so this module stands in for
it: it emits websocket trade frames and /quote, /company-news, /stock/metric and
/stock/profile2 payloads that go through ingestion.records exactly like Finnhub's. It also
knows the ground truth: the anomalies it injects are published as labels, which is what the
anomaly model is trained and evaluated against.

Model, in short:
- Prices follow a geometric Brownian motion sampled exactly at each trade time, with a
  stochastic volatility (an Ornstein-Uhlenbeck log-volatility per symbol, updated each minute)
  around an annualised base vol per asset class. Prices are rounded to the symbol's tick size.
- Trades arrive as a Poisson process. `rate` trades/s are split evenly over all symbols (a
  closed market's share is not handed to the others, so crypto does not change pace when New
  York opens), times an intraday seasonality of mean 1 (a U over the US session for stocks, a daily
  cycle peaking in the Europe/US overlap for forex and crypto).
- market_hours="us": stocks trade 09:30-16:00 America/New_York on weekdays (exchange holidays
  are ignored), forex from Sunday 17:00 to Friday 17:00 New York time, crypto always.
  While a market is closed its price still drifts at a quarter of its vol, so it opens with a gap.
  market_hours="always": everything trades all the time (tests, demos at night); stocks then
  trade outside the session at the U's opening level, so the session has no step at its ends.
- Anomalies arrive per symbol as a Poisson process of `anomalies_per_hour` while the symbol is
  open, start on whole minutes (the model scores 1-minute bars), never overlap on a symbol (an
  arrival during an anomaly waits for the next free minute) and must end before the symbol's
  market closes. Label `magnitude` by kind:
    price_spike       signed relative jump (0.008 = +0.8%): 6-12 one-minute sigmas at the current
                      vol, held for 30% of the window, then reverting linearly; 1-2 minutes
    flash_crash       relative drop (-0.03 = -3%), reached in 20-60 s with x3 trade rate, then
                      recovered linearly over 3-8 minutes
    volume_burst      trade-rate multiplier (5-20); trade sizes grow by its square root
    volatility_shift  volatility multiplier (3-6) for 10-30 minutes
    frozen_feed       minutes without a single trade (3-10)

realism="realistic" makes the market harder to read, as real ones are (the model must hold on
more than the five kinds it was designed around). The draw then also holds:
    level_shift       signed relative jump (6-12 one-minute sigmas) reached in 5-20 s, kept for
                      good; labelled for 2 minutes
    drift             signed relative move (20-30 one-minute sigmas) spread over 30-60 minutes,
                      kept; labelled for the drift
    volatility_regime volatility multiplier (2-3) for 2-4 hours; labelled for its first 30 minutes;
                      never drawn while a regime is in force
    news_jump         stocks only: a news item about the stock, then 30-90 s later a kept jump of
                      6-12 one-minute sigmas; labelled from the news to 2 minutes after the jump
and the market has what is not an anomaly (tables.MARKET_EVENT_KINDS, published as labels too,
so the evaluation can count the alerts they draw):
    class_move        every open symbol of one class moves together by 6-10 one-minute sigmas over
                      2-6 minutes, kept (0.25 per class and hour): a market event
    tiny_trades       a burst of odd lots: 8-15x the trades at as much smaller sizes, 1-3 minutes
                      (0.5 per symbol and hour); not in forex, whose trades carry no size: there
                      it would be a volume_burst by every measure, an anomaly
and, always on, a bid-ask bounce of 0.3 one-minute sigmas on every trade and a lunch lull (stocks
trade at half their rate 12:00-13:00 New York).
Inside a volatility regime, the sizes given in one-minute sigmas (price_spike, level_shift,
drift, news_jump) are of the regime's volatility: the current vol is the vol in force.

A regime shift (`regime_shift`, LAKEWATCH_SIM_REGIME_SHIFT) multiplies one asset class's
volatility and trade rate from a moment on, for good and without a label: the market the
champion was trained on is gone, which is what drift detection must notice (model/drift.py).

Determinism: the simulator steps in fixed 1-second ticks on the epoch-second grid (the first
tick is cut short when start_ms is not a whole second). It computes whole minutes ahead, one
symbol at a time with numpy, and releases the ticks that end by `until`, so the output depends
only on the constructor arguments and the span simulated, never on how advance() calls chop
it. Every symbol draws from its own generators, keyed by its name (not its position), so
adding a symbol does not reshuffle the random streams of the others (their trade rate, a share
of the total, does change).
"""
from __future__ import annotations

import hashlib
import math
from collections import deque
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Sequence

import numpy as np

from ingestion import metrics, sim_content
from lakewatch import markets
from lakewatch.markets import MINUTE_MS, SESSION_CLOSE_MIN, SESSION_OPEN_MIN
from lakewatch.settings.simulator import RegimeShift
from lakewatch.tables import MARKET_EVENT_KINDS

ASSET_CLASSES = ("stocks", "forex", "crypto")
ANOMALY_KINDS = ("price_spike", "flash_crash", "volume_burst", "volatility_shift", "frozen_feed")
MARKET_HOURS = ("us", "always")
REALISM = ("clean", "realistic")
REALISTIC_KINDS = ("level_shift", "drift", "volatility_regime", "news_jump")
CLASS_MOVES_PER_HOUR = 0.25  # per asset class
TINY_TRADES_PER_HOUR = 0.5  # per symbol
HALF_SPREAD_SIGMAS = 0.3  # the bid-ask bounce, in one-minute sigmas of the base vol
LUNCH_MIN, LUNCH_FACTOR = (12 * 60, 13 * 60), 0.5  # New York local minutes, stocks' rate multiplier

TICK_MS = 1000

# Annualised vol, and the seconds of trading in a year it is spread over.
ANNUAL_VOL = {"stocks": 0.25, "forex": 0.08, "crypto": 0.60}
TRADING_SECONDS_PER_YEAR = {"stocks": 252 * 6.5 * 3600, "forex": 260 * 24 * 3600, "crypto": 365 * 24 * 3600}
# Share of `rate` per symbol, relative: equal, as the settings promise "split evenly".
RATE_WEIGHT = {"stocks": 1.0, "forex": 1.0, "crypto": 1.0}

LOG_VOL_STD = 0.35  # stationary std of log-volatility: vol mostly within x0.5..x2 of base
LOG_VOL_MEMORY = math.exp(-1 / 60)  # per minute: a vol regime lasts about an hour
CLOSED_VOL_FACTOR = 0.25

U_SHAPE_DEPTH = 2.0  # open/close trade 3x as much as midday
SESSION_MINUTES, DAY_MINUTES = SESSION_CLOSE_MIN - SESSION_OPEN_MIN, 24 * 60
# With market_hours="always" stocks also trade outside the session, at the U's level at the open
# and the close, so the session starts and ends without a step: a 1.8x jump in every stock's
# trades at 09:30 New York would be an anomaly nobody injected or labelled (a model trained on
# hours before it flagged a third of the live stock bars after it). The day is scaled to mean 1.
U_EDGE = (1 + U_SHAPE_DEPTH) / (1 + U_SHAPE_DEPTH / 3)
ALWAYS_DAY_MEAN = (SESSION_MINUTES + (DAY_MINUTES - SESSION_MINUTES) * U_EDGE) / DAY_MINUTES

FLASH_CRASH_DEPTH = {"stocks": (0.02, 0.05), "forex": (0.005, 0.015), "crypto": (0.03, 0.08)}
SIZELESS_CLASSES = ("forex",)  # Finnhub's forex ticks carry no volume: no size, no odd lots

_FULL_TICK_STARTS = np.arange(0, MINUTE_MS, TICK_MS, dtype=np.float64)
_FULL_TICK_DURS = np.full(MINUTE_MS // TICK_MS, float(TICK_MS))


@dataclass
class SimBatch:
    trade_frames: list[dict] = field(default_factory=list)  # Finnhub ws frames
    quotes: list[tuple[str, dict]] = field(default_factory=list)  # (symbol, /quote payload)
    news: list[tuple[str, dict]] = field(default_factory=list)  # (symbol, /company-news item)
    fundamentals: list[tuple[str, str, dict]] = field(default_factory=list)  # (symbol, "metrics"|"profile", payload)
    labels: list[dict] = field(default_factory=list)  # anomaly labels started in this batch

    @property
    def trade_count(self) -> int:
        return sum(len(frame["data"]) for frame in self.trade_frames)


# ---- calendar -------------------------------------------------------------------------------
def _seasonality(asset_class: str, clock: markets.Clock, market_hours: str) -> float:
    if asset_class == "stocks":
        if SESSION_OPEN_MIN <= clock.ny_minute < SESSION_CLOSE_MIN:
            x = (clock.ny_minute + 0.5 - SESSION_OPEN_MIN) / SESSION_MINUTES
            level = (1 + U_SHAPE_DEPTH * (2 * x - 1) ** 2) / (1 + U_SHAPE_DEPTH / 3)
        else:
            level = U_EDGE  # only reached with market_hours="always"
        return level if market_hours == "us" else level / ALWAYS_DAY_MEAN
    depth, peak_hour = (0.5, 14.0) if asset_class == "forex" else (0.3, 15.0)
    return 1 + depth * math.cos(2 * math.pi * (clock.utc_hour - peak_hour) / 24)


def volume_seasonality(asset_class: str, ms: int, market_hours: str = "us") -> float:
    """The trade-rate multiplier (mean 1 over a day or a session) in the minute holding `ms`."""
    return _seasonality(asset_class, markets.clock(ms - ms % MINUTE_MS), market_hours)


# ---- per-symbol state ----------------------------------------------------------------------
def _price_decimals(symbol: str, asset_class: str, price: float) -> int:
    if asset_class == "stocks":
        return 2
    if asset_class == "forex":
        return 3 if "JPY" in symbol.upper() else 5
    return 2 if price >= 10 else 4 if price >= 0.1 else 6


def _size_decimals(price: float) -> int:
    """Crypto lot step: small for dear coins (0.00001 BTC), coarse for cheap ones."""
    return 5 if price >= 1000 else 4 if price >= 100 else 3 if price >= 10 else 2 if price >= 1 else 0


def _generator(seed: int, symbol: str, purpose: int) -> np.random.Generator:
    # spawn_key is what SeedSequence.spawn() sets; keying it by name instead of position keeps
    # each symbol's streams fixed whatever the other symbols are.
    name_key = int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:4], "big")
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(name_key, purpose))))


def _sign(rng: np.random.Generator) -> float:
    """Up or down with even odds: one draw, so the streams stay as they were."""
    return 1.0 if rng.random() < 0.5 else -1.0


@dataclass
class _Shift:
    """A move the price keeps: log_jump reached linearly from start to end."""
    start: int
    end: int
    log_jump: float

    def at(self, times: np.ndarray) -> np.ndarray:
        return self.log_jump * np.clip((times - self.start) / (self.end - self.start), 0.0, 1.0)


@dataclass
class _Anomaly:
    kind: str
    start: int
    end: int
    magnitude: float
    log_jump: float = 0.0  # price kinds: the log-price offset at its extreme
    drop_end: int = 0  # flash_crash: when the bottom is reached
    multiplier: float = 1.0  # volume_burst, volatility_shift, volatility_regime
    shift: _Shift | None = None  # level_shift, drift, news_jump: the move the price keeps

    def tick_effects(self, starts: np.ndarray):
        """(rate, vol, size) multipliers per tick, None where this anomaly does not act."""
        inside = (starts >= self.start) & (starts < self.end)
        if not inside.any():
            return None, None, None
        if self.kind == "volume_burst":
            return np.where(inside, self.multiplier, 1.0), None, np.where(inside, math.sqrt(self.multiplier), 1.0)
        if self.kind == "frozen_feed":
            return np.where(inside, 0.0, 1.0), None, None
        if self.kind == "volatility_shift":
            return None, np.where(inside, self.multiplier, 1.0), None
        if self.kind == "flash_crash":  # panic selling comes with volume
            dropping = (starts >= self.start) & (starts < self.drop_end)
            return np.where(dropping, 3.0, 1.0), None, np.where(dropping, 2.0, 1.0)
        return None, None, None

    def price_offset(self, times: np.ndarray) -> np.ndarray | None:
        """Log-price offset at trade times (ms), for the kinds that move the price."""
        if self.kind == "price_spike":
            x = (times - self.start) / (self.end - self.start)
            shape = np.clip((1 - x) / 0.7, 0.0, 1.0)  # hold 30% of the window, then revert
            return np.where((x >= 0) & (x < 1), self.log_jump * shape, 0.0)
        if self.kind == "flash_crash":
            down = np.clip((times - self.start) / (self.drop_end - self.start), 0.0, 1.0)
            back = np.clip((times - self.drop_end) / (self.end - self.drop_end), 0.0, 1.0)
            inside = (times >= self.start) & (times < self.end)
            return np.where(inside, self.log_jump * (down - back), 0.0)
        return None


class _Symbol:
    """Everything the simulator remembers about one symbol between minutes."""

    def __init__(self, name: str, asset_class: str, seed: int):
        self.name = name
        self.asset_class = asset_class
        self.market_rng = _generator(seed, name, 0)
        self.anomaly_rng = _generator(seed, name, 1)
        self.news_rng = _generator(seed, name, 2)
        self.fundamentals_rng = _generator(seed, name, 3)
        # Its own stream, so the volatility regime does not depend on how many trades were drawn.
        self.vol_rng = _generator(seed, name, 4)
        # realism="realistic" only, on streams of their own: the clean market stays the same.
        self.spread_rng = _generator(seed, name, 5)
        self.event_rng = _generator(seed, name, 6)
        self.shifts: list[_Shift] = []  # moves the price keeps, under way
        self.regime: tuple[int, float] | None = None  # (until ms, volatility multiplier)
        self.tiny: tuple[int, int, float] | None = None  # a burst of odd lots: (start, end, multiplier)

        price = sim_content.start_price(name, asset_class)
        self.decimals = _price_decimals(name, asset_class, price)
        self.size_decimals = _size_decimals(price)
        self.sigma_sec = ANNUAL_VOL[asset_class] / math.sqrt(TRADING_SECONDS_PER_YEAR[asset_class])
        self.log_price = math.log(price)
        self.log_vol = LOG_VOL_STD * float(self.vol_rng.standard_normal())

        self.day_key: int | None = None
        self.prev_close = round(price * math.exp(0.01 * float(self.market_rng.standard_normal())), self.decimals)
        self.day_open = self.day_high = self.day_low = None
        self.last_price = round(price, self.decimals)
        self.last_trade_ms: int | None = None
        self.high_52w = price * (1 + float(self.fundamentals_rng.uniform(0.10, 0.35)))
        self.low_52w = price * (1 - float(self.fundamentals_rng.uniform(0.15, 0.35)))
        self.minute_closes: deque[float] = deque(maxlen=61)  # for news: the move of the last hour

        self.backlog = 0  # anomaly arrivals waiting for the current one to end
        self.active: _Anomaly | None = None

    @property
    def sigma(self) -> float:
        """Per-second vol now; exp(-std^2) keeps the mean variance at the base one."""
        return self.sigma_sec * math.exp(self.log_vol - LOG_VOL_STD**2)

    def hour_move(self) -> float:
        return self.minute_closes[-1] / self.minute_closes[0] - 1 if self.minute_closes else 0.0


# ---- the simulator --------------------------------------------------------------------------
class MarketSimulator:
    """Generates Finnhub-format market data on a simulated clock; see the module docstring."""

    def __init__(self, symbols: dict[str, Sequence[str]], seed: int, start_ms: int, rate: float,
                 anomalies_per_hour: float, market_hours: str = "us", news_per_hour: float = 6.0,
                 realism: str = "clean", regime_shift: RegimeShift | None = None):
        if market_hours not in MARKET_HOURS:
            raise ValueError(f"market_hours must be one of {MARKET_HOURS}, not {market_hours!r}")
        if realism not in REALISM:
            raise ValueError(f"realism must be one of {REALISM}, not {realism!r}")
        for name, value in (("rate", rate), ("anomalies_per_hour", anomalies_per_hour),
                            ("news_per_hour", news_per_hour)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, not {value!r}")
        unknown = set(symbols) - set(ASSET_CLASSES)
        if unknown:
            raise ValueError(f"unknown asset classes {sorted(unknown)}; use {ASSET_CLASSES}")
        self._symbols: list[_Symbol] = []
        for asset_class in ASSET_CLASSES:
            for name in symbols.get(asset_class, ()):
                if any(s.name == name for s in self._symbols):
                    raise ValueError(f"symbol {name!r} is listed twice")
                self._symbols.append(_Symbol(name, asset_class, seed))

        self.seed = seed
        self.rate = float(rate)
        self.anomalies_per_hour = float(anomalies_per_hour)
        self.market_hours = market_hours
        self.news_per_hour = float(news_per_hour)
        self.realistic = realism == "realistic"
        self.regime_shift = regime_shift
        self._class_rngs = {c: _generator(seed, f"class:{c}", 0) for c in ASSET_CLASSES}
        self._now_ms = int(start_ms)
        self._generated_to = int(start_ms)  # everything before this is computed and queued
        self._ny_day: int | None = None
        # Output computed ahead of the clock: (release_ms, item), in release order. An item is
        # released with the tick it happens in, i.e. when that tick's end is reached.
        self._frames: deque = deque()
        self._quotes: deque = deque()
        self._news: deque = deque()
        self._fundamentals: deque = deque()
        self._labels: deque = deque()

    @classmethod
    def from_settings(cls, settings, start_ms: int, rate: float | None = None) -> "MarketSimulator":
        return cls({"stocks": settings.stocks, "forex": settings.forex, "crypto": settings.crypto},
                   seed=settings.sim_seed, start_ms=start_ms,
                   rate=settings.sim_rate if rate is None else rate,
                   anomalies_per_hour=settings.sim_anomalies_per_hour,
                   market_hours=settings.sim_market_hours, news_per_hour=settings.sim_news_per_hour,
                   realism=settings.sim_realism, regime_shift=settings.regime_shift)

    @property
    def now_ms(self) -> int:
        return self._now_ms

    @property
    def symbols(self) -> dict[str, str]:
        """Symbol -> asset class, in output order."""
        return {s.name: s.asset_class for s in self._symbols}

    def advance(self, until_ms: int) -> SimBatch:
        """Everything that happens in the whole ticks between now and until_ms; moves the clock.

        A tick that until_ms cuts in two is left for the next call. The batch holds the whole
        span in memory, so a backfill of hours at a high rate should advance in chunks.
        """
        while self._generated_to < until_ms:
            self._simulate_minute()
        batch = SimBatch(_release(self._frames, until_ms), _release(self._quotes, until_ms),
                         _release(self._news, until_ms), _release(self._fundamentals, until_ms),
                         _release(self._labels, until_ms))
        for label in batch.labels:
            if label["kind"] not in MARKET_EVENT_KINDS:
                metrics.SIM_ANOMALIES.labels(label["kind"]).inc()
        self._now_ms = max(self._now_ms, until_ms - until_ms % TICK_MS)
        return batch

    # ---- one minute -------------------------------------------------------------------------
    def _simulate_minute(self) -> None:
        first = self._generated_to
        minute = first - first % MINUTE_MS
        minute_end = minute + MINUTE_MS
        starts, durations = _tick_grid(first, minute)
        first_release = int(starts[0] + durations[0])
        clock = markets.clock(minute)
        is_open = [markets.is_open(s.asset_class, clock, self.market_hours) for s in self._symbols]
        # A fixed share per symbol: crypto must not trade differently because New York opened.
        total_weight = sum(RATE_WEIGHT[s.asset_class] for s in self._symbols)

        self._queue_fundamentals(clock, first_release)
        if self.realistic and first == minute:
            self._maybe_move_classes(minute, is_open)
        frames: list[tuple[int, dict]] = []
        news: list[tuple[int, int, str, dict]] = []
        for index, (symbol, open_now) in enumerate(zip(self._symbols, is_open)):
            self._roll_day(symbol, clock)
            symbol.log_vol = LOG_VOL_MEMORY * symbol.log_vol + LOG_VOL_STD * math.sqrt(
                1 - LOG_VOL_MEMORY**2) * float(symbol.vol_rng.standard_normal())
            if symbol.asset_class == "stocks":  # before the trades: news cannot know this minute's prices
                news.extend((t, index, symbol.name, item) for t, item in self._news_items(symbol, first, minute_end))
            if open_now:
                if first == minute:  # anomalies start on whole minutes only
                    started = self._maybe_start_anomaly(symbol, minute)
                    if started is not None and started.kind == "news_jump":  # the news before the move
                        published = minute + int(symbol.news_rng.integers(1000, 5000))
                        news.append((published, index, symbol.name, self._surprise_news(symbol, started, published)))
                    if self.realistic and symbol.asset_class not in SIZELESS_CLASSES:
                        self._maybe_tiny_trades(symbol, minute)
                rate = self.rate * RATE_WEIGHT[symbol.asset_class] / total_weight * _seasonality(
                    symbol.asset_class, clock, self.market_hours)
                if self.realistic and symbol.asset_class == "stocks" and LUNCH_MIN[0] <= clock.ny_minute < LUNCH_MIN[1]:
                    rate *= LUNCH_FACTOR
                frames.extend(self._trades(symbol, starts, durations, rate, minute_end))
                self._quotes.append((minute_end, (symbol.name, self._quote(symbol, minute_end))))
            else:
                symbol.backlog = 0  # an arrival that could not fit before the close is dropped
                symbol.log_price += CLOSED_VOL_FACTOR * symbol.sigma * math.sqrt(60) * float(
                    symbol.market_rng.standard_normal())
            symbol.minute_closes.append(symbol.last_price)

        frames.sort(key=itemgetter(0))  # stable: tick order, then symbol order within a tick
        self._frames.extend(frames)
        self._queue_news(news, minute)
        self._generated_to = minute_end

    def _trades(self, symbol: _Symbol, starts: np.ndarray, durations: np.ndarray, rate: float,
                minute_end: int) -> list[tuple[int, dict]]:
        """This minute's trades of one symbol, as (tick end, frame) pairs."""
        rng = symbol.market_rng
        anomaly = symbol.active
        rate_x, vol_x, size_x = anomaly.tick_effects(starts) if anomaly else (None, None, None)
        if self.realistic:
            rate_x, vol_x, size_x = _market_effects(symbol, starts, rate_x, vol_x, size_x)
        shift = self.regime_shift
        if shift is not None and shift.asset_class == symbol.asset_class and starts[-1] >= shift.at_ms:
            after, ones = starts >= shift.at_ms, np.ones(len(starts))
            rate_x = (ones if rate_x is None else rate_x) * np.where(after, shift.trades, 1.0)
            vol_x = (ones if vol_x is None else vol_x) * np.where(after, shift.volatility, 1.0)
        expected = rate * durations / 1000.0
        counts = rng.poisson(expected if rate_x is None else expected * rate_x)
        n = int(counts.sum())
        tick_of = np.repeat(np.arange(len(starts)), counts)
        times = np.sort(starts[tick_of] + rng.random(n) * durations[tick_of])

        # Brownian log-price sampled at every trade and at the minute's end.
        event_times = np.append(times, float(minute_end))
        gaps = np.diff(event_times, prepend=starts[0]) / 1000.0
        sigma = symbol.sigma if vol_x is None else symbol.sigma * np.append(vol_x[tick_of], vol_x[-1])
        path = symbol.log_price + np.cumsum(np.sqrt(gaps) * sigma * rng.standard_normal(n + 1))
        symbol.shifts = [shift for shift in symbol.shifts if shift.end > starts[0]]
        for shift in symbol.shifts:  # the kept moves, from where they stood when this minute began
            path = path + shift.at(event_times) - shift.at(starts[:1])
        symbol.log_price = float(path[-1])
        if n == 0:
            return []
        log_prices = path[:-1]
        offset = anomaly.price_offset(times) if anomaly else None
        if offset is not None:
            log_prices = log_prices + offset
        if self.realistic:  # bid-ask bounce: a trade hits the bid or lifts the offer
            half_spread = HALF_SPREAD_SIGMAS * symbol.sigma_sec * math.sqrt(60)
            log_prices = log_prices + half_spread * symbol.spread_rng.choice((-1.0, 1.0), n)
        prices = np.round(np.exp(log_prices), symbol.decimals)
        self._update_day(symbol, prices, int(times[-1]))

        items = self._items(symbol, prices, times.astype(np.int64), None if size_x is None else size_x[tick_of])
        bounds = np.concatenate(([0], np.cumsum(counts))).tolist()
        tick_ends = (starts + durations).astype(np.int64).tolist()
        return [(tick_ends[k], {"type": "trade", "data": items[bounds[k]:bounds[k + 1]]})
                for k in np.flatnonzero(counts).tolist()]

    def _items(self, symbol: _Symbol, prices: np.ndarray, times: np.ndarray,
               size_x: np.ndarray | None) -> list[dict]:
        """Finnhub trade items; the list comprehensions are the per-trade hot loop."""
        rng, name, n = symbol.market_rng, symbol.name, len(prices)
        p, t = prices.tolist(), times.tolist()
        if symbol.asset_class in SIZELESS_CLASSES:
            return [{"s": name, "p": pi, "t": ti, "v": 0, "c": []} for pi, ti in zip(p, t)]
        size = rng.lognormal(0.0, 1.1, n)  # heavy-tailed
        if size_x is not None:
            size = size * size_x
        if symbol.asset_class == "crypto":
            notional_usd = 250.0 * size
            lot = 10.0 ** -symbol.size_decimals
            v = np.maximum(np.round(notional_usd / prices, symbol.size_decimals), lot).tolist()
            return [{"s": name, "p": pi, "t": ti, "v": vi, "c": []} for pi, ti, vi in zip(p, t, v)]
        kind = rng.random(n)  # < 0.45: round lots (100, 200, ...), else odd lots around 30 shares
        v = np.where(kind < 0.45, 100 * np.maximum(1.0, np.rint(size)), np.maximum(1.0, np.rint(30 * size)))
        extra_condition = (rng.random(n) < 0.05).tolist()
        return [{"s": name, "p": pi, "t": ti, "v": vi, "c": ["1", "12"] if xi else ["1"]}
                for pi, ti, vi, xi in zip(p, t, v.astype(np.int64).tolist(), extra_condition)]

    # ---- anomalies --------------------------------------------------------------------------
    def _maybe_start_anomaly(self, symbol: _Symbol, minute: int) -> _Anomaly | None:
        symbol.backlog += int(symbol.anomaly_rng.poisson(self.anomalies_per_hour / 60))
        if symbol.active and symbol.active.end <= minute:
            symbol.active = None
        if symbol.backlog == 0 or symbol.active:
            return None
        anomaly = self._draw_anomaly(symbol, minute)
        if not markets.market_open(symbol.asset_class, anomaly.end - 1, self.market_hours):
            return None  # would run into the close: retry next minute with a fresh draw
        symbol.backlog -= 1
        symbol.active = anomaly
        if anomaly.shift is not None:
            symbol.shifts.append(anomaly.shift)
        if anomaly.kind == "volatility_regime":  # outlasts its label: the new regime is the news
            symbol.regime = (minute + int(symbol.anomaly_rng.uniform(2, 4) * 3_600_000), anomaly.multiplier)
        self._label(symbol, anomaly.kind, anomaly.start, anomaly.end, anomaly.magnitude)
        return anomaly

    def _label(self, symbol: _Symbol, kind: str, start: int, end: int, magnitude: float) -> None:
        # A market event may start in the same minute as an anomaly of the symbol: its id says its kind.
        suffix = f"-{kind}" if kind in MARKET_EVENT_KINDS else ""
        self._labels.append((start + TICK_MS, {
            "anomaly_id": f"sim-{self.seed}-{symbol.name}-{start}{suffix}",
            "symbol": symbol.name,
            "asset_class": symbol.asset_class,
            "kind": kind,
            "start_ts": start,
            "end_ts": end,
            "magnitude": magnitude,
            "source": "simulator",
        }))

    def _draw_anomaly(self, symbol: _Symbol, start: int) -> _Anomaly:
        rng = symbol.anomaly_rng
        kinds = ANOMALY_KINDS
        regime = symbol.regime if symbol.regime is not None and symbol.regime[0] > start else None
        if self.realistic:
            # news_jump needs news, which only stocks have. A regime does not start inside another:
            # it would replace one multiplier of 2-3 with another, a change its label would claim
            # and the market would not show.
            kinds += tuple(k for k in REALISTIC_KINDS if (k != "news_jump" or symbol.asset_class == "stocks")
                           and (k != "volatility_regime" or regime is None))
        kind = kinds[int(rng.integers(len(kinds)))]
        # Sizes are in sigmas of the volatility in force, a regime's included, so a move stands out
        # in calm and busy markets alike: 25 sigmas of the calm market are 10 of a regime's.
        one_minute = symbol.sigma * (regime[1] if regime else 1.0) * math.sqrt(60)
        if kind in ("level_shift", "news_jump"):
            log_jump = _sign(rng) * float(rng.uniform(6, 12)) * one_minute
            moves_at = start + (int(rng.integers(30, 91)) * 1000 if kind == "news_jump" else 0)
            shift = _Shift(moves_at, moves_at + int(rng.integers(5, 21)) * 1000, log_jump)
            return _Anomaly(kind, start, moves_at + 120_000, round(math.expm1(log_jump), 6), shift=shift)
        if kind == "drift":
            log_move = _sign(rng) * float(rng.uniform(20, 30)) * one_minute
            end = start + int(rng.integers(30, 61)) * MINUTE_MS
            return _Anomaly(kind, start, end, round(math.expm1(log_move), 6), shift=_Shift(start, end, log_move))
        if kind == "volatility_regime":
            multiplier = float(rng.uniform(2, 3))
            return _Anomaly(kind, start, start + 30 * MINUTE_MS, round(multiplier, 6), multiplier=multiplier)
        if kind == "price_spike":
            seconds = int(rng.integers(60, 121))
            log_jump = _sign(rng) * float(rng.uniform(6, 12)) * one_minute
            return _Anomaly(kind, start, start + seconds * 1000, round(math.expm1(log_jump), 6), log_jump=log_jump)
        if kind == "flash_crash":
            depth = float(rng.uniform(*FLASH_CRASH_DEPTH[symbol.asset_class]))
            drop_s, recovery_s = int(rng.integers(20, 61)), int(rng.integers(180, 481))
            return _Anomaly(kind, start, start + (drop_s + recovery_s) * 1000, round(-depth, 6),
                            log_jump=math.log1p(-depth), drop_end=start + drop_s * 1000)
        if kind == "volume_burst":
            seconds, multiplier = int(rng.integers(60, 181)), float(rng.uniform(5, 20))
            return _Anomaly(kind, start, start + seconds * 1000, round(multiplier, 6), multiplier=multiplier)
        if kind == "volatility_shift":
            seconds, multiplier = int(rng.integers(600, 1801)), float(rng.uniform(3, 6))
            return _Anomaly(kind, start, start + seconds * 1000, round(multiplier, 6), multiplier=multiplier)
        seconds = int(rng.integers(180, 601))
        return _Anomaly(kind, start, start + seconds * 1000, round(seconds / 60, 6))

    # ---- what is not an anomaly (realism="realistic") ---------------------------------------
    def _maybe_move_classes(self, minute: int, is_open: list[bool]) -> None:
        """A market event: every symbol of one class moves together, and keeps the move."""
        for asset_class, rng in self._class_rngs.items():
            if rng.poisson(CLASS_MOVES_PER_HOUR / 60) == 0:
                continue
            end = minute + int(rng.integers(120, 361)) * 1000
            sigmas = _sign(rng) * float(rng.uniform(6, 10))
            members = [(s, open_now) for s, open_now in zip(self._symbols, is_open) if s.asset_class == asset_class]
            if not members or not all(open_now for _, open_now in members) \
                    or not markets.market_open(asset_class, end - 1, self.market_hours):
                continue
            for symbol, _ in members:  # each at its own base vol: the same surprise for all
                log_move = sigmas * symbol.sigma_sec * math.sqrt(60)
                symbol.shifts.append(_Shift(minute, end, log_move))
                self._label(symbol, "class_move", minute, end, round(math.expm1(log_move), 6))

    def _maybe_tiny_trades(self, symbol: _Symbol, minute: int) -> None:
        rng = symbol.event_rng
        if rng.poisson(TINY_TRADES_PER_HOUR / 60) == 0 or (symbol.tiny and symbol.tiny[1] > minute):
            return
        end, multiplier = minute + int(rng.integers(60, 181)) * 1000, float(rng.uniform(8, 15))
        if not markets.market_open(symbol.asset_class, end - 1, self.market_hours):
            return
        symbol.tiny = (minute, end, multiplier)
        self._label(symbol, "tiny_trades", minute, end, round(multiplier, 6))

    @staticmethod
    def _surprise_news(symbol: _Symbol, anomaly: _Anomaly, published: int) -> dict:
        headline, summary, source = sim_content.surprise_news_text(symbol.name, anomaly.shift.log_jump > 0,
                                                                   symbol.news_rng)
        return {"category": "company", "datetime": published // 1000, "headline": headline, "image": "",
                "related": symbol.name, "source": source, "summary": summary}

    # ---- quotes, news, fundamentals ---------------------------------------------------------
    def _roll_day(self, symbol: _Symbol, clock: markets.Clock) -> None:
        day = clock.utc_day if symbol.asset_class == "crypto" else clock.ny_day
        if day == symbol.day_key:
            return
        if symbol.day_key is not None and symbol.day_high is not None:
            symbol.prev_close = symbol.last_price
            symbol.high_52w = max(symbol.high_52w, symbol.day_high)
            symbol.low_52w = min(symbol.low_52w, symbol.day_low)
        symbol.day_key = day
        symbol.day_open = symbol.day_high = symbol.day_low = None

    @staticmethod
    def _update_day(symbol: _Symbol, prices: np.ndarray, last_ms: int) -> None:
        high, low = float(prices.max()), float(prices.min())
        if symbol.day_open is None:
            symbol.day_open, symbol.day_high, symbol.day_low = float(prices[0]), high, low
        else:
            symbol.day_high, symbol.day_low = max(symbol.day_high, high), min(symbol.day_low, low)
        symbol.last_price = float(prices[-1])
        symbol.last_trade_ms = last_ms

    @staticmethod
    def _quote(symbol: _Symbol, minute_end: int) -> dict:
        """Finnhub /quote: the day so far, c being the last trade."""
        c, pc, dec = symbol.last_price, symbol.prev_close, symbol.decimals
        last_ms = symbol.last_trade_ms if symbol.last_trade_ms is not None else minute_end
        return {
            "c": c,
            "d": round(c - pc, dec) + 0.0,  # + 0.0 turns -0.0 into 0.0
            "dp": round((c / pc - 1) * 100, 4) + 0.0,
            "h": symbol.day_high if symbol.day_high is not None else c,
            "l": symbol.day_low if symbol.day_low is not None else c,
            "o": symbol.day_open if symbol.day_open is not None else c,
            "pc": pc,
            "t": last_ms // 1000,
        }

    def _news_items(self, symbol: _Symbol, first: int, minute_end: int) -> list[tuple[int, dict]]:
        """(time ms, item without id) for the news of one stock in this minute."""
        rng = symbol.news_rng
        count = int(rng.poisson(self.news_per_hour / 60 * (minute_end - first) / MINUTE_MS))
        items = []
        for t in sorted(int(first + rng.random() * (minute_end - first)) for _ in range(count)):
            headline, summary, source = sim_content.news_text(symbol.name, symbol.hour_move(), symbol.last_price, rng)
            items.append((t, {"category": "company", "datetime": t // 1000, "headline": headline,
                              "image": "", "related": symbol.name, "source": source, "summary": summary}))
        return items

    def _queue_news(self, news: list[tuple[int, int, str, dict]], minute: int) -> None:
        # id = minute number * 1000 + rank in the minute: ids grow with simulated time, so a
        # simulator restarted later never reuses an id an earlier run already published.
        news.sort(key=itemgetter(0, 1))
        for rank, (t, _, name, item) in enumerate(news):
            news_id = (minute // MINUTE_MS) * 1000 + rank
            item = {**item, "id": news_id, "url": f"https://news.example.invalid/{news_id}"}
            self._news.append((t - t % TICK_MS + TICK_MS, (name, dict(sorted(item.items())))))

    def _queue_fundamentals(self, clock: markets.Clock, release: int) -> None:
        first_time = self._ny_day is None
        if clock.ny_day == self._ny_day:
            return
        self._ny_day = clock.ny_day
        for symbol in self._symbols:
            if symbol.asset_class != "stocks":
                continue
            price = symbol.last_price
            if first_time:
                self._fundamentals.append((release, (symbol.name, "profile", sim_content.profile_payload(symbol.name, price))))
            metric = sim_content.metrics_payload(symbol.name, price, max(symbol.high_52w, price),
                                                 min(symbol.low_52w, price), symbol.fundamentals_rng)
            self._fundamentals.append((release, (symbol.name, "metrics", metric)))


def _market_effects(symbol: _Symbol, starts: np.ndarray, rate_x, vol_x, size_x):
    """The anomaly's (rate, vol, size) multipliers per tick with the realistic market's on top:
    a volatility regime, a burst of odd lots."""
    ones = np.ones(len(starts))
    if symbol.regime is not None:
        until, multiplier = symbol.regime
        if until <= starts[0]:
            symbol.regime = None
        else:
            vol_x = (ones if vol_x is None else vol_x) * np.where(starts < until, multiplier, 1.0)
    if symbol.tiny is not None:
        start, end, multiplier = symbol.tiny
        inside = (starts >= start) & (starts < end)
        if inside.any():
            rate_x = (ones if rate_x is None else rate_x) * np.where(inside, multiplier, 1.0)
            size_x = (ones if size_x is None else size_x) * np.where(inside, 1 / multiplier, 1.0)
    return rate_x, vol_x, size_x


def _tick_grid(first: int, minute: int) -> tuple[np.ndarray, np.ndarray]:
    """Start and length (ms) of the 1-second ticks from `first` to the end of its minute."""
    if first == minute:
        return minute + _FULL_TICK_STARTS, _FULL_TICK_DURS
    aligned = first - first % TICK_MS + (TICK_MS if first % TICK_MS else 0)
    starts = np.arange(aligned, minute + MINUTE_MS, TICK_MS, dtype=np.float64)
    if aligned != first:
        starts = np.insert(starts, 0, float(first))
    return starts, np.diff(starts, append=float(minute + MINUTE_MS))


def _release(queue: deque, until_ms: int) -> list:
    out = []
    while queue and queue[0][0] <= until_ms:
        out.append(queue.popleft()[1])
    return out
