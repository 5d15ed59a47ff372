"""What the served model refuses (model/pyfunc.py): serving turns these errors into 400s."""
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from lakewatch.settings import ASSET_CLASSES
from model import ensemble, pyfunc
from model.features import FEATURES

PARAMS = {"rules": ensemble.RULES, "threshold": 2.0,
          "scales": {"stocks": {f: 2.0 for f in FEATURES}, "*": {f: 1.0 for f in FEATURES}}}


def row(**overrides) -> dict:
    return {"asset_class": "stocks", **{f: 0.0 for f in FEATURES}, **overrides}


def test_the_pyfunc_knows_the_asset_classes_lakewatch_trades():
    assert pyfunc.ASSET_CLASSES == ASSET_CLASSES  # a copy, because the pyfunc imports nothing of lakewatch


@pytest.mark.parametrize("asset_class", ["bonds", "", None, "Stocks"])
def test_an_unknown_asset_class_is_refused_naming_it_and_the_known_ones(asset_class):
    with pytest.raises(MlflowException) as error:
        pyfunc.Scorer(PARAMS).predict(pd.DataFrame([row(), row(asset_class=asset_class)]))
    assert error.value.get_http_status_code() == 400
    assert error.value.message == (f"unknown asset_class {str(asset_class)!r}: known asset classes are "
                                   "stocks, forex, crypto")


def test_a_known_class_without_scales_of_its_own_scores_on_the_shared_ones():
    out = pyfunc.Scorer(PARAMS).predict(pd.DataFrame([row(asset_class="crypto", ret_z=3.0)]))
    assert out["anomaly_score"].tolist() == [3.0 * ensemble.RULES["ret_z"][1]]  # 3 / 1, the "*" scales, times its weight


@pytest.mark.parametrize("value", [float("nan"), None, np.inf])
def test_a_missing_or_infinite_feature_is_refused_naming_the_feature(value):
    with pytest.raises(MlflowException, match=r"finite numbers .*: gap_z$"):
        pyfunc.Scorer(PARAMS).predict(pd.DataFrame([row(), row(gap_z=value)]))


# A version whose detector takes more than the features (path_knn: the symbol and its recent
# returns): the detector is handed them as sent, numbers as floats.
INPUTS = {"symbol": "text", "ret_pct": "number", "ret_pct_1": "number"}


def seen_by_detector(frame: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    seen = []

    def detector(bars: pd.DataFrame) -> np.ndarray:
        seen.append(bars)
        return np.full(len(bars), 5.0)

    out = pyfunc.Scorer({**PARAMS, "inputs": INPUTS}, detector).predict(frame)
    return out, seen


def test_a_detectors_other_inputs_reach_it_with_the_features_and_a_missing_earlier_return_is_nan():
    out, seen = seen_by_detector(pd.DataFrame([row(symbol="AAPL", ret_pct=0.1, ret_pct_1=None),
                                               row(symbol="MSFT", ret_pct="0.2", ret_pct_1=-0.3)]))
    bars = seen[0]
    assert list(bars.columns) == [*FEATURES, *INPUTS]
    assert bars["symbol"].tolist() == ["AAPL", "MSFT"] and bars["ret_pct"].tolist() == [0.1, 0.2]
    assert np.isnan(bars["ret_pct_1"].iat[0]) and bars["ret_pct_1"].iat[1] == -0.3
    assert out["anomaly_score"].tolist() == [5.0, 5.0] and out["is_anomaly"].all()


def test_a_version_whose_detector_takes_recent_returns_refuses_a_row_without_them_naming_them():
    with pytest.raises(MlflowException, match=r"^missing columns: symbol, ret_pct_1$") as error:
        seen_by_detector(pd.DataFrame([row(ret_pct=0.1)]))
    assert error.value.get_http_status_code() == 400


@pytest.mark.parametrize("value, reason", [("up", r"ret_pct, ret_pct_1 must be numbers"),
                                           (np.inf, r"must be finite numbers or missing: ret_pct_1$")])
def test_a_recent_return_that_is_text_or_infinite_is_refused(value, reason):
    with pytest.raises(MlflowException, match=reason):
        seen_by_detector(pd.DataFrame([row(symbol="AAPL", ret_pct=0.1, ret_pct_1=value)]))


def test_a_row_without_its_symbol_is_refused_not_scored_as_a_typical_symbol():
    with pytest.raises(MlflowException, match=r"^must not be missing: symbol$") as error:
        seen_by_detector(pd.DataFrame([row(symbol="AAPL", ret_pct=0.1, ret_pct_1=0.0),
                                       row(symbol=None, ret_pct=0.1, ret_pct_1=0.0)]))
    assert error.value.get_http_status_code() == 400
