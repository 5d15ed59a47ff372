"""SQLAlchemy Core tables for schema `market`, derived from the Delta contract in lakewatch.tables.

Queries and views are built from these objects, never from SQL strings, so a renamed column
fails at import and both dialects render the same names.
"""
from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa

from lakewatch import tables

SCHEMA = "market"
DOUBLE = getattr(sa, "Double", sa.Float)
metadata = sa.MetaData(schema=SCHEMA)


def _sql_type(arrow_type: pa.DataType) -> sa.types.TypeEngine:
    if pa.types.is_string(arrow_type):
        return sa.String()
    if pa.types.is_floating(arrow_type):
        # Float would make Trino cast divisors to REAL (32-bit). Superset's venv has SQLAlchemy 1.4,
        # without Double: it only builds the DuckDB views, where Float renders the same.
        return DOUBLE()
    if pa.types.is_int32(arrow_type):
        return sa.Integer()
    if pa.types.is_integer(arrow_type):
        return sa.BigInteger()
    if pa.types.is_boolean(arrow_type):
        return sa.Boolean()
    if pa.types.is_timestamp(arrow_type):
        return sa.DateTime(timezone=arrow_type.tz is not None)
    if pa.types.is_date(arrow_type):
        return sa.Date()
    return sa.types.NullType()  # lists: selected as they are, never computed on


def _core_table(table: tables.Table) -> sa.Table:
    return sa.Table(table.name, metadata, *(sa.Column(f.name, _sql_type(f.type)) for f in table.schema))


trades = _core_table(tables.TRADES)
rejects = _core_table(tables.REJECTS)
bars_1m = _core_table(tables.BARS_1M)
quotes = _core_table(tables.QUOTES)
news = _core_table(tables.NEWS)
fundamentals = _core_table(tables.FUNDAMENTALS)
anomaly_labels = _core_table(tables.ANOMALY_LABELS)
anomalies = _core_table(tables.ANOMALIES)
model_drift = _core_table(tables.MODEL_DRIFT)
