"""The gateway tier for real: a load-balancing collector in front of two tail-sampling collectors,
all speaking OTLP over TLS with a bearer token (collector-config/gateway/*.yaml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import defaultdict

import pytest

from stackprocs import CONFIG_DIR, start_collector, wait_until
from support import clean_env, free_port, read_otlp_file, spans_from_requests

TOKEN = "gateway-test-token"
LOADBALANCER = os.path.join(CONFIG_DIR, "gateway", "loadbalancer.yaml")
SAMPLER = os.path.join(CONFIG_DIR, "gateway", "sampler.yaml")
TRACES = 80  # every 4th one has an error span, every 10th (5, 15, ...) is slow
KEPT = {i for i in range(TRACES) if i % 4 == 0 or i % 10 == 5}


def _certificates(directory) -> dict[str, str]:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl, as an operator would)."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is needed to make the test certificates")
    paths = {name: str(directory / name) for name in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt", "ext.cnf")}
    with open(paths["ext.cnf"], "w", encoding="ascii") as handle:
        handle.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=otel-monitoring test CA",
        "-keyout", paths["ca.key"], "-out", paths["ca.crt"])
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", paths["server.key"], "-out", paths["server.csr"])
    run("x509", "-req", "-in", paths["server.csr"], "-CA", paths["ca.crt"], "-CAkey", paths["ca.key"], "-CAcreateserial",
        "-days", "1", "-extfile", paths["ext.cnf"], "-out", paths["server.crt"])
    return paths


def _gateway_env(certs: dict[str, str], health: int, telemetry: int, otlp: int) -> dict[str, str]:
    return {
        "GATEWAY_TLS_CERT": certs["server.crt"], "GATEWAY_TLS_KEY": certs["server.key"], "GATEWAY_TLS_CA": certs["ca.crt"],
        "GATEWAY_BEARER_TOKEN": TOKEN,
        "GATEWAY_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{otlp}",
        "GATEWAY_HEALTH_ENDPOINT": f"127.0.0.1:{health}",
        "GATEWAY_TELEMETRY_PORT": str(telemetry),
    }


SEND = """
import sys, time, grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import Status, StatusCode

endpoint, ca_path, token, traces = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
credentials = grpc.ssl_channel_credentials(root_certificates=open(ca_path, "rb").read())
exporter = OTLPSpanExporter(endpoint=endpoint, credentials=credentials, headers={"authorization": f"Bearer {token}"})
provider = TracerProvider(resource=Resource.create({"service.name": "gateway-test"}))
if traces == 0:  # a single span, exported directly: prints the export result
    tracer = TracerProvider().get_tracer("probe")
    with tracer.start_as_current_span("probe") as span:
        pass
    print(exporter.export([span]).name)
    sys.exit(0)
provider.add_span_processor(BatchSpanProcessor(exporter))
tracer = provider.get_tracer("gateway-test")
for i in range(traces):
    with tracer.start_as_current_span(f"request-{i}") as root:
        root.set_attribute("test.index", i)
        with tracer.start_as_current_span("step-a"):
            pass
        with tracer.start_as_current_span("step-b") as step:
            if i % 4 == 0:
                step.set_status(Status(StatusCode.ERROR, "boom"))
            if i % 10 == 5:
                time.sleep(0.3)  # a slow trace
provider.shutdown()
"""


def _send(endpoint: str, ca: str, token: str, traces: int) -> str:
    result = subprocess.run([sys.executable, "-c", SEND, endpoint, ca, token, str(traces)], env=clean_env(),
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip()


def test_loadbalancer_routes_whole_traces_to_tail_samplers_that_keep_errors(tmp_path):
    certs = _certificates(tmp_path)
    samplers = []
    lb = None
    try:
        for n in (1, 2):
            otlp = free_port()
            env = {**_gateway_env(certs, free_port(), free_port(), otlp),
                   "GATEWAY_DATA_DIR": str(tmp_path / f"sampler-{n}" / "data"),
                   "GATEWAY_TRACES_ENDPOINT": f"127.0.0.1:{free_port()}",  # no Jaeger: the file is checked
                   "GATEWAY_DECISION_WAIT": "1s", "GATEWAY_SAMPLE_PERCENT": "0", "GATEWAY_SLOW_TRACE_MS": "250"}
            sampler = start_collector(SAMPLER, tmp_path, name=f"sampler-{n}", env=env,
                                      collector_health=int(env["GATEWAY_HEALTH_ENDPOINT"].rsplit(":", 1)[1]))
            sampler.gateway_otlp = otlp
            samplers.append(sampler)
        lb_otlp = free_port()
        lb_env = {**_gateway_env(certs, free_port(), free_port(), lb_otlp),
                  "GATEWAY_SAMPLERS": "[" + ", ".join(f"127.0.0.1:{s.gateway_otlp}" for s in samplers) + "]"}
        lb = start_collector(LOADBALANCER, tmp_path, name="loadbalancer", env=lb_env,
                             collector_health=int(lb_env["GATEWAY_HEALTH_ENDPOINT"].rsplit(":", 1)[1]))

        # Without the token (or with a wrong one) the gateway refuses the data.
        assert _send(f"127.0.0.1:{lb_otlp}", certs["ca.crt"], "wrong-token", 0) == "FAILURE"
        _send(f"127.0.0.1:{lb_otlp}", certs["ca.crt"], TOKEN, TRACES)

        def kept():
            found = defaultdict(lambda: defaultdict(set))  # trace id -> sampler -> span names
            for n in range(len(samplers)):
                path = os.path.join(str(tmp_path / f"sampler-{n + 1}" / "data"), "traces.jsonl")
                if not os.path.exists(path):
                    continue
                for _, _, span in spans_from_requests(read_otlp_file(path, "traces")):
                    found[span.trace_id][n].add(span.name)
            return found if len(found) >= len(KEPT) else None

        found = wait_until(kept, 30, what="the error and slow traces in the samplers' files")
    finally:
        for process in ([lb] if lb else []) + samplers:
            process.stop()
    # Exactly the error and slow traces were kept (the rest sampled at 0 %), each whole, on one sampler.
    indexes = set()
    for trace_id, per_sampler in found.items():
        assert len(per_sampler) == 1, f"trace {trace_id.hex()} was split across samplers"
        (names,) = per_sampler.values()
        assert {"step-a", "step-b"} <= names and any(name.startswith("request-") for name in names)
        indexes.add(int(next(name for name in names if name.startswith("request-")).split("-")[1]))
    assert indexes == KEPT
    # Both samplers took a share (routing by trace id spreads the traces).
    assert {n for per_sampler in found.values() for n in per_sampler} == {0, 1}
