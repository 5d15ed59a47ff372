"""Rasa's conversation store for the bot: in memory, keeping a conversation's recent events only,
as live objects.

Rasa replays and featurizes a conversation's whole history on every message, so each answer
gets slower as a conversation grows: measured, "hello" took 14 ms in a new conversation and
250 ms after 300 questions. The rules look at the current message only, and what a follow-up
needs from before is in two slots every answer from the lake sets again (chatbot/actions.py),
so the last RECENT_EVENTS events (about four exchanges) are all a conversation needs.

Rasa's InMemoryTrackerStore keeps each conversation as JSON, and writes it and reads it back on
every message: a fifth of Rasa's time under 20 users (profiled; docs/benchmarks.md, issue 23).
This store keeps the tracker itself, with the events and slot values it had when saved: a
message that failed half-way changed the tracker without saving it, and is undone by replaying
the saved events and setting the saved values, as reading the JSON back would have done.
Runs inside Rasa (rasa_server.py names it as the tracker store).
"""
from __future__ import annotations

from rasa.core.tracker_store import TrackerStore
from rasa.shared.core.constants import ACTION_SESSION_START_NAME
from rasa.shared.core.events import ActionExecuted
from rasa.shared.core.trackers import DialogueStateTracker, get_trackers_for_conversation_sessions

RECENT_EVENTS = 24


class RecentEventsTrackerStore(TrackerStore):
    def __init__(self, domain, event_broker=None, **kwargs) -> None:
        # sender -> (the tracker, its events and its slots' values when last saved)
        self.store: dict[str, tuple[DialogueStateTracker, tuple, dict]] = {}
        super().__init__(domain, event_broker, **kwargs)

    async def save(self, tracker: DialogueStateTracker) -> None:
        await self.stream_events(tracker)
        if tracker._max_event_history != RECENT_EVENTS:
            # Rasa's store wrappers create a conversation's tracker with no bound: replayed
            # whole, so its slots are right, into one that keeps the recent events.
            tracker = DialogueStateTracker.from_events(tracker.sender_id, list(tracker.events), self.domain.slots,
                                                       max_event_history=RECENT_EVENTS)
        self.store[tracker.sender_id] = (tracker, tuple(tracker.events), _values(tracker))

    async def keys(self):
        return self.store.keys()

    async def retrieve_full_tracker(self, sender_id: str) -> DialogueStateTracker | None:
        kept = self.store.get(sender_id)
        if kept is None:
            return None
        tracker, saved, values = kept
        if len(tracker.events) != len(saved) or any(a is not b for a, b in zip(tracker.events, saved)):
            tracker = DialogueStateTracker.from_events(sender_id, list(saved), self.domain.slots,
                                                       max_event_history=RECENT_EVENTS)
            for name, value in values.items():  # some were set by events older than those kept
                tracker.slots[name].value = value
            self.store[sender_id] = (tracker, saved, values)
        return tracker

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        """The conversation's last session, as Rasa's stores give it."""
        tracker = await self.retrieve_full_tracker(sender_id)
        if tracker is None:
            return None
        starts = sum(1 for e in tracker.events
                     if isinstance(e, ActionExecuted) and e.action_name == ACTION_SESSION_START_NAME)
        return get_trackers_for_conversation_sessions(tracker)[-1] if starts > 1 else tracker


def _values(tracker: DialogueStateTracker) -> dict:
    return {name: slot.value for name, slot in tracker.slots.items()}
