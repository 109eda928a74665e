"""Turning on official opentelemetry-python-contrib instrumentors: the ones whose library is installed.

``ContribBundle`` is a ``BaseInstrumentor`` over a table of contrib instrumentors (entry point
name -> instrumentor path and the library requirement it needs). ``configure()`` enables a bundle
when one of its libraries is imported; each member is enabled with the pipeline's providers if its
library and its contrib package are installed, skipped otherwise, and honours
``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS`` by the contrib entry point name. Under
``opentelemetry-instrument`` the contrib packages' own entry points do the same job.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Collection, Mapping, NamedTuple

from opentelemetry.instrumentation.dependencies import DependencyConflict, get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from .core import settings_from

__all__ = ["ContribBundle", "Member"]

_logger = logging.getLogger("otel_monitoring.instrumentation")


class Member(NamedTuple):
    path: str  # "module:Class" of the contrib instrumentor
    requirement: str  # the library it instruments, as a requirement string


class ContribBundle(BaseInstrumentor):
    """Enables the installed members of ``MEMBERS``; ``uninstrument`` disables exactly those."""

    MEMBERS: Mapping[str, Member] = {}
    _instruments_any: Collection[str] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        return get_dependency_conflicts((), list(self._instruments_any))

    def member_options(self, name: str, settings: Any) -> dict[str, Any]:
        """Extra ``instrument()`` keywords for one member (none by default)."""
        return {}

    def _instrument(self, **kwargs: Any) -> None:
        settings = settings_from(kwargs)
        disabled = set(settings.disabled_instrumentations)
        self._enabled: list[Any] = []
        for name, member in self.MEMBERS.items():
            if name in disabled or get_dependency_conflicts([member.requirement]) is not None:
                continue
            module_name, _, class_name = member.path.partition(":")
            try:
                instrumentor = getattr(importlib.import_module(module_name), class_name)()
            except ImportError:
                _logger.debug("otel-monitoring: %s is installed but %s is not", name, module_name)
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                continue
            options: dict[str, Any] = {"tracer_provider": kwargs.get("tracer_provider"),
                                       "meter_provider": kwargs.get("meter_provider"),
                                       **self.member_options(name, settings)}
            try:
                instrumentor.instrument(**{k: v for k, v in options.items() if v is not None})
            except Exception:  # one broken member must not stop the others
                _logger.warning("otel-monitoring: instrumentation %s failed to start; continuing without it",
                                name, exc_info=True)
                continue
            self._enabled.append(instrumentor)

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._enabled:
            instrumentor = self._enabled.pop()
            try:
                instrumentor.uninstrument()
            except Exception:  # a member failing to stop must not raise into the app
                _logger.warning("otel-monitoring: instrumentation %s failed to stop cleanly",
                                type(instrumentor).__name__, exc_info=True)
                instrumentor._is_instrumented_by_opentelemetry = False  # so a later instrument() runs
