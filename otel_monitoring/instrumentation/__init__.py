"""Instrumentation: the user's calls become spans and RED metrics with no code change.

- ``core``: the one wrapt wrapper core every instrumentor uses (``Operation``, ``Patcher``).
- ``manual``: ``traced`` (decorator / context manager) and ``record_operation``.
- ``targets``: the zero-code targets file (``OTEL_MONITORING_TARGETS``).
- ``trading.ccxt``, ``rag.langchain``, ``rag.chromadb``: library instrumentors in the contrib shape.
- ``api``: turns on the official contrib FastAPI, requests and httpx instrumentations.
- ``genai_clients``: turns on the official contrib GenAI client instrumentations (OpenAI).
- ``storage``: turns on the official contrib SQLAlchemy, psycopg, asyncpg and redis instrumentations.

``InstrumentationComponent`` enables them from ``configure()`` (when ``settings.instrument``);
under ``opentelemetry-instrument`` their ``opentelemetry_instrumentor`` entry points do it.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from typing import TYPE_CHECKING, Any

import wrapt

from ..components import Component

if TYPE_CHECKING:
    from ..sdk import Monitoring

__all__ = ["InstrumentationComponent", "INSTRUMENTORS"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

# Entry point name (as in pyproject.toml and OTEL_PYTHON_DISABLED_INSTRUMENTATIONS) -> class.
INSTRUMENTORS: dict[str, str] = {
    "otel_monitoring_ccxt": "otel_monitoring.instrumentation.trading.ccxt:CcxtInstrumentor",
    "otel_monitoring_langchain": "otel_monitoring.instrumentation.rag.langchain:LangchainInstrumentor",
    "otel_monitoring_chromadb": "otel_monitoring.instrumentation.rag.chromadb:ChromadbInstrumentor",
    "otel_monitoring_api": "otel_monitoring.instrumentation.api:ApiInstrumentor",
    "otel_monitoring_genai_clients": "otel_monitoring.instrumentation.genai_clients:GenAIClientsInstrumentor",
    "otel_monitoring_storage": "otel_monitoring.instrumentation.storage:StorageInstrumentor",
    "otel_monitoring_targets": "otel_monitoring.instrumentation.targets:TargetsInstrumentor",
}


# The modules whose import switches an instrumentor on. configure() enables an instrumentor at once
# only if one of them is already imported; otherwise a post-import hook enables it when the app
# imports the library, so configure() never pays for importing libraries the app does not use.
# (The targets and API instrumentors have no entry: the first installs its own per-target import
# hooks, the second one hook per HTTP library, so that no library is instrumented while another one
# it imports is still half-initialised.)
TRIGGER_MODULES: dict[str, tuple[str, ...]] = {
    "otel_monitoring_ccxt": ("ccxt",),
    "otel_monitoring_langchain": ("langchain_core",),
    "otel_monitoring_chromadb": ("chromadb",),
    "otel_monitoring_genai_clients": ("openai",),
    "otel_monitoring_storage": ("sqlalchemy", "psycopg", "asyncpg", "redis"),
}


def load_instrumentor(path: str) -> Any:
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


class InstrumentationComponent(Component):
    """Enables the instrumentors whose libraries are installed, with the pipeline's providers."""

    name = "instrumentation"

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.enabled: list[Any] = []
        self._started: set[str] = set()
        self._stopped = False
        self._lock = threading.Lock()

    def span_processors(self) -> list[Any]:
        # Also under opentelemetry-instrument (instrument=False), where the contrib GenAI client
        # instrumentations enable themselves beside our langchain one.
        from .genai_clients import NestedGenAIMarker

        return [NestedGenAIMarker()]

    def start(self, monitoring: Monitoring) -> None:
        if not self.settings.instrument:
            return
        disabled = set(self.settings.disabled_instrumentations)
        for name, path in INSTRUMENTORS.items():
            if name in disabled:
                continue
            triggers = TRIGGER_MODULES.get(name, ())
            if triggers and not any(module in sys.modules for module in triggers):
                for module in triggers:
                    wrapt.register_post_import_hook(
                        lambda _module, name=name, path=path: self._enable(name, path, monitoring), module)
                continue
            self._enable(name, path, monitoring)

    def _enable(self, name: str, path: str, monitoring: Monitoring) -> None:
        """Switch one instrumentor on, once; runs at start or from an import hook. Never raises but
        for a strict targets file."""
        # The lock only claims the instrumentor. instrument() imports modules, and holding a lock
        # across imports deadlocks against another thread's import lock and its import hooks.
        with self._lock:
            if self._stopped or name in self._started:
                return
            self._started.add(name)
        try:
            instrumentor = load_instrumentor(path)
            if instrumentor.is_instrumented_by_opentelemetry:
                return
            if instrumentor._check_dependency_conflicts() is not None:
                _logger.debug("otel-monitoring: %s skipped (its library is not installed)", name)
                return
            instrumentor.instrument(
                tracer_provider=monitoring.tracer_provider,
                meter_provider=monitoring.meter_provider,
                settings=self.settings,
                skip_dep_check=True,
            )
        except ImportError:
            _logger.debug("otel-monitoring: %s skipped (its library is not installed)", name, exc_info=True)
            return
        except Exception as error:
            from ..config import ConfigError

            if isinstance(error, ConfigError):
                raise  # strict targets file: the user asked for this to stop start-up
            _logger.warning("otel-monitoring: instrumentation %s failed to start; continuing without it",
                            name, exc_info=True)
            return
        with self._lock:
            self.enabled.append(instrumentor)

    def shutdown(self) -> None:
        with self._lock:
            self._stopped = True  # import hooks cannot be unregistered: make them do nothing
            enabled, self.enabled = self.enabled, []
        while enabled:
            instrumentor = enabled.pop()
            try:
                instrumentor.uninstrument()
            except Exception:  # shutdown must go on
                _logger.debug("otel-monitoring: uninstrumenting %s failed", type(instrumentor).__name__,
                              exc_info=True)
