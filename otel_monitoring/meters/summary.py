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


def market_data_ages(kpis: Any, snapshot: Any = None) -> dict[tuple[str, str | None], tuple[float | None, str]]:
    """(age in seconds, LIVE/DELAYED/STALE) per (symbol, exchange). With ``snapshot`` (the final one),
    as it has them: measured at its collection, as `top` and the alerts show them, not whenever
    the summary is printed (after shutdown, when every age has grown by the time shutdown took)."""
    if snapshot is not None:
        from ..views import catalog
        from ..views.overview import freshness
        from ..views.snapshot import get_attr

        def key(attrs: dict[str, Any]) -> tuple[str, str | None]:
            return str(get_attr(attrs, *catalog.SYMBOL) or "?"), get_attr(attrs, catalog.EXCHANGE) or None

        declared = {key(p.get("attributes", {})): get_attr(p.get("attributes", {}), catalog.STALENESS_STATE)
                    for p in snapshot.find("gauges", catalog.MARKET_DATA_STATUS)[1] if p.get("value") == 1}
        ages = {}
        for point in snapshot.find("gauges", catalog.MARKET_DATA_STALENESS)[1]:
            where = key(point.get("attributes", {}))
            age = None if point.get("value") is None else float(point["value"])
            ages[where] = (age, freshness(age, declared.get(where))[0])
        if ages:
            return ages
    return kpis.staleness()


def trading_lines(kpis: Any, snapshot: Any = None) -> list[str]:
    lines = [f"Trading KPIs: {kpis.signal_count} signals"]
    accuracy = kpis.accuracy.rates()
    for strategy, row in sorted(kpis.strategy_results().items()):
        factor = "-" if row["profit_factor"] is None else f"{row['profit_factor']:.2f}"
        lines.append(f"  {strategy}: signal accuracy {_percent(accuracy.get(strategy))}, "
                     f"{row['wins'] + row['losses']} trades, win rate {_percent(row['win_rate'])}, "
                     f"profit factor {factor}, realized PnL {row['realized_pnl']:+.2f} USD")
    for strategy in sorted(set(accuracy) - set(kpis.strategy_results())):
        lines.append(f"  {strategy}: signal accuracy {_percent(accuracy[strategy])}")
    for (symbol, exchange), (age, state) in sorted(market_data_ages(kpis, snapshot).items(), key=lambda item: str(item[0])):
        where = f"{symbol}@{exchange}" if exchange else symbol
        lines.append(f"  market data {where}: {state} ({'?' if age is None else f'{age:.1f}'} s old)")
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


def _final_host_health(snapshot: Any) -> str | None:
    """The host health line from the final snapshot: the sample the alerts and `top` show."""
    from .. import names
    from ..views.snapshot import get_attr

    scores = snapshot.gauges.get(names.HOST_HEALTH_SCORE) or []
    if not scores or scores[0].get("value") is None:
        return None
    states = [get_attr(p.get("attributes", {}), names.HOST_HEALTH_STATE)
              for p in snapshot.gauges.get(names.HOST_HEALTH_STATUS) or [] if p.get("value") == 1]
    parts = ", ".join(f"{get_attr(p.get('attributes', {}), names.HOST_RESOURCE)} {_percent(p.get('value'))}"
                      for p in snapshot.gauges.get(names.HOST_RESOURCE_UTILIZATION) or [])
    return f"Host health: {float(scores[0]['value']):.1f} {states[0] if states else '?'} ({parts})"


# The default host checks measure what the host health line shows; their own reading is left out
# so one screen shows one CPU (memory, disk) value.
_HOST_CHECKS = ("cpu", "memory", "disk")


def health_lines(component: Any, snapshot: Any = None) -> list[str]:
    """Host health and health checks; with ``snapshot`` (the final one), as that snapshot has them."""
    lines = []
    final = _final_host_health(snapshot) if snapshot is not None else None
    if final is not None:
        lines.append(final)
    elif component.host_health is not None:
        reading = component.host_health.read()
        parts = ", ".join(f"{name} {_percent(value)}" for name, value in reading.utilization.items())
        lines.append(f"Host health: {reading.score:.1f} {reading.state} ({parts})")
    from .health_checks import registry

    # The results of the last run, which the final snapshot's check-status gauge reports; else run now.
    results = registry.last_results() if snapshot is not None else {}
    results = results or {result.name: result for result in registry.run()}
    if results:
        described = []
        for name, result in sorted(results.items()):
            detail = result.detail
            if name in _HOST_CHECKS and isinstance(detail, dict) and final is not None:
                detail = {key: value for key, value in detail.items() if key != "utilization"}
            if result.error:
                why = result.error
            elif isinstance(detail, dict):
                why = ", ".join(f"{key} {value}" for key, value in detail.items())
            else:
                why = str(detail or "returned False")
            described.append(f"{name} ok" if result.healthy else f"{name} FAILING ({why})")
        lines.append("Health checks: " + ", ".join(described))
    if component.health_server is not None:
        lines.append(f"Health endpoint: {component.health_server.url}")
    return lines


def summary_lines(monitoring: Any, snapshot: Any = None) -> list[str]:
    """``snapshot``: the final snapshot (views.snapshot.Snapshot), which the host health and
    market-data lines read."""
    component = monitoring.component("meters") if monitoring is not None else None
    if component is None or component.cost is None:
        return ["(meters not running)"]
    return [*cost_lines(component.cost), "", *trading_lines(component.trading, snapshot), "", *rag_lines(component.rag), "",
            *health_lines(component, snapshot)]
