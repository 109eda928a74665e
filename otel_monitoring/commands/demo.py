"""``otel-monitoring demo``: run the example applications, instrumented, and summarise what they emitted.

The default needs no server: telemetry goes to OTLP/JSON files (``--exporter otlp_file``).
With ``--exporter otlp`` it goes to a collector (``otel-monitoring stack up`` starts one).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import shlex
import sys
import threading
import time
from typing import Any, Callable

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.trace import StatusCode

EXAMPLES = ("trading_bot", "rag_pipeline", "api_service", "kpi_feed")

# Extra summary sections: callables taking the Monitoring handle and the final snapshot (a
# views.snapshot.Snapshot read after shutdown, or None) and returning lines to print. Features (cost,
# KPIs, health, alerts) append theirs. Sections marked live read instrumentation state that shutdown
# removes and run just before it; the others run after it, on the final snapshot and evaluation,
# which is what `top` and `alerts list` read.
SUMMARY_SECTIONS: list[Callable[[Any, Any], list[str]]] = []
LIVE_SECTIONS: set[Callable[[Any, Any], list[str]]] = set()


def _meters_summary(monitoring: Any, snapshot: Any) -> list[str]:
    from otel_monitoring.meters.summary import summary_lines

    return summary_lines(monitoring, snapshot)


SUMMARY_SECTIONS.append(_meters_summary)


def _alerts_summary(monitoring: Any, snapshot: Any) -> list[str]:
    from otel_monitoring.local.alerts import demo_summary

    return demo_summary(monitoring, snapshot)


SUMMARY_SECTIONS.append(_alerts_summary)


def _feeds_summary(monitoring: Any, snapshot: Any) -> list[str]:
    from otel_monitoring.instrumentation.trading.ccxt import feed_summary_lines

    return feed_summary_lines()


SUMMARY_SECTIONS.append(_feeds_summary)
LIVE_SECTIONS.add(_feeds_summary)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the instrumented example apps and summarise their telemetry")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds to run the examples (default 10)")
    parser.add_argument("--output", default="./otel-data", help="directory for the telemetry files (default ./otel-data)")
    parser.add_argument("--exporter", choices=("otlp_file", "otlp"), default="otlp_file",
                        help="otlp_file (default, no server needed) or otlp (to a collector)")
    parser.add_argument("--endpoint", default=None, help="OTLP endpoint with --exporter otlp (default from OTEL_EXPORTER_OTLP_ENDPOINT)")
    parser.add_argument("--examples", default=",".join(EXAMPLES), help=f"comma-separated subset of {', '.join(EXAMPLES)}")
    parser.set_defaults(func=run)


class SpanSummary(SpanProcessor):
    """Counts every finished span and its errors, whatever the exporter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.total_errors = 0

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self.total += 1
            if span.status.status_code is StatusCode.ERROR:
                self.total_errors += 1


def operations_table(snapshot: Any) -> list[str]:
    """The operations as `top` shows them, from the run's final snapshot: the same rows, counts and
    percentiles. A percentile is estimated inside the histogram bucket that holds it, as `top`, the
    report and Prometheus' histogram_quantile do (docs/accuracy.md): one method in every view."""
    from ..views import formatting as fmt
    from ..views.overview import red_rows

    rows = red_rows(snapshot) if snapshot is not None else []
    if not rows:
        return ["Operations: none recorded"]
    table = [("component", "operation", "calls", "err%", "p50", "p95", "p99")]
    table += [(r.component, r.operation, fmt.count(r.count), fmt.percent(r.error_pct), fmt.duration(r.p50),
               fmt.duration(r.p95), fmt.duration(r.p99)) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
             for row in table]
    return lines + ["(p50/p95/p99 estimated inside the histogram bucket that holds each, as in every view: "
                    "docs/accuracy.md)"]


def _import_example(name: str, failures: dict[str, str]) -> Any:
    try:
        return importlib.import_module(f"otel_monitoring.examples.{name}")
    except Exception as error:  # one broken example must not hide the others' results
        logging.getLogger("otel_monitoring.demo").exception("example %s failed to import", name)
        failures[name] = f"{type(error).__name__}: {error}"
        return None


def _run_example(module: Any, name: str, duration: float, failures: dict[str, str]) -> None:
    try:
        module.demo(duration)
    except Exception as error:  # one broken example must not hide the others' results
        logging.getLogger("otel_monitoring.demo").exception("example %s failed", name)
        failures[name] = f"{type(error).__name__}: {error}"


