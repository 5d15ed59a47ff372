"""Makes Superset ready before its web server starts; run on every start, safe to repeat.

    <superset venv>/bin/python superset/provision.py

1. upgrades the metadata database (Superset's migrations),
2. syncs roles and permissions (`superset init`),
3. creates the admin from SUPERSET_ADMIN_USER / SUPERSET_ADMIN_PASSWORD, or resets its password,
4. imports superset/assets: the lake database, a dataset per `market` table and view, the
   charts, dashboards and SQL Lab saved queries (UUID-keyed, so a second import updates in place),
5. reads every dataset's columns from the lake, and saves each chart's query context so
   /api/v1/chart/<id>/data answers without a browser having opened the chart first,
6. keeps the Analyst role: the dashboards and SQL Lab on the lake, no admin rights
   (docs/superset.md, "Analysts").

Runs in Superset's venv, where lakewatch is installed without its dependencies (stack/bootstrap.py);
settings arrive as LAKEWATCH_* variables like everywhere else. Run by path, like superset_config.py:
superset/ is not a package (`import superset` is Apache Superset).
"""
from __future__ import annotations

import json
import string
import sys
import time
import uuid
from pathlib import Path

import yaml

ASSETS = Path(__file__).resolve().parent / "assets"


def step(n: int, total: int, text: str) -> None:
    print(f"superset provision [{n}/{total}] {text}", flush=True)


def lake_uri(settings) -> str:
    """Superset's URI for the lake: DuckDB in memory (superset_config.py prepares it) or Trino."""
    if settings.sql_engine == "duckdb":
        return "duckdb:///:memory:"
    return settings.trino_url.rsplit("/", 1)[0]  # the catalog; datasets name their schema


def bundle(settings) -> dict[str, str]:
    """The assets as Superset's importer wants them: path -> YAML text, with the ${...}
    placeholders in their values filled (after parsing, so a value never breaks the YAML)."""
    values = {"lake_uri": lake_uri(settings), "chat_url": settings.chat_page_url}

    def fill(node):
        if isinstance(node, str):
            return string.Template(node).substitute(values)
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        return node

    return {str(path.relative_to(ASSETS)): yaml.safe_dump(fill(yaml.safe_load(path.read_text())))
            for path in sorted(ASSETS.rglob("*.yaml"))}


ANALYST = "Analyst"


def analyst_role(security_manager, db) -> None:
    """What Superset's Gamma role may do (open dashboards and charts, explore) and its sql_lab
    role (run queries, save them), on the lake database only. No role here can change a
    database connection, a user or a role. The lake itself is read-only for every role
    (docs/sql.md, "What SQL users can do"): this role keeps analysts out of Superset's admin."""
    from superset.models.core import Database

    lake = db.session.query(Database).filter_by(database_name="lake").one()
    role = security_manager.find_role(ANALYST) or security_manager.add_role(ANALYST)
    granted = {*security_manager.find_role("Gamma").permissions, *security_manager.find_role("sql_lab").permissions,
               security_manager.add_permission_view_menu("database_access", lake.perm)}
    role.permissions = sorted(granted, key=str)


def admin_user(security_manager, username: str, password: str):
    user = security_manager.find_user(username=username)
    if user is None:
        user = security_manager.add_user(username, "lakewatch", "admin", f"{username}@lakewatch.invalid",
                                         security_manager.find_role("Admin"), password=password)
        if not user:
            raise RuntimeError(f"could not create the Superset admin {username!r}")
    else:
        security_manager.reset_password(user.id, password)
    return user


def refresh_columns(db, uuids: set[uuid.UUID]) -> list[str]:
    """Physical columns from the lake for the bundle's datasets; names of those not readable yet."""
    from superset.connectors.sqla.models import SqlaTable

    missing = []
    for dataset in db.session.query(SqlaTable).filter(SqlaTable.uuid.in_(uuids)):
        try:
            dataset.fetch_metadata()
        except Exception as exc:  # a table the lake does not have yet: its charts say so until it does
            missing.append(f"{dataset.table_name} ({type(exc).__name__})")
    return missing


def save_query_contexts(db, uuids: set[uuid.UUID]) -> None:
    """The query context the REST data endpoint runs, built from each chart's saved form data
    by Superset's own Python port of the frontend's buildQueryContext."""
    from superset.migrations.shared.migrate_viz.query_functions import build_query_context
    from superset.models.slice import Slice

    for chart in db.session.query(Slice).filter(Slice.uuid.in_(uuids)):
        form_data = {**json.loads(chart.params), "datasource": f"{chart.datasource_id}__table",
                     "slice_id": chart.id}

        def with_x_axis(query, x_axis=form_data.get("x_axis")):
            """As the frontend's timeseries and heatmap builders do: the x axis is the first column."""
            if x_axis and x_axis not in query["columns"]:
                query["columns"] = [x_axis, *query["columns"]]
            return [query]

        chart.params = json.dumps(form_data)
        chart.query_context = json.dumps(build_query_context(form_data, with_x_axis))


def main() -> int:
    from lakewatch import settings as lakewatch_settings  # installed in Superset's venv without its dependencies

    settings = lakewatch_settings.load()
    username, password = settings.superset_admin_user, settings.superset_admin_password
    if not password:
        print("superset provision: SUPERSET_ADMIN_PASSWORD is not set; set it to the admin's password.",
              file=sys.stderr)
        return 1
    settings.superset_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    from flask_migrate import upgrade
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        import superset
        from superset import appbuilder, db, security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.utils.core import override_user

        step(1, 6, "upgrading the metadata database")
        upgrade(directory=str(Path(superset.__file__).parent / "migrations"))
        step(2, 6, "syncing roles and permissions")
        appbuilder.add_permissions(update_perms=True)
        security_manager.sync_role_definitions()
        db.session.commit()
        step(3, 6, f"admin user {username!r}")
        admin = admin_user(security_manager, username, password)
        db.session.commit()

        contents = bundle(settings)
        step(4, 6, f"importing {len(contents) - 1} assets from {ASSETS}")
        with override_user(admin):
            ImportAssetsCommand(contents).run()
        configs = [yaml.safe_load(text) for name, text in contents.items() if name != "metadata.yaml"]
        datasets = {uuid.UUID(c["uuid"]) for c in configs if "table_name" in c}
        charts = {uuid.UUID(c["uuid"]) for c in configs if "slice_name" in c}
        step(5, 6, "reading dataset columns from the lake, saving chart queries")
        missing = refresh_columns(db, datasets)
        save_query_contexts(db, charts)
        db.session.commit()
        step(6, 6, f"the {ANALYST} role: dashboards and SQL Lab on the lake, no admin rights")
        analyst_role(security_manager, db)
        db.session.commit()
    if missing:
        print(f"superset provision: not in the lake yet (their charts wait for data): {', '.join(missing)}",
              flush=True)
    print(f"superset provision: ready in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
