"""The bot's answers, one module per concern: anomalies, prices, news, the model, the project.

Each answer is a plain function from a Question to the text the bot says, so tests call them
directly against a real lake; chatbot/actions.py wraps them as Rasa custom actions. `entities`
turns what Rasa extracted into values the lake knows; `lake` runs and times the queries.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from lakewatch import settings as settings_module
from lakewatch.settings import Settings


@dataclass
class Question:
    """One user message as Rasa understood it.

    Each answer first declares the kinds of entity it takes into account (`uses`); any other
    kind the message carries is `ignored`, and the bot says so next to the answer rather than
    answer a broader question than the one asked (chatbot/actions.py)."""
    text: str
    intent: str = ""
    entities: list[dict] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    settings: Settings = field(default_factory=settings_module.load)
    used: set[str] = field(default_factory=set)

    def uses(self, *kinds: str) -> None:
        self.used.update(kinds)

    def ignored(self) -> list[dict]:
        """Entities of a kind the answer did not use, and every period or time of day after the
        first (a window is one period, cut to one stretch of hours)."""
        seen: set[str] = set()
        left = []
        for e in self.entities:
            kind = e.get("entity")
            if kind not in self.used or (kind in ONE_PER_QUESTION and kind in seen):
                left.append(e)
            seen.add(kind)
        return left


ONE_PER_QUESTION = ("period", "time_range")
