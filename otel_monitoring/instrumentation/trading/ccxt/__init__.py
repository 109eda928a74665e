"""ccxt instrumentor: orders, balances and market data of every exchange, sync and ``async_support``.

    from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor
    CcxtInstrumentor().instrument()   # configure() and opentelemetry-instrument do this for you

ccxt implements each API method as an override in every exchange class (``ccxt.binance.fetch_ticker``,
``ccxt.async_support.kraken.fetch_ticker``...), with the rest in the base ``Exchange`` classes, so
wrapping the base class alone would miss nearly everything. The instrumentor wraps, for every
exchange class, every class of its MRO inside ccxt that defines a method of ``METHODS`` itself.
A nested call of the same method (an override calling ``super()``) passes through, so each API
call gives one span. Wrapping waits for ``import ccxt`` / ``import ccxt.async_support``
(post-import hooks): instrumenting costs nothing for a process that never imports them.

Span and metric attributes are the ``trading.*`` namespace of docs/trading-conventions.md.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.trace import SpanKind

from .... import names
from ...core import Finished, Operation, Patcher, Telemetry, settings_from
from .feeds import Feeds
from .orders import OrderLifecycle, _number
from .package import _instruments

__all__ = ["CcxtInstrumentor", "METHODS", "feed_summary_lines"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

SCOPE = "otel_monitoring.instrumentation.ccxt"
MODULES = ("ccxt", "ccxt.async_support")
PRO_MODULE = "ccxt.pro"
_ORDER_UPDATES = ("fetch_order", "fetch_orders", "fetch_open_orders", "fetch_closed_orders", "cancel_order")

ORDER_SIDES = ("buy", "sell")


@dataclass(frozen=True)
class Method:
    """One wrapped ccxt API method: which arguments become attributes and what the result is."""

    arguments: Mapping[str, str]  # parameter name -> span attribute
    result: str  # "order" | "orders" | "list" | "ticker" | "tickers" | "order_book" | "balance" | "markets"
    side_on_metrics: bool = False  # trading.order.side labels the RED metrics (order placement only)


_ORDER_ARGS = {
    "symbol": names.TRADING_SYMBOL, "type": names.TRADING_ORDER_TYPE, "side": names.TRADING_ORDER_SIDE,
    "amount": names.TRADING_ORDER_AMOUNT, "price": names.TRADING_ORDER_PRICE,
}

# The table of wrapped methods: name -> what it is.
METHODS: dict[str, Method] = {
    "create_order": Method(_ORDER_ARGS, "order", side_on_metrics=True),
    "edit_order": Method({"id": names.TRADING_ORDER_ID, **_ORDER_ARGS}, "order", side_on_metrics=True),
    "cancel_order": Method({"id": names.TRADING_ORDER_ID, "symbol": names.TRADING_SYMBOL}, "order"),
    "fetch_order": Method({"id": names.TRADING_ORDER_ID, "symbol": names.TRADING_SYMBOL}, "order"),
    "fetch_orders": Method({"symbol": names.TRADING_SYMBOL}, "list"),
    "fetch_open_orders": Method({"symbol": names.TRADING_SYMBOL}, "list"),
    "fetch_closed_orders": Method({"symbol": names.TRADING_SYMBOL}, "list"),
    "fetch_my_trades": Method({"symbol": names.TRADING_SYMBOL}, "list"),
    "fetch_balance": Method({}, "balance"),
    "fetch_ticker": Method({"symbol": names.TRADING_SYMBOL}, "ticker"),
    "fetch_tickers": Method({}, "tickers"),
    "fetch_order_book": Method({"symbol": names.TRADING_SYMBOL}, "order_book"),
    "fetch_ohlcv": Method({"symbol": names.TRADING_SYMBOL, "timeframe": names.TRADING_TIMEFRAME}, "list"),
    "fetch_trades": Method({"symbol": names.TRADING_SYMBOL}, "list"),
    "load_markets": Method({}, "markets"),
}


# --- reading attributes ---




def _argument_readers(function: Any, arguments: Mapping[str, str]) -> list[tuple[str, int, str]]:
    """(parameter name, position in args without self, attribute) for the parameters present."""
    try:
        parameters = list(inspect.signature(getattr(function, "__func__", function)).parameters)
    except (TypeError, ValueError):
        return []
    positional = parameters[1:]  # drop self
    return [(name, positional.index(name), attribute) for name, attribute in arguments.items() if name in positional]


def _exchange_id(instance: Any) -> str:
    return str(getattr(instance, "id", None) or type(instance).__name__)


def _order_attributes(order: Any) -> dict[str, Any]:
    if not isinstance(order, dict):
        return {}
    attributes: dict[str, Any] = {}
    for key, attribute in (("id", names.TRADING_ORDER_ID), ("status", names.TRADING_ORDER_STATUS),
                           ("symbol", names.TRADING_SYMBOL), ("side", names.TRADING_ORDER_SIDE),
                           ("type", names.TRADING_ORDER_TYPE)):
        value = order.get(key)
        if value is not None:
            attributes[attribute] = str(value)
    for key, attribute in (("amount", names.TRADING_ORDER_AMOUNT), ("price", names.TRADING_ORDER_PRICE),
                           ("filled", names.TRADING_ORDER_FILLED), ("average", names.TRADING_ORDER_AVERAGE_PRICE),
                           ("cost", names.TRADING_ORDER_COST)):
        value = _number(order.get(key))
        if value is not None:
            attributes[attribute] = value
    fee = order.get("fee")
    if not isinstance(fee, dict) or fee.get("cost") is None:
        fees = order.get("fees")
        fee = fees[0] if isinstance(fees, list) and len(fees) == 1 and isinstance(fees[0], dict) else fee
    if isinstance(fee, dict):
        cost = _number(fee.get("cost"))
        if cost is not None:
            attributes[names.TRADING_ORDER_FEE] = cost
        if fee.get("currency"):
            attributes[names.TRADING_ORDER_FEE_CURRENCY] = str(fee["currency"])
        rate = _number(fee.get("rate"))
        if rate is not None:
            attributes[names.TRADING_ORDER_FEE_RATE] = rate
    return attributes


def _age_seconds(data: Any) -> float | None:
    """Now minus the exchange timestamp (ms) of a ticker or order book, or None when it has none."""
    if not isinstance(data, dict):
        return None
    timestamp = _number(data.get("timestamp"))
    if timestamp is None:
        return None
    return max(0.0, time.time() - timestamp / 1000.0)


def _result_attributes(kind: str) -> Callable[[Any, Any, tuple, dict], Mapping[str, Any] | None]:
    def read(result: Any, instance: Any, args: tuple, kwargs: dict) -> Mapping[str, Any] | None:
        if kind == "order":
            return _order_attributes(result)
        if kind in ("list", "tickers", "markets") and hasattr(result, "__len__"):
            return {names.TRADING_RESULT_COUNT: len(result)}
        if kind in ("ticker", "order_book"):
            age = _age_seconds(result)
            return None if age is None else {names.TRADING_MARKET_DATA_AGE: age}
        return None

    return read


def _mark_market_data(result: Any, data_type: str, exchange: str) -> None:
    """Feed the market-data freshness KPI (trading.market_data.staleness / status, the trading meters)."""
    try:
        from ....meters.trading import mark_market_data
    except ImportError:
        return
    items = result.values() if data_type == "tickers" and isinstance(result, dict) else [result]
    for item in items:
        if isinstance(item, dict) and item.get("symbol") and _number(item.get("timestamp")) is not None:
            mark_market_data(str(item["symbol"]), exchange, item["timestamp"])


class _MarketDataAge:
    """Records ``trading.market_data.age`` from ticker(s) and order book results."""

    def __init__(self, telemetry: Telemetry):
        self.histogram = telemetry.meter.create_histogram(
            names.TRADING_MARKET_DATA_AGE, unit="s",
            description="Age of market data when received: now minus the exchange's timestamp.",
            explicit_bucket_boundaries_advisory=list(names.MARKET_DATA_AGE_BUCKETS),
        )
        self._attributes: dict[tuple[str, str], dict[str, str]] = {}

    def hook(self, data_type: str) -> Callable[[Finished], None]:
        def record(finished: Finished) -> None:
            if finished.error_type is not None:
                return
            result = finished.result
            _mark_market_data(result, data_type, _exchange_id(finished.instance))
            if data_type == "tickers":
                ages = [age for age in map(_age_seconds, result.values()) if age is not None] \
                    if isinstance(result, dict) else []
                age = max(ages) if ages else None  # the stalest symbol is what matters
            else:
                age = _age_seconds(result)
            if age is None:
                return
            exchange = _exchange_id(finished.instance)
            key = (exchange, data_type)
            attributes = self._attributes.get(key)
            if attributes is None:
                attributes = self._attributes[key] = {
                    names.TRADING_EXCHANGE: exchange,
                    names.TRADING_MARKET_DATA_TYPE: "ticker" if data_type == "tickers" else data_type,
                }
            self.histogram.record(age, attributes)

        return record


def _order_hook(method_name: str, orders: OrderLifecycle) -> Callable[[Finished], None] | None:
    """create_order starts an order's lifecycle; fetch_order(s) and cancel_order show how it went on."""
    if method_name == "create_order":
        def created(finished: Finished) -> None:
            if finished.error_type is None:
                orders.created(_exchange_id(finished.instance), finished.result, orders.clock() - finished.duration)

        return created
    if method_name in _ORDER_UPDATES:
        def updated(finished: Finished) -> None:
            if finished.error_type is None:
                result = finished.result
                orders.updated(_exchange_id(finished.instance), result if isinstance(result, list) else [result])

        return updated
    return None


