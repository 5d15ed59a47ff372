"""The few SQL expressions DuckDB and Trino spell differently, each rendered per dialect.

Everything else in the shared queries and views is SQL both engines read the same way; tests
compile every query for both dialects and parse the result, so a new difference fails in CI.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

ONE_DAY = sa.literal_column("INTERVAL '1' DAY")


class string_list(FunctionElement):
    """Aggregate strings into one, separated by ', ', in the order of `order_by`."""

    type = sa.String()
    name = "string_list"
    inherit_cache = True

    def __init__(self, value, order_by):
        super().__init__(value, order_by)


def _args(element, compiler, **kw):
    value, order_by = list(element.clauses)
    return compiler.process(value, **kw), compiler.process(order_by, **kw)


@compiles(string_list)
def _string_list_default(element, compiler, **kw):
    value, order_by = _args(element, compiler, **kw)
    return f"string_agg({value}, ', ' ORDER BY {order_by})"


@compiles(string_list, "trino")
def _string_list_trino(element, compiler, **kw):
    value, order_by = _args(element, compiler, **kw)
    return f"array_join(array_agg({value} ORDER BY {order_by}), ', ')"


class decimal_text(FunctionElement):
    """A number as plain text with `scale` decimals (a cast of a double to text is
    scientific notation on Trino, plain on DuckDB)."""

    type = sa.String()
    name = "decimal_text"
    inherit_cache = True

    def __init__(self, value, scale: int = 4):
        self.scale = scale
        super().__init__(value)


@compiles(decimal_text)
def _decimal_text(element, compiler, **kw):
    (value,) = list(element.clauses)
    return f"CAST(CAST({compiler.process(value, **kw)} AS DECIMAL(18, {element.scale})) AS VARCHAR)"


class json_text(FunctionElement):
    """The value of one top-level key of a JSON object held as text, as text (NULL when absent).
    Keys are quoted on Trino, so Finnhub's names that start with a digit ("52WeekHigh") work."""

    type = sa.String()
    name = "json_text"
    inherit_cache = True

    def __init__(self, document, key: str):
        self.key = key
        super().__init__(document)


@compiles(json_text)
def _json_text_default(element, compiler, **kw):
    (document,) = list(element.clauses)
    key = element.key.replace("'", "''")
    return f"json_extract_string({compiler.process(document, **kw)}, '{key}')"


@compiles(json_text, "trino")
def _json_text_trino(element, compiler, **kw):
    (document,) = list(element.clauses)
    key = element.key.replace("'", "''").replace('"', '\\"')
    return f"""json_extract_scalar({compiler.process(document, **kw)}, '$["{key}"]')"""
