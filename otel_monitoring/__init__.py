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
    "add_alert_callback": "otel_monitoring.local.alerts:add_alert_callback",
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
