"""Every port, path, URL, topic and symbol list of lakewatch, split by concern.

Each concern is a small frozen dataclass in its own module, holding its fields (with their
comments) and the values derived from them:

    runtime.py     profile, host, state folder, venvs; log/run/venv dirs, url(), peer_url()
    broker.py      the broker's port or an external Kafka, the topics
    symbols.py     stocks, forex, crypto; asset_class_of()
    ingestion.py   the ingestion service and Finnhub (key, URLs, rate limits, poll periods)
    simulator.py   the market simulator
    lake.py        the Delta lake's folder, compaction and vacuum
    stream.py      the stream job (Spark)
    sql.py         DuckDB and Trino
    model.py       MLflow, serving, the scorer, the first model
    superset.py    Superset's port, URL and secrets
    chatbot.py     Rasa, the action server, the chat page
    cluster.py     the one-host cluster's nodes and addresses (LAKEWATCH_PROFILE=cluster)
    monitoring.py  Prometheus and Grafana
    runner.py      the stack runner's installs and timeouts

A service's port lives with its service, so a feature of one component touches one module.
`Settings` below composes them into one flat, frozen object (`settings.broker_port`,
`settings.lake_dir`); a derived value may use the fields of another concern, most often
runtime's `host`, `state_dir` and `peer_url()`. tests/unit/test_settings_concerns.py fails if
two concerns declare the same name or a concern is left out of `Settings`.

This module is the one place that reads the environment. Each field can be overridden by an
environment variable named LAKEWATCH_<FIELD> (upper case); lists are comma-separated. The
secrets are read from the names their own tools use (OWN_NAMES: FINNHUB_API_KEY,
SUPERSET_SECRET_KEY, SUPERSET_ADMIN_PASSWORD, SUPERSET_DATABASE_URI) and are never printed:
they are fields with repr=False, so `Settings.__repr__` hides them, and lakewatch/logs.py
scrubs them (`secret_values()`) from every log line.

Services are started as subprocesses that inherit the environment, so a test or a user that
sets LAKEWATCH_STATE_DIR or LAKEWATCH_BROKER_PORT changes them for the whole stack at once.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from lakewatch.settings.broker import Broker, Topics
from lakewatch.settings.chatbot import Chatbot
from lakewatch.settings.cluster import Cluster, profile_defaults
from lakewatch.settings.ingestion import Ingestion
from lakewatch.settings.lake import Lake
from lakewatch.settings.model import DETECTORS, Model
from lakewatch.settings.monitoring import Monitoring
from lakewatch.settings.runner import Runner
from lakewatch.settings.runtime import REPO_ROOT, Runtime
from lakewatch.settings.simulator import Simulator
from lakewatch.settings.sql import Sql
from lakewatch.settings.stream import Stream
from lakewatch.settings.superset import Superset
from lakewatch.settings.symbols import ASSET_CLASSES, Symbols

__all__ = ["ASSET_CLASSES", "OWN_NAMES", "REPO_ROOT", "Settings", "Topics", "load", "secret_values"]


# The concerns are listed last-first: a dataclass takes its bases' fields from the last base to
# the first, so `repr` starts with the runtime's fields.
@dataclass(frozen=True)
class Settings(Cluster, Runner, Monitoring, Chatbot, Superset, Model, Sql, Stream, Lake, Simulator, Ingestion, Symbols,
               Broker, Runtime):
    """All settings of lakewatch, one flat frozen object; `load()` makes it from the environment."""


def _parse(raw: str, kind: type | str, name: str):
    kind = str(kind)
    try:
        if "tuple" in kind:
            return tuple(s.strip() for s in raw.split(",") if s.strip())
        if "bool" in kind:
            return {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}[raw.strip().lower()]
        if "Path" in kind:
            return Path(raw).expanduser().resolve()
        if "int" in kind:
            return int(raw)
        if "float" in kind:
            return float(raw)
    except (ValueError, KeyError):
        raise ValueError(f"LAKEWATCH_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


# Fields read from the names their own tools use, not LAKEWATCH_*: the one place they are read.
OWN_NAMES = {"finnhub_api_key": "FINNHUB_API_KEY", "superset_secret_key": "SUPERSET_SECRET_KEY",
             "superset_admin_user": "SUPERSET_ADMIN_USER", "superset_admin_password": "SUPERSET_ADMIN_PASSWORD",
             "superset_database_uri": "SUPERSET_DATABASE_URI"}


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from defaults overridden by LAKEWATCH_* variables (and OWN_NAMES)."""
    env = os.environ if env is None else env
    overrides: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        if f.name == "topics" or f.name in OWN_NAMES:
            continue
        raw = env.get(f"LAKEWATCH_{f.name.upper()}")
        if raw is not None and raw != "":
            overrides[f.name] = _parse(raw, f.type, f.name)
    overrides.update({name: env[variable].strip() for name, variable in OWN_NAMES.items() if env.get(variable, "").strip()})
    settings = Settings(**overrides)
    if settings.profile == "cluster":
        settings = dataclasses.replace(settings, **{name: value for name, value in profile_defaults(settings).items()
                                                    if name not in overrides})
    if settings.sim_market_hours not in ("us", "always"):
        raise ValueError("LAKEWATCH_SIM_MARKET_HOURS must be 'us' or 'always'")
    if settings.sim_realism not in ("clean", "realistic"):
        raise ValueError("LAKEWATCH_SIM_REALISM must be 'clean' or 'realistic'")
    if settings.regime_shift is not None and settings.regime_shift.asset_class not in ASSET_CLASSES:
        raise ValueError(f"LAKEWATCH_SIM_REGIME_SHIFT: unknown asset class {settings.regime_shift.asset_class!r}")
    if settings.model_detector not in DETECTORS:
        raise ValueError(f"LAKEWATCH_MODEL_DETECTOR must be one of {', '.join(DETECTORS)} (the candidates that score "
                         f"a bar from one served row), not {settings.model_detector!r}")
    if settings.sql_engine not in ("trino", "duckdb"):
        raise ValueError("LAKEWATCH_SQL_ENGINE must be 'trino' or 'duckdb'")
    if settings.profile not in ("embedded", "cluster", "distributed"):
        raise ValueError("LAKEWATCH_PROFILE must be 'embedded', 'cluster' or 'distributed'")
    return settings


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret the environment holds, for the logs to redact (lakewatch/logs.py)."""
    loaded = load(env)
    return [value for f in dataclasses.fields(Settings) if not f.repr and (value := getattr(loaded, f.name))]
