//! OTLP metrics requests → Arrow point batches, with per-point validation.
//!
//! Refused points are skipped and counted so the collector can answer with
//! `partial_success`; everything else is kept exactly. Resource, scope and
//! metadata attributes are encoded once per message and copied per row.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogramDataPoint, HistogramDataPoint, NumberDataPoint, SummaryDataPoint, number_data_point,
};

use super::PointBatch;
use super::builders::{MetricRow, PointBuilders, PointRow, PointValues};
use super::schema::metric_type;
use super::series::{shard_for_series, write_attrs, write_str};
use crate::arrow_build::{EncodedAttrs, attr_ref};
use crate::otlp_to_arrow::service_name;
use crate::{ConvertLimits, ModelError};

/// What every OTLP data point type has in common.
trait DataPoint {
    fn attributes(&self) -> &[KeyValue];
    fn start_time_unix_nano(&self) -> u64;
    fn time_unix_nano(&self) -> u64;
    fn flags(&self) -> u32;
    fn exemplars(&self) -> &[Exemplar];
    fn values(&self) -> PointValues<'_>;
    /// Why the type-specific fields are invalid, if they are.
    fn problem(&self) -> Option<String> {
        None
    }
}

macro_rules! common_fields {
    () => {
        fn attributes(&self) -> &[KeyValue] {
            &self.attributes
        }
        fn start_time_unix_nano(&self) -> u64 {
            self.start_time_unix_nano
        }
        fn time_unix_nano(&self) -> u64 {
            self.time_unix_nano
        }
        fn flags(&self) -> u32 {
            self.flags
        }
    };
    (with_exemplars) => {
        common_fields!();
        fn exemplars(&self) -> &[Exemplar] {
            &self.exemplars
        }
    };
}

/// The count, sum, min and max both histogram types carry.
fn histogram_values<'a>(count: u64, sum: Option<f64>, min: Option<f64>, max: Option<f64>) -> PointValues<'a> {
    PointValues { count: Some(count), sum, min, max, ..Default::default() }
}

impl DataPoint for NumberDataPoint {
    common_fields!(with_exemplars);
    fn values(&self) -> PointValues<'_> {
        let (value, value_int) = match self.value {
            Some(number_data_point::Value::AsDouble(d)) => (Some(d), None),
            // `value` gets the int as a double too, so SQL can use one column.
            Some(number_data_point::Value::AsInt(i)) => (Some(i as f64), Some(i)),
            None => (None, None),
        };
        PointValues { value, value_int, ..Default::default() }
    }
}

impl DataPoint for HistogramDataPoint {
    common_fields!(with_exemplars);
    fn values(&self) -> PointValues<'_> {
        PointValues {
            explicit_bounds: Some(&self.explicit_bounds),
            bucket_counts: Some(&self.bucket_counts),
            ..histogram_values(self.count, self.sum, self.min, self.max)
        }
    }
    fn problem(&self) -> Option<String> {
        let (bounds, counts) = (self.explicit_bounds.len(), self.bucket_counts.len());
        if counts != 0 && counts != bounds + 1 {
            return Some(format!(
                "histogram has {counts} bucket counts for {bounds} explicit bounds (want {})",
                bounds + 1
            ));
        }
        let increasing = self.explicit_bounds.windows(2).all(|w| w[0] < w[1]);
        if !increasing || self.explicit_bounds.iter().any(|b| b.is_nan()) {
            return Some("histogram explicit bounds must be strictly increasing".into());
        }
        None
    }
}

impl DataPoint for ExponentialHistogramDataPoint {
    common_fields!(with_exemplars);
    fn values(&self) -> PointValues<'_> {
        PointValues {
            scale: Some(self.scale),
            zero_count: Some(self.zero_count),
            zero_threshold: Some(self.zero_threshold),
            positive: self.positive.as_ref().map(|b| (b.offset, &b.bucket_counts[..])),
            negative: self.negative.as_ref().map(|b| (b.offset, &b.bucket_counts[..])),
            ..histogram_values(self.count, self.sum, self.min, self.max)
        }
    }
}

impl DataPoint for SummaryDataPoint {
    common_fields!();
    fn exemplars(&self) -> &[Exemplar] {
        &[]
    }
    fn values(&self) -> PointValues<'_> {
        PointValues {
            count: Some(self.count),
            sum: Some(self.sum),
            quantiles: Some(&self.quantile_values),
            ..Default::default()
        }
    }
}

