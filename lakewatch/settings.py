"""Every port, path, URL, topic and symbol list of lakewatch, in one place.

Each field can be overridden by an environment variable named LAKEWATCH_<FIELD> (upper case);
lists are comma-separated. This is the one place that reads the environment. The secrets are
read from the names their own tools use (OWN_NAMES: FINNHUB_API_KEY, SUPERSET_SECRET_KEY,
SUPERSET_ADMIN_PASSWORD, SUPERSET_DATABASE_URI) and are never printed: `Settings.__repr__`
hides them and lakewatch/logs.py scrubs them from every log line.

Services are started as subprocesses that inherit the environment, so a test or a user that
sets LAKEWATCH_STATE_DIR or LAKEWATCH_BROKER_PORT changes them for the whole stack at once.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent

ASSET_CLASSES = ("stocks", "forex", "crypto")


@dataclass(frozen=True)
class Topics:
    trades: str = "market.trades"
    quotes: str = "market.quotes"
    news: str = "market.news"
    fundamentals: str = "market.fundamentals"
    labels: str = "market.labels"

    def partitions(self, trades_partitions: int) -> dict[str, int]:
        """Topic name -> partition count: trades are the only high-volume topic."""
        counts = {name: 1 for name in dataclasses.astuple(self)}
        counts[self.trades] = trades_partitions
        return counts


@dataclass(frozen=True)
class Settings:
    profile: str = "embedded"
    host: str = "127.0.0.1"  # where services listen, and where they find each other unless...
    peers_by_name: bool = False  # ...each service is reached at its own name (compose's DNS)
    state_dir: Path = REPO_ROOT / "var"
    venv_home: Path | None = None  # default <state_dir>/venvs; tests share one across state dirs

    # Broker. `kafka_bootstrap` empty means the embedded broker at host:broker_port.
    broker_port: int = 9092
    kafka_bootstrap: str = ""
    trades_partitions: int = 3

    # Service ports (embedded defaults; docs/architecture.md lists them): metrics ports start at 9101.
    ingestion_port: int = 9101
    stream_port: int = 9102
    scorer_port: int = 9103
    mlflow_port: int = 5000
    serving_port: int = 5001
    rasa_port: int = 5005
    actions_port: int = 5055
    superset_port: int = 8088
    prometheus_port: int = 9090
    trino_port: int = 8080
    grafana_port: int = 3000

    # Symbols: the Finnhub free plan allows 50 per connection.
    stocks: tuple[str, ...] = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA")
    forex: tuple[str, ...] = ("OANDA:EUR_USD", "OANDA:GBP_USD", "OANDA:USD_JPY")
    crypto: tuple[str, ...] = ("BINANCE:BTCUSDT", "BINANCE:ETHUSDT", "BINANCE:SOLUSDT")

    # Finnhub. The key comes from FINNHUB_API_KEY (see load()); repr=False keeps it out of logs.
    finnhub_api_key: str = field(default="", repr=False)
    finnhub_ws_url: str = "wss://ws.finnhub.io"
    finnhub_rest_url: str = "https://finnhub.io/api/v1"
    finnhub_calls_per_minute: int = 60
    finnhub_calls_per_second: int = 30
    quote_poll_seconds: float = 60.0
    news_poll_seconds: float = 300.0
    fundamentals_poll_seconds: float = 3600.0

    # Market simulator (used when no Finnhub key is set).
    sim_seed: int = 7
    # Trades/s over all symbols at mean seasonality with every market open. Live and backfilled
    # history (the first model's, `make backfill`) share it: a model trained on a slower history
    # would flag every live bar until its baseline filled with live ones (docs/model.md).
    sim_rate: float = 20.0
    sim_anomalies_per_hour: float = 1.0  # per symbol
    sim_market_hours: str = "us"  # "us": stocks trade 09:30-16:00 New York, weekdays; "always"
    sim_news_per_hour: float = 6.0  # per stock symbol

    # Stream job (spark/): Kafka -> Delta.
    trigger_seconds: float = 1.0
    max_offsets_per_trigger: int = 200_000  # foreachBatch collects a batch on the driver: bound it
    bar_watermark_seconds: int = 10  # a 1-minute bar is final once event time passed its end by this
    max_trade_age_days: int = 366  # older trade_ts (vs the Kafka timestamp) is rejected as absurd
    max_trade_future_seconds: int = 300  # so is a trade_ts this far ahead of the Kafka timestamp
    maintenance_minutes: float = 10.0  # compaction, vacuum and Delta checkpoints, one table per run
    vacuum_retention_hours: float = 24.0
    spark_driver_memory: str = "2g"
    spark_master: str = "local[2]"  # compose's cluster profile: spark://spark-master:7077
    # Where executors reach the driver (default: host). In compose, host is 0.0.0.0, a bind
    # address only: executors on spark-worker need the stream service's name instead.
    spark_driver_host: str = ""

    # SQL surface (lakewatch/sql/): DuckDB over the lake on the embedded profile, Trino when distributed.
    day_timezone: str = "UTC"  # the zone of "today": SQL sessions run in it
    duckdb_memory_limit: str = "2GB"  # per connection; every reader process has its own
    duckdb_threads: int = 2
    trino_host: str = ""  # default: host
    trino_user: str = "lakewatch"
    trino_catalog: str = "delta"

    # Anomaly model (model/): MLflow tracking server and registry.
    mlflow_url: str = ""  # default: the embedded server at host:mlflow_port
    model_name: str = "lakewatch-anomaly"
    # Training picks the threshold with the best recall at this precision on its own data.
    # Held-out precision lands lower and varies with the history, so this is well above the
    # 0.8 goal: at 0.85 the goal failed in some histories (docs/model.md, bench_model_margin.py).
    model_min_precision: float = 0.92
    serving_reload_seconds: float = 10.0  # how often serving looks up the champion alias
    bootstrap_hours: float = 48.0  # simulated history `make up` backfills to train the first model (0: never)
    scorer_interval_seconds: float = 1.0  # how often the scorer looks for newly final bars
    scorer_max_bars: int = 50_000  # per cycle, so a backlog is worked off in bounded steps

    # Superset's secrets, from the variables Superset's own docs name (OWN_NAMES below); repr=False
    # keeps them out of logs. The embedded profile fills in what is unset (stack/services/superset.py).
    superset_secret_key: str = field(default="", repr=False)
    superset_admin_user: str = "admin"
    superset_admin_password: str = field(default="", repr=False)
    superset_database_uri: str = field(default="", repr=False)  # its metadata DB; default SQLite in the state dir

    # Stack runner.
    auto_install: bool = True  # make up/test install missing Debian packages as root (stack/prerequisites.py)
    start_timeout: float = 60.0
    stop_timeout: float = 15.0

    # The chat page Superset's "Chat with the lakewatch bot" button opens (default: the stack's own).
    chatbot_url: str = ""
    chat_port: int = 5080
    # Where users open Superset, for the bot's links (default: the stack's own).
    superset_url: str = ""
    # Where Rasa calls the custom actions (default: the stack's action server).
    actions_url: str = ""

    topics: Topics = Topics()

    # ---- derived values -------------------------------------------------------------
    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.broker_port}"

    @property
    def uses_finnhub(self) -> bool:
        return bool(self.finnhub_api_key)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.stocks + self.forex + self.crypto

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
    def lake_dir(self) -> Path:
        return self.state_dir / "lake"

    @property
    def checkpoint_dir(self) -> Path:
        return self.state_dir / "checkpoints"

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_url or self.peer_url("mlflow", self.mlflow_port)

    @property
    def mlflow_dir(self) -> Path:
        return self.state_dir / "mlflow"

    @property
    def duckdb_extension_dir(self) -> Path:
        return self.state_dir / "duckdb" / "extensions"

    @property
    def sql_backend(self) -> str:
        return "duckdb" if self.profile == "embedded" else "trino"

    @property
    def trino_url(self) -> str:
        return f"trino://{self.trino_user}@{self.trino_host or self.host}:{self.trino_port}/{self.trino_catalog}/market"

    @property
    def chat_page_url(self) -> str:
        return self.chatbot_url or self.url(self.chat_port, "/")

    @property
    def actions_webhook_url(self) -> str:
        return self.actions_url or self.peer_url("actions", self.actions_port, "/webhook")

    @property
    def superset_page_url(self) -> str:
        return (self.superset_url or self.url(self.superset_port)).rstrip("/")

    @property
    def superset_dir(self) -> Path:
        return self.state_dir / "superset"

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    def peer_url(self, service: str, port: int, path: str = "") -> str:
        """Another service's URL: at `host` on one machine, at the service's name in compose."""
        return f"http://{service if self.peers_by_name else self.host}:{port}{path}"

    def asset_class_of(self, symbol: str) -> str:
        """The asset class of a configured symbol, or a guess from Finnhub's exchange prefix."""
        for asset_class in ASSET_CLASSES:
            if symbol in getattr(self, asset_class):
                return asset_class
        prefix = symbol.split(":", 1)[0].upper() if ":" in symbol else ""
        if prefix in {"OANDA", "FXCM", "FOREX", "FXPRO", "IC MARKETS", "PEPPERSTONE"}:
            return "forex"
        if prefix in {"BINANCE", "COINBASE", "KRAKEN", "BITFINEX", "GEMINI", "BITSTAMP", "HUOBI", "POLONIEX"}:
            return "crypto"
        return "stocks"


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
    if settings.sim_market_hours not in ("us", "always"):
        raise ValueError("LAKEWATCH_SIM_MARKET_HOURS must be 'us' or 'always'")
    if settings.profile not in ("embedded", "distributed"):
        raise ValueError("LAKEWATCH_PROFILE must be 'embedded' or 'distributed'")
    return settings


def secret_values(env: Mapping[str, str] | None = None) -> list[str]:
    """Every secret the environment holds, for the logs to redact (lakewatch/logs.py)."""
    loaded = load(env)
    return [value for f in dataclasses.fields(Settings) if not f.repr and (value := getattr(loaded, f.name))]
