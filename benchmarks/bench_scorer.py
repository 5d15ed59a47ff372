"""Scorer benchmark: how long after a bar becomes final its verdict is readable in `anomalies`.

Starts the real embedded stack (`stack.runner.up`) in a private state folder on free ports,
with a short bootstrap history so the first model is trained, served and scoring within a
couple of minutes, then lets the simulator run live. A reader polls every 100 ms:
  - the bars_1m watermarks (lakewatch.tables.bar_watermarks): a bar is final from the first
    poll whose watermark for its symbol is at or past its window_end;
  - the anomalies table: a verdict is readable from the first poll that sees its row.
For every bar that became final while measuring: readable - final, p50/p95/max.
Usage: python benchmarks/bench_scorer.py [--minutes 5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import numpy as np
from deltalake import DeltaTable

from lakewatch import settings as settings_module
from lakewatch import tables
from stack import runner as stack
from testkit.processes import free_port, wait_for


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--bootstrap-hours", type=float, default=8)
    args = parser.parse_args()
    base = settings_module.load()
    state = base.state_dir / "bench" / "scorer"
    shutil.rmtree(state, ignore_errors=True)
    env = {"LAKEWATCH_STATE_DIR": str(state), "LAKEWATCH_BOOTSTRAP_HOURS": str(args.bootstrap_hours),
           "LAKEWATCH_SIM_MARKET_HOURS": "always", "LAKEWATCH_SERVING_RELOAD_SECONDS": "1",
           "LAKEWATCH_VENV_HOME": str(base.venv_dir)}
    for name in ("broker", "ingestion", "stream", "scorer", "mlflow", "serving"):
        env[f"LAKEWATCH_{name.upper()}_PORT"] = str(free_port())
    os.environ.update(env)
    settings = settings_module.load()
    started = time.monotonic()
    stack.up(settings)
    try:
        anomalies_path = str(tables.ANOMALIES.path(settings.lake_dir))
        bars_path = str(tables.BARS_1M.path(settings.lake_dir))

        def scoring_live():
            table = DeltaTable(anomalies_path)
            return table.count() > 0 and tables.commit_value(table, "lakewatch.scored_until_us")

        wait_for(scoring_live, 600, "the first model to score", every=1)
        print(f"stack up, first model trained and scoring after {time.monotonic() - started:.0f} s; "
              f"measuring {args.minutes:g} min of live bars")
        final_at: dict[tuple[str, int], float] = {}
        readable_at: dict[tuple[str, int], float] = {}
        known: set[tuple[str, int]] = set(
            zip(*[c.to_pylist() for c in DeltaTable(anomalies_path).to_pyarrow_table(
                columns=["symbol", "window_end"]).columns]))
        known = {(s, int(t.timestamp() * 1e6)) for s, t in known}
        deadline = time.monotonic() + args.minutes * 60
        while time.monotonic() < deadline:
            now = time.monotonic()
            bars = DeltaTable(bars_path)
            watermarks = tables.bar_watermarks(bars, settings.bar_watermark_seconds)
            for symbol, us in watermarks.items():
                minute_end = us // 60_000_000 * 60_000_000
                key = (symbol, minute_end)
                if key not in final_at and key not in known:
                    final_at[key] = now  # the bar ending at the last minute boundary before the watermark
            rows = DeltaTable(anomalies_path).to_pyarrow_table(columns=["symbol", "window_end"])
            for symbol, end in zip(rows["symbol"].to_pylist(), rows["window_end"].to_pylist()):
                key = (symbol, int(end.timestamp() * 1e6))
                if key not in readable_at and key not in known:
                    readable_at[key] = now
            time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
    finally:
        stack.down(settings)
    # Only bars seen becoming final (not those final before the first poll) and scored since.
    first_poll = min(final_at.values()) if final_at else 0
    lags = [readable_at[k] - final_at[k] for k in final_at if k in readable_at and final_at[k] > first_poll]
    if not lags:
        print("no bar became final and scored while measuring")
        return 1
    p50, p95 = np.percentile(lags, 50), np.percentile(lags, 95)
    print(f"bar final -> verdict readable over {len(lags)} bars: p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(lags):.2f} s")
    print(f"goal: p95 <= 5 s: {'met' if p95 <= 5 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