def _chain(*hooks: Callable[[Finished], None] | None) -> Callable[[Finished], None] | None:
    present = [hook for hook in hooks if hook is not None]
    if len(present) <= 1:
        return present[0] if present else None

    def run(finished: Finished) -> None:
        for hook in present:
            hook(finished)

    return run


def _operation(method_name: str, method: Method, function: Any, market_data_age: _MarketDataAge,
               asynchronous: bool, orders: OrderLifecycle | None = None) -> Operation:
    readers = _argument_readers(function, method.arguments)

    def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
        attributes: dict[str, Any] = {names.TRADING_EXCHANGE: _exchange_id(instance)}
        for name, position, attribute in readers:
            value = args[position] if position < len(args) else kwargs.get(name)
            if value is None:
                continue
            if attribute in (names.TRADING_ORDER_AMOUNT, names.TRADING_ORDER_PRICE):
                value = _number(value)
                if value is None:
                    continue
            else:
                value = str(value)
            attributes[attribute] = value
        if method.result == "tickers":
            symbols = args[0] if args else kwargs.get("symbols")
            if isinstance(symbols, (list, tuple)):
                attributes[names.TRADING_SYMBOLS_COUNT] = len(symbols)
        return attributes

    side_reader = next(((position, name) for name, position, attribute in readers
                        if attribute == names.TRADING_ORDER_SIDE), None)

    def metric_attributes(instance: Any, args: tuple, kwargs: dict) -> tuple:
        exchange = (names.TRADING_EXCHANGE, _exchange_id(instance))
        if not method.side_on_metrics or side_reader is None:
            return (exchange,)
        position, name = side_reader
        side = args[position] if position < len(args) else kwargs.get(name)
        side = side if side in ORDER_SIDES else "other"
        return (exchange, (names.TRADING_ORDER_SIDE, side))

    hook = market_data_age.hook(method.result) if method.result in ("ticker", "tickers", "order_book") else None
    hook = _chain(hook, _order_hook(method_name, orders) if orders is not None else None)
    return Operation(
        domain="trading", component="ccxt", operation=method_name, kind=SpanKind.CLIENT,
        span_attributes={names.TRADING_OPERATION: method_name, names.TRADING_ASYNC: asynchronous},
        call_attributes=call_attributes,
        call_metric_attributes=metric_attributes,
        result_attributes=_result_attributes(method.result),
        on_finish=hook,
        nesting_key=f"ccxt.{method_name}",
    )


