"""Trino as a coordinator and two workers, each in its node's namespace, over one lake.

Each node's config is make up's (stack/services/trino.py: compose's files with this machine's
paths) at its own address and heap; a worker starts from compose's worker file
(trino/etc-worker). All three share the file system folder that holds the lake link and the
file metastore, as compose's nodes share their volumes.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from lakewatch.settings import REPO_ROOT, Settings
from lakewatch.settings.cluster import Node
from stack.services import trino

WORKER_FILE = REPO_ROOT / "trino" / "etc-worker" / "config.properties"


def node_settings(settings: Settings, node: Node) -> Settings:
    return dataclasses.replace(settings, host=settings.address(node), trino_heap=settings.cluster_trino_heap)


def etc_dir(settings: Settings, node: Node) -> Path:
    return settings.state_dir / "cluster" / node.name / "etc"


def config(settings: Settings, node: Node) -> dict[str, dict[str, str]]:
    worker = node.role == "trino-worker"
    files = trino.config(node_settings(settings, node), etc_dir(settings, node),
                         WORKER_FILE if worker else trino.ETC / "config.properties", node_id=node.name)
    files["config.properties"]["discovery.uri"] = f"http://{settings.cluster_trino}:{settings.trino_port}"
    return files


def write_config(settings: Settings, node: Node) -> None:
    trino.write_config(settings, config(settings, node), etc_dir(settings, node))


def command(settings: Settings, node: Node) -> list[str]:
    return trino.command(node_settings(settings, node), etc_dir(settings, node))


def url(settings: Settings, node: Node, path: str = "") -> str:
    return node_settings(settings, node).url(settings.trino_port, path)


def healthy(settings: Settings, node: Node) -> bool:
    return trino.healthy(node_settings(settings, node))
