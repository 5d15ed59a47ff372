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
