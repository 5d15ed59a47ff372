"""The newest committed version of a Delta table, read from its log folder in a few stats.

A query's result changes only when a table it reads gets a new commit, so a cache keyed by the
SQL and the versions of the tables it reads is never stale (the bot's answers, chatbot/answers/
lake.py). Commit N of a table is the file `_delta_log/<N, 20 digits>.json`, created whole by
every Delta writer (put-if-absent), so the newest version is the last of an unbroken run of
those files: found by stepping forward from the version this process saw last, or from the
checkpoint `_last_checkpoint` names, or, the first time, from a listing of the folder. Log
cleanup removes only files older than a checkpoint, never the newest commit.
"""
from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path

_COMMIT = re.compile(r"^(\d{20})\.json$")
_seen: dict[Path, tuple[int, tuple]] = {}  # log folder -> (version, its commit file's identity)
_lock = threading.Lock()


def _commit(log: Path, version: int) -> Path:
    return log / f"{version:020d}.json"


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's inode and mtime: a commit file written again after its table was deleted
    differs in one of them."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns


def _start(log: Path) -> int:
    """A version known to exist, to step forward from."""
    with _lock:
        seen = _seen.get(log)
    # The same file as before: the table was not deleted and written again since.
    if seen is not None and _identity(_commit(log, seen[0])) == seen[1]:
        return seen[0]
    try:
        checkpoint = json.loads((log / "_last_checkpoint").read_text())["version"]
        if _identity(_commit(log, checkpoint)) is not None:
            return checkpoint
    except (OSError, ValueError, KeyError, TypeError):
        pass
    versions = [int(m.group(1)) for m in map(_COMMIT.match, os.listdir(log)) if m]
    return max(versions, default=-1)


def version(table_dir: Path) -> tuple[int, tuple] | None:
    """(newest version, its commit file's identity): the identity tells a table deleted and
    written again up to the same version apart. None when the folder holds no Delta table."""
    log = Path(table_dir) / "_delta_log"
    try:
        newest = _start(log)
    except FileNotFoundError:
        return None
    if newest < 0:
        return None
    while _identity(_commit(log, newest + 1)) is not None:
        newest += 1
    identity = _identity(_commit(log, newest))
    if identity is None:  # deleted while we looked: nothing to vouch for
        return None
    with _lock:
        _seen[log] = (newest, identity)
    return newest, identity
