"""otel-monitoring: OpenTelemetry monitoring for trading systems, RAG pipelines and APIs.

    import otel_monitoring
    otel_monitoring.configure(service_name="trading-bot")

The public API is small and flat; each name is imported lazily from the module that owns it,
so ``import otel_monitoring`` stays cheap and optional extras are loaded only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import ConfigError
from .sdk import Monitoring, configure, get_monitoring
from .version import __version__

# name -> "module:attribute"; features add their public names here.
_LAZY: dict[str, str] = {
    "traced": "otel_monitoring.instrumentation.manual:traced",
    "record_operation": "otel_monitoring.instrumentation.manual:record_operation",
    "record_cost": "otel_monitoring.meters.cost:record_cost",
    "record_compute_cost": "otel_monitoring.meters.cost:record_compute_cost",
    "add_budget_listener": "otel_monitoring.meters.budgets:add_budget_listener",
    "record_signal": "otel_monitoring.meters.trading:record_signal",
    "record_signal_outcome": "otel_monitoring.meters.trading:record_signal_outcome",
    "record_trade": "otel_monitoring.meters.trading:record_trade",
    "record_fill": "otel_monitoring.meters.trading:record_fill",
    "set_unrealized_pnl": "otel_monitoring.meters.trading:set_unrealized_pnl",
    "set_exposure": "otel_monitoring.meters.trading:set_exposure",
    "mark_market_data": "otel_monitoring.meters.trading:mark_market_data",
    "record_retrieval": "otel_monitoring.meters.rag:record_retrieval",
    "register_health_check": "otel_monitoring.meters.health_checks:register_health_check",
    "run_health_checks": "otel_monitoring.meters.health_checks:run_health_checks",
    "add_alert_callback": "otel_monitoring.local.alerts:add_alert_callback",
    "remove_alert_callback": "otel_monitoring.local.alerts:remove_alert_callback",
    "active_alerts": "otel_monitoring.local.alerts:active_alerts",
    "acknowledge_alert": "otel_monitoring.local.alerts:acknowledge",
    "silence_alert": "otel_monitoring.local.alerts:silence",
}

__all__ = ["ConfigError", "Monitoring", "configure", "get_monitoring", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'otel_monitoring' has no attribute {name!r}")
    module_name, _, attribute = target.partition(":")
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value
