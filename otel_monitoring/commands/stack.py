"""``otel-monitoring stack build|up|down|status``: the collector, Jaeger, Prometheus, Alertmanager and
VictoriaLogs as local processes."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from ..stack.assets import build_script
from ..stack.components import CONFIG_DIR, DEFAULT_RETENTION, JAEGER_STORAGES, StackPorts
from ..stack.jaeger_ui import JAEGER_UI_ENV
from ..stack.runner import Stack, default_state_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stack", help="build, then run the collector, Jaeger, Prometheus, Alertmanager and VictoriaLogs locally "
                      "(build | up | down | status)",
        description="Runs the agent collector, Jaeger, VictoriaLogs, Alertmanager and Prometheus as background "
                    "processes on 127.0.0.1. `build` builds the collector, Jaeger and VictoriaLogs from their Go "
                    "modules and installs Prometheus and Alertmanager (cached; the same script as the repository's "
                    "scripts/build-stack.sh); `up` returns once all are healthy; they run until `down`. Prometheus "
                    "loads the rules of OTEL_MONITORING_ALERT_RULES; Alertmanager notifies the channels of the "
                    "OTEL_MONITORING_ALERT_* settings.",
    )
    parser.add_argument("action", choices=("build", "up", "down", "status"),
                        help="build: build or install the programs (cached); up: start and wait until healthy; "
                             "down: stop; status: health of each program")
    parser.add_argument("--state-dir", default=default_state_dir(),
                        help="logs, pid files, collector files, Jaeger's and Prometheus' data (default %(default)s)")
    parser.add_argument("--config-dir", default=CONFIG_DIR,
                        help="the collector, Jaeger and Prometheus configs (default: the copy shipped with the "
                             "package, %(default)s)")
    parser.add_argument("--jaeger-ui", metavar="PATH", default=None,
                        help=f"built Jaeger UI assets: a directory or a .tar.gz (default ${JAEGER_UI_ENV}; "
                             "without either Jaeger serves a placeholder page)")
    parser.add_argument("--jaeger-storage", choices=JAEGER_STORAGES, default="badger",
                        help="where Jaeger keeps traces: badger (on disk in the state directory, kept across "
                             "restarts) or memory (default %(default)s)")
    parser.add_argument("--print-env", action="store_true",
                        help="build: print `export OTEL_MONITORING_*=...` lines naming the programs")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds each program has to become healthy")
    parser.add_argument("--retention", default=DEFAULT_RETENTION, metavar="DURATION",
                        help="how long Prometheus and VictoriaLogs keep data, e.g. 15d, 90d (default %(default)s)")
    defaults = StackPorts()
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    for port_name in StackPorts.port_names():
        parser.add_argument(f"--{port_name.replace('_', '-')}-port", dest=port_name, type=int, metavar="N",
                            default=getattr(defaults, port_name), help=f"(default {getattr(defaults, port_name)})")
    parser.set_defaults(func=run)


def build(config_dir: str, print_env: bool) -> int:
    """Run the build script (shipped with the package) against ``config_dir``'s builder manifest."""
    script = build_script()
    bash = shutil.which("bash")
    if bash is None or not os.path.isfile(script):
        print(f"otel-monitoring stack build: needs bash and {script}", file=sys.stderr)
        return 1
    argv = [bash, script, "--config-dir", os.path.abspath(config_dir)] + (["--print-env"] if print_env else [])
    return subprocess.call(argv)


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        return build(args.config_dir, args.print_env)
    ports = StackPorts(host=args.host, **{name: getattr(args, name) for name in StackPorts.port_names()})
    stack = Stack(args.state_dir, ports, config_dir=args.config_dir, jaeger_ui=args.jaeger_ui,
                  jaeger_storage=args.jaeger_storage, retention=args.retention)
    if args.action == "up":
        return stack.up(timeout=args.timeout)
    if args.action == "down":
        return stack.down()
    return stack.status()
