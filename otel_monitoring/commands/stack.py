"""``otel-monitoring stack up|down|status``: the collector, Jaeger and Prometheus as local processes."""

from __future__ import annotations

import argparse

from ..stack.components import CONFIG_DIR, StackPorts
from ..stack.runner import Stack, default_state_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stack", help="run the collector, Jaeger and Prometheus locally (up | down | status)",
        description="Runs the agent collector, Jaeger and Prometheus as background processes on 127.0.0.1 "
                    "(built by scripts/build-stack.sh). `up` returns once all are healthy; they run until `down`.",
    )
    parser.add_argument("action", choices=("up", "down", "status"),
                        help="up: start and wait until healthy; down: stop; status: health of each program")
    parser.add_argument("--state-dir", default=default_state_dir(),
                        help="logs, pid files, collector files and Prometheus data (default %(default)s)")
    parser.add_argument("--config-dir", default=CONFIG_DIR, help="collector-config directory (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds each program has to become healthy")
    defaults = StackPorts()
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    for port_name in StackPorts.port_names():
        parser.add_argument(f"--{port_name.replace('_', '-')}-port", dest=port_name, type=int, metavar="N",
                            default=getattr(defaults, port_name), help=f"(default {getattr(defaults, port_name)})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    ports = StackPorts(host=args.host, **{name: getattr(args, name) for name in StackPorts.port_names()})
    stack = Stack(args.state_dir, ports, config_dir=args.config_dir)
    if args.action == "up":
        return stack.up(timeout=args.timeout)
    if args.action == "down":
        return stack.down()
    return stack.status()
