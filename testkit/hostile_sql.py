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


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()
