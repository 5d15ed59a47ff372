"""Trino's config and the table registration, checked statically (tests/integration/test_sql.py runs Trino)."""
from pathlib import Path

import pytest
import sqlglot
import yaml

from lakewatch import settings as settings_module
from lakewatch import tables
from lakewatch.settings import REPO_ROOT
from lakewatch.sql import trino_lake, views

ETC = REPO_ROOT / "trino" / "etc"


def properties(path: Path) -> dict[str, str]:
    result = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        assert "=" in line, f"{path.name}:{number} is not key=value: {line!r}"
        key, value = line.split("=", 1)
        assert key.strip() not in result, f"{path.name}:{number} repeats {key}"
        result[key.strip()] = value.strip()
    return result


def test_delta_catalog_reads_local_delta_tables_with_the_file_metastore():
    catalog = properties(ETC / "catalog" / "delta.properties")
    assert catalog["connector.name"] == "delta_lake"
    assert catalog["delta.register-table-procedure.enabled"] == "true"
    assert catalog["hive.metastore"] == "file" and catalog["hive.metastore.catalog.dir"].startswith("local:///")
    assert catalog["fs.native-local.enabled"] == "true" and catalog["local.location"] == "/data"


def test_server_config_parses_and_sessions_run_in_utc():
    config = properties(ETC / "config.properties")
    assert config["http-server.http.port"] == "8080" and config["coordinator"] == "true"
    assert properties(ETC / "node.properties")["node.environment"]
    assert "-Duser.timezone=UTC" in (ETC / "jvm.config").read_text().split()


def test_make_up_runs_trino_with_composes_jvm_flags_and_this_machines_heap(tmp_path):
    from stack.services import trino as trino_service

    settings = settings_module.load({"LAKEWATCH_STATE_DIR": str(tmp_path), "LAKEWATCH_TRINO_HEAP": "1G"})
    flags = trino_service.jvm_flags(settings)
    composes = set((ETC / "jvm.config").read_text().split())
    assert {f for f in flags if not f.startswith("-Xm")} == {
        f for f in composes if not f.startswith("-Xmx")} - {"-XX:+HeapDumpOnOutOfMemoryError"}
    assert flags[-2:] == ["-Xmx1G", "-Xms256m"] and trino_service.command(settings).count("-Xmx1G") == 1


def test_compose_mounts_the_config_and_the_lake_where_the_catalog_expects_them():
    services = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    trino_volumes = services["trino"]["volumes"]
    assert "./trino/etc:/etc/trino:ro" in trino_volumes
    assert any(v.split(":")[1] == "/data/lake" for v in trino_volumes)
    assert any(v.split(":")[1] == "/data/metastore" for v in trino_volumes)  # catalog.dir local:///metastore
    assert services["trino-sync"]["environment"]["LAKEWATCH_PROFILE"] == "distributed"


def test_registration_names_every_table_the_lake_has(tmp_path):
    tables.ensure(tmp_path)
    (tmp_path / "my_own_table" / "_delta_log").mkdir(parents=True)  # a user's table appears too
    (tmp_path / "not_a_table").mkdir()
    lake_tables = tables.in_lake(tmp_path)
    assert set(lake_tables) == {t.name for t in tables.ALL_TABLES} | {"my_own_table"}

    statements = trino_lake.plan(lake_tables, set(), "local:///lake")
    for name in lake_tables:
        assert any(f"table_name => '{name}', table_location => 'local:///lake/{name}'" in s for s in statements)
        assert sum(f"table_name => '{name}'," in s for s in statements) == 1
    assert sum(s.startswith("CREATE OR REPLACE VIEW") for s in statements) == len(views.VIEWS)


def test_registration_is_idempotent():
    lake_tables = tuple(t.name for t in tables.ALL_TABLES)
    first = trino_lake.plan(lake_tables, set(), "local:///lake")
    again = trino_lake.plan(lake_tables, set(lake_tables), "local:///lake")
    assert not any(s.startswith("CALL") for s in again)
    assert all(s.startswith(("CREATE SCHEMA IF NOT EXISTS", "CREATE OR REPLACE VIEW")) for s in again)
    assert [s for s in first if not s.startswith("CALL")] == again


