"""A trading bot loop: read the market, decide, place an order. (Minimal; the instrumentation issue
makes it a real ccxt client against a local exchange stub.)"""

from __future__ import annotations

import random
import time

from opentelemetry import trace

tracer = trace.get_tracer("examples.trading_bot")


def tick(rng: random.Random) -> None:
    with tracer.start_as_current_span("trading.tick"):
        with tracer.start_as_current_span("trading.fetch_ticker") as span:
            span.set_attribute("trading.symbol", "BTC/USDT")
            time.sleep(rng.uniform(0.002, 0.01))
        if rng.random() < 0.5:
            with tracer.start_as_current_span("trading.create_order") as span:
                span.set_attribute("trading.side", rng.choice(["buy", "sell"]))
                time.sleep(rng.uniform(0.005, 0.02))
                if rng.random() < 0.1:
                    error = RuntimeError("InsufficientFunds")
                    span.record_exception(error)
                    span.set_status(trace.StatusCode.ERROR, str(error))


def demo(duration: float) -> None:
    rng = random.Random(7)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        tick(rng)


if __name__ == "__main__":
    import otel_monitoring

    otel_monitoring.configure(service_name="trading-bot")
    demo(5.0)
