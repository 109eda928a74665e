"""``otel-monitoring traces``: inspect traces over SSH through Jaeger's query API. Without
arguments it lists the services; with --service the recent traces; with a trace id (or --last)
it prints that trace as a tree. The client is views/jaeger.py, the rendering views/trace_tree.py."""

from __future__ import annotations

import argparse
import os
import sys

from ..views.jaeger import DEFAULT_QUERY_URL


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..stack.runner import add_state_dir_argument

    parser = subparsers.add_parser(
        "traces", help="list recent traces from Jaeger and print one as a tree",
        description="Inspect traces from the command line through Jaeger's query API. "
                    "No argument: the services. --service S: its recent traces. TRACE_ID or --service S --last: "
                    "the trace as an indented tree with durations, status and key attributes.")
    parser.add_argument("trace_id", nargs="?", metavar="TRACE_ID", help="print this trace as a tree")
    parser.add_argument("--jaeger", metavar="URL", default=None,
                        help=f"Jaeger query API base URL (default: the running stack's, else {DEFAULT_QUERY_URL})")
    add_state_dir_argument(parser)
    parser.add_argument("--service", "-s", help="the service whose traces to list")
    parser.add_argument("--operation", help="only traces whose root or spans have this operation name")
    parser.add_argument("--errors", action="store_true", help="only traces with an error span")
    parser.add_argument("--limit", type=int, default=20, help="how many recent traces to list (default 20)")
    parser.add_argument("--lookback", default="1h", type=_lookback, help="how far back to look, e.g. 15m, 1h, 2d (default 1h)")
    parser.add_argument("--last", action="store_true", help="print the most recent trace of --service as a tree")
    parser.add_argument("--no-attributes", action="store_true", help="tree without the attribute lines")
    parser.add_argument("--width", type=int, help="output width (default: the terminal's, else 100)")
    parser.set_defaults(func=run)


def _lookback(text: str) -> str:
    from ..views.jaeger import lookback_us

    try:
        lookback_us(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..views.jaeger import JaegerClient, JaegerError
    from ..views.trace_tree import render_trace, render_trace_list

    from ..stack.runner import running_stack_url

    # The stack `stack up` started, on whatever ports it was given, like `logs` and `stack status`.
    args.jaeger = args.jaeger or running_stack_url("jaeger_query", args.state_dir) or DEFAULT_QUERY_URL
    width = args.width or (os.get_terminal_size().columns if sys.stdout.isatty() else 100)
    console = Console(width=width, highlight=False, soft_wrap=True)
    client = JaegerClient(args.jaeger)
    try:
        if args.trace_id or args.last:
            trace = client.trace(args.trace_id) if args.trace_id else _latest(client, args)
            if trace is None:
                what = f"trace {args.trace_id}" if args.trace_id else f"any trace of {args.service} {_searched(args)}"
                print(f"otel-monitoring traces: Jaeger at {args.jaeger} has no {what}", file=sys.stderr)
                return 1
            for line in render_trace(trace, width=width, attributes=not args.no_attributes):
                console.print(line)
            return 0
        if not args.service:
            services = client.services()
            if not services:
                print(f"Jaeger at {args.jaeger} has no services yet", file=sys.stderr)
                return 1
            console.print("Services (list one's traces with --service NAME):")
            for service in services:
                console.print(f"  {service}", markup=False)
            return 0
        traces = _recent(client, args)
        if not traces:
            print(f"no traces of {args.service} {_searched(args)}", file=sys.stderr)
            return 1
        for line in render_trace_list(traces, width=width):
            console.print(line)
        return 0
    except JaegerError as error:
        print(f"otel-monitoring traces: {error}", file=sys.stderr)
        return 2


# Jaeger's search tag for spans whose status is ERROR (the OTLP status becomes error=true).
ERROR_TAG = {"error": "true"}
# When Jaeger cannot answer the error-tag search, the newest traces scanned for error spans instead.
ERROR_SCAN_LIMIT = 1000


def _searched(args) -> str:
    """What was asked of Jaeger, for the message when nothing matched."""
    parts = [f"in the last {args.lookback}"]
    if args.operation:
        parts.append(f"with operation {args.operation!r}")
    if args.errors:
        scanned = getattr(args, "scanned", None)
        parts.append("with an error span (Jaeger searched for tag error=true"
                     + (f", then the newest {scanned} traces were scanned)" if scanned is not None else ")"))
    return " ".join(parts) + f" (Jaeger at {args.jaeger}, limit {args.limit})"


def _recent(client, args) -> list[dict]:
    """The newest traces of the service. With --errors Jaeger itself is asked for the error tag, so an
    error trace is found however many successful traces came after it. Jaeger v2's memory store
    compares that tag as a boolean while its query API passes it as a string, and so finds nothing:
    then the newest ERROR_SCAN_LIMIT traces are scanned for error spans here."""
    from ..views.trace_tree import summarize

    if not args.errors:
        return client.traces(args.service, limit=args.limit, lookback=args.lookback, operation=args.operation)
    found = client.traces(args.service, limit=args.limit, lookback=args.lookback, operation=args.operation,
                          tags=ERROR_TAG)
    errors = [t for t in found if summarize(t).error_count]
    if errors:
        return errors[: args.limit]
    scanned = client.traces(args.service, limit=max(ERROR_SCAN_LIMIT, args.limit), lookback=args.lookback,
                            operation=args.operation)
    args.scanned = len(scanned)
    return [t for t in scanned if summarize(t).error_count][: args.limit]


def _latest(client, args) -> dict | None:
    if not args.service:
        raise SystemExit("otel-monitoring traces: --last needs --service")
    from ..views.trace_tree import summarize

    traces = _recent(client, args)
    return max(traces, key=lambda t: summarize(t).start_us) if traces else None
