"""The market simulator: deterministic, Finnhub-shaped, and its labelled anomalies are real."""
from __future__ import annotations

import dataclasses
import json
import math
from collections import defaultdict
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from prometheus_client import REGISTRY

from ingestion import records, sim_content
from ingestion.simulator import (
    ANOMALY_KINDS,
    REALISTIC_KINDS,
    MarketSimulator,
    SimBatch,
    volume_seasonality,
)
from lakewatch.markets import market_open
from lakewatch.settings import Settings
from lakewatch.tables import MARKET_EVENT_KINDS

SETTINGS = Settings()
SYMBOLS = {"stocks": SETTINGS.stocks, "forex": SETTINGS.forex, "crypto": SETTINGS.crypto}
ALL_SYMBOLS = SETTINGS.symbols
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = 60_000
HOUR = 3_600_000


def utc_ms(*args) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp() * 1000)


def ny_ms(*args) -> int:
    return int(datetime(*args, tzinfo=NEW_YORK).timestamp() * 1000)


WEDNESDAY = utc_ms(2024, 3, 6, 15, 0)  # 10:00 in New York
SATURDAY = utc_ms(2024, 3, 9, 15, 0)


def make(rate=200.0, seed=7, start=WEDNESDAY, anomalies=1.0, hours="always", news=6.0, symbols=SYMBOLS,
         realism="clean"):
    return MarketSimulator(symbols, seed=seed, start_ms=start, rate=rate, anomalies_per_hour=anomalies,
                           market_hours=hours, news_per_hour=news, realism=realism)


def run(sim: MarketSimulator, until: int, step: int | None = None) -> SimBatch:
    """Advance to `until` in steps of `step` ms (one call when None) and merge the batches."""
    total = SimBatch()
    stops = [until] if step is None else list(range(sim.now_ms + step, until, step)) + [until]
    for stop in stops:
        batch = sim.advance(stop)
        for name in ("trade_frames", "quotes", "news", "fundamentals", "labels"):
            getattr(total, name).extend(getattr(batch, name))
    return total


def dump(batch: SimBatch) -> str:
    return json.dumps([batch.trade_frames, batch.quotes, batch.news, batch.fundamentals, batch.labels])


def trades_of(batch: SimBatch) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """symbol -> (trade times ms, prices)."""
    rows = defaultdict(list)
    for frame in batch.trade_frames:
        for item in frame["data"]:
            rows[item["s"]].append((item["t"], item["p"]))
    return {s: (np.array([r[0] for r in v]), np.array([r[1] for r in v])) for s, v in rows.items()}


# ---- determinism ---------------------------------------------------------------------------
@pytest.mark.parametrize("start", [WEDNESDAY, WEDNESDAY + 437], ids=["whole-second", "mid-second"])
def test_same_seed_gives_the_same_stream_however_the_span_is_chopped(start):
    end = start + 10 * MINUTE
    whole = run(make(rate=50, start=start, anomalies=30, news=60), end)
    by_second = run(make(rate=50, start=start, anomalies=30, news=60), end, step=1000)
    ragged = run(make(rate=50, start=start, anomalies=30, news=60), end, step=1234)

    assert whole.trade_count > 20_000 and whole.labels and whole.news and whole.fundamentals
    assert dump(whole) == dump(by_second) == dump(ragged)


def test_a_different_seed_gives_a_different_stream():
    end = WEDNESDAY + 2 * MINUTE
    assert dump(run(make(seed=1), end)) != dump(run(make(seed=2), end))


def test_the_clock_moves_by_whole_ticks_and_keeps_the_cut_tick_for_later():
    sim = make(start=WEDNESDAY + 250)
    assert sim.now_ms == WEDNESDAY + 250
    first = sim.advance(WEDNESDAY + 999)  # the first tick ends at the next whole second
    assert sim.now_ms == WEDNESDAY + 250 and first.trade_count == 0
    second = sim.advance(WEDNESDAY + 2500)
    assert sim.now_ms == WEDNESDAY + 2000
    times = [item["t"] for frame in second.trade_frames for item in frame["data"]]
    assert times and WEDNESDAY + 250 <= min(times) and max(times) < WEDNESDAY + 2000


