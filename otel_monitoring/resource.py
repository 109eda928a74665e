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
from . import names


def build_resource(settings: Settings) -> Resource:
    executable = os.path.basename(sys.executable) or "python"
    detected = {
        names.HOST_NAME: socket.gethostname(),
        names.HOST_ARCH: platform.machine().lower(),
        names.OS_TYPE: sys.platform if sys.platform != "win32" else "windows",
        names.PROCESS_PID: os.getpid(),
        names.PROCESS_EXECUTABLE_NAME: executable,
        # Only the program name: full command lines can carry secrets (API keys as arguments).
        names.PROCESS_COMMAND: os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else executable,
        names.PROCESS_RUNTIME_NAME: sys.implementation.name,
        names.PROCESS_RUNTIME_VERSION: platform.python_version(),
        names.TELEMETRY_DISTRO_NAME: "otel-monitoring",
        names.TELEMETRY_DISTRO_VERSION: __version__,
    }
    explicit = dict(settings.resource_attributes)
    if settings.service_name:
        explicit[names.SERVICE_NAME] = settings.service_name
    elif names.SERVICE_NAME not in explicit:
        explicit[names.SERVICE_NAME] = f"unknown_service:{executable}"
    if names.SERVICE_INSTANCE_ID not in explicit:
        # One per process (a forked child gets a new one, see lifecycle): tells apart the workers
        # of one service on one host.
        explicit[names.SERVICE_INSTANCE_ID] = new_instance_id()
    if settings.service_version:
        explicit[names.SERVICE_VERSION] = settings.service_version
    if settings.environment:
        explicit[names.DEPLOYMENT_ENVIRONMENT_NAME] = settings.environment
    # Resource.create adds the SDK's telemetry.sdk.* attributes; our explicit values win over detected ones.
    return Resource.create({**detected, **explicit})
