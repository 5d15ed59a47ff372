"""The one SQL surface over the lake: schema `market` on DuckDB (embedded) or Trino (distributed).

Everything that reads the lake with SQL (the CLI, Superset, the bot, benchmarks) goes through
`sql_engine()`; queries shared between them are written once as SQLAlchemy Core in
`queries.py`, and the curated views in `views.py`, so both engines answer with the same names.
"""
from lakewatch.sql.engine import sql_engine

__all__ = ["sql_engine"]
