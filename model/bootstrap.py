"""The first model on a fresh machine: `make up` must end with a served champion, without
the user running anything else.

With the simulator as the source (no FINNHUB_API_KEY), no champion registered and no
labelled history in the lake, the stack backfills LAKEWATCH_BOOTSTRAP_HOURS of simulated
history into the broker right after the stream job starts and before live ingestion does,
so the history sits ahead of live data in every partition. The scorer then trains once the
stream job has turned that history into bars (`train_when_ready`), serving picks the new
champion up, and the scorer starts scoring.

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

from ingestion.simulator import MINUTE_MS, market_open
from lakewatch import tables
from lakewatch.settings import ASSET_CLASSES, REPO_ROOT
from model.registry import champion_version


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
        "(once; the scorer trains when the stream has it in the lake)")
    end_ms = int(time.time() * 1000)
    producer = RecordProducer(settings.bootstrap_servers, client_id="lakewatch-bootstrap")
    backfill(settings, producer.publish, days=settings.bootstrap_hours / 24, end_ms=end_ms, poll=producer.poll)
    left = producer.close(timeout=120)
    if left:
        say(f"  {left} records of the bootstrap history were not acknowledged by the broker; training uses the rest")
    _marker(settings).write_text(json.dumps({"end_ms": end_ms}))
    return True


def train_when_ready(settings) -> subprocess.Popen | None:
    """Start `python -m model.train` once the bootstrap history is in the lake; None if not (yet)."""
    marker = _marker(settings)
    if not marker.exists() or champion_version(settings) is not None:
        return None
    end_ms = json.loads(marker.read_text())["end_ms"]
    watermarks = tables.bar_watermarks(DeltaTable(str(tables.BARS_1M.path(settings.lake_dir))),
                                       settings.bar_watermark_seconds)
    if not history_in_bars(settings, watermarks, end_ms):
        return None  # the stream job is still working through the history
    marker.unlink()
    log = open(settings.log_dir / "train.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "model.train"], stdout=log, stderr=subprocess.STDOUT,
                            cwd=REPO_ROOT)


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