def exchange_classes(module: Any) -> list[type]:
    """Every exchange class of ``ccxt`` or ``ccxt.async_support``, and every ccxt class in their MROs."""
    classes: dict[int, type] = {}
    for exchange_id in getattr(module, "exchanges", ()):
        cls = getattr(module, exchange_id, None)
        if not isinstance(cls, type):
            continue
        for klass in cls.__mro__:
            if klass.__module__.startswith("ccxt.") and klass is not object:
                classes.setdefault(id(klass), klass)
    exchange_base = getattr(module, "Exchange", None)
    if isinstance(exchange_base, type):
        for klass in exchange_base.__mro__:
            if klass.__module__.startswith("ccxt."):
                classes.setdefault(id(klass), klass)
    return list(classes.values())


class CcxtInstrumentor(BaseInstrumentor):
    """Spans and RED metrics for ccxt API calls (``trading.*`` attributes), sync and async."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _instrument(self, **kwargs: Any) -> None:
        self._telemetry = Telemetry(SCOPE, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        self._market_data_age = _MarketDataAge(self._telemetry)
        settings = settings_from(kwargs)
        # ``clock`` (unix seconds) is for tests that drive staleness and fill times without sleeping.
        clock = kwargs.get("clock") or time.time
        meter = self._telemetry.meter
        self.orders = OrderLifecycle(meter, clock)
        self.feeds = Feeds(meter, clock, settings.stream_live_seconds, settings.stream_stale_seconds,
                           settings.stream_gap_factor, settings.stream_min_rates,
                           meter_provider=self._telemetry.meter_provider, scope=self._telemetry.scope)
        from ....meters.trading import add_market_data_source

        add_market_data_source(self.feeds.market_data_source)
        from .pro import ProWrapper

        self._pro = ProWrapper(self._telemetry.tracer, self.feeds, self._orders_seen)
        self._patcher = Patcher()
        self._lock = threading.Lock()
        self._active = True
        for module_name in MODULES:
            # Runs now if the module is already imported, else when the application imports it.
            wrapt.register_post_import_hook(self._on_import, module_name)
        wrapt.register_post_import_hook(self._on_pro_import, PRO_MODULE)

    def _orders_seen(self, instance: Any, result: Any) -> None:
        self.orders.updated(_exchange_id(instance), result if isinstance(result, list) else [result])

    def _on_pro_import(self, module: Any) -> None:
        if not getattr(self, "_active", False):
            return
        try:
            with self._lock:
                wrapped = self._pro.wrap_module(module)
            _logger.debug("otel-monitoring: wrapped %d ccxt.pro methods", wrapped)
        except Exception:  # a ccxt version we do not know must not break the application
            _logger.warning("otel-monitoring: instrumenting ccxt.pro failed; WebSocket feeds are not measured",
                            exc_info=True)

    def _on_import(self, module: Any) -> None:
        if not getattr(self, "_active", False):
            return  # uninstrumented since the hook was registered (wrapt hooks cannot be removed)
        try:
            self.wrap_module(module)
        except Exception:  # a ccxt version we do not know must not break the application
            _logger.warning("otel-monitoring: instrumenting %s failed; ccxt calls are not traced",
                            getattr(module, "__name__", module), exc_info=True)

    def wrap_module(self, module: Any) -> int:
        """Wrap every exchange class of ``module``; returns the number of methods wrapped."""
        asynchronous = module.__name__.endswith("async_support")
        wrapped = 0
        with self._lock:
            for klass in exchange_classes(module):
                for method_name, method in METHODS.items():
                    function = vars(klass).get(method_name)
                    if function is None or not callable(getattr(function, "__func__", function)):
                        continue
                    operation = _operation(method_name, method, function, self._market_data_age, asynchronous,
                                           self.orders)
                    wrapped += self._patcher.wrap(klass, method_name, operation, self._telemetry)
        _logger.debug("otel-monitoring: wrapped %d ccxt methods in %s", wrapped, module.__name__)
        return wrapped

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        with self._lock:
            self._patcher.restore()
            self._pro.restore()
        from ....meters.trading import remove_market_data_source

        remove_market_data_source(self.feeds.market_data_source)

    @property
    def wrapped_count(self) -> int:
        patcher = getattr(self, "_patcher", None)
        return len(patcher) if patcher is not None else 0

    @property
    def pro_wrapped_count(self) -> int:
        """ccxt.pro methods (watch_*, un_watch_*, close) and WebSocket client methods wrapped."""
        pro = getattr(self, "_pro", None)
        return len(pro) if pro is not None else 0


def feed_summary_lines() -> list[str]:
    """The WebSocket feeds of this process, for the demo's summary."""
    instrumentor = CcxtInstrumentor()
    feeds = getattr(instrumentor, "feeds", None)
    if feeds is None or not getattr(instrumentor, "_active", False):
        return []
    now = feeds.clock()
    rows = [(stream, now, feeds.state(stream, now), False) for stream in list(feeds.streams.values())]
    rows += [(stream, ended, state, True) for stream, ended, state in list(feeds.ended_streams)]
    rows.sort(key=lambda row: (row[0].exchange, row[0].channel, str(row[0].symbol)))
    from ....meters.trading import current_trading_kpis

    try:  # the symbol's state from its freshest source, as the KPIs show it
        symbols = {key: state for key, (_age, state) in current_trading_kpis().staleness().items()}
    except Exception:  # noqa: BLE001 - a summary line is not worth failing the demo's exit
        symbols = {}
    lines = [f"WebSocket feeds: {len(rows)} streams (each stream's own state; a symbol also polled over REST "
             "can be fresher)"]
    for stream, at, state, ended in rows:
        rate = (stream.count - 1) / (stream.last - stream.first) if stream.last > stream.first else None
        symbol_state = symbols.get((stream.symbol, stream.exchange)) if not ended else None
        lines.append(f"  {stream.exchange} {stream.channel} {stream.symbol or '-'}: {stream.count} messages"
                     + (f", {rate:.1f}/s" if rate is not None else "")
                     + f", {stream.gaps} gaps"
                     + (f", stream {state} {'when it ended' if ended else 'now'} (silent {at - stream.last:.1f} s; "
                        f"STALE after {stream.stale:g} s)" if state else "")
                     + (f"; symbol {symbol_state} from another source" if state and symbol_state
                        and symbol_state != state else ""))
    # Orders that filled, as top's "Order success" reads them (trading.order.success_rate); how much
    # of each order's amount filled is the fill ratio, another measure.
    for exchange, (placed, filled) in sorted(instrumentor.orders.totals().items()):
        if placed:
            lines.append(f"  orders on {exchange}: {filled} of {placed} placed orders filled "
                         f"(order success {filled / placed * 100:.1f} %)")
    return lines
