"""How soon drift detection notices a regime shift, and how often it cries wolf.

Each scenario simulates 36 h of market (testkit.history: the simulator's trades made into bars by
the stream job's own aggregation), in which one asset class's market changes for good at some
minute of an hour 3-4 h before the end. The model inputs of the first 30 h are the training
distributions (model/drift.py `fit`, as training stores them); the last 6 h are measured hour by
hour as lakewatch_drift does, at 5 past the hour. Printed per scenario: the delay from the shift
to the first measure that flags its class, in minutes and as a ratio of the measuring period (one
hour: a shift cannot be seen before the hour holding it is measured); and the calm hours (no
shifted class in them) in which any class was flagged, each a needless retrain. Markets with no
shift at all add calm hours. Each scenario is a market of its own (its own seed), so those hours
are not the same ones counted again.

Two threshold rules are measured on the same markets in the same run: the fitted tail training
keeps (model/drift.py `tail`) and the rule before it, 1.5x the 99th percentile of the training
hours' PSI, as the reference.

    python benchmarks/bench_drift.py [--offsets 0 15 30 45] [--calm-markets 16]
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


RULES = {  # a threshold from a feature's training hours' PSIs
    "fitted tail": drift.tail,  # what training keeps
    "1.5x p99": lambda hourly_psi: 1.5 * float(np.quantile(hourly_psi, 0.99)) if len(hourly_psi) else 0.0,  # before
}


def scenario(seed: int, volatility: float, trades: float, offset_minutes: int, asset_class: str = "crypto") -> dict:
    """One market of its own (its seed), shifted at offset_minutes past SHIFTED_HOUR (volatility
    and trades both 1: a calm market). Per threshold rule: the delay to the first flag of the
    shifted class, and the calm hours (those with no shifted class-hour in them) flagged."""
    shift = SHIFTED_HOUR + pd.Timedelta(minutes=offset_minutes)
    calm_market = volatility == 1 and trades == 1
    settings = dataclasses.replace(settings_module.load(), sim_seed=seed, sim_market_hours="always",
                                   sim_anomalies_per_hour=1.5,
                                   sim_regime_shift="" if calm_market else
                                   f"{asset_class}@{shift.isoformat()},volatility={volatility},trades={trades}")
    began = time.monotonic()
    bars, _ = simulated_history(settings, int(END.value // 1_000_000), 36, settings.sim_rate)
    features = build_features(bars)
    features = features[features["warm"] & ~features["pipeline_gap"]]
    live = features["window_start"] >= END - LIVE
    out = {"volatility": volatility, "trades": trades, "offset": offset_minutes, "shifted": not calm_market}
    for name, rule in RULES.items():
        reference = drift.fit(features[~live], rule)
        hours = drift.hourly(features[live], reference["reference"])
        hours["drifted"] = hours["psi"] > hours["threshold"]
        flagged = hours.groupby(["window_start", "asset_class"])["drifted"].any().reset_index()
        shifted = (flagged["asset_class"] == asset_class) & (flagged["window_start"] + pd.Timedelta(hours=1) > shift)
        shifted &= not calm_market
        found = flagged[shifted & flagged["drifted"]]["window_start"].min()
        delay = (found + pd.Timedelta(hours=1) + RUN_AFTER - shift).total_seconds() / 60 if pd.notna(found) else None
        calm = flagged[~flagged["window_start"].isin(flagged.loc[shifted, "window_start"])]
        by_hour = calm.groupby("window_start")["drifted"].any()
        out[name] = {"delay_min": delay, "calm_hours": len(by_hour), "false_alarms": int(by_hour.sum())}
    out["seconds"] = time.monotonic() - began
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--offsets", type=int, nargs="+", default=[0, 15, 30, 45],
                        help="minutes past the hour the shift happens at")
    parser.add_argument("--calm-markets", type=int, default=16, help="markets of their own with no shift")
    args = parser.parse_args()
    print("drift detection: crypto's market changes for good; measured hourly at :05 against its first 30 h")
    runs = [scenario(seed, 3.0, 0.2, m) for seed, m in enumerate(args.offsets, start=100)]
    runs += [scenario(200, 1.0, 0.2, 15), scenario(201, 3.0, 1.0, 15)]
    runs += [scenario(seed, 1.0, 1.0, 0) for seed in range(300, 300 + args.calm_markets)]
    print(f"{'volatility':>10} {'trades':>6} {'at :mm':>6}" + "".join(
        f" | {name + ': found after':>24} {'/ 1 h':>6} {'calm hours flagged':>18}" for name in RULES))
    for r in runs:
        line = f"{r['volatility']:>9g}x {r['trades']:>5g}x {r['offset']:>6}"
        for name in RULES:
            delay = r[name]["delay_min"]
            found = "-" if not r["shifted"] else "not found" if delay is None else f"{delay:.0f} min"
            ratio = "-" if delay is None else f"{delay / 60:.2f}x"
            line += f" | {found:>24} {ratio:>6} {r[name]['false_alarms']:>10} of {r[name]['calm_hours']:<5}"
        print(f"{line}  ({r['seconds']:.0f} s)")
    for name in RULES:
        delays = [r[name]["delay_min"] for r in runs[:len(args.offsets)] if r[name]["delay_min"] is not None]
        alarms, calm = sum(r[name]["false_alarms"] for r in runs), sum(r[name]["calm_hours"] for r in runs)
        print(f"{name}: trades x0.2 and volatility x3 found {len(delays)} of {len(args.offsets)}; delay p50 "
              f"{np.median(delays) if delays else float('nan'):.0f} min, max {max(delays, default=float('nan')):.0f} min; "
              f"calm hours flagged {alarms} of {calm} ({alarms / calm:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
