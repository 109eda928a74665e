"""The Resource every signal carries: service, environment, host and process (semantic conventions)."""

from __future__ import annotations

import os
import platform
import socket
import sys

from opentelemetry.sdk.resources import Resource

from .config import Settings
from .lifecycle import new_instance_id
from .version import __version__


def build_resource(settings: Settings) -> Resource:
    executable = os.path.basename(sys.executable) or "python"
    detected = {
        "host.name": socket.gethostname(),
        "host.arch": platform.machine().lower(),
        "os.type": sys.platform if sys.platform != "win32" else "windows",
        "process.pid": os.getpid(),
        "process.executable.name": executable,
        # Only the program name: full command lines can carry secrets (API keys as arguments).
        "process.command": os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else executable,
        "process.runtime.name": sys.implementation.name,
        "process.runtime.version": platform.python_version(),
        "telemetry.distro.name": "otel-monitoring",
        "telemetry.distro.version": __version__,
    }
    explicit = dict(settings.resource_attributes)
    if settings.service_name:
        explicit["service.name"] = settings.service_name
    elif "service.name" not in explicit:
        explicit["service.name"] = f"unknown_service:{executable}"
    if "service.instance.id" not in explicit:
        # One per process (a forked child gets a new one, see lifecycle): tells apart the workers
        # of one service on one host.
        explicit["service.instance.id"] = new_instance_id()
    if settings.service_version:
        explicit["service.version"] = settings.service_version
    if settings.environment:
        explicit["deployment.environment.name"] = settings.environment
    # Resource.create adds the SDK's telemetry.sdk.* attributes; our explicit values win over detected ones.
    return Resource.create({**detected, **explicit})
