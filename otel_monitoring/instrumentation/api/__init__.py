"""API instrumentation: FastAPI's own telemetry or the contrib FastAPI/Starlette instrumentation,
and the contrib requests, httpx and aiohttp-client instrumentations.

Nothing is rewritten here: ``ApiInstrumentor`` enables each contrib instrumentor whose library is
installed, with the pipeline's providers and the health-probe exclusion (``excluded_urls``,
``OTEL_PYTHON_EXCLUDED_URLS``). Each one is enabled when the application imports its own library
(a post-import hook on that library alone): the contrib modules import their library, so enabling
one while another is being imported (fastapi half-initialised because starlette finished first)
would fail. ``configure()`` and, through the distro, ``opentelemetry-instrument`` both use it; the
``set_excluded_urls_default`` pre-instrument hook gives the same defaults to contrib instrumentors
a user enables by other means.

One request is one server span and one count: a FastAPI that ships its own telemetry
(``fastapi.telemetry``, FastAPI >= 0.165) traces and measures itself, so the contrib FastAPI
instrumentor is not enabled for it (both would count every request); ``NativeFastApiDefaults`` gives
its apps the probe exclusion and the pipeline's providers. Older FastAPI gets the contrib instrumentor.
Both emit the stable HTTP conventions (``http.server.request.duration`` in s): the contrib ones
because ``prefer_stable_http_conventions`` opts in unless the user chose otherwise.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import threading
from typing import Any, Callable, Collection

import wrapt

from opentelemetry.instrumentation.dependencies import DependencyConflict, get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from ..core import settings_from
from .package import _instruments, _instruments_any

__all__ = ["ApiInstrumentor", "CONTRIB", "NativeFastApiDefaults", "fastapi_has_native_telemetry",
           "prefer_stable_http_conventions", "set_excluded_urls_default"]

SEMCONV_OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"
STABLE_HTTP = "http"
DISABLED_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"

_logger = logging.getLogger("otel_monitoring.instrumentation")

# Entry point name of the contrib package -> (its instrumentor, the library it needs, accepts
# excluded_urls, the module whose import enables it).
CONTRIB: dict[str, tuple[str, str, bool, str]] = {
    "fastapi": ("opentelemetry.instrumentation.fastapi:FastAPIInstrumentor", "fastapi >= 0.92", True, "fastapi"),
    "requests": ("opentelemetry.instrumentation.requests:RequestsInstrumentor", "requests >= 2.0", True, "requests"),
    "httpx": ("opentelemetry.instrumentation.httpx:HTTPXClientInstrumentor", "httpx >= 0.18.0", False, "httpx"),
    # httpx's successor (the OpenAI client 3.x speaks HTTP through it): its requests are children
    # of the client's chat spans.
    "httpx2": ("opentelemetry.instrumentation.httpx:HTTPX2ClientInstrumentor", "httpx2 >= 2.0.0", False, "httpx2"),
    # ccxt.async_support talks HTTP through aiohttp: its requests become children of the ccxt spans.
    "aiohttp-client": ("opentelemetry.instrumentation.aiohttp_client:AioHttpClientInstrumentor",
                       "aiohttp >= 3.0", False, "aiohttp"),
}


def prefer_stable_http_conventions() -> None:
    """The contrib HTTP instrumentations emit the old ``http.server.duration`` in ms unless asked for
    the stable conventions: ask, unless the user set ``OTEL_SEMCONV_STABILITY_OPT_IN`` already.
    Must run before the first contrib instrumentor is enabled (they read the variable once)."""
    if not os.environ.get(SEMCONV_OPT_IN, "").strip():
        os.environ[SEMCONV_OPT_IN] = STABLE_HTTP


def fastapi_has_native_telemetry() -> bool:
    """Whether the installed FastAPI traces and measures itself (``fastapi.telemetry``), found
    without importing FastAPI."""
    try:
        spec = importlib.util.find_spec("fastapi")
    except (ImportError, ValueError):
        return False
    locations = list(spec.submodule_search_locations or []) if spec else []
    return any(os.path.exists(os.path.join(location, "telemetry", "__init__.py")) for location in locations)


def disable_contrib_fastapi_for_native() -> None:
    """Under ``opentelemetry-instrument`` (distro, before instrumentors load): FastAPI's own
    telemetry is the one kept, so the contrib FastAPI instrumentor is listed as disabled."""
    if not fastapi_has_native_telemetry():
        return
    disabled = [name.strip() for name in os.environ.get(DISABLED_VARIABLE, "").split(",") if name.strip()]
    if "fastapi" not in disabled:
        os.environ[DISABLED_VARIABLE] = ",".join([*disabled, "fastapi"])


def _probe_excluder(excluded_urls: str) -> Callable[[Any], bool]:
    """FastAPI's ``telemetry["exclude"]``: the contrib instrumentations' URL exclusion, on the scope."""
    from opentelemetry.util.http import parse_excluded_urls

    excluded = parse_excluded_urls(excluded_urls)

    def exclude(scope: Any) -> bool:
        try:
            host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
            query = (scope.get("query_string") or b"").decode("latin-1")
            url = f"{scope.get('scheme', 'http')}://{host}{scope.get('path', '')}" + (f"?{query}" if query else "")
            return bool(excluded and excluded.url_disabled(url))
        except Exception:  # noqa: BLE001 - a malformed scope is traced, never failed
            return False

    return exclude


class NativeFastApiDefaults:
    """Gives every ``FastAPI(...)`` made from now on our defaults for its own telemetry, under what
    the app passes in ``telemetry=``: the health-probe exclusion, the pipeline's providers, and no
    per-dependency/endpoint/serialization operation spans (one server span per request, the same
    trace shape as the contrib instrumentor)."""

    def __init__(self, excluded_urls: str | None, tracer_provider: Any = None, meter_provider: Any = None):
        self.defaults: dict[str, Any] = {"operation_spans": False}
        if excluded_urls:
            self.defaults["exclude"] = _probe_excluder(excluded_urls)
        if tracer_provider is not None:
            self.defaults["tracer_provider"] = tracer_provider
        if meter_provider is not None:
            self.defaults["meter_provider"] = meter_provider
        self.installed = False

    def _init_wrapper(self, wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        if self.installed:
            kwargs["telemetry"] = {**self.defaults, **(kwargs.get("telemetry") or {})}
        return wrapped(*args, **kwargs)

    def install(self) -> None:
        """Wraps ``FastAPI.__init__`` now if FastAPI is imported, else when it is."""
        self.installed = True
        wrapt.register_post_import_hook(self._wrap, "fastapi.applications")

    def _wrap(self, module: Any) -> None:
        if self.installed and not isinstance(module.FastAPI.__init__, wrapt.FunctionWrapper):
            wrapt.wrap_function_wrapper(module, "FastAPI.__init__", self._init_wrapper)

    def uninstall(self) -> None:
        self.installed = False  # import hooks cannot be unregistered: make them do nothing
        import sys

        module = sys.modules.get("fastapi.applications")
        init = getattr(getattr(module, "FastAPI", None), "__init__", None)
        if isinstance(init, wrapt.FunctionWrapper) and getattr(init, "_self_wrapper", None) == self._init_wrapper:
            module.FastAPI.__init__ = init.__wrapped__  # type: ignore[union-attr]


def set_excluded_urls_default() -> None:
    """``opentelemetry_pre_instrument`` hook: health probes are not traced unless the user says
    otherwise, the HTTP instrumentations use the stable conventions, and a FastAPI with its own
    telemetry gets the same probe exclusion."""
    from ...config import OPTIONS_BY_NAME

    option = OPTIONS_BY_NAME["excluded_urls"]
    if not os.environ.get(option.env or ""):
        os.environ[option.env] = option.default  # type: ignore[index]
    prefer_stable_http_conventions()
    if fastapi_has_native_telemetry():
        NativeFastApiDefaults(os.environ.get(option.env or "")).install()


def _initializing(module_name: str) -> bool:
    """True while ``module_name`` is being imported (it is in sys.modules, half executed)."""
    module = sys.modules.get(module_name)
    return module is not None and bool(getattr(getattr(module, "__spec__", None), "_initializing", False))


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
        prefer_stable_http_conventions()
        self._enabled: list[Any] = []
        self._deferred: set[str] = set()
        self._lock = threading.Lock()
        self._stopped = False
        self._native: NativeFastApiDefaults | None = None
        for name, (_path, requirement, _takes_excluded_urls, module) in CONTRIB.items():
            if name in disabled or get_dependency_conflicts([requirement]) is not None:
                continue
            if name == "fastapi" and fastapi_has_native_telemetry():
                self._native = NativeFastApiDefaults(settings.excluded_urls, kwargs.get("tracer_provider"),
                                                     kwargs.get("meter_provider"))
                self._native.install()
                continue
            if module in sys.modules:
                self._enable(name, settings, kwargs)
            else:
                wrapt.register_post_import_hook(
                    lambda _module, name=name: self._enable(name, settings, kwargs), module)

    def _enable(self, name: str, settings: Any, kwargs: dict[str, Any]) -> None:
        """Enable one contrib instrumentor; runs at once or from its library's import hook, in any
        thread. Never raises into the import that triggered it."""
        path, _requirement, takes_excluded_urls, _module = CONTRIB[name]
        module_name, _, class_name = path.partition(":")
        with self._lock:
            if self._stopped:
                return
            if _initializing(module_name):
                # This thread is importing that contrib module (one contrib module serves httpx and
                # httpx2; importing it imports httpx2, whose hook lands here): the _enable that
                # imports it retries this one when the import is complete.
                self._deferred.add(name)
                return
        try:
            instrumentor = getattr(importlib.import_module(module_name), class_name)()
            if instrumentor.is_instrumented_by_opentelemetry:
                self._retry_deferred(settings, kwargs)
                return
            options: dict[str, Any] = {"tracer_provider": kwargs.get("tracer_provider"),
                                       "meter_provider": kwargs.get("meter_provider")}
            if takes_excluded_urls and settings.excluded_urls:
                options["excluded_urls"] = settings.excluded_urls
            if name == "fastapi":
                options["exclude_spans"] = ["receive", "send"]  # ASGI message spans: noise per request
            instrumentor.instrument(**{k: v for k, v in options.items() if v is not None})
        except ImportError:
            _logger.debug("otel-monitoring: %s is installed but %s is not", name, module_name, exc_info=True)
            self._retry_deferred(settings, kwargs)
            return
        except Exception:  # an import of the user's must never fail because of us
            _logger.warning("otel-monitoring: the %s instrumentation failed to start; continuing without it",
                            name, exc_info=True)
            self._retry_deferred(settings, kwargs)
            return
        with self._lock:
            self._enabled.append(instrumentor)
        self._retry_deferred(settings, kwargs)

    def _retry_deferred(self, settings: Any, kwargs: dict[str, Any]) -> None:
        with self._lock:
            retry = {name for name in self._deferred if not _initializing(CONTRIB[name][0].partition(":")[0])}
            self._deferred -= retry
        for name in retry:
            self._enable(name, settings, kwargs)

    def _uninstrument(self, **kwargs: Any) -> None:
        if getattr(self, "_native", None) is not None:
            self._native.uninstall()  # type: ignore[union-attr]
            self._native = None
        with self._lock:
            self._stopped = True  # import hooks cannot be unregistered: make them do nothing
            enabled, self._enabled = self._enabled, []
        while enabled:
            enabled.pop().uninstrument()
