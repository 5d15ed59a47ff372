"""The action server: rasa-sdk's web app serving chatbot/actions.py, plus Prometheus /metrics,
JSON logs and a bind to the configured host only (rasa-sdk's own runner listens everywhere).
Runs in the actions venv, where lakewatch is installed without its dependencies (stack/bootstrap.py):

    var/venvs/actions/bin/python -m chatbot.action_server
"""
from __future__ import annotations

import warnings

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import response

from lakewatch import logs, settings as settings_module


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
    lake.warm_up(settings)
    log.info("action server on %s:%s with %d actions", settings.host, settings.actions_port,
             len(executor.list_actions()))
    app.run(host=settings.host, port=settings.actions_port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