def run(args: argparse.Namespace) -> int:
    import otel_monitoring

    # The bridge forwards INFO and up to the logs pipeline; the console shows warnings only.
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING)
    root.addHandler(console)

    output = os.path.abspath(args.output)
    options: dict[str, Any] = {
        "service_name": "otel-monitoring-demo",
        "exporter": args.exporter,
        "file_dir": output,
        "snapshot_dir": output,  # live snapshots, history and the in-process alert rules (docs/snapshots.md)
        "snapshot_interval": 1.0,
        "history_interval": 1.0,  # a short run still leaves trends for `otel-monitoring report`
        "metric_export_interval": max(1.0, min(5.0, args.duration / 2)),
        # The trading example freezes one WebSocket stream a third of the way in: short thresholds
        # let a short run show it turn DELAYED, then STALE.
        "stream_stale_seconds": max(0.5, args.duration / 5),
        "stream_live_seconds": max(0.5, args.duration / 5) / 3,
    }
    if args.endpoint:
        options["endpoint"] = args.endpoint
    monitoring = otel_monitoring.configure(**options)
    summary = SpanSummary()
    if hasattr(monitoring.tracer_provider, "add_span_processor"):
        monitoring.tracer_provider.add_span_processor(summary)

    names = [n.strip() for n in args.examples.split(",") if n.strip()]
    unknown = sorted(set(names) - set(EXAMPLES))
    if unknown:
        print(f"otel-monitoring demo: unknown example(s) {', '.join(unknown)}; choose from {', '.join(EXAMPLES)}",
              file=sys.stderr)
        return 2
    print(f"Running {', '.join(names)} for {args.duration:g}s (exporter: {args.exporter}, service "
          f"{options['service_name']}) ...\nThe examples plant faults on purpose (a refused order, a model "
          "answering 429, rate-limit answers, a frozen stream, an old quote, a momentum strategy whose signals on "
          "a random walk are a coin flip, under the accuracy alert's 70 %): the warnings and alerts below are "
          "theirs, but for those about this machine (CPU, slow operations when it is busy).", flush=True)
    failures: dict[str, str] = {}
    # The examples are imported here, one after the other, and only run in threads: Python's import
    # locks are per module, so threads making the first import of a shared package (ccxt, the RAG
    # stack and the API example each import requests) can each hold part of it, and a thread that
    # enters it by a submodule while another runs its __init__ is handed a partially initialised module.
    modules = {n: _import_example(n, failures) for n in names}
    started = time.monotonic()
    threads = [threading.Thread(target=_run_example, args=(modules[n], n, args.duration, failures), name=f"example-{n}")
               for n in names if modules[n] is not None]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    sections: dict[Any, list[str]] = {}

    def summarise(section: Any, snapshot: Any) -> None:
        try:
            sections[section] = [""] + section(monitoring, snapshot)
        except Exception as error:  # noqa: BLE001 - a summary section must not fail the demo
            sections[section] = ["", f"({section.__name__} unavailable: {error})"]

    for section in SUMMARY_SECTIONS:
        if section in LIVE_SECTIONS:
            summarise(section, None)
    from ..meters.health_checks import run_health_checks

    run_health_checks()  # the results the last snapshot's check-status gauge and the summary report
    monitoring.force_flush(timeout=10)
    monitoring.shutdown()  # takes the last snapshot and evaluates the alert rules a last time
    from ..views.snapshot import read_snapshot_dir

    final = read_snapshot_dir(output)
    for section in SUMMARY_SECTIONS:
        if section not in LIVE_SECTIONS:
            summarise(section, final)
    extra_lines = [line for section in SUMMARY_SECTIONS for line in sections[section]]

    print(f"\nRan {len(names)} example(s) in {elapsed:.1f}s: {summary.total} spans, {summary.total_errors} errors.\n")
    print("\n".join(operations_table(final)))
    print("\n".join(extra_lines))
    for name, reason in failures.items():
        print(f"\nexample {name} FAILED: {reason}")
    if args.exporter == "otlp_file":
        print(f"\nTelemetry files (OTLP/JSON lines, one export request per line) in {output}:")
        for signal in ("traces", "metrics", "logs"):
            path = os.path.join(output, f"{signal}.jsonl")
            count = _count_lines(path)
            print(f"  {path}  ({count} lines)")
    else:
        print(f"\nTelemetry was sent over OTLP to {monitoring.settings.endpoint or 'the default endpoint'}.")
    print("\n".join(_next_steps(output, options["service_name"])))
    return 1 if failures or summary.total == 0 else 0


def _next_steps(output: str, service: str) -> list[str]:
    """The commands that read this run, spelled as they can be pasted: the CLI of this interpreter's
    environment (scripts/demo's virtualenv is not on PATH) and this run's directory."""
    cli = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    if not os.path.exists(cli):
        cli = "otel-monitoring"
    where = shlex.quote(output)
    return ["", "Look at this run:",
            f"  {cli} top --dir {where}",
            f"  {cli} report --html report.html --dir {where}",
            f"  {cli} alerts list --dir {where}",
            f"  with the stack up (otel-monitoring stack up; demo --exporter otlp): "
            f"{cli} traces --service {service}"]


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for _ in handle)
    except FileNotFoundError:
        return 0
