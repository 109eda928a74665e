"""The names the instrumentation emits: metric names, units, bucket advice and attribute keys.

One place, so the alert rules, dashboards and docs (docs/instrumentation.md,
docs/trading-conventions.md) have a single list to follow. These names are an interface: keep
them stable.
"""

from __future__ import annotations

# --- RED metrics of every wrapped call (the wrapper core), all domains ---
OPERATION_DURATION = "otel_monitoring.operation.duration"  # histogram, s
OPERATION_CALLS = "otel_monitoring.operation.calls"  # counter, {call}
OPERATION_ERRORS = "otel_monitoring.operation.errors"  # counter, {error}

# Metric attributes of the RED metrics (low cardinality only).
DOMAIN = "domain"  # trading | rag | api | custom
COMPONENT = "component"
OPERATION = "operation"
OUTCOME = "outcome"  # success | error
ERROR_TYPE = "error.type"
OUTCOME_SUCCESS = "success"
OUTCOME_ERROR = "error"

# Span attributes every wrapped call carries (the span name says the same in prose).
SPAN_COMPONENT = "otel_monitoring.component"
SPAN_OPERATION = "otel_monitoring.operation"

# Durations from sub-millisecond cache hits to minute-long batch calls.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# --- GenAI (OpenTelemetry semantic conventions, gen_ai.*) ---
GEN_AI_OPERATION_DURATION = "gen_ai.client.operation.duration"  # histogram, s
GEN_AI_TOKEN_USAGE = "gen_ai.client.token.usage"  # histogram, {token}
# The bucket boundaries the GenAI metrics spec recommends.
GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GEN_AI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_REQUEST_TOP_K = "gen_ai.request.top_k"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_DATA_SOURCE_ID = "gen_ai.data_source.id"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"  # input | output
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"  # content capture only
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"  # content capture only
GEN_AI_EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"  # content capture only
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"  # content capture only
# LCEL pipelines have no GenAI convention: ``chain {name}`` spans carry the name here.
CHAIN_NAME = "otel_monitoring.chain.name"
# Retrieval results (no convention yet: our namespace, documented in docs/instrumentation.md).
RETRIEVAL_DOCUMENTS_COUNT = "otel_monitoring.retrieval.documents.count"
RETRIEVAL_TOP_SCORE = "otel_monitoring.retrieval.top_score"
RETRIEVAL_QUERY_TEXT = "otel_monitoring.retrieval.query.text"  # content capture only
DB_COLLECTION_NAME = "db.collection.name"
# Observable gauge, {vector}: vectors per collection (no convention yet; by db.system.name, db.collection.name).
VECTOR_STORE_VECTORS = "otel_monitoring.vector_store.vectors"
DB_SYSTEM_NAME = "db.system.name"
DB_OPERATION_NAME = "db.operation.name"

# --- trading.* (ours: docs/trading-conventions.md) ---
TRADING_MARKET_DATA_AGE = "trading.market_data.age"  # histogram, s
# Market data is fresh within milliseconds on a healthy feed and minutes old on a stalled one.
MARKET_DATA_AGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

TRADING_EXCHANGE = "trading.exchange"
TRADING_OPERATION = "trading.operation"
TRADING_SYMBOL = "trading.symbol"
TRADING_SYMBOLS_COUNT = "trading.symbols.count"
TRADING_MARKET_DATA_TYPE = "trading.market_data.type"  # ticker | order_book
TRADING_ORDER_SIDE = "trading.order.side"
TRADING_ORDER_TYPE = "trading.order.type"
TRADING_ORDER_AMOUNT = "trading.order.amount"
TRADING_ORDER_PRICE = "trading.order.price"
TRADING_ORDER_ID = "trading.order.id"
TRADING_ORDER_STATUS = "trading.order.status"
TRADING_ORDER_FILLED = "trading.order.filled"
TRADING_ORDER_AVERAGE_PRICE = "trading.order.average_price"
TRADING_ORDER_COST = "trading.order.cost"
TRADING_ORDER_FEE = "trading.order.fee"
TRADING_ORDER_FEE_CURRENCY = "trading.order.fee_currency"
TRADING_ORDER_FEE_RATE = "trading.order.fee_rate"
TRADING_RESULT_COUNT = "trading.result.count"
TRADING_TIMEFRAME = "trading.timeframe"
TRADING_ASYNC = "trading.async"

# --- trading.* WebSocket market data (ccxt.pro watch_* methods) ---
TRADING_MARKET_DATA_MESSAGES = "trading.market_data.messages"  # counter, {message}
TRADING_MARKET_DATA_LATENCY = "trading.market_data.latency"  # histogram, s: receipt - exchange timestamp
TRADING_MARKET_DATA_INTERVAL = "trading.market_data.interval"  # histogram, s: between two messages of a stream
TRADING_MARKET_DATA_GAPS = "trading.market_data.gaps"  # counter, {gap}
TRADING_MARKET_DATA_RATE = "trading.market_data.rate"  # gauge, {message}/s over the rate window
TRADING_MARKET_DATA_BELOW_MIN_RATE = "trading.market_data.below_min_rate"  # gauge, 1 when under the stream's minimum
TRADING_WEBSOCKET_CONNECTIONS = "trading.websocket.connections"  # up-down counter, {connection}
TRADING_WEBSOCKET_RECONNECTS = "trading.websocket.reconnects"  # counter, {reconnect}
TRADING_WEBSOCKET_DISCONNECTS = "trading.websocket.disconnects"  # counter, {disconnect}
TRADING_WEBSOCKET_ERRORS = "trading.websocket.errors"  # counter, {error}, by error.type (ccxt error class)
TRADING_MARKET_DATA_CHANNEL = "trading.market_data.channel"  # the watch method: watch_ticker, watch_order_book...
TRADING_WEBSOCKET_REASON = "trading.websocket.reason"  # server_close | the ccxt error class of the drop
TRADING_WEBSOCKET_RECONNECT = "trading.websocket.reconnect"  # span: the connection replaces a dropped one
TRADING_WEBSOCKET_URL = "trading.websocket.url"  # span only
# A healthy feed delivers within tens of milliseconds; the reference alert is a p95 above 100 ms.
MARKET_DATA_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From order-book diffs every 100 ms to quiet markets whose tickers come once a minute.
MARKET_DATA_INTERVAL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# --- trading.* order lifecycle ---
TRADING_ORDERS_PLACED = "trading.orders.placed"  # counter, {order}
TRADING_ORDERS_FILLED = "trading.orders.filled"  # counter, {order}
TRADING_ORDER_PARTIAL_FILLS = "trading.order.partial_fills"  # counter, {fill}
TRADING_ORDER_FILL_TIME = "trading.order.fill_time"  # histogram, s: create_order to filled
TRADING_ORDER_SUCCESS_RATE = "trading.order.success_rate"  # gauge, 1: filled / placed
ORDER_FILL_TIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

# --- trading.* cost per signal ---
TRADING_SIGNAL_COST = "trading.signal.cost"  # counter, USD: cost of the calls and orders in a signal's trace
TRADING_STRATEGY = "trading.strategy"

# --- log analyzer categories, counted by the agent collector's count connector (collector-config/agent.yaml) ---
LOG_CONNECTION_ERRORS = "otel_monitoring.log.connection_errors"
LOG_TIMEOUTS = "otel_monitoring.log.timeouts"
LOG_SLOW_OPERATIONS = "otel_monitoring.log.slow_operations"
