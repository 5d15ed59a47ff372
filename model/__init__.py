"""The anomaly model: features from bars_1m, training and evaluation, the MLflow pyfunc, the scorer."""
