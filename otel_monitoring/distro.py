"""The plug-in for ``opentelemetry-instrument``: the same pipeline as ``configure()``, no code change.

``opentelemetry-instrument python app.py`` loads the distro (which may set defaults), then the
configurator (which builds the pipeline), then every ``opentelemetry_instrumentor`` entry point,
ours included. The configurator therefore builds the pipeline without enabling instrumentors
itself, and ``configure()`` called later in the app returns the same handle.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

_logger = logging.getLogger("otel_monitoring")

DISABLED_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"


class OtelMonitoringDistro(BaseDistro):
    """Configuration comes from the same OTEL_* variables configure() reads. The presets keep
    opentelemetry-instrument from starting the contrib system-metrics instrumentor a second time
    (our meters run it, with the lean default set of docs/meters.md), ask the contrib HTTP
    instrumentations for the stable conventions, and leave FastAPI to its own telemetry when it
    has some (docs/instrumentation.md)."""

    def _configure(self, **kwargs: Any) -> None:
        from .instrumentation.api import disable_contrib_fastapi_for_native, prefer_stable_http_conventions

        disabled = [name.strip() for name in os.environ.get(DISABLED_VARIABLE, "").split(",") if name.strip()]
        if "system_metrics" not in disabled:
            os.environ[DISABLED_VARIABLE] = ",".join([*disabled, "system_metrics"])
        # Before any instrumentor loads: the stable HTTP conventions, and one FastAPI telemetry.
        prefer_stable_http_conventions()
        disable_contrib_fastapi_for_native()


class OtelMonitoringConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from .config import ConfigError
        from .sdk import configure

        try:
            configure(instrument=False)
        except ConfigError as error:
            # opentelemetry-instrument must not stop the application over telemetry settings.
            _logger.error("otel-monitoring: telemetry is disabled for this run: %s", error)
