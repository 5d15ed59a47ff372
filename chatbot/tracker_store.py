"""Rasa's in-memory conversation store, keeping only a conversation's recent events.

Rasa replays and featurizes a conversation's whole history on every message, so each answer
gets slower as a conversation grows: measured, "hello" took 14 ms in a new conversation and
250 ms after 300 questions. The rules look at the current message only, and what a follow-up
needs from before is in two slots every answer from the lake sets again (chatbot/actions.py),
so the last RECENT_EVENTS events (about ten exchanges) are all a conversation needs. Runs
inside Rasa (rasa_server.py names it as the tracker store).
"""
from __future__ import annotations

from rasa.core.tracker_store import InMemoryTrackerStore
from rasa.shared.core.trackers import DialogueStateTracker

RECENT_EVENTS = 60


class RecentEventsTrackerStore(InMemoryTrackerStore):
    def init_tracker(self, sender_id: str) -> DialogueStateTracker:
        # Rasa sets max_event_history to None before each lookup: fall back to our bound.
        return DialogueStateTracker(sender_id, self.domain.slots,
                                    max_event_history=self.max_event_history or RECENT_EVENTS)
