"""The Superset bundle in superset/assets is consistent before Superset ever reads it.

Every chart points at a dataset of the bundle and uses only its metrics and the columns the lake
contract (or a curated view) has; every dashboard holds existing charts, the three native filters
and the chatbot button; every saved query runs on DuckDB over an empty lake and parses as Trino
(tests/unit/test_saved_queries.py checks they are what lakewatch/sql/saved_queries.py generates).
"""
from __future__ import annotations

import pytest
import sqlglot
import yaml

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.settings import REPO_ROOT
from lakewatch.sql import views

ASSETS = REPO_ROOT / "superset" / "assets"


def load(kind: str) -> dict[str, dict]:
    return {p.stem: yaml.safe_load(p.read_text()) for p in sorted((ASSETS / kind).rglob("*.yaml"))}


DATABASES, DATASETS, CHARTS, DASHBOARDS, QUERIES = (load(k) for k in
                                                    ("databases", "datasets", "charts", "dashboards", "queries"))
BY_UUID = {d["uuid"]: d for d in DATASETS.values()}


def lake_columns(name: str) -> set[str]:
    for table in tables.ALL_TABLES:
        if table.name == name:
            return set(table.schema.names)
    view = next(v for v in views.VIEWS if v.name == name)
    return {c.name for c in view.query.selected_columns}


def test_every_lake_table_and_curated_view_is_a_dataset_of_the_lake_database():
    (lake,) = DATABASES.values()
    assert {d["table_name"] for d in DATASETS.values()} == {t.name for t in tables.ALL_TABLES} | {
        v.name for v in views.VIEWS}
    assert all(d["schema"] == "market" and d["database_uuid"] == lake["uuid"] for d in DATASETS.values())
    assert lake["sqlalchemy_uri"] == "${lake_uri}" and not lake["allow_dml"]
    for dataset in DATASETS.values():
        assert dataset["main_dttm_col"] in lake_columns(dataset["table_name"])


def _metrics_of(params: dict) -> list[str]:
    found = [params[k] for k in ("metric",) if k in params]
    return found + params.get("metrics", []) + params.get("metrics_b", [])


def _columns_of(params: dict) -> set[str]:
    groupby = params.get("groupby", [])
    columns = set([groupby] if isinstance(groupby, str) else groupby)
    columns |= set(params.get("all_columns", []))
    columns |= {params["x_axis"]} if "x_axis" in params else set()
    columns |= {f["subject"] for f in params.get("adhoc_filters", []) + params.get("adhoc_filters_b", [])}
    return columns


@pytest.mark.parametrize("name", CHARTS)
def test_chart_uses_only_its_datasets_metrics_and_existing_columns(name):
    chart = CHARTS[name]
    dataset = BY_UUID[chart["dataset_uuid"]]
    assert chart["params"]["viz_type"] == chart["viz_type"]
    assert set(_metrics_of(chart["params"])) <= {m["metric_name"] for m in dataset["metrics"]}
    calculated = {c["column_name"] for c in dataset["columns"]}
    assert _columns_of(chart["params"]) <= lake_columns(dataset["table_name"]) | calculated


@pytest.mark.parametrize("dialect", ["duckdb", "trino"])
def test_metric_and_calculated_column_expressions_parse_in_both_dialects(dialect):
    for dataset in DATASETS.values():
        for expression in [m["expression"] for m in dataset["metrics"]] + [c["expression"] for c in dataset["columns"]]:
            sqlglot.parse_one(f"SELECT {expression} FROM t", read=dialect)


def _position_items(dashboard: dict, kind: str) -> list[dict]:
    return [item for item in dashboard["position"].values() if isinstance(item, dict) and item.get("type") == kind]


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_holds_existing_charts_filters_and_the_chatbot_button(name):
    dashboard = DASHBOARDS[name]
    charts = {c["uuid"]: c for c in CHARTS.values()}
    placed = _position_items(dashboard, "CHART")
    assert placed and all(item["meta"]["uuid"] in charts for item in placed)
    assert all(charts[item["meta"]["uuid"]]["slice_name"] == item["meta"]["sliceName"] for item in placed)
    (button,) = _position_items(dashboard, "MARKDOWN")
    assert 'href="${chat_url}"' in button["meta"]["code"] and "Chat with the lakewatch bot" in button["meta"]["code"]

    filters = {f["name"]: f for f in dashboard["metadata"]["native_filter_configuration"]}
    assert {"Symbol", "Time range"} <= set(filters)
    for native in filters.values():
        for target in native["targets"]:
            if target:
                assert target["column"]["name"] in lake_columns(BY_UUID[target["datasetUuid"]]["table_name"])
    assert dashboard["metadata"]["refresh_frequency"] > 0


def test_the_live_dashboards_filter_by_asset_class_and_refresh_within_a_minute():
    for name in ("market_overview", "anomalies"):
        metadata = DASHBOARDS[name]["metadata"]
        assert "Asset class" in {f["name"] for f in metadata["native_filter_configuration"]}
        assert metadata["refresh_frequency"] <= 60


def test_every_saved_query_runs_on_duckdb_over_an_empty_lake_and_parses_as_trino(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKEWATCH_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LAKEWATCH_SQL_ENGINE", "duckdb")
    settings = settings_module.load()
    tables.ensure(settings.lake_dir)
    from lakewatch.sql import sql_engine

    with sql_engine(settings).connect() as con:
        for query in QUERIES.values():
            con.exec_driver_sql(query["sql"]).fetchall()
            sqlglot.parse_one(query["sql"], read="trino")
    assert len(QUERIES) >= 5


def test_no_secret_lives_in_the_superset_config():
    config = (REPO_ROOT / "superset" / "superset_config.py").read_text()
    assert "SECRET_KEY = _settings.superset_secret_key" in config  # lakewatch/settings/ reads the environment
    assert "PASSWORD" not in config


def test_the_bundle_fills_its_placeholders_from_settings():
    """superset/provision.py's bundle(), run in this venv: it needs only pyyaml and settings."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("provision", REPO_ROOT / "superset" / "provision.py")
    provision = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(provision)
    settings = settings_module.Settings(chatbot_url="http://chat.example:1/x")
    filled = provision.bundle(settings)
    assert "${" not in "".join(filled.values())
    assert yaml.safe_load(filled["databases/lake.yaml"])["sqlalchemy_uri"] == "trino://lakewatch@127.0.0.1:8080/delta"
    light = provision.bundle(settings_module.Settings(sql_engine="duckdb"))
    assert yaml.safe_load(light["databases/lake.yaml"])["sqlalchemy_uri"] == "duckdb:///:memory:"
    assert "http://chat.example:1/x" in filled["dashboards/market_overview.yaml"]
    distributed = provision.bundle(settings_module.Settings(profile="distributed", trino_host="trino"))
    assert yaml.safe_load(distributed["databases/lake.yaml"])["sqlalchemy_uri"] == "trino://lakewatch@trino:8080/delta"
