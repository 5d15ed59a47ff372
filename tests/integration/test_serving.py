"""Model serving as a real process against a real MLflow server and registry."""
from __future__ import annotations

import json
import re
import shlex

import mlflow
import pandas as pd
import pytest
import requests

from lakewatch.settings import REPO_ROOT
from model import detectors, ensemble
from model import train as training
from model.features import FEATURES, MODEL_INPUT, build_features
from testkit.processes import private_settings, serving_health, start_mlflow, start_module, stop_process, wait_for

pytestmark = pytest.mark.integration

SCALES = {"stocks": {f: 2.0 for f in FEATURES}, "*": {f: 1.0 for f in FEATURES}}
EXAMPLE = pd.DataFrame([{"asset_class": "stocks", **{f: 0.5 for f in FEATURES}}])[list(MODEL_INPUT)]


def documented_curls() -> list[tuple[str, str]]:
    """(content type, body) of every curl in docs/model.md's serving section."""
    text = (REPO_ROOT / "docs" / "model.md").read_text().split("## Serving over REST", 1)[1]
    calls = []
    for line in text.splitlines():
        if line.startswith("curl ") and "/invocations" in line:
            words = shlex.split(line.replace("$'", "'"))
            content_type = words[words.index("-H") + 1].split(":", 1)[1].strip()
            body = words[words.index("-d") + 1] if "-d" in words else words[words.index("--data-binary") + 1]
            calls.append((content_type, body.replace("\\n", "\n")))
    return calls


@pytest.fixture(scope="module")
def serving(tmp_path_factory):
    state = tmp_path_factory.mktemp("serving")
    with pytest.MonkeyPatch.context() as mp:
        settings = private_settings(mp, state / "var", serving_reload_seconds=0.5)
        tracking = start_mlflow(settings)
        server = None
        try:
            server = start_module(settings, "model.serve")
            wait_for(lambda: health(settings) is not None, 60, "serving to answer /health", every=0.2)
            mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
            yield settings
        finally:
            if server is not None:
                stop_process(server)
            stop_process(tracking)


def url(settings, path: str) -> str:
    return settings.url(settings.serving_port, path)


health = serving_health


def invoke(settings, body, content_type="application/json") -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return requests.post(url(settings, "/invocations"), data=data, headers={"Content-Type": content_type}, timeout=30)


def promote(settings, threshold: float) -> str:
    return make_champion(settings, training.register(settings, ensemble.model_params(SCALES, threshold), EXAMPLE))


def make_champion(settings, version: str) -> str:
    mlflow.MlflowClient().set_registered_model_alias(settings.model_name, "champion", version)
    wait_for(lambda: (health(settings) or {}).get("version") == version, 60, f"serving to load version {version}",
             every=0.2)
    return version


def test_before_any_champion_invocations_answer_503_with_the_reason(serving):
    assert health(serving) == {"status": "ok", "model": serving.model_name, "version": None, "inputs": None}
    response = invoke(serving, {"dataframe_records": EXAMPLE.to_dict("records")})
    assert response.status_code == 503 and "make train" in response.json()["error"]


def test_every_documented_payload_format_gets_scores(serving):
    promote(serving, threshold=2.0)
    calls = documented_curls()
    assert {ct for ct, _ in calls} == {"application/json", "text/csv"} and len(calls) == 5
    for content_type, body in calls:
        response = invoke(serving, body, content_type)
        assert response.status_code == 200, (body, response.text)
        predictions = response.json()["predictions"]
        assert predictions and all(set(p) == {"anomaly_score", "is_anomaly", "top_features"} for p in predictions)
    # the documented example's second row is a crash: flagged, with its reasons
    first = invoke(serving, calls[0][1], calls[0][0]).json()["predictions"]
    assert [p["is_anomaly"] for p in first] == [False, True]
    assert first[1]["top_features"].split(",")[0] == "excursion_z"


