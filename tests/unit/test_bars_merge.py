"""Which trades commits a restarted stream job merges into bars_1m (spark/delta_sink.py, for spark/bars_merge.py), from
the commit files alone: the recovery's choice, without Spark."""
import json

from lakewatch import tables
from spark.delta_sink import BATCH_KEY, pending_trades_commits


def write_log(table_dir, commits):
    log_dir = table_dir / "_delta_log"
    log_dir.mkdir(parents=True, exist_ok=True)
    for version, (metadata, files) in enumerate(commits):
        info = {"operation": "WRITE" if metadata else "OPTIMIZE"}
        if metadata:
            info["userMetadata"] = tables.encode_commit_value({BATCH_KEY: metadata})
        lines = [{"commitInfo": info}] + [{"add": {"path": name}} for name in files]
        (log_dir / f"{version:020d}.json").write_text("\n".join(json.dumps(line) for line in lines))


def test_only_this_querys_batches_after_the_merged_one_are_pending(tmp_path):
    write_log(tmp_path, [
        ({"query": "q", "batch": 0, "watermarks": {"AAPL": 1}}, ["a.parquet"]),
        ({"query": "q", "batch": 1, "watermarks": {"AAPL": 2}}, ["trade_date=2026-12-04/b.parquet"]),
        ({}, ["compacted.parquet"]),  # maintenance: rows already counted
        ({"query": "other", "batch": 7}, ["other.parquet"]),
        ({"query": "q", "batch": 2, "watermarks": {"AAPL": 3}}, ["c.parquet", "d.parquet"]),
    ])
    pending = pending_trades_commits(tmp_path, "q", 0)
    assert [(c["batch"], c["watermarks"], c["files"]) for c in pending] == [
        (2, {"AAPL": 3}, ["c.parquet", "d.parquet"]), (1, {"AAPL": 2}, ["trade_date=2026-12-04/b.parquet"])]


def test_a_query_whose_bars_were_never_merged_has_all_its_batches_pending(tmp_path):
    write_log(tmp_path, [({"query": "q", "batch": b, "watermarks": {}}, [f"{b}.parquet"]) for b in range(3)])
    assert [c["batch"] for c in pending_trades_commits(tmp_path, "q", None)] == [2, 1, 0]


def test_nothing_is_pending_once_bars_hold_the_newest_batch(tmp_path):
    write_log(tmp_path, [({"query": "q", "batch": b, "watermarks": {}}, [f"{b}.parquet"]) for b in range(3)])
    assert pending_trades_commits(tmp_path, "q", 2) == []
