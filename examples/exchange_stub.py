"""A local crypto exchange on 127.0.0.1 that speaks the Binance spot and Kraken REST wire formats.

Real ccxt clients talk to it over real HTTP once their ``urls['api']`` point here
(``point_ccxt_at(exchange, stub.url)``), so the demo and the tests exercise ccxt's own request
signing, parsing and error mapping without reaching a real exchange. It keeps a small order
book: market orders fill at once (with a fee), limit orders rest until cancelled. Balances are
finite: an order larger than the balance gets the exchange's own "insufficient funds" error, and
``fail_next(n)`` makes the next n requests answer with the exchange's rate-limit error.

    stub = ExchangeStub().start()
    exchange = ccxt.binance({"apiKey": "k", "secret": "s"})
    point_ccxt_at(exchange, stub.url)
    ...
    stub.stop()
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from typing import Any

from .stub_server import JsonHandler, StubServer

__all__ = ["ExchangeStub", "point_ccxt_at"]

FEE_RATE = 0.001


def point_ccxt_at(exchange: Any, base_url: str) -> Any:
    """Send every API of a ccxt exchange to ``base_url``, keeping each URL's path."""

    def rebase(url: Any) -> Any:
        if isinstance(url, dict):
            return {key: rebase(value) for key, value in url.items()}
        if isinstance(url, str) and url.startswith("http"):
            parsed = urllib.parse.urlsplit(url.replace("{hostname}", "localhost"))
            return base_url.rstrip("/") + parsed.path
        return url

    exchange.urls["api"] = rebase(exchange.urls["api"])
    return exchange


class _Book:
    """Prices, balances and orders shared by both wire formats (one account per stub)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prices = {"BTC": 65000.0, "ETH": 3200.0}
        self.balances = {"USDT": 100000.0, "USD": 100000.0, "BTC": 2.0, "ETH": 20.0}
        self.orders: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1000)
        self.tick = 0
        # The order book's update id in depth snapshots (None: the time in ms), so a WebSocket
        # stream's diffs can continue a snapshot as Binance's do.
        self.depth_update_id: int | None = None
        # Listen keys handed out for user data streams (POST /fapi/v1/listenKey, /api/v3/userDataStream):
        # the WebSocket stub accepts a private connection for any key, the tests read which were issued.
        self.listen_keys: list[str] = []
        # USDⓈ-M perpetuals in /fapi/v1/exchangeInfo: off by default, because their market ids equal the
        # spot ones and ccxt.pro tells a spot stream by Binance's host name (stream.binance.com), which
        # the local WebSocket stub does not have.
        self.futures = False
        self.positions: list[dict[str, Any]] = []  # USDⓈ-M futures positions, in /fapi/v3/positionRisk's format

    def price(self, base: str) -> float:
        with self.lock:
            self.tick += 1
            # A slow deterministic wiggle so tickers move.
            wiggle = ((self.tick * 7919) % 200 - 100) / 10000.0
            return round(self.prices.get(base, 100.0) * (1 + wiggle), 2)

    def place(self, base: str, quote: str, side: str, kind: str, amount: float, price: float | None) -> dict[str, Any] | None:
        """The order, or None when the balance does not cover it."""
        fill_price = self.price(base) if kind == "market" or price is None else price
        with self.lock:
            if side == "buy" and self.balances.get(quote, 0.0) < amount * fill_price:
                return None
            if side == "sell" and self.balances.get(base, 0.0) < amount:
                return None
            order_id = str(next(self.ids))
            filled = amount if kind == "market" else 0.0
            cost = filled * fill_price
            if filled:
                sign = 1 if side == "buy" else -1
                self.balances[base] = self.balances.get(base, 0.0) + sign * filled
                self.balances[quote] = self.balances.get(quote, 0.0) - sign * cost
            order = {
                "id": order_id, "base": base, "quote": quote, "side": side, "type": kind, "amount": amount,
                "price": fill_price, "filled": filled, "cost": cost, "fee": cost * FEE_RATE,
                "status": "closed" if filled else "open", "time": int(time.time() * 1000),
            }
            self.orders[order_id] = order
            return dict(order)

    def fill(self, order_id: str, amount: float) -> dict[str, Any]:
        """Fill ``amount`` more of a resting limit order at its price (a counterparty traded against it)."""
        with self.lock:
            order = self.orders[order_id]
            amount = min(amount, order["amount"] - order["filled"])
            order["filled"] += amount
            order["cost"] = order["filled"] * order["price"]
            order["fee"] = order["cost"] * FEE_RATE
            sign = 1 if order["side"] == "buy" else -1
            self.balances[order["base"]] = self.balances.get(order["base"], 0.0) + sign * amount
            self.balances[order["quote"]] = self.balances.get(order["quote"], 0.0) - sign * amount * order["price"]
            if order["filled"] >= order["amount"] - 1e-12:
                order["status"] = "closed"
            return dict(order)

    def cancel(self, order_id: str) -> dict[str, Any] | None:
        with self.lock:
            order = self.orders.get(order_id)
            if order is None or order["status"] != "open":
                return None
            order["status"] = "canceled"
            return dict(order)


class _Handler(JsonHandler):
    server: Any

    def _params(self) -> dict[str, str]:
        parsed = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(parsed.query))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            body = self.rfile.read(length).decode()
            if body.startswith("{"):
                params.update({k: str(v) for k, v in json.loads(body).items()})
            else:
                params.update(dict(urllib.parse.parse_qsl(body)))
        return params

    def _handle(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        params = self._params()
        stub = self.server.stub
        stub.requests.append((method, path))
        if path.startswith("/0/"):
            status, payload = _kraken(stub, method, path, params)
        else:
            status, payload = _binance(stub, method, path, params)
        self.send_json(status, payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("POST")

    def do_DELETE(self) -> None:  # noqa: N802 - http.server's naming
        self._handle("DELETE")


class ExchangeStub(StubServer):
    """The exchange, served from a daemon thread on 127.0.0.1 (port 0: any free port).
    ``fail_next(n)``: the next n requests get the exchange's rate-limit error."""

    handler = _Handler
    name = "exchange-stub"

    def __init__(self, port: int = 0, latency: float = 0.0):
        super().__init__(port, latency)
        self.book = _Book()
        self.clock = time.time  # the server's clock for Binance's timestamps (tickers, server time)


