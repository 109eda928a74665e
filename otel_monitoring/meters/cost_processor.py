"""A span processor that turns finished spans into costs, whatever instrumentation made them.

- GenAI spans (``gen_ai.usage.*`` tokens and a model): model inference priced per token. When
  nested spans both carry usage (a framework span around the client span), only the innermost
  is priced.
- Trading order spans (``trading.exchange`` with a fill): the exchange's reported fee converted
  to USD, else the fee rate (the span's, else the table's taker rate) times the notional. An
  order seen again (``fetch_order`` after ``create_order``) is charged only the fee not yet
  counted, keyed by exchange and ``trading.order.id``.
- HTTP client spans to a host priced in ``external_apis``: the per-call (or per-route) price.

Cost per root operation: what the spans of one trace cost is summed by trace, and recorded on
``otel_monitoring.cost.per_operation`` when the trace's local root span ends (an API request, a RAG
query, a chain), under the root's ``http.route`` (with its method) or else its span name. Traces
that priced nothing record nothing; the user or tenant goes on it only through the opt-in
``cost_attribute``, read from the root span.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from decimal import Decimal, InvalidOperation
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind

from .cost import CostMeter
from .locks import ForkSafeLock
from .. import names

_logger = logging.getLogger(__name__)

_INPUT_KEYS = (names.GEN_AI_USAGE_INPUT_TOKENS, names.GEN_AI_USAGE_PROMPT_TOKENS)
_OUTPUT_KEYS = (names.GEN_AI_USAGE_OUTPUT_TOKENS, names.GEN_AI_USAGE_COMPLETION_TOKENS)
# A span without any of these costs nothing: one set test keeps the common case at about a microsecond.
_PRICED_KEYS = frozenset((*_INPUT_KEYS, *_OUTPUT_KEYS, names.TRADING_EXCHANGE, names.SERVER_ADDRESS))
_MEMORY = 4096  # span ids and order ids remembered (bounded: a long-running process stays flat)


class _LruMap:
    """The ``size`` most recently put keys and their values; safe to share between threads."""

    def __init__(self, size: int):
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._size = size
        self._lock = ForkSafeLock()

    def put(self, key: Any, value: Any = True) -> Any:
        """Store ``value``; return what the key held before (None if nothing)."""
        with self._lock:
            previous = self._items.get(key)
            self._store(key, value)
            return previous

    def raise_to(self, key: Any, value: Any) -> Any:
        """Keep the larger of the stored value and ``value``; return the one stored before (or None)."""
        with self._lock:
            previous = self._items.get(key)
            self._store(key, value if previous is None else max(previous, value))
            return previous

    def _store(self, key: Any, value: Any) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def add(self, key: Any, amount: Any) -> None:
        """Add ``amount`` to the key's value (a missing key counts as zero)."""
        with self._lock:
            self._store(key, self._items.get(key, 0) + amount)

    def pop(self, key: Any) -> Any:
        with self._lock:
            return self._items.pop(key, None)

    def __contains__(self, key: Any) -> bool:
        return key in self._items


