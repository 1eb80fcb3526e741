//! The kinds of telemetry Skein stores, as one value every role shares:
//! storage keeps each in its own tables and files, and the cluster's wire
//! protocol names them in write and scan requests.

use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

/// A kind of telemetry data with its own schema, tables and files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// Spans, one row each ([`crate::span_schema`]).
    Spans,
    /// Metric data points, one row each ([`crate::metric_schema`]).
    Metrics,
    /// Log records, one row each ([`crate::log_schema`]).
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Spans, Signal::Metrics, Signal::Logs];

    /// The signal's position in [`Signal::ALL`], for per-signal arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// `spans`, `metrics` or `logs`: directory names, metric labels, wire names.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Spans => "spans",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The Arrow schema of the signal's rows and tables.
    pub fn schema(self) -> SchemaRef {
        match self {
            Signal::Spans => crate::span_schema(),
            Signal::Metrics => crate::metric_schema(),
            Signal::Logs => crate::log_schema(),
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A table every shard serves: a signal's rows, or rows derived from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    Spans,
    Metrics,
    Logs,
    /// RED rows derived from spans ([`crate::span_metrics_schema`]).
    SpanMetrics,
    /// One row per trace per span file or buffer
    /// ([`crate::trace_parts_schema`]), merged into trace summaries.
    TraceParts,
    /// One row per span link, by the span it points at
    /// ([`crate::span_links_schema`]).
    SpanLinks,
}

impl TableKind {
    /// The table's name in SQL and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Spans => "spans",
            TableKind::Metrics => "metrics",
            TableKind::Logs => "logs",
            TableKind::SpanMetrics => "span_metrics",
            TableKind::TraceParts => "trace_parts",
            TableKind::SpanLinks => "span_links",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            TableKind::Spans => crate::span_schema(),
            TableKind::Metrics => crate::metric_schema(),
            TableKind::Logs => crate::log_schema(),
            TableKind::SpanMetrics => crate::span_metrics_schema(),
            TableKind::TraceParts => crate::trace_parts_schema(),
            TableKind::SpanLinks => crate::span_links_schema(),
        }
    }
}

impl From<Signal> for TableKind {
    fn from(signal: Signal) -> Self {
        match signal {
            Signal::Spans => TableKind::Spans,
            Signal::Metrics => TableKind::Metrics,
            Signal::Logs => TableKind::Logs,
        }
    }
}

impl std::fmt::Display for TableKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