def test_a_symbols_random_streams_do_not_depend_on_its_neighbours():
    alone = make(rate=5, symbols={"crypto": ["BINANCE:BTCUSDT"]}, anomalies=30)
    crowded = make(rate=5, symbols={"stocks": ["AAPL"], "crypto": ["BINANCE:BTCUSDT"]}, anomalies=30)
    labels_alone = run(alone, WEDNESDAY + HOUR).labels
    labels_crowded = [lab for lab in run(crowded, WEDNESDAY + HOUR).labels if lab["symbol"] == "BINANCE:BTCUSDT"]
    assert labels_alone and labels_alone == labels_crowded


# ---- anomalies -----------------------------------------------------------------------------
def test_anomalies_arrive_at_the_configured_rate_with_complete_non_overlapping_labels():
    hours, per_hour = 8, 6.0
    sim = make(rate=11, seed=11, anomalies=per_hour, news=0)
    before = {k: REGISTRY.get_sample_value("lakewatch_simulator_anomalies_total", {"kind": k}) or 0.0
              for k in ANOMALY_KINDS}
    labels, now = [], sim.now_ms
    for minute in range(1, hours * 60 + 1):
        batch = sim.advance(WEDNESDAY + minute * MINUTE)
        # Each label comes with the batch in which its anomaly starts.
        assert all(now <= label["start_ts"] < sim.now_ms for label in batch.labels)
        labels += batch.labels
        now = sim.now_ms

    expected = per_hour * hours * len(ALL_SYMBOLS)
    assert abs(len(labels) - expected) < 4 * math.sqrt(expected), (len(labels), expected)
    assert {label["kind"] for label in labels} == set(ANOMALY_KINDS)
    classes = {s: SETTINGS.asset_class_of(s) for s in ALL_SYMBOLS}
    for label in labels:
        assert set(label) == {"anomaly_id", "symbol", "asset_class", "kind", "start_ts", "end_ts", "magnitude", "source"}
        assert label["asset_class"] == classes[label["symbol"]] and label["source"] == "simulator"
        assert label["start_ts"] % MINUTE == 0 and label["end_ts"] > label["start_ts"]
        assert isinstance(label["magnitude"], float)
        json.dumps(records.label_record(label))
    assert len({label["anomaly_id"] for label in labels}) == len(labels)
    by_symbol = defaultdict(list)
    for label in labels:
        by_symbol[label["symbol"]].append((label["start_ts"], label["end_ts"]))
    for windows in by_symbol.values():
        windows.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(windows, windows[1:]))
    counted = {k: REGISTRY.get_sample_value("lakewatch_simulator_anomalies_total", {"kind": k}) - before[k]
               for k in ANOMALY_KINDS}
    assert counted == {k: sum(label["kind"] == k for label in labels) for k in ANOMALY_KINDS}


@pytest.fixture(scope="module")
def anomalous_run():
    start, end = WEDNESDAY, WEDNESDAY + 3 * HOUR
    batch = run(make(rate=44, seed=5, start=start, anomalies=3, news=0), end, step=MINUTE)
    return start, end, batch, trades_of(batch)


def _windows(labels, symbol):
    return [(lab["start_ts"], lab["end_ts"]) for lab in labels if lab["symbol"] == symbol]


def _quiet_mask(times, windows, margin=2 * MINUTE):
    quiet = np.ones(len(times), dtype=bool)
    for start, end in windows:
        quiet &= ~((times >= start - margin) & (times < end + margin))
    return quiet


def _one_minute_returns(times, prices, start, end):
    """(second, |log return over the last minute|) from the last trade price of each second."""
    seconds = np.arange(start, end, 1000)
    last = np.searchsorted(times, seconds + 1000) - 1
    log_price = np.log(prices[np.maximum(last, 0)])
    return seconds[60:], np.abs(log_price[60:] - log_price[:-60])


def test_frozen_feed_has_no_trades_of_its_symbol_in_its_window(anomalous_run):
    _, end, batch, trades = anomalous_run
    frozen = [lab for lab in batch.labels if lab["kind"] == "frozen_feed"]
    assert frozen
    for label in frozen:
        times, _ = trades[label["symbol"]]
        assert not ((times >= label["start_ts"]) & (times < label["end_ts"])).any()
        if label["end_ts"] + MINUTE <= end:  # and it comes back
            assert ((times >= label["end_ts"]) & (times < label["end_ts"] + MINUTE)).any()


