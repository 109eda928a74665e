"""The ``otel-monitoring`` command. Each subcommand lives in ``otel_monitoring/commands/<name>.py``
and exposes ``register(subparsers)``, which adds its parser and sets ``func`` (returns an exit code)."""

from __future__ import annotations

import argparse
import importlib
import sys

from .version import __version__

# Subcommand modules, in the order `--help` lists them.
COMMANDS = ("demo", "doctor", "stack", "top", "alerts", "report", "traces", "logs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otel-monitoring",
        description="OpenTelemetry monitoring for trading systems, RAG pipelines and APIs.",
    )
    parser.add_argument("--version", action="version", version=f"otel-monitoring {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"otel_monitoring.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .config import ConfigError

    try:
        return int(args.func(args) or 0)
    except ConfigError as error:
        print(f"otel-monitoring: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
