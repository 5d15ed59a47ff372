"""Event-level evaluation against the simulator's labels: what a user of alerts cares about.

An injected anomaly (an event) is detected when a flagged bar of its symbol starts inside
[start, end + TOLERANCE), in an episode that opened at most TOLERANCE before the event: a frozen
feed can only show at the first bar after it. An alert is
the first bar of an episode of flagged bars (model/episodes.py, the rule the scorer writes to
`anomalies`); it is true when that bar is in an event's window. So:
  recall    = detected events / events
  precision = true alerts / alerts
  delay     = end of the first flagged bar - event start (when a user could have known)
PR-AUC is bar-level (a bar is positive inside an event window), over the raw scores.

Labels of market events (tables.MARKET_EVENT_KINDS: a whole class moving, a burst of odd lots)
are not events to detect: their bars are normal ones, and an alert in one is a false alarm,
counted per kind (`false_alarm_rate_<kind>`: the share of those events that drew an alert).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from lakewatch.tables import MARKET_EVENT_KINDS
from model.episodes import MINUTE_NS, opens_episode

TOLERANCE_NS = 2 * MINUTE_NS


def epoch_ns(values) -> np.ndarray:
    """Timestamps (tz-aware or not, any unit) as int64 nanoseconds since the epoch."""
    return pd.to_datetime(pd.Series(values), utc=True).dt.as_unit("ns").astype("int64").to_numpy()


def label_windows(labels: pd.DataFrame) -> pd.DataFrame:
    """Each label's symbol, kind and window in ns: [start, end + TOLERANCE)."""
    return pd.DataFrame({"symbol": labels["symbol"].to_numpy(), "kind": labels["kind"].to_numpy(),
                         "start": epoch_ns(labels["start_ts"]), "end": epoch_ns(labels["end_ts"]) + TOLERANCE_NS})


def _events(labels: pd.DataFrame) -> pd.DataFrame:
    """The anomalies among the labels, with their windows."""
    return label_windows(labels[~labels["kind"].isin(MARKET_EVENT_KINDS)])


def _market_events(labels: pd.DataFrame) -> pd.DataFrame:
    return label_windows(labels[labels["kind"].isin(MARKET_EVENT_KINDS)])


def in_windows(scored: pd.DataFrame, windows: pd.DataFrame) -> np.ndarray:
    """True for bars of `scored` starting inside one of `windows` (symbol, start, end in ns) of their symbol."""
    inside = np.zeros(len(scored), dtype=bool)
    starts, symbols = epoch_ns(scored["window_start"]), scored["symbol"].to_numpy()
    for w in windows.itertuples():
        inside |= (symbols == w.symbol) & (starts >= w.start) & (starts < w.end)
    return inside


