"""The plug-in for ``opentelemetry-instrument``: the same pipeline as ``configure()``, no code change.

``opentelemetry-instrument python app.py`` loads the distro (which may set defaults), then the
configurator (which builds the pipeline), then every ``opentelemetry_instrumentor`` entry point,
ours included. The configurator therefore builds the pipeline without enabling instrumentors
itself, and ``configure()`` called later in the app returns the same handle.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

_logger = logging.getLogger("otel_monitoring")


class OtelMonitoringDistro(BaseDistro):
    """Nothing to preset: configuration comes from the same OTEL_* variables configure() reads."""

    def _configure(self, **kwargs: Any) -> None:
        pass


class OtelMonitoringConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from .config import ConfigError
        from .sdk import configure

        try:
            configure(instrument=False)
        except ConfigError as error:
            # opentelemetry-instrument must not stop the application over telemetry settings.
            _logger.error("otel-monitoring: telemetry is disabled for this run: %s", error)
