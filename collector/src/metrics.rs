//! Collector metrics, registered under the `skein_collector_` prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::CollectorError;

/// Which receiver a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    Grpc,
    Http,
}

impl Transport {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    transport: &'static str,
    /// `ok`, `partial` (some spans rejected) or the error class name.
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TransportLabels {
    transport: &'static str,
}

type HistogramFamily = Family<TransportLabels, Histogram, fn() -> Histogram>;

fn body_size_histogram() -> Histogram {
    // 1 KiB .. 256 MiB in factors of 4.
    Histogram::new(exponential_buckets(1024.0, 4.0, 10))
}

#[derive(Debug, Clone)]
pub(crate) struct CollectorMetrics {
    spans_accepted: Counter,
    spans_rejected: Counter,
    values_truncated: Counter,
    requests: Family<RequestLabels, Counter>,
    body_bytes: HistogramFamily,
}

impl CollectorMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            spans_accepted: Counter::default(),
            spans_rejected: Counter::default(),
            values_truncated: Counter::default(),
            requests: Family::default(),
            body_bytes: HistogramFamily::new_with_constructor(body_size_histogram),
        };
        let registry = registry.sub_registry_with_prefix("skein").sub_registry_with_prefix("collector");
        registry.register("spans_accepted", "Spans durably stored", metrics.spans_accepted.clone());
        registry.register(
            "spans_rejected",
            "Spans refused as invalid (reported as partial success)",
            metrics.spans_rejected.clone(),
        );
        registry.register(
            "attribute_values_truncated",
            "Attribute values cut to the configured size limit",
            metrics.values_truncated.clone(),
        );
        registry.register("requests", "Export requests by transport and outcome", metrics.requests.clone());
        registry.register(
            "request_body_bytes",
            "Size of decoded (decompressed) export requests in bytes",
            metrics.body_bytes.clone(),
        );
        metrics
    }

    pub(crate) fn observe_body(&self, transport: Transport, bytes: usize) {
        self.body_bytes.get_or_create(&TransportLabels { transport: transport.as_str() }).observe(bytes as f64);
    }

    pub(crate) fn record_success(&self, transport: Transport, accepted: u64, rejected: u64, truncated: u64) {
        self.spans_accepted.inc_by(accepted);
        self.spans_rejected.inc_by(rejected);
        self.values_truncated.inc_by(truncated);
        let outcome = if rejected > 0 { "partial" } else { "ok" };
        self.requests.get_or_create(&RequestLabels { transport: transport.as_str(), outcome }).inc();
    }

    pub(crate) fn record_failure(&self, transport: Transport, error: &CollectorError) {
        let labels = RequestLabels { transport: transport.as_str(), outcome: error.class().name() };
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
        metrics.record_success(Transport::Http, 5, 2, 1);
        metrics.record_failure(Transport::Grpc, &CollectorError::Overloaded { limit: 1 });
        metrics.observe_body(Transport::Http, 2000);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode metrics");
        for line in [
            "skein_collector_spans_accepted_total 5",
            "skein_collector_spans_rejected_total 2",
            "skein_collector_attribute_values_truncated_total 1",
            "skein_collector_requests_total{transport=\"http\",outcome=\"partial\"} 1",
            "skein_collector_requests_total{transport=\"grpc\",outcome=\"overloaded\"} 1",
            "skein_collector_request_body_bytes_count{transport=\"http\"} 1",
            "skein_collector_request_body_bytes_sum{transport=\"http\"} 2000.0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
