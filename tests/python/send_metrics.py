"""Exports every kind of metric instrument to Skein with the real OpenTelemetry Python SDK.

The integration tests run this script and compare what Skein stored with what
the SDK sent: every export the OTLP exporter made is also encoded with the
SDK's own OTLP encoder and printed on stdout, as a JSON list of hex-encoded
protobuf `ExportMetricsServiceRequest`s, so the test can compare point by
point. The script exits non-zero if any export failed.

Instruments: counter, up-down counter, histogram (explicit buckets), a
histogram with the exponential bucket aggregation, a synchronous gauge, and
observable gauge, counter and up-down counter. Some measurements are taken
inside a sampled span, so the SDK attaches exemplars with trace and span IDs.

Usage: send_metrics.py --endpoint http://127.0.0.1:4317 --protocol grpc|http
                       --temporality cumulative|delta [--service NAME] [--rounds N]
"""

import argparse
import json
import sys

from opentelemetry.exporter.otlp.proto.common._internal.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider


class RecordingExporter(MetricExporter):
    """Sends through the real OTLP exporter and keeps what it sent."""

    def __init__(self, inner):
        super().__init__(
            preferred_temporality=inner._preferred_temporality,
            preferred_aggregation=inner._preferred_aggregation,
        )
        self.inner = inner
        self.sent = []
        self.failed = False

    def export(self, metrics_data, timeout_millis=10_000, **kwargs):
        result = self.inner.export(metrics_data, timeout_millis=timeout_millis)
        if result is MetricExportResult.SUCCESS:
            self.sent.append(encode_metrics(metrics_data).SerializeToString())
        else:
            self.failed = True
        return result

    def force_flush(self, timeout_millis=10_000):
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis=30_000, **kwargs):
        self.inner.shutdown(timeout_millis=timeout_millis)


def otlp_exporter(protocol, endpoint, temporality):
    kind = AggregationTemporality.DELTA if temporality == "delta" else AggregationTemporality.CUMULATIVE
    preferred = {
        Counter: kind,
        UpDownCounter: AggregationTemporality.CUMULATIVE,
        Histogram: kind,
        ObservableCounter: kind,
        ObservableUpDownCounter: AggregationTemporality.CUMULATIVE,
        ObservableGauge: AggregationTemporality.CUMULATIVE,
    }
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint, insecure=True, preferred_temporality=preferred)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    return OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", preferred_temporality=preferred)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--temporality", choices=["cumulative", "delta"], required=True)
    parser.add_argument("--service", default="metrics-py")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    resource = Resource.create(
        {
            "service.name": args.service,
            "host.name": "host-a",
            "host.cpu.count": 2,
            "deployment.canary": False,
            "service.weight": 0.5,
        }
    )
    exporter = RecordingExporter(otlp_exporter(args.protocol, args.endpoint, args.temporality))
    # A long interval: the script decides when to export (force_flush), so
    # the rounds are deterministic.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=resource,
        metric_readers=[reader],
        views=[
            View(
                instrument_name="rpc.server.duration",
                aggregation=ExponentialBucketHistogramAggregation(max_size=40),
            )
        ],
    )
    tracer = TracerProvider(resource=resource).get_tracer("metrics-test")
    meter = provider.get_meter("skein.test.metrics", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0")

    requests = meter.create_counter("http.server.requests", unit="{request}", description="Requests served")
    active = meter.create_up_down_counter("http.server.active_requests", unit="{request}")
    duration = meter.create_histogram("http.server.duration", unit="ms", description="Request latency")
    rpc = meter.create_histogram("rpc.server.duration", unit="ms", description="RPC latency, exponential buckets")
    queue = meter.create_gauge("queue.depth", unit="{item}")
    round_no = {"n": 0}

    def cpu(options: CallbackOptions):
        n = round_no["n"]
        yield Observation(0.25 + n / 100, {"cpu": 0, "state": "user"})
        yield Observation(0.5 - n / 100, {"cpu": 1, "state": "user"})

    def page_faults(options: CallbackOptions):
        yield Observation(1000 + 17 * round_no["n"], {"type": "major"})

    def threads(options: CallbackOptions):
        yield Observation(12 - round_no["n"], {"pool": "io"})

    meter.create_observable_gauge("process.cpu.utilization", [cpu], unit="1")
    meter.create_observable_counter("process.page_faults", [page_faults])
    meter.create_observable_up_down_counter("process.threads", [threads])

    for n in range(args.rounds):
        round_no["n"] = n
        for i in range(5 + n):
            route = "/cart" if i % 2 else "/checkout"
            attrs = {"http.route": route, "http.response.status_code": 200 if i % 3 else 500, "ok": i % 3 != 0}
            requests.add(1 + i, attrs)
            active.add(1 if i % 2 else -1, {"http.route": route})
            # Inside a sampled span: the SDK attaches an exemplar linking the
            # point to this span.
            with tracer.start_as_current_span("handle"):
                duration.record(3.5 * (i + 1) + n, attrs)
            # Values over several orders of magnitude, and an exact zero
            # (the zero bucket); the SDK refuses negative histogram values.
            rpc.record(0.001 * (i + 1) * (10**n), {"rpc.method": "GetCart"})
            rpc.record(0.0 if i == 0 else 250.0 * i, {"rpc.method": "Refund"})
            queue.set(i * 2 + n, {"queue": "orders"})
        if not provider.force_flush():
            print("force_flush failed", file=sys.stderr)
            return 1
    provider.shutdown()
    if exporter.failed or not exporter.sent:
        print("an export failed", file=sys.stderr)
        return 1
    json.dump([body.hex() for body in exporter.sent], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
