"""Rasa's server with lakewatch's conventions added: /health (200 once the model is loaded),
Prometheus /metrics (messages and answer time per channel), JSON logs, the configured host only.

Rasa 3.6 has no /health or /metrics; its serve_application() takes listeners, and one that runs
before the server starts adds both routes. Runs in the rasa venv, as a module from the repo root
(the venv is Python 3.10, below lakewatch's requires-python, so lakewatch is not installed there:
the repo root, the working directory, is what puts `chatbot` and `lakewatch` on the path):

    cd <repo> && var/venvs/rasa/bin/python -m chatbot.rasa_server [model.tar.gz]

Its patches of Rasa's internals are in chatbot/rasa_patches.py.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from chatbot import rasa_patches
from lakewatch import logs, settings as settings_module

CHATBOT = Path(__file__).resolve().parent


def add_lakewatch_routes(app, _loop) -> None:
    from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
    from sanic import response

    messages = Counter("lakewatch_rasa_messages_total", "Messages Rasa answered, by channel and HTTP status",
                       ["channel", "status"])
    seconds = Histogram("lakewatch_rasa_answer_seconds", "Time from a message to Rasa's answer, actions included",
                        ["channel"], buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2.5, 5, 10))

    @app.get("/health")
    async def health(_request):
        agent = getattr(app.ctx, "agent", None)
        ready = bool(agent and agent.is_ready())
        return response.json({"status": "ok" if ready else "loading model"}, status=200 if ready else 503)

    @app.get("/metrics")
    async def metrics(_request):
        return response.raw(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    @app.middleware("request")
    async def started(request):
        request.ctx.started = time.perf_counter()

    @app.middleware("response")
    async def answered(request, reply):
        parts = request.path.strip("/").split("/")
        if request.method == "POST" and parts[0] == "webhooks" and len(parts) > 1:
            messages.labels(parts[1], str(reply.status)).inc()
            seconds.labels(parts[1]).observe(time.perf_counter() - request.ctx.started)


def main(argv: list[str]) -> int:
    """argv: [model.tar.gz]; default: the model chatbot/training.py trains for the current data."""
    from chatbot.training import model_path

    settings = settings_module.load()
    model = Path(argv[0]) if argv else model_path(settings)
    if not model.exists():
        print(f"rasa_server: no trained model at {model}; `make up` trains it (chatbot/training.py)", file=sys.stderr)
        return 1
    log = logs.setup("rasa")
    from rasa.core.run import serve_application
    from rasa.utils.log_utils import configure_structlog

    # `rasa run` sets this up itself; without it Rasa's structlog events are printed at DEBUG,
    # a page of tracker states per message, which also costs tens of milliseconds per answer.
    configure_structlog(log.getEffectiveLevel())
    rasa_patches.apply()
    from rasa.core.utils import AvailableEndpoints
    from rasa.utils.endpoints import EndpointConfig

    # The endpoints come from settings, like every other URL (no endpoints.yml). Conversations
    # live in memory with their recent events only (tracker_store.py says why).
    endpoints = AvailableEndpoints(action=EndpointConfig(url=settings.actions_webhook_url),
                                   tracker_store=EndpointConfig(type="chatbot.tracker_store.RecentEventsTrackerStore"))
    serve_application(model_path=str(model), interface=settings.host, port=settings.rasa_port,
                      credentials=str(CHATBOT / "credentials.yml"), endpoints=endpoints, enable_api=False,
                      server_listeners=[(add_lakewatch_routes, "main_process_start")])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
