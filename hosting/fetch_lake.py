"""Puts the lake a hosted Space reads in place, before its services start (docs/hosting.md).

    python3 -m hosting.fetch_lake      (from the app's root: it puts lakewatch on the path)

LAKE_SNAPSHOT_URL is an HTTPS address of a snapshot made by `hosting/make_space.sh lake`: a
.tar.gz whose one top folder is lake/. It is unpacked into <state_dir>/lake on every start,
since a free Space's disk is gone after each restart. HF_TOKEN, when set, is sent to
huggingface.co only, for a snapshot in a private dataset. Without a URL the lake already at
<state_dir>/lake (a mounted folder) is served as it is.

Standard library only: it runs in the image's own Python, outside the venvs, as a module from
the app's root, which is how it finds lakewatch.settings (hosting/ is a folder of scripts, not
an installed package).
"""
from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from lakewatch import settings as settings_module


def request(url: str, token: str) -> urllib.request.Request:
    req = urllib.request.Request(url)
    host = urlsplit(url).hostname or ""
    if token and (host == "huggingface.co" or host.endswith(".huggingface.co")):
        # Unredirected: the Hub answers with a redirect to signed storage, which refuses a second credential.
        req.add_unredirected_header("Authorization", f"Bearer {token}")
    return req


def unpack(response, state_dir: Path) -> Path:
    """The snapshot, unpacked in a new folder under state_dir; returns its lake/."""
    unpacked = Path(tempfile.mkdtemp(prefix="lake-snapshot-", dir=state_dir))
    try:
        with tarfile.open(fileobj=response, mode="r|gz") as archive:
            for member in archive:
                if member.name.split("/", 1)[0] != "lake":
                    raise ValueError(f"{member.name!r} is outside lake/: make the snapshot with "
                                     "`hosting/make_space.sh lake`")
                archive.extract(member, unpacked, filter="data")  # no absolute paths, links out or devices
        if not (unpacked / "lake").is_dir():
            raise ValueError("the snapshot holds no lake/ folder")
    except BaseException:
        shutil.rmtree(unpacked)  # a persistent disk keeps no half snapshot
        raise
    return unpacked / "lake"


def main() -> int:
    settings = settings_module.load()
    url = os.environ.get("LAKE_SNAPSHOT_URL", "").strip()
    lake = settings.lake_dir
    if not url:
        if lake.is_dir():
            print(f"fetch_lake: LAKE_SNAPSHOT_URL is not set; serving the lake at {lake}", flush=True)
            return 0
        print(f"fetch_lake: set LAKE_SNAPSHOT_URL to the lake snapshot (docs/hosting.md), or mount a lake at {lake}",
              file=sys.stderr)
        return 1
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    # The host only: a signed URL carries its credential in the query.
    print(f"fetch_lake: downloading the lake snapshot from {urlsplit(url).hostname} ...", flush=True)
    try:
        with urllib.request.urlopen(request(url, os.environ.get("HF_TOKEN", "")), timeout=60) as response:
            new = unpack(response, settings.state_dir)
    except (OSError, tarfile.TarError, ValueError) as exc:
        print(f"fetch_lake: could not unpack the lake snapshot: {exc}", file=sys.stderr)
        return 1
    shutil.rmtree(lake, ignore_errors=True)
    new.rename(lake)
    shutil.rmtree(new.parent)
    print(f"fetch_lake: {', '.join(sorted(p.name for p in lake.iterdir()))} in {lake} "
          f"({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