def bar_truth(scored: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """True for bars inside an event window of their symbol."""
    return in_windows(scored, _events(labels))


def event_metrics(scored: pd.DataFrame, labels: pd.DataFrame, threshold: float) -> dict:
    """Metrics of `scored` (symbol, window_start, anomaly_score) flagged at `threshold`."""
    events = _events(labels)
    flagged = scored["anomaly_score"].to_numpy() >= threshold
    flag_times = epoch_ns(scored["window_start"])[flagged]
    flag_symbols = scored["symbol"].to_numpy()[flagged]
    times_by_symbol = {s: np.sort(flag_times[flag_symbols == s]) for s in np.unique(flag_symbols)}

    # An alert is true only when its own bar is in an event's window: an episode that began
    # before the event cannot claim it, or flagging every bar (one endless episode per symbol)
    # would be one true alert per symbol, at full precision.
    alerts = true_alerts = 0
    market = _market_events(labels)
    alarmed = np.zeros(len(market), dtype=bool)  # market events that drew a false alert
    for symbol, times in times_by_symbol.items():
        starts = times[opens_episode(times)]
        alerts += len(starts)
        true = _overlapping(starts, events, symbol).any(axis=1)
        true_alerts += int(true.sum())
        mine = (market["symbol"] == symbol).to_numpy()
        alarmed[mine] |= _overlapping(starts[~true], market, symbol).any(axis=0)

    # An event is detected by a flagged bar in its window whose episode opened at most
    # TOLERANCE before the event: anomalies of one symbol may follow each other without a gap,
    # and one episode then covers both; an episode running since long before says nothing.
    opened = {s: np.maximum.accumulate(np.where(opens_episode(t), t, np.iinfo(np.int64).min))
              for s, t in times_by_symbol.items()}
    detected = np.zeros(len(events), dtype=bool)
    delay = np.full(len(events), np.nan)
    for i, e in enumerate(events.itertuples()):
        times = times_by_symbol.get(e.symbol)
        if times is None:
            continue
        lo, hi = np.searchsorted(times, e.start), np.searchsorted(times, e.end)
        fresh = np.flatnonzero(opened[e.symbol][lo:hi] >= e.start - TOLERANCE_NS)
        if len(fresh):
            detected[i] = True
            delay[i] = (times[lo + fresh[0]] + MINUTE_NS - e.start) / 1e9

    recall = float(detected.mean()) if len(events) else float("nan")
    precision = true_alerts / alerts if alerts else 0.0
    result = {"events": len(events), "alerts": alerts, "recall": recall, "precision": precision,
              "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
              "delay_p50_s": float(np.nanmedian(delay)) if detected.any() else float("nan")}
    for kind in sorted(events["kind"].unique()):
        of_kind = (events["kind"] == kind).to_numpy()
        result[f"recall_{kind}"] = float(detected[of_kind].mean())
        result[f"delay_p50_s_{kind}"] = float(np.nanmedian(delay[of_kind])) if detected[of_kind].any() else float("nan")
    for kind in sorted(market["kind"].unique()):
        result[f"false_alarm_rate_{kind}"] = float(alarmed[(market["kind"] == kind).to_numpy()].mean())
    return result


def _overlapping(alert_starts: np.ndarray, windows: pd.DataFrame, symbol: str) -> np.ndarray:
    """(alerts x the symbol's windows): whether the alert's bar overlaps the window."""
    mine = (windows["symbol"] == symbol).to_numpy()
    start, end = windows["start"].to_numpy()[mine], windows["end"].to_numpy()[mine]
    return (alert_starts[:, None] + MINUTE_NS > start[None, :]) & (alert_starts[:, None] < end[None, :])


def pr_auc(scored: pd.DataFrame, labels: pd.DataFrame) -> float:
    """Bar-level average precision of the raw scores (threshold-free)."""
    truth = bar_truth(scored, labels)
    return float(average_precision_score(truth, scored["anomaly_score"])) if truth.any() else float("nan")


def best_threshold(scored: pd.DataFrame, labels: pd.DataFrame, min_precision: float = 0.8) -> tuple[float, dict]:
    """The threshold with the best recall among those reaching min_precision (best F1 if none does).
    The candidates are the scores' upper quantiles. Scores without repeats (model/episodes.py)
    sit at their floor on most bars: their upper quantiles would offer "flag every bar" and a few
    more, so their candidates span the scores above the floor instead."""
    scores = scored["anomaly_score"].to_numpy(dtype=float)
    levels = np.linspace(0.80, 0.9995, 60)
    above = scores[scores > scores.min()] if len(scores) else scores
    if len(above) and np.quantile(scores, levels[0]) <= scores.min():
        candidates = np.unique(np.quantile(above, np.linspace(0.0, levels[-1], len(levels))))
    else:
        candidates = np.unique(np.quantile(scores, levels))
    results = [(float(t), event_metrics(scored, labels, t)) for t in candidates]
    meeting = [(t, m) for t, m in results if m["precision"] >= min_precision]
    if meeting:
        return max(meeting, key=lambda tm: (tm[1]["recall"], tm[1]["precision"]))
    return max(results, key=lambda tm: tm[1]["f1"])


def live_false_alarms(verdicts: pd.DataFrame, labels: pd.DataFrame) -> dict:
    """What a user of the live `anomalies` table sees: counted verdicts (symbol, window_start,
    is_anomaly, excluded_reason), the flagged ones, and the false alarms among them, i.e.
    flagged bars outside every injected anomaly's window. Per symbol-hour, beside the rate of
    bars inside a labelled window: the reference a perfect detector would flag at."""
    counted = verdicts[verdicts["excluded_reason"].isna()]
    truth = bar_truth(counted, labels)
    flagged = counted["is_anomaly"].to_numpy(dtype=bool)
    symbol_hours = len(counted) / 60
    figures = {"bars": len(counted), "excluded": len(verdicts) - len(counted), "flagged": int(flagged.sum()),
               "false_alarms": int((flagged & ~truth).sum()), "labelled_bars": int(truth.sum()),
               "symbol_hours": round(symbol_hours, 2)}
    for name in ("flagged", "false_alarms", "labelled_bars"):
        figures[f"{name}_per_symbol_hour"] = round(figures[name] / symbol_hours, 3) if symbol_hours else 0.0
    return figures
