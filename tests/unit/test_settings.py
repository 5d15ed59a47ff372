import dataclasses
import re
from pathlib import Path

import pytest

from lakewatch import settings


def test_defaults_follow_the_design_ports():
    s = settings.load({})
    assert (s.broker_port, s.mlflow_port, s.serving_port, s.rasa_port, s.actions_port, s.superset_port,
            s.prometheus_port) == (9092, 5000, 5001, 5005, 5055, 8088, 9090)
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert len(s.stocks) == 5 and len(s.forex) == 3 and len(s.crypto) == 3
    assert s.topics.partitions(s.trades_partitions)["market.trades"] == 3


def test_environment_overrides_every_kind_of_field(tmp_path):
    s = settings.load({"LAKEWATCH_BROKER_PORT": "19092", "LAKEWATCH_SIM_RATE": "12.5",
                       "LAKEWATCH_CRYPTO": "BINANCE:BTCUSDT, COINBASE:ETH-USD", "LAKEWATCH_STATE_DIR": str(tmp_path)})
    assert s.broker_port == 19092 and s.sim_rate == 12.5
    assert s.crypto == ("BINANCE:BTCUSDT", "COINBASE:ETH-USD")
    assert s.state_dir == Path(tmp_path) and s.log_dir == Path(tmp_path) / "log"
    assert s.venv_dir == Path(tmp_path) / "venvs"


def test_external_kafka_replaces_the_embedded_broker_address():
    assert settings.load({"LAKEWATCH_KAFKA_BOOTSTRAP": "kafka:29092"}).bootstrap_servers == "kafka:29092"


def test_bad_value_names_the_variable():
    with pytest.raises(ValueError, match="LAKEWATCH_BROKER_PORT"):
        settings.load({"LAKEWATCH_BROKER_PORT": "ninety"})


def test_api_key_comes_from_finnhub_variable_and_never_shows_in_repr():
    s = settings.load({"FINNHUB_API_KEY": "sekrit-key-123"})
    assert s.uses_finnhub and s.finnhub_api_key == "sekrit-key-123"
    assert "sekrit" not in repr(s)
    assert not settings.load({}).uses_finnhub


@pytest.mark.parametrize("symbol, asset_class", [
    ("AAPL", "stocks"), ("OANDA:EUR_USD", "forex"), ("BINANCE:BTCUSDT", "crypto"),
    ("FXCM:AUD_USD", "forex"), ("COINBASE:BTC-USD", "crypto"), ("IBM", "stocks"),
])
def test_asset_class_of_known_and_unknown_symbols(symbol, asset_class):
    assert settings.load({}).asset_class_of(symbol) == asset_class


def test_services_find_each_other_at_host_or_by_name_in_compose():
    alone, compose = settings.load({}), settings.load({"LAKEWATCH_PEERS_BY_NAME": "true", "LAKEWATCH_HOST": "0.0.0.0"})
    assert alone.peer_url("serving", alone.serving_port, "/invocations") == "http://127.0.0.1:5001/invocations"
    assert compose.peer_url("serving", compose.serving_port, "/invocations") == "http://serving:5001/invocations"
    assert (compose.mlflow_tracking_uri, compose.actions_webhook_url) == ("http://mlflow:5000", "http://actions:5055/webhook")


@pytest.mark.parametrize("raw", ["maybe", "2"])
def test_a_yes_no_setting_refuses_anything_but_yes_or_no(raw):
    with pytest.raises(ValueError, match="LAKEWATCH_PEERS_BY_NAME"):
        settings.load({"LAKEWATCH_PEERS_BY_NAME": raw})


def test_superset_secrets_come_from_their_own_variables_and_never_show_in_repr():
    s = settings.load({"SUPERSET_SECRET_KEY": "k" * 40, "SUPERSET_ADMIN_PASSWORD": "hunter22",
                       "SUPERSET_DATABASE_URI": "postgresql://superset:pw@db/superset",
                       "LAKEWATCH_SUPERSET_ADMIN_PASSWORD": "not this one"})
    assert (s.superset_secret_key, s.superset_admin_password, s.superset_admin_user) == ("k" * 40, "hunter22", "admin")
    assert "k" * 40 not in repr(s) and "hunter22" not in repr(s) and ":pw@" not in repr(s)


def test_only_the_settings_read_the_secrets_from_the_environment():
    """One place reads them, so one place hides them (issue 16: four modules read them)."""
    names = "|".join(settings.OWN_NAMES.values())
    reads = re.compile(rf"(environ(\.get)?\(|environ\[|getenv\()\s*[\"']({names})[\"']")
    readers = [str(p.relative_to(settings.REPO_ROOT)) for p in settings.REPO_ROOT.rglob("*.py")
               if p.relative_to(settings.REPO_ROOT).parts[0] not in ("var", "tests", "benchmarks", ".git")
               and reads.search(p.read_text())]
    assert readers == []


