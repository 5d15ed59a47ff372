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
    """One user message as Rasa understood it."""
    text: str
    intent: str = ""
    entities: list[dict] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    settings: Settings = field(default_factory=settings_module.load)
