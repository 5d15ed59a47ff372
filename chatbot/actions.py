"""The bot's custom actions for rasa-sdk: each runs one answer (chatbot/answers/), checked
against the question (chatbot/answers/checked.py), and says it.

Answers run in a worker thread, so a slow query never stalls the server's event loop, and each
is counted for /metrics: questions by intent, answer time, and errors by kind. An answer that
ran SQL sets two slots: `context` (what a follow-up changes) and `last_sql` (what "show me the
SQL" gives back); the SQL also goes to the chat page, which shows it behind a toggle.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from prometheus_client import Counter, Histogram
from rasa_sdk import Action
from rasa_sdk.events import SlotSet

from chatbot.answers import Question, conversation, entities, lake
from chatbot.answers.by_action import ANSWERS
from chatbot.answers.checked import Said, checked

FOLLOW_UP, SHOW_SQL = "action_follow_up", "action_show_sql"
CONTEXT, LAST_SQL = "context", "last_sql"  # the domain's slots

QUESTIONS = Counter("lakewatch_chat_questions_total", "Questions a custom action answered, by intent and action",
                    ["intent", "action"])
ANSWER_SECONDS = Histogram("lakewatch_chat_answer_seconds", "Time a custom action took, queries included",
                           ["action"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ERRORS = Counter("lakewatch_chat_errors_total", "Questions a custom action could not answer, by action and kind "
                 "(not_understood: the user's value; no_data: a table not written yet; failed: an error)",
                 ["action", "kind"])


def answer(name: str, question: Question) -> Said:
    said = checked(ANSWERS[name], question)
    if said.error:
        ERRORS.labels(name, said.error).inc()
    return said


def question_of(tracker, intent: str) -> Question:
    message = tracker.latest_message or {}
    text = message.get("text") or ""
    if text.startswith("/"):  # "/intent{...}": the entities are given, there are no words to read
        text = ""
    return Question(text=text, intent=intent, entities=message.get("entities") or [])


async def say(name: str, question: Question, dispatcher) -> list:
    """Answers in a worker thread, says it with its SQL, and remembers it for follow-ups."""
    QUESTIONS.labels(question.intent, name).inc()
    started = time.perf_counter()
    said = await asyncio.to_thread(answer, name, question)
    ANSWER_SECONDS.labels(name).observe(time.perf_counter() - started)
    if not said.sql:
        dispatcher.utter_message(text=said.text)
        return []
    engine = question.settings.sql_engine
    dispatcher.utter_message(text=said.text, json_message={"sql": ";\n\n".join(said.sql), "engine": engine})
    return [SlotSet(CONTEXT, {"action": name, "entities": conversation.remembered(question.entities)}),
            SlotSet(LAST_SQL, {"sql": said.sql, "engine": engine, "question": question.text})]


def _intent(tracker) -> str:
    return ((tracker.latest_message or {}).get("intent") or {}).get("name") or "none"


def _action(action_name: str) -> type[Action]:
    class AnswerAction(Action):
        def name(self) -> str:
            return action_name

        async def run(self, dispatcher, tracker, domain) -> list:
            return await say(action_name, question_of(tracker, _intent(tracker)), dispatcher)

    AnswerAction.__name__ = AnswerAction.__qualname__ = "".join(w.title() for w in action_name.split("_"))
    return AnswerAction


# rasa-sdk registers every Action subclass it finds in this module: one per answer.
for _cls in map(_action, ANSWERS):
    globals()[_cls.__name__] = _cls


class ActionFollowUp(Action):
    """"and yesterday?": the previous question again, changed only where this message says."""

    def name(self) -> str:
        return FOLLOW_UP

    async def run(self, dispatcher, tracker, domain) -> list:
        previous = tracker.get_slot(CONTEXT)
        new = question_of(tracker, _intent(tracker))
        known = lake.known_symbols(new.settings)
        # "what about dogecoin?" is not the previous symbol again
        refusal = entities.only_unknown(entities.symbols_in(new.entities, new.text, known), known)
        if refusal or not previous or previous.get("action") not in ANSWERS:
            QUESTIONS.labels(new.intent, FOLLOW_UP).inc()
            dispatcher.utter_message(text=refusal or conversation.NOTHING_TO_FOLLOW)
            return []
        merged = replace(new, entities=conversation.carried_over(previous["entities"], new.entities))
        return await say(previous["action"], merged, dispatcher)


class ActionShowSql(Action):
    """"show me the SQL": the last answer's queries, values filled in, for SQL Lab."""

    def name(self) -> str:
        return SHOW_SQL

    async def run(self, dispatcher, tracker, domain) -> list:
        QUESTIONS.labels(_intent(tracker), SHOW_SQL).inc()
        dispatcher.utter_message(text=conversation.sql_answer(tracker.get_slot(LAST_SQL)))
        return []
