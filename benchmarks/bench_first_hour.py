"""First-hour benchmark: what a newcomer's `make up` flags live, and what a restart adds.

Runs `make up` on a fresh state folder and free ports, exactly as a new user would (the
bootstrap history, the first training, then live simulated data), in this checkout or in
another one (--repo, e.g. an older commit, for a before/after comparison in the same run).
After --live-minutes of live bars it stops and restarts the stack, and watches
--restart-minutes more. It prints, from the lake's own `anomalies` and `anomaly_labels`:

- the live false-alarm rate: flagged bars outside every injected anomaly, per hour over all
  symbols and per symbol-hour, next to the reference measured in the same run, the rate of
  bars inside a labelled window (what a perfect detector flags);
- the same for the first 30 minutes of live data (where the wall of false anomalies stood);
- around the restart: bars flagged, bars left out as pipeline gaps.

Usage: python benchmarks/bench_first_hour.py [--repo DIR --venv-home DIR] [--bootstrap-hours 48]
       [--live-minutes 30] [--restart-minutes 10]
"""
from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable

from model.evaluate import live_false_alarms

REPO = Path(__file__).resolve().parent.parent

PORTS = ("broker", "ingestion", "stream", "scorer", "mlflow", "serving", "rasa", "actions", "superset",
         "prometheus", "chat")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(repo: Path, command: str, timeout: float = 1800) -> str:
    done = subprocess.run(["make", "--no-print-directory", "-C", str(repo), command], env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"make {command} failed in {repo}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done.stdout


def verdicts(lake: Path) -> pd.DataFrame:
    path = lake / "anomalies"
    if not DeltaTable.is_deltatable(str(path)):
        return pd.DataFrame(columns=["symbol", "window_start", "is_anomaly", "excluded_reason"])
    table = DeltaTable(str(path))
    columns = [c for c in ("symbol", "window_start", "is_anomaly", "excluded_reason") if c in table.schema().to_arrow().names]
    frame = table.to_pandas(columns=columns)
    if "excluded_reason" not in frame:  # a checkout from before pipeline gaps were known
        frame["excluded_reason"] = None
    return frame


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(5)


def report(name: str, part: pd.DataFrame, labels: pd.DataFrame, symbols: int) -> None:
    f = live_false_alarms(part, labels)
    hours = f["symbol_hours"] / symbols if symbols else 0
    per_hour = f["false_alarms"] / hours if hours else 0.0
    reference = f["labelled_bars_per_symbol_hour"]
    ratio = f["false_alarms_per_symbol_hour"] / reference if reference else float("nan")
    print(f"{name}: {f['bars']} bars ({hours * 60:.0f} min x {symbols} symbols), flagged {f['flagged']}, "
          f"false alarms {f['false_alarms']} = {per_hour:.1f}/hour over all symbols = "
          f"{f['false_alarms_per_symbol_hour']:.3f}/symbol-hour; labelled bars {reference:.3f}/symbol-hour "
          f"(false alarms / labelled: {ratio:.2f}); left out as pipeline gaps: {f['excluded']}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repo", type=Path, default=REPO)
    parser.add_argument("--bootstrap-hours", type=float, default=48)
    parser.add_argument("--live-minutes", type=float, default=30)
    parser.add_argument("--restart-minutes", type=float, default=10)
    parser.add_argument("--state", type=Path, default=REPO / "var" / "bench" / "first_hour")
    # Another checkout needs venvs of its own: the core venv is an editable install of one checkout.
    parser.add_argument("--venv-home", type=Path, default=REPO / "var" / "venvs")
    args = parser.parse_args()
    repo = args.repo.resolve()
    shutil.rmtree(args.state, ignore_errors=True)
    env = {"LAKEWATCH_STATE_DIR": str(args.state), "LAKEWATCH_BOOTSTRAP_HOURS": str(args.bootstrap_hours),
           "LAKEWATCH_SIM_MARKET_HOURS": "always", "LAKEWATCH_VENV_HOME": str(args.venv_home),
           **{f"LAKEWATCH_{name.upper()}_PORT": str(free_port()) for name in PORTS}}
    os.environ.update(env)
    os.environ.pop("FINNHUB_API_KEY", None)
    lake = args.state / "lake"
    started = time.monotonic()
    print(f"make up in {repo} (state {args.state}, {args.bootstrap_hours:g} h of bootstrap history)", flush=True)
    try:
        run(repo, "up")
        wait_until(lambda: len(verdicts(lake)) > 0, 1800, "the first model's verdicts")
        live_from = pd.Timestamp.now(tz="UTC").ceil("min")
        print(f"first verdicts after {time.monotonic() - started:.0f} s; live bars from {live_from:%H:%M} UTC, "
              f"measuring {args.live_minutes:g} min", flush=True)
        time.sleep(args.live_minutes * 60 + 90)  # the last bars final and scored
        down_at = pd.Timestamp.now(tz="UTC")
        run(repo, "down")
        run(repo, "up")
        restarted_at = pd.Timestamp.now(tz="UTC")
        print(f"restarted in {(restarted_at - down_at).total_seconds():.0f} s; measuring "
              f"{args.restart_minutes:g} min", flush=True)
        time.sleep(args.restart_minutes * 60 + 90)
        end = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=90)
    finally:
        subprocess.run(["make", "--no-print-directory", "-C", str(repo), "down"], env=dict(os.environ),
                       capture_output=True, timeout=300)
    labels = DeltaTable(str(lake / "anomaly_labels")).to_pandas()
    scored = verdicts(lake)
    symbols = scored["symbol"].nunique()
    live = scored[(scored["window_start"] >= live_from) & (scored["window_start"] < end)]
    before_restart = live[live["window_start"] < down_at.floor("min")]
    print(f"--- {repo.name} @ {git_head(repo)}, {args.bootstrap_hours:g} h bootstrap")
    report("live, first 30 min", before_restart[before_restart["window_start"] < live_from + pd.Timedelta(minutes=30)],
           labels, symbols)
    report(f"live, {args.live_minutes:g} min before the restart", before_restart, labels, symbols)
    around = live[(live["window_start"] >= down_at.floor("min") - pd.Timedelta(minutes=1))
                  & (live["window_start"] <= restarted_at + pd.Timedelta(minutes=2))]
    report("around the restart (1 min before the stop to 2 min after the start)", around, labels, symbols)
    report(f"after the restart, {args.restart_minutes:g} min", live[live["window_start"] >= restarted_at], labels, symbols)
    return 0


def git_head(repo: Path) -> str:
    return subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
