"""Where lakewatch runs: its profile, its host, and the state folder every run writes to.

Every other concern builds on these: URLs use `host` (or the peer's name in compose), and the
folders of a run live under `state_dir` (docs/architecture.md, "Runtime state").
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # lakewatch/settings/runtime.py -> the repository


@dataclass(frozen=True)
class Runtime:
    # "embedded" (one machine, no Docker), "cluster" (the distributed engines as processes on one
    # host: make cluster) or "distributed" (docker-compose)
    profile: str = "embedded"
    host: str = "127.0.0.1"  # where services listen, and where they find each other unless...
    peers_by_name: bool = False  # ...each service is reached at its own name (compose's DNS)
    state_dir: Path = REPO_ROOT / "var"
    venv_home: Path | None = None  # default <state_dir>/venvs; tests share one across state dirs

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def venv_dir(self) -> Path:
        return self.venv_home or self.state_dir / "venvs"

    @property
    def jars_dir(self) -> Path:
        """The JVM jars built from pins like the venvs, one folder per set (stack/jars.py)."""
        return self.venv_dir / "jars"

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    def peer_url(self, service: str, port: int, path: str = "") -> str:
        """Another service's URL: at `host` on one machine, at the service's name in compose."""
        return f"http://{service if self.peers_by_name else self.host}:{port}{path}"
