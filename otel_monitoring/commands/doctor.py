"""``otel-monitoring doctor``: the resolved configuration, where each value came from, and whether
the destinations are usable (OTLP endpoint reachable, file directory writable)."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
import urllib.parse
from typing import Iterator

from ..config import OPTIONS, ConfigError, has_scheme, load_settings
from ..exporters import SIGNALS, exporter_names, otlp_endpoint, otlp_insecure


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("doctor", help="show the resolved configuration and check the destinations")
    parser.add_argument("--all", action="store_true", help="also list options left at their defaults")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds for the endpoint check (default 2)")
    parser.set_defaults(func=run)


def check_tcp(endpoint: str, timeout: float) -> str | None:
    """None if a TCP connection to the endpoint's host:port succeeds, else the reason. host:port
    without a scheme is a gRPC target, whose default port is 443."""
    parsed = urllib.parse.urlsplit(endpoint if has_scheme(endpoint) else f"//{endpoint}")
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return None
    except OSError as error:
        return error.strerror or str(error)


@contextlib.contextmanager
def _app_directory_importable() -> Iterator[None]:
    """The current directory first on sys.path while targets are checked, as it is for the app
    that `python app.py` (or `opentelemetry-instrument python app.py`) starts there: a console
    script's sys.path lacks it, so the app's own modules looked unimportable."""
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added and here in sys.path:
            sys.path.remove(here)


def check_files(settings) -> list[str]:
    """What is wrong with the files the settings name (targets, alert rules, prices), loaded as
    configure() loads them."""
    found: list[str] = []
    if settings.targets:
        from ..instrumentation.targets import FILE_IGNORED, TargetError, load_targets

        try:
            with _app_directory_importable():
                # With what the modules' sources prove wrong (nothing of the app is imported), in file order.
                found += load_targets(settings.targets, check_sources=True)[1]
        except TargetError as error:
            found.append(f"{error} {FILE_IGNORED}")
    if settings.alert_rules.strip().lower() != "none":
        from ..local.rules import RuleError, load_rules

        try:
            found += load_rules(settings.alert_rules, strict=False).errors
        except RuleError as error:
            found.append(str(error))
    if settings.prices_file:
        from ..meters.prices import PriceTableError, load_prices

        try:
            load_prices(settings.prices_file)
        except PriceTableError as error:
            found.append(str(error))
    return found


def run(args: argparse.Namespace) -> int:
    from ..config import batch_processor_arguments
    from ..views.terminal import safe_text

    reports: list[str] = []
    try:
        settings = load_settings(report=reports.append)
    except ConfigError as error:
        print(safe_text(f"configuration error: {error}"))
        return 2
    batch_processor_arguments("OTEL_BSP", report=reports.append)
    batch_processor_arguments("OTEL_BLRP", report=reports.append)
    print("Configuration (argument > environment > default):")
    shown = 0
    for option in OPTIONS:
        source = settings.source(option.name)
        if source == "default" and not args.all:
            continue
        shown += 1
        print(f"  {option.name:<24} = {safe_text(settings.display(option.name)):<40} ({source})")
    if not shown:
        print("  every setting is at its default (list them with `otel-monitoring doctor --all`)")
    problems = 0
    file_problems = check_files(settings)
    if reports or file_problems:
        print("\nInputs:")
    for message in reports:
        problems += 1
        # Messages that say what happens instead need no generic ending.
        consequence = "" if "is ignored" in message or " Instead, " in message else " (ignored: the default applies)"
        print(f"  PROBLEM: {safe_text(message)}{consequence}")
    for message in file_problems:
        problems += 1
        print(f"  PROBLEM: {safe_text(message)}")
    print("\nDestinations:")
    checked: set[str] = set()
    for signal in SIGNALS:
        names = exporter_names(settings, signal)
        print(f"  {signal:<8} -> {safe_text(', '.join(names))}")
        if "otlp" in names:
            protocol, endpoint = otlp_endpoint(settings, signal)
            if endpoint in checked:
                continue
            checked.add(endpoint)
            reason = check_tcp(endpoint, args.timeout)
            if reason is None:
                print(f"    OK: {protocol} endpoint {safe_text(endpoint)} accepts connections")
                if protocol == "grpc" and not has_scheme(endpoint) and not otlp_insecure(settings, signal, endpoint):
                    # The SDK's meaning of host:port: a collector without TLS (the stack's) refuses it.
                    print("    note: no scheme, so the exporter connects with TLS; for a collector without TLS "
                          f"(`otel-monitoring stack up`'s) set OTEL_EXPORTER_OTLP_INSECURE=true or use http://{safe_text(endpoint)}")
            else:
                problems += 1
                print(f"    PROBLEM: {protocol} endpoint {safe_text(endpoint)} is not reachable ({reason}).")
                print("      Start a collector there (`otel-monitoring stack up`), point OTEL_EXPORTER_OTLP_ENDPOINT")
                print("      at a running one, or export to files: OTEL_TRACES_EXPORTER=otlp_file (and METRICS, LOGS).")
        if "otlp_file" in names and "file_dir" not in checked:
            checked.add("file_dir")
            directory = os.path.abspath(settings.file_dir)
            parent = directory
            while not os.path.exists(parent):
                parent = os.path.dirname(parent)
            if os.access(parent, os.W_OK | os.X_OK):
                print(f"    OK: files go to {safe_text(directory)}")
            else:
                problems += 1
                print(f"    PROBLEM: {safe_text(directory)} is not writable; set OTEL_MONITORING_FILE_DIR to a writable "
                      "directory.")
    print("\nAll good." if not problems else f"\n{problems} problem(s) found.")
    return 0 if not problems else 1
