"""``otel-monitoring stack up|down|status``: the local stack as background processes that outlive
the command, with a state directory holding their logs, pid files, data and the ports in use.

Start order is Jaeger, then the collector (its exporter to Jaeger connects at once), then
Prometheus (it scrapes the collector); each must be healthy before the next starts. ``down``
stops them in reverse order, by the pids it recorded.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict
from typing import Callable

from .binaries import MissingBinary, find_binary
from .components import (
    CONFIG_DIR,
    StackPorts,
    collector_spec,
    jaeger_spec,
    prometheus_spec,
    stack_scrape_targets,
    write_prometheus_config,
)
from .process import ManagedProcess, ProcessSpec, StackError, http_ok, pid_alive, stop_pid

ORDER = ("jaeger", "collector", "prometheus")
BINARY_OF = {"jaeger": "jaeger", "collector": "otelcol", "prometheus": "prometheus"}


def default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "otel-monitoring", "stack")


class Stack:
    def __init__(self, state_dir: str, ports: StackPorts | None = None, config_dir: str = CONFIG_DIR,
                 out: Callable[[str], None] = print) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.ports = ports or StackPorts()
        self.config_dir = config_dir
        self.out = out

    # --- state files ---
    def _path(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    def _pid_path(self, name: str) -> str:
        return self._path(f"{name}.pid")

    def _read_pid(self, name: str) -> int | None:
        try:
            with open(self._pid_path(name), encoding="ascii") as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def _owned_pid(self, name: str) -> int | None:
        """The recorded pid, if that process is alive and still our program (pids get reused)."""
        pid = self._read_pid(name)
        if pid is None or not pid_alive(pid):
            return None
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv0 = handle.read().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            return pid
        return pid if BINARY_OF[name] in os.path.basename(argv0) else None

    def load_ports(self) -> None:
        try:
            with open(self._path("state.json"), encoding="utf-8") as handle:
                self.ports = StackPorts(**json.load(handle)["ports"])
        except (OSError, ValueError, KeyError, TypeError):
            pass

    # --- commands ---
    def specs(self) -> dict[str, ProcessSpec]:
        binaries = {name: find_binary(BINARY_OF[name]) for name in ORDER}  # all or nothing: MissingBinary
        prometheus_config = write_prometheus_config(
            self._path("prometheus.yml"), stack_scrape_targets(self.ports),
            template_path=os.path.join(self.config_dir, "prometheus", "prometheus.yml"),
        )
        return {
            "jaeger": jaeger_spec(binaries["jaeger"], self.ports, os.path.join(self.config_dir, "jaeger.yaml")),
            "collector": collector_spec(binaries["collector"], self.ports, self._path("collector-data"),
                                        os.path.join(self.config_dir, "agent.yaml")),
            "prometheus": prometheus_spec(binaries["prometheus"], self.ports, prometheus_config,
                                          self._path("prometheus-data")),
        }

    def up(self, timeout: float = 60.0) -> int:
        running = [name for name in ORDER if self._owned_pid(name)]
        if running:
            self.load_ports()
            self.out(f"stack already running ({', '.join(running)}); state in {self.state_dir}")
            return self.status()
        missing = [name for name in ("agent.yaml", "jaeger.yaml", os.path.join("prometheus", "prometheus.yml"))
                   if not os.path.isfile(os.path.join(self.config_dir, name))]
        if missing:
            self.out(f"otel-monitoring stack: {', '.join(missing)} not found in {self.config_dir}; pass --config-dir "
                     "with the collector-config directory of the otel-monitoring repository")
            return 1
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            specs = self.specs()
        except MissingBinary as error:
            self.out(f"otel-monitoring stack: {error}")
            return 1
        busy = [f"{port_name.replace('_', '-')} {getattr(self.ports, port_name)}"
                for port_name in StackPorts.port_names() if not port_free(self.ports.host, getattr(self.ports, port_name))]
        if busy:
            self.out(f"otel-monitoring stack: ports in use on {self.ports.host}: {', '.join(busy)} "
                     "(stop what uses them, or choose others with --<name>-port)")
            return 1
        with open(self._path("state.json"), "w", encoding="utf-8") as handle:
            json.dump({"ports": asdict(self.ports)}, handle, indent=2)
        started: list[ManagedProcess] = []
        for name in ORDER:
            process = ManagedProcess(specs[name], self._path(f"{name}.log"), self._pid_path(name))
            try:
                process.start(timeout)
            except (StackError, OSError) as error:
                self.out(f"otel-monitoring stack: {error}")
                for other in reversed(started):
                    other.stop()
                return 1
            started.append(process)
            self.out(f"  {name:<10} pid {process.pid:<8} healthy")
        self.out(self.summary())
        return 0

    def down(self) -> int:
        stopped = []
        for name in reversed(ORDER):
            pid = self._owned_pid(name)
            if pid is not None and stop_pid(pid):
                stopped.append(name)
            if os.path.exists(self._pid_path(name)):
                os.unlink(self._pid_path(name))
        self.out(f"stopped: {', '.join(stopped)}" if stopped else "stack was not running")
        return 0

    def health_urls(self) -> dict[str, str]:
        p = self.ports
        return {
            "jaeger": f"http://{p.addr('jaeger_query')}/api/services",
            "collector": f"http://{p.addr('collector_health')}/",
            "prometheus": f"http://{p.addr('prometheus')}/-/ready",
        }

    def status(self) -> int:
        self.load_ports()
        healthy = 0
        for name, url in self.health_urls().items():
            pid = self._owned_pid(name)
            state = "stopped" if pid is None else ("healthy" if http_ok(url) else "UNHEALTHY")
            healthy += state == "healthy"
            self.out(f"  {name:<10} {state:<9} pid {pid or '-':<8} {url}")
        if healthy == len(ORDER):
            self.out(self.summary())
            return 0
        return 3 if healthy == 0 else 1

    def summary(self) -> str:
        p = self.ports
        return "\n".join([
            f"OTLP endpoint  http://{p.addr('otlp_grpc')} (gRPC), http://{p.addr('otlp_http')} (HTTP)",
            f"  e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://{p.addr('otlp_grpc')} otel-monitoring demo --exporter otlp",
            f"Jaeger         http://{p.addr('jaeger_query')}",
            f"Prometheus     http://{p.addr('prometheus')}",
            f"files, logs    {self.state_dir}",
        ])


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