# --- Binance spot (https://api.binance.com/api/v3) ---

_BINANCE_SYMBOLS = {"BTCUSDT": ("BTC", "USDT"), "ETHUSDT": ("ETH", "USDT")}


def _binance_market(symbol: str, base: str, quote: str) -> dict[str, Any]:
    return {
        "symbol": symbol, "status": "TRADING", "baseAsset": base, "baseAssetPrecision": 8, "quoteAsset": quote,
        "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True, "isMarginTradingAllowed": False,
        "permissions": ["SPOT"], "permissionSets": [["SPOT"]],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
        ],
    }


def _binance_perpetual(symbol: str, base: str, quote: str) -> dict[str, Any]:
    """A USDⓈ-M perpetual of /fapi/v1/exchangeInfo (what user data streams of futures accounts trade)."""
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL", "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000, "status": "TRADING", "baseAsset": base, "quoteAsset": quote,
        "marginAsset": quote, "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
        "quotePrecision": 8, "underlyingType": "COIN", "settlePlan": 0, "triggerProtect": "0.0500",
        "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC"],
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "1000000", "tickSize": "0.10"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
        ],
    }


def _binance_order(order: dict[str, Any], symbol: str) -> dict[str, Any]:
    status = {"open": "NEW", "closed": "FILLED", "canceled": "CANCELED"}[order["status"]]
    result = {
        "symbol": symbol, "orderId": int(order["id"]), "orderListId": -1, "clientOrderId": f"stub{order['id']}",
        "transactTime": order["time"], "time": order["time"], "updateTime": order["time"],
        "price": f"{order['price'] if order['type'] == 'limit' else 0:.8f}", "origQty": f"{order['amount']:.8f}",
        "executedQty": f"{order['filled']:.8f}", "cummulativeQuoteQty": f"{order['cost']:.8f}", "status": status,
        "timeInForce": "GTC", "type": order["type"].upper(), "side": order["side"].upper(),
        "workingTime": order["time"], "selfTradePreventionMode": "NONE",
    }
    if order["filled"]:
        result["fills"] = [{"price": f"{order['price']:.8f}", "qty": f"{order['filled']:.8f}",
                            "commission": f"{order['fee']:.8f}", "commissionAsset": order["quote"], "tradeId": 1}]
    return result


