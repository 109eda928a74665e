"""The meters' part of the ``otel-monitoring demo`` summary: cost, budgets, KPIs and health."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def cost_lines(meter: Any) -> list[str]:
    lines = ["Cost (USD, this run)"]
    totals = sorted(meter.totals.items(), key=lambda item: -item[1])
    if not totals:
        lines.append("  nothing priced yet")
    for (cost_type, source), amount in totals:
        lines.append(f"  {cost_type:<16} {source:<28} {amount:>14.6f}")
    if totals:
        lines.append(f"  {'total':<45} {sum((a for _, a in totals), Decimal(0)):>14.6f}")
    for (reason, name), count in sorted(meter.unpriced_totals.items()):
        lines.append(f"  unpriced: {count} x {reason.replace('_', ' ')} {name!r} (add it to the price table)")
    for row in meter.budgets.status():
        lines.append(f"  budget {row['budget']}: {row['spent_usd']:.4f} of {row['limit_usd']:.2f} USD "
                     f"({_percent(row['utilization'])})")
    return lines


def trading_lines(kpis: Any) -> list[str]:
    lines = [f"Trading KPIs: {kpis.signal_count} signals"]
    accuracy = kpis.accuracy.rates()
    for strategy, row in sorted(kpis.strategy_results().items()):
        factor = "-" if row["profit_factor"] is None else f"{row['profit_factor']:.2f}"
        lines.append(f"  {strategy}: signal accuracy {_percent(accuracy.get(strategy))}, "
                     f"{row['wins'] + row['losses']} trades, win rate {_percent(row['win_rate'])}, "
                     f"profit factor {factor}, realized PnL {row['realized_pnl']:+.2f} USD")
    for strategy in sorted(set(accuracy) - set(kpis.strategy_results())):
        lines.append(f"  {strategy}: signal accuracy {_percent(accuracy[strategy])}")
    for (symbol, exchange), (age, state) in sorted(kpis.staleness().items(), key=lambda item: str(item[0])):
        where = f"{symbol}@{exchange}" if exchange else symbol
        lines.append(f"  market data {where}: {state} ({age:.1f} s old)")
    return lines


def rag_lines(kpis: Any) -> list[str]:
    total = sum(kpis.counts.values())
    hits, empties = kpis.hits.rates(), kpis.empties.rates()
    lines = [f"RAG KPIs: {total} retrievals ({kpis.counts['hit']} hit, {kpis.counts['miss']} miss, "
             f"{kpis.counts['empty']} empty)"]
    for collection in sorted(hits):
        lines.append(f"  {collection}: hit rate {_percent(hits[collection])}, "
                     f"empty rate {_percent(empties.get(collection))} (last {kpis.hits.size})")
    return lines


def health_lines(component: Any) -> list[str]:
    lines = []
    if component.host_health is not None:
        reading = component.host_health.read()
        parts = ", ".join(f"{name} {_percent(value)}" for name, value in reading.utilization.items())
        lines.append(f"Host health: {reading.score:.1f} {reading.state} ({parts})")
    from .health_checks import registry

    results = {result.name: result for result in registry.run()}  # now, not at the last background run
    if results:
        described = []
        for name, result in sorted(results.items()):
            if result.error:
                why = result.error
            elif isinstance(result.detail, dict):
                why = ", ".join(f"{key} {value}" for key, value in result.detail.items())
            else:
                why = str(result.detail or "returned False")
            described.append(f"{name} ok" if result.healthy else f"{name} FAILING ({why})")
        lines.append("Health checks: " + ", ".join(described))
    if component.health_server is not None:
        lines.append(f"Health endpoint: {component.health_server.url}")
    return lines


def summary_lines(monitoring: Any) -> list[str]:
    component = monitoring.component("meters") if monitoring is not None else None
    if component is None or component.cost is None:
        return ["(meters not running)"]
    return [*cost_lines(component.cost), "", *trading_lines(component.trading), "", *rag_lines(component.rag), "",
            *health_lines(component)]
