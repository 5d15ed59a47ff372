"""A reader process for tests: queries the lake through sql_engine() in a loop while the
stream writes, and writes one JSON line per query (or the error it got) to a file.

    python -m tests.sql_reader OUTPUT_FILE STOP_FILE
Stops when STOP_FILE exists, after one last round of queries.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from lakewatch.sql import sql_engine

QUERIES = {
    "trades": "SELECT count(*) FROM market.trades",
    "bar_trades": "SELECT coalesce(sum(trade_count), 0) FROM market.bars_1m",
    "summary_symbols": "SELECT coalesce(sum(symbols), 0) FROM market.asset_class_summary",
}


def main(output: str, stop_file: str) -> int:
    engine = sql_engine()
    with open(output, "w") as out:
        while True:
            last_round = Path(stop_file).exists()
            for name, sql in QUERIES.items():
                try:
                    with engine.connect() as connection:
                        value = connection.exec_driver_sql(sql).scalar()
                    out.write(json.dumps({"query": name, "value": value, "at": time.time()}) + "\n")
                except Exception as exc:  # recorded, not raised: the test reports every error
                    out.write(json.dumps({"query": name, "error": f"{type(exc).__name__}: {exc}"}) + "\n")
            out.flush()
            if last_round:
                return 0
            time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
