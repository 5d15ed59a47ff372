"""Answers about lakewatch itself: what it does, where its data comes from, where to look next."""
from __future__ import annotations

from chatbot.answers import Question, words
from lakewatch.settings import ASSET_CLASSES


def project(q: Question) -> str:
    return (
        "lakewatch is a real-time market lakehouse with anomaly detection. The pipeline:\n"
        "1. Ingestion reads trades, quotes, news and fundamentals (Finnhub, or the market simulator) and "
        "produces them to Kafka topics.\n"
        "2. Spark Structured Streaming validates every record (malformed ones go to a rejects table), writes "
        "trades, quotes, news and 1-minute bars to Delta Lake tables, exactly once.\n"
        "3. An anomaly model, tracked and served with MLflow, scores every finished 1-minute bar; its verdicts "
        "land in the anomalies table.\n"
        f"4. SQL ({'Trino' if q.settings.sql_engine == 'trino' else 'DuckDB'}) serves the tables to Superset's "
        "dashboards, SQL Lab and to me: I answer by querying the same tables.\n"
        "5. Prometheus scrapes every service's metrics.")


def data_sources(q: Question) -> str:
    s = q.settings
    source = ("live data from Finnhub (its websocket for trades, its REST API for quotes, news and fundamentals)"
              if s.uses_finnhub else
              "a market simulator that speaks Finnhub's formats and injects labelled anomalies "
              "(set FINNHUB_API_KEY to switch to live Finnhub data)")
    tracked = "; ".join(f"{c}: {words.symbol_list(getattr(s, c))}" for c in ASSET_CLASSES)
    return f"The data is {source}. I follow {tracked}."


def dashboard(q: Question) -> str:
    base = q.settings.superset_page_url
    return (f"Superset is at {base}/ . Dashboards: Market overview {base}/superset/dashboard/market-overview/ , "
            f"Anomalies {base}/superset/dashboard/anomalies/ , News and fundamentals "
            f"{base}/superset/dashboard/news-and-fundamentals/ . Write your own SQL in SQL Lab at {base}/sqllab/ "
            "(database \"lake\", schema \"market\"; saved queries hold the common questions).")
