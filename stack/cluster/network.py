"""Each cluster node in a network namespace of its own, joined by a bridge, so it can be cut off.

A bridge in the root namespace holds the gateway address; each node's namespace gets a veth
pair, `eth0` at the node's address on its side, the other end on the bridge. Cutting a node off
takes its bridge end down: its processes keep running and its peers' connections to it time
out, as in a network partition; healing brings it up again. Needs root (CAP_NET_ADMIN) and
iproute2's `ip`. Names carry a prefix and the subnet is a setting, so a test's network never
meets `make cluster`'s.
"""
from __future__ import annotations

import subprocess
import time

from lakewatch.settings import Settings
from lakewatch.settings.cluster import NODES, Node


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done


def namespace(settings: Settings, node: Node) -> str:
    return f"{settings.cluster_netns_prefix}-{node.name}"


def _bridge(settings: Settings) -> str:
    return f"{settings.cluster_netns_prefix}br"[:15]  # Linux limits interface names to 15 characters


def _veth(settings: Settings, node: Node) -> str:
    return f"{settings.cluster_netns_prefix}v{NODES.index(node)}"[:15]


def exec_prefix(settings: Settings, node: Node) -> list[str]:
    """What runs a command inside the node's namespace (`ip netns exec` replaces itself with the
    command, so the PID the runner records is the command's own)."""
    return ["ip", "netns", "exec", namespace(settings, node)]


def is_up(settings: Settings) -> bool:
    existing = set(_ip("netns", "list").stdout.split())
    return all(namespace(settings, node) in existing for node in NODES)


def up(settings: Settings) -> None:
    """The bridge and every node's namespace; what exists already is left as it is."""
    bridge = _bridge(settings)
    if _ip("link", "show", bridge, check=False).returncode != 0:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{settings.cluster_gateway}/24", "dev", bridge)
    _ip("link", "set", bridge, "up")
    existing = set(_ip("netns", "list").stdout.split())
    for node in NODES:
        ns, veth = namespace(settings, node), _veth(settings, node)
        if ns in existing:
            continue
        _ip("link", "del", veth, check=False)  # a half-made node of an interrupted run
        _ip("netns", "add", ns)
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", bridge, "up")
        _ip("-n", ns, "addr", "add", f"{settings.address(node)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")


def down(settings: Settings) -> None:
    """Remove the namespaces (their veth pairs go with them) and the bridge. The kernel frees a
    namespace's devices asynchronously: wait until they are gone, so an `up` right after works."""
    for node in NODES:
        _ip("netns", "del", namespace(settings, node), check=False)
    _ip("link", "del", _bridge(settings), check=False)
    deadline = time.monotonic() + 10
    while any(_ip("link", "show", _veth(settings, node), check=False).returncode == 0 for node in NODES):
        if time.monotonic() > deadline:
            for node in NODES:
                _ip("link", "del", _veth(settings, node), check=False)
            break
        time.sleep(0.1)


def cut(settings: Settings, node: Node) -> None:
    _ip("link", "set", _veth(settings, node), "down")


def heal(settings: Settings, node: Node) -> None:
    _ip("link", "set", _veth(settings, node), "up")
