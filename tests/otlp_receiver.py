"""A real OTLP receiver for the tests: oteltest's GrpcSink and HttpSink (the library behind
`otelsink`) on ports given on the command line. Prints one JSON line per request received:
{"kind": "metrics"|"trace", "request": <the OTLP request as a dict>, "headers": {...}}.
Prints "ready" once both servers listen.

    python3 tests/otlp_receiver.py GRPC_PORT HTTP_PORT
"""
import json
import logging
import sys

from google.protobuf.json_format import MessageToDict
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


def main():
    grpc_port, http_port = int(sys.argv[1]), int(sys.argv[2])
    logger = logging.getLogger("otlp-receiver")
    grpc = GrpcSink(Handler(), logger, port=grpc_port)
    grpc.start()
    http = HttpSink(Handler(), logger, port=http_port, daemon=True)
    http.start()
    print("ready", flush=True)
    grpc.wait_for_termination()


if __name__ == "__main__":
    main()