def _binance(stub: ExchangeStub, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
    if stub.take_failure():
        return 429, {"code": -1003, "msg": "Too many requests; current limit is 6000 request weight per 1 MINUTE."}
    book = stub.book
    now = int(stub.clock() * 1000)
    symbol = params.get("symbol", "BTCUSDT")
    base, quote = _BINANCE_SYMBOLS.get(symbol, ("BTC", "USDT"))
    if path == "/api/v3/exchangeInfo":
        return 200, {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [],
                     "symbols": [_binance_market(s, b, q) for s, (b, q) in _BINANCE_SYMBOLS.items()]}
    if path == "/fapi/v1/exchangeInfo":
        return 200, {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [], "assets": [],
                     "symbols": [_binance_perpetual(s, b, q) for s, (b, q) in _BINANCE_SYMBOLS.items()] if book.futures else []}
    if path == "/dapi/v1/exchangeInfo":
        return 200, {"timezone": "UTC", "serverTime": now, "rateLimits": [], "exchangeFilters": [], "assets": [], "symbols": []}
    if path in ("/fapi/v1/listenKey", "/api/v3/userDataStream"):
        # A user data stream's key: POST opens one, PUT keeps it alive (Binance answers {} then).
        if method == "POST":
            key = f"stubListenKey{len(book.listen_keys) + 1}"
            book.listen_keys.append(key)
            return 200, {"listenKey": key}
        return 200, {}
    if path == "/fapi/v1/leverageBracket":
        return 200, [{"symbol": s, "brackets": [{"bracket": 1, "initialLeverage": 125, "notionalCap": 50000,
                                                 "notionalFloor": 0, "maintMarginRatio": 0.004, "cum": 0.0}]}
                     for s in _BINANCE_SYMBOLS]
    if path == "/fapi/v3/positionRisk":
        with book.lock:
            return 200, [dict(p) for p in book.positions]
    if path == "/api/v3/time":
        return 200, {"serverTime": now}
    if path.startswith("/sapi/") and method == "GET":  # margin pairs, currency configs: none here
        return 200, []
    if path == "/api/v3/ticker/24hr":
        symbols = [symbol] if "symbol" in params else list(_BINANCE_SYMBOLS)
        tickers = []
        for name in symbols:
            price = book.price(_BINANCE_SYMBOLS.get(name, ("BTC",))[0])
            tickers.append({
                "symbol": name, "priceChange": "10.00", "priceChangePercent": "0.015", "weightedAvgPrice": f"{price:.2f}",
                "prevClosePrice": f"{price - 10:.2f}", "lastPrice": f"{price:.2f}", "lastQty": "0.01",
                "bidPrice": f"{price - 0.5:.2f}", "bidQty": "1.5", "askPrice": f"{price + 0.5:.2f}", "askQty": "2.0",
                "openPrice": f"{price - 10:.2f}", "highPrice": f"{price + 100:.2f}", "lowPrice": f"{price - 100:.2f}",
                "volume": "1234.5", "quoteVolume": f"{1234.5 * price:.2f}", "openTime": now - 86400000,
                "closeTime": now - 50, "firstId": 1, "lastId": 1000, "count": 1000,
            })
        return 200, tickers[0] if "symbol" in params else tickers
    if path == "/api/v3/depth":
        price = book.price(base)
        levels = int(params.get("limit", 5))
        return 200, {"lastUpdateId": now if book.depth_update_id is None else book.depth_update_id,
                     "bids": [[f"{price - i:.2f}", "0.5"] for i in range(1, levels + 1)],
                     "asks": [[f"{price + i:.2f}", "0.5"] for i in range(1, levels + 1)]}
    if path == "/api/v3/klines":
        price = book.price(base)
        count = int(params.get("limit", 10))
        return 200, [[now - (count - i) * 60000, f"{price:.2f}", f"{price + 5:.2f}", f"{price - 5:.2f}", f"{price + 1:.2f}",
                      "10.0", now - (count - i - 1) * 60000 - 1, f"{10 * price:.2f}", 100, "5.0", f"{5 * price:.2f}", "0"]
                     for i in range(count)]
    if path == "/api/v3/trades":
        price = book.price(base)
        return 200, [{"id": i, "price": f"{price:.2f}", "qty": "0.01", "quoteQty": f"{0.01 * price:.2f}",
                      "time": now - i * 1000, "isBuyerMaker": bool(i % 2), "isBestMatch": True} for i in range(5)]
    if path == "/api/v3/aggTrades":
        price = book.price(base)
        return 200, [{"a": i, "p": f"{price:.2f}", "q": "0.01", "f": i, "l": i, "T": now - i * 1000,
                      "m": bool(i % 2), "M": True} for i in range(5)]
    if path == "/api/v3/account":
        with book.lock:
            balances = [{"asset": asset, "free": f"{amount:.8f}", "locked": "0.00000000"}
                        for asset, amount in book.balances.items()]
        return 200, {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                     "canTrade": True, "canWithdraw": True, "canDeposit": True, "updateTime": now,
                     "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"]}
    if path == "/api/v3/order" and method == "POST":
        price = float(params["price"]) if "price" in params else None
        order = book.place(base, quote, params["side"].lower(), params["type"].lower(), float(params["quantity"]), price)
        if order is None:
            return 400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}
        return 200, _binance_order(order, symbol)
    if path == "/api/v3/order" and method == "DELETE":
        order = book.cancel(params.get("orderId", ""))
        if order is None:
            return 400, {"code": -2011, "msg": "Unknown order sent."}
        return 200, _binance_order(order, symbol)
    if path == "/api/v3/order":
        order = book.orders.get(params.get("orderId", ""))
        if order is None:
            return 400, {"code": -2013, "msg": "Order does not exist."}
        return 200, _binance_order(order, symbol)
    if path in ("/api/v3/openOrders", "/api/v3/allOrders"):
        with book.lock:
            orders = [dict(o) for o in book.orders.values() if path.endswith("allOrders") or o["status"] == "open"]
        return 200, [_binance_order(o, f"{o['base']}{o['quote']}") for o in orders if f"{o['base']}{o['quote']}" == symbol]
    if path == "/api/v3/myTrades":
        with book.lock:
            filled = [dict(o) for o in book.orders.values() if o["filled"] and f"{o['base']}{o['quote']}" == symbol]
        return 200, [{"symbol": symbol, "id": int(o["id"]), "orderId": int(o["id"]), "orderListId": -1,
                      "price": f"{o['price']:.8f}", "qty": f"{o['filled']:.8f}", "quoteQty": f"{o['cost']:.8f}",
                      "commission": f"{o['fee']:.8f}", "commissionAsset": o["quote"], "time": o["time"],
                      "isBuyer": o["side"] == "buy", "isMaker": False, "isBestMatch": True} for o in filled]
    return 404, {"code": -1100, "msg": f"Unknown endpoint {method} {path}."}


