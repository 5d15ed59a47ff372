"""The real-data half of the model's evaluation (model/nab.py) and the gate that uses it
(model/train.py's promotion): NAB's rules kept, and a model worse on real data never promoted."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lakewatch import settings as settings_module
from model import nab
from model import train as training

GOOD = {"precision": 0.9, "f1": 0.9}
BETTER = {"precision": 0.9, "f1": 0.95}


def nab_checkout(root):
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "combined_windows.json").write_text("{}")
    (root / "run.py").write_text("")
    return root


def test_a_folder_that_is_not_nab_is_named_with_how_to_get_nab(tmp_path):
    problem = nab.checkout_problem(tmp_path)
    assert problem.startswith(f"{tmp_path} is not a checkout of NAB") and "git clone https://github.com/numenta/NAB" in problem
    assert "no path given" in nab.checkout_problem(None)
    assert nab.checkout_problem(nab_checkout(tmp_path / "NAB")) is None


def test_detector_names_have_no_underscore_because_nab_splits_file_names_there():
    assert nab.detector_name("robust_ensemble") == "robustEnsemble"
    assert nab.detector_name("half_space_trees", "calibrated") == "halfSpaceTreesCalibrated"


def test_the_probationary_part_is_fifteen_percent_and_at_most_750_rows():
    assert nab.probation_rows(4032) == 604
    assert nab.probation_rows(22_695) == 750


def test_a_later_point_changes_no_earlier_bar():
    """No look-ahead: the bars before a point are the same whatever that point is."""
    values = np.random.default_rng(5).normal(50, 3, 1000)
    changed = values.copy()
    changed[800] = 1e6
    probation = nab.probation_rows(len(values))
    before, after = nab.series_bars(values, probation, "s"), nab.series_bars(changed, probation, "s")
    assert before.iloc[:800].equals(after.iloc[:800]) and not before.iloc[800:].equals(after.iloc[800:])


def test_scores_are_squashed_into_the_open_unit_interval_in_the_same_order():
    raw = np.array([-1e9, -3.0, 0.0, 2.0, 1e9])
    squashed = nab.squash(raw)
    assert np.all((squashed >= 0) & (squashed <= 1)) and np.all(np.diff(squashed) > 0)


@pytest.mark.parametrize("candidate_nab, champion_nab, promoted, why", [
    (None, None, True, "real data not compared (the champion has no NAB score)"),
    (10.0, None, True, "real data not compared"),
    (10.0, 10.0, True, "no worse on NAB (10.0 >= 10.0)"),
    (9.9, 10.0, False, "worse on NAB (9.9 < 10.0)"),
    (None, 10.0, False, "this version was not measured there (set LAKEWATCH_NAB_DIR)"),
])
def test_a_better_model_on_the_simulator_is_promoted_only_if_no_worse_on_real_data(candidate_nab, champion_nab,
                                                                                   promoted, why):
    verdict, reason = training.promotion(BETTER, GOOD, candidate_nab, champion_nab)
    assert verdict is promoted and why in reason, reason


def test_a_model_no_better_on_the_simulator_is_not_promoted_however_it_scores_on_real_data():
    verdict, reason = training.promotion(GOOD, GOOD, 90.0, 10.0)
    assert not verdict and reason == "not better than the champion on the held-out bars"


def test_training_stops_at_once_on_a_nab_path_it_cannot_use(tmp_path):
    settings = dataclasses.replace(settings_module.load({}), nab_dir=tmp_path, state_dir=tmp_path / "var")
    with pytest.raises(SystemExit, match=f"LAKEWATCH_NAB_DIR: {tmp_path} is not a checkout of NAB"):
        training.check_nab(settings)
    settings = dataclasses.replace(settings, nab_dir=nab_checkout(tmp_path / "NAB"), venv_home=tmp_path / "venvs")
    with pytest.raises(SystemExit, match=r"NAB's scorer needs its venv.*make train NAB="):
        training.check_nab(settings)
