"""Which registered version is the champion: the one lookup training, serving and the first-model
bootstrap all make, each with its own question (beat it, serve it, is there one at all)."""
from __future__ import annotations

import mlflow

from lakewatch.settings.model import CHAMPION_ALIAS


def champion_version(settings) -> str | None:
    """The version the `champion` alias points at, or None before there is one."""
    try:
        client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
        return client.get_model_version_by_alias(settings.model_name, CHAMPION_ALIAS).version
    except mlflow.exceptions.MlflowException:
        return None  # no model registered yet, or no alias