# Every field of Settings before it was split by concern (issue 16). Their LAKEWATCH_ names are
# an interface users and compose files set: none may disappear in a move between concerns.
FIELDS_BEFORE_THE_SPLIT = """
    profile host peers_by_name state_dir venv_home broker_port controller_port broker_metrics_port broker_heap kafka_bootstrap trades_partitions ingestion_port
    stream_port scorer_port mlflow_port serving_port rasa_port actions_port superset_port prometheus_port trino_port
    grafana_port stocks forex crypto finnhub_api_key finnhub_ws_url finnhub_rest_url finnhub_calls_per_minute
    finnhub_calls_per_second quote_poll_seconds news_poll_seconds fundamentals_poll_seconds sim_seed sim_rate
    sim_anomalies_per_hour sim_market_hours sim_news_per_hour trigger_seconds max_offsets_per_trigger
    bar_watermark_seconds max_trade_age_days max_trade_future_seconds maintenance_minutes vacuum_retention_hours
    spark_driver_memory spark_master spark_driver_host day_timezone duckdb_memory_limit duckdb_threads trino_host
    trino_user trino_catalog mlflow_url model_name model_min_precision serving_reload_seconds bootstrap_hours
    scorer_interval_seconds scorer_max_bars superset_secret_key superset_admin_user superset_admin_password
    superset_database_uri auto_install start_timeout stop_timeout chatbot_url chat_port superset_url actions_url topics
""".split()


def test_no_field_of_before_the_split_went_missing():
    assert set(FIELDS_BEFORE_THE_SPLIT) - {f.name for f in dataclasses.fields(settings.Settings)} == set()


def another_value(f: dataclasses.Field, tmp_path: Path) -> tuple[str, object]:
    """A raw environment value for field f that differs from its default, and what it parses to."""
    kind, default = str(f.type), f.default
    valid = {"profile": ("distributed", "distributed"), "sim_market_hours": ("always", "always"),
             "sim_realism": ("realistic", "realistic"),
             "sql_engine": ("duckdb", "duckdb"), "model_detector": ("knn", "knn"),
             "sim_regime_shift": ("crypto@2026-11-30T14:30:00Z,trades=0.5", "crypto@2026-11-30T14:30:00Z,trades=0.5")}
    if f.name in valid:
        return valid[f.name]
    if "tuple" in kind:
        return "X:ONE, X:TWO", ("X:ONE", "X:TWO")
    if "bool" in kind:
        return ("no", False) if default else ("yes", True)
    if "Path" in kind:
        return str(tmp_path / f.name), tmp_path / f.name
    if "int" in kind:
        return str(default + 1), default + 1
    if "float" in kind:
        return str(default + 0.5), default + 0.5
    assert kind == "str", f"{f.name}: a new kind of field ({kind}) needs a parser in load() and a case here"
    return f"{f.name}-value", f"{f.name}-value"


def test_every_field_is_overridden_by_its_own_variable(tmp_path):
    for f in dataclasses.fields(settings.Settings):
        if f.name == "topics":
            continue
        variable = settings.OWN_NAMES.get(f.name, f"LAKEWATCH_{f.name.upper()}")
        raw, parsed = another_value(f, tmp_path)
        assert getattr(settings.load({}), f.name) != parsed, f.name
        assert getattr(settings.load({variable: raw}), f.name) == parsed, f"{variable}={raw!r}"


def test_the_secrets_own_names_win_and_their_lakewatch_names_are_ignored():
    for name, variable in settings.OWN_NAMES.items():
        s = settings.load({f"LAKEWATCH_{name.upper()}": "not-this", variable: " this "})
        assert getattr(s, name) == "this", variable


def test_every_hidden_field_is_a_secret_the_logs_redact():
    hidden = {f.name for f in dataclasses.fields(settings.Settings) if not f.repr}
    assert hidden == {"finnhub_api_key", "superset_secret_key", "superset_admin_password", "superset_database_uri"}
    env = {settings.OWN_NAMES[name]: f"secret-{name}" for name in hidden}
    assert sorted(settings.secret_values(env)) == sorted(env.values())
    assert not any(value in repr(settings.load(env)) for value in env.values())


@pytest.mark.parametrize("variable, message", [("LAKEWATCH_PROFILE", "'embedded', 'cluster' or 'distributed'"),
                                               ("LAKEWATCH_SIM_MARKET_HOURS", "'us' or 'always'"),
                                               ("LAKEWATCH_SIM_REALISM", "'clean' or 'realistic'"),
                                               ("LAKEWATCH_SQL_ENGINE", "'trino' or 'duckdb'")])
def test_a_choice_refuses_anything_else(variable, message):
    with pytest.raises(ValueError, match=f"{variable} must be {message}"):
        settings.load({variable: "sometimes"})


def test_the_repo_root_is_the_repository():
    assert (settings.REPO_ROOT / "pyproject.toml").is_file() and (settings.REPO_ROOT / "lakewatch").is_dir()
    assert settings.load({}).state_dir == settings.REPO_ROOT / "var"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.load({}).broker_port = 1
