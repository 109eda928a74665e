"""ccxt.pro: the ``watch_*`` methods of every exchange, their ``un_watch_*`` and ``close``, and the
WebSocket connections under them.

A ``watch_*`` call returns the next update of a stream; an application awaits it in a loop, many
times a second. Each returned update is one message for the feed metrics (``feeds.py``); spans
are kept for operations: the first message of a stream (from the subscribing call to the data),
a call that raised, ``un_watch_*`` / ``close``, and every connection opened (a reconnect says so).
ccxt implements ``watch_ticker`` through ``watch_tickers`` and ``watch_order_book`` through
``watch_order_book_for_symbols``: the outermost call of a task is the one that counts.

Connections are ccxt's ``Client`` objects (one per URL and exchange instance): ``open`` connects,
``on_error`` / ``on_close`` see it drop, ``close`` is the application (or ccxt on its behalf)
closing it. A drop is a disconnect; the next connection of the same exchange instance to the same
URL is a reconnect, counted under the drop's reason.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from typing import Any, Callable

import wrapt
from opentelemetry.trace import SpanKind, Status, StatusCode

from .... import names
from ...core import error_type_of, instrumentation_suppressed
from .feeds import ACCOUNT_CHANNELS, Feeds

_logger = logging.getLogger("otel_monitoring.instrumentation")

_IN_WATCH: contextvars.ContextVar[bool] = contextvars.ContextVar("otel_monitoring_ccxt_watch", default=False)
_ORDER_CHANNELS = ("watch_orders", "watch_orders_for_symbols")


def _exchange_id(instance: Any) -> str:
    return str(getattr(instance, "id", None) or type(instance).__name__)


def _symbol_argument(args: tuple, kwargs: dict) -> str | None:
    symbol = args[0] if args else kwargs.get("symbol")
    return symbol if isinstance(symbol, str) else None


def _timestamp(item: Any) -> Any:
    return item.get("timestamp") if isinstance(item, dict) else None


def _without_credentials(url: str, owner: Any) -> str:
    """The connection's URL without the query and without the listenKey of a user data stream
    (``.../ws/<listenKey>``, ``...?listenKey=``): the key gives access to the account's events."""
    base = url.split("?", 1)[0]
    options = getattr(owner, "options", None)
    keys = {value.get("listenKey") for value in options.values()
            if isinstance(value, dict) and isinstance(value.get("listenKey"), str)} if isinstance(options, dict) else set()
    if keys:
        base = "/".join("{listenKey}" if part in keys else part for part in base.split("/"))
    return base


def unwatched_channels(name: str) -> set[str]:
    """The watch methods an ``un_watch_*`` ends: ``un_watch_tickers`` ends watch_ticker(s), ``un_watch_trades``
    watch_trades and watch_trades_for_symbols."""
    base = "watch_" + name[len("un_watch_"):].removesuffix("_for_symbols")
    return {base, base + "_for_symbols", base[:-1] if base.endswith("s") else base + "s"}


def unwatched_symbols(symbols: Any) -> list[str] | None:
    if isinstance(symbols, str):
        return [symbols]
    if isinstance(symbols, (list, tuple)):
        # un_watch_ohlcv_for_symbols takes [[symbol, timeframe], ...]
        return [item[0] if isinstance(item, (list, tuple)) and item else item for item in symbols
                if isinstance(item, str) or (isinstance(item, (list, tuple)) and item and isinstance(item[0], str))]
    return None


def _call_outermost(wrapped: Callable, args: tuple, kwargs: dict) -> Any:
    """Call a watch method with the watch calls it makes itself (watch_ticker -> watch_tickers) left unwrapped."""
    token = _IN_WATCH.set(True)
    try:
        return wrapped(*args, **kwargs)
    finally:
        _IN_WATCH.reset(token)