/// Why a point is refused, or `None` when it is valid.
fn point_problem(point: &impl DataPoint) -> Option<String> {
    if point.time_unix_nano() == 0 {
        return Some("data point time_unix_nano must be set (got 0)".into());
    }
    for e in point.exemplars() {
        if !e.trace_id.is_empty() && e.trace_id.len() != 16 {
            return Some(format!("exemplar trace_id must be empty or 16 bytes (got {} bytes)", e.trace_id.len()));
        }
        if !e.span_id.is_empty() && e.span_id.len() != 8 {
            return Some(format!("exemplar span_id must be empty or 8 bytes (got {} bytes)", e.span_id.len()));
        }
    }
    point.problem()
}

fn point_count(data: &Data) -> usize {
    match data {
        Data::Gauge(g) => g.data_points.len(),
        Data::Sum(s) => s.data_points.len(),
        Data::Histogram(h) => h.data_points.len(),
        Data::ExponentialHistogram(e) => e.data_points.len(),
        Data::Summary(s) => s.data_points.len(),
    }
}

/// Converter state across one request.
struct Converter<'l> {
    limits: &'l ConvertLimits,
    shard_count: usize,
    builders: PointBuilders,
    shard_of_row: Vec<u32>,
    rejected: u64,
    truncated: u64,
    first_error: Option<String>,
    /// Encoded point attributes of the current point (scratch).
    point_attrs: EncodedAttrs,
    /// Canonical series key: metric name and resource part, then the point's.
    series_key: Vec<u8>,
    order: Vec<usize>,
}

impl Converter<'_> {
    fn reject(&mut self, count: u64, metric: &str, problem: impl FnOnce() -> String) {
        self.rejected += count;
        if self.first_error.is_none() {
            self.first_error = Some(format!("metric {metric:?}: {}", problem()));
        }
    }

    /// Appends the valid points of one metric. `series_prefix` is the
    /// canonical encoding of the metric name and resource attributes;
    /// `shared_truncated` counts values cut in the metric's shared parts.
    fn append_points<P: DataPoint>(
        &mut self,
        metric: &MetricRow<'_>,
        series_prefix: usize,
        shared_truncated: u64,
        points: &[P],
    ) -> Result<(), ModelError> {
        for point in points {
            if let Some(problem) = point_problem(point) {
                self.reject(1, metric.name, || problem);
                continue;
            }
            self.point_attrs.encode(point.attributes(), self.limits);
            self.series_key.truncate(series_prefix);
            write_attrs(&mut self.series_key, &self.point_attrs, &mut self.order);
            let series_hash = xxhash_rust::xxh3::xxh3_64(&self.series_key);
            if self.shard_count > 1 {
                self.shard_of_row.push(shard_for_series(series_hash, self.shard_count) as u32);
            }
            let row = PointRow {
                series_hash,
                attributes: &self.point_attrs,
                start_time_unix_nano: point.start_time_unix_nano(),
                time_unix_nano: point.time_unix_nano(),
                flags: point.flags(),
                exemplars: point.exemplars(),
            };
            self.truncated += shared_truncated + self.point_attrs.truncated;
            self.builders.append(metric, &row, &point.values(), self.limits, &mut self.truncated)?;
        }
        Ok(())
    }
}

