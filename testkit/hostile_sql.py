"""Statements a SQL user must not get away with, by family, for every door SQL comes in by
(`sql_engine()`, Superset's SQL Lab). `statements(canary_dir, lake_dir)` fills in paths: a write
aimed at canary_dir or into the lake must leave no file behind.
"""
from __future__ import annotations

from pathlib import Path

FAMILIES = ("file read", "file write", "attach", "extension", "configuration", "secrets", "hidden functions")


def statements(canary_dir: Path, lake_dir: Path) -> list[tuple[str, str]]:
    """(family, statement); every statement must fail with an error and change nothing."""
    c, lake = canary_dir, lake_dir
    return [
        ("file read", "SELECT * FROM read_csv('/etc/passwd')"),
        ("file read", "SELECT * FROM read_text('/etc/hostname')"),
        ("file read", "SELECT * FROM read_blob('/proc/self/environ')"),
        ("file read", "SELECT * FROM sniff_csv('/etc/passwd')"),
        ("file read", "SELECT * FROM glob('/etc/*')"),
        ("file read", f"SELECT * FROM read_parquet('{lake}/../superset/*.db')"),
        ("file read", "SELECT * FROM read_json_auto('/root/.bash_history')"),
        ("file write", f"COPY (SELECT 1 AS x) TO '{c}/copied.csv'"),
        ("file write", f"COPY (SELECT 1 AS x) TO '{lake}/trades/_delta_log/99999999999999999999.json'"),
        ("file write", f"COPY (SELECT 1 AS x) TO '{lake}/planted.parquet' (FORMAT parquet)"),
        ("file write", f"EXPORT DATABASE '{c}/exported'"),
        ("attach", f"ATTACH '{c}/attached.duckdb' AS planted"),
        ("attach", "ATTACH '/etc/passwd' AS planted"),
        ("extension", "INSTALL httpfs"),
        ("extension", "LOAD httpfs"),
        ("extension", f"LOAD '{c}/planted.duckdb_extension'"),
        ("configuration", "SET enable_external_access = true"),
        ("configuration", "SET lock_configuration = false"),
        ("configuration", "SET allowed_directories = ['/']"),
        ("configuration", "RESET enable_external_access"),
        ("configuration", f"SET temp_directory = '{c}'"),
        ("configuration", "SET memory_limit = '100GB'"),
        ("secrets", "CREATE PERSISTENT SECRET planted (TYPE s3, KEY_ID 'k', SECRET 's')"),
        ("secrets", "SELECT * FROM duckdb_secrets()"),
        ("hidden functions", "SELECT getenv('HOME')"),
        ("hidden functions", "SELECT * FROM duckdb_extensions()"),
        ("hidden functions", f"SELECT * FROM query_table('{c}/copied.csv')"),
        ("hidden functions", "SELECT * FROM query('SELECT * FROM read_csv(''/etc/passwd'')')"),
    ]


TRINO_FAMILIES = ("write", "DDL", "procedure", "configuration")


def trino_statements(canary_dir: Path) -> list[tuple[str, str]]:
    """(family, statement) Trino's access control (trino/etc/rules.json) must refuse to a reader."""
    return [
        ("write", "INSERT INTO market.rejects SELECT * FROM market.rejects"),
        ("write", "DELETE FROM market.trades"),
        ("write", "UPDATE market.bars_1m SET close = 0"),
        ("write", "MERGE INTO market.news t USING market.news s ON t.id = s.id WHEN MATCHED THEN DELETE"),
        ("write", "TRUNCATE TABLE market.anomalies"),
        ("DDL", "CREATE TABLE market.planted AS SELECT 1 AS x"),
        ("DDL", f"CREATE TABLE market.planted (x integer) WITH (location = 'local://{canary_dir}/planted')"),
        ("DDL", "DROP TABLE market.trades"),
        ("DDL", "ALTER TABLE market.trades RENAME TO gone"),
        ("DDL", "ALTER TABLE market.trades ADD COLUMN planted integer"),
        ("DDL", "CREATE OR REPLACE VIEW market.latest_prices AS SELECT 1 AS x"),
        ("DDL", "DROP VIEW market.latest_prices"),
        ("DDL", "CREATE SCHEMA delta.planted"),
        ("DDL", "COMMENT ON TABLE market.trades IS 'planted'"),
        ("DDL", "GRANT SELECT ON market.trades TO USER anyone"),
        ("procedure", "CALL delta.system.unregister_table(schema_name => 'market', table_name => 'trades')"),
        ("procedure", "CALL delta.system.register_table(schema_name => 'market', table_name => 'planted', "
                      "table_location => 'local:///lake/trades')"),
        ("procedure", "CALL delta.system.vacuum('market', 'trades', '0s')"),
        ("procedure", "ALTER TABLE market.trades EXECUTE optimize"),
        ("configuration", "SET SESSION query_max_memory = '100GB'"),
        ("configuration", "SET SESSION delta.vacuum_min_retention = '0s'"),
    ]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()
