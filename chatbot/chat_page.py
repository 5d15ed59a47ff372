"""The chat page Superset's "Chat with the lakewatch bot" button opens, and its way to the bot.

It serves web/ (plain HTML, CSS and JavaScript: nothing from a CDN, so it works offline) and
forwards each message to Rasa's REST channel from the same origin, so the browser needs no CORS
and Rasa stays on loopback. /health says whether Rasa answers; /metrics counts messages and
times answers end to end (understanding, actions and queries).

    python -m chatbot.chat_page
"""
from __future__ import annotations

import json
import logging
import re
import signal
import threading
import time
from pathlib import Path

import requests
from prometheus_client import Counter, Histogram

from lakewatch import logs, service_http
from lakewatch import settings as settings_module

WEB = Path(__file__).resolve().parent / "web"
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/chat.js": ("chat.js", "text/javascript"),
         "/chat.css": ("chat.css", "text/css")}
MAX_MESSAGE = 2000
SENDER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

MESSAGES = Counter("lakewatch_chat_page_messages_total", "Messages the chat page forwarded, by outcome", ["outcome"])
ANSWER_SECONDS = Histogram("lakewatch_chat_page_answer_seconds", "From message to the bot's answer, through Rasa",
                           buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10))

log = logging.getLogger("chat")


def _json(code: int, body) -> tuple[int, bytes, str]:
    return code, json.dumps(body).encode(), "application/json"


def _bad(reason: str) -> tuple[int, bytes, str]:
    MESSAGES.labels("bad_request").inc()
    return _json(400, {"error": reason})


def forward(settings, body: bytes) -> tuple[int, bytes, str]:
    """POST /api/message {"sender": "...", "message": "..."} -> the bot's answers [{"text": ...}]."""
    try:
        request = json.loads(body or b"null")
    except ValueError:
        return _bad('the body must be JSON: {"sender": "<id>", "message": "<text>"}')
    if not isinstance(request, dict):
        return _bad('the body must be a JSON object: {"sender": "<id>", "message": "<text>"}')
    message, sender = request.get("message"), request.get("sender", "web")
    if not isinstance(message, str) or not message.strip():
        return _bad('"message" must be a non-empty string')
    if len(message) > MAX_MESSAGE:
        return _bad(f'"message" is longer than {MAX_MESSAGE} characters')
    if not isinstance(sender, str) or not SENDER.match(sender):
        return _bad('"sender" must be 1 to 64 letters, digits, "-" or "_"')
    started = time.perf_counter()
    try:
        answer = requests.post(settings.peer_url("rasa", settings.rasa_port, "/webhooks/rest/webhook"),
                               json={"sender": sender, "message": message}, timeout=30)
        answer.raise_for_status()
        replies = answer.json()
    except (requests.RequestException, ValueError) as exc:
        MESSAGES.labels("bot_unavailable").inc()
        log.warning("the bot did not answer: %s", exc)
        rasa = settings.peer_url("rasa", settings.rasa_port)
        return _json(502, {"error": f"the bot (Rasa at {rasa}) did not answer; "
                                    "is it running? `make status` shows it"})
    seconds = time.perf_counter() - started
    ANSWER_SECONDS.observe(seconds)
    MESSAGES.labels("answered").inc()
    logs.event(log, "answered", sender=sender, chars=len(message), replies=len(replies), ms=round(seconds * 1000))
    return _json(200, replies)


def page(name: str, content_type: str):
    def serve_file(_body: bytes) -> tuple[int, bytes, str]:
        return 200, (WEB / name).read_bytes(), content_type
    return serve_file


def main() -> None:
    settings = settings_module.load()
    logs.setup("chat")

    def health() -> tuple[bool, dict]:
        rasa = service_http.healthy(settings.peer_url("rasa", settings.rasa_port, "/"))
        return rasa, {"rasa": "up" if rasa else "down"}

    routes = {("GET", path): page(name, kind) for path, (name, kind) in PAGES.items()}
    routes[("POST", "/api/message")] = lambda body: forward(settings, body)
    server = service_http.serve(settings.host, settings.chat_port, health, routes)
    log.info("chat page on %s", settings.url(settings.chat_port, "/"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    log.info("chat page stopped")


if __name__ == "__main__":
    main()
