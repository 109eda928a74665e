"""A local Binance spot WebSocket market-data server on 127.0.0.1, for ccxt.pro clients.

It speaks Binance's stream protocol: the client sends ``{"method": "SUBSCRIBE", "params":
["btcusdt@ticker"], "id": 1}`` and gets ``{"result": null, "id": 1}``, then events in Binance's own
format (``24hrTicker``, ``24hrMiniTicker``, ``trade``, ``kline``, ``depthUpdate`` diffs that continue
the HTTP stub's depth snapshot when its ``book.depth_update_id`` is set) for the streams it subscribed to.
REST calls (load_markets) go to the HTTP stub (``exchange_stub.ExchangeStub``):

    rest = ExchangeStub().start()
    streams = BinanceStreamStub().start()
    exchange = point_ccxt_pro_at(ccxt.pro.binance({...}), rest.url, streams.url)

The server sends only what it is told to: ``publish_ticker`` / ``publish_trade`` / ``publish_kline``
send one event to every subscriber (with an event time ``latency`` seconds before the server's
clock), ``publish_order`` sends an ``executionReport`` to the user data stream of the WebSocket API
(``userDataStream.subscribe.signature``, what ccxt's ``watch_orders`` uses for spot), ``feed(interval)`` publishes tickers of every subscribed symbol in the background,
``publish_balance`` sends an ``outboundAccountPosition`` there (``watch_balance``),
``publish_account_update`` an ``ACCOUNT_UPDATE`` to futures connections opened with a listenKey
(``?listenKey=`` from the HTTP stub's ``POST /fapi/v1/listenKey``: ``watch_positions``, futures
``watch_balance``), ``freeze(symbol)`` keeps the connection open but stops that symbol's events, and
``drop_connections()`` closes every connection from the server side.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any, Callable

from aiohttp import WSMsgType, web

from .exchange_stub import point_ccxt_at

__all__ = ["BinanceStreamStub", "point_ccxt_pro_at"]

_SYMBOLS = {"BTCUSDT": 65000.0, "ETHUSDT": 3200.0}
USER_DATA = "userData"  # the pseudo-stream of a connection subscribed to the user data stream
FUTURES_USER_DATA = "futuresUserData"  # the pseudo-stream of a futures connection opened with a listenKey


def point_ccxt_pro_at(exchange: Any, rest_url: str, ws_url: str) -> Any:
    """REST to the HTTP stub, every WebSocket URL of the exchange to ``ws_url``."""
    point_ccxt_at(exchange, rest_url)
    ws = exchange.urls["api"].get("ws")
    if isinstance(ws, dict):
        exchange.urls["api"]["ws"] = {key: (ws_url if isinstance(value, str) else
                                            {k: ws_url for k in value} if isinstance(value, dict) else value)
                                      for key, value in ws.items()}
    return exchange


class BinanceStreamStub:
    """The server runs its own event loop in a daemon thread; every method is called from other threads."""

    def __init__(self, clock: Callable[[], float] = time.time, latency: float = 0.0):
        self.clock = clock  # the server's clock for event times (unix s)
        self.latency = latency  # event times are this many seconds before the clock
        self.connections: list[tuple[web.WebSocketResponse, set[str]]] = []
        self.connects = 0
        self.connection_log: list[str] = []  # the path of every connection accepted
        self.listen_keys: list[str] = []  # the listenKey of every futures user-data connection
        self.sent = 0
        self.frozen: set[str] = set()
        self._trade_id = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._feed: asyncio.Task | None = None

    # --- lifecycle ---

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/ws"

    def start(self) -> "BinanceStreamStub":
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self._serve())
            ready.set()
            self._loop.run_forever()

        threading.Thread(target=run, name="binance-ws-stub", daemon=True).start()
        if not ready.wait(30):
            raise RuntimeError("the WebSocket stub did not start within 30 s")
        return self

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop = None

    async def _shutdown(self) -> None:
        if self._feed is not None:
            self._feed.cancel()
        for ws, _ in list(self.connections):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> "BinanceStreamStub":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _call(self, coroutine: Any, timeout: float = 30.0) -> Any:
        assert self._loop is not None, "start() the stub first"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    # --- the protocol ---

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        streams: set[str] = set()
        entry = (ws, streams)
        self.connections.append(entry)
        self.connects += 1
        self.connection_log.append(request.path)
        listen_key = request.query.get("listenKey")
        if listen_key:
            # USDⓈ-M futures user data: the key from POST /fapi/v1/listenKey is in the URL, and the
            # account's events flow without a subscription (the stub checks no key).
            streams.add(FUTURES_USER_DATA)
            self.listen_keys.append(listen_key)
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                request_body = json.loads(message.data)
                method, params = request_body.get("method"), request_body.get("params") or []
                if method == "userDataStream.subscribe.signature":
                    # The WebSocket API's user data stream (orders, balance); the stub checks no signature.
                    streams.add(USER_DATA)
                    await ws.send_str(json.dumps({"id": request_body.get("id"), "status": 200,
                                                  "result": {"subscriptionId": 0}}))
                    continue
                if method == "SUBSCRIBE":
                    streams.update(params)
                elif method == "UNSUBSCRIBE":
                    streams.difference_update(params)
                await ws.send_str(json.dumps({"result": None, "id": request_body.get("id")}))
        finally:
            if entry in self.connections:
                self.connections.remove(entry)
        return ws

    def subscribed(self, stream: str) -> int:
        """How many connections subscribe to a stream starting with ``stream`` (``btcusdt@``,
        ``btcusdt@trade``): ccxt picks ``@ticker`` or ``@miniTicker`` by its own options."""
        return sum(1 for _, streams in list(self.connections) if any(s.startswith(stream) for s in list(streams)))

    async def _send(self, streams: tuple[str, ...], payload: dict[str, Any]) -> int:
        text = json.dumps(payload)
        sent = 0
        for ws, subscribed in list(self.connections):
            if not ws.closed and any(stream in subscribed for stream in streams):
                await ws.send_str(text)
                sent += 1
        self.sent += sent
        return sent

    def _event_ms(self, latency: float | None) -> int:
        return int(round((self.clock() - (self.latency if latency is None else latency)) * 1000))

    def _ticker(self, market_id: str, price: float, event_ms: int, mini: bool) -> dict[str, Any]:
        event = {"e": "24hrMiniTicker" if mini else "24hrTicker", "E": event_ms, "s": market_id,
                 "c": f"{price:.2f}", "o": f"{price - 10:.2f}", "h": f"{price + 100:.2f}", "l": f"{price - 100:.2f}",
                 "v": "1234.5", "q": f"{1234.5 * price:.2f}"}
        if not mini:
            event.update({"p": "10.00", "P": "0.015", "w": f"{price:.2f}", "x": f"{price - 10:.2f}", "Q": "0.01",
                          "b": f"{price - 0.5:.2f}", "B": "1.5", "a": f"{price + 0.5:.2f}", "A": "2.0",
                          "O": event_ms - 86_400_000, "C": event_ms, "F": 1, "L": 1000, "n": 1000})
        return event

    def publish_ticker(self, market_id: str = "BTCUSDT", price: float | None = None,
                       latency: float | None = None) -> int:
        """One ticker event of ``market_id`` to its subscribers (``@ticker`` and ``@miniTicker``);
        returns how many connections got it."""
        return self._call(self._publish_ticker(market_id, price, latency))

    async def _publish_ticker(self, market_id: str, price: float | None, latency: float | None) -> int:
        price = _SYMBOLS.get(market_id, 100.0) if price is None else price
        event_ms = self._event_ms(latency)
        lower = market_id.lower()
        sent = await self._send((f"{lower}@ticker",), self._ticker(market_id, price, event_ms, mini=False))
        sent += await self._send((f"{lower}@miniTicker",), self._ticker(market_id, price, event_ms, mini=True))
        return sent

    def publish_trade(self, market_id: str = "BTCUSDT", price: float | None = None, latency: float | None = None) -> int:
        self._trade_id += 1
        price = _SYMBOLS.get(market_id, 100.0) if price is None else price
        event_ms = self._event_ms(latency)
        payload = {"e": "trade", "E": event_ms, "s": market_id, "t": self._trade_id, "p": f"{price:.2f}",
                   "q": "0.01000000", "T": event_ms, "m": bool(self._trade_id % 2), "M": True}
        return self._call(self._send((f"{market_id.lower()}@trade",), payload))

    def publish_kline(self, market_id: str = "BTCUSDT", interval: str = "1m", price: float | None = None,
                      latency: float | None = None) -> int:
        price = _SYMBOLS.get(market_id, 100.0) if price is None else price
        event_ms = self._event_ms(latency)
        start = event_ms - event_ms % 60_000
        payload = {"e": "kline", "E": event_ms, "s": market_id, "k": {
            "t": start, "T": start + 59_999, "s": market_id, "i": interval, "f": 1, "L": 2, "o": f"{price:.2f}",
            "c": f"{price:.2f}", "h": f"{price + 5:.2f}", "l": f"{price - 5:.2f}", "v": "10.0", "n": 2, "x": False,
            "q": f"{10 * price:.2f}", "V": "5.0", "Q": f"{5 * price:.2f}", "B": "0"}}
        return self._call(self._send((f"{market_id.lower()}@kline_{interval}",), payload))

    def publish_depth(self, market_id: str, first_update_id: int, last_update_id: int,
                      bids: list[tuple[float, float]], asks: list[tuple[float, float]],
                      latency: float | None = None) -> int:
        """A ``depthUpdate`` diff (updates ``first_update_id``..``last_update_id``) to ``@depth`` subscribers."""
        payload = {"e": "depthUpdate", "E": self._event_ms(latency), "s": market_id, "U": first_update_id,
                   "u": last_update_id, "b": [[f"{p:.2f}", f"{q:.8f}"] for p, q in bids],
                   "a": [[f"{p:.2f}", f"{q:.8f}"] for p, q in asks]}
        return self._call(self._send(tuple(f"{market_id.lower()}@depth{suffix}" for suffix in ("", "@100ms")), payload))

    def publish_order(self, order_id: int, market_id: str, side: str, kind: str, amount: float, price: float,
                      filled: float, latency: float | None = None) -> int:
        """An ``executionReport`` of the user data stream: the order with ``filled`` executed so far."""
        event_ms = self._event_ms(latency)
        status = "FILLED" if filled >= amount else "PARTIALLY_FILLED" if filled else "NEW"
        self._trade_id += 1
        event = {"e": "executionReport", "E": event_ms, "s": market_id, "c": f"stub{order_id}", "S": side.upper(),
                 "o": kind.upper(), "f": "GTC", "q": f"{amount:.8f}", "p": f"{price:.8f}", "P": "0.00000000",
                 "F": "0.00000000", "g": -1, "C": "", "x": "TRADE" if filled else "NEW", "X": status, "r": "NONE",
                 "i": order_id, "l": f"{filled:.8f}", "z": f"{filled:.8f}", "L": f"{price:.8f}", "n": "0",
                 "N": None, "T": event_ms, "t": self._trade_id, "I": self._trade_id, "w": not filled, "m": True,
                 "M": False, "O": event_ms, "Z": f"{filled * price:.8f}", "Y": f"{filled * price:.8f}",
                 "Q": "0.00000000", "W": event_ms, "V": "NONE"}
        return self._call(self._send((USER_DATA,), {"subscriptionId": 0, "event": event}))

    def publish_balance(self, balances: dict[str, tuple[float, float]], latency: float | None = None) -> int:
        """An ``outboundAccountPosition`` of the spot user data stream: ``{asset: (free, locked)}``."""
        event_ms = self._event_ms(latency)
        event = {"e": "outboundAccountPosition", "E": event_ms, "u": event_ms,
                 "B": [{"a": asset, "f": f"{free:.8f}", "l": f"{locked:.8f}"} for asset, (free, locked) in balances.items()]}
        return self._call(self._send((USER_DATA,), {"subscriptionId": 0, "event": event}))

    def publish_account_update(self, balances: dict[str, float], positions: list[tuple[str, float, float, float]],
                               reason: str = "ORDER", latency: float | None = None) -> int:
        """An ``ACCOUNT_UPDATE`` of the futures user data stream: wallet balances ``{asset: balance}``
        and positions ``(market_id, amount, entry price, unrealized PnL)``."""
        event_ms = self._event_ms(latency)
        event = {"e": "ACCOUNT_UPDATE", "E": event_ms, "T": event_ms - 1, "a": {
            "m": reason,
            "B": [{"a": asset, "wb": f"{amount:.8f}", "cw": f"{amount:.8f}", "bc": "0"} for asset, amount in balances.items()],
            "P": [{"s": market_id, "pa": f"{amount:.3f}", "ep": f"{entry:.2f}", "cr": "0", "up": f"{pnl:.8f}",
                   "mt": "cross", "iw": "0.00000000", "ps": "BOTH", "ma": "USDT"}
                  for market_id, amount, entry, pnl in positions]}}
        return self._call(self._send((FUTURES_USER_DATA,), event))

    def drop_connections(self) -> int:
        """Close every connection from the server side (as an exchange does on maintenance)."""
        return self._call(self._drop())

    async def _drop(self) -> int:
        dropped = 0
        for ws, _ in list(self.connections):
            await ws.close(code=1001, message=b"going away")
            dropped += 1
        return dropped

    # --- a live feed for the demo ---

    def freeze(self, market_id: str) -> None:
        """Stop ``market_id``'s events; its connections stay open (a stream that freezes silently)."""
        self.frozen.add(market_id)

    def thaw(self, market_id: str) -> None:
        self.frozen.discard(market_id)

    def feed(self, interval: float = 0.2) -> None:
        """Publish a ticker of every subscribed, unfrozen symbol every ``interval`` seconds."""
        async def start() -> None:
            self._feed = asyncio.ensure_future(self._run_feed(interval))

        self._call(start())

    async def _run_feed(self, interval: float) -> None:
        tick = 0
        while True:
            tick += 1
            for market_id, price in _SYMBOLS.items():
                if market_id not in self.frozen:
                    wiggle = ((tick * 7919) % 200 - 100) / 10000.0
                    await self._publish_ticker(market_id, round(price * (1 + wiggle), 2), None)
            await asyncio.sleep(interval)
