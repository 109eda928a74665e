"""The shipped configs in collector-config/, checked by the real programs: the built collector's
`validate`, Jaeger's `validate`, promtool, and a running Prometheus' query API for every PromQL
expression of the rules and dashboards."""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess

import pytest
import yaml

from stackprocs import CONFIG_DIR, PROMETHEUS_DIR, require_binary, start_prometheus

COLLECTOR_CONFIGS = sorted(
    [os.path.join(CONFIG_DIR, "agent.yaml")] + glob.glob(os.path.join(CONFIG_DIR, "gateway", "*.yaml"))
)
RULE_FILES = sorted(glob.glob(os.path.join(PROMETHEUS_DIR, "rules", "*.yml")))
DASHBOARDS = sorted(glob.glob(os.path.join(CONFIG_DIR, "grafana", "dashboards", "*.json")))

# What the gateway configs need from the environment to be complete (validate reads no files).
GATEWAY_ENV = {
    "GATEWAY_TLS_CERT": "/certs/gateway.crt",
    "GATEWAY_TLS_KEY": "/certs/gateway.key",
    "GATEWAY_TLS_CA": "/certs/ca.crt",
    "GATEWAY_BEARER_TOKEN": "token-for-validation",
    "GATEWAY_SAMPLERS": "[sampler-1:4317, sampler-2:4317]",
}


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("config", COLLECTOR_CONFIGS, ids=os.path.basename)
def test_collector_config_passes_the_built_collectors_validate(config):
    result = _run([require_binary("otelcol"), "validate", "--config", config], GATEWAY_ENV)
    assert result.returncode == 0, result.stderr[-3000:]


def test_validate_rejects_a_broken_config(tmp_path):
    """The check above can fail: an unknown component type is refused."""
    with open(os.path.join(CONFIG_DIR, "agent.yaml"), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["exporters"]["no_such_exporter"] = {}
    config["service"]["pipelines"]["traces"]["exporters"].append("no_such_exporter")
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(config))
    result = _run([require_binary("otelcol"), "validate", "--config", str(broken)])
    assert result.returncode != 0
    assert "no_such_exporter" in result.stderr


def test_jaeger_config_passes_jaegers_validate():
    result = _run([require_binary("jaeger"), "validate", "--config", os.path.join(CONFIG_DIR, "jaeger.yaml")])
    assert result.returncode == 0, result.stderr[-3000:]


def test_built_collector_has_every_component_of_the_manifest():
    """The distribution really contains the components the configs use (names as of the pinned version)."""
    result = _run([require_binary("otelcol"), "components"])
    assert result.returncode == 0, result.stderr
    components = yaml.safe_load(result.stdout)
    names = {kind: {entry["name"] for entry in components.get(kind) or []}
             for kind in ("receivers", "processors", "exporters", "connectors", "extensions")}
    assert "otlp" in names["receivers"]
    assert {"memory_limiter", "batch", "resource", "attributes", "transform", "filter", "tail_sampling"} <= names["processors"]
    assert {"otlp_grpc", "otlp_http", "debug", "file", "prometheus", "prometheusremotewrite", "loadbalancing"} <= names["exporters"]
    assert {"span_metrics", "count"} <= names["connectors"]
    assert {"health_check", "pprof", "file_storage", "bearertokenauth"} <= names["extensions"]


def test_manifest_pairs_component_versions():
    """Builder, core and contrib components at one v0.N; stable core modules at one v1.M."""
    with open(os.path.join(CONFIG_DIR, "builder-config.yaml"), encoding="utf-8") as handle:
        manifest = yaml.safe_load(handle)
    versions = {entry["gomod"].split()[1] for kind in ("receivers", "processors", "exporters", "connectors", "extensions", "providers")
                for entry in manifest.get(kind, [])}
    v0 = {v for v in versions if v.startswith("v0.")}
    v1 = {v for v in versions if v.startswith("v1.")}
    assert v0 == {"v" + manifest["dist"]["version"]}
    assert len(v1) == 1
    with open(os.path.join(os.path.dirname(CONFIG_DIR), "scripts", "build-stack.sh"), encoding="utf-8") as handle:
        assert f"OCB_VERSION=v{manifest['dist']['version']}" in handle.read()


