"""The small HTTP side door every lakewatch service opens: /health and /metrics.

The stack runner waits on /health, Prometheus scrapes /metrics. A health callable returns
(ok, details); /health answers 200 with the details when ok and 503 otherwise, so a service
that is up but not working (say, its broker is gone) shows as unhealthy. A service with a
small web surface of its own (the chat page) adds routes beside them.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

HealthCheck = Callable[[], tuple[bool, dict]]
# (method, path) -> handler of the request body (b"" for GET) returning (status, body, content type)
Routes = dict[tuple[str, str], Callable[[bytes], tuple[int, bytes, str]]]
MAX_BODY = 64 * 1024


def healthy(url: str, timeout: float = 2.0) -> bool:
    """Whether a service's health URL answers 2xx: how the runner, and a page that shows another
    service's state, ask."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception:
        return False


class _Server(ThreadingHTTPServer):
    # The standard library listens with a backlog of 5: twenty chat users connecting at once
    # overflowed it, and the kernel reset their connections (bench_chatbot.py, issue 23).
    request_queue_size = 128
    daemon_threads = True


def serve(host: str, port: int, health: HealthCheck, routes: Routes | None = None) -> ThreadingHTTPServer:
    """Start the server on a daemon thread; call .shutdown() on the result to stop it."""
    routes = routes or {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("Content-Length") or 0)
            if ("POST", path) not in routes:
                self._error(404 if not any(p == path for _, p in routes) else 405, f"no POST route {path}")
            elif length > MAX_BODY:
                self._error(413, f"the body is larger than {MAX_BODY} bytes")
            else:
                self._reply(*routes[("POST", path)](self.rfile.read(length)))

        def do_GET(self):  # noqa: N802 (http.server's naming)
            path = self.path.split("?", 1)[0]
            if ("GET", path) in routes:
                self._reply(*routes[("GET", path)](b""))
            elif path == "/metrics":
                self._reply(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path == "/health":
                try:
                    ok, details = health()
                except Exception as exc:  # a broken check is an unhealthy service
                    ok, details = False, {"error": str(exc)}
                body = json.dumps({"status": "ok" if ok else "unhealthy", **details}, default=str)
                self._reply(200 if ok else 503, body.encode(), "application/json")
            elif any(p == path for _, p in routes):
                self._error(405, f"{path} takes POST")
            else:
                self._error(404, f"no such path {path}; try /health or /metrics")

        def _error(self, code: int, reason: str):
            self._reply(code, json.dumps({"error": reason}).encode(), "application/json")

        def _reply(self, code: int, body: bytes, content_type: str):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # scrapes every few seconds would flood the log
            pass

    server = _Server((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
