//! The query service's Prometheus metrics, registered in the process registry.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use skein_model::ErrorClass;

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabels {
    endpoint: &'static str,
    code: &'static str,
}

type DurationFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

#[derive(Debug, Clone)]
pub(crate) struct QueryMetrics {
    duration: DurationFamily,
    errors: Family<ErrorLabels, Counter>,
}

fn duration_histogram() -> Histogram {
    // 1 ms to ~33 s: past the default query timeout.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl QueryMetrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            errors: Family::default(),
        };
        let skein = registry.sub_registry_with_prefix("skein");
        skein.register(
            "query_duration_seconds",
            "Time to answer a query API request, by endpoint",
            metrics.duration.clone(),
        );
        skein.register(
            "query_errors",
            "Query API requests that failed, by endpoint and error code",
            metrics.errors.clone(),
        );
        metrics
    }

    /// Records one finished request.
    pub(crate) fn observe(&self, endpoint: &'static str, elapsed: Duration, error: Option<&ErrorClass>) {
        self.duration.get_or_create(&EndpointLabels { endpoint }).observe(elapsed.as_secs_f64());
        if let Some(class) = error {
            self.errors.get_or_create(&ErrorLabels { endpoint, code: class.name() }).inc();
        }
    }
}
