"""Model serving: MLflow's scoring server for models:/lakewatch-anomaly@champion, plus what
`mlflow models serve` lacks: Prometheus /metrics, a /health that says which version answers
and which columns it takes (its signature's: the scorer sends those), and following the
`champion` alias when training promotes a new version.

The REST API is MLflow's own (mlflow.pyfunc.scoring_server, the app `mlflow models serve`
runs): POST /invocations with dataframe_split, dataframe_records, instances or inputs JSON,
or CSV; a malformed payload gets a 400 with MLflow's reason (docs/model.md has a curl for
each). Every SERVING_RELOAD_SECONDS the alias is looked up; a new version is loaded beside
the old one and swapped in between requests, so no request fails during a promotion. Before
any champion exists, /invocations answers 503 saying so and /health says `model: null`.

    python -m model.serve
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import mlflow
import uvicorn
from prometheus_client import Counter, Gauge, Histogram, make_asgi_app

from lakewatch import logs
from lakewatch import settings as settings_module
from model.registry import champion_version

REQUESTS = Counter("lakewatch_serving_requests_total", "Requests by path and status", ["path", "status"])
LATENCY = Histogram("lakewatch_serving_request_seconds", "Request time by path", ["path"],
                    buckets=(0.002, 0.005, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
MODEL_VERSION = Gauge("lakewatch_serving_model_version", "The registered version being served (0: none)")
RELOADS = Counter("lakewatch_serving_model_loads_total", "Model versions loaded", ["outcome"])
ROUTES = {"/invocations", "/ping", "/health", "/version", "/metrics"}


class ChampionServer:
    """An ASGI app: /metrics and /health here, everything else to the current MLflow app."""

    def __init__(self, settings, log: logging.Logger):
        self.settings, self.log = settings, log
        self.inner = None  # MLflow's scoring app for the current version
        # (version, the columns it takes from its signature), swapped as one, so /health never
        # pairs a version with another's columns while a promotion is loading
        self.described: tuple[str | None, list[str] | None] = (None, None)
        self.metrics_app = make_asgi_app()

    # ---- the champion ------------------------------------------------------------------
    @property
    def version(self) -> str | None:
        """The registered version being served (None before any champion)."""
        return self.described[0]

    def follow(self) -> None:
        """Load the alias's version if it is not the one being served."""
        version = champion_version(self.settings)
        if version is None or version == self.version:
            return
        from mlflow.pyfunc import scoring_server

        started = time.monotonic()
        try:
            model = mlflow.pyfunc.load_model(f"models:/{self.settings.model_name}/{version}")
        except Exception as exc:  # keep serving the old version
            RELOADS.labels("failed").inc()
            logs.event(self.log, "model load failed", logging.ERROR, version=version, error=str(exc))
            return
        schema = model.metadata.get_input_schema()
        self.inner, previous = scoring_server.init(model), self.version
        self.described = (version, schema.input_names() if schema is not None else None)
        MODEL_VERSION.set(float(version))
        RELOADS.labels("loaded").inc()
        logs.event(self.log, "serving model", model=self.settings.model_name, version=version, previous=previous,
                   seconds=round(time.monotonic() - started, 2))

    def watch(self, stop: threading.Event) -> None:
        while not stop.wait(self.settings.serving_reload_seconds):
            try:
                self.follow()
            except Exception as exc:  # the tracking server may be restarting: try again later
                logs.event(self.log, "champion lookup failed", logging.WARNING, error=str(exc))

    # ---- ASGI ----------------------------------------------------------------------------
    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == "/metrics":
            return await self.metrics_app(scope, receive, send)
        label = path if path in ROUTES else "other"
        status = {}

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            if path == "/health":
                version, inputs = self.described  # one read: a version and its own columns
                await _json(send_and_note, 200, {"status": "ok", "model": self.settings.model_name,
                                                 "version": version, "inputs": inputs})
            elif self.inner is None:
                await _json(send_and_note, 503, {"error": f"no champion of {self.settings.model_name} is registered "
                                                          "yet: run `make train` (docs/model.md)"})
            else:
                await self.inner(scope, receive, send_and_note)
        finally:
            REQUESTS.labels(label, str(status.get("code", 500))).inc()
            LATENCY.labels(label).observe(time.perf_counter() - started)


async def _json(send, status: int, body: dict) -> None:
    payload = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def main() -> int:
    settings = settings_module.load()
    log = logs.setup("serving")
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    server = ChampionServer(settings, log)
    server.follow()
    stop = threading.Event()
    threading.Thread(target=server.watch, args=(stop,), name="champion-watch", daemon=True).start()
    logs.event(log, "serving started", url=settings.url(settings.serving_port), version=server.version)
    config = uvicorn.Config(server, host=settings.host, port=settings.serving_port, log_config=None,
                            access_log=False, lifespan="on")
    try:
        asyncio.run(uvicorn.Server(config).serve())  # SIGTERM: uvicorn finishes in-flight requests, then returns
    finally:
        stop.set()
        logs.event(log, "serving stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
