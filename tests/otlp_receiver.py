"""A real OTLP receiver for the tests: oteltest's GrpcSink and HttpSink (the library behind
`otelsink`) on ports given on the command line. Prints one JSON line per request received:
{"kind": "metrics"|"trace", "request": <the OTLP request as a dict>, "headers": {...}}.
Prints "ready" once the servers listen.

    python3 tests/otlp_receiver.py GRPC_PORT HTTP_PORT [CERT KEY GRPC_TLS_PORT HTTPS_PORT]

With a certificate and key, the same gRPC server also listens with TLS on GRPC_TLS_PORT, and an
HTTPS receiver (Python's http.server behind ssl, decoding `Content-Encoding: gzip` as collectors
do) on HTTPS_PORT; its lines carry the request's headers, so a test sees the encoding it sent.
"""
import gzip
import json
import logging
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from oteltest.sink import GrpcSink, HttpSink
from oteltest.sink.handler import RequestHandler


def emit(kind, request, headers):
    try:
        hdrs = {k: v for k, v in (headers.items() if hasattr(headers, "items") else headers.invocation_metadata())}
    except Exception:  # noqa: BLE001 - gRPC contexts expose metadata differently
        hdrs = {}
    print(json.dumps({"kind": kind, "request": MessageToDict(request), "headers": hdrs}), flush=True)


class Handler(RequestHandler):
    def handle_logs(self, request, headers):
        emit("logs", request, headers)

    def handle_metrics(self, request, headers):
        emit("metrics", request, headers)

    def handle_trace(self, request, headers):
        emit("trace", request, headers)


def https_receiver(port, cert, key):
    kinds = {"/v1/metrics": ("metrics", ExportMetricsServiceRequest), "/v1/traces": ("trace", ExportTraceServiceRequest)}

    class Https(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            kind, cls = kinds.get(self.path, (None, None))
            if kind:
                req = cls()
                req.ParseFromString(body)
                emit(kind, req, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(200 if kind else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", port), Https)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main():
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    logger = logging.getLogger("otlp-receiver")
    sink = GrpcSink(Handler(), logger, port=grpc_port)
    if len(sys.argv) > 3:
        cert, key, grpc_tls_port, https_port = sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
        with open(cert, "rb") as c, open(key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        sink.svr.add_secure_port(f"127.0.0.1:{grpc_tls_port}", creds)
        https_receiver(https_port, cert, key)
    sink.start()
    http = HttpSink(Handler(), logger, port=http_port, daemon=True)
    http.start()
    print("ready", flush=True)
    sink.wait_for_termination()


if __name__ == "__main__":
    main()
