"""The features that plug into the SDK pipeline that ``configure()`` builds.

Each feature package (instrumentation, meters, local monitoring) exposes one ``Component``.
The pipeline asks every component, before the providers exist, for what must be fixed at
construction (span processors, metric readers, views), then calls ``start`` once the
providers are global, and ``shutdown`` (in reverse order) before the providers shut down.
Components never talk to exporters: they hand over processors and readers, nothing else.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import MetricReader
    from opentelemetry.sdk.metrics.view import View
    from opentelemetry.sdk.trace import SpanProcessor

    from .config import Settings
    from .sdk import Monitoring

_logger = logging.getLogger(__name__)

# Import paths of the components, in start order. A module that is missing or fails to import
# is skipped with one log line: a broken feature must never stop the host application.
COMPONENT_PATHS: tuple[str, ...] = (
    "otel_monitoring.instrumentation:InstrumentationComponent",
    "otel_monitoring.meters:MetersComponent",
    "otel_monitoring.local:LocalComponent",
)


class Component:
    """Base class: override what the feature needs. Every method must not raise for bad user input
    it can survive; it logs a message naming the problem instead."""

    name = "component"

    def __init__(self, settings: Settings):
        self.settings = settings

    def span_processors(self) -> list[SpanProcessor]:
        return []

    def metric_readers(self) -> list[MetricReader]:
        return []

    def views(self) -> list[View]:
        return []

    def start(self, monitoring: Monitoring) -> None:
        """Called once the providers are set globally."""

    def shutdown(self) -> None:
        """Called before the providers shut down; must return promptly."""


def load_components(settings: Settings) -> list[Component]:
    components: list[Component] = []
    for path in COMPONENT_PATHS:
        module_name, _, class_name = path.partition(":")
        try:
            cls: Any = getattr(importlib.import_module(module_name), class_name)
        except ModuleNotFoundError as error:
            if error.name != module_name:
                _logger.warning("otel-monitoring: %s is unavailable (%s); continuing without it", path, error)
            continue
        except (ImportError, AttributeError) as error:
            _logger.warning("otel-monitoring: %s is unavailable (%s); continuing without it", path, error)
            continue
        components.append(cls(settings))
    return components
