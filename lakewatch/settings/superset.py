"""Superset (superset/, stack/services/superset.py): its port, where users open it, and its
secrets. The secrets come from the variables Superset's own docs name (OWN_NAMES in
lakewatch/settings/__init__.py); the embedded profile fills in what is unset.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Superset:
    superset_port: int = 8088
    superset_url: str = ""  # where users open Superset, for the bot's links (default: the stack's own)
    # repr=False keeps the secrets out of logs.
    superset_secret_key: str = field(default="", repr=False)
    superset_admin_user: str = "admin"
    superset_admin_password: str = field(default="", repr=False)
    superset_database_uri: str = field(default="", repr=False)  # its metadata DB; default SQLite in the state dir

    @property
    def superset_page_url(self) -> str:
        return (self.superset_url or self.url(self.superset_port)).rstrip("/")

    @property
    def superset_dir(self) -> Path:
        return self.state_dir / "superset"
