"""Answers about the model's verdicts: how many anomalies, their scores, which symbols, the latest
one, and whether a symbol is behaving strangely now.

An anomaly is an episode (docs/model.md): a run of flagged bars is one, counted when it began;
the flagged bars are named beside it when there are more of them."""
from __future__ import annotations

import json

from chatbot.answers import Question, entities, lake, words
from lakewatch.sql import queries

Scope = tuple[str | None, str | None]  # (symbol, asset class); neither: all symbols


def _scopes(q: Question) -> list[Scope] | str:
    """What the question is about, one scope per symbol or asset class it names (a comparison
    names several), or the answer to give when it names an unknown symbol."""
    known = lake.known_symbols(q.settings)
    symbols = entities.symbols_in(q.entities, q.text, known)
    if refusal := entities.only_unknown(symbols, known):
        return refusal
    classes = entities.asset_classes_in(q.entities)  # checked even when a symbol makes them moot
    if symbols.found:
        return [(s, None) for s in symbols.found]
    return [(None, c) for c in classes] or [(None, None)]


def _name(scope: Scope) -> str:
    symbol, asset_class = scope
    return symbol or (asset_class or "all symbols")


def count(q: Question) -> str:
    """How many anomalies; or, with a metric, their average or highest score or count per hour."""
    q.uses("symbol", "asset_class", "period", "time_range", "metric")
    scopes = _scopes(q)
    if isinstance(scopes, str):
        return scopes
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone)
    metrics = entities.all_of(q.entities, "metric", entities.METRICS)
    if metrics:
        return "\n".join(_per_hour(q, scope, window) if metric == "per hour" else _score(q, scope, window, metric)
                         for metric in metrics for scope in scopes)
    lines = []
    for symbol, asset_class in scopes:
        (row,) = lake.rows(q.settings, "anomaly_count", queries.anomaly_count(window, asset_class, symbol))
        lines.append(f"{words.anomalies(row)} in {_name((symbol, asset_class))}")
    return f"{'; '.join(lines)} {window.label}."


def _score(q: Question, scope: Scope, window, metric: str) -> str:
    symbol, asset_class = scope
    (row,) = lake.rows(q.settings, "anomaly_scores", queries.anomaly_scores(window, asset_class, symbol))
    if not row["scored_bars"]:
        return f"The model scored no bar of {_name(scope)} {window.label}."
    bars = words.plural(row["scored_bars"], "scored one-minute bar")
    if metric == "maximum":
        return (f"The highest anomaly score in {_name(scope)} {window.label} was {row['max_score']:.3f}, over {bars} "
                f"({row['flagged_bars']:,} flagged).")
    flagged = (f"; the {words.plural(row['flagged_bars'], 'flagged bar')} averaged {row['flagged_avg_score']:.3f}"
               if row["flagged_bars"] else "; none was flagged")
    return f"The average anomaly score in {_name(scope)} {window.label} was {row['avg_score']:.3f}, over {bars}{flagged}."


def _per_hour(q: Question, scope: Scope, window) -> str:
    symbol, asset_class = scope
    hours = lake.rows(q.settings, "anomalies_per_hour", queries.anomalies_per_hour(window, asset_class, symbol))
    if not hours:
        return f"No anomalies in {_name(scope)} {window.label}."
    zone = q.settings.day_timezone
    lines = [f"- {words.at(h['hour'], zone)}: {words.anomalies(h)}" for h in hours]
    return (f"Anomalies per hour in {_name(scope)} {window.label} (hours not listed had none):\n"
            + "\n".join(lines))


def top(q: Question) -> str:
    q.uses("asset_class", "period", "time_range")
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone)
    sections = []
    for asset_class in entities.asset_classes_in(q.entities) or [None]:
        ranked = lake.rows(q.settings, "top_anomalous_symbols",
                           queries.top_anomalous_symbols(window, 5, asset_class, lake.known_symbols(q.settings)))
        scope = asset_class or "all symbols"
        if not ranked:
            sections.append(f"No anomalies in {scope} {window.label}.")
            continue
        lines = [f"{i}. {r['symbol']}: {words.anomalies(r)}, "
                 f"highest score {r['max_score']:.2f}" for i, r in enumerate(ranked, 1)]
        sections.append(f"Most anomalous in {scope} {window.label}:\n" + "\n".join(lines))
    return "\n".join(sections)


def latest(q: Question) -> str:
    q.uses("symbol")
    return entities.each_symbol(q.entities, q.text, lake.known_symbols(q.settings), lambda s: _latest_of(q, s))


def _latest_of(q: Question, symbol: str) -> str:
    found = lake.rows(q.settings, "latest_anomaly", queries.latest_anomaly(symbol))
    if not found:
        return f"{symbol} has no anomaly in the lake (all verdicts so far)."
    a = found[0]
    return (f"The latest anomaly of {symbol} (all verdicts so far) is the 1-minute bar starting "
            f"{words.at(a['window_start'], q.settings.day_timezone)}: {_why(a)} (score {a['anomaly_score']:.2f}, "
            f"from {a['model_name']} version {a['model_version']}).")


def status(q: Question) -> str:
    """Whether the model flagged a symbol's bars lately (the last 15 minutes unless a period is named)."""
    q.uses("symbol", "period", "time_range")
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone, default="right now")
    return entities.each_symbol(q.entities, q.text, lake.known_symbols(q.settings),
                                lambda s: _status_of(q, s, window))


def _status_of(q: Question, symbol: str, window) -> str:
    zone = q.settings.day_timezone
    (row,) = lake.rows(q.settings, "anomaly_scores", queries.anomaly_scores(window, symbol=symbol))
    if not row["scored_bars"]:
        return (f"I can't tell: the model scored no bar of {symbol} {window.label} "
                "(it did not trade, or scoring is behind).")
    bars = words.plural(row["scored_bars"], "scored one-minute bar")
    if not row["flagged_bars"]:
        return (f"No: none of {symbol}'s {bars} {window.label} was flagged (highest score {row['max_score']:.2f}, "
                f"newest bar {words.at(row['last_bar'], zone)}).")
    text = (f"Yes: the model flagged {row['flagged_bars']:,} of {symbol}'s {bars} {window.label} "
            f"(highest score {row['max_score']:.2f}).")
    (newest,) = lake.rows(q.settings, "latest_anomaly", queries.latest_anomaly(symbol))
    return text + f" The latest, {words.at(newest['window_start'], zone)}: {_why(newest)}."


def _why(a: dict) -> str:
    """The scorer's sentence (model/explain.py), as the dashboard shows it; for a verdict scored
    before explanations existed, its top features' values."""
    if a["explanation"]:
        return a["explanation"]
    values = json.loads(a["features"] or "{}")
    top_features = [f for f in (a["top_features"] or "").split(",") if f]
    return "main features " + (", ".join(f"{f} = {values[f]:.2f}" if isinstance(values.get(f), (int, float)) else f
                                         for f in top_features) or "none recorded")
