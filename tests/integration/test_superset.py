"""Superset as `make up` starts it: provisioned from superset/assets, reading this test's lake.

One stack for the module (private state folder and ports): a 6-hour bootstrap backfill goes
through the broker and the stream job into Delta, the first-model job trains the first model,
serving serves it, the scorer writes `anomalies`, and Superset comes up with the dashboards. Everything the charts show
was written by that stack during this test. Screenshots land in var/test-artifacts/superset/.
"""
from __future__ import annotations

import json
import re
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from deltalake import DeltaTable

from lakewatch import tables
from lakewatch.settings import REPO_ROOT
from lakewatch.sql import sql_engine, views
from stack import runner as stack
from stack.services import services, venv_python
from stack.services import superset as superset_service
from testkit import hostile_sql
from testkit.processes import make, private_settings, wait_for
from testkit.superset_client import (SupersetAPI, assert_dashboard_renders, browser_page, chart_holder,
                                     open_dashboard)

pytestmark = pytest.mark.integration

ASSETS = REPO_ROOT / "superset" / "assets"
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts" / "superset"
CHAT_URL = "http://127.0.0.1:5999/chat-from-settings/"
DASHBOARDS = {"market-overview": "Market overview", "anomalies": "Anomalies",
              "news-and-fundamentals": "News and fundamentals"}


def _assets(kind: str) -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ASSETS / kind).rglob("*.yaml"))]


def _flagged(settings) -> int:
    path = str(tables.ANOMALIES.path(settings.lake_dir))
    if not DeltaTable.is_deltatable(path):
        return 0
    return sum(DeltaTable(path).to_pyarrow_table(columns=["is_anomaly"])["is_anomaly"].to_pylist())


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    state = tmp_path_factory.mktemp("superset")
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, state / "var", bootstrap_hours=6, sim_anomalies_per_hour=3,
                                    serving_reload_seconds=1, chatbot_url=CHAT_URL, sql_engine="trino")
        try:
            up = make("up", timeout=900)
            assert up.returncode == 0, up.stdout + up.stderr
            # The first model trained on the bootstrap history and its verdicts are in the lake.
            wait_for(lambda: _flagged(settings) > 0, 600, "flagged bars from the first model", every=2)
            # Airflow measures drift at 5 past each hour; the drift chart needs one measure now.
            drift = make("drift")
            assert drift.returncode == 0 and "drift of the hour" in drift.stdout, drift.stdout + drift.stderr
            yield settings, SupersetAPI(settings.url(settings.superset_port))
        finally:
            down = make("down")
            assert down.returncode == 0, down.stdout + down.stderr


@pytest.fixture(scope="module")
def page(live):
    settings, _ = live
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with browser_page(settings.url(settings.superset_port)) as page:
        yield page