def test_volume_burst_trades_far_more_often_than_its_symbol_normally_does(anomalous_run):
    start, end, batch, trades = anomalous_run
    bursts = [lab for lab in batch.labels if lab["kind"] == "volume_burst" and lab["end_ts"] <= end]
    assert bursts
    for label in bursts:
        times, _ = trades[label["symbol"]]
        quiet = _quiet_mask(times, _windows(batch.labels, label["symbol"]))
        quiet_minutes = len(np.unique(times[quiet] // MINUTE))
        normal_per_ms = quiet.sum() / (quiet_minutes * MINUTE)
        inside = ((times >= label["start_ts"]) & (times < label["end_ts"])).sum()
        assert inside / (label["end_ts"] - label["start_ts"]) > 3 * normal_per_ms, label


@pytest.mark.parametrize("kind", ["price_spike", "flash_crash"])
def test_price_anomalies_move_the_price_far_more_than_normal(anomalous_run, kind):
    start, end, batch, trades = anomalous_run
    checked = 0
    for label in (lab for lab in batch.labels if lab["kind"] == kind):
        times, prices = trades[label["symbol"]]
        seconds, moves = _one_minute_returns(times, prices, start, end)
        # Normal: the half hour before, away from any anomaly of this symbol.
        recent = (seconds >= label["start_ts"] - 30 * MINUTE) & (seconds < label["start_ts"])
        normal = recent & _quiet_mask(seconds, _windows(batch.labels, label["symbol"]))
        if normal.sum() < 600:
            continue  # not enough calm history to compare with
        inside = (seconds >= label["start_ts"]) & (seconds < label["end_ts"])
        assert moves[inside].max() > 1.5 * np.percentile(moves[normal], 99), label
        checked += 1
    assert checked >= 3


# ---- market hours, formats -----------------------------------------------------------------
def test_stocks_and_forex_do_not_trade_on_a_saturday_under_us_hours_but_crypto_does():
    batch = run(make(rate=50, start=SATURDAY, hours="us", anomalies=0), SATURDAY + 30 * MINUTE)
    traded = {item["s"] for frame in batch.trade_frames for item in frame["data"]}
    assert traded == set(SETTINGS.crypto)
    assert {symbol for symbol, _ in batch.quotes} == set(SETTINGS.crypto)
    # Each symbol keeps its share of the rate whether or not the other markets are open.
    expected = 50 * 3 / 11 * 30 * 60 * np.mean([volume_seasonality("crypto", SATURDAY + m * MINUTE) for m in range(30)])
    assert abs(batch.trade_count - expected) < 0.05 * expected


def test_stocks_start_trading_at_the_new_york_open_and_forex_at_sunday_five_pm():
    open_bell = ny_ms(2024, 7, 10, 9, 30)  # summer time: 13:30 UTC
    trades = trades_of(run(make(start=open_bell - 5 * MINUTE, hours="us"), open_bell + 5 * MINUTE))
    for stock in SETTINGS.stocks:
        assert trades[stock][0].min() >= open_bell and len(trades[stock][0]) > 100
    assert all(trades[pair][0].min() < open_bell for pair in SETTINGS.forex)

    forex_open = ny_ms(2024, 1, 14, 17, 0)  # a Sunday, winter time
    trades = trades_of(run(make(start=forex_open - 5 * MINUTE, hours="us"), forex_open + 5 * MINUTE))
    assert all(trades[pair][0].min() >= forex_open for pair in SETTINGS.forex)
    assert not any(stock in trades for stock in SETTINGS.stocks)
    assert market_open("stocks", ny_ms(2024, 7, 10, 15, 59), "us") and not market_open("stocks", ny_ms(2024, 7, 10, 16, 0), "us")
    assert market_open("forex", ny_ms(2024, 7, 12, 16, 59), "us") and not market_open("forex", ny_ms(2024, 7, 12, 17, 0), "us")


def test_every_frame_is_a_finnhub_trade_frame_that_the_topic_contract_accepts():
    batch = run(make(anomalies=30), WEDNESDAY + 5 * MINUTE, step=1000)
    classes = {s: SETTINGS.asset_class_of(s) for s in ALL_SYMBOLS}
    for frame in batch.trade_frames:
        assert frame["type"] == "trade" and len({item["s"] for item in frame["data"]}) == 1
        times = [item["t"] for item in frame["data"]]
        assert times == sorted(times) and times[-1] // 1000 == times[0] // 1000  # one tick per frame
        for record in records.trades_from_frame(frame, SETTINGS.asset_class_of, "simulator"):
            asset_class = classes[record["symbol"]]
            assert record["asset_class"] == asset_class
            assert isinstance(record["price"], float) and record["price"] > 0
            assert isinstance(record["trade_ts"], int) and record["volume"] >= 0
            if asset_class == "forex":
                assert record["volume"] == 0 and record["conditions"] == []
            elif asset_class == "stocks":
                assert isinstance(record["volume"], int) and record["volume"] >= 1
                assert record["conditions"] in (["1"], ["1", "12"])
            else:
                assert isinstance(record["volume"], float) and record["volume"] > 0
    volumes = [i["v"] for f in batch.trade_frames for i in f["data"] if i["s"] == "AAPL"]
    assert volumes.count(100) > 0.1 * len(volumes)  # round lots are common
    assert max(volumes) > 20 * np.median(volumes)  # and the tail is heavy


def test_prices_start_realistic_and_sit_on_the_tick_size():
    symbols = {"stocks": ["AAPL", "ZZZQ"], "forex": ["OANDA:EUR_USD", "OANDA:USD_JPY"], "crypto": ["BINANCE:BTCUSDT"]}
    batch = run(make(symbols=symbols), WEDNESDAY + MINUTE)
    first = {q[0]: q[1]["o"] for q in batch.quotes}
    assert 170 < first["AAPL"] < 210 and 60_000 < first["BINANCE:BTCUSDT"] < 70_000
    assert 1.0 < first["OANDA:EUR_USD"] < 1.2 and 140 < first["OANDA:USD_JPY"] < 160
    assert first["ZZZQ"] > 0 and first["ZZZQ"] == run(make(symbols=symbols), WEDNESDAY + MINUTE).quotes[1][1]["o"]
    decimals = {"AAPL": 2, "ZZZQ": 2, "OANDA:EUR_USD": 5, "OANDA:USD_JPY": 3, "BINANCE:BTCUSDT": 2}
    for frame in batch.trade_frames:
        for item in frame["data"]:
            assert round(item["p"], decimals[item["s"]]) == item["p"]


def test_an_hour_of_trades_matches_the_rate_times_the_seasonality():
    rate = 100.0
    batch = run(make(rate=rate, anomalies=0), WEDNESDAY + HOUR)
    classes = [SETTINGS.asset_class_of(s) for s in ALL_SYMBOLS]
    expected = sum(rate * 60 * np.mean([volume_seasonality(c, WEDNESDAY + m * MINUTE, "always") for c in classes])
                   for m in range(60))
    assert abs(batch.trade_count - expected) < 0.02 * expected, (batch.trade_count, expected)
    assert 0.5 < expected / (rate * 3600) < 1.5  # seasonality moves the rate, it does not replace it


def test_stocks_trading_round_the_clock_have_no_step_at_the_open_or_the_close():
    """Under "always" hours a step in every stock's trade rate at 09:30 New York is an unlabelled
    anomaly: the CI run that crossed it flagged 14 of 77 live bars."""
    minute = lambda h, m: ny_ms(2024, 3, 6, h, m)  # noqa: E731
    rates = [volume_seasonality("stocks", minute(0, 0) + m * MINUTE, "always") for m in range(24 * 60)]
    for before, after in ((minute(9, 29), minute(9, 30)), (minute(15, 59), minute(16, 0))):
        step = volume_seasonality("stocks", after, "always") / volume_seasonality("stocks", before, "always")
        assert abs(step - 1) < 0.01, step
    assert max(abs(b / a - 1) for a, b in zip(rates, rates[1:])) < 0.01
    assert abs(np.mean(rates) - 1) < 0.01
    # Under US hours the session alone keeps its U of mean 1, its open three times its midday.
    session = [volume_seasonality("stocks", minute(9, 30) + m * MINUTE) for m in range(390)]
    assert abs(np.mean(session) - 1) < 0.01 and 2.9 < session[0] / session[195] < 3.1


# ---- quotes, news, fundamentals ------------------------------------------------------------
def test_quotes_come_once_a_minute_per_open_symbol_and_fit_the_quotes_record():
    batch = run(make(), WEDNESDAY + 10 * MINUTE, step=7_000)
    assert len(batch.quotes) == 10 * len(ALL_SYMBOLS)
    for symbol, quote in batch.quotes:
        assert set(quote) == {"c", "d", "dp", "h", "l", "o", "pc", "t"}
        record = records.quote_record(symbol, SETTINGS.asset_class_of(symbol), quote, "simulator")
        assert None not in record.values()
        assert record["low"] <= record["current"] <= record["high"] and record["low"] <= record["open"] <= record["high"]
        assert record["quote_ts"] // 1000 <= (WEDNESDAY + 10 * MINUTE) // 1000
        assert quote["d"] == pytest.approx(quote["c"] - quote["pc"], abs=1e-6)
        assert quote["dp"] == pytest.approx(100 * (quote["c"] / quote["pc"] - 1), abs=1e-3)


def test_news_items_are_company_news_with_growing_ids():
    batch = run(make(rate=5, news=60), WEDNESDAY + HOUR, step=MINUTE)
    assert 5 * 60 * 0.7 < len(batch.news) < 5 * 60 * 1.3
    assert {symbol for symbol, _ in batch.news} == set(SETTINGS.stocks)
    ids = [item["id"] for _, item in batch.news]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for symbol, item in batch.news:
        assert set(item) == {"category", "datetime", "headline", "id", "image", "related", "source", "summary", "url"}
        record = records.news_record(item, "simulator", symbol)
        assert record["related"] == [symbol] and record["category"] == "company"
        assert WEDNESDAY <= record["published_at"] < WEDNESDAY + HOUR
        assert record["url"] == f"https://news.example.invalid/{item['id']}" and record["headline"]


def test_headlines_follow_the_price_move_of_the_last_hour():
    rng = np.random.default_rng(0)
    assert "2.1%" in sim_content.news_text("AAPL", 0.021, 190.0, rng)[0]
    assert "3.0%" in sim_content.news_text("AAPL", -0.030, 190.0, rng)[0]
    headline, summary, source = sim_content.news_text("AAPL", 0.0005, 190.0, rng)
    assert "%" not in headline and "$190.00" in summary and source


def test_fundamentals_come_for_every_stock_at_start_and_metrics_again_each_new_day():
    start = ny_ms(2024, 7, 9, 23, 50)
    sim = make(start=start)
    first = sim.advance(start + 1000).fundamentals
    assert sorted((s, kind) for s, kind, _ in first) == sorted(
        (s, kind) for s in SETTINGS.stocks for kind in ("profile", "metrics"))
    assert not run(sim, ny_ms(2024, 7, 10, 0, 0)).fundamentals
    next_day = run(sim, ny_ms(2024, 7, 10, 0, 5)).fundamentals
    assert sorted((s, kind) for s, kind, _ in next_day) == sorted((s, "metrics") for s in SETTINGS.stocks)

    for symbol, kind, payload in first + next_day:
        record = records.fundamentals_record(symbol, kind, payload, "simulator")
        if kind == "metrics":
            assert payload["metricType"] == "all" and payload["symbol"] == symbol
            assert {"52WeekHigh", "52WeekLow", "peNormalizedAnnual", "marketCapitalization", "beta",
                    "10DayAverageTradingVolume", "epsTTM", "dividendYieldIndicatedAnnual"} <= set(record["data"])
            assert record["data"]["52WeekLow"] < record["data"]["52WeekHigh"]
        else:
            assert set(record["data"]) == {"country", "currency", "exchange", "finnhubIndustry", "ipo", "logo",
                                           "marketCapitalization", "name", "phone", "shareOutstanding", "ticker",
                                           "weburl"}
            assert record["data"]["ticker"] == symbol


def test_bad_arguments_are_refused_with_a_clear_error():
    with pytest.raises(ValueError, match="market_hours"):
        make(hours="sometimes")
    with pytest.raises(ValueError, match="rate"):
        make(rate=-1)
    with pytest.raises(ValueError, match="asset classes"):
        make(symbols={"bonds": ["X"]})
    with pytest.raises(ValueError, match="realism"):
        make(realism="gritty")


def test_from_settings_uses_the_simulator_settings():
    settings = Settings(sim_seed=3, sim_rate=50.0, sim_market_hours="always", stocks=("AAPL",), forex=(), crypto=())
    sim = MarketSimulator.from_settings(settings, WEDNESDAY)
    assert sim.symbols == {"AAPL": "stocks"} and sim.rate == 50.0 and sim.seed == 3 and not sim.realistic
    assert MarketSimulator.from_settings(dataclasses.replace(settings, sim_realism="realistic"), WEDNESDAY).realistic
    assert MarketSimulator.from_settings(settings, WEDNESDAY, rate=7.0).rate == 7.0


# ---- realism="realistic" ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def realistic_run():
    start, end = WEDNESDAY, WEDNESDAY + 8 * HOUR
    batch = run(make(rate=44, seed=5, start=start, anomalies=2, news=0, realism="realistic"), end, step=10 * MINUTE)
    return start, end, batch, trades_of(batch)


def _price_at(trades, symbol, ms) -> float:
    """The last trade price of `symbol` before `ms`."""
    times, prices = trades[symbol]
    return float(prices[max(0, np.searchsorted(times, ms) - 1)])


def test_a_realistic_market_draws_every_kind_and_labels_its_market_events_apart(realistic_run):
    _, _, batch, _ = realistic_run
    kinds = {label["kind"] for label in batch.labels}
    assert kinds == set(ANOMALY_KINDS) | set(REALISTIC_KINDS) | set(MARKET_EVENT_KINDS)
    assert len({label["anomaly_id"] for label in batch.labels}) == len(batch.labels)
    assert {label["asset_class"] for label in batch.labels if label["kind"] == "news_jump"} == {"stocks"}
    by_symbol = defaultdict(list)  # anomalies of a symbol still never overlap; market events may
    for label in batch.labels:
        if label["kind"] not in MARKET_EVENT_KINDS:
            by_symbol[label["symbol"]].append((label["start_ts"], label["end_ts"]))
    for windows in by_symbol.values():
        windows.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(windows, windows[1:]))


@pytest.mark.parametrize("kind", ["level_shift", "news_jump", "drift"])
def test_a_kept_move_is_still_there_after_its_window(realistic_run, kind):
    _, end, batch, trades = realistic_run
    moves = [lab for lab in batch.labels if lab["kind"] == kind and lab["end_ts"] + 2 * MINUTE <= end]
    assert len(moves) >= 3
    kept = 0
    for label in moves:
        before = _price_at(trades, label["symbol"], label["start_ts"])
        after = _price_at(trades, label["symbol"], label["end_ts"] + 2 * MINUTE)
        jump = math.log1p(label["magnitude"])
        kept += math.copysign(1, math.log(after / before)) == math.copysign(1, jump) \
            and abs(math.log(after / before)) > abs(jump) / 3
    assert kept >= 0.8 * len(moves), (kept, len(moves))


def test_a_class_move_moves_every_symbol_of_the_class_the_same_way(realistic_run):
    _, end, batch, trades = realistic_run
    moves = defaultdict(list)
    for label in batch.labels:
        if label["kind"] == "class_move" and label["end_ts"] <= end:
            moves[(label["asset_class"], label["start_ts"])].append(label)
    assert len(moves) >= 3
    agreeing = total = 0
    for (asset_class, _), members in moves.items():
        assert {m["symbol"] for m in members} == set(SYMBOLS[asset_class])
        assert len({math.copysign(1, m["magnitude"]) for m in members}) == 1
        for m in members:
            move = math.log(_price_at(trades, m["symbol"], m["end_ts"]) / _price_at(trades, m["symbol"], m["start_ts"]))
            agreeing += math.copysign(1, move) == math.copysign(1, m["magnitude"])
            total += 1
    assert agreeing >= 0.8 * total, (agreeing, total)


def test_a_news_jump_is_in_the_news_before_the_price_moves(realistic_run):
    _, end, batch, trades = realistic_run
    jumps = [lab for lab in batch.labels if lab["kind"] == "news_jump" and lab["end_ts"] <= end]
    assert jumps
    for label in jumps:
        items = [item for symbol, item in batch.news if symbol == label["symbol"]
                 and label["start_ts"] // 1000 <= item["datetime"] < label["start_ts"] // 1000 + 10]
        assert len(items) == 1, label
        assert records.news_record(items[0], "simulator", label["symbol"])["headline"] == items[0]["headline"]
        # 30 s after the news the price has not jumped yet
        early = math.log(_price_at(trades, label["symbol"], label["start_ts"] + 30_000)
                         / _price_at(trades, label["symbol"], label["start_ts"]))
        assert abs(early) < abs(math.log1p(label["magnitude"])) / 2, label


def test_inside_a_volatility_regime_moves_are_sized_in_its_sigmas_and_no_second_regime_starts():
    """A drift of 25 sigmas of a calm market is 10 of a regime's x2.5: sized in the vol in force, a
    labelled move stays as plain in a busy market as in a calm one, and a regime drawn inside
    another would change nothing its label claims."""
    sim = make(seed=5, anomalies=2, realism="realistic")
    symbol = next(s for s in sim._symbols if s.asset_class == "stocks")
    one_minute = symbol.sigma * math.sqrt(60)

    def sizes(regime) -> dict[str, list[float]]:
        symbol.regime = regime
        drawn = [sim._draw_anomaly(symbol, WEDNESDAY) for _ in range(600)]
        return {kind: [abs(math.log1p(a.magnitude)) / one_minute for a in drawn if a.kind == kind]
                for kind in ("drift", "level_shift", "price_spike", "volatility_regime")}

    calm, busy = sizes(None), sizes((WEDNESDAY + HOUR, 2.5))
    for kind, (low, high) in {"drift": (20, 30), "level_shift": (6, 12), "price_spike": (6, 12)}.items():
        assert calm[kind] and low * 0.99 <= min(calm[kind]) and max(calm[kind]) <= high * 1.01, kind
        assert busy[kind] and low * 2.5 * 0.99 <= min(busy[kind]) and max(busy[kind]) <= high * 2.5 * 1.01, kind
    assert calm["volatility_regime"] and not busy["volatility_regime"]
    assert sizes((WEDNESDAY, 2.5))["volatility_regime"]  # a regime that has ended is no longer in force


def test_tiny_trades_are_many_more_trades_of_smaller_size(realistic_run):
    _, end, batch, _ = realistic_run
    sizes = defaultdict(list)  # symbol -> (time, size)
    for frame in batch.trade_frames:
        for item in frame["data"]:
            sizes[item["s"]].append((item["t"], item["v"]))
    bursts = [lab for lab in batch.labels if lab["kind"] == "tiny_trades" and lab["end_ts"] <= end
              and lab["asset_class"] == "crypto"]
    assert bursts
    # Forex trades carry no size: a burst of odd lots there would be a volume burst, an anomaly.
    assert not [lab for lab in batch.labels if lab["kind"] == "tiny_trades" and lab["asset_class"] == "forex"]
    for label in bursts:
        times, volume = (np.array(x) for x in zip(*sizes[label["symbol"]]))
        inside = (times >= label["start_ts"]) & (times < label["end_ts"])
        normal = _quiet_mask(times, [(lab["start_ts"], lab["end_ts"]) for lab in batch.labels
                                     if lab["symbol"] == label["symbol"]])
        per_ms = inside.sum() / (label["end_ts"] - label["start_ts"])
        assert per_ms > 3 * normal.sum() / (end - WEDNESDAY), label
        assert volume[inside].mean() < volume[normal].mean() / 3, label


def test_trades_bounce_between_bid_and_ask_in_a_realistic_market():
    def lag_one_correlation(realism):
        batch = run(make(rate=200, seed=3, anomalies=0, news=0, realism=realism,
                         symbols={"crypto": ["BINANCE:BTCUSDT"]}), WEDNESDAY + 20 * MINUTE)
        _, prices = trades_of(batch)["BINANCE:BTCUSDT"]
        changes = np.diff(np.log(prices))
        return np.corrcoef(changes[1:], changes[:-1])[0, 1]
    assert lag_one_correlation("realistic") < -0.2 < lag_one_correlation("clean")


def test_stocks_trade_at_half_their_rate_over_lunch_in_a_realistic_market():
    start = ny_ms(2024, 3, 6, 11, 0)
    def hourly(realism):
        batch = run(make(rate=100, seed=2, start=start, anomalies=0, news=0, realism=realism,
                         symbols={"stocks": SETTINGS.stocks}), start + 3 * HOUR)
        times = np.array([item["t"] for frame in batch.trade_frames for item in frame["data"]])
        return np.histogram(times, bins=[start + h * HOUR for h in range(4)])[0]
    clean, realistic = hourly("clean"), hourly("realistic")
    lunch_share = lambda counts: counts[1] / (counts[0] + counts[2])  # noqa: E731
    assert lunch_share(realistic) < 0.7 * lunch_share(clean)