# --- Kraken (https://api.kraken.com/0) ---

_KRAKEN_PAIRS = {"XXBTZUSD": ("XXBT", "ZUSD", "XBTUSD", "XBT/USD", "BTC"),
                 "XETHZUSD": ("XETH", "ZUSD", "ETHUSD", "ETH/USD", "ETH")}
_KRAKEN_ASSETS = {"XXBT": ("XBT", "BTC"), "XETH": ("ETH", "ETH"), "ZUSD": ("USD", "USD")}


def _kraken_pair(params: dict[str, str]) -> tuple[str, tuple[str, str, str, str, str]]:
    wanted = params.get("pair", "XXBTZUSD")
    for name, pair in _KRAKEN_PAIRS.items():
        if wanted in (name, pair[2], pair[3]):
            return name, pair
    return "XXBTZUSD", _KRAKEN_PAIRS["XXBTZUSD"]


def _kraken_order(order: dict[str, Any], altname: str) -> dict[str, Any]:
    return {
        "refid": None, "userref": 0, "status": {"canceled": "canceled", "closed": "closed", "open": "open"}[order["status"]],
        "opentm": order["time"] / 1000, "starttm": 0, "expiretm": 0,
        "descr": {"pair": altname, "type": order["side"], "ordertype": order["type"], "price": f"{order['price']:.1f}",
                  "price2": "0", "leverage": "none", "order": f"{order['side']} {order['amount']} {altname} @ {order['type']}",
                  "close": ""},
        "vol": f"{order['amount']:.8f}", "vol_exec": f"{order['filled']:.8f}", "cost": f"{order['cost']:.5f}",
        "fee": f"{order['fee']:.5f}", "price": f"{order['price']:.1f}", "stopprice": "0", "limitprice": "0",
        "misc": "", "oflags": "fciq",
    }


