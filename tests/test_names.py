"""Every telemetry name the package writes or reads is defined once, in otel_monitoring/names.py.

A name retyped as a literal elsewhere can drift from the one the writer uses (a renamed attribute
would make cost tracking record zero with no test failing), so the package is scanned for string
constants that look like dotted telemetry names.
"""

import ast
import os
import re

import pytest

from otel_monitoring import names
from support import REPO

PACKAGE = os.path.join(REPO, "otel_monitoring")
NAMES_MODULE = os.path.join(PACKAGE, "names.py")
DOTTED = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")
# First segments of telemetry names: the semantic conventions' namespaces the package uses, and ours.
NAMESPACES = {"trading", "rag", "otel_monitoring", "gen_ai", "http", "db", "system", "process", "error", "server",
              "service", "cost", "budget", "host", "os", "telemetry", "deployment", "exception", "code",
              "network", "url", "span", "status", "otel", "event", "alert", "traces", "internal", "client"}
# Python-side names that share the namespaces: logger names, context keys, module paths.
NOT_TELEMETRY_CALLS = {"getLogger", "create_key", "import_module", "find_spec", "get_tracer", "get_meter"}
FILE_SUFFIXES = {"json", "jsonl", "yaml", "yml", "sqlite", "html", "txt"}
# (file, literal): why the literal is not a telemetry name.
ALLOWED = {
    ("otel_monitoring/logging_bridge.py", "otel_monitoring.export"):
        "the exporters' logger name, kept out of the logs pipeline",
    ("otel_monitoring/views/overview.py", "http.client"):
        "the label of the views' outgoing-HTTP rows, not a name read from the data",
}


def _module_path(value: str) -> bool:
    path = os.path.join(REPO, *value.split("."))
    return value.startswith("otel_monitoring.") and (os.path.isdir(path) or os.path.exists(path + ".py"))


def telemetry_literals(path: str) -> list[tuple[int, str]]:
    """(line, value) of each string constant in the file that looks like a telemetry name."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED.match(node.value)):
            continue
        value = node.value
        if value.split(".")[0] not in NAMESPACES or value.rsplit(".", 1)[1] in FILE_SUFFIXES or _module_path(value):
            continue
        parent = parents.get(node)
        if isinstance(parent, ast.Call) and node in parent.args:
            func = parent.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) in NOT_TELEMETRY_CALLS:
                continue
        # Instrumentation scope names follow the instrumenting module's name, as OpenTelemetry's do.
        if isinstance(parent, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "SCOPE" for t in parent.targets):
            continue
        found.append((node.lineno, value))
    return found


def _package_files() -> list[str]:
    files = []
    for root, dirs, names_ in os.walk(PACKAGE):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += [os.path.join(root, n) for n in names_ if n.endswith(".py")]
    return sorted(files)


def test_no_telemetry_name_is_retyped_outside_the_names_module():
    problems = []
    used_allowances = set()
    for path in _package_files():
        if path == NAMES_MODULE:
            continue
        rel = os.path.relpath(path, REPO).replace(os.sep, "/")
        for line, value in telemetry_literals(path):
            if (rel, value) in ALLOWED:
                used_allowances.add((rel, value))
                continue
            problems.append(f"{rel}:{line}: {value!r}")
    assert not problems, ("telemetry names written as literals; use (or add) a constant in "
                          "otel_monitoring/names.py:\n" + "\n".join(problems))
    assert used_allowances == set(ALLOWED), f"stale allow-list entries: {set(ALLOWED) - used_allowances}"


def test_the_scan_finds_a_retyped_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('import logging\n_log = logging.getLogger("otel_monitoring.local")\n'
                      'SCOPE = "otel_monitoring.instrumentation.ccxt"\n'
                      'fee = attributes.get("trading.order.fee")\nfile = "alerts.json"\n')
    assert telemetry_literals(str(sample)) == [(4, "trading.order.fee")]


@pytest.mark.parametrize("constant, value", [
    ("GEN_AI_USAGE_INPUT_TOKENS", "gen_ai.usage.input_tokens"),
    ("GEN_AI_OPERATION_DURATION", "gen_ai.client.operation.duration"),
    ("HTTP_SERVER_REQUEST_DURATION", "http.server.request.duration"),
    ("SYSTEM_CPU_UTILIZATION", "system.cpu.utilization"),
    ("SERVICE_NAME", "service.name"),
    ("ERROR_TYPE", "error.type"),
])
def test_convention_names_come_from_the_semantic_conventions_package(constant, value):
    # Taken from opentelemetry.semconv, as the contrib GenAI utilities do, so they are the spec's.
    assert getattr(names, constant) == value


def test_every_name_is_defined_once():
    with open(NAMES_MODULE, encoding="utf-8") as file:
        tree = ast.parse(file.read())
    assigned = [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
                if isinstance(t, ast.Name)]
    assert len(assigned) == len(set(assigned)), sorted({n for n in assigned if assigned.count(n) > 1})
    values = {}
    for constant in assigned:
        value = getattr(names, constant)
        if isinstance(value, str) and DOTTED.match(value):
            assert value not in values, f"{constant} and {values[value]} both name {value!r}"
            values[value] = constant
