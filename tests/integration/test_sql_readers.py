"""Readers in several processes query the lake while the real stream job writes it."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ingestion.topics import ensure_topics
from lakewatch import tables
from lakewatch.settings import REPO_ROOT
from lakewatch.sql import sql_engine
from testkit import lake
from testkit.processes import stop_process, wait_for

pytestmark = pytest.mark.integration

READERS = 3


def bar_trades(settings) -> int:
    return sum(lake.table(settings, "bars_1m").column("trade_count").to_pylist())


def in_bar_trades(settings) -> int:
    return sum(lake.table(settings, "trades").column("in_bar").to_pylist())


def test_readers_in_several_processes_never_lock_and_never_see_counts_go_back(broker, tmp_path):
    ensure_topics(broker)
    stop_file = tmp_path / "stop"
    outputs = [tmp_path / f"reader-{i}.jsonl" for i in range(READERS)]
    job = lake.start_job({"LAKEWATCH_MAX_OFFSETS_PER_TRIGGER": "4000"}, log_path=tmp_path / "stream.log")
    readers = []
    try:
        every_table = {t.name for t in tables.ALL_TABLES}
        wait_for(lambda: every_table <= set(tables.in_lake(broker.lake_dir)), 120, "the job to create the tables",
                 every=0.2)
        readers = [subprocess.Popen([sys.executable, "-m", "tests.sql_reader", str(out), str(stop_file)],
                                    cwd=REPO_ROOT, stderr=open(tmp_path / f"reader-{i}.err", "wb"))
                   for i, out in enumerate(outputs)]
        sent = lake.backfill(broker, minutes=40, rate=25)["market.trades"]  # about 60k trades, 15+ batches
        wait_for(lambda: lake.count(broker, "trades") + lake.count(broker, "rejects") >= sent, 240,
                 "the job to write every trade", every=0.5)
        wait_for(lambda: bar_trades(broker) == in_bar_trades(broker), 60, "the bars of the last batch", every=0.5)
        stop_file.touch()
        for reader in readers:
            assert reader.wait(60) == 0
    finally:
        stop_file.touch()
        for reader in readers:
            stop_process(reader)
        lake.kill_hard(job)

    final_trades, final_bar_trades = lake.count(broker, "trades"), bar_trades(broker)
    for out in outputs:
        records = [json.loads(line) for line in out.read_text().splitlines()]
        assert [r for r in records if "error" in r] == []
        for name in ("trades", "bar_trades"):
            values = [r["value"] for r in records if r["query"] == name]
            assert len(values) >= 10, f"{out.name}: too few {name} reads to show anything"
            assert values == sorted(values), f"{out.name}: {name} went backwards"
            assert len(set(values)) > 2, f"{out.name}: {name} never saw the stream write"
        last = {r["query"]: r["value"] for r in records}  # the round after the job caught up
        assert (last["trades"], last["bar_trades"]) == (final_trades, final_bar_trades)

    with sql_engine(broker).connect() as connection:
        offsets = connection.exec_driver_sql("SELECT sum(kafka_offset), count(*) FROM market.trades").one()
    trades = lake.table(broker, "trades")
    assert tuple(offsets) == (sum(trades["kafka_offset"].to_pylist()), trades.num_rows)
