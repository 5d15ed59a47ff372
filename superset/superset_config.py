"""Superset's configuration for lakewatch (SUPERSET_CONFIG_PATH points here).

Superset runs in its own venv (it pins SQLAlchemy 1.4), so this file imports only the parts of
lakewatch that are plain Python: settings, logs and the DuckDB lake views. Everything it needs
arrives in the environment from the stack runner (stack/services/superset.py): LAKEWATCH_* settings,
SUPERSET_SECRET_KEY and, on the distributed profile, SUPERSET_DATABASE_URI.

The lake database is `duckdb:///:memory:` on the embedded profile. Superset builds a new engine
for every query, and a fresh in-memory DuckDB would load the delta extension and create the
`market` views each time (about 0.3 s). DB_CONNECTION_MUTATOR below hands Superset connections
to one prepared in-memory database per process instead (lakewatch.sql.duckdb_lake.shared).
"""
from __future__ import annotations

import sys
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parent.parent
if str(_REPO_ROOT) not in sys.path:
    sys.path.append(str(_REPO_ROOT))  # appended: `import superset` stays Apache Superset

from lakewatch import logs, settings as lakewatch_settings  # noqa: E402

_settings = lakewatch_settings.load()

SECRET_KEY = _settings.superset_secret_key
if len(SECRET_KEY) < 32:
    raise RuntimeError("SUPERSET_SECRET_KEY is missing or shorter than 32 characters; `make up` generates one "
                       "for the embedded profile, a deployment sets its own (see .env.example).")

SQLALCHEMY_DATABASE_URI = _settings.superset_database_uri or \
    f"sqlite:///{_settings.superset_dir / 'superset.db'}"

# "Last day" and friends end now, not at midnight: the data is live.
DEFAULT_RELATIVE_START_TIME = "now"
DEFAULT_RELATIVE_END_TIME = "now"

# The chatbot button on the dashboards opens in a new tab (docs/platform.md: target survives only so).
HTML_SANITIZATION_SCHEMA_EXTENSIONS = {"attributes": {"*": ["style", "className", "target", "rel"]}}

# The dashboards bucket minute bars by 5 and 15 minutes; neither engine spec has those grains.
TIME_GRAIN_ADDON_EXPRESSIONS = {
    engine: {grain: expression.format(n=n, col="{col}") for grain, n in (("PT5M", 5), ("PT15M", 15))}
    for engine, expression in (
        ("duckdb", "time_bucket(INTERVAL '{n} minutes', {col})"),
        ("trino", "date_add('minute', -(minute({col}) % {n}), date_trunc('minute', {col}))"),
    )
}

SQLLAB_TIMEOUT = 60
SUPERSET_WEBSERVER_TIMEOUT = 120
FEATURE_FLAGS = {"DASHBOARD_RBAC": False, "ALERT_REPORTS": False}


def DB_CONNECTION_MUTATOR(url, params, username, security_manager, source):  # noqa: N802 (Superset's name)
    """Connections to the embedded lake come from one prepared DuckDB per process."""
    if url.get_backend_name() == "duckdb" and (url.database or ":memory:") == ":memory:":
        params["creator"] = _lake_connection
    return url, params


def _ask_duckdb_for_reserved_words_once():
    """duckdb_engine asks DuckDB for its reserved words whenever a dialect is made, and Superset
    makes an engine, so a dialect, for every query: about 10% of a chart-data request. The
    answer is fixed per DuckDB version, so it is asked once per process here."""
    import duckdb
    import duckdb_engine
    from sqlalchemy.dialects.postgresql.base import PGIdentifierPreparer

    reserved = {word for (word,) in duckdb.connect().execute(
        "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'").fetchall()}
    duckdb_engine.DuckDBIdentifierPreparer.reserved_words = PGIdentifierPreparer.reserved_words | reserved
    duckdb_engine.DuckDBIdentifierPreparer.__init__ = PGIdentifierPreparer.__init__


if _settings.sql_backend == "duckdb":  # the compose image has no DuckDB: its lake is Trino
    _ask_duckdb_for_reserved_words_once()


def _aggregate_post_processing_in_pandas():
    """Superset hands pandas its post-processing aggregates as functools.partial(np.mean), which
    pandas cannot recognise, so it calls the function once per group in Python: 270 ms to pivot
    a day of 5-minute prices for 11 symbols, twice per Market overview load. Given the name
    ("mean"), pandas aggregates in compiled code in 13 ms with the same result; that is also
    what pandas does when handed np.mean itself. Only plain numpy reductions are renamed."""
    import functools
    import importlib

    import numpy as np
    from pandas import NamedAgg

    by_name = {np.mean: "mean", np.sum: "sum", np.min: "min", np.max: "max", np.median: "median"}
    for name in ("pivot", "aggregate"):
        # By import_module: the package's attributes of these names are the functions, not the modules.
        module = importlib.import_module(f"superset.utils.pandas_postprocessing.{name}")
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


_aggregate_post_processing_in_pandas()

_lake_cursor = None


def _lake_connection():
    global _lake_cursor
    import duckdb_engine
    from lakewatch.sql import duckdb_lake

    if _lake_cursor is None:
        _lake_cursor = duckdb_lake.shared(_settings)
    return duckdb_engine.ConnectionWrapper(_lake_cursor())


class _JsonLogs:
    """Superset's logging as lakewatch's JSON lines, with the secret key and admin password scrubbed."""

    def configure_logging(self, app_config, debug_mode):
        logs.setup("superset")  # it scrubs the settings' secrets, Superset's own among them
        import logging

        logging.getLogger("flask_appbuilder").setLevel(logging.WARNING)
        logging.captureWarnings(True)


LOGGING_CONFIGURATOR = _JsonLogs()


def _event_logger():
    """Superset's user events (dashboard views, chart loads, SQL Lab runs) as JSON log lines.

    Its default DBEventLogger commits a row to the metadata database in the middle of every
    request, and the commit expires the request's user, database and dataset objects, which
    Superset then loads again: about 30% of a chart-data request on the embedded profile's
    SQLite (docs/superset.md). The events stay in the service's structured log instead of
    Superset's Action Log page."""
    import logging

    from superset.utils.log import AbstractEventLogger

    log = logging.getLogger("superset.events")

    class JsonEventLogger(AbstractEventLogger):
        def log(self, user_id, action, dashboard_id, duration_ms, slice_id, referrer, *args, **kwargs):
            for record in kwargs.get("records") or [kwargs.get("curated_payload") or {}]:
                logs.event(log, "superset event", action=action, user_id=user_id,
                           dashboard_id=dashboard_id or record.get("dashboard_id"),
                           slice_id=slice_id or record.get("slice_id"), duration_ms=duration_ms,
                           event_name=record.get("event_name"), path=record.get("path"))

    return JsonEventLogger()


EVENT_LOGGER = _event_logger()


def FLASK_APP_MUTATOR(app):  # noqa: N802 (Superset's name)
    """Prometheus metrics at /metrics: requests by endpoint, latency, errors."""
    from prometheus_flask_exporter import PrometheusMetrics

    PrometheusMetrics(app, path="/metrics", group_by="endpoint", default_labels={"service": "superset"})
