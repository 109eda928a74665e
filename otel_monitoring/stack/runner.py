"""``otel-monitoring stack up|down|status``: the local stack as background processes that outlive
the command, with a state directory holding their logs, pid files, data and the ports in use.

Start order is Jaeger, then the collector (its exporter to Jaeger connects at once), then
Prometheus (it scrapes the collector); each must be healthy before the next starts. ``down``
stops them in reverse order, by the pids it recorded. ``PROGRAMS`` is the one table of programs:
a new one is a row there and a ``_<name>_spec`` method.
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
    write_jaeger_config,
    write_prometheus_config,
)
from .jaeger_ui import NO_UI_HINT, JaegerUIError, resolve_assets
from .process import ManagedProcess, ProcessSpec, StackError, http_ok, pid_alive, stop_pid

# name -> the program (binaries.find_binary name) it runs, in start order; the config files each
# needs (relative to the config directory). Stack._<name>_spec builds its command line.
PROGRAMS = {
    "jaeger": ("jaeger", ("jaeger.yaml",)),
    "collector": ("otelcol", ("agent.yaml",)),
    "prometheus": ("prometheus", (os.path.join("prometheus", "prometheus.yml"),)),
}
ORDER = tuple(PROGRAMS)
BINARY_OF = {name: binary for name, (binary, _) in PROGRAMS.items()}


def default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "otel-monitoring", "stack")


class Stack:
    def __init__(self, state_dir: str, ports: StackPorts | None = None, config_dir: str = CONFIG_DIR,
                 out: Callable[[str], None] = print, *, jaeger_ui: str | None = None,
                 jaeger_storage: str = "badger") -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.ports = ports or StackPorts()
        self.config_dir = os.path.abspath(config_dir)
        self.out = out
        self.jaeger_ui = jaeger_ui  # a directory or .tar.gz; None: OTEL_MONITORING_JAEGER_UI, else no UI
        self.jaeger_storage = jaeger_storage
        self._ui_assets: str | None = None

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
                state = json.load(handle)
            self.ports = StackPorts(**state["ports"])
            self._ui_assets = state.get("jaeger_ui")
            self.jaeger_storage = state.get("jaeger_storage", self.jaeger_storage)
        except (OSError, ValueError, KeyError, TypeError):
            pass

    # --- commands ---
    def specs(self) -> dict[str, ProcessSpec]:
        binaries = {name: find_binary(BINARY_OF[name]) for name in ORDER}  # all or nothing: MissingBinary
        return {name: getattr(self, f"_{name}_spec")(binaries[name]) for name in ORDER}

    def write_configs(self) -> None:
        """The generated configs in the state directory (Prometheus' targets, Jaeger's memory store)."""
        write_jaeger_config(self._path("jaeger.yaml"), self.jaeger_storage, os.path.join(self.config_dir, "jaeger.yaml"))
        write_prometheus_config(self._path("prometheus.yml"), stack_scrape_targets(self.ports),
                                template_path=os.path.join(self.config_dir, "prometheus", "prometheus.yml"))

    def _jaeger_spec(self, binary: str) -> ProcessSpec:
        config = (os.path.join(self.config_dir, "jaeger.yaml") if self.jaeger_storage == "badger"
                  else self._path("jaeger.yaml"))
        return jaeger_spec(binary, self.ports, config, data_dir=self._path("jaeger-data"), ui_assets=self._ui_assets)

    def _collector_spec(self, binary: str) -> ProcessSpec:
        return collector_spec(binary, self.ports, self._path("collector-data"), os.path.join(self.config_dir, "agent.yaml"))

    def _prometheus_spec(self, binary: str) -> ProcessSpec:
        return prometheus_spec(binary, self.ports, self._path("prometheus.yml"), self._path("prometheus-data"))

    def up(self, timeout: float = 60.0) -> int:
        running = [name for name in ORDER if self._owned_pid(name)]
        if running:
            self.load_ports()
            self.out(f"stack already running ({', '.join(running)}); state in {self.state_dir}")
            return self.status()
        missing = [path for _, paths in PROGRAMS.values() for path in paths
                   if not os.path.isfile(os.path.join(self.config_dir, path))]
        if missing:
            self.out(f"otel-monitoring stack: {', '.join(missing)} not found in {self.config_dir}; pass --config-dir "
                     "with a copy of the collector-config directory (the installed package carries one)")
            return 1
        try:
            self._ui_assets = resolve_assets(self.jaeger_ui)
        except JaegerUIError as error:
            self.out(f"otel-monitoring stack: {error}")
            return 1
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            self.write_configs()
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
            json.dump({"ports": asdict(self.ports), "jaeger_ui": self._ui_assets,
                       "jaeger_storage": self.jaeger_storage}, handle, indent=2)
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
        if self._ui_assets is None:
            self.out(f"note: {NO_UI_HINT}")
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
        # The specs' own health checks (no binary needed to know where they answer).
        return {name: getattr(self, f"_{name}_spec")(binary).health_url for name, (binary, _) in PROGRAMS.items()}

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
            f"Jaeger         http://{p.addr('jaeger_query')}"
            f"  (UI: {'from ' + self._ui_assets if self._ui_assets else 'not installed'}; "
            f"traces in {'Badger, ' + self._path('jaeger-data') if self.jaeger_storage == 'badger' else 'memory'})",
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
