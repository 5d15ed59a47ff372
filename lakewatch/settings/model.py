"""The anomaly model (model/): the MLflow tracking server and registry, training, the serving
endpoint, the scorer that calls it, the first model a fresh machine trains, and Airflow, which
retrains it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Names in MLflow that training, serving, Airflow's DAGs and the bot share. Components import only
# the kernel, so each has its one source here.
CHAMPION_ALIAS = "champion"  # the registered version serving answers with, and a new one must beat
RETRAIN_EXPERIMENT = "lakewatch-retrain"  # each run of Airflow's retrain DAG records its outcome here
# The candidates (model/detectors.py) a model version can be: those that score a bar from what one
# served row holds, its features (path_knn: and its symbol's recent returns). The matrix profile
# needs each symbol's whole earlier path.
DETECTORS = ("robust_ensemble", "isolation_forest", "half_space_trees", "knn", "path_knn")
DEFAULT_DETECTOR = DETECTORS[0]  # also what a run logged before the choice existed was


def nab_metric(detector: str) -> str:
    """The real-data score training logs for a version's detector, the gate compares, the bot quotes."""
    return f"{detector}.nab.standard"


# The exit code of a DAG step (model/retrain.py, model/drift.py) that Airflow's BashOperator shows as
# skipped, not failed: its skip_on_exit_code default.
SKIPPED = 99


@dataclass(frozen=True)
class Model:
    mlflow_port: int = 5000
    serving_port: int = 5001
    scorer_port: int = 9103  # its metrics and health
    mlflow_url: str = ""  # default: the embedded server at host:mlflow_port
    model_name: str = "lakewatch-anomaly"
    # Training picks the threshold with the best recall at this precision on its own data.
    # Held-out precision lands lower and varies with the history, so this is well above the
    # 0.8 goal: at 0.85 the goal failed in some histories (docs/model.md, bench_model_margin.py).
    model_min_precision: float = 0.92
    # Which candidate training fits, registers and serves (DETECTORS; docs/model.md compares them).
    model_detector: str = DEFAULT_DETECTOR
    # Without labels (live Finnhub data), the share of each asset class's bars the model flags:
    # 0.5 % is about one flagged minute in three hours per symbol (model/unsupervised.py).
    model_target_alert_rate: float = 0.005
    serving_reload_seconds: float = 10.0  # how often serving looks up the champion alias
    bootstrap_hours: float = 48.0  # simulated history `make up` backfills to train the first model (0: never)
    scorer_interval_seconds: float = 1.0  # how often the scorer looks for newly final bars
    scorer_max_bars: int = 50_000  # per cycle, so a backlog is worked off in bounded steps
    # A checkout of the Numenta Anomaly Benchmark. Training then also scores the model on NAB's
    # real series, and the gate compares that score with the champion's (docs/model.md). When
    # it is unset, real data is not measured, and the gate says so.
    nab_dir: Path | None = None
    # Apache Airflow, which retrains on a schedule (airflow/dags/lakewatch_retrain.py).
    airflow_port: int = 8085  # its API server and UI (8080 is Trino's)
    retrain_schedule: str = "@daily"  # a cron expression or preset, as Airflow takes it
    retrain_max_lake_age_seconds: float = 3600.0  # the DAG's first step stops on a staler lake
    retrain_retry_delay_seconds: float = 60.0  # a failed step is retried once, after this
    # lakewatch_drift measures the last whole hour's drift (model/drift.py) at 5 past every hour:
    # by then the scorer has scored the hour's last bars.
    drift_schedule: str = "5 * * * *"
    drift_retrain_cooldown_hours: float = 6.0  # drift triggers no second retrain within this

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow_url or self.peer_url("mlflow", self.mlflow_port)

    @property
    def mlflow_dir(self) -> Path:
        return self.state_dir / "mlflow"

    @property
    def airflow_dir(self) -> Path:  # AIRFLOW_HOME: its SQLite database, config and task logs
        return self.state_dir / "airflow"
