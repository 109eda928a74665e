"""A real OTLP receiver on 127.0.0.1 for tests: gRPC (the collector's services from opentelemetry-proto)
and HTTP/protobuf (POST /v1/traces, /v1/metrics, /v1/logs). It decodes and keeps every request, and
the bytes of every trace request as they arrived (``raw``, after any decompression)."""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from support import free_port


class OtlpReceiver:
    def __init__(self) -> None:
        self.requests: dict[str, list[Any]] = {"traces": [], "metrics": [], "logs": []}
        self.headers: list[dict[str, str]] = []
        self.raw: list[bytes] = []  # trace requests, as sent
        self.fail_next: list[grpc.StatusCode] = []  # gRPC trace exports to refuse first, with these codes
        self._lock = threading.Lock()
        self._grpc_server: grpc.Server | None = None
        self._http_server: ThreadingHTTPServer | None = None
        self.grpc_endpoint = ""
        self.http_endpoint = ""

    def _keep(self, signal: str, request: Any, headers: dict[str, str]) -> None:
        with self._lock:
            self.requests[signal].append(request)
            self.headers.append(headers)

    def spans(self) -> list[Any]:
        with self._lock:
            return [span for request in self.requests["traces"] for rs in request.resource_spans
                    for ss in rs.scope_spans for span in ss.spans]

    def start_grpc(self) -> str:
        receiver = self
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

        def traces(raw: bytes, context: Any) -> Any:
            # the generated servicer's parse, with the bytes kept before it
            with receiver._lock:
                refuse = receiver.fail_next.pop(0) if receiver.fail_next else None
            if refuse is not None:
                context.abort(refuse, "refused by the test")
            with receiver._lock:
                receiver.raw.append(raw)
            receiver._keep("traces", trace_service_pb2.ExportTraceServiceRequest.FromString(raw),
                           dict(context.invocation_metadata()))
            return trace_service_pb2.ExportTraceServiceResponse()

        class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
            def Export(self, request, context):  # noqa: N802 - gRPC's method name
                receiver._keep("metrics", request, dict(context.invocation_metadata()))
                return metrics_service_pb2.ExportMetricsServiceResponse()

        class Logs(logs_service_pb2_grpc.LogsServiceServicer):
            def Export(self, request, context):  # noqa: N802 - gRPC's method name
                receiver._keep("logs", request, dict(context.invocation_metadata()))
                return logs_service_pb2.ExportLogsServiceResponse()

        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService",
            {"Export": grpc.unary_unary_rpc_method_handler(
                traces, request_deserializer=None,
                response_serializer=trace_service_pb2.ExportTraceServiceResponse.SerializeToString)}),))
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
        port = free_port()
        server.add_insecure_port(f"127.0.0.1:{port}")
        server.start()
        self._grpc_server = server
        self.grpc_endpoint = f"http://127.0.0.1:{port}"
        return self.grpc_endpoint

    def start_http(self) -> str:
        receiver = self
        messages = {
            "/v1/traces": ("traces", trace_service_pb2.ExportTraceServiceRequest, trace_service_pb2.ExportTraceServiceResponse),
            "/v1/metrics": ("metrics", metrics_service_pb2.ExportMetricsServiceRequest, metrics_service_pb2.ExportMetricsServiceResponse),
            "/v1/logs": ("logs", logs_service_pb2.ExportLogsServiceRequest, logs_service_pb2.ExportLogsServiceResponse),
        }

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                found = messages.get(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if found is None or self.headers.get("Content-Type") != "application/x-protobuf":
                    self.send_response(404)
                    self.end_headers()
                    return
                signal, request_cls, response_cls = found
                if self.headers.get("Content-Encoding") == "gzip":
                    import gzip

                    body = gzip.decompress(body)
                if signal == "traces":
                    with receiver._lock:
                        receiver.raw.append(body)
                request = request_cls()
                request.ParseFromString(body)
                receiver._keep(signal, request, {k.lower(): v for k, v in self.headers.items()})
                payload = response_cls().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._http_server = server
        self.http_endpoint = f"http://127.0.0.1:{server.server_address[1]}"
        return self.http_endpoint

    def stop(self) -> None:
        if self._grpc_server is not None:
            self._grpc_server.stop(grace=None)
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