def _endpoint_defaults(node) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "metric_backends":  # where Jaeger reads metrics from (a client), not a listener
                continue
            if key in ("endpoint", "host") and isinstance(value, str):
                found.append(value)
            found.extend(_endpoint_defaults(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_endpoint_defaults(item))
    return found


@pytest.mark.parametrize("name", ["agent.yaml", "jaeger.yaml", "gateway/loadbalancer.yaml", "gateway/sampler.yaml"])
def test_listening_addresses_default_to_loopback(name):
    with open(os.path.join(CONFIG_DIR, name), encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    listening = _endpoint_defaults(config.get("receivers", {})) + _endpoint_defaults(config.get("extensions", {})) \
        + _endpoint_defaults(config.get("service", {}).get("telemetry", {}))
    if "prometheus" in config.get("exporters", {}):
        listening += _endpoint_defaults(config["exporters"]["prometheus"])
    assert listening
    for value in listening:
        default = re.sub(r"^\$\{env:[A-Z_]+:-(.*)\}$", r"\1", value)
        assert default.startswith("127.0.0.1"), f"{name}: {value} does not default to 127.0.0.1"


def test_promtool_accepts_the_prometheus_config():
    result = _run([require_binary("promtool"), "check", "config", os.path.join(PROMETHEUS_DIR, "prometheus.yml")])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_every_rule_file():
    assert any(path.endswith("stack.yml") for path in RULE_FILES)
    result = _run([require_binary("promtool"), "check", "rules", *RULE_FILES])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: rate(up[5m]\n")
    assert _run([require_binary("promtool"), "check", "rules", str(broken)]).returncode != 0


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in RULE_FILES:
        with open(path, encoding="utf-8") as handle:
            for group in (yaml.safe_load(handle) or {}).get("groups", []):
                for rule in group.get("rules", []):
                    found.append((f"{os.path.basename(path)}:{rule.get('alert') or rule.get('record')}", rule["expr"]))
    return found


# Grafana's template variables, replaced by what Grafana would send.
GRAFANA_VARIABLES = [
    (re.compile(r"\$__rate_interval|\$\{__rate_interval\}"), "1m"),
    (re.compile(r"\$__interval|\$\{__interval\}"), "1m"),
    (re.compile(r"\$__range|\$\{__range\}"), "1h"),
    (re.compile(r"\$\{?[a-z_]+(:[a-z]+)?\}?"), ".*"),
]


def grafana_to_promql(expr: str) -> str:
    for pattern, value in GRAFANA_VARIABLES:
        expr = pattern.sub(value, expr)
    return expr


def dashboard_expressions() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        with open(path, encoding="utf-8") as handle:
            dashboard = json.load(handle)
        for panel in dashboard.get("panels", []):
            for target in panel.get("targets", []):
                found.append((f"{os.path.basename(path)}:{panel.get('title')}", grafana_to_promql(target["expr"])))
        for variable in dashboard.get("templating", {}).get("list", []):
            query = variable.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            match = re.match(r"label_values\((.*),\s*\w+\)$", query or "")
            if match:
                found.append((f"{os.path.basename(path)}:${variable['name']}", grafana_to_promql(match.group(1))))
    return found


@pytest.fixture(scope="module")
def empty_prometheus(tmp_path_factory):
    prometheus = start_prometheus(tmp_path_factory.mktemp("promql"), [])
    yield prometheus
    prometheus.stop()


def test_every_promql_expression_is_accepted_by_prometheus(empty_prometheus):
    expressions = rule_expressions() + dashboard_expressions()
    assert len(expressions) > 20
    rejected = []
    for where, expr in expressions:
        try:
            empty_prometheus.query(expr)
        except AssertionError as error:
            rejected.append(f"{where}: {error}")
    assert not rejected, "\n".join(rejected)


def test_prometheus_query_api_rejects_bad_promql(empty_prometheus):
    with pytest.raises(AssertionError, match="bad_data"):
        empty_prometheus.query("sum by (job (up)")


def test_prometheus_loaded_every_rule_file(empty_prometheus):
    groups = empty_prometheus.api("rules")["groups"]
    loaded = {os.path.basename(group["file"]) for group in groups}
    assert {os.path.basename(path) for path in RULE_FILES} <= loaded


def test_dashboards_are_provisioned_grafana_json():
    assert {"system-overview.json", "trading.json", "rag-genai.json", "api-red.json", "cost-budgets.json"} <= {
        os.path.basename(path) for path in DASHBOARDS}
    with open(os.path.join(CONFIG_DIR, "grafana", "provisioning", "datasources", "datasources.yaml"), encoding="utf-8") as handle:
        datasource_uids = {source["uid"] for source in yaml.safe_load(handle)["datasources"]}
    uids = set()
    for path in DASHBOARDS:
        with open(path, encoding="utf-8") as handle:
            dashboard = json.load(handle)
        assert dashboard["uid"] not in uids, f"duplicate uid in {path}"
        uids.add(dashboard["uid"])
        assert dashboard["panels"], path
        for panel in dashboard["panels"]:
            if panel.get("type") == "row":
                continue
            assert panel["datasource"]["uid"] in datasource_uids, f"{path}: {panel.get('title')}"
            assert panel.get("targets"), f"{path}: {panel.get('title')} has no query"


def test_docker_compose_mounts_the_shipped_files_and_publishes_on_loopback_only():
    with open(os.path.join(CONFIG_DIR, "docker-compose.yml"), encoding="utf-8") as handle:
        compose = yaml.safe_load(handle)
    services = compose["services"]
    assert {"otel-collector", "jaeger", "prometheus", "grafana", "alertmanager", "victorialogs"} <= set(services)
    images = " ".join(service["image"] for service in services.values())
    assert "otel/opentelemetry-collector-contrib:0.152.0" in images  # the version the configs are written for
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert os.path.exists(os.path.join(CONFIG_DIR, source)), f"{name} mounts missing {source}"
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
