"""The native monitoring stack: the agent collector, Jaeger and Prometheus as local processes.

``assets`` finds the shipped configs and build script; ``binaries`` finds the programs
``otel-monitoring stack build`` (scripts/build-stack.sh) built; ``jaeger_ui`` finds or unpacks Jaeger's
UI assets; ``process`` starts, health-checks and stops one program; ``components`` knows each
program's command line, ports and health check; ``runner`` is ``otel-monitoring stack up|down|status``
(state directory, pid files, start order).
The tests (tests/stackprocs.py) use the same pieces on free ports.
"""

from .binaries import BUILD_HINT, MissingBinary, find_binary
from .components import (
    CONFIG_DIR,
    StackPorts,
    collector_spec,
    jaeger_spec,
    prometheus_spec,
    write_jaeger_config,
    write_prometheus_config,
)
from .process import ManagedProcess, ProcessSpec, StackError

__all__ = [
    "BUILD_HINT",
    "CONFIG_DIR",
    "ManagedProcess",
    "MissingBinary",
    "ProcessSpec",
    "StackError",
    "StackPorts",
    "collector_spec",
    "find_binary",
    "jaeger_spec",
    "prometheus_spec",
    "write_jaeger_config",
    "write_prometheus_config",
]
