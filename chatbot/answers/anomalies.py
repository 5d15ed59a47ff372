"""Answers about the model's verdicts: how many anomalies, which symbols, the latest one.

An anomaly is an episode (docs/model.md): a run of flagged bars is one, counted when it began;
the flagged bars are named beside it when there are more of them."""
from __future__ import annotations

import json

from chatbot.answers import Question, entities, lake, words
from lakewatch.sql import queries


def _scope(symbol: str | None, asset_class: str | None) -> str:
    return symbol or (asset_class or "all symbols")


def count(q: Question) -> str:
    known = lake.known_symbols(q.settings)
    symbols = entities.symbols_in(q.entities, q.text, known)
    if symbols.unknown and not symbols.found:
        return words.unknown_symbol(symbols.unknown[0], known)
    asset_class = entities.asset_class_in(q.entities)  # checked even when a symbol makes it moot
    if symbols.found:
        asset_class = None
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone)
    lines = []
    for symbol in symbols.found or [None]:
        (row,) = lake.rows(q.settings, "anomaly_count", queries.anomaly_count(window, asset_class, symbol),
                           ("anomalies",))
        lines.append(f"{words.anomalies(row)} in {_scope(symbol, asset_class)}")
    return f"{'; '.join(lines)} {window.label}."


def top(q: Question) -> str:
    asset_class = entities.asset_class_in(q.entities)
    window = entities.window_of(q.entities, q.now, q.settings.day_timezone)
    ranked = lake.rows(q.settings, "top_anomalous_symbols",
                       queries.top_anomalous_symbols(window, 5, asset_class), ("anomalies",))
    scope = asset_class or "all symbols"
    if not ranked:
        return f"No anomalies in {scope} {window.label}."
    lines = [f"{i}. {r['symbol']}: {words.anomalies(r)}, "
             f"highest score {r['max_score']:.2f}" for i, r in enumerate(ranked, 1)]
    return f"Most anomalous in {scope} {window.label}:\n" + "\n".join(lines)


def latest(q: Question) -> str:
    symbol, refusal = entities.the_symbol(q.entities, q.text, lake.known_symbols(q.settings))
    if refusal:
        return refusal
    found = lake.rows(q.settings, "latest_anomaly", queries.latest_anomaly(symbol), ("anomalies",))
    if not found:
        return f"{symbol} has no anomaly in the lake (all verdicts so far)."
    a = found[0]
    return (f"The latest anomaly of {symbol} (all verdicts so far) is the 1-minute bar starting "
            f"{words.at(a['window_start'], q.settings.day_timezone)}: {_why(a)} (score {a['anomaly_score']:.2f}, "
            f"from {a['model_name']} version {a['model_version']}).")


def _why(a: dict) -> str:
    """The scorer's sentence (model/explain.py), as the dashboard shows it; for a verdict scored
    before explanations existed, its top features' values."""
    if a["explanation"]:
        return a["explanation"]
    values = json.loads(a["features"] or "{}")
    top_features = [f for f in (a["top_features"] or "").split(",") if f]
    return "main features " + (", ".join(f"{f} = {values[f]:.2f}" if isinstance(values.get(f), (int, float)) else f
                                         for f in top_features) or "none recorded")
