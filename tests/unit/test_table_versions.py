"""A Delta table's newest version, read from its log folder (lakewatch/table_versions.py): the
key that tells the bot's cached results from stale ones."""
from __future__ import annotations

import shutil
from datetime import datetime, timezone

from deltalake import DeltaTable

from lakewatch import table_versions, tables
from testkit.known_lake import anomaly, write

AT = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)


def _append(lake, n: int = 1) -> None:
    for _ in range(n):
        write(lake, tables.ANOMALIES, [anomaly("AAPL", "stocks", AT)])


def test_every_commit_gives_a_new_version(tmp_path):
    tables.ensure(tmp_path, (tables.ANOMALIES,))
    first = table_versions.version(tables.ANOMALIES.path(tmp_path))
    _append(tmp_path)
    second = table_versions.version(tables.ANOMALIES.path(tmp_path))
    assert first[0] == 0 and second[0] == 1 == DeltaTable(str(tables.ANOMALIES.path(tmp_path))).version()
    _append(tmp_path, 3)
    assert table_versions.version(tables.ANOMALIES.path(tmp_path))[0] == 4


def test_the_version_is_found_past_a_checkpoint_after_old_commits_are_cleaned_up(tmp_path):
    tables.ensure(tmp_path, (tables.ANOMALIES,))
    _append(tmp_path, 5)
    table = DeltaTable(str(tables.ANOMALIES.path(tmp_path)))
    table.create_checkpoint()
    log = tables.ANOMALIES.path(tmp_path) / "_delta_log"
    for old in range(5):  # what log cleanup leaves: the checkpoint and what came after
        (log / f"{old:020d}.json").unlink()
    _append(tmp_path, 2)
    table_versions._seen.clear()  # a new process: only _last_checkpoint to start from
    assert table_versions.version(tables.ANOMALIES.path(tmp_path))[0] == 7


def test_a_table_deleted_and_written_again_to_the_same_version_is_told_apart(tmp_path):
    tables.ensure(tmp_path, (tables.ANOMALIES,))
    _append(tmp_path)
    before = table_versions.version(tables.ANOMALIES.path(tmp_path))
    shutil.rmtree(tables.ANOMALIES.path(tmp_path))
    tables.ensure(tmp_path, (tables.ANOMALIES,))
    _append(tmp_path)
    after = table_versions.version(tables.ANOMALIES.path(tmp_path))
    assert after[0] == before[0] == 1 and after != before


def test_a_folder_without_a_delta_log_has_no_version(tmp_path):
    assert table_versions.version(tmp_path / "nothing") is None
    (tmp_path / "empty" / "_delta_log").mkdir(parents=True)
    assert table_versions.version(tmp_path / "empty") is None