def test_make_up_provisions_the_lake_database_datasets_charts_and_dashboards(live):
    settings, api = live
    databases = api.listing("database")
    assert [(d["database_name"], d["backend"]) for d in databases] == [("lake", "trino")]
    datasets = {(d["schema"], d["table_name"]) for d in api.listing("dataset")}
    every_table = {("market", t.name) for t in tables.ALL_TABLES} | {("market", v.name) for v in views.VIEWS}
    assert datasets == every_table
    assert {c["slice_name"] for c in api.listing("chart")} == {c["slice_name"] for c in _assets("charts")}
    assert {d["slug"]: d["dashboard_title"] for d in api.listing("dashboard")} == DASHBOARDS
    for slug in DASHBOARDS:
        in_yaml = next(d for d in _assets("dashboards") if d["slug"] == slug)
        charts = api.get(f"/api/v1/dashboard/{slug}/charts")["result"]
        assert {c["slice_name"] for c in charts} == {
            item["meta"]["sliceName"] for item in in_yaml["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"}


def test_every_chart_returns_rows_the_stack_wrote(live):
    settings, api = live
    for chart in api.listing("chart"):
        data = api.chart_data(chart["id"])
        (result,) = data["result"][:1]
        assert not result.get("error"), (chart["slice_name"], result["error"])
        assert result["rowcount"] > 0, f"{chart['slice_name']} returned no rows"


def test_a_big_number_equals_the_same_question_asked_in_sql(live):
    settings, api = live
    chart = next(c for c in api.listing("chart") if c["slice_name"] == "Anomalies today: crypto")
    query = sa.text("SELECT count(*) FROM market.anomalies_today WHERE asset_class = 'crypto' AND opens_episode")
    with sql_engine(settings).connect() as con:
        before = con.execute(query).scalar_one()
        (row,) = api.chart_data(chart["id"])["result"][0]["data"]
        after = con.execute(query).scalar_one()
    assert before <= next(iter(row.values())) <= after  # the live scorer keeps adding verdicts


def test_sql_lab_runs_every_saved_query_on_the_lake(live):
    settings, api = live
    lake = next(d for d in api.listing("database") if d["database_name"] == "lake")
    saved = api.listing("saved_query")
    assert {q["label"] for q in saved} == {q["label"] for q in _assets("queries")}
    for query in saved:
        result = api.sql_lab(lake["id"], query["sql"])
        assert result["status"] == "success", (query["label"], result)
    summary = api.sql_lab(lake["id"], "SELECT asset_class, symbols FROM market.asset_class_summary ORDER BY 1")
    assert [(r["asset_class"], r["symbols"]) for r in summary["data"]] == [
        ("crypto", len(settings.crypto)), ("forex", len(settings.forex)), ("stocks", len(settings.stocks))]


def test_a_bad_sql_lab_query_gets_an_error_that_names_the_reason(live):
    settings, api = live
    lake = next(d for d in api.listing("database") if d["database_name"] == "lake")

    def run(sql):
        return api.post("/api/v1/sqllab/execute/", {"database_id": lake["id"], "sql": sql, "schema": "market",
                                                     "runAsync": False, "client_id": uuid.uuid4().hex[:10],
                                                     "tab": "api"})

    syntax = run("SELEC 1")
    assert syntax.status_code == 422 and syntax.json()["errors"][0]["error_type"] == "INVALID_SQL_ERROR"
    unknown = run("SELECT nope FROM market.trades")  # Superset answers database errors with 500
    message = unknown.json()["errors"][0]["message"]
    assert unknown.status_code == 500 and "'nope' cannot be resolved" in message, message


def _sql_lab_post(api, database_id: int, sql: str):
    return api.post("/api/v1/sqllab/execute/", {"database_id": database_id, "sql": sql, "schema": "market",
                                                 "runAsync": False, "client_id": uuid.uuid4().hex[:10], "tab": "api"})


def test_sql_lab_refuses_every_hostile_statement_and_writes_nothing(live, tmp_path):
    """Both batteries through SQL Lab's REST API, as the admin: Superset's guard and Trino's access
    control (docs/sql.md, "What SQL users can do") answer each with an error."""
    settings, api = live
    lake = next(d for d in api.listing("database") if d["database_name"] == "lake")
    planted = [tmp_path / "copied.csv", tmp_path / "exported", tmp_path / "attached.duckdb",
               settings.lake_dir / "planted.parquet", settings.lake_dir / "trades" / "_delta_log" /
               "99999999999999999999.json"]
    accepted = []
    for family, sql in hostile_sql.statements(tmp_path, settings.lake_dir) + hostile_sql.trino_statements(tmp_path):
        response = _sql_lab_post(api, lake["id"], sql)
        errors = response.json().get("errors") if response.status_code != 200 else None
        if not errors or not errors[0].get("message"):
            accepted.append((family, sql, response.status_code, response.text[:200]))
    assert accepted == []
    assert [p for p in planted if p.exists()] == [] and hostile_sql.files_under(tmp_path) == set()
    # Nothing of the above broke the lake's connection: SQL Lab still answers from the lake.
    assert api.sql_lab(lake["id"], "SELECT count(*) AS n FROM market.trades")["data"][0]["n"] > 0


def test_an_analyst_runs_sql_lab_and_opens_dashboards_without_admin_rights(live):
    settings, admin = live
    created = subprocess.run(
        [str(venv_python(settings, "superset").parent / "superset"), "fab", "create-user", "--role", "Analyst",
         "--username", "ana", "--firstname", "Ana", "--lastname", "analyst", "--email", "ana@lakewatch.invalid",
         "--password", "ana-password"], env=superset_service.environment(settings), capture_output=True, text=True,
        timeout=300)
    assert created.returncode == 0 and "created" in created.stdout.lower(), created.stdout + created.stderr
    ana = SupersetAPI(settings.url(settings.superset_port), "ana", "ana-password")
    lake = next(d for d in ana.listing("database") if d["database_name"] == "lake")
    assert ana.sql_lab(lake["id"], "SELECT count(*) AS n FROM market.trades")["data"][0]["n"] > 0
    for slug in DASHBOARDS:
        assert ana.get(f"/api/v1/dashboard/{slug}/charts")["result"]
    # No admin rights: no new database connection, no change to the lake's, no users, no roles.
    assert ana.post("/api/v1/database/", {"database_name": "mine", "sqlalchemy_uri": "duckdb:///:memory:"}
                    ).status_code in (401, 403)
    assert ana.session.put(f"{ana.base}/api/v1/database/{lake['id']}", json={"allow_dml": True},
                           timeout=30).status_code in (401, 403)
    assert ana.session.get(f"{ana.base}/api/v1/security/roles/", timeout=30).status_code in (401, 403, 404)
    # And the lake stays read-only for an analyst too.
    copy = _sql_lab_post(ana, lake["id"], f"COPY (SELECT 1) TO '{settings.lake_dir / 'planted.csv'}'")
    assert copy.status_code != 200 and not (settings.lake_dir / "planted.csv").exists()


@pytest.mark.parametrize("slug", list(DASHBOARDS))
def test_each_dashboard_renders_every_chart_without_an_error(live, page, slug):
    _, api = live
    assert_dashboard_renders(page, api, slug, screenshot=ARTIFACTS / f"{slug}.png")


def test_picking_an_asset_class_changes_the_numbers_accordingly(live, page):
    settings, _ = live
    query = sa.text("SELECT current_date, count(*) FROM market.anomalies_today "
                    "WHERE asset_class = 'crypto' AND opens_episode")

    def big_number(asset_class: str) -> int:
        return int(chart_holder(page, f"Anomalies today: {asset_class}").locator(".header-line").inner_text()
                   .replace(",", ""))

    def prices() -> list[str]:
        return chart_holder(page, "Latest prices").locator("tbody tr td:first-child").all_inner_texts()

    for _ in range(2):  # a second try only if the day changed while the page loaded
        open_dashboard(page, settings.url(settings.superset_port), "market-overview")
        assert sorted(prices()) == sorted(settings.symbols)
        with sql_engine(settings).connect() as con:
            day_before, crypto_before = con.execute(query).one()
            page.locator("[data-test='NATIVE_FILTER-market_overview-asset-class']").click()
            page.keyboard.type("crypto")
            page.keyboard.press("Enter")
            page.keyboard.press("Escape")
            page.locator("[data-test='filter-bar__apply-button']").click()
            wait_for(lambda: sorted(prices()) == sorted(settings.crypto), 60, "latest prices of crypto only",
                     every=0.5)
            page.wait_for_load_state("networkidle")
            day_after, crypto_after = con.execute(query).one()
        if day_before == day_after:
            break
    page.screenshot(path=str(ARTIFACTS / "market-overview-crypto.png"), full_page=True)
    assert big_number("stocks") == 0 and big_number("forex") == 0
    assert crypto_before <= big_number("crypto") <= crypto_after  # the live scorer keeps adding verdicts


def test_the_chatbot_button_is_visible_and_links_to_the_configured_url(live, page):
    settings, _ = live
    for slug in DASHBOARDS:
        open_dashboard(page, settings.url(settings.superset_port), slug)
        button = page.get_by_role("link", name="Chat with the lakewatch bot")
        assert button.is_visible()
        assert button.get_attribute("href") == CHAT_URL and button.get_attribute("target") == "_blank"


def test_restarting_superset_duplicates_nothing(live):
    settings, api = live
    resources = ("database", "dataset", "chart", "dashboard", "saved_query")

    def inventory(client):
        return {r: sorted((i["id"], i.get("uuid")) for i in client.listing(r)) for r in resources}

    before = inventory(api)
    assert stack.stop(settings, "superset")
    up = make("up", timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr
    others = len(services(settings)) - 1 + 1  # every other service, and the supervisor
    assert re.search(r"superset +started", up.stdout) and up.stdout.count("already running") == others
    assert inventory(SupersetAPI(settings.url(settings.superset_port))) == before


def test_superset_serves_health_and_prometheus_metrics(live):
    settings, _ = live
    import requests

    assert requests.get(settings.url(settings.superset_port, "/health"), timeout=10).text == "OK"
    metrics = requests.get(settings.url(settings.superset_port, "/metrics"), timeout=10).text
    assert "flask_http_request_duration_seconds" in metrics


def test_superset_events_go_to_its_structured_log_not_to_the_metadata_database(live):
    settings, api = live
    chart = next(c for c in api.listing("chart") if c["slice_name"] == "Latest prices")
    assert api.chart_data(chart["id"])["result"][0]["rowcount"] > 0
    events = [json.loads(line) for line in (settings.log_dir / "superset.log").read_text().splitlines()
              if line.startswith("{") and '"superset event"' in line]
    assert any(e["path"] == f"/api/v1/chart/{chart['id']}/data/" and e["user_id"] for e in events), events[-5:]
    assert api.get("/api/v1/log/")["count"] == 0


def test_the_secret_key_is_generated_per_install_and_never_logged(live):
    settings, _ = live
    key_file = Path(settings.superset_dir / "secret_key")
    key = key_file.read_text().strip()
    assert len(key) >= 32 and oct(key_file.stat().st_mode)[-3:] == "600"
    assert key not in (settings.log_dir / "superset.log").read_text()
    assert key not in (REPO_ROOT / "superset" / "superset_config.py").read_text()


AGGREGATES_PROBE = """
import json, sys
import numpy as np, pandas as pd
import superset.config  # loads superset_config.py, which renames the reductions
from superset.utils.pandas_postprocessing import aggregate, pivot

modules = [sys.modules[f"superset.utils.pandas_postprocessing.{m}"] for m in ("pivot", "aggregate")]
rng = np.random.default_rng(7)
df = pd.DataFrame({"t": rng.integers(0, 50, 2000), "s": rng.choice(list("abc"), 2000), "v": rng.random(2000)})
out = {}
for op in ("mean", "sum", "min", "max", "median"):
    funcs = {m.__name__.rsplit(".", 1)[1]: str(m._get_aggregate_funcs(df, {"v": {"operator": op}})["v"].aggfunc)
             for m in modules}
    numpy_op = getattr(np, op)
    pivoted = pivot(df, index=["t"], columns=["s"], aggregates={"v": {"operator": op}}, drop_missing_columns=False)
    by_hand = df.groupby(["t", "s"])["v"].apply(numpy_op).unstack()
    grouped = aggregate(df, groupby=["t"], aggregates={"v": {"operator": op}}).set_index("t")["v"]
    out[op] = {"funcs": funcs, "pivot": bool(np.allclose(pivoted.to_numpy(), by_hand.to_numpy(), equal_nan=True)),
               "aggregate": bool(np.allclose(grouped, df.groupby("t")["v"].apply(numpy_op)))}
kept = aggregate(df, groupby=["t"], aggregates={"q": {"column": "v", "operator": "percentile", "options": {"q": 90}}})
out["percentile"] = bool(np.allclose(kept.set_index("t")["q"], df.groupby("t")["v"].apply(np.percentile, q=90)))
print(json.dumps(out))
"""


def test_chart_aggregates_run_in_pandas_compiled_code_with_numpys_results(live):
    settings, _ = live
    import subprocess

    from stack.services import superset, venv_python

    done = subprocess.run([str(venv_python(settings, "superset")), "-c", AGGREGATES_PROBE], env=superset.environment(settings),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out.pop("percentile") is True  # reductions with options stay numpy's
    for op, found in out.items():
        assert found["funcs"] == {"pivot": op, "aggregate": op}, (op, found)  # pandas' name: its compiled path
        assert found["pivot"] and found["aggregate"], (op, found)  # per group, what numpy gives
