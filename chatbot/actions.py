"""The bot's custom actions for rasa-sdk: each runs one answer (chatbot/answers/) and says it.

Answers run in a worker thread, so a slow query never stalls the server's event loop, and each
is counted for /metrics: questions by intent, answer time, and errors by kind.
"""
from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import Counter, Histogram
from rasa_sdk import Action

from chatbot.answers import Question, about, anomalies, entities, lake, model_info, news, prices

ANSWERS = {
    "action_anomaly_count": anomalies.count,
    "action_top_anomalous": anomalies.top,
    "action_latest_anomaly": anomalies.latest,
    "action_latest_price": prices.latest,
    "action_symbol_summary": prices.summary,
    "action_news": news.recent,
    "action_model_info": model_info.describe,
    "action_project": about.project,
    "action_data_sources": about.data_sources,
    "action_dashboard": about.dashboard,
}

QUESTIONS = Counter("lakewatch_chat_questions_total", "Questions a custom action answered, by intent and action",
                    ["intent", "action"])
ANSWER_SECONDS = Histogram("lakewatch_chat_answer_seconds", "Time a custom action took, queries included",
                           ["action"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ERRORS = Counter("lakewatch_chat_errors_total", "Questions a custom action could not answer, by action and kind "
                 "(not_understood: the user's value; no_data: a table not written yet; failed: an error)",
                 ["action", "kind"])

log = logging.getLogger("lakewatch.chatbot.actions")


def answer_text(name: str, question: Question) -> str:
    """The answer, or the one sentence that says why there is none."""
    try:
        return ANSWERS[name](question)
    except entities.NotUnderstood as exc:
        ERRORS.labels(name, "not_understood").inc()
        return str(exc)
    except lake.NoDataYet as exc:
        ERRORS.labels(name, "no_data").inc()
        return f"The lake has no {exc} table yet: nothing has been written there so far. Ask again in a minute."
    except Exception:
        ERRORS.labels(name, "failed").inc()
        log.exception("action %s failed on %r", name, question.text)
        return "Sorry, I could not get that from the lake just now; the action server's log says why."


async def run_answer(name: str, dispatcher, tracker) -> list:
    message = tracker.latest_message or {}
    intent = (message.get("intent") or {}).get("name") or "none"
    QUESTIONS.labels(intent, name).inc()
    text = message.get("text") or ""
    if text.startswith("/"):  # "/intent{...}": the entities are given, there are no words to read
        text = ""
    question = Question(text=text, intent=intent, entities=message.get("entities") or [])
    started = time.perf_counter()
    text = await asyncio.to_thread(answer_text, name, question)
    ANSWER_SECONDS.labels(name).observe(time.perf_counter() - started)
    dispatcher.utter_message(text=text)
    return []


def _action(action_name: str) -> type[Action]:
    class AnswerAction(Action):
        def name(self) -> str:
            return action_name

        async def run(self, dispatcher, tracker, domain) -> list:
            return await run_answer(action_name, dispatcher, tracker)

    AnswerAction.__name__ = AnswerAction.__qualname__ = "".join(w.title() for w in action_name.split("_"))
    return AnswerAction


# rasa-sdk registers every Action subclass it finds in this module: one per answer.
for _cls in map(_action, ANSWERS):
    globals()[_cls.__name__] = _cls
