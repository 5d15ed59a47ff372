"""An answer checked against its question before the bot says it.

A misspelt value matched to a known one is named as read ("Reading "crytpo" as crypto."), an
ambiguous one is asked back instead of guessed, and any entity kind the answer did not take into
account is named as left out. So the bot never silently answers a broader question than the one
asked, and each answer keeps the SQL it ran (values filled in) for "show me the SQL".
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

from chatbot.answers import Question, entities, lake, words

log = logging.getLogger("lakewatch.chatbot.answers")


@dataclass
class Said:
    """What the bot says, the SQL it ran for it, and why there is no answer (`error`, by kind:
    not_understood, no_data, failed) when there is none."""
    text: str
    sql: list[str] = field(default_factory=list)
    error: str | None = None


def checked(answer: Callable[[Question], str], q: Question) -> Said:
    if asked_back := entities.ambiguity(q.entities, q.text):
        return Said(asked_back)
    with lake.recording() as ran:
        try:
            text = answer(q)
        except entities.NotUnderstood as exc:
            return Said(str(exc), error="not_understood")
        except lake.NoDataYet as exc:
            return Said(f"The lake has no {exc} table yet: nothing has been written there so far. "
                        "Ask again in a minute.", error="no_data")
        except Exception:
            log.exception("answer %s failed on %r", answer.__name__, q.text)
            return Said("Sorry, I could not get that from the lake just now; the action server's log says why.",
                        error="failed")
    notes = entities.read_as(q.entities, q.text)
    left_out = [words.left_out(e["entity"], entities.typed(e, q.text), e["entity"] in q.used) for e in q.ignored()]
    head = " ".join(notes + left_out)
    return Said(f"{head}\n{text}" if left_out else f"{head} {text}" if head else text, list(ran))