/// Converts a metrics export request to one batch, one row per data point.
/// With `shard_count > 1` the shard of each row (by series) is computed too.
///
/// Refused (and counted in `rejected`): every point of a metric with an
/// empty name; a metric with no data (counted as one); a point with
/// `time_unix_nano == 0`; a histogram point whose bucket counts are neither
/// empty nor one more than its explicit bounds, or whose bounds are not
/// strictly increasing; a point with an exemplar whose trace ID is not
/// empty or 16 bytes, or whose span ID is not empty or 8 bytes. String and
/// bytes attribute values over `limits` are truncated and counted.
pub fn metrics_to_arrow(
    request: &ExportMetricsServiceRequest,
    limits: &ConvertLimits,
    shard_count: usize,
) -> Result<PointBatch, ModelError> {
    let points: usize = request
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .map(|m| m.data.as_ref().map_or(0, point_count))
        .sum();
    let mut c = Converter {
        limits,
        shard_count,
        builders: PointBuilders::with_capacity(points),
        shard_of_row: Vec::with_capacity(if shard_count > 1 { points } else { 0 }),
        rejected: 0,
        truncated: 0,
        first_error: None,
        point_attrs: EncodedAttrs::default(),
        series_key: Vec::new(),
        order: Vec::new(),
    };
    let (mut resource, mut scope, mut metadata) =
        (EncodedAttrs::default(), EncodedAttrs::default(), EncodedAttrs::default());
    let mut resource_key = Vec::new();
    for rm in &request.resource_metrics {
        let res = rm.resource.as_ref();
        let res_attrs = res.map_or(&[][..], |r| &r.attributes[..]);
        resource.encode(res_attrs, limits);
        resource.freeze();
        resource_key.clear();
        write_attrs(&mut resource_key, &resource, &mut c.order);
        let service = service_name(res_attrs.iter().map(attr_ref));
        for sm in &rm.scope_metrics {
            let sc = sm.scope.as_ref();
            scope.encode(sc.map_or(&[][..], |s| &s.attributes[..]), limits);
            scope.freeze();
            for metric in &sm.metrics {
                let Some(data) = metric.data.as_ref() else {
                    c.reject(1, &metric.name, || "metric has no data (gauge, sum, histogram, ...)".into());
                    continue;
                };
                if metric.name.is_empty() {
                    c.reject(point_count(data).max(1) as u64, &metric.name, || "metric name must not be empty".into());
                    continue;
                }
                metadata.encode(&metric.metadata, limits);
                metadata.freeze();
                c.series_key.clear();
                write_str(&mut c.series_key, &metric.name);
                c.series_key.extend_from_slice(&resource_key);
                let prefix = c.series_key.len();
                let shared_truncated = resource.truncated + scope.truncated + metadata.truncated;
                let (metric_type, temporality, is_monotonic) = kind_of(data);
                let row = MetricRow {
                    name: &metric.name,
                    metric_type,
                    unit: &metric.unit,
                    description: &metric.description,
                    metadata: &metadata,
                    service_name: service,
                    resource: &resource,
                    resource_dropped: res.map_or(0, |r| r.dropped_attributes_count),
                    resource_schema_url: &rm.schema_url,
                    scope_name: sc.map_or("", |s| s.name.as_str()),
                    scope_version: sc.map_or("", |s| s.version.as_str()),
                    scope: &scope,
                    scope_dropped: sc.map_or(0, |s| s.dropped_attributes_count),
                    scope_schema_url: &sm.schema_url,
                    temporality,
                    is_monotonic,
                };
                match data {
                    Data::Gauge(g) => c.append_points(&row, prefix, shared_truncated, &g.data_points)?,
                    Data::Sum(s) => c.append_points(&row, prefix, shared_truncated, &s.data_points)?,
                    Data::Histogram(h) => c.append_points(&row, prefix, shared_truncated, &h.data_points)?,
                    Data::ExponentialHistogram(e) => c.append_points(&row, prefix, shared_truncated, &e.data_points)?,
                    Data::Summary(s) => c.append_points(&row, prefix, shared_truncated, &s.data_points)?,
                }
            }
        }
    }
    if c.truncated > 0 && c.first_error.is_none() {
        c.first_error = Some(format!(
            "{} attribute value(s) longer than {} bytes were truncated",
            c.truncated, limits.max_attribute_value_bytes
        ));
    }
    Ok(PointBatch {
        batch: c.builders.finish()?,
        shard_of_row: c.shard_of_row,
        rejected: c.rejected,
        truncated_values: c.truncated,
        first_error: c.first_error,
    })
}

/// The `metric_type`, temporality and monotonicity of a metric's data.
fn kind_of(data: &Data) -> (&'static str, Option<i32>, Option<bool>) {
    match data {
        Data::Gauge(_) => (metric_type::GAUGE, None, None),
        Data::Sum(s) => (metric_type::SUM, Some(s.aggregation_temporality), Some(s.is_monotonic)),
        Data::Histogram(h) => (metric_type::HISTOGRAM, Some(h.aggregation_temporality), None),
        Data::ExponentialHistogram(e) => (metric_type::EXPONENTIAL_HISTOGRAM, Some(e.aggregation_temporality), None),
        Data::Summary(_) => (metric_type::SUMMARY, None, None),
    }
}
