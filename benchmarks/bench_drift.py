"""How soon drift detection notices a regime shift, and how often it cries wolf.

Each scenario simulates 36 h of market (testkit.history: the simulator's trades made into bars by
the stream job's own aggregation), in which one asset class's market changes for good at some
minute of an hour 3-4 h before the end. The model inputs of the first 30 h are the training
distributions (model/drift.py `fit`, as training stores them); the last 6 h are measured hour by
hour as lakewatch_drift does, at 5 past the hour. Printed per scenario: the delay from the shift
to the first measure that flags its class, in minutes and as a ratio of the measuring period (one
hour: a shift cannot be seen before the hour holding it is measured); over all scenarios, the
hours of the unshifted classes (and of the shifted one before its shift) that were flagged. Each
scenario is a market of its own (its own seed), so those hours are not the same ones counted again.

    python benchmarks/bench_drift.py [--offsets 0 15 30 45]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import pandas as pd

from lakewatch import settings as settings_module
from model import drift
from model.features import build_features
from testkit.history import simulated_history

END = pd.Timestamp("2026-11-30 18:00", tz="UTC")
LIVE = pd.Timedelta(hours=6)
RUN_AFTER = pd.Timedelta(minutes=5)  # lakewatch_drift's schedule: 5 past the hour
SHIFTED_HOUR = END - pd.Timedelta(hours=4)


def scenario(seed: int, volatility: float, trades: float, offset_minutes: int, asset_class: str = "crypto") -> dict:
    """One market of its own (its seed), shifted at offset_minutes past SHIFTED_HOUR."""
    shift = SHIFTED_HOUR + pd.Timedelta(minutes=offset_minutes)
    settings = dataclasses.replace(settings_module.load(), sim_seed=seed, sim_market_hours="always",
                                   sim_anomalies_per_hour=1.5,
                                   sim_regime_shift=f"{asset_class}@{shift.isoformat()},volatility={volatility},"
                                                    f"trades={trades}")
    began = time.monotonic()
    bars, _ = simulated_history(settings, int(END.value // 1_000_000), 36, settings.sim_rate)
    features = build_features(bars)
    features = features[features["warm"] & ~features["pipeline_gap"]]
    live = features["window_start"] >= END - LIVE
    reference = drift.fit(features[~live])
    hours = drift.hourly(features[live], reference["reference"])
    hours["drifted"] = hours["psi"] > hours["threshold"]
    flagged = hours.groupby(["window_start", "asset_class"])["drifted"].any().reset_index()
    shifted = (flagged["asset_class"] == asset_class) & (flagged["window_start"] + pd.Timedelta(hours=1) > shift)
    found = flagged[shifted & flagged["drifted"]]["window_start"].min()
    delay = (found + pd.Timedelta(hours=1) + RUN_AFTER - shift).total_seconds() / 60 if pd.notna(found) else None
    return {"volatility": volatility, "trades": trades, "offset": offset_minutes, "delay_min": delay,
            "calm_hours": int((~shifted).sum()), "false_alarms": int(flagged[~shifted]["drifted"].sum()),
            "seconds": time.monotonic() - began}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 15, 30, 45],
                        help="minutes past the hour the shift happens at")
    args = parser.parse_args()
    print("drift detection: crypto's market changes for good; measured hourly at :05 against its first 30 h")
    runs = [scenario(seed, 3.0, 0.2, m) for seed, m in enumerate(args.offsets, start=100)]
    runs += [scenario(200, 1.0, 0.2, 15), scenario(201, 3.0, 1.0, 15)]
    print(f"{'volatility':>10} {'trades':>6} {'at :mm':>6} {'found after':>12} {'/ 1 h period':>12} {'false alarms':>13}")
    for r in runs:
        found = "not found" if r["delay_min"] is None else f"{r['delay_min']:.0f} min"
        ratio = "-" if r["delay_min"] is None else f"{r['delay_min'] / 60:.2f}x"
        print(f"{r['volatility']:>9g}x {r['trades']:>5g}x {r['offset']:>6} {found:>12} {ratio:>12} "
              f"{r['false_alarms']:>6} of {r['calm_hours']:<4}  ({r['seconds']:.0f} s)")
    delays = [r["delay_min"] for r in runs[:len(args.offsets)] if r["delay_min"] is not None]
    alarms, calm = sum(r["false_alarms"] for r in runs), sum(r["calm_hours"] for r in runs)
    print(f"trades x0.2 and volatility x3: found {len(delays)} of {len(args.offsets)}; delay p50 "
          f"{np.median(delays) if delays else float('nan'):.0f} min, max {max(delays, default=float('nan')):.0f} min; "
          f"false alarms {alarms} of {calm} calm class-hours ({alarms / calm:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
