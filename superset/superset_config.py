"""Superset's configuration for lakewatch (SUPERSET_CONFIG_PATH points here).

Superset runs in its own venv (it pins SQLAlchemy 1.4), so this file imports only the parts of
lakewatch that are plain Python: settings, logs and the DuckDB lake views. Everything it needs
arrives in the environment from the stack runner (stack/services/superset.py): LAKEWATCH_* settings,
SUPERSET_SECRET_KEY and, on the distributed profile, SUPERSET_DATABASE_URI.

The lake database is `duckdb:///:memory:` on the embedded profile. Superset builds a new engine
for every query, and a fresh in-memory DuckDB would load the delta extension and create the
`market` views each time (about 0.3 s). DB_CONNECTION_MUTATOR below hands Superset connections
to one prepared in-memory database per process instead (lakewatch.sql.duckdb_lake.shared).

lakewatch is installed in Superset's venv without its dependencies (stack/bootstrap.py), and in
the compose image likewise (superset/Dockerfile). The patches of library internals that Superset's
process needs are all in superset_patches.py beside this file, loaded by path as this file is.
"""
from __future__ import annotations

from pathlib import Path

from lakewatch import logs, patches, settings as lakewatch_settings

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


# Patches of Superset's and duckdb_engine's internals: superset_patches.py, each with its guard.
patches.load(str(Path(__file__).resolve().with_name("superset_patches.py"))).apply(_settings)

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
