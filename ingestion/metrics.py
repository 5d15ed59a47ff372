"""Prometheus metrics of the ingestion service, defined once so every module counts alike."""
from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter(
    "lakewatch_ingest_messages_total",
    "Records produced, by topic and asset class (failed deliveries: lakewatch_ingest_delivery_failed_total).",
    ["topic", "asset_class"],
)
DELIVERY_ERRORS = Counter(
    "lakewatch_ingest_delivery_errors_total",
    "Records the broker did not acknowledge (each is retried).",
    ["topic"],
)
DELIVERY_RETRIES = Counter(
    "lakewatch_ingest_delivery_retries_total", "Records produced again after a delivery error."
)
DELIVERY_FAILED = Counter(
    "lakewatch_ingest_delivery_failed_total",
    "Records given up on after every retry (logged with their content).",
    ["topic"],
)
PRODUCE_QUEUE = Gauge(
    "lakewatch_ingest_producer_queue", "Records waiting in the producer for acknowledgement."
)

API_CALLS = Counter(
    "lakewatch_finnhub_api_calls_total", "Finnhub REST calls, by endpoint and HTTP status.", ["endpoint", "status"]
)
API_LATENCY = Histogram(
    "lakewatch_finnhub_api_latency_seconds",
    "Finnhub REST call latency.",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10),
)
API_ERRORS = Counter(
    "lakewatch_finnhub_api_errors_total",
    "Finnhub REST failures by reason (rate_limited, server_error, timeout, client_error, ...).",
    ["endpoint", "reason"],
)
API_THROTTLE_WAIT = Counter(
    "lakewatch_finnhub_api_throttle_seconds_total", "Time spent waiting on the client-side rate limiter."
)

WS_FRAMES = Counter("lakewatch_finnhub_ws_frames_total", "Websocket frames received, by type.", ["type"])
WS_MALFORMED = Counter(
    "lakewatch_finnhub_ws_malformed_frames_total", "Websocket frames that could not be parsed (logged, skipped)."
)
WS_RECONNECTS = Counter("lakewatch_finnhub_ws_reconnects_total", "Websocket reconnections after a drop.")
WS_CONNECTED = Gauge("lakewatch_finnhub_ws_connected", "1 while the websocket is connected and subscribed.")

SIM_RATE = Gauge("lakewatch_simulator_target_rate", "Configured simulator trade rate (trades/s at mean seasonality).")
SIM_ANOMALIES = Counter(
    "lakewatch_simulator_anomalies_total", "Anomalies injected by the simulator, by kind.", ["kind"]
)
SOURCE = Gauge("lakewatch_ingest_source", "1 for the active data source.", ["source"])
MARKET_OPEN = Gauge("lakewatch_ingest_market_open",
                    "1 while the asset class's market trades (US stock hours, forex Sunday to Friday 17:00 New "
                    "York, crypto always): alerts on missing trades only count open markets.", ["asset_class"])
