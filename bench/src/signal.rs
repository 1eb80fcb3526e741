//! The OTLP signals `skein bench ingest` can send, and what differs between
//! them on the wire and in reports. Everything else (pool, transport,
//! pacing, statistics) is shared.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

/// What the load consists of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Traces of the shop's user actions; an item is a span.
    Traces,
    /// The shop's metrics (histograms, counters, gauges, ...); an item is a data point.
    Metrics,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
        }
    }

    /// One item, singular, for messages (`span`, `data point`).
    pub fn item(self) -> &'static str {
        match self {
            Signal::Traces => "span",
            Signal::Metrics => "data point",
        }
    }

    /// Plural, for rates (`spans`, `points`).
    pub fn items_short(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "points",
        }
    }

    /// The gRPC method of the OTLP export service.
    pub fn grpc_path(self) -> &'static str {
        match self {
            Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        }
    }

    /// The OTLP/HTTP path appended to an endpoint without one.
    pub fn http_path(self) -> &'static str {
        match self {
            Signal::Traces => "/v1/traces",
            Signal::Metrics => "/v1/metrics",
        }
    }

    /// The folder of this signal's files inside a storage shard directory.
    pub fn shard_dir(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metrics",
        }
    }

    /// Items the target refused, from an encoded export response (OTLP
    /// partial success). An empty or undecodable body refuses nothing.
    pub fn rejected_items(self, response: &[u8]) -> u64 {
        let rejected = match self {
            Signal::Traces => ExportTraceServiceResponse::decode(response)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_spans),
            Signal::Metrics => ExportMetricsServiceResponse::decode(response)
                .ok()
                .and_then(|r| r.partial_success)
                .map_or(0, |p| p.rejected_data_points),
        };
        u64::try_from(rejected).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsPartialSuccess;
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server;

    use super::*;

    #[test]
    fn grpc_paths_match_the_generated_services() {
        assert_eq!(Signal::Traces.grpc_path(), format!("/{}/Export", trace_service_server::SERVICE_NAME));
        assert_eq!(Signal::Metrics.grpc_path(), format!("/{}/Export", metrics_service_server::SERVICE_NAME));
    }

    #[test]
    fn partial_success_is_read_per_signal() {
        let traces = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 3, error_message: "bad".into() }),
        }
        .encode_to_vec();
        let metrics = ExportMetricsServiceResponse {
            partial_success: Some(ExportMetricsPartialSuccess { rejected_data_points: 7, error_message: "bad".into() }),
        }
        .encode_to_vec();
        assert_eq!(Signal::Traces.rejected_items(&traces), 3);
        assert_eq!(Signal::Metrics.rejected_items(&metrics), 7);
        assert_eq!(Signal::Metrics.rejected_items(&[]), 0);
        assert_eq!(Signal::Traces.rejected_items(&[0xff]), 0, "garbage acknowledges everything");
    }
}
