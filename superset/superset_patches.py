"""Every patch of a library's internals in Superset's processes, in one place.

superset_config.py loads this file by path, as Superset loads superset_config.py itself
(superset/ is not a package, so `import superset` stays Apache Superset), and calls
apply(settings). Each patch is guarded (lakewatch/patches.py): PATCHES records the source hash
of what it relies on and a behaviour check, and tests/unit/test_patch_guards.py runs them in
the superset venv, so an upgrade of Superset, duckdb_engine or SQLAlchemy that changes a target
fails with a sentence naming the patch to re-check.
"""
from __future__ import annotations

import functools
import importlib

from lakewatch.patches import Patch

# The modules whose `_get_aggregate_funcs` global the post-processing patch replaces.
POST_PROCESSING = ("superset.utils.pandas_postprocessing.pivot", "superset.utils.pandas_postprocessing.aggregate")


def ask_duckdb_for_reserved_words_once() -> None:
    """duckdb_engine asks DuckDB for its reserved words whenever a dialect is made, and Superset
    makes an engine, so a dialect, for every query: about 10% of a chart-data request
    (measured, docs/superset.md). The answer is fixed per DuckDB version, so it is asked once
    per process here.

    Relies on: DuckDBIdentifierPreparer.__init__ doing nothing but PGIdentifierPreparer's
    __init__ plus adding DuckDB's reserved keywords to reserved_words; so PG's __init__ and a
    class-level reserved_words of PG's words and DuckDB's are the same preparer."""
    import duckdb
    import duckdb_engine
    from sqlalchemy.dialects.postgresql.base import PGIdentifierPreparer

    reserved = {word for (word,) in duckdb.connect().execute(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall()}
    duckdb_engine.DuckDBIdentifierPreparer.reserved_words = PGIdentifierPreparer.reserved_words | reserved
    duckdb_engine.DuckDBIdentifierPreparer.__init__ = PGIdentifierPreparer.__init__


def aggregate_post_processing_in_pandas() -> None:
    """Superset hands pandas its post-processing aggregates as functools.partial(np.mean), which
    pandas cannot recognise, so it calls the function once per group in Python: 270 ms to pivot
    a day of 5-minute prices for 11 symbols, twice per Market overview load (measured). Given
    the name ("mean"), pandas aggregates in compiled code in 13 ms with the same result; that is
    also what pandas does when handed np.mean itself. Only plain numpy reductions are renamed.

    Relies on: pivot() and aggregate() looking up `_get_aggregate_funcs` in their own module's
    globals at call time (so replacing that global reaches them), and _get_aggregate_funcs
    returning {metric: NamedAgg(column, aggfunc)} with functools.partial(np.<reduction>) for
    the numpy reductions."""
    import numpy as np
    from pandas import NamedAgg

    by_name = {np.mean: "mean", np.sum: "sum", np.min: "min", np.max: "max", np.median: "median"}
    for module_name in POST_PROCESSING:
        # By import_module: the package's attributes of these names are the functions, not the modules.
        module = importlib.import_module(module_name)
        supersets = module._get_aggregate_funcs

        def named(df, aggregates, supersets=supersets):
            funcs = supersets(df, aggregates)
            for metric, agg in funcs.items():
                func = agg.aggfunc
                if isinstance(func, functools.partial) and not func.args and not func.keywords \
                        and func.func in by_name:
                    funcs[metric] = NamedAgg(column=agg.column, aggfunc=by_name[func.func])
            return funcs

        module._get_aggregate_funcs = named


def apply(settings) -> None:
    """Every patch above that this configuration needs, in the Superset process."""
    if settings.sql_engine == "duckdb":  # the compose image has no DuckDB: its lake is Trino
        ask_duckdb_for_reserved_words_once()
    aggregate_post_processing_in_pandas()


# The guards' behaviour checks: each applies its patch in a fresh process (the guard's) and
# compares with what the original gave on the same input.

def _check_reserved_words() -> None:
    import duckdb_engine

    def preparer():
        made = duckdb_engine.DuckDBIdentifierPreparer(duckdb_engine.Dialect())
        return set(made.reserved_words), [made.quote(name) for name in ("select", "qualify", "pivot", "price", "Ts")]

    original = preparer()
    ask_duckdb_for_reserved_words_once()
    patched = preparer()
    assert patched == original, f"reserved words differ by {original[0] ^ patched[0]}; quoted {patched[1]} " \
                                f"!= {original[1]}"
    assert {"qualify", "pivot"} <= patched[0], "DuckDB's own keywords are no longer reserved"


def _check_post_processing() -> None:
    import pandas as pd
    from pandas.testing import assert_frame_equal
    from superset.utils.pandas_postprocessing import aggregate, pivot

    df = pd.DataFrame({"ts": pd.to_datetime(["2026-11-21 10:00", "2026-11-21 10:00", "2026-11-21 10:05",
                                             "2026-11-21 10:05", "2026-11-21 10:05"]),
                       "symbol": ["AAPL", "MSFT", "AAPL", "MSFT", "MSFT"],
                       "price": [1.0, 2.0, 3.0, 4.0, 6.0], "volume": [10, 20, 30, 40, 60]})
    aggregates = {"price": {"operator": "mean"}, "volume": {"operator": "sum"},
                  "low": {"column": "price", "operator": "min"}, "high": {"column": "price", "operator": "max"},
                  "mid": {"column": "price", "operator": "median"}}

    def run():
        return (pivot(df.copy(), index=["ts"], columns=["symbol"], aggregates=aggregates),
                aggregate(df.copy(), groupby=["symbol"], aggregates=aggregates))

    original = run()
    aggregate_post_processing_in_pandas()
    for before, after in zip(original, run()):
        assert_frame_equal(after, before)


# Recorded with apache-superset 6.1.0, duckdb-engine 0.17.0, SQLAlchemy 1.4.54 (python -m lakewatch.patches --hashes).
PATCHES = (
    Patch("ask_duckdb_for_reserved_words_once", {
        "duckdb_engine:DuckDBIdentifierPreparer.__init__":
            "be2fb3e592fb01228a95e41d0c70ed404ba21356b787dfe2f02d07146fc5fa2d",
        "sqlalchemy.dialects.postgresql.base:PGIdentifierPreparer.__init__":
            "fa8a096bcda3f96d9eba95f3dc58666aefb6402cc7c779ade7cd39f9a59f5db7",
    }, _check_reserved_words),
    Patch("aggregate_post_processing_in_pandas", {
        "superset.utils.pandas_postprocessing.utils:_get_aggregate_funcs":
            "bf4370c5d00a61f43ab23e8140dd819bc52c15383facaeec624871ba5dde4af0",
        "superset.utils.pandas_postprocessing.pivot:":  # pivot() is wrapped: its module
            "041603a2684f443c3e3ae6dceeb67adca14035777693509f69c825110f7abecc",
        "superset.utils.pandas_postprocessing.aggregate:":
            "f69ad81063290c2d0fb6441b05745c94177b255844e1cced5022e3971d90f7f9",
    }, _check_post_processing),
)
