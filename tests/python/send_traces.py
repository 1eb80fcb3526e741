"""Exports varied traces to Skein with the real OpenTelemetry Python SDK.

The integration tests run this script and compare what Skein stored with what
the SDK recorded: every span the SDK exported is also captured in memory and
printed on stdout as JSON, in Skein's typed-attribute form, one object per
span (a JSON list). The script exits non-zero if the export failed.

Usage: send_traces.py --endpoint http://127.0.0.1:4317 --protocol grpc|http
                      [--service NAME] [--traces N]

The exporters also read the SDK's own OTEL_EXPORTER_OTLP_* variables, e.g.
OTEL_EXPORTER_OTLP_HEADERS for a bearer token and, with an https endpoint,
OTEL_EXPORTER_OTLP_CERTIFICATE for the CA to trust.
"""

import argparse
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def typed(value):
    """A Python attribute value in Skein's typed JSON form."""
    if isinstance(value, bool):
        return {"type": "bool", "value": value}
    if isinstance(value, int):
        return {"type": "int", "value": value}
    if isinstance(value, float):
        return {"type": "double", "value": value}
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, (list, tuple)):
        return {"type": "array", "value": [typed(v) for v in value]}
    raise TypeError(f"unexpected attribute value {value!r}")


def attributes(attrs):
    return [dict(key=k, **typed(v)) for k, v in (attrs or {}).items()]


def hex_id(value, width):
    return format(value, f"0{width}x")


def span_json(span):
    ctx = span.get_span_context()
    return {
        "traceId": hex_id(ctx.trace_id, 32),
        "spanId": hex_id(ctx.span_id, 16),
        "parentSpanId": hex_id(span.parent.span_id, 16) if span.parent else None,
        "traceState": ctx.trace_state.to_header(),
        "name": span.name,
        "kind": span.kind.name.lower(),
        "startTimeUnixNano": str(span.start_time),
        "endTimeUnixNano": str(span.end_time),
        "status": {
            "code": span.status.status_code.name.lower(),
            "message": span.status.description or "",
        },
        "attributes": attributes(span.attributes),
        "events": [
            {
                "timeUnixNano": str(e.timestamp),
                "name": e.name,
                "attributes": attributes(e.attributes),
            }
            for e in span.events
        ],
        "links": [
            {
                "traceId": hex_id(link.context.trace_id, 32),
                "spanId": hex_id(link.context.span_id, 16),
                "attributes": attributes(link.attributes),
            }
            for link in span.links
        ],
        "resource": {"attributes": attributes(span.resource.attributes)},
        "scope": {
            "name": span.instrumentation_scope.name,
            "version": span.instrumentation_scope.version or "",
        },
    }


def make_exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        # https: TLS, trusting OTEL_EXPORTER_OTLP_CERTIFICATE when set.
        return OTLPSpanExporter(endpoint=endpoint, insecure=not endpoint.startswith("https://"))
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")


class FailureRecorder:
    """Wraps an exporter and remembers whether any export failed."""

    def __init__(self, inner):
        self.inner = inner
        self.failed = False

    def export(self, spans):
        result = self.inner.export(spans)
        if result.name != "SUCCESS":
            self.failed = True
        return result

    def shutdown(self):
        return self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return self.inner.force_flush(timeout_millis)


def emit(tracer, index):
    """One checkout trace: server → client → internal, an error, events, a link."""
    with tracer.start_as_current_span(
        f"GET /cart/{index}",
        kind=SpanKind.SERVER,
        attributes={
            "http.request.method": "GET",
            "http.route": "/cart/{id}",
            "http.response.status_code": 200,
            "user.name": "Zoë 🚀 東京",
            "cart.total": 129.95,
            "cart.empty": False,
            "cart.items": ["sku-1", "sku-2", "ünï"],
            "cart.quantities": [1, 2, 3],
            "cart.prices": [9.5, 20.25],
            "cart.flags": [True, False],
        },
    ) as root:
        root.add_event("cart.loaded", {"items": 3, "cached": True, "source": "redis"})
        with tracer.start_as_current_span(
            "SELECT carts",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.statement": "SELECT * FROM carts WHERE id = $1"},
        ):
            with tracer.start_as_current_span("decode rows", kind=SpanKind.INTERNAL) as inner:
                inner.set_attribute("rows", 42)
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT) as failing:
            failing.record_exception(ValueError("card declined"))
            failing.set_status(Status(StatusCode.ERROR, "payment failed"))
        linked = root.get_span_context()
    # A second trace, a consumer linked to the first.
    with tracer.start_as_current_span(
        "process order",
        kind=SpanKind.CONSUMER,
        links=[Link(linked, {"link.reason": "async follow-up", "link.attempt": 1})],
    ):
        pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--service", default="checkout")
    parser.add_argument("--traces", type=int, default=2)
    args = parser.parse_args()

    resource = Resource.create(
        {
            "service.name": args.service,
            "service.version": "1.4.2",
            "deployment.environment.name": "test",
            "host.cpu.count": 8,
        }
    )
    provider = TracerProvider(resource=resource)
    exporter = FailureRecorder(make_exporter(args.protocol, args.endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("skein.tests.python", "0.9.1")

    for i in range(args.traces):
        emit(tracer, i)

    flushed = provider.force_flush(30_000)
    provider.shutdown()
    if not flushed or exporter.failed:
        print("export to skein failed", file=sys.stderr)
        return 1
    json.dump([span_json(s) for s in memory.get_finished_spans()], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
