"""Scaling out the metrics side: the agent's `prometheusremotewrite` exporter (defined in agent.yaml,
off by default) pushing to a remote-write receiver, as it would to Mimir, Thanos or VictoriaMetrics.
A Prometheus with its remote-write receiver on stands in for the distributed TSDB."""

from __future__ import annotations

import subprocess
import sys

import yaml

from stackprocs import AGENT_CONFIG, start_collector, start_prometheus, wait_until
from support import clean_env

SERVICE = "remote-write-probe"
SEND = """
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
provider = TracerProvider(resource=Resource.create({"service.name": sys.argv[2]}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("remote-write-test")
for i in range(int(sys.argv[3])):
    with tracer.start_as_current_span("settle"):
        pass
provider.shutdown()
"""


def test_span_metrics_reach_a_remote_write_receiver_with_the_workloads_count(tmp_path):
    # The shipped agent config with the exporter switched on, as docs/collector.md tells an operator to.
    with open(AGENT_CONFIG, encoding="utf-8") as handle:
        config = yaml.safe_load(handle)
    config["service"]["pipelines"]["metrics"]["exporters"].append("prometheusremotewrite")
    agent = tmp_path / "agent-remote-write.yaml"
    agent.write_text(yaml.safe_dump(config, sort_keys=False))

    # No scrape targets: whatever this Prometheus holds was pushed to it.
    receiver = start_prometheus(tmp_path, {}, name="receiver")
    receiver.process.stop()
    receiver.process.spec.argv.append("--web.enable-remote-write-receiver")
    receiver.start()
    with receiver, start_collector(str(agent), tmp_path, env={"OTELCOL_REMOTE_WRITE_URL": f"{receiver.url}/api/v1/write"}) as collector:
        sent = subprocess.run([sys.executable, "-c", SEND, collector.otlp_grpc_endpoint, SERVICE, "25"], env=clean_env(),
                              capture_output=True, text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr
        query = f'sum(traces_span_metrics_calls_total{{service_name="{SERVICE}",span_name="settle"}})'
        wait_until(lambda: (lambda r: r and float(r[0]["value"][1]) == 25)(receiver.query(query)), 90,
                   what="25 calls pushed to the remote-write receiver")
        # The same series the pull path serves, so Jaeger's Monitor tab and the rules work against the TSDB.
        assert receiver.query(f'traces_span_metrics_duration_seconds_count{{service_name="{SERVICE}"}}')
        assert not receiver.api("targets")["activeTargets"]