class ProWrapper:
    """Wraps ccxt.pro exchange classes and ccxt's WebSocket ``Client``; ``restore()`` undoes it."""

    def __init__(self, tracer: Any, feeds: Feeds, on_orders: Callable[[Any, Any], None] | None = None):
        self.tracer = tracer
        self.feeds = feeds
        self.on_orders = on_orders  # the order lifecycle reads order updates
        self._patches: list[tuple[Any, str, Any]] = []
        self._warned: set[str] = set()

    # --- patching ---

    def _patch(self, owner: type, name: str, wrapper: Callable) -> bool:
        original = vars(owner).get(name)
        if (original is None or isinstance(original, wrapt.FunctionWrapper) or not callable(original)
                or getattr(original, "__otel_monitoring__", False)):
            return False
        setattr(owner, name, wrapt.FunctionWrapper(original, wrapper))
        self._patches.append((owner, name, original))
        return True

    def _patch_watch(self, owner: type, name: str) -> bool:
        original = vars(owner).get(name)
        if original is None or isinstance(original, wrapt.FunctionWrapper) or getattr(original, "__otel_monitoring__", False):
            return False
        if not inspect.isfunction(original):
            return self._patch(owner, name, self._watch_wrapper(name))
        # A plain function, not a wrapt proxy: this is the per-message path, and binding and calling
        # through a wrapt wrapper costs ~2.5 us a call, half the budget of a message.
        setattr(owner, name, self._watch_function(original, name))
        self._patches.append((owner, name, original))
        return True

    def wrap_module(self, module: Any) -> int:
        """Every ccxt.pro exchange class (and the ccxt classes of their MROs) defining watch methods."""
        classes: dict[int, type] = {}
        for exchange_id in getattr(module, "exchanges", ()):
            cls = getattr(module, exchange_id, None)
            if isinstance(cls, type):
                for klass in cls.__mro__:
                    if klass.__module__.startswith("ccxt."):
                        classes.setdefault(id(klass), klass)
        wrapped = 0
        for klass in classes.values():
            for name in list(vars(klass)):
                if name.startswith("watch_"):
                    wrapped += self._patch_watch(klass, name)
                elif name.startswith("un_watch") or (name == "close" and klass.__module__.startswith("ccxt.async_support.base")):
                    wrapped += self._patch(klass, name, self._unwatch_wrapper(name))
        from ccxt.async_support.base.ws.client import Client

        wrapped += self._patch(Client, "open", self._open_wrapper)
        wrapped += self._patch(Client, "on_error", self._drop_wrapper("error"))
        wrapped += self._patch(Client, "on_close", self._drop_wrapper("close"))
        wrapped += self._patch(Client, "close", self._close_wrapper)
        return wrapped

    def restore(self) -> None:
        while self._patches:
            owner, name, original = self._patches.pop()
            setattr(owner, name, original)

    def __len__(self) -> int:
        return len(self._patches)

    def _log_once(self, what: str) -> None:
        if what not in self._warned:
            self._warned.add(what)
            _logger.warning("otel-monitoring: recording %s failed; the ccxt call went on", what, exc_info=True)

    # --- watch_* ---

    def _watch_function(self, original: Callable, channel: str) -> Callable:
        watched = self._watched
        clock = self.feeds.clock
        asynchronous = inspect.iscoroutinefunction(original)

        @functools.wraps(original)
        def watch(instance: Any, *args: Any, **kwargs: Any) -> Any:
            if _IN_WATCH.get() or instrumentation_suppressed():
                return original(instance, *args, **kwargs)
            if asynchronous:  # its body, and the watch methods it calls, run inside _watched
                return watched(original(instance, *args, **kwargs), instance, channel, args, kwargs, clock())
            token = _IN_WATCH.set(True)  # a plain method returning another watch method's coroutine
            try:
                awaitable = original(instance, *args, **kwargs)
            finally:
                _IN_WATCH.reset(token)
            return watched(awaitable, instance, channel, args, kwargs, clock())

        watch.__otel_monitoring__ = True  # type: ignore[attr-defined]
        if asynchronous:
            watch._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined] # asyncio.iscoroutinefunction
        return watch

    def _watch_wrapper(self, channel: str) -> Callable:
        feeds = self.feeds

        def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
            if _IN_WATCH.get() or instrumentation_suppressed():
                return wrapped(*args, **kwargs)
            awaitable = _call_outermost(wrapped, args, kwargs)
            return self._watched(awaitable, instance, channel, args, kwargs, feeds.clock())

        return wrapper

    async def _watched(self, awaitable: Any, instance: Any, channel: str, args: tuple, kwargs: dict,
                       started: float) -> Any:
        token = _IN_WATCH.set(True)
        try:
            result = await awaitable
        except Exception as error:
            self._failed(error, instance, channel, args, kwargs, started)
            raise
        finally:
            _IN_WATCH.reset(token)
        try:
            self._received(result, instance, channel, args, kwargs, started)
        except Exception:  # noqa: BLE001 - never into the trading loop
            self._log_once(channel)
        return result

    def _received(self, result: Any, instance: Any, channel: str, args: tuple, kwargs: dict, started: float) -> None:
        feeds = self.feeds
        now = feeds.clock()
        if isinstance(result, dict):  # the common case first: a ticker or order book of a known stream
            stream = feeds.streams.get((id(instance), channel, result.get("symbol")))
            if stream is not None:
                feeds.message(stream, now, result.get("timestamp"))
                return
        exchange = None
        if channel in ACCOUNT_CHANNELS:
            # An account stream is the subscription the application made (its symbol argument, or
            # none): positions or trades of several symbols in one update are one message of it.
            item = result[-1] if isinstance(result, list) and result else result
            items = [(_symbol_argument(args, kwargs), item)]
        elif isinstance(result, dict) and "symbol" not in result:
            # {symbol: ticker} (watch_tickers, bids/asks, mark prices) or {symbol: {timeframe: candles}}
            items = [(symbol, value) for symbol, value in result.items() if isinstance(symbol, str)]
        elif isinstance(result, dict):
            items = [(result.get("symbol") or _symbol_argument(args, kwargs), result)]
        elif isinstance(result, list):
            symbol = _symbol_argument(args, kwargs)
            if symbol is None and result and isinstance(result[-1], dict):
                symbol = result[-1].get("symbol") if all(
                    isinstance(item, dict) and item.get("symbol") == result[-1].get("symbol") for item in result) else None
            last = result[-1] if result else None
            items = [(symbol, last)]
        else:
            items = [(_symbol_argument(args, kwargs), None)]
        for symbol, item in items:
            stream = feeds.streams.get((id(instance), channel, symbol))
            if stream is None:
                exchange = exchange or _exchange_id(instance)
                stream, new = feeds.stream(instance, exchange, channel, symbol)
                if new:
                    self._first_message(stream, started, now)
            feeds.message(stream, now, _timestamp(item))
        if self.on_orders is not None and channel in _ORDER_CHANNELS:
            self.on_orders(instance, result)

    def _first_message(self, stream: Any, started: float, now: float) -> None:
        """The subscription's span: from the subscribing call to its first message."""
        span = self.tracer.start_span(
            f"ccxt.{stream.channel}", kind=SpanKind.CLIENT, start_time=int(started * 1e9),
            attributes={**stream.attributes, names.TRADING_OPERATION: stream.channel, names.TRADING_ASYNC: True})
        span.add_event("first message", timestamp=int(now * 1e9))
        span.end(end_time=int(now * 1e9))

    def _failed(self, error: BaseException, instance: Any, channel: str, args: tuple, kwargs: dict,
                started: float) -> None:
        try:
            exchange = _exchange_id(instance)
            error_type = error_type_of(error)
            attributes = {names.TRADING_EXCHANGE: exchange, names.TRADING_MARKET_DATA_CHANNEL: channel,
                          names.ERROR_TYPE: error_type}
            self.feeds.errors.add(1, attributes)
            symbol = _symbol_argument(args, kwargs)
            span = self.tracer.start_span(
                f"ccxt.{channel}", kind=SpanKind.CLIENT, start_time=int(started * 1e9),
                attributes={**attributes, names.TRADING_OPERATION: channel, names.TRADING_ASYNC: True,
                            **({names.TRADING_SYMBOL: symbol} if symbol else {})})
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"[:256]))
            span.end()
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            self._log_once(channel + " error")

    # --- un_watch_* and close: the streams end, nothing turns STALE for them ---

    def _unwatch_wrapper(self, name: str) -> Callable:
        def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
            if _IN_WATCH.get() or instrumentation_suppressed():
                return wrapped(*args, **kwargs)
            awaitable = _call_outermost(wrapped, args, kwargs)
            return self._unwatched(awaitable, instance, name, args, kwargs)

        return wrapper

    async def _unwatched(self, awaitable: Any, instance: Any, name: str, args: tuple, kwargs: dict) -> Any:
        if name == "close" and not getattr(instance, "clients", None) and not self._has_streams(instance):
            return await awaitable  # a REST-only exchange closing: not a WebSocket operation
        attributes = {names.TRADING_EXCHANGE: _exchange_id(instance), names.TRADING_OPERATION: name,
                      names.TRADING_ASYNC: True}
        symbol = _symbol_argument(args, kwargs) if name != "close" else None
        if symbol:
            attributes[names.TRADING_SYMBOL] = symbol
        with self.tracer.start_as_current_span(f"ccxt.{name}", kind=SpanKind.CLIENT, attributes=attributes):
            token = _IN_WATCH.set(True)
            try:
                result = await awaitable
            finally:
                _IN_WATCH.reset(token)
        try:
            if name == "close":
                self.feeds.end(instance)
            else:
                symbols = args[0] if args else kwargs.get("symbols", kwargs.get("symbol"))
                self.feeds.end(instance, unwatched_channels(name), unwatched_symbols(symbols))
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            self._log_once(name)
        return result

    def _has_streams(self, instance: Any) -> bool:
        return any(key[0] == id(instance) for key in list(self.feeds.streams))

    # --- connections ---

    async def _open_wrapper(self, wrapped: Callable, client: Any, args: tuple, kwargs: dict) -> Any:
        started = self.feeds.clock()
        result = await wrapped(*args, **kwargs)
        try:
            self._opened(client, started)
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            self._log_once("a WebSocket connection")
        return result

    def _owner(self, client: Any) -> Any:
        return getattr(getattr(client, "on_message_callback", None), "__self__", None)

    def _opened(self, client: Any, started: float) -> None:
        owner = self._owner(client)
        exchange = _exchange_id(owner) if owner is not None else "unknown"
        url = str(getattr(client, "url", ""))
        shown_url = _without_credentials(url, owner)
        connected = getattr(client, "connection", None) is not None and not client.closed()
        drops = getattr(owner, "_otel_monitoring_ws_drops", None) if owner is not None else None
        reason = drops.pop(url, None) if isinstance(drops, dict) else None
        attributes = {names.TRADING_EXCHANGE: exchange, names.TRADING_WEBSOCKET_URL: shown_url,
                      names.TRADING_WEBSOCKET_RECONNECT: reason is not None}
        if reason is not None:
            attributes[names.TRADING_WEBSOCKET_REASON] = reason
        span = self.tracer.start_span("ccxt.websocket.connect", kind=SpanKind.CLIENT,
                                      start_time=int(started * 1e9), attributes=attributes)
        if connected:
            client._otel_monitoring_up = True
            self.feeds.connections.add(1, {names.TRADING_EXCHANGE: exchange})
            if reason is not None:
                self.feeds.reconnects.add(1, {names.TRADING_EXCHANGE: exchange, names.TRADING_WEBSOCKET_REASON: reason})
        else:
            error = getattr(client, "error", None)
            if reason is not None and isinstance(drops, dict):
                drops[url] = reason  # still down: the next connection that works is the reconnect
            span.set_status(Status(StatusCode.ERROR, str(error)[:256] if error else "not connected"))
            if error is not None:
                span.set_attribute(names.ERROR_TYPE, error_type_of(error))
        span.end()

    def _down(self, client: Any, reason: str | None) -> None:
        """The connection is gone; ``reason`` None when the application closed it."""
        if not getattr(client, "_otel_monitoring_up", False):
            return
        client._otel_monitoring_up = False
        owner = self._owner(client)
        exchange = _exchange_id(owner) if owner is not None else "unknown"
        self.feeds.connections.add(-1, {names.TRADING_EXCHANGE: exchange})
        if reason is None or getattr(owner, "closed_by_user", False):
            return
        self.feeds.disconnects.add(1, {names.TRADING_EXCHANGE: exchange, names.TRADING_WEBSOCKET_REASON: reason})
        if owner is not None:
            drops = owner.__dict__.setdefault("_otel_monitoring_ws_drops", {})
            drops[str(getattr(client, "url", ""))] = reason

    def _drop_wrapper(self, how: str) -> Callable:
        def wrapper(wrapped: Callable, client: Any, args: tuple, kwargs: dict) -> Any:
            try:
                if how == "error":
                    error = args[0] if args else kwargs.get("error")
                    reason = error_type_of(error) if isinstance(error, BaseException) else "error"
                else:
                    reason = None if getattr(client, "_otel_monitoring_closing", False) else (
                        error_type_of(client.error) if getattr(client, "error", None) else "server_close")
                self._down(client, reason)
            except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
                self._log_once("a WebSocket drop")
            return wrapped(*args, **kwargs)

        return wrapper

    async def _close_wrapper(self, wrapped: Callable, client: Any, args: tuple, kwargs: dict) -> Any:
        try:
            if getattr(client, "error", None) is None:
                client._otel_monitoring_closing = True  # the application (or ccxt for it) closes: no drop
                self._down(client, None)
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            self._log_once("a WebSocket close")
        return await wrapped(*args, **kwargs)
