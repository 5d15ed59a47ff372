"""The first model on a fresh machine: `make up` must end with a served champion, without
the user running anything else.

With the simulator as the source (no FINNHUB_API_KEY), no champion registered and no
labelled history in the lake, the stack backfills LAKEWATCH_BOOTSTRAP_HOURS of simulated
history into the broker right after the stream job starts and before live ingestion does,
so the history sits ahead of live data in every partition. Once the scorer is up, a job
(`python -m stack.first_model`, var/log/train.log) waits until the stream job has turned that
history into bars and trains; serving picks the new champion up, and the scorer, which
waits for a champion, starts scoring. A `make down` before then stops the job, and the next
`make up` starts it again.

With Finnhub as the source there are no labels to train on: the model comes from
`make train` on simulator history (docs/model.md), and the scorer waits for it.
"""
from __future__ import annotations

import functools
import json
import subprocess
import sys
import time

from deltalake import DeltaTable

from lakewatch import logs, tables
from lakewatch.markets import MINUTE_MS, market_open
from lakewatch.settings import ASSET_CLASSES, REPO_ROOT
from model.registry import champion_version
from stack.bootstrap import ensure_venv


def _marker(settings):
    return settings.run_dir / "bootstrap.json"


def backfill_if_needed(settings, say=print) -> bool:
    """Backfill simulated history for the first training when it is wanted; True if it did."""
    labels = tables.ANOMALY_LABELS.path(settings.lake_dir)
    if (settings.uses_finnhub or settings.bootstrap_hours <= 0 or champion_version(settings) is not None
            or (DeltaTable.is_deltatable(str(labels)) and DeltaTable(str(labels)).count() > 0)):
        return False
    from ingestion.producer import RecordProducer
    from ingestion.sim_feed import backfill

    say(f"  no model yet: backfilling {settings.bootstrap_hours:g} h of simulated history to train the first one "
        "(once; the first model trains when the stream has it in the lake)")
    end_ms = int(time.time() * 1000)
    # librdkafka's own lines (a retry while a new broker loads its coordinators) go to the log:
    # the console shows the backfill's progress.
    producer = RecordProducer(settings.bootstrap_servers, client_id="lakewatch-bootstrap",
                              logger=logs.to_file("backfill", settings.log_dir / "backfill.log"))
    backfill(settings, producer.publish, days=settings.bootstrap_hours / 24, end_ms=end_ms, poll=producer.poll)
    left = producer.close(timeout=120)
    if left:
        say(f"  {left} records of the bootstrap history were not acknowledged by the broker; training uses the rest")
    _marker(settings).write_text(json.dumps({"end_ms": end_ms}))
    return True


JOB = "first-model"


def start_training_job(settings) -> None:
    """Start the job that trains the first model once its history is in the lake, when one is due
    and not running yet. The runner records it like a service, so `make down` stops it."""
    from stack import runner

    if _marker(settings).exists() and champion_version(settings) is None and not runner.running(settings, JOB):
        runner.start_job(settings, JOB, [sys.executable, "-m", "stack.first_model"], log_name="train")


def train_when_ready(settings, poll_seconds: float = 5.0) -> int:
    """Wait until the backfilled history is in bars_1m, then train (python -m model.train)."""
    marker = _marker(settings)
    end_ms = json.loads(marker.read_text())["end_ms"]
    bars = tables.BARS_1M.path(settings.lake_dir)
    print(f"first model: waiting for the stream job to turn the history up to "
          f"{time.strftime('%H:%M:%S', time.gmtime(end_ms / 1000))} UTC into bars", flush=True)
    while not (DeltaTable.is_deltatable(str(bars)) and history_in_bars(
            settings, tables.bar_watermarks(DeltaTable(str(bars)), settings.bar_watermark_seconds), end_ms)):
        time.sleep(poll_seconds)
    print("first model: the history is in the lake; training", flush=True)
    if settings.nab_dir is not None:  # training also scores the model on NAB, with NAB's scorer's venv
        ensure_venv("nab")
    code = subprocess.run([sys.executable, "-m", "model.train"], cwd=REPO_ROOT).returncode
    if code == 0:
        marker.unlink(missing_ok=True)
    return code


def history_in_bars(settings, watermarks: dict[str, int], end_ms: int) -> bool:
    """Whether every symbol's bars reached the end of its backfilled history. A market that was
    closed when the backfill ended (stocks at night, forex at weekends) traded last at its
    close, and its watermark stays there until it opens again: wait for that, not for end_ms."""
    for asset_class in ASSET_CLASSES:
        symbols = getattr(settings, asset_class)
        last_open = _last_open_minute(asset_class, end_ms, settings.bootstrap_hours, settings.sim_market_hours)
        if last_open is None:
            continue  # closed for the whole backfill: it has no history to wait for
        if any(watermarks.get(symbol, -1) < (last_open - 120_000) * 1000 for symbol in symbols):
            return False
    return True


@functools.lru_cache(maxsize=16)
def _last_open_minute(asset_class: str, end_ms: int, hours: float, market_hours: str) -> int | None:
    """Start (epoch ms) of the last minute up to end_ms in which the simulator let it trade."""
    minute = end_ms - end_ms % MINUTE_MS
    while minute > end_ms - hours * 3_600_000:
        if market_open(asset_class, minute, market_hours):
            return minute
        minute -= MINUTE_MS
    return None


if __name__ == "__main__":
    from lakewatch import settings as settings_module

    sys.exit(train_when_ready(settings_module.load()))
