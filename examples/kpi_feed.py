"""The KPIs a strategy and a RAG service report themselves: what no library call reveals.

A momentum strategy walks two simulated prices: it emits signals, judges each one a few ticks
later (did the price move its way?), opens and closes positions (realized PnL, slippage of each
fill, unrealized PnL and exposure while open) and marks its market data as it arrives; a third
symbol's feed stopped an hour ago, so it shows as STALE. A RAG service records each retrieval's
relevance scores and, now and then, the user's feedback. A health check watches the price feed.

Run it alone with ``python -m otel_monitoring.examples.kpi_feed``.
"""

from __future__ import annotations

import random
import time
from collections import deque

import otel_monitoring
from otel_monitoring.meters.checks import freshness_check

STRATEGY = "momentum"
SYMBOLS = {"BTC/USDT": 60_000.0, "ETH/USDT": 3_000.0}
JUDGE_AFTER_TICKS = 5


class Strategy:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.prices = dict(SYMBOLS)
        self.history = {symbol: deque([price], maxlen=10) for symbol, price in SYMBOLS.items()}
        self.pending: deque[tuple[int, str, str, float]] = deque()  # (tick to judge at, symbol, direction, price)
        self.positions: dict[str, tuple[str, float, float]] = {}  # symbol -> (side, amount, entry price)
        self.last_update = time.time()

    def tick(self, number: int) -> None:
        for symbol in self.prices:
            self.prices[symbol] *= 1 + self.rng.gauss(0.0002, 0.002)
            self.history[symbol].append(self.prices[symbol])
            otel_monitoring.mark_market_data(symbol, exchange="binance")
        self.last_update = time.time()
        for symbol, history in self.history.items():
            momentum = history[-1] / history[0] - 1
            if abs(momentum) > 0.003 and symbol not in self.positions:
                direction = "long" if momentum > 0 else "short"
                otel_monitoring.record_signal(STRATEGY, symbol, direction)
                self.pending.append((number + JUDGE_AFTER_TICKS, symbol, direction, history[-1]))
                self.open(symbol, "buy" if direction == "long" else "sell")
        while self.pending and self.pending[0][0] <= number:
            _, symbol, direction, price = self.pending.popleft()
            moved_up = self.prices[symbol] > price
            otel_monitoring.record_signal_outcome(STRATEGY, symbol, moved_up == (direction == "long"))
            self.close(symbol)
        for symbol, (side, amount, entry) in self.positions.items():
            sign = 1 if side == "buy" else -1
            otel_monitoring.set_unrealized_pnl(symbol, sign * (self.prices[symbol] - entry) * amount, strategy=STRATEGY)
            otel_monitoring.set_exposure(symbol, amount * self.prices[symbol], strategy=STRATEGY)

    def fill_price(self, side: str, price: float) -> float:
        slip = abs(self.rng.gauss(0, 0.0004))  # market orders mostly pay a few basis points
        return price * (1 + slip if side == "buy" else 1 - slip)

    def open(self, symbol: str, side: str) -> None:
        amount = round(1_000 / self.prices[symbol], 5)
        fill = self.fill_price(side, self.prices[symbol])
        otel_monitoring.record_fill(symbol, side, expected_price=self.prices[symbol], fill_price=fill,
                                    amount=amount, filled=amount, exchange="binance")
        self.positions[symbol] = (side, amount, fill)

    def close(self, symbol: str) -> None:
        if symbol not in self.positions:
            return
        side, amount, entry = self.positions.pop(symbol)
        exit_side = "sell" if side == "buy" else "buy"
        fill = self.fill_price(exit_side, self.prices[symbol])
        otel_monitoring.record_fill(symbol, exit_side, expected_price=self.prices[symbol], fill_price=fill,
                                    amount=amount, filled=amount, exchange="binance")
        pnl = (fill - entry) * amount if side == "buy" else (entry - fill) * amount
        otel_monitoring.record_trade(STRATEGY, symbol, round(pnl, 6))
        otel_monitoring.set_exposure(symbol, 0.0, strategy=STRATEGY)
        otel_monitoring.set_unrealized_pnl(symbol, 0.0, strategy=STRATEGY)


def rag_feedback(rng: random.Random) -> None:
    """One question to the knowledge base: relevance scores of the hits, sometimes the user's verdict."""
    found = rng.choices([0, 2, 4], weights=[1, 4, 6])[0]
    scores = sorted((rng.betavariate(5, 2) for _ in range(found)), reverse=True)
    feedback = rng.random() < 0.2
    otel_monitoring.record_retrieval(scores, collection="trading-docs",
                                     relevant=(bool(scores) and scores[0] > 0.6) if feedback else None)


def demo(duration: float) -> None:
    rng = random.Random(5)
    strategy = Strategy(rng)
    otel_monitoring.mark_market_data("SOL/USDT", exchange="binance", timestamp=time.time() - 3_900)  # feed stopped
    otel_monitoring.register_health_check("price_feed", freshness_check(lambda: strategy.last_update, 30.0))
    deadline = time.monotonic() + duration
    number = 0
    while time.monotonic() < deadline:
        number += 1
        strategy.tick(number)
        rag_feedback(rng)
        time.sleep(0.02)


if __name__ == "__main__":
    otel_monitoring.configure(service_name="kpi-feed")
    demo(5.0)
