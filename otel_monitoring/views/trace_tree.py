"""One trace as a tree of spans (from Jaeger's JSON), and its text rendering for a terminal:
indented names, durations, status, a timeline bar, and the key attributes under each span."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from . import formatting as fmt
from .. import names

KEY_ATTRIBUTE_PREFIXES = ("trading.", "gen_ai.", "http.", "url.", "db.", "rpc.", "server.")
ALWAYS_SHOWN = (names.ERROR_TYPE, names.OTEL_STATUS_DESCRIPTION, names.EXCEPTION_TYPE, names.EXCEPTION_MESSAGE)
HIDDEN = (names.OTEL_STATUS_CODE, names.SPAN_KIND, names.OTEL_SCOPE_NAME, names.OTEL_SCOPE_VERSION, names.INTERNAL_SPAN_FORMAT)


@dataclass
class SpanNode:
    span_id: str
    parent_id: str | None
    name: str
    service: str
    start_us: int
    duration_us: int
    status: str                  # OK, ERROR, UNSET
    kind: str                    # server, client, internal, producer, consumer
    attributes: dict[str, Any]
    children: list["SpanNode"] = field(default_factory=list)
    orphan: bool = False         # its parent is not in the trace (yet): shown as a root

    @property
    def duration_s(self) -> float:
        return self.duration_us / 1e6

    def walk(self, depth: int = 0):
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


@dataclass
class TraceSummary:
    trace_id: str
    root_name: str
    service: str
    start_us: int
    duration_us: int
    span_count: int
    error_count: int
    services: list[str]


def _tags(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {tag["key"]: tag.get("value") for tag in items or []}


def _node(span: dict[str, Any], processes: dict[str, Any]) -> SpanNode:
    tags = _tags(span.get("tags"))
    parent = next((ref.get("spanID") for ref in span.get("references") or [] if ref.get("refType") == "CHILD_OF"), None)
    status = str(tags.get(names.OTEL_STATUS_CODE) or "").upper()
    if not status:
        status = "ERROR" if tags.get("error") in (True, "true") else "UNSET"
    service = (processes.get(span.get("processID"), {}) or {}).get("serviceName", "?")
    attributes = {k: v for k, v in tags.items() if k not in HIDDEN and k != "error"}
    for log in span.get("logs") or []:  # span events: a recorded exception says what went wrong
        fields = _tags(log.get("fields"))
        if fields.get("event") == "exception":
            for key in (names.EXCEPTION_TYPE, names.EXCEPTION_MESSAGE):
                if key in fields:
                    attributes.setdefault(key, fields[key])
    return SpanNode(span["spanID"], parent, span.get("operationName", "?"), service, int(span.get("startTime", 0)),
                    int(span.get("duration", 0)), status, str(tags.get(names.SPAN_KIND) or "internal"), attributes)


def build_tree(trace: dict[str, Any]) -> list[SpanNode]:
    """The root spans (and spans whose parent is missing) with their children, in start order."""
    processes = trace.get("processes") or {}
    nodes = {span["spanID"]: _node(span, processes) for span in trace.get("spans") or []}
    roots = []
    for node in nodes.values():
        parent = nodes.get(node.parent_id) if node.parent_id else None
        if parent is None:
            node.orphan = node.parent_id is not None
            roots.append(node)
        else:
            parent.children.append(node)
    for node in nodes.values():
        node.children.sort(key=lambda n: (n.start_us, n.name))
    roots.sort(key=lambda n: (n.orphan, n.start_us))
    return roots


def summarize(trace: dict[str, Any]) -> TraceSummary:
    roots = build_tree(trace)
    spans = [node for root in roots for _, node in root.walk()]
    start = min((n.start_us for n in spans), default=0)
    end = max((n.start_us + n.duration_us for n in spans), default=0)
    root = roots[0] if roots else None
    return TraceSummary(trace.get("traceID", "?"), root.name if root else "?", root.service if root else "?",
                        start, end - start, len(spans), sum(1 for n in spans if n.status == "ERROR"),
                        sorted({n.service for n in spans}))


def key_attributes(node: SpanNode) -> list[tuple[str, Any]]:
    return sorted((k, v) for k, v in node.attributes.items()
                  if k.startswith(KEY_ATTRIBUTE_PREFIXES) or k in ALWAYS_SHOWN)


def _clock_us(start_us: int) -> str:
    return fmt.clock(start_us / 1e6)


def render_trace(trace: dict[str, Any], width: int = 80, attributes: bool = True) -> list[Text]:
    """The trace as lines: a header, then one line per span (tree, name, duration, status, a bar
    showing when it ran within the trace) and its key attributes beneath it."""
    summary = summarize(trace)
    roots = build_tree(trace)
    errors = f" · {summary.error_count} error{'s' if summary.error_count != 1 else ''}" if summary.error_count else ""
    title = Text(f"trace {summary.trace_id}", style="bold")
    details = Text(f"{', '.join(summary.services)} · {_clock_us(summary.start_us)} · "
                   f"{fmt.duration(summary.duration_us / 1e6)} · {summary.span_count} spans{errors}",
                   style="red" if summary.error_count else "")
    if title.cell_len + 3 + details.cell_len <= width:
        lines = [title + Text(" · ") + details]
    else:  # two lines rather than a wrapped one
        lines = [title, Text("  ") + details]
    bar_cells = max(0, min(40, width - 64))
    name_width = width - 10 - 7 - (bar_cells + 1 if bar_cells else 0)
    for root in roots:
        for _depth, node, prefix, continuation in _with_prefixes(root):
            label = prefix + node.name + (" (parent missing)" if node.orphan else "")
            if len(label) > name_width:
                label = label[: name_width - 1] + "…"
            line = Text(label.ljust(name_width))
            line.append(f"{fmt.duration(node.duration_s):>9} ")
            status_style = {"ERROR": "bold red", "OK": "green"}.get(node.status, "bright_black")
            line.append(f"{node.status:<6}", style=status_style)
            if bar_cells:
                line.append(" ")
                line.append(_timeline(node, summary, bar_cells), style="red" if node.status == "ERROR" else "cyan")
            lines.append(line)
            if attributes:
                for text in _attribute_lines(node, continuation, width):
                    lines.append(Text(text, style="bright_black"))
    return lines


def _with_prefixes(root: SpanNode):
    """(depth, node, tree prefix, prefix for the lines under the node), depth first."""
    def visit(node, prefix, continuation, depth):
        yield depth, node, prefix, continuation
        for index, child in enumerate(node.children):
            last = index == len(node.children) - 1
            yield from visit(child, continuation + ("└─ " if last else "├─ "),
                             continuation + ("   " if last else "│  "), depth + 1)
    yield from visit(root, "", "", 0)


def _timeline(node: SpanNode, summary: TraceSummary, cells: int) -> str:
    total = summary.duration_us or 1
    begin = int((node.start_us - summary.start_us) / total * cells)
    length = max(1, round(node.duration_us / total * cells))
    begin = min(begin, cells - 1)
    return " " * begin + "█" * min(length, cells - begin)


def _attribute_lines(node: SpanNode, continuation: str, width: int) -> list[str]:
    indent = continuation + ("│  " if node.children else "   ") + " "
    pairs = [f"{key}={value}" for key, value in key_attributes(node)]
    lines, current = [], indent
    for pair in pairs:
        if current != indent and len(current) + 1 + len(pair) > width:
            lines.append(current)
            current = indent
        current += ("" if current == indent else " ") + pair
    if current != indent:
        lines.append(current[:width])
    return lines


def render_trace_list(traces: list[dict[str, Any]], width: int = 80) -> list[Text]:
    """Recent traces, newest first: start time (UTC), id, duration, spans, errors, root span."""
    summaries = sorted((summarize(t) for t in traces), key=lambda s: -s.start_us)
    lines = [Text(f"{'UTC':<8} {'TRACE ID':<32} {'DURATION':>8} {'SPANS':>5} ERR  ROOT", style="bold cyan")]
    for summary in summaries:
        line = Text(f"{_clock_us(summary.start_us)[11:19]:<8} {summary.trace_id:<32} "
                    f"{fmt.duration(summary.duration_us / 1e6):>8} {summary.span_count:>5} ")
        line.append(f"{summary.error_count:>3}  ", style="bold red" if summary.error_count else "")
        line.append(summary.root_name)
        line.no_wrap, line.overflow = True, "ellipsis"
        lines.append(line)
    return lines
