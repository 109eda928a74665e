"""Per-message cost of the ccxt.pro feed instrumentation, next to ccxt's own cost of a message.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_feeds.py [--messages 20000] [--repeat 5]

Measured in one process, best of ``--repeat`` runs (the machines are shared):
- ccxt: ``binance.handle_message`` on a Binance ``24hrTicker`` event (JSON already decoded), the
  parsing ccxt does for every message before a ``watch_ticker`` call returns;
- bare watch: awaiting a ``watch_ticker``-shaped coroutine that returns a parsed ticker;
- instrumented watch: the same through the instrumentation's ``watch_*`` wrapper (counting, latency
  and interval kept for collection, staleness, gap and rate bookkeeping);
- collection: the deferred histogram records, per message, paid when a metric reader collects
  (every ``COLLECT_EVERY`` messages here: 60 s of a stream of 10 messages a second).

The instrumentation's cost per message is "instrumented - bare" (goal <= 5 us, docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

sys.path.insert(0, ".")


# A reader collects every 60 s; a ticker stream sends about 10 messages a second.
COLLECT_EVERY = 600


def _ticker_event(ms: int) -> dict:
    return {"e": "24hrTicker", "E": ms, "s": "BTCUSDT", "p": "10.00", "P": "0.015", "w": "65000.00",
            "x": "64990.00", "c": "65000.00", "Q": "0.01", "b": "64999.50", "B": "1.5", "a": "65000.50", "A": "2.0",
            "o": "64990.00", "h": "65100.00", "l": "64900.00", "v": "1234.5", "q": "80242500.00",
            "O": ms - 86_400_000, "C": ms, "F": 1, "L": 1000, "n": 1000}


def bench_ccxt(messages: int) -> float:
    import ccxt.pro

    from otel_monitoring.examples.exchange_stub import ExchangeStub
    from otel_monitoring.examples.exchange_ws_stub import point_ccxt_pro_at

    async def run() -> float:
        with ExchangeStub() as rest:
            exchange = point_ccxt_pro_at(ccxt.pro.binance({"enableRateLimit": False}), rest.url, "ws://127.0.0.1:9/ws")
            await exchange.load_markets()
        client = exchange.client("ws://127.0.0.1:9/ws/0")  # constructed, never connected
        event = _ticker_event(int(time.time() * 1000))
        started = time.perf_counter()
        for _ in range(messages):
            exchange.handle_message(client, dict(event))
        elapsed = time.perf_counter() - started
        await exchange.close()
        return elapsed / messages

    return asyncio.run(run())


def bench_watch(messages: int, instrumented: bool) -> tuple[float, float]:
    from otel_monitoring.instrumentation.trading.ccxt.feeds import Feeds
    from otel_monitoring.instrumentation.trading.ccxt.pro import ProWrapper

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    feeds = Feeds(provider.get_meter("bench"), meter_provider=provider, scope="bench")
    tracer = TracerProvider().get_tracer("bench")
    ticker = {"symbol": "BTC/USDT", "timestamp": int(time.time() * 1000), "last": 65000.0}

    class Exchange:
        id = "binance"

        async def watch_ticker(self, symbol: str, params: dict = {}) -> dict:  # noqa: B006 - ccxt's signature
            return ticker

    if instrumented:
        assert ProWrapper(tracer, feeds)._patch_watch(Exchange, "watch_ticker")  # as on ccxt.pro's classes
    exchange = Exchange()

    async def run() -> tuple[float, float]:
        await exchange.watch_ticker("BTC/USDT")  # the subscription's first message (a span) is not per message
        hot = collect = 0.0
        for _ in range(messages // COLLECT_EVERY):
            started = time.perf_counter()
            for _ in range(COLLECT_EVERY):
                await exchange.watch_ticker("BTC/USDT")
            hot += time.perf_counter() - started
            started = time.perf_counter()
            reader.collect()
            collect += time.perf_counter() - started
        count = messages // COLLECT_EVERY * COLLECT_EVERY
        return hot / count, collect / count

    return asyncio.run(run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ccxt_cost = min(bench_ccxt(args.messages) for _ in range(args.repeat))
    bare = min(bench_watch(args.messages, False)[0] for _ in range(args.repeat))
    runs = [bench_watch(args.messages, True) for _ in range(args.repeat)]
    instrumented = min(run[0] for run in runs)
    collect = min(run[1] for run in runs)
    us = 1e6
    print(f"ccxt handle_message (24hrTicker)   {ccxt_cost * us:8.2f} us/message")
    print(f"bare watch_ticker await            {bare * us:8.2f} us/message")
    print(f"instrumented watch_ticker await    {instrumented * us:8.2f} us/message")
    print(f"instrumentation on the hot path    {(instrumented - bare) * us:8.2f} us/message (goal <= 5 us)")
    print(f"collection (deferred records)      {collect * us:8.2f} us/message (on the reader's thread)")
    print(f"total instrumentation              {(instrumented - bare + collect) * us:8.2f} us/message")
    print(f"hot path / ccxt parsing            {(instrumented - bare) / ccxt_cost:8.3f}x")
    print(f"total / ccxt parsing               {(instrumented - bare + collect) / ccxt_cost:8.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
