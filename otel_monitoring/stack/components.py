"""How each stack program is started: command line, environment (the configs in collector-config/
read their addresses from environment variables), and health check URL."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

import yaml

from .assets import default_config_dir
from .process import ProcessSpec

# collector-config/: the packaged copy in an installed wheel, the repository's in a checkout.
CONFIG_DIR = default_config_dir()

# Jaeger's trace storage: Badger on local disk (the config's own), or the in-memory store.
JAEGER_STORAGES = ("badger", "memory")


@dataclass
class StackPorts:
    """Every port the local stack listens on (all on ``host``); the defaults are the standard ones."""

    host: str = "127.0.0.1"
    otlp_grpc: int = 4317            # collector OTLP gRPC in (the apps send here)
    otlp_http: int = 4318            # collector OTLP HTTP in
    collector_prometheus: int = 8889  # collector's prometheus exporter (SDK + spanmetrics metrics)
    collector_health: int = 13133
    collector_telemetry: int = 8888  # the collector's own metrics
    jaeger_otlp_grpc: int = 14317    # Jaeger's OTLP receiver, moved off 4317
    jaeger_otlp_http: int = 14318
    jaeger_query: int = 16686        # Jaeger query API and UI
    jaeger_query_grpc: int = 16685
    jaeger_health: int = 13134
    jaeger_telemetry: int = 14269
    prometheus: int = 9090
    alertmanager: int = 9093
    victorialogs: int = 9428         # VictoriaLogs: OTLP logs in, LogsQL queries and its web UI

    @classmethod
    def port_names(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name != "host"]

    def addr(self, port_name: str) -> str:
        return f"{self.host}:{getattr(self, port_name)}"


def collector_env(ports: StackPorts, data_dir: str) -> dict[str, str]:
    """The environment variables collector-config/agent.yaml reads."""
    return {
        "OTELCOL_OTLP_GRPC_ENDPOINT": ports.addr("otlp_grpc"),
        "OTELCOL_OTLP_HTTP_ENDPOINT": ports.addr("otlp_http"),
        "OTELCOL_PROMETHEUS_ENDPOINT": ports.addr("collector_prometheus"),
        "OTELCOL_HEALTH_ENDPOINT": ports.addr("collector_health"),
        "OTELCOL_TELEMETRY_PORT": str(ports.collector_telemetry),
        "OTELCOL_JAEGER_ENDPOINT": ports.addr("jaeger_otlp_grpc"),
        "OTELCOL_VICTORIALOGS_URL": f"http://{ports.addr('victorialogs')}",
        "OTELCOL_DATA_DIR": data_dir,
    }


def collector_spec(binary: str, ports: StackPorts, data_dir: str, config_path: str | None = None,
                   extra_env: dict[str, str] | None = None) -> ProcessSpec:
    config_path = config_path or os.path.join(CONFIG_DIR, "agent.yaml")
    return ProcessSpec(
        name="collector",
        argv=[binary, "--config", config_path],
        health_url=f"http://{ports.addr('collector_health')}/",
        env={**collector_env(ports, data_dir), **(extra_env or {})},
    )


def jaeger_spec(binary: str, ports: StackPorts, config_path: str | None = None, *, data_dir: str,
                ui_assets: str | None = None, extra_env: dict[str, str] | None = None) -> ProcessSpec:
    """Jaeger with ``config_path`` (default collector-config/jaeger.yaml): Badger files in ``data_dir``,
    span metrics read from the stack's Prometheus (``ports.prometheus``), the UI from ``ui_assets``."""
    config_path = config_path or os.path.join(CONFIG_DIR, "jaeger.yaml")
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": ports.addr("jaeger_otlp_grpc"),
        "JAEGER_OTLP_HTTP_ENDPOINT": ports.addr("jaeger_otlp_http"),
        "JAEGER_QUERY_HTTP_ENDPOINT": ports.addr("jaeger_query"),
        "JAEGER_QUERY_GRPC_ENDPOINT": ports.addr("jaeger_query_grpc"),
        "JAEGER_HEALTH_ENDPOINT": ports.addr("jaeger_health"),
        "JAEGER_TELEMETRY_PORT": str(ports.jaeger_telemetry),
        "JAEGER_DATA_DIR": data_dir,
        "JAEGER_PROMETHEUS_URL": f"http://{ports.addr('prometheus')}",
        "JAEGER_UI_ASSETS": ui_assets or "",
    }
    return ProcessSpec(
        name="jaeger",
        argv=[binary, "--config", config_path],
        # The query API answering is what the stack needs (health alone can precede it).
        health_url=f"http://{ports.addr('jaeger_query')}/api/services",
        env={**env, **(extra_env or {})},
    )


