"""Trino, the SQL engine users meet: one node that coordinates and runs the work, over the lake.

Its server comes from trino/pom.xml (stack/jars.py unpacks lib/ and the delta-lake plugin
only); its config is written under <state>/trino from the files compose mounts (trino/etc),
with this machine's port, paths and heap. The catalog's native local file system is rooted at
<state>/trino/fs, which holds a `lake` link to the lake and the file metastore, so the
catalog's `local:///lake` and `local:///metastore` mean the same here as in compose.
Trino 476 needs Java 24 or newer: the Temurin 25 JDK. SIGTERM makes it shut down in order.
Health is /v1/info saying it is no longer starting; metrics are Trino's own /metrics.
"""
from __future__ import annotations

import json
import resource
import urllib.request
from pathlib import Path

from lakewatch.settings import REPO_ROOT, Settings
from stack.services import Service

ETC = REPO_ROOT / "trino" / "etc"


def trino_dir(settings: Settings) -> Path:
    return settings.state_dir / "trino"


def read_properties(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _heap_bytes(heap: str) -> int:
    return int(heap[:-1]) * {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[heap[-1].upper()]


def config(settings: Settings, etc: Path | None = None, server_file: Path = ETC / "config.properties",
           node_id: str = "lakewatch-1") -> dict[str, dict[str, str]]:
    """The files of the etc folder (default <state>/trino/etc): compose's, with this machine's
    port, paths and memory. A cluster node (stack/cluster/trino.py) has an etc of its own, a
    worker's server file and its own id; the file system and metastore are shared."""
    home, heap_mb = trino_dir(settings), _heap_bytes(settings.trino_heap) >> 20
    etc = etc or home / "etc"
    server = read_properties(server_file) | {
        "http-server.http.port": str(settings.trino_port),
        "discovery.uri": f"http://{settings.host}:{settings.trino_port}",
        # A query may use half the heap; a quarter stays free for Trino itself.
        "query.max-memory": f"{heap_mb // 2}MB", "query.max-memory-per-node": f"{heap_mb // 2}MB",
        "memory.heap-headroom-per-node": f"{heap_mb // 4}MB",
        "node.environment": read_properties(ETC / "node.properties")["node.environment"],
        "node.id": node_id,
        "node.bind-ip": settings.host, "node.internal-address": settings.host,
        "plugin.dir": str(settings.jars_dir / "trino" / "plugin"),
        "catalog.config-dir": str(etc / "catalog"),
        "access-control.config-files": str(etc / "access-control.properties"),
        "log.levels-file": str(ETC / "log.properties"),
        "http-server.log.enabled": "false",
    }
    catalog = read_properties(ETC / "catalog" / "delta.properties") | {"local.location": str(home / "fs")}
    access = read_properties(ETC / "access-control.properties") | {"security.config-file": str(ETC / "rules.json")}
    return {"config.properties": server, "catalog/delta.properties": catalog, "access-control.properties": access}


def write_config(settings: Settings, files: dict[str, dict[str, str]] | None = None, etc: Path | None = None) -> Path:
    """Write `files` (default config(settings)) into etc (default <state>/trino/etc) and link the
    lake into the shared file system; return the server config's path."""
    home = trino_dir(settings)
    etc = etc or home / "etc"
    for name, values in (files or config(settings)).items():
        path = etc / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    (home / "fs" / "metastore").mkdir(parents=True, exist_ok=True)
    link = home / "fs" / "lake"
    if link.is_symlink() and link.resolve() != settings.lake_dir.resolve():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(settings.lake_dir.resolve(), target_is_directory=True)
    settings.lake_dir.mkdir(parents=True, exist_ok=True)
    return etc / "config.properties"


def jvm_flags(settings: Settings) -> list[str]:
    """Compose's trino/etc/jvm.config (Trino's recommended flags), with this machine's heap."""
    lines = [line.strip() for line in (ETC / "jvm.config").read_text().splitlines()]
    flags = [line for line in lines if line and not line.startswith("#")]
    # A heap dump of a 2 GiB heap in the working folder helps nobody on a laptop; -Xms last wins.
    return [flag for flag in flags if not flag.startswith("-Xmx") and flag != "-XX:+HeapDumpOnOutOfMemoryError"] + [
        f"-Xmx{settings.trino_heap}", "-Xms256m"]


def command(settings: Settings, etc: Path | None = None) -> list[str]:
    """The server's command line (write_config first). Trino wants many open files (it refuses to
    start with fewer than 4096): prlimit raises the soft limit to the hard one, as its launcher does."""
    etc = etc or trino_dir(settings) / "etc"
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    files = 131072 if hard == resource.RLIM_INFINITY else min(hard, 131072)
    return ["prlimit", f"--nofile={files}", str(settings.trino_java), *jvm_flags(settings),
            f"-Dconfig={etc / 'config.properties'}",
            "-cp", str(settings.jars_dir / "trino" / "lib" / "*"), "io.trino.server.TrinoServer"]


def healthy(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(settings.url(settings.trino_port, "/v1/info"), timeout=2) as response:
            return json.load(response).get("starting") is False
    except Exception:
        return False


def service(settings: Settings) -> Service | None:
    if settings.sql_engine != "trino" or settings.trino_host:  # DuckDB, or a Trino elsewhere
        return None

    def prepare() -> dict[str, str]:
        write_config(settings)
        return server_environment(settings)

    return Service(name="trino", command=command(settings), port=settings.trino_port,
                   url=settings.url(settings.trino_port, "/ui/"), health=lambda: healthy(settings), prepare=prepare,
                   start_timeout=120, lake_read_only=True)


def server_environment(settings: Settings) -> dict[str, str]:
    """Trino's environment; one sentence instead if its server was never fetched or Java 24+ is
    missing (make up checked it first; a restart or a test's `up(only=...)` did not)."""
    from stack import jars, prerequisites

    jars.install_dir("trino")
    if missing := prerequisites.missing(["Java 24 or newer"]):
        raise RuntimeError(prerequisites.advice("Trino", missing))
    return {"JAVA_HOME": str(settings.trino_java_home)}