def _first(attributes: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            return value
    return None


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def quote_currency(symbol: str | None) -> str | None:
    """``BTC/USDT`` and ``BTC/USDT:USDT`` -> ``USDT``."""
    if not symbol or "/" not in symbol:
        return None
    return symbol.split("/", 1)[1].split(":", 1)[0].upper()


class CostSpanProcessor(SpanProcessor):
    def __init__(self, cost_meter: CostMeter | None, user_attribute: str | None = None):
        self.cost = cost_meter
        self.user_attribute = user_attribute
        self._priced_children = _LruMap(_MEMORY)  # parent span ids whose subtree was priced
        self._order_fees = _LruMap(_MEMORY)  # (exchange, order id) -> USD fee counted so far
        self._trace_costs = _LruMap(_MEMORY)  # trace id -> USD priced so far under its root operation
        self._failed_once = False

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.cost is None:
            return
        # An SDK span's own attributes: its ``attributes`` property wraps them in a new read-only view
        # per read, iterated through the Mapping ABC; their plain dict is several times faster
        attributes = getattr(span, "_attributes", None)
        if attributes is None:
            attributes = span.attributes
        try:
            amount = None
            if attributes and not _PRICED_KEYS.isdisjoint(getattr(attributes, "_dict", attributes)):
                if _first(attributes, _INPUT_KEYS) is not None or _first(attributes, _OUTPUT_KEYS) is not None:
                    amount = self._genai(span, attributes)
                elif names.TRADING_EXCHANGE in attributes:
                    amount = self._trading(attributes)
                elif span.kind is SpanKind.CLIENT and names.SERVER_ADDRESS in attributes and self.cost.prices.external_apis:
                    amount = self._api_call(attributes)
            if span.context is None:
                return
            trace_id = span.context.trace_id
            if amount is not None:
                self._trace_costs.add(trace_id, amount)
                if amount:
                    from .trading import record_cost_in_trace

                    record_cost_in_trace(trace_id, amount)  # the cost of its trace's trading signal
            parent = span.parent
            if (parent is None or parent.is_remote) and trace_id in self._trace_costs:
                self._root_ended(span, trace_id, attributes or {})
        except Exception:  # pricing must never disturb the span pipeline
            if not self._failed_once:
                self._failed_once = True
                _logger.warning("otel-monitoring: could not price span %r", span.name, exc_info=True)

    def _root_ended(self, span: ReadableSpan, trace_id: int, attributes: Any) -> None:
        total = self._trace_costs.pop(trace_id)
        if total is None:
            return
        route = attributes.get(names.HTTP_ROUTE)
        if route:
            method = attributes.get(names.HTTP_REQUEST_METHOD) or attributes.get(names.HTTP_METHOD)
            operation = f"{method} {route}" if method else str(route)
        else:
            operation = span.name
        self.cost.record_operation(total, operation, user=self._user(attributes))

    def _user(self, attributes: Any) -> Any:
        return attributes.get(self.user_attribute) if self.user_attribute else None

    def _genai(self, span: ReadableSpan, attributes: Any) -> Decimal | None:
        span_id = span.context.span_id if span.context else None
        parent_id = span.parent.span_id if span.parent else None
        if span_id is not None and span_id in self._priced_children:
            # An inner span already priced this call; pass the mark up for wrappers further out.
            if parent_id is not None:
                self._priced_children.put(parent_id)
            return None
        model = attributes.get(names.GEN_AI_RESPONSE_MODEL) or attributes.get(names.GEN_AI_REQUEST_MODEL)
        if not model:
            self.cost.unpriced("model_inference", "missing_model", span.name)
            return None
        amount = self.cost.record_llm(
            str(model),
            input_tokens=int(_first(attributes, _INPUT_KEYS) or 0),
            output_tokens=int(_first(attributes, _OUTPUT_KEYS) or 0),
            cached_input_tokens=int(attributes.get(names.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS) or 0),
            cache_write_tokens=int(attributes.get(names.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS) or 0),
            operation=attributes.get(names.GEN_AI_OPERATION_NAME),
            provider=attributes.get(names.GEN_AI_PROVIDER_NAME) or attributes.get(names.GEN_AI_SYSTEM),
            user=self._user(attributes),
        )
        if parent_id is not None:
            self._priced_children.put(parent_id)
        return amount

    def _trading(self, attributes: Any) -> Decimal | None:
        exchange = str(attributes[names.TRADING_EXCHANGE]).lower()
        symbol = attributes.get(names.TRADING_SYMBOL)
        filled = _decimal(attributes.get(names.TRADING_ORDER_FILLED))
        reported = _decimal(attributes.get(names.TRADING_ORDER_FEE))
        if reported is None and not filled:
            return None  # not a fill (a quote, an order book, an unfilled order): nothing was spent
        fee = self._fee_usd(exchange, symbol, attributes, reported, filled)
        if fee is None:
            return None
        order_id = attributes.get(names.TRADING_ORDER_ID)
        if order_id is not None:
            # Atomic, so create_order and fetch_order ending at once in two threads count the fee once.
            counted = self._order_fees.raise_to((exchange, str(order_id)), fee) or Decimal(0)
            fee -= counted
            if fee <= 0:
                return None
        self.cost.record(fee, "execution", attributes={names.TRADING_EXCHANGE: exchange}, user=self._user(attributes))
        return fee

    def _fee_usd(self, exchange: str, symbol: Any, attributes: Any, reported: Decimal | None,
                 filled: Decimal | None) -> Decimal | None:
        quote = quote_currency(symbol)
        if reported is not None:
            currency = str(attributes.get(names.TRADING_ORDER_FEE_CURRENCY) or quote or "").upper()
            usd = self.cost.to_usd(reported, currency)
            if usd is None and currency and symbol and currency == str(symbol).split("/", 1)[0].upper():
                # Fee charged in the base asset: worth fee x fill price in the quote currency.
                price = _decimal(attributes.get(names.TRADING_ORDER_AVERAGE_PRICE) or attributes.get(names.TRADING_ORDER_PRICE))
                usd = self.cost.to_usd(reported * price, quote) if price is not None else None
            if usd is None:
                self.cost.unpriced("execution", "unknown_currency", currency or "?", {names.TRADING_EXCHANGE: exchange})
            return usd
        notional = _decimal(attributes.get(names.TRADING_ORDER_COST))
        if notional is None:
            price = _decimal(attributes.get(names.TRADING_ORDER_AVERAGE_PRICE) or attributes.get(names.TRADING_ORDER_PRICE))
            notional = filled * price if filled is not None and price is not None else None
        rate = _decimal(attributes.get(names.TRADING_ORDER_FEE_RATE))
        if rate is None:
            rates = self.cost.prices.exchanges.get(exchange)
            if rates is None:
                self.cost.unpriced("execution", "unknown_exchange", exchange, {names.TRADING_EXCHANGE: exchange})
                return None
            rate = rates.get("taker", rates.get("maker"))
        if notional is None:
            self.cost.unpriced("execution", "missing_notional", exchange, {names.TRADING_EXCHANGE: exchange})
            return None
        usd = self.cost.to_usd(notional * rate, quote)
        if usd is None:
            self.cost.unpriced("execution", "unknown_currency", quote or "?", {names.TRADING_EXCHANGE: exchange})
        return usd

    def _api_call(self, attributes: Any) -> Decimal | None:
        if names.HTTP_REQUEST_METHOD not in attributes and names.HTTP_METHOD not in attributes:
            return None
        path = attributes.get(names.HTTP_ROUTE) or attributes.get(names.URL_PATH)
        return self.cost.record_api_call(str(attributes[names.SERVER_ADDRESS]), str(path) if path else None,
                                  user=self._user(attributes))

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