def _kraken(stub: ExchangeStub, method: str, path: str, params: dict[str, str]) -> tuple[int, Any]:
    if stub.take_failure():
        return 200, {"error": ["EAPI:Rate limit exceeded"]}
    book = stub.book
    now = time.time()
    if path == "/0/public/AssetPairs":
        return 200, {"error": [], "result": {name: {
            "altname": alt, "wsname": ws, "aclass_base": "currency", "base": base, "aclass_quote": "currency",
            "quote": quote, "lot": "unit", "cost_decimals": 5, "pair_decimals": 1, "lot_decimals": 8,
            "lot_multiplier": 1, "leverage_buy": [], "leverage_sell": [], "fees": [[0, 0.26]], "fees_maker": [[0, 0.16]],
            "fee_volume_currency": "ZUSD", "margin_call": 80, "margin_stop": 40, "ordermin": "0.0001",
            "costmin": "0.5", "tick_size": "0.1", "status": "online"} for name, (base, quote, alt, ws, _) in _KRAKEN_PAIRS.items()}}
    if path == "/0/public/Assets":
        return 200, {"error": [], "result": {name: {"aclass": "currency", "altname": alt, "decimals": 10,
                                                    "display_decimals": 5, "collateral_value": 1, "status": "enabled"}
                                             for name, (alt, _) in _KRAKEN_ASSETS.items()}}
    if path == "/0/public/Time":
        return 200, {"error": [], "result": {"unixtime": int(now), "rfc1123": ""}}
    if path == "/0/public/Ticker":
        names = params.get("pair", ",".join(_KRAKEN_PAIRS)).split(",")
        result = {}
        for wanted in names:
            name, pair = _kraken_pair({"pair": wanted})
            price = book.price(pair[4])
            result[name] = {"a": [f"{price + 0.5:.1f}", "1", "1.000"], "b": [f"{price - 0.5:.1f}", "1", "1.000"],
                            "c": [f"{price:.1f}", "0.01"], "v": ["100.0", "1234.5"], "p": [f"{price:.1f}", f"{price:.1f}"],
                            "t": [100, 1000], "l": [f"{price - 100:.1f}", f"{price - 100:.1f}"],
                            "h": [f"{price + 100:.1f}", f"{price + 100:.1f}"], "o": f"{price - 10:.1f}"}
        return 200, {"error": [], "result": result}
    if path == "/0/public/Depth":
        name, pair = _kraken_pair(params)
        price = book.price(pair[4])
        count = int(params.get("count", 5))
        return 200, {"error": [], "result": {name: {
            "asks": [[f"{price + i:.1f}", "0.500", int(now) - 1] for i in range(1, count + 1)],
            "bids": [[f"{price - i:.1f}", "0.500", int(now) - 1] for i in range(1, count + 1)]}}}
    if path == "/0/public/OHLC":
        name, pair = _kraken_pair(params)
        price = book.price(pair[4])
        return 200, {"error": [], "result": {name: [[int(now) - (10 - i) * 60, f"{price:.1f}", f"{price + 5:.1f}",
                                                     f"{price - 5:.1f}", f"{price + 1:.1f}", f"{price:.1f}", "10.0", 100]
                                                    for i in range(10)], "last": int(now)}}
    if path == "/0/public/Trades":
        name, pair = _kraken_pair(params)
        price = book.price(pair[4])
        return 200, {"error": [], "result": {name: [[f"{price:.1f}", "0.01", now - i, "b" if i % 2 else "s", "m", "", i]
                                                    for i in range(5)], "last": str(int(now * 1e9))}}
    if path in ("/0/private/Balance", "/0/private/BalanceEx"):
        with book.lock:
            balances = {"XXBT": book.balances.get("BTC", 0.0), "XETH": book.balances.get("ETH", 0.0),
                        "ZUSD": book.balances.get("USD", 0.0)}
        if path.endswith("Ex"):
            return 200, {"error": [], "result": {k: {"balance": f"{v:.10f}", "hold_trade": "0.0000000000"}
                                                 for k, v in balances.items()}}
        return 200, {"error": [], "result": {k: f"{v:.10f}" for k, v in balances.items()}}
    if path == "/0/private/AddOrder":
        name, pair = _kraken_pair(params)
        price = float(params["price"]) if params.get("price") else None
        order = book.place(pair[4], "USD", params["type"], params["ordertype"], float(params["volume"]), price)
        if order is None:
            return 200, {"error": ["EOrder:Insufficient funds"]}
        return 200, {"error": [], "result": {"descr": {"order": f"{params['type']} {params['volume']} {pair[2]} @ {params['ordertype']}"},
                                             "txid": [order["id"]]}}
    if path == "/0/private/CancelOrder":
        order = book.cancel(params.get("txid", ""))
        if order is None:
            return 200, {"error": ["EOrder:Unknown order"]}
        return 200, {"error": [], "result": {"count": 1}}
    if path == "/0/private/QueryOrders":
        found = {}
        for order_id in params.get("txid", "").split(","):
            order = book.orders.get(order_id)
            if order is not None:
                found[order_id] = _kraken_order(order, "XBTUSD" if order["base"] == "BTC" else "ETHUSD")
        return 200, {"error": [], "result": found}
    if path == "/0/private/OpenOrders":
        with book.lock:
            orders = {o["id"]: _kraken_order(o, "XBTUSD" if o["base"] == "BTC" else "ETHUSD")
                      for o in book.orders.values() if o["status"] == "open"}
        return 200, {"error": [], "result": {"open": orders}}
    return 200, {"error": [f"EGeneral:Unknown method {path}"]}
