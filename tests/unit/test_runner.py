"""The runner's `up` (stack/runner.py) refusing to start when a port is taken, with real sockets
and services that would leave a pid file if anything started them."""
from __future__ import annotations

import socket

import pytest

from lakewatch import settings as settings_module
from stack import runner
from stack.services import Service


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def two_services(tmp_path, monkeypatch):
    settings = settings_module.load({"LAKEWATCH_STATE_DIR": str(tmp_path), "LAKEWATCH_SUPERVISOR_PORT": str(_free_port())})
    fakes = [Service(name=name, command=["sleep", "60"], port=_free_port(), url="", health=lambda: True)
             for name in ("first", "second")]
    monkeypatch.setattr(runner, "services", lambda s: fakes)
    return settings, fakes


def test_a_taken_port_stops_up_before_any_service_starts_naming_port_and_service(two_services):
    settings, (first, second) = two_services
    with socket.socket() as squatter:  # the last service's port: the first would have started before
        squatter.bind(("127.0.0.1", second.port))
        squatter.listen()
        with pytest.raises(runner.StackError) as refused:
            runner.up(settings, say=lambda line: None)
    assert str(refused.value) == (
        f"port {second.port} (second) on 127.0.0.1 is already taken by another program, so nothing was started; "
        f"{runner.PORT_ADVICE}.")
    assert list(settings.run_dir.glob("*.pid")) == []


def test_every_taken_port_is_named_in_the_one_sentence(two_services):
    settings, (first, second) = two_services
    with socket.socket() as one, socket.socket() as other:
        for squatter, service in ((one, first), (other, second)):
            squatter.bind(("127.0.0.1", service.port))
            squatter.listen()
        with pytest.raises(runner.StackError, match=rf"^ports {first.port} \(first\), {second.port} \(second\) on "
                                                    r"127\.0\.0\.1 are already taken by another program, so nothing"):
            runner.up(settings, say=lambda line: None)
    assert list(settings.run_dir.glob("*.pid")) == []


def test_an_address_not_on_this_machine_is_left_to_the_start_which_names_it_not_called_a_taken_port(tmp_path, monkeypatch):
    # make cluster's host address is on a bridge its first node's prepare step makes: the check
    # before anything starts must not call it taken. The service's own start checks again.
    settings = settings_module.load({"LAKEWATCH_STATE_DIR": str(tmp_path), "LAKEWATCH_HOST": "192.0.2.1"})
    later = Service(name="later", command=["sleep", "60"], port=_free_port(), url="", health=lambda: True)
    monkeypatch.setattr(runner, "services", lambda s: [later])
    with pytest.raises(runner.StackError, match=r"^192\.0\.2\.1 is not an address of this machine, so later cannot "
                                                r"listen on it; set LAKEWATCH_HOST to one of its addresses\.$"):
        runner.up(settings, say=lambda line: None)
    assert list(settings.run_dir.glob("*.pid")) == []
