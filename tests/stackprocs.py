"""Real collector, Jaeger and Prometheus processes on free 127.0.0.1 ports, for tests.

    from stackprocs import start_collector, start_jaeger, start_prometheus, AGENT_CONFIG

    jaeger = start_jaeger(tmp_path)
    collector = start_collector(AGENT_CONFIG, tmp_path, jaeger_endpoint=jaeger.otlp_grpc_endpoint)
    prometheus = start_prometheus(tmp_path, [collector.prometheus_target])
    ...  # send OTLP to collector.otlp_grpc_endpoint, query jaeger.traces(...), prometheus.query(...)

Each ``start_*`` returns once the program's health check answers; each object has ``stop()`` and is
a context manager, and whatever a test leaves running is stopped when the interpreter exits.
A missing program skips the test with a message naming scripts/build-stack.sh, except under CI
(the CI variable set), where it fails: CI must run these tests.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import time
import urllib.parse
import urllib.request
from typing import Any, Callable

import pytest

from otel_monitoring.stack.binaries import ENV_VARS
from otel_monitoring.stack.jaeger_ui import resolve_assets
from otel_monitoring.stack import (
    CONFIG_DIR,
    ManagedProcess,
    MissingBinary,
    StackError,
    StackPorts,
    collector_spec,
    find_binary,
    jaeger_spec,
    prometheus_spec,
    write_jaeger_config,
    write_prometheus_config,
)
from support import REPO, free_port

AGENT_CONFIG = os.path.join(CONFIG_DIR, "agent.yaml")
JAEGER_CONFIG = os.path.join(CONFIG_DIR, "jaeger.yaml")
PROMETHEUS_DIR = os.path.join(CONFIG_DIR, "prometheus")

_live: list["_Program"] = []
# Read at import: the suite's autouse fixture strips OTEL_* variables before each test, and these
# (from `eval "$(scripts/build-stack.sh --print-env)"`) say where the programs are.
_BINARY_ENV = {key: os.environ[key] for key in ENV_VARS if key in os.environ}
# The built Jaeger UI: OTEL_MONITORING_JAEGER_UI, else the copy beside the repository (../shared, as
# on the project's machines and in CI).
_SHARED_UI = os.path.join(os.path.dirname(REPO), "shared", "jaeger-ui", "jaeger-ui-v1.76.0-assets.tar.gz")
JAEGER_UI_ASSETS = os.environ.get("OTEL_MONITORING_JAEGER_UI") or (_SHARED_UI if os.path.isfile(_SHARED_UI) else None)


def require_binary(name: str) -> str:
    """Path of a stack program (otelcol, jaeger, prometheus, promtool); skip (fail under CI) if missing."""
    try:
        return find_binary(name, _BINARY_ENV)
    except MissingBinary as error:
        if os.environ.get("CI"):
            pytest.fail(f"{error}; CI must build the stack first", pytrace=False)
        pytest.skip(str(error))


def require_jaeger_ui() -> str:
    """The built Jaeger UI (a .tar.gz or directory) for tests that open it; skip (fail under CI) if absent."""
    if JAEGER_UI_ASSETS:
        return JAEGER_UI_ASSETS
    message = f"no Jaeger UI assets: set OTEL_MONITORING_JAEGER_UI or provide {_SHARED_UI}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def http_get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (127.0.0.1)
        return json.loads(response.read())


def http_get_text(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (127.0.0.1)
        return response.read().decode("utf-8", "replace")


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; that value, or AssertionError at ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - a server still warming up answers with errors
            last_error = error
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))
        time.sleep(interval)


def _ports(**given: int) -> StackPorts:
    """StackPorts with every port free (random) unless given."""
    unknown = set(given) - set(StackPorts.port_names())
    if unknown:
        raise TypeError(f"unknown port names {sorted(unknown)}; known: {StackPorts.port_names()}")
    return StackPorts(**{name: given.get(name) or free_port() for name in StackPorts.port_names()})


def _retry_on_port_clash(start: Callable[..., Any]) -> Callable[..., Any]:
    """A free port can be taken (e.g. as a client's local port) between picking it and the program
    binding it: start again, with newly picked ports, when the program says so."""
    @functools.wraps(start)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(3):
            try:
                return start(*args, **kwargs)
            except StackError as error:
                if "address already in use" not in str(error) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return wrapper


class _Program:
    """A started program; ``start()`` again after ``stop()`` restarts it with the same ports and files."""

    def __init__(self, process: ManagedProcess, timeout: float) -> None:
        self.process = process
        self.timeout = timeout
        self.log_path = process.log_path
        _live.append(self)

    def start(self) -> "_Program":
        self.process.start(self.timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def running(self) -> bool:
        return self.process.running()

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def __enter__(self) -> "_Program":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class Collector(_Program):
    def __init__(self, process: ManagedProcess, ports: StackPorts, data_dir: str, timeout: float) -> None:
        super().__init__(process, timeout)
        self.ports = ports
        self.data_dir = data_dir
        self.otlp_grpc_endpoint = f"http://{ports.addr('otlp_grpc')}"
        self.otlp_http_endpoint = f"http://{ports.addr('otlp_http')}"
        self.prometheus_target = ports.addr("collector_prometheus")
        self.telemetry_target = ports.addr("collector_telemetry")
        self.health_url = f"http://{ports.addr('collector_health')}/"

    def exported_metrics(self) -> str:
        """The prometheus exporter's page (what Prometheus scrapes)."""
        return http_get_text(f"http://{self.prometheus_target}/metrics")

    def own_metrics(self) -> str:
        """The collector's own telemetry (otelcol_receiver_accepted_spans..., queue sizes)."""
        return http_get_text(f"http://{self.telemetry_target}/metrics")

    def file(self, signal: str) -> str:
        """Path of the file exporter's output for ``traces``, ``metrics`` or ``logs``."""
        return os.path.join(self.data_dir, f"{signal}.jsonl")


@_retry_on_port_clash
def start_collector(config_path: str, tmp_path: Any, *, jaeger_endpoint: str | None = None,
                    env: dict[str, str] | None = None, name: str = "collector", timeout: float = 60.0,
                    **ports: int) -> Collector:
    """Start the built collector with ``config_path`` (the agent config reads its addresses from the
    environment). ``ports``: StackPorts names (otlp_grpc, otlp_http, collector_prometheus,
    collector_health, collector_telemetry), free ports by default. ``jaeger_endpoint``: host:port of
    the Jaeger OTLP gRPC receiver to export to (default: a free port where nothing listens)."""
    binary = require_binary("otelcol")
    stack_ports = _ports(**ports)
    if jaeger_endpoint:
        host, _, port = jaeger_endpoint.rpartition(":")
        stack_ports.jaeger_otlp_grpc = int(port)
    root = os.path.join(str(tmp_path), name)
    data_dir = os.path.join(root, "data")
    os.makedirs(data_dir, exist_ok=True)
    spec = collector_spec(binary, stack_ports, data_dir, config_path, extra_env=env)
    process = ManagedProcess(spec, os.path.join(root, "collector.log"))
    return Collector(process, stack_ports, data_dir, timeout).start()  # type: ignore[return-value]


class Jaeger(_Program):
    def __init__(self, process: ManagedProcess, ports: StackPorts, timeout: float) -> None:
        super().__init__(process, timeout)
        self.ports = ports
        self.query_url = f"http://{ports.addr('jaeger_query')}"
        self.otlp_grpc_endpoint = ports.addr("jaeger_otlp_grpc")  # host:port, as collector configs take it
        self.telemetry_target = ports.addr("jaeger_telemetry")

    def services(self) -> list[str]:
        return http_get_json(f"{self.query_url}/api/services")["data"] or []

    def traces(self, service: str, limit: int = 200, **params: str) -> list[dict]:
        """Jaeger's query API (/api/traces): [{traceID, spans: [...], processes: {...}}]."""
        query = urllib.parse.urlencode({"service": service, "limit": limit, "lookback": "1h", **params})
        return http_get_json(f"{self.query_url}/api/traces?{query}")["data"] or []

    def trace(self, trace_id: str) -> dict | None:
        try:
            data = http_get_json(f"{self.query_url}/api/traces/{trace_id}")["data"]
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise
        return data[0] if data else None


@_retry_on_port_clash
def start_jaeger(tmp_path: Any, *, name: str = "jaeger", timeout: float = 60.0, storage: str = "badger",
                 ui_assets: str | None = None, config_path: str | None = None, env: dict[str, str] | None = None,
                 **ports: int) -> Jaeger:
    """Start Jaeger v2 with collector-config/jaeger.yaml on free ports: Badger storage in
    ``tmp_path/name/data`` (``storage="memory"``: the in-memory store), the UI from ``ui_assets``, span
    metrics from a Prometheus on ``ports["prometheus"]`` (default: a free port where nothing listens).
    ``ui_assets``: a directory or .tar.gz of the built UI (``require_jaeger_ui()``)."""
    binary = require_binary("jaeger")
    stack_ports = _ports(**ports)
    root = os.path.join(str(tmp_path), name)
    os.makedirs(root, exist_ok=True)
    config = write_jaeger_config(os.path.join(root, "jaeger.yaml"), storage, config_path or JAEGER_CONFIG)
    assets = resolve_assets(ui_assets, _BINARY_ENV) if ui_assets else None  # a .tar.gz is unpacked into the cache
    spec = jaeger_spec(binary, stack_ports, config, data_dir=os.path.join(root, "data"), ui_assets=assets,
                       extra_env=env)
    process = ManagedProcess(spec, os.path.join(root, "jaeger.log"))
    return Jaeger(process, stack_ports, timeout).start()  # type: ignore[return-value]


class Prometheus(_Program):
    def __init__(self, process: ManagedProcess, ports: StackPorts, config_path: str, timeout: float) -> None:
        super().__init__(process, timeout)
        self.url = f"http://{ports.addr('prometheus')}"
        self.config_path = config_path

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; the ``data`` member, or AssertionError with Prometheus' error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = http_get_json(url)
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise AssertionError(f"Prometheus rejected {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query: the result vector (list of {metric, value})."""
        return self.api("query", query=expr)["result"]

    def series_names(self) -> list[str]:
        return self.api("label/__name__/values")


@_retry_on_port_clash
def start_prometheus(tmp_path: Any, scrape_targets: list[str] | dict[str, list[str]], *,
                     rules_dir: str | None = None, scrape_interval: str = "1s", name: str = "prometheus",
                     alertmanagers: list[str] | None = None, timeout: float = 60.0, **ports: int) -> Prometheus:
    """Start Prometheus with a copy of collector-config/prometheus/prometheus.yml whose targets are
    ``scrape_targets`` (a list: the otel-collector job; a dict: job name -> targets) and whose rules
    are ``rules_dir`` (default collector-config/prometheus/rules); it notifies ``alertmanagers``
    (host:port list; none by default)."""
    binary = require_binary("prometheus")
    stack_ports = _ports(**ports)
    root = os.path.join(str(tmp_path), name)
    os.makedirs(root, exist_ok=True)
    targets = {"otel-collector": list(scrape_targets)} if isinstance(scrape_targets, list) else dict(scrape_targets)
    # Jobs of the shipped config that the caller did not name scrape nothing here.
    for job in ("otel-collector", "otel-collector-internal", "jaeger", "alertmanager", "victorialogs"):
        targets.setdefault(job, [])
    config_path = write_prometheus_config(os.path.join(root, "prometheus.yml"), targets,
                                          os.path.join(PROMETHEUS_DIR, "prometheus.yml"), rules_dir, scrape_interval,
                                          alertmanagers=list(alertmanagers or []))
    spec = prometheus_spec(binary, stack_ports, config_path, os.path.join(root, "data"))
    process = ManagedProcess(spec, os.path.join(root, "prometheus.log"))
    prometheus = Prometheus(process, stack_ports, config_path, timeout).start()
    # Ready is not scraping yet: Prometheus applies new targets on a 5 s tick. Return once every
    # target has been scraped once, so what a test sends next is seen from its first value.
    expected = sum(len(t) for t in targets.values())
    if expected:
        try:
            wait_until(lambda: len([t for t in prometheus.api("targets")["activeTargets"] if t["health"] != "unknown"]) >= expected,
                       timeout, what="Prometheus' first scrape of every target")
        except AssertionError:
            prometheus.stop()
            raise
    return prometheus  # type: ignore[return-value]


# --- fixtures: `from stackprocs import jaeger_process` in a test module makes them available ---

@pytest.fixture
def jaeger_process(tmp_path):
    """A Jaeger for one test (Badger storage in tmp_path, free ports), stopped afterwards."""
    with start_jaeger(tmp_path) as jaeger:
        yield jaeger


@pytest.fixture
def collector_process(tmp_path):
    """The agent collector for one test, exporting nowhere for traces (no Jaeger): use its files
    (``collector.file("traces")``) and its prometheus exporter; stopped afterwards."""
    with start_collector(AGENT_CONFIG, tmp_path) as collector:
        yield collector


@atexit.register
def _stop_leftovers() -> None:
    for program in _live:
        try:
            program.stop()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass
