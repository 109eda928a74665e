"""The plug-in for ``opentelemetry-instrument``: the same pipeline as ``configure()``, no code change.

``opentelemetry-instrument python app.py`` loads the distro (which may set defaults), then the
configurator (which builds the pipeline), then every ``opentelemetry_instrumentor`` entry point
not listed in ``OTEL_PYTHON_DISABLED_INSTRUMENTATIONS``. Loading an entry point imports the
library it instruments (the contrib FastAPI module imports fastapi, ours import ccxt, langchain or
chromadb when instrumenting), which would make every program pay for every installed library. So
the distro lists our entry points and the contrib HTTP ones that ``configure()`` manages among the
disabled ones for the loader, and the configurator runs ``configure()`` itself, instrumentation
included: each instrumentor attaches when the program imports its library, with exactly the
settings ``configure()`` applies (FastAPI's ASGI message spans left out, health probes excluded).
Other packages' instrumentor entry points (an LLM client's, say) get the same treatment: each is
deferred to a post-import hook on the library its distribution declares under the ``instruments``
extra, and loaded, as the stock loader would, when the program imports that library. An entry
point whose library cannot be told is loaded at start-up as usual. The names the distro added are
kept in ``OTEL_MONITORING_DISTRO_DISABLED`` so that child processes (which inherit the variable)
still tell the user's own list from ours.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import re
import sys
import threading
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _BaseConfigurator

_logger = logging.getLogger("otel_monitoring")

DISABLED_VARIABLE = "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS"
ADDED_VARIABLE = "OTEL_MONITORING_DISTRO_DISABLED"


def _split(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def managed_entry_points() -> list[str]:
    """Entry point names configure() enables itself (ours and the contrib HTTP ones), plus the contrib
    system metrics: our meters produce its default set themselves (and start the instrumentor for the
    opt-in extras only), so the loader starting it too would report every system metric twice."""
    import importlib

    from .instrumentation import INSTRUMENTORS
    from .instrumentation.api import CONTRIB

    bundled: list[str] = []
    for module, bundle in (("genai_clients", "GenAIClientsInstrumentor"), ("storage", "StorageInstrumentor")):
        try:  # contrib bundles configure() enables (their modules import no instrumented library)
            found = getattr(importlib.import_module(f"otel_monitoring.instrumentation.{module}"), bundle)
            bundled.extend(found.MEMBERS)
        except (ImportError, AttributeError):
            continue
    return [*INSTRUMENTORS, *CONTRIB, *bundled, "system_metrics"]


def user_disabled(environ: Any = os.environ) -> list[str]:
    """The user's own OTEL_PYTHON_DISABLED_INSTRUMENTATIONS, without the names the distro added."""
    added = set(_split(environ.get(ADDED_VARIABLE)))
    return [name for name in _split(environ.get(DISABLED_VARIABLE)) if name not in added]


# Entry point name -> (the entry point, the modules whose import loads it), set by the distro.
_deferred: dict[str, tuple[Any, list[str]]] = {}
_loaded: set[str] = set()
_deferred_lock = threading.Lock()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def library_modules(entry_point: Any, modules_by_dist: dict[str, list[str]]) -> list[str]:
    """The top-level modules of the libraries an instrumentor's distribution instruments (its
    ``instruments`` / ``instruments-any`` extras), or [] if they cannot be told."""
    from packaging.requirements import InvalidRequirement, Requirement

    dist = getattr(entry_point, "dist", None)
    found: list[str] = []
    for text in (dist.requires or []) if dist is not None else []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or "instruments" not in str(requirement.marker):
            continue
        found.extend(modules_by_dist.get(_canonical(requirement.name), []))
    return sorted(set(found))


def _modules_by_distribution() -> dict[str, list[str]]:
    inverted: dict[str, list[str]] = {}
    for module, dists in importlib.metadata.packages_distributions().items():
        if module.startswith("_") or not module.isidentifier():
            continue
        for dist in dists:
            inverted.setdefault(_canonical(dist), []).append(module)
    return inverted


def _defer_other_instrumentors(disabled: list[str]) -> list[str]:
    """Choose the other packages' entry points to load on import; returns their names."""
    managed = set(managed_entry_points())
    candidates = [ep for ep in importlib.metadata.entry_points(group="opentelemetry_instrumentor")
                  if ep.name not in managed and ep.name not in disabled]
    if not candidates:
        return []
    modules_by_dist = _modules_by_distribution()
    names = []
    for entry_point in candidates:
        modules = library_modules(entry_point, modules_by_dist)
        if modules:
            _deferred[entry_point.name] = (entry_point, modules)
            names.append(entry_point.name)
    return names


def _load_deferred(name: str) -> None:
    """Load and enable one deferred instrumentor, as opentelemetry-instrument's loader would."""
    with _deferred_lock:
        if name in _loaded:
            return
        _loaded.add(name)
    entry_point, _modules = _deferred[name]
    try:
        from opentelemetry.instrumentation.dependencies import get_dist_dependency_conflicts

        conflict = get_dist_dependency_conflicts(entry_point.dist)
        if conflict:
            _logger.debug("otel-monitoring: skipping instrumentor %s: %s", name, conflict)
            return
        entry_point.load()().instrument(skip_dep_check=True)
    except Exception:  # the program's import must not fail because of an instrumentor
        _logger.warning("otel-monitoring: instrumentor %s failed to start; continuing without it", name,
                        exc_info=True)


def attach_deferred_instrumentors() -> None:
    """Load each deferred instrumentor now if its library is imported, else when it is."""
    import wrapt

    for name, (_entry_point, modules) in list(_deferred.items()):
        if any(module in sys.modules for module in modules):
            _load_deferred(name)
            continue
        for module in modules:
            wrapt.register_post_import_hook(lambda _module, name=name: _load_deferred(name), module)


class OtelMonitoringDistro(BaseDistro):
    def _configure(self, **kwargs: Any) -> None:
        from .instrumentation.api import prefer_stable_http_conventions

        # Before any instrumentor loads: the contrib HTTP instrumentations read it once.
        prefer_stable_http_conventions()
        disabled = _split(os.environ.get(DISABLED_VARIABLE))
        added = _split(os.environ.get(ADDED_VARIABLE))
        user = user_disabled()
        try:
            others = _defer_other_instrumentors(user)
        except Exception:  # then they load at start-up, as they would without us
            _logger.debug("otel-monitoring: cannot defer other instrumentors", exc_info=True)
            others = []
        for name in [*managed_entry_points(), *others]:
            if name not in disabled:
                disabled.append(name)
                added.append(name)
        os.environ[DISABLED_VARIABLE] = ",".join(disabled)
        os.environ[ADDED_VARIABLE] = ",".join(dict.fromkeys(added))


class OtelMonitoringConfigurator(_BaseConfigurator):
    def _configure(self, **kwargs: Any) -> None:
        from .config import ConfigError
        from .sdk import configure

        options: dict[str, Any] = {}
        if os.environ.get(ADDED_VARIABLE) is not None:
            options["disabled_instrumentations"] = ",".join(user_disabled())
        try:
            configure(**options)
        except ConfigError as error:
            # opentelemetry-instrument must not stop the application over telemetry settings.
            _logger.error("otel-monitoring: telemetry is disabled for this run: %s", error)
            return
        attach_deferred_instrumentors()