def test_views_wait_for_their_tables():
    statements = trino_lake.plan(("bars_1m",), set(), "local:///lake")
    created = [s.split()[4] for s in statements if s.startswith("CREATE OR REPLACE VIEW")]
    assert created == ["market.latest_prices"]


class TrinoStarting:
    """A connection to a Trino that fails `fails` scans with NO_NODES_AVAILABLE, as a server
    that has just started does (the error text is the trino client's)."""

    def __init__(self, fails: int, error: str = "TrinoQueryError(type=INTERNAL_ERROR, name=NO_NODES_AVAILABLE)"):
        self.fails, self.error, self.scans = fails, error, 0

    def exec_driver_sql(self, statement):
        self.scans += 1
        if self.scans <= self.fails:
            raise RuntimeError(self.error)
        return self

    def all(self):
        return [(1,)]


def test_a_pass_waits_until_trino_can_scan_the_lake():
    connection = TrinoStarting(fails=2)
    trino_lake.wait_until_scans_run(connection, "trades", timeout=10)
    assert connection.scans == 3


def test_other_scan_errors_and_a_trino_that_never_schedules_fail_the_pass():
    with pytest.raises(RuntimeError, match="TABLE_NOT_FOUND"):
        trino_lake.wait_until_scans_run(TrinoStarting(fails=1, error="TABLE_NOT_FOUND"), "trades", timeout=10)
    with pytest.raises(RuntimeError, match="NO_NODES_AVAILABLE"):
        trino_lake.wait_until_scans_run(TrinoStarting(fails=10**6), "trades", timeout=0.6)


def test_every_registration_statement_parses_as_trino_sql():
    for statement in trino_lake.plan(tuple(t.name for t in tables.ALL_TABLES), set(), "local:///lake"):
        sqlglot.parse_one(statement, read="trino")


def test_make_up_runs_composes_config_with_this_machines_port_paths_and_memory(tmp_path):
    from stack.services import trino

    s = settings_module.Settings(state_dir=tmp_path, trino_port=18080, trino_heap="2G")
    files = trino.config(s)
    server, catalog = files["config.properties"], files["catalog/delta.properties"]
    composes = properties(ETC / "config.properties")
    assert server["coordinator"] == composes["coordinator"] and server["node-scheduler.include-coordinator"] == "true"
    assert server["http-server.http.port"] == "18080" and server["node.bind-ip"] == "127.0.0.1"
    # Trino refuses to start unless a query's memory and the headroom fit in the heap.
    heap_mb = 2048
    assert int(server["query.max-memory-per-node"][:-2]) + int(server["memory.heap-headroom-per-node"][:-2]) < heap_mb
    assert {k: v for k, v in catalog.items() if k != "local.location"} == {
        k: v for k, v in properties(ETC / "catalog" / "delta.properties").items() if k != "local.location"}
    assert catalog["local.location"] == str(tmp_path / "trino" / "fs")
    assert files["access-control.properties"]["security.config-file"] == str(ETC / "rules.json")


def test_write_config_links_the_lake_where_the_catalog_looks_for_it(tmp_path):
    from stack.services import trino

    s = settings_module.Settings(state_dir=tmp_path)
    trino.write_config(s)
    trino.write_config(s)  # idempotent
    assert (tmp_path / "trino" / "fs" / "lake").resolve() == s.lake_dir.resolve()
    assert (tmp_path / "trino" / "fs" / "metastore").is_dir()
    assert properties(tmp_path / "trino" / "etc" / "config.properties")["http-server.http.port"] == "8080"


def test_readers_may_only_select_and_only_the_admin_registers(tmp_path):
    import json

    rules = json.loads((ETC / "rules.json").read_text())
    admin = settings_module.Settings().trino_admin_user
    assert rules["catalogs"][-1] == {"catalog": "(delta|system)", "allow": "read-only"}
    assert rules["tables"][-1] == {"privileges": ["SELECT"]}
    assert all(rule["user"] == admin for rule in rules["procedures"])
    assert properties(ETC / "access-control.properties")["access-control.name"] == "file"


def test_the_light_stack_runs_no_trino():
    from stack.services import trino, trino_sync

    light = settings_module.Settings(sql_engine="duckdb")
    assert trino.service(light) is None and trino_sync.service(light) is None
    assert trino.service(settings_module.Settings()) is not None
