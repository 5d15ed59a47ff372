"""The HTTP side door every service opens (lakewatch/service_http.py)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from lakewatch import service_http
from testkit.processes import free_port


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to read the listen backlog")
def test_a_service_queues_a_burst_of_connections_beyond_the_standard_librarys_five():
    port = free_port()
    server = service_http.serve("127.0.0.1", port, lambda: (True, {}))
    try:
        listening = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True,
                                   check=True).stdout.split()
        # For a listening socket, ss shows the backlog as Send-Q: State Recv-Q Send-Q Local Peer
        assert int(listening[2]) >= 128, listening
    finally:
        server.shutdown()
        server.server_close()


def test_health_answers_503_with_the_details_when_not_ok():
    import requests

    port = free_port()
    server = service_http.serve("127.0.0.1", port, lambda: (False, {"broker": "gone"}))
    try:
        reply = requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
        assert reply.status_code == 503 and reply.json()["broker"] == "gone"
    finally:
        server.shutdown()
        server.server_close()