@pytest.mark.parametrize("body, content_type, status, reason", [
    ({"dataframe_records": [{"asset_class": "stocks", "ret_z": 1.0}]}, "application/json", 400, "missing inputs"),
    ({"dataframe_records": [{**EXAMPLE.iloc[0].to_dict(), "ret_z": "abc"}]}, "application/json", 400, "ret_z"),
    ({"dataframe_records": [{**EXAMPLE.iloc[0].to_dict(), "asset_class": "bonds"}]}, "application/json", 400,
     "unknown asset_class 'bonds': known asset classes are stocks, forex, crypto"),
    ("asset_class,ret_z,excursion_z,range_z,realised_vol_z,volume_z,count_z,gap_z,gap_minutes\nbonds,0,0,0,0,0,0,0,0",
     "text/csv", 400, "unknown asset_class 'bonds'"),
    ({"dataframe_records": [{**EXAMPLE.iloc[0].to_dict(), "gap_z": None}]}, "application/json", 400, "gap_z"),
    ("not json", "application/json", 400, ""),
    ({"rows": [1, 2]}, "application/json", 400, ""),
    ("asset_class,ret_z\nstocks,1", "text/plain", 415, ""),
])
def test_a_malformed_payload_gets_a_4xx_with_a_reason(serving, body, content_type, status, reason):
    if (health(serving) or {}).get("version") is None:
        promote(serving, threshold=2.0)
    response = invoke(serving, body, content_type)
    assert response.status_code == status, response.text
    assert reason in response.text and response.text.strip()
    if status == 400 and reason:
        assert reason in response.json()["message"]  # a JSON body a client can read the reason from


def test_metrics_count_requests_by_status(serving):
    if (health(serving) or {}).get("version") is None:
        promote(serving, threshold=2.0)
    invoke(serving, "not json")
    metrics = requests.get(url(serving, "/metrics"), timeout=5).text
    assert re.search(r'lakewatch_serving_requests_total\{path="/invocations",status="400"\} [1-9]', metrics)
    assert re.search(r"lakewatch_serving_model_version [1-9]", metrics)


def test_serving_follows_the_champion_alias_after_a_promotion(serving):
    promote(serving, threshold=2.0)
    # 6 / its scale of 2, times its weight (model/ensemble.py's RULES), passes 2 but not 100
    assert 2.0 <= 6.0 / 2 * ensemble.RULES["ret_z"][1] < 100.0
    calm_but_flagged = {"dataframe_records": [{**EXAMPLE.iloc[0].to_dict(), "ret_z": 6.0}]}
    assert invoke(serving, calm_but_flagged).json()["predictions"][0]["is_anomaly"] is True
    promote(serving, threshold=100.0)
    assert invoke(serving, calm_but_flagged).json()["predictions"][0]["is_anomaly"] is False


def test_a_knn_champion_answers_over_rest_with_the_knn_detectors_scores(serving):
    from tests.unit.test_model import synthetic_bars

    features = build_features(synthetic_bars(minutes=300, seed=9))
    fitting, asked = features.iloc[:400], features.iloc[400:].head(50)
    detector = detectors.knn(fitting)
    params = {**ensemble.model_params(SCALES, threshold=float(detector(fitting).max())), "detector": "knn"}
    make_champion(serving, training.register(serving, params, EXAMPLE, detector))
    response = invoke(serving, {"dataframe_split": asked[list(MODEL_INPUT)].to_dict("split")})
    assert response.status_code == 200, response.text
    scores = [p["anomaly_score"] for p in response.json()["predictions"]]
    assert scores == pytest.approx(detector(asked).tolist())


def test_a_path_knn_champion_names_its_inputs_and_scores_csv_rows_that_carry_their_recent_returns(serving):
    from tests.unit.test_model import synthetic_bars

    features = build_features(synthetic_bars(minutes=300, seed=9))
    fitting, asked = features.iloc[:400], features.iloc[400:].head(50)
    detector = detectors.path_knn(fitting)
    params = {**ensemble.model_params(SCALES, threshold=float(detector(fitting).max())),
              **training.detector_params("path_knn")}
    columns = training.model_input(params)
    make_champion(serving, training.register(serving, params, asked[columns].head(5), detector))
    assert health(serving)["inputs"] == columns  # what the scorer sends (model/score.py)
    # as the scorer sends them: CSV, where a symbol's first bars have no earlier returns (empty cells)
    rows = pd.concat([features.groupby("symbol").head(3), asked])
    assert rows[columns].isna().any().any()
    response = invoke(serving, rows[columns].to_csv(index=False), "text/csv")
    assert response.status_code == 200, response.text
    assert [p["anomaly_score"] for p in response.json()["predictions"]] == pytest.approx(detector(rows).tolist())
    # a client that sends the features alone is told what is missing
    response = invoke(serving, {"dataframe_split": asked[list(MODEL_INPUT)].to_dict("split")})
    assert response.status_code == 400 and "symbol" in response.text, response.text
