//! Collector metrics, registered under the `skein_collector_` prefix.
//!
//! Items get a counter per signal, because spans and data points are not
//! the same unit: `spans_accepted_total` / `spans_rejected_total` and
//! `points_accepted_total` / `points_rejected_total`. Requests and their
//! sizes carry a `signal` label (`traces`, `metrics`) beside `transport`:
//! `requests_total{signal,transport,outcome}` and
//! `request_body_bytes{signal,transport}`; `transport` is `grpc`, `http` or
//! `zipkin` (Zipkin spans on the OTLP/HTTP port).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::CollectorError;
use crate::signal::SignalKind;

/// Which receiver a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Grpc,
    Http,
    /// Zipkin v2 JSON on the OTLP/HTTP port.
    Zipkin,
}

impl Transport {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
            Transport::Zipkin => "zipkin",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    signal: &'static str,
    transport: &'static str,
    /// `ok`, `partial` (some items rejected) or the error class name.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BodyLabels {
    signal: &'static str,
    transport: &'static str,
}

type HistogramFamily = Family<BodyLabels, Histogram, fn() -> Histogram>;

/// Accepted and rejected items of one signal.
#[derive(Debug, Clone, Default)]
struct ItemCounters {
    accepted: Counter,
    rejected: Counter,
}

fn body_size_histogram() -> Histogram {
    // 1 KiB .. 256 MiB in factors of 4.
    Histogram::new(exponential_buckets(1024.0, 4.0, 10))
}

#[derive(Debug, Clone)]
pub(crate) struct CollectorMetrics {
    spans: ItemCounters,
    points: ItemCounters,
    log_records: ItemCounters,
    values_truncated: Counter,
    requests: Family<RequestLabels, Counter>,
    body_bytes: HistogramFamily,
}

impl CollectorMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            spans: ItemCounters::default(),
            points: ItemCounters::default(),
            log_records: ItemCounters::default(),
            values_truncated: Counter::default(),
            requests: Family::default(),
            body_bytes: HistogramFamily::new_with_constructor(body_size_histogram),
        };
        let registry = registry.sub_registry_with_prefix("skein").sub_registry_with_prefix("collector");
        registry.register("spans_accepted", "Spans durably stored", metrics.spans.accepted.clone());
        registry.register(
            "spans_rejected",
            "Spans refused as invalid (reported as partial success)",
            metrics.spans.rejected.clone(),
        );
        registry.register("points_accepted", "Metric data points durably stored", metrics.points.accepted.clone());
        registry.register(
            "points_rejected",
            "Metric data points refused as invalid (reported as partial success)",
            metrics.points.rejected.clone(),
        );
        registry.register("log_records_accepted", "Log records durably stored", metrics.log_records.accepted.clone());
        registry.register(
            "log_records_rejected",
            "Log records refused as invalid (reported as partial success)",
            metrics.log_records.rejected.clone(),
        );
        registry.register(
            "attribute_values_truncated",
            "Attribute values cut to the configured size limit",
            metrics.values_truncated.clone(),
        );
        registry.register("requests", "Export requests by signal, transport and outcome", metrics.requests.clone());
        registry.register(
            "request_body_bytes",
            "Size of decoded (decompressed) export requests in bytes",
            metrics.body_bytes.clone(),
        );
        metrics
    }

    pub(crate) fn observe_body(&self, signal: SignalKind, transport: Transport, bytes: usize) {
        let labels = BodyLabels { signal: signal.as_str(), transport: transport.as_str() };
        self.body_bytes.get_or_create(&labels).observe(bytes as f64);
    }

    pub(crate) fn record_success(
        &self,
        signal: SignalKind,
        transport: Transport,
        accepted: u64,
        rejected: u64,
        truncated: u64,
    ) {
        let items = match signal {
            SignalKind::Traces => &self.spans,
            SignalKind::Metrics => &self.points,
            SignalKind::Logs => &self.log_records,
        };
        items.accepted.inc_by(accepted);
        items.rejected.inc_by(rejected);
        self.values_truncated.inc_by(truncated);
        let outcome = if rejected > 0 { "partial" } else { "ok" };
        let labels = RequestLabels { signal: signal.as_str(), transport: transport.as_str(), outcome };
        self.requests.get_or_create(&labels).inc();
    }

    pub(crate) fn record_failure(&self, signal: SignalKind, transport: Transport, error: &CollectorError) {
        let labels =
            RequestLabels { signal: signal.as_str(), transport: transport.as_str(), outcome: error.class().name() };
        self.requests.get_or_create(&labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_prefixed_names() {
        let mut registry = Registry::default();
        let metrics = CollectorMetrics::register(&mut registry);
        metrics.record_success(SignalKind::Traces, Transport::Http, 5, 2, 1);
        metrics.record_success(SignalKind::Metrics, Transport::Grpc, 7, 0, 2);
        metrics.record_success(SignalKind::Metrics, Transport::Http, 1, 3, 0);
        metrics.record_failure(SignalKind::Traces, Transport::Grpc, &CollectorError::Overloaded { limit: 1 });
        metrics.record_failure(SignalKind::Metrics, Transport::Http, &CollectorError::PayloadTooLarge { limit: 1 });
        metrics.observe_body(SignalKind::Traces, Transport::Http, 2000);
        metrics.observe_body(SignalKind::Metrics, Transport::Grpc, 300);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode metrics");
        for line in [
            "skein_collector_spans_accepted_total 5",
            "skein_collector_spans_rejected_total 2",
            "skein_collector_points_accepted_total 8",
            "skein_collector_points_rejected_total 3",
            "skein_collector_attribute_values_truncated_total 3",
            "skein_collector_requests_total{signal=\"traces\",transport=\"http\",outcome=\"partial\"} 1",
            "skein_collector_requests_total{signal=\"metrics\",transport=\"grpc\",outcome=\"ok\"} 1",
            "skein_collector_requests_total{signal=\"metrics\",transport=\"http\",outcome=\"partial\"} 1",
            "skein_collector_requests_total{signal=\"traces\",transport=\"grpc\",outcome=\"overloaded\"} 1",
            "skein_collector_requests_total{signal=\"metrics\",transport=\"http\",outcome=\"payload_too_large\"} 1",
            "skein_collector_request_body_bytes_count{signal=\"traces\",transport=\"http\"} 1",
            "skein_collector_request_body_bytes_sum{signal=\"traces\",transport=\"http\"} 2000.0",
            "skein_collector_request_body_bytes_sum{signal=\"metrics\",transport=\"grpc\"} 300.0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
