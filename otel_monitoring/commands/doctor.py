"""``otel-monitoring doctor``: the resolved configuration, where each value came from, and whether
the destinations are usable (OTLP endpoint reachable, file directory writable)."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import ssl
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


def uses_tls(protocol: str, endpoint: str, insecure: bool) -> bool:
    """What the SDK's exporter does: https:// is TLS, http:// is not, host:port is TLS for gRPC
    unless OTEL_EXPORTER_OTLP_(<SIGNAL>_)INSECURE says otherwise."""
    if endpoint.startswith("https://"):
        return True
    if has_scheme(endpoint):
        return False
    return protocol == "grpc" and not insecure


def certificate_file(signal: str) -> str | None:
    """The CA file the exporter trusts (the SDK reads these variables itself), else the system's."""
    return (os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_CERTIFICATE")
            or os.environ.get("OTEL_EXPORTER_OTLP_CERTIFICATE") or None)


def check_tls(endpoint: str, timeout: float, cafile: str | None = None) -> tuple[str, str] | None:
    """None if the endpoint completes a TLS handshake the exporter would accept (its certificate
    verified against ``cafile`` or the system's CAs), else (kind, reason): kind "plaintext" when it
    does not answer TLS (a collector without TLS), "certificate" when it does but is not trusted.
    Python's own ssl module, so no gRPC C-library message reaches the terminal."""
    parsed = urllib.parse.urlsplit(endpoint if has_scheme(endpoint) else f"//{endpoint}")
    port = parsed.port or 443
    try:
        context = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as error:
        return "certificate", f"cannot read the CA file {cafile}: {error}"
    context.set_alpn_protocols(["h2", "http/1.1"])
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=parsed.hostname):
            return None
    except ssl.SSLCertVerificationError as error:
        return "certificate", error.verify_message or str(error)
    except (ssl.SSLError, ConnectionError, TimeoutError, socket.timeout) as error:
        return "plaintext", getattr(error, "reason", None) or error.strerror or type(error).__name__
    except OSError as error:
        return "plaintext", error.strerror or str(error)


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
            tls = reason is None and uses_tls(protocol, endpoint, otlp_insecure(settings, signal, endpoint))
            failed = check_tls(endpoint, args.timeout, certificate_file(signal)) if tls else None
            if reason is None and failed is None:
                print(f"    OK: {protocol} endpoint {safe_text(endpoint)} accepts connections"
                      + (" and completes a TLS handshake" if tls else ""))
            elif failed is not None and failed[0] == "plaintext":
                problems += 1
                address = endpoint.split("://", 1)[-1]
                print(f"    PROBLEM: {protocol} endpoint {safe_text(endpoint)} accepts connections but does not answer "
                      f"TLS ({safe_text(failed[1])}), and the exporter connects with TLS")
                print("      (" + ("https://" if endpoint.startswith("https://") else "host:port without a scheme, for gRPC,")
                      + " means TLS): every export would fail. For a collector without TLS (`otel-monitoring stack up`'s)")
                print(f"      use http://{safe_text(address)}" + ("" if endpoint.startswith("https://") else
                                                                 " or set OTEL_EXPORTER_OTLP_INSECURE=true") + ".")
            elif failed is not None:
                problems += 1
                print(f"    PROBLEM: {protocol} endpoint {safe_text(endpoint)} answers TLS with a certificate the "
                      f"exporter does not trust ({safe_text(failed[1])}).")
                print("      Point OTEL_EXPORTER_OTLP_CERTIFICATE at the CA file that signed it.")
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
