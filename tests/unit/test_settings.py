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
