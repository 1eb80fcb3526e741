"""Exports logs (and the trace they belong to) to Skein with the real OpenTelemetry Python SDK.

The integration tests run this script and compare what Skein stored with what
the SDK sent: every logs export the OTLP exporter made is also encoded with the
SDK's own OTLP encoder and printed, hex-encoded, so the test can compare record
by record. The script exits non-zero if any export failed.

What it logs, through Python's `logging` module (the SDK's LoggingHandler) and
through the Logs API directly:
- inside a span `place order` of a trace (so the records carry its trace and
  span IDs): an INFO line with arguments, a WARNING with extra attributes, and
  an ERROR with an exception (the SDK adds exception.* attributes);
- outside any span: a DEBUG line, and an event emitted through the Logs API
  with a structured (map) body and typed attributes.

Prints one JSON object: {"requests": [hex, ...], "traceId", "spanId",
"errorBody", "service", "count"}.

Usage: send_logs.py --endpoint http://127.0.0.1:4317 --protocol grpc|http [--service NAME]
"""

import argparse
import json
import logging
import sys

from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor


class RecordingExporter(LogRecordExporter):
    """Sends through the real OTLP exporter and keeps what it sent."""

    def __init__(self, inner):
        self.inner = inner
        self.sent = []
        self.failed = False

    def export(self, batch):
        result = self.inner.export(batch)
        if result is LogRecordExportResult.SUCCESS:
            self.sent.append(encode_logs(batch).SerializeToString())
        else:
            self.failed = True
        return result

    def force_flush(self, timeout_millis=10_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self):
        self.inner.shutdown()


def exporters(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPLogExporter(endpoint=endpoint, insecure=True), OTLPSpanExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"), OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--service", default="logs-py")
    args = parser.parse_args()

    resource = Resource.create({"service.name": args.service, "host.name": "host-a", "host.cpu.count": 2})
    log_exporter, span_exporter = exporters(args.protocol, args.endpoint)
    recording = RecordingExporter(log_exporter)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(recording))
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracer = tracer_provider.get_tracer("logs-test")

    log = logging.getLogger("shop.orders")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(LoggingHandler(level=logging.DEBUG, logger_provider=logger_provider))

    error_body = "payment for order 17 failed"
    with tracer.start_as_current_span("place order") as span:
        ctx = span.get_span_context()
        log.info("order %s placed by %s", 17, "ada")
        log.warning("stock low", extra={"sku": "A-17", "stock.left": 2, "stock.ratio": 0.05})
        try:
            raise ValueError("card declined")
        except ValueError:
            log.exception(error_body)
    log.debug("cache warmed in %d ms", 12)
    logger_provider.get_logger("shop.events", "1.2.0").emit(
        severity_number=SeverityNumber.INFO,
        severity_text="INFO",
        body={"event": "cart.viewed", "items": [1, 2.5, True], "user": {"id": "u-1"}},
        attributes={"channel": "web", "retries": 3, "tags": ["a", "b"]},
        event_name="cart.viewed",
    )

    logger_provider.shutdown()
    tracer_provider.shutdown()
    if recording.failed:
        print("a logs export failed", file=sys.stderr)
        sys.exit(1)
    json.dump(
        {
            "requests": [sent.hex() for sent in recording.sent],
            "traceId": format(ctx.trace_id, "032x"),
            "spanId": format(ctx.span_id, "016x"),
            "errorBody": error_body,
            "service": args.service,
            "count": 5,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
