"""Finding the stack's programs: the environment variables ``otel-monitoring stack build --print-env``
(``scripts/build-stack.sh --print-env``) prints, then its cache, then PATH."""

from __future__ import annotations

import glob
import os
import shutil
from typing import Mapping

BUILD_HINT = ('run `otel-monitoring stack build` (in a checkout: scripts/build-stack.sh, or '
              'eval "$(scripts/build-stack.sh --print-env)") to build or install it')

# name -> (environment variable, glob under the cache, names on PATH)
_PROGRAMS = {
    "otelcol": ("OTEL_MONITORING_OTELCOL", "stack/otelcol-*/otelcol-monitoring", ("otelcol-monitoring",)),
    "jaeger": ("OTEL_MONITORING_JAEGER", "stack/jaeger-*/jaeger", ("jaeger",)),
    "prometheus": ("OTEL_MONITORING_PROMETHEUS", None, ("prometheus",)),
    "promtool": ("OTEL_MONITORING_PROMTOOL", None, ("promtool",)),
    # Debian names the binary prometheus-alertmanager; upstream builds call it alertmanager.
    "alertmanager": ("OTEL_MONITORING_ALERTMANAGER", None, ("prometheus-alertmanager", "alertmanager")),
    "amtool": ("OTEL_MONITORING_AMTOOL", None, ("amtool",)),
    "victorialogs": ("OTEL_MONITORING_VICTORIALOGS", "stack/victorialogs-*/victoria-logs", ("victoria-logs",)),
}


class MissingBinary(RuntimeError):
    """A stack program is not installed; the message names the program and the build command."""

    def __init__(self, name: str, detail: str = "") -> None:
        env_var = _PROGRAMS[name][0]
        super().__init__(f"{name} not found{detail} (set {env_var}, or {BUILD_HINT})")
        self.name = name


ENV_VARS = tuple(env_var for env_var, _, _ in _PROGRAMS.values()) + ("OTEL_MONITORING_CACHE",)


def cache_dir(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get("OTEL_MONITORING_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "otel-monitoring")


def find_binary(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """Absolute path of ``name`` (a key of _PROGRAMS: otelcol, jaeger, prometheus, alertmanager, ...), or MissingBinary."""
    env_var, cache_glob, path_names = _PROGRAMS[name]
    explicit = environ.get(env_var)
    if explicit:
        if os.path.isfile(explicit) and os.access(explicit, os.X_OK):
            return explicit
        raise MissingBinary(name, f": {env_var}={explicit} is not an executable file")
    if cache_glob:
        # Newest build first: the cache keeps one directory per version and manifest.
        candidates = sorted(glob.glob(os.path.join(cache_dir(environ), cache_glob)), key=os.path.getmtime, reverse=True)
        for candidate in candidates:
            if os.access(candidate, os.X_OK):
                return candidate
    for path_name in path_names:
        found = shutil.which(path_name)
        if found:
            return found
    raise MissingBinary(name)
