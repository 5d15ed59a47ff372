"""The lake, read-only, for the processes that run users' SQL (Superset, the bot's actions,
`make sql`), as docker-compose mounts its lake volume `:ro` into them.

DuckDB's own settings (lakewatch/sql/duckdb_lake.py, `confine`) keep a connection's files inside
the lake folder, but cannot tell reading the lake from writing into it: `COPY ... TO
'<lake>/trades/_delta_log/...'` would plant a Delta commit. So such a process runs in a mount
namespace of its own in which the lake is bind-mounted read-only over itself; everything else
sees the lake as before, and the stream job keeps writing it. The command keeps its PID
(unshare and sh exec into it), so the runner stops it by PID as any other.
"""
from __future__ import annotations

import os
from pathlib import Path

MARKER = "LAKEWATCH_LAKE_READ_ONLY"  # set inside, so a command never wraps itself twice
_MOUNT_READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def read_only_lake(lake_dir: Path, command: list[str]) -> list[str]:
    """`command` wrapped so that it sees lake_dir read-only (created first if missing)."""
    lake_dir.mkdir(parents=True, exist_ok=True)
    # Without root, a user namespace maps the caller to root inside it, which may bind-mount.
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--mount", "--map-root-user"]
    return [*unshare, "env", f"{MARKER}=1", "sh", "-c", _MOUNT_READ_ONLY, str(lake_dir.resolve()), *command]


def inside() -> bool:
    return os.environ.get(MARKER) == "1"
