"""API instrumentation: the official contrib FastAPI/Starlette, requests, httpx and aiohttp-client
instrumentations.

Nothing is rewritten here: ``ApiInstrumentor`` enables each contrib instrumentor whose library is
installed, with the pipeline's providers and the health-probe exclusion (``excluded_urls``,
``OTEL_PYTHON_EXCLUDED_URLS``). It is what ``configure()`` uses. Under
``opentelemetry-instrument`` the contrib packages' own entry points enable them, and the
``set_excluded_urls_default`` pre-instrument hook gives them the same exclusion default.
"""

from __future__ import annotations

import importlib
import logging
import os
from typing import Any, Collection

from opentelemetry.instrumentation.dependencies import DependencyConflict, get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from ..core import settings_from
from .package import _instruments, _instruments_any

__all__ = ["ApiInstrumentor", "CONTRIB", "set_excluded_urls_default"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

# Entry point name of the contrib package -> (its instrumentor, the library it needs, accepts excluded_urls).
CONTRIB: dict[str, tuple[str, str, bool]] = {
    "fastapi": ("opentelemetry.instrumentation.fastapi:FastAPIInstrumentor", "fastapi >= 0.92", True),
    "requests": ("opentelemetry.instrumentation.requests:RequestsInstrumentor", "requests >= 2.0", True),
    "httpx": ("opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor", "httpx >= 0.18.0", False),
    # httpx's successor (the OpenAI client 3.x speaks HTTP through it): its requests are children
    # of the client's chat spans.
    "httpx2": ("opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor", "httpx2 >= 2.0.0", False),
    # ccxt.async_support talks HTTP through aiohttp: its requests become children of the ccxt spans.
    "aiohttp-client": ("opentelemetry.instrumentation.aiohttp_client:AioHttpClientInstrumentor", "aiohttp >= 3.0", False),
}


def set_excluded_urls_default() -> None:
    """``opentelemetry_pre_instrument`` hook: health probes are not traced unless the user says otherwise."""
    from ...config import OPTIONS_BY_NAME

    option = OPTIONS_BY_NAME["excluded_urls"]
    if not os.environ.get(option.env or ""):
        os.environ[option.env] = option.default  # type: ignore[index]


class ApiInstrumentor(BaseInstrumentor):
    """Enables the contrib HTTP server and client instrumentations that are installed."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _check_dependency_conflicts(self) -> DependencyConflict | None:
        return get_dependency_conflicts(_instruments, _instruments_any)

    def _instrument(self, **kwargs: Any) -> None:
        settings = settings_from(kwargs)
        disabled = set(settings.disabled_instrumentations)
        if settings.excluded_urls:
            # httpx's instrumentation reads its exclusions only from the environment.
            os.environ.setdefault("OTEL_PYTHON_EXCLUDED_URLS", settings.excluded_urls)
        self._enabled: list[Any] = []
        for name, (path, requirement, takes_excluded_urls) in CONTRIB.items():
            if name in disabled or get_dependency_conflicts([requirement]) is not None:
                continue
            module_name, _, class_name = path.partition(":")
            try:
                instrumentor = getattr(importlib.import_module(module_name), class_name)()
            except ImportError:
                _logger.debug("otel-monitoring: %s is installed but %s is not", name, module_name)
                continue
            if instrumentor.is_instrumented_by_opentelemetry:
                continue
            options: dict[str, Any] = {"tracer_provider": kwargs.get("tracer_provider"),
                                       "meter_provider": kwargs.get("meter_provider")}
            if takes_excluded_urls and settings.excluded_urls:
                options["excluded_urls"] = settings.excluded_urls
            if name == "fastapi":
                options["exclude_spans"] = ["receive", "send"]  # ASGI message spans: noise per request
            instrumentor.instrument(**{k: v for k, v in options.items() if v is not None})
            self._enabled.append(instrumentor)

    def _uninstrument(self, **kwargs: Any) -> None:
        while self._enabled:
            self._enabled.pop().uninstrument()
