"""Prometheus metrics. The feed's are served by the feed process (`MARKET_METRICS_PORT`); the
WebSocket fan-out's by the web process at /metrics (django-prometheus)."""

from prometheus_client import Counter, Gauge, Histogram

UPSTREAM_MESSAGES = Counter(
    "marketdata_upstream_messages_total",
    "Messages received from an upstream (WebSocket frames, replayed trades).",
    ["source"],
)
UPSTREAM_REQUESTS = Counter(
    "marketdata_upstream_requests_total",
    "Requests made to an upstream REST API (gap fills, market lists).",
    ["source", "endpoint"],
)
UPSTREAM_RECONNECTS = Counter(
    "marketdata_upstream_reconnects_total", "Upstream reconnections, by reason.", ["source", "reason"]
)
TICKS_PROCESSED = Counter("marketdata_ticks_processed_total", "Ticks accepted by the feed.", ["symbol"])
PUBLISHES = Counter(
    "marketdata_publishes_total", "Coalesced publishes (one channel-layer message per symbol).", ["symbol"]
)
CANDLES_CLOSED = Counter("marketdata_candles_closed_total", "One-minute candles closed live.", ["symbol"])
BROADCAST_LAG = Histogram(
    "marketdata_broadcast_lag_seconds",
    "From a tick reaching the feed to its channel-layer message being sent.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
SIGNAL_ERRORS = Counter(
    "marketdata_signal_receiver_errors_total", "Signal receivers that raised.", ["signal"]
)
TICK_STREAM_FAILURES = Counter(
    "marketdata_tick_stream_failures_total", "Appends to the tick stream that failed (retried later)."
)
SYMBOL_STALE = Gauge(
    "marketdata_symbol_stale", "1 while a symbol is silent beyond its threshold.", ["symbol"]
)
WS_CLIENTS = Gauge("marketdata_ws_clients", "Market WebSocket connections held by this process.", ["kind"])
WS_MESSAGES_SENT = Counter(
    "marketdata_ws_messages_sent_total", "Frames sent to market WebSocket clients.", ["kind"]
)
HUB_FLUSH = Histogram(
    "marketdata_hub_flush_seconds",
    "Time for a web process to write one flush of market frames to all its sockets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
HUB_LAG = Histogram(
    "marketdata_hub_lag_seconds",
    "From a tick reaching the feed to the web process starting to write it to its sockets.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