def write_jaeger_config(out_path: str, storage: str, template_path: str | None = None) -> str:
    """``template_path`` (collector-config/jaeger.yaml) as is for Badger; for ``memory``, a copy at
    ``out_path`` whose trace store is the in-memory one (lost on restart)."""
    template_path = template_path or os.path.join(CONFIG_DIR, "jaeger.yaml")
    if storage not in JAEGER_STORAGES:
        raise ValueError(f"unknown Jaeger storage {storage!r}; choose one of {', '.join(JAEGER_STORAGES)}")
    if storage == "badger":
        return template_path
    with open(template_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    backends = config["extensions"]["jaeger_storage"]["backends"]
    for name in backends:
        backends[name] = {"memory": {"max_traces": "${env:JAEGER_MAX_TRACES:-100000}"}}
    with open(out_path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return out_path


def write_prometheus_config(out_path: str, scrape_targets: dict[str, list[str]],
                            template_path: str | None = None, rules_dir: str | None = None,
                            scrape_interval: str | None = None, alertmanagers: list[str] | None = None) -> str:
    """Write a copy of collector-config/prometheus/prometheus.yml with the given targets per job
    (jobs not named keep theirs; a job named but absent is added), absolute rule paths and the
    Alertmanagers to notify (``None`` keeps the template's, ``[]`` removes them).
    Prometheus cannot read environment variables in static targets, hence a copy."""
    template_path = template_path or os.path.join(CONFIG_DIR, "prometheus", "prometheus.yml")
    with open(template_path, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    rules_dir = rules_dir or os.path.join(os.path.dirname(os.path.abspath(template_path)), "rules")
    config["rule_files"] = [os.path.join(rules_dir, "*.yml")]
    if scrape_interval:
        config["global"]["scrape_interval"] = scrape_interval
        config["global"]["evaluation_interval"] = scrape_interval
    if alertmanagers is not None:
        if alertmanagers:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
        else:
            config.pop("alerting", None)
    jobs = {job["job_name"]: job for job in config.get("scrape_configs", [])}
    for job_name, targets in scrape_targets.items():
        job = jobs.get(job_name)
        if job is None:
            job = {"job_name": job_name}
            config.setdefault("scrape_configs", []).append(job)
        job["static_configs"] = [{"targets": list(targets)}]
    with open(out_path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(config, handle, sort_keys=False)
    return out_path


def stack_scrape_targets(ports: StackPorts) -> dict[str, list[str]]:
    return {
        "otel-collector": [ports.addr("collector_prometheus")],
        "otel-collector-internal": [ports.addr("collector_telemetry")],
        "jaeger": [ports.addr("jaeger_telemetry")],
        "alertmanager": [ports.addr("alertmanager")],
        "victorialogs": [ports.addr("victorialogs")],
    }


DEFAULT_RETENTION = "30d"


def prometheus_spec(binary: str, ports: StackPorts, config_path: str, data_dir: str,
                    retention: str = DEFAULT_RETENTION) -> ProcessSpec:
    return ProcessSpec(
        name="prometheus",
        argv=[
            binary,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={data_dir}",
            f"--web.listen-address={ports.addr('prometheus')}",
            # The links in alert notifications (generatorURL); by default they name the host name.
            f"--web.external-url=http://{ports.addr('prometheus')}",
            f"--storage.tsdb.retention.time={retention}",
            "--web.enable-lifecycle",
            # Keeps the spanmetrics exemplars (trace ids), so a latency bucket links to its traces.
            "--enable-feature=exemplar-storage",
        ],
        health_url=f"http://{ports.addr('prometheus')}/-/ready",
    )
