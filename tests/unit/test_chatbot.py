"""The bot's understanding outside Rasa: periods, symbols and asset classes become values the lake
knows or a clear refusal, the training data covers every configured symbol, and the chat page
refuses bad requests with a reason."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from chatbot import chat_page, evaluate
from chatbot.answers import entities, model_info
from lakewatch import settings as settings_module
from lakewatch.settings import ASSET_CLASSES, REPO_ROOT
from testkit.processes import free_port

CHATBOT = REPO_ROOT / "chatbot"
NOW = datetime(2026, 11, 21, 15, 30, tzinfo=timezone.utc)  # a Saturday
SETTINGS = settings_module.load({})
KNOWN = SETTINGS.symbols
CRAFTED = "AAPL'; DROP TABLE market.anomalies; --"


def nlu_items(path: Path) -> list[dict]:
    return yaml.safe_load(path.read_text())["nlu"]


def entity_data() -> list[dict]:
    return nlu_items(CHATBOT / "data" / "nlu" / "entities.yml")


@pytest.mark.parametrize("phrase, start, end", [
    ("today", datetime(2026, 11, 21, tzinfo=timezone.utc), datetime(2026, 11, 22, tzinfo=timezone.utc)),
    ("yesterday", datetime(2026, 11, 20, tzinfo=timezone.utc), datetime(2026, 11, 21, tzinfo=timezone.utc)),
    ("this week", datetime(2026, 11, 16, tzinfo=timezone.utc), NOW),
    ("this month", datetime(2026, 11, 1, tzinfo=timezone.utc), NOW),
    ("last hour", NOW - timedelta(hours=1), NOW),
    ("past 6 hours", NOW - timedelta(hours=6), NOW),
    ("last 30 mins", NOW - timedelta(minutes=30), NOW),
    ("previous 2 days", NOW - timedelta(days=2), NOW),
    ("past week", NOW - timedelta(days=7), NOW),
    ("since 2026-11-01", datetime(2026, 11, 1, tzinfo=timezone.utc), NOW),
    ("since monday", datetime(2026, 11, 16, tzinfo=timezone.utc), NOW),
    ("since saturday", datetime(2026, 11, 21, tzinfo=timezone.utc), NOW),
    ("since yesterday", datetime(2026, 11, 20, tzinfo=timezone.utc), NOW),
])
def test_period_phrases_become_the_windows_they_name(phrase, start, end):
    window = entities.parse_period(phrase, NOW, "UTC")
    assert (window.start, window.end) == (start, end)


def test_a_period_in_another_day_zone_starts_at_its_midnight():
    window = entities.parse_period("today", NOW, "America/New_York")
    assert window.start == datetime(2026, 11, 21, 5, tzinfo=timezone.utc) and "America/New_York" in window.label


@pytest.mark.parametrize("phrase, reason", [
    ("since 2030-01-01", "in the future"), ("since 2026-13-45", "YYYY-MM-DD"),
    ("last 0 hours", "not a period"), ("next week", "don't understand the period")])
def test_a_period_that_cannot_be_used_is_refused_with_the_reason(phrase, reason):
    with pytest.raises(entities.NotUnderstood, match=reason):
        entities.parse_period(phrase, NOW, "UTC")


def test_every_phrase_the_period_pattern_extracts_can_be_parsed():
    """The regex in the training data and the parser agree: an extracted period never fails."""
    pattern = regex_of("period")
    samples = ["today", "yesterday", "this week", "this month", "last hour", "past day", "previous week",
               "last 3 hours", "past 45 minutes", "last 10 mins", "past 2 hrs", "last 5 days", "past 2 weeks",
               "since 2026-11-01", "since monday", "since sunday", "since yesterday", "last minute",
               "from monday to wednesday", "between 2026-11-02 and 2026-11-04", "from yesterday to today",
               "right now", "last 90 minutes"]
    for sample in samples:
        text = f"how many anomalies {sample} please"
        (match,) = re.findall(pattern, text, flags=re.IGNORECASE)
        assert match == sample
        entities.parse_period(match, NOW, "UTC")
    for text in heldout_periods():
        entities.parse_period(text, NOW, "UTC")


def regex_of(name: str) -> str:
    (pattern,) = [re.sub(r"^- ", "", item["examples"].strip()) for item in entity_data() if item.get("regex") == name]
    return pattern


def heldout_periods(kind: str = "period") -> list[str]:
    text = "\n".join(path.read_text() for path in (CHATBOT / "tests").glob("nlu_*.yml"))
    return re.findall(rf"\[([^\]]+)\]\({kind}\)", text)


def test_every_phrase_the_time_of_day_pattern_extracts_can_be_parsed():
    pattern, today = regex_of("time_range"), entities.parse_period("today", NOW, "UTC")
    samples = ["between 10:00 and 12:00", "from 9am to 11am", "from 9 am to 11:30 am", "between 13:30 and 15:00",
               "at the open", "at the close", "at market open", "at the opening"]
    for sample in samples:
        (match,) = re.findall(pattern, f"how many anomalies {sample} today", flags=re.IGNORECASE)
        assert match == sample
        entities.parse_time_range(match, today, "UTC")
    for text in heldout_periods("time_range"):
        entities.parse_time_range(text, today, "UTC")


@pytest.mark.parametrize("phrase, start, end", [
    ("between 10:00 and 12:00", datetime(2026, 11, 21, 10, tzinfo=timezone.utc),
     datetime(2026, 11, 21, 12, tzinfo=timezone.utc)),
    ("from 9am to 11:30 am", datetime(2026, 11, 21, 9, tzinfo=timezone.utc),
     datetime(2026, 11, 21, 11, 30, tzinfo=timezone.utc)),
    ("from 1pm to 2pm", datetime(2026, 11, 21, 13, tzinfo=timezone.utc), datetime(2026, 11, 21, 14, tzinfo=timezone.utc)),
    # the US market's first half hour, 09:30 New York time: 14:30 UTC in November
    ("at the open", datetime(2026, 11, 21, 14, 30, tzinfo=timezone.utc),
     datetime(2026, 11, 21, 15, tzinfo=timezone.utc)),
])
def test_a_time_of_day_cuts_the_day_to_those_hours(phrase, start, end):
    window = entities.window_of([{"entity": "period", "value": "today"}, {"entity": "time_range", "value": phrase}],
                                NOW, "UTC")
    assert (window.start, window.end) == (start, end) and window.label.startswith("today (2026-11-21 UTC), ")


def test_a_time_of_day_over_several_days_counts_that_stretch_of_each_day():
    window = entities.window_of([{"entity": "period", "value": "this week"},
                                 {"entity": "time_range", "value": "between 10:00 and 12:00"}], NOW, "UTC")
    assert [a.day for a, _ in window.stretches] == [16, 17, 18, 19, 20, 21]
    assert all((b - a) == timedelta(hours=2) for a, b in window.stretches)


@pytest.mark.parametrize("phrase, reason", [("between 12:00 and 10:00", "ends before it begins"),
                                            ("between 25:00 and 26:00", "can't read"),
                                            ("at lunch", "time of day")])
def test_a_time_of_day_that_cannot_be_used_is_refused_with_the_reason(phrase, reason):
    with pytest.raises(entities.NotUnderstood, match=reason):
        entities.parse_time_range(phrase, entities.parse_period("today", NOW, "UTC"), "UTC")


@pytest.mark.parametrize("phrase, first, last", [
    ("from monday to wednesday", "2026-11-16", "2026-11-18"), ("between 2026-11-02 and 2026-11-04", "2026-11-02",
                                                                "2026-11-04"),
    ("from friday to monday", "2026-11-20", "2026-11-23"), ("from yesterday to today", "2026-11-20", "2026-11-21")])
def test_a_range_of_days_runs_from_the_first_midnight_to_the_one_after_the_last_day(phrase, first, last):
    window = entities.parse_period(phrase, NOW, "UTC")
    assert window.start == datetime.fromisoformat(first).replace(tzinfo=timezone.utc)
    assert window.end == datetime.fromisoformat(last).replace(tzinfo=timezone.utc) + timedelta(days=1)


def test_right_now_is_the_last_quarter_of_an_hour():
    window = entities.parse_period("right now", NOW, "UTC")
    assert (window.start, window.end) == (NOW - timedelta(minutes=15), NOW)


@pytest.mark.parametrize("said, symbol", [
    ("BINANCE:BTCUSDT", "BINANCE:BTCUSDT"), ("btcusdt", "BINANCE:BTCUSDT"), ("BTC/USDT", "BINANCE:BTCUSDT"),
    ("EUR/USD", "OANDA:EUR_USD"), ("eur_usd", "OANDA:EUR_USD"), ("aapl", "AAPL")])
def test_spellings_of_a_symbol_map_to_it(said, symbol):
    assert entities.symbols_in([{"entity": "symbol", "value": said}], "", KNOWN).found == [symbol]


def test_sql_typed_as_a_symbol_is_reported_unknown_and_never_used():
    found = entities.symbols_in([{"entity": "symbol", "value": CRAFTED}], f"price of {CRAFTED}", KNOWN)
    assert found.found == [] and found.unknown == [CRAFTED]


def test_a_ticker_nobody_follows_is_named_back_to_the_user():
    assert entities.symbols_in([], "latest price of XYZQ", KNOWN).unknown == ["XYZQ"]
    assert entities.symbols_in([], "any news on dogecoin", KNOWN).unknown == ["dogecoin"]
    assert entities.symbols_in([], "what is the price", KNOWN).unknown == []


def test_a_word_for_anomalies_or_a_question_about_a_class_is_never_taken_for_a_symbol():
    coins = [{"entity": "asset_class", "value": "coins", "start": 19, "end": 24}]
    assert entities.symbols_in(coins, "number of spikes in coins", KNOWN).unknown == []
    assert entities.symbols_in([], "count of outliers today", KNOWN).unknown == []
    assert entities.symbols_in([], "number of flags for XYZQ", KNOWN).unknown == ["XYZQ"]


def test_a_symbol_configured_after_training_is_found_in_the_text():
    assert entities.symbols_in([], "latest price of IBM", (*KNOWN, "IBM")).found == ["IBM"]


@pytest.mark.parametrize("said, asset_class", [("equities", "stocks"), ("fx", "forex"), ("coins", "crypto"),
                                                ("crypto", "crypto")])
def test_asset_class_words_map_to_the_three_classes(said, asset_class):
    assert entities.asset_class_in([{"entity": "asset_class", "value": said}]) == asset_class


def test_an_unknown_asset_class_is_refused_with_the_known_ones():
    with pytest.raises(entities.NotUnderstood, match="stocks, forex, crypto"):
        entities.asset_class_in([{"entity": "asset_class", "value": CRAFTED}])


def test_every_configured_symbol_has_a_lookup_entry_and_its_synonyms_map_to_it():
    items = entity_data()
    lookup = {line.removeprefix("- ").strip().lower() for item in items if item.get("lookup") == "symbol"
              for line in item["examples"].splitlines() if line.strip()}
    synonyms = {item["synonym"]: [line.removeprefix("- ").strip() for line in item["examples"].splitlines()
                                  if line.strip()] for item in items if "synonym" in item}
    for symbol in KNOWN:
        assert symbol.lower() in lookup
    for canonical, words in synonyms.items():
        assert canonical in (*KNOWN, *ASSET_CLASSES, *entities.METRICS, *entities.DIRECTIONS)
        assert all(word.lower() in lookup or canonical not in KNOWN for word in words)
        if canonical in KNOWN:
            assert all(entities.match_symbol(word, KNOWN) in (canonical, None) for word in words)


def test_every_asset_class_word_in_the_training_data_is_understood():
    items = entity_data()
    (lookup,) = [item["examples"] for item in items if item.get("lookup") == "asset_class"]
    for word in (line.removeprefix("- ").strip() for line in lookup.splitlines() if line.strip()):
        assert entities.asset_class_in([{"entity": "asset_class", "value": word}]) in ASSET_CLASSES


def test_heldout_phrasings_are_not_in_the_training_data():
    def texts(path):
        return {text.lower() for _, text in evaluate.phrasings(path)}
    trained = set().union(*(texts(p) for p in evaluate.TRAINING.glob("*.yml")))
    assert evaluate.HELDOUT and all(texts(path) & trained == set() for path in evaluate.HELDOUT)


def test_every_domain_intent_has_training_examples_and_a_rule():
    domain = yaml.safe_load((CHATBOT / "domain.yml").read_text())
    trained = {item["intent"] for p in (CHATBOT / "data" / "nlu").glob("*.yml") for item in nlu_items(p)
               if "intent" in item}
    ruled = {step["intent"] for rule in yaml.safe_load((CHATBOT / "data" / "rules.yml").read_text())["rules"]
             for step in rule["steps"] if "intent" in step}
    assert set(domain["intents"]) == trained and set(domain["intents"]) <= ruled


@pytest.mark.parametrize("body, reason", [
    (b"not json", "must be JSON"), (b"[1]", "JSON object"), (b'{"sender": "a"}', '"message" must be'),
    (b'{"message": "   "}', '"message" must be'), (json.dumps({"message": "x" * 2001}).encode(), "longer than"),
    (b'{"message": "hi", "sender": "../../etc"}', '"sender" must be')])
def test_the_chat_page_refuses_a_bad_message_with_the_reason(body, reason):
    code, reply, _ = chat_page.forward(SETTINGS, body)
    assert code == 400 and reason in json.loads(reply)["error"]


def test_the_chat_page_says_so_when_the_bot_is_not_running():
    settings = settings_module.load({"LAKEWATCH_RASA_PORT": str(free_port())})
    code, reply, _ = chat_page.forward(settings, b'{"message": "hi"}')
    assert code == 502 and "did not answer" in json.loads(reply)["error"]


def test_the_model_answer_says_when_the_model_was_never_measured_on_real_data():
    answer = model_info.real_data({"robust_ensemble.test.recall": 0.95})
    assert "has not been measured on real data" in answer and "LAKEWATCH_NAB_DIR" in answer


def test_the_model_answer_quotes_its_score_on_real_data_beside_the_reference():
    answer = model_info.real_data({model_info.nab_metric("robust_ensemble"): 3.41})
    assert "Numenta Anomaly Benchmark's 58 series, it scores 3.4 " in answer and "random cut forest scores 51.7" in answer


def _retrain_run(outcome: str, summary: str) -> dict:
    return {"info": {"start_time": "1764928800000"},
            "data": {"tags": [{"key": "outcome", "value": outcome}, {"key": "summary", "value": summary}]}}


def test_the_model_answer_reports_a_failed_retrain_with_its_step_and_reason():
    line = model_info.retrain_line(_retrain_run("failed", "the retrain failed at step freshness: the lake is stale"))
    assert line == " The last retrain (2025-12-05 10:00 UTC) FAILED: the retrain failed at step freshness: the lake is stale."


def test_the_model_answer_reports_a_retrain_that_kept_the_champion_and_one_never_run():
    line = model_info.retrain_line(_retrain_run("succeeded", "version 4 not promoted: not better than the champion"))
    assert "succeeded: version 4 not promoted: not better than the champion." in line
    assert "has not retrained it yet" in model_info.retrain_line(None)


def described(monkeypatch, run: dict) -> str:
    """The bot's answer about a champion whose MLflow run is `run` (MLflow's REST answers for such a
    version, as its registry and tracking server give them)."""
    from types import SimpleNamespace

    version = {"version": "7", "run_id": "r", "creation_timestamp": "1764900000000"}
    answers = {"registered-models/alias": {"model_version": version}, "runs/get": {"run": run}}
    q = SimpleNamespace(settings=SimpleNamespace(model_name="lakewatch-anomaly", mlflow_tracking_uri="http://mlflow"))
    monkeypatch.setattr(model_info, "_get", lambda q, path, **params: answers[path])
    monkeypatch.setattr(model_info, "last_retrain", lambda q: None)
    return model_info.describe(q)


def test_a_model_trained_without_labels_is_described_by_its_alert_rates_not_recall(monkeypatch):
    run = {"data": {"params": [{"key": "mode", "value": "unsupervised"}, {"key": "target_alert_rate", "value": "0.005"},
                               {"key": "test_bars", "value": "9000"}, {"key": "train_bars", "value": "21000"},
                               {"key": "features", "value": "ret_z,count_z"}],
                    "metrics": [{"key": "robust_ensemble.test.alert_rate", "value": 0.0061}]}}
    answer = described(monkeypatch, run)
    assert "trained without labels" in answer and "flags 0.50% of its bars" in answer
    assert "on 9,000 held-out bars it flagged 0.61%" in answer and "recall" not in answer


def test_a_knn_champion_is_described_as_knn_with_its_own_scores(monkeypatch):
    run = {"data": {"params": [{"key": "mode", "value": "supervised"}, {"key": "detector", "value": "knn"},
                               {"key": "features", "value": "ret_z,count_z"}],
                    "metrics": [{"key": "knn.test.recall", "value": 0.935}, {"key": "knn.test.precision", "value": 0.934},
                                {"key": "isolation_forest.test.f1", "value": 0.61},
                                {"key": "knn.nab.standard", "value": 1.4}]}}
    answer = described(monkeypatch, run)
    assert "It is a k-nearest-neighbour detector (pyod)" in answer and "z-score ensemble" not in answer
    assert "event recall 0.935, precision 0.934" in answer and "Isolation Forest baseline: F1 0.610" in answer
    assert "it scores 1.4" in answer
