"""The action server: rasa-sdk's web app serving chatbot/actions.py, plus Prometheus /metrics,
JSON logs and a bind to the configured host only (rasa-sdk's own runner listens everywhere).

    var/venvs/actions/bin/python chatbot/action_server.py
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: E402
from rasa_sdk.endpoint import create_app  # noqa: E402
from rasa_sdk.executor import ActionExecutor  # noqa: E402
from sanic import response  # noqa: E402

from lakewatch import logs, settings as settings_module  # noqa: E402


# rasa-sdk 3.21 serves the Rasa 3.6 server fine (docs/platform.md) but warns about the skew on every call.
warnings.filterwarnings("ignore", message="You are using an old version of rasa")


def main() -> None:
    settings = settings_module.load()
    log = logs.setup("actions")
    executor = ActionExecutor()
    executor.register_package("chatbot.actions")
    app = create_app(executor, cors_origins=None)

    @app.get("/metrics")
    async def metrics(_request):
        return response.raw(generate_latest(), content_type=CONTENT_TYPE_LATEST)

    from chatbot.answers import lake
    lake.known_symbols(settings)  # the first query prepares DuckDB (~0.5 s): not on a user's first question
    log.info("action server on %s:%s with %d actions", settings.host, settings.actions_port,
             len(executor.list_actions()))
    app.run(host=settings.host, port=settings.actions_port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
