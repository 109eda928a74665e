"""Where the stack's files are: the collector, Jaeger and Prometheus configs, alert rules and Grafana
dashboards (the repository's ``collector-config/``) and the build script (``scripts/build-stack.sh``).

A wheel carries both as package data (``otel_monitoring/stack/collector_config`` and
``otel_monitoring/stack/scripts``, mapped from the repository's top-level directories by
pyproject.toml); a checkout or an editable install reads the repository's own directories.
``OTEL_MONITORING_COLLECTOR_CONFIG`` (or ``--config-dir``) names another config directory.
"""

from __future__ import annotations

import os
from typing import Mapping

CONFIG_DIR_ENV = "OTEL_MONITORING_COLLECTOR_CONFIG"

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_REPO_DIR = os.path.dirname(os.path.dirname(_PACKAGE_DIR))

# (inside the installed package, in a checkout)
_CONFIG_DIRS = (os.path.join(_PACKAGE_DIR, "collector_config"), os.path.join(_REPO_DIR, "collector-config"))
_BUILD_SCRIPTS = (os.path.join(_PACKAGE_DIR, "scripts", "build-stack.sh"), os.path.join(_REPO_DIR, "scripts", "build-stack.sh"))


def _first_existing(candidates: tuple[str, ...], is_ok) -> str:
    for candidate in candidates:
        if is_ok(candidate):
            return candidate
    return candidates[-1]  # the checkout's path, named in error messages


def default_config_dir(environ: Mapping[str, str] = os.environ) -> str:
    """The config directory: ``OTEL_MONITORING_COLLECTOR_CONFIG``, else the packaged copy, else the checkout's."""
    explicit = environ.get(CONFIG_DIR_ENV)
    if explicit:
        return os.path.abspath(explicit)
    return _first_existing(_CONFIG_DIRS, lambda path: os.path.isfile(os.path.join(path, "agent.yaml")))


def build_script() -> str:
    """The build script: the packaged copy, else the checkout's."""
    return _first_existing(_BUILD_SCRIPTS, os.path.isfile)
