"""The bot's conversation store (chatbot/tracker_store.py), run in the rasa venv: it keeps recent
events only, whoever created the tracker, and undoes a message that failed half-way."""
from __future__ import annotations

import os
import subprocess

from chatbot.training import RASA_ENV
from lakewatch.settings import REPO_ROOT
from testkit.processes import built_venv_python

CHECK = """
import asyncio
from rasa.core.tracker_store import AwaitableTrackerStore, FailSafeTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, SlotSet, UserUttered
from chatbot.tracker_store import RECENT_EVENTS, RecentEventsTrackerStore

async def main():
    domain = Domain.load("chatbot/domain.yml")
    mine = RecentEventsTrackerStore(domain)
    store = AwaitableTrackerStore(FailSafeTrackerStore(mine))  # as Rasa wraps it
    tracker = await store.get_or_create_tracker("analyst")
    tracker.update(SlotSet("context", {"action": "action_anomaly_count", "entities": []}))
    for i in range(100):
        tracker.update(UserUttered(f"question {i}", {"name": "greet"}))
        tracker.update(ActionExecuted("action_listen"))
    await store.save(tracker)
    kept = await store.retrieve("analyst")
    assert len(kept.events) == RECENT_EVENTS, len(kept.events)
    # set 200 events ago, still there
    assert kept.get_slot("context") == {"action": "action_anomaly_count", "entities": []}

    # A message that fails half-way changes the tracker it was given, and is never saved.
    kept.update(SlotSet("context", None))
    kept.update(UserUttered("half an answer", {"name": "greet"}))
    again = await store.retrieve("analyst")
    assert [e.text for e in again.events if isinstance(e, UserUttered)][-1] == "question 99"
    assert again.get_slot("context") == {"action": "action_anomaly_count", "entities": []}
    assert await store.retrieve("nobody") is None
    print("ok")

asyncio.run(main())
"""


def test_the_store_keeps_recent_events_and_slots_and_undoes_a_half_done_message():
    done = subprocess.run([str(built_venv_python("rasa")), "-c", CHECK], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=180, env={**os.environ, **RASA_ENV}, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-3000:]
