"""A trading bot: real ccxt clients (Binance sync, Kraken async) against a local exchange on 127.0.0.1.

Each tick reads the market (ticker, order book), computes a signal, sizes and places an order,
and now and then checks its balance and open orders. Beside it, a ccxt.pro client watches BTC and
ETH tickers over WebSocket from a local Binance stream server; a third of the way in, the ETH
stream freezes (the connection stays open, nothing comes) and turns STALE once it has been
silent for ``stream_stale_seconds``; half way in, the server drops the connection once (as an
exchange does on maintenance): each watch raises ccxt's NetworkError and watching again
reconnects, so the WebSocket errors, disconnects and reconnects are real. Each signal the bot
acts on is recorded (``record_signal``) in the tick's trace, so the fee of the order it places
is that signal's cost. The exchange stub answers in the real
Binance and Kraken wire formats, so what you see is ccxt's own behaviour, errors included:
an oversized order gets InsufficientFunds, a burst gets the exchange's rate-limit error.

The ccxt calls are traced by the ccxt instrumentor that ``configure()`` enables; the bot's own
steps use ``otel_monitoring.traced``. Run it alone with ``python -m otel_monitoring.examples.trading_bot``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time

import ccxt
import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro

import otel_monitoring
from otel_monitoring import names

from .exchange_stub import ExchangeStub, point_ccxt_at
from .exchange_ws_stub import BinanceStreamStub, point_ccxt_pro_at

log = logging.getLogger("examples.trading_bot")

# The stub checks no signature; it is local, so ccxt's client-side throttle is off.
STRATEGY = "book_lean"  # the bot's strategy, as its signals and their cost are reported

CREDENTIALS = {"apiKey": "demo-key", "secret": "ZGVtby1zZWNyZXQtZGVtby1zZWNyZXQ=", "enableRateLimit": False}


@otel_monitoring.traced("strategy", "compute_signal", domain="trading")
def compute_signal(ticker: dict, book: dict, rng: random.Random) -> str | None:
    """Buy when the book leans to bids, sell when it leans to asks; mostly do nothing."""
    bids = sum(level[1] for level in book["bids"][:5])
    asks = sum(level[1] for level in book["asks"][:5])
    lean = (bids - asks) / max(bids + asks, 1e-9) + rng.uniform(-0.5, 0.5)
    return "buy" if lean > 0.25 else "sell" if lean < -0.25 else None


def tick(exchange: ccxt.Exchange, symbol: str, rng: random.Random) -> None:
    with otel_monitoring.traced("bot", "tick", domain="trading", attributes={names.TRADING_SYMBOL: symbol}):
        ticker = exchange.fetch_ticker(symbol)
        book = exchange.fetch_order_book(symbol, 5)
        side = compute_signal(ticker, book, rng)
        if side is None:
            return
        otel_monitoring.record_signal(STRATEGY, symbol, side)
        # One order in ten is oversized: the exchange refuses it and the bot carries on.
        amount = 500.0 if rng.random() < 0.1 else round(rng.uniform(0.001, 0.01), 5)
        try:
            exchange.create_order(symbol, "market", side, amount)
        except ccxt.InsufficientFunds:
            log.warning("order of %s %s refused: insufficient funds", amount, symbol)
        if rng.random() < 0.2:
            exchange.fetch_balance()


async def async_tick(exchange: ccxt_async.Exchange, symbol: str, rng: random.Random, stub: ExchangeStub,
                     placed: list[int]) -> None:
    with otel_monitoring.traced("bot", "tick_async", domain="trading", attributes={names.TRADING_SYMBOL: symbol}):
        ticker, book = await asyncio.gather(exchange.fetch_ticker(symbol), exchange.fetch_order_book(symbol, 5))
        side = compute_signal(ticker, book, rng)
        if side is not None:
            otel_monitoring.record_signal(STRATEGY, symbol, side)
            order = await exchange.create_order(symbol, "limit", side, 0.002, round(ticker["last"] * 0.99, 1))
            placed[0] += 1
            # A counterparty takes nine limit orders in ten; the tenth rests until the bot cancels it.
            # The bot checks each order (fetch_order shows the fill), so the fill rate stays at 90 %,
            # above the success-rate alert's 80 %: no alert of its own beside the planted faults.
            if placed[0] % 10:
                stub.book.fill(order["id"], 0.002)
                for _attempt in range(5):  # the stub's planted rate-limit answer may land here
                    try:
                        await exchange.fetch_order(order["id"], symbol)
                        break
                    except ccxt.DDoSProtection:
                        await asyncio.sleep(0.05)
        if rng.random() < 0.3:
            for order in await exchange.fetch_open_orders(symbol):
                await exchange.cancel_order(order["id"], symbol)


async def run_async(stub: ExchangeStub, deadline: float, rng: random.Random) -> None:
    exchange = point_ccxt_at(ccxt_async.kraken(dict(CREDENTIALS)), stub.url)
    try:
        await exchange.load_markets()
        placed = [0]
        while time.monotonic() < deadline:
            try:
                await async_tick(exchange, "BTC/USD", rng, stub, placed)
            except ccxt.DDoSProtection:  # the exchange's rate limit (RateLimitExceeded is one)
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.02)
    finally:
        await exchange.close()


async def watch_feed(exchange: ccxt_pro.Exchange, symbol: str, deadline: float) -> int:
    """The market-data loop of a WebSocket bot: each update is one message for the feed metrics."""
    updates = 0
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(exchange.watch_ticker(symbol), timeout=max(0.05, deadline - time.monotonic()))
            updates += 1
        except asyncio.TimeoutError:
            break  # a frozen stream: nothing comes, and the loop cannot tell
        except ccxt.NetworkError:
            await asyncio.sleep(0.1)  # dropped: watching again reconnects
    return updates


async def run_feed(stub: ExchangeStub, deadline: float) -> None:
    streams = BinanceStreamStub(latency=0.03).start()  # events stamped 30 ms before they are sent
    exchange = point_ccxt_pro_at(ccxt_pro.binance({"enableRateLimit": False}), stub.url, streams.url)
    try:
        streams.feed(0.1)
        start = time.monotonic()
        freeze_at = start + (deadline - start) / 3
        drop_at = start + (deadline - start) / 2

        async def freeze() -> None:
            await asyncio.sleep(max(0.0, freeze_at - time.monotonic()))
            streams.freeze("ETHUSDT")
            log.info("the ETH/USDT stream froze: connection open, no more messages")

        async def drop() -> None:
            await asyncio.sleep(max(0.0, drop_at - time.monotonic()))
            while not streams.connections and time.monotonic() < deadline:  # a slow start: drop once connected
                await asyncio.sleep(0.05)
            dropped = await asyncio.to_thread(streams.drop_connections)
            log.info("the stream server dropped %d connection(s); the bot reconnects", dropped)

        await asyncio.gather(watch_feed(exchange, "BTC/USDT", deadline), watch_feed(exchange, "ETH/USDT", deadline),
                             freeze(), drop())
    finally:
        await exchange.close()
        streams.stop()


def demo(duration: float) -> None:
    rng = random.Random(7)
    stub = ExchangeStub(latency=0.002).start()
    try:
        exchange = point_ccxt_at(ccxt.binance(dict(CREDENTIALS)), stub.url)
        exchange.load_markets()
        deadline = time.monotonic() + duration
        # The async Kraken bot runs beside the sync Binance one.
        async_thread_error: list[BaseException] = []

        def async_bot() -> None:
            try:
                asyncio.run(run_async(stub, deadline, random.Random(11)))
            except BaseException as error:  # noqa: BLE001 - reported below
                async_thread_error.append(error)

        worker = threading.Thread(target=async_bot, name="kraken-bot")
        worker.start()

        def feed() -> None:
            try:
                asyncio.run(run_feed(stub, deadline))
            except BaseException as error:  # noqa: BLE001 - reported below
                async_thread_error.append(error)

        feeder = threading.Thread(target=feed, name="ws-feed")
        feeder.start()
        ticks = 0
        while time.monotonic() < deadline:
            ticks += 1
            if ticks % 25 == 0:
                stub.fail_next(1)  # a rate-limit answer now and then
            try:
                tick(exchange, "BTC/USDT" if ticks % 3 else "ETH/USDT", rng)
            except ccxt.DDoSProtection:
                time.sleep(0.05)
            time.sleep(0.01)
        worker.join()
        feeder.join()
        if async_thread_error:
            raise async_thread_error[0]
    finally:
        stub.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    otel_monitoring.configure(service_name="trading-bot")
    demo(5.0)
