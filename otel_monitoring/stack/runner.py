"""``otel-monitoring stack up|down|status``: the local stack as background processes that outlive
the command, with a state directory holding their logs, pid files, data and the ports in use.

Start order is Jaeger and VictoriaLogs, then the collector (its exporters connect at once), then
Alertmanager and Prometheus (it scrapes the collector and notifies Alertmanager); each must be
healthy before the next starts. ``down`` stops them in reverse order, by the pids it recorded.
Prometheus loads the rules generated from ``OTEL_MONITORING_ALERT_RULES`` (the local engine's
rules) plus the stack's own; Alertmanager's configuration comes from the ``OTEL_MONITORING_ALERT_*``
channel settings (alertmanager.py). ``PROGRAMS`` is the one table of programs:
a new one is a row there and a ``_<name>_spec`` method.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
from dataclasses import asdict
from typing import Any, Callable, Mapping

from ..config import ConfigError
from .alertmanager import alertmanager_spec, write_alertmanager_config
from .binaries import MissingBinary, find_binary
from .components import (
    CONFIG_DIR,
    DEFAULT_RETENTION,
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
from .victorialogs import victorialogs_spec

# name -> the program (binaries.find_binary name) it runs, in start order; the config files each
# needs (relative to the config directory). Stack._<name>_spec builds its command line.
PROGRAMS = {
    "jaeger": ("jaeger", ("jaeger.yaml",)),
    "victorialogs": ("victorialogs", ()),
    "collector": ("otelcol", ("agent.yaml",)),
    "alertmanager": ("alertmanager", ()),
    "prometheus": ("prometheus", (os.path.join("prometheus", "prometheus.yml"),)),
}
ORDER = tuple(PROGRAMS)
BINARY_OF = {name: binary for name, (binary, _) in PROGRAMS.items()}
# What the running program's argv[0] contains, where it differs from the binary's name above.
_PROGRAM_FILE = {"victorialogs": "victoria-logs"}
GENERATED_RULES = "otel-monitoring.yml"  # the rules file's export, as collector-config ships it


def default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "otel-monitoring", "stack")


class Stack:
    def __init__(self, state_dir: str, ports: StackPorts | None = None, config_dir: str = CONFIG_DIR,
                 out: Callable[[str], None] = print, *, jaeger_ui: str | None = None,
                 jaeger_storage: str = "badger", retention: str = DEFAULT_RETENTION,
                 environ: Mapping[str, str] | None = None) -> None:
        self.state_dir = os.path.abspath(state_dir)
        self.ports = ports or StackPorts()
        self.config_dir = os.path.abspath(config_dir)
        self.out = out
        self.jaeger_ui = jaeger_ui  # a directory or .tar.gz; None: OTEL_MONITORING_JAEGER_UI, else no UI
        self.jaeger_storage = jaeger_storage
        self._ui_assets: str | None = None
        self.retention = retention  # Prometheus' and VictoriaLogs'
        self.environ = os.environ if environ is None else environ  # OTEL_MONITORING_ALERT_* settings
        self._alert_settings: Any = None
        self._ruleset: Any = None

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
        return pid if _PROGRAM_FILE.get(name, BINARY_OF[name]) in os.path.basename(argv0) else None

    def load_ports(self) -> None:
        try:
            with open(self._path("state.json"), encoding="utf-8") as handle:
                state = json.load(handle)
            self.ports = StackPorts(**{**asdict(StackPorts()), **state["ports"]})
            self.retention = state.get("retention", self.retention)
            self._ui_assets = state.get("jaeger_ui")
            self.jaeger_storage = state.get("jaeger_storage", self.jaeger_storage)
        except (OSError, ValueError, KeyError, TypeError):
            pass

    # --- commands ---
    def specs(self) -> dict[str, ProcessSpec]:
        binaries = {name: find_binary(BINARY_OF[name]) for name in ORDER}  # all or nothing: MissingBinary
        return {name: getattr(self, f"_{name}_spec")(binaries[name]) for name in ORDER}

    def write_configs(self) -> None:
        """The generated configs in the state directory (Prometheus' targets and rules, Jaeger's memory
        store, Alertmanager's channels). A bad setting or rules file raises ConfigError naming it."""
        write_jaeger_config(self._path("jaeger.yaml"), self.jaeger_storage, os.path.join(self.config_dir, "jaeger.yaml"))
        rules_dir = self.write_rules()
        write_alertmanager_config(self._path("alertmanager.yml"), self._alert_settings, self._ruleset)
        write_prometheus_config(self._path("prometheus.yml"), stack_scrape_targets(self.ports),
                                template_path=os.path.join(self.config_dir, "prometheus", "prometheus.yml"),
                                rules_dir=rules_dir, alertmanagers=[self.ports.addr("alertmanager")])

    def write_rules(self) -> str:
        """The rules Prometheus loads: OTEL_MONITORING_ALERT_RULES exported (the same rules the local
        engine evaluates; ``none``: no rules of the file) plus the other shipped rule files."""
        from ..config import load_settings
        from ..local.files import atomic_write_text
        from ..local.prometheus import render_prometheus_rules
        from ..local.rules import load_rules

        self._alert_settings = load_settings(environ=self.environ)
        rules_dir = self._path("rules")
        os.makedirs(rules_dir, exist_ok=True)
        for old in glob.glob(os.path.join(rules_dir, "*.yml")):
            os.unlink(old)
        self._ruleset = None
        if self._alert_settings.alert_rules != "none":
            self._ruleset = load_rules(self._alert_settings.alert_rules, strict=True)  # RuleError names rule and field
            atomic_write_text(os.path.join(rules_dir, GENERATED_RULES), render_prometheus_rules(self._ruleset))
        for shipped in glob.glob(os.path.join(self.config_dir, "prometheus", "rules", "*.yml")):
            if os.path.basename(shipped) != GENERATED_RULES:
                shutil.copyfile(shipped, os.path.join(rules_dir, os.path.basename(shipped)))
        return rules_dir

    def _jaeger_spec(self, binary: str) -> ProcessSpec:
        config = (os.path.join(self.config_dir, "jaeger.yaml") if self.jaeger_storage == "badger"
                  else self._path("jaeger.yaml"))
        return jaeger_spec(binary, self.ports, config, data_dir=self._path("jaeger-data"), ui_assets=self._ui_assets)

    def _collector_spec(self, binary: str) -> ProcessSpec:
        return collector_spec(binary, self.ports, self._path("collector-data"), os.path.join(self.config_dir, "agent.yaml"))

    def _prometheus_spec(self, binary: str) -> ProcessSpec:
        return prometheus_spec(binary, self.ports, self._path("prometheus.yml"), self._path("prometheus-data"),
                               self.retention)

    def _victorialogs_spec(self, binary: str) -> ProcessSpec:
        return victorialogs_spec(binary, self.ports.addr("victorialogs"), self._path("victorialogs-data"), self.retention)

    def _alertmanager_spec(self, binary: str) -> ProcessSpec:
        return alertmanager_spec(binary, self.ports.addr("alertmanager"), self._path("alertmanager.yml"),
                                 self._path("alertmanager-data"))

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
        except (MissingBinary, ConfigError) as error:
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
                       "jaeger_storage": self.jaeger_storage, "retention": self.retention}, handle, indent=2)
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
            self.out(f"  {name:<12} pid {process.pid:<8} healthy")
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
            self.out(f"  {name:<12} {state:<9} pid {pid or '-':<8} {url}")
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
            f"Prometheus     http://{p.addr('prometheus')}  (retention {self.retention})",
            f"Alertmanager   http://{p.addr('alertmanager')}",
            f"Logs           http://{p.addr('victorialogs')}/select/vmui/  (otel-monitoring logs)",
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


def add_state_dir_argument(parser: Any) -> None:
    """``--state-dir`` for a command that talks to the running stack: where `stack up` recorded the
    ports it started the programs on (the same default as `stack`'s own option)."""
    parser.add_argument("--state-dir", default=None, metavar="DIR",
                        help="state directory of the stack `otel-monitoring stack up` runs, whose ports are "
                             f"used (default {default_state_dir()}; pass the one given to `stack up --state-dir`)")


def running_stack_url(port_name: str, state_dir: str | None = None) -> str | None:
    """``http://host:port`` of a port of the stack ``stack up`` started (its state directory), if the
    program serving it is running; None otherwise."""
    stack = Stack(state_dir or default_state_dir(), out=lambda _line: None)
    stack.load_ports()
    if stack._owned_pid(_program_of(port_name)) is None:
        return None
    return f"http://{stack.ports.addr(port_name)}"


def _program_of(port_name: str) -> str:
    """The program listening on a StackPorts port: its name, or its prefix (jaeger_query: jaeger);
    the OTLP receivers are the collector's."""
    for program in ORDER:
        if port_name == program or port_name.startswith(program + "_"):
            return program
    return "collector"
