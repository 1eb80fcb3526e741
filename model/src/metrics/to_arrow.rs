//! OTLP metrics requests → Arrow point batches, with per-point validation.
//!
//! Refused points are skipped and counted so the collector can answer with
//! `partial_success`; everything else is kept exactly. Resource, scope and
//! metadata attributes are encoded once per message and copied per row.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

use super::PointBatch;
use super::builders::{MetricRow, PointBuilders, PointRow, PointValues, number_columns};
use super::schema::metric_type;
use super::series::{shard_for_series, write_attrs, write_str};
use super::view::{DataKind, MetricView, MetricsView, PointView};
use crate::arrow_build::EncodedAttrs;
use crate::otlp_to_arrow::service_name;
use crate::{ConvertLimits, ModelError};

/// The type-specific columns of a point of `kind`.
fn point_values<'v>(view: &'v MetricsView<'_>, kind: DataKind, p: &PointView) -> PointValues<'v> {
    let u64s = |range: &std::ops::Range<usize>| &view.u64s[range.clone()];
    match kind {
        DataKind::Gauge | DataKind::Sum { .. } => {
            let (value, value_int) = number_columns(p.value);
            PointValues { value, value_int, ..Default::default() }
        }
        DataKind::Histogram { .. } => PointValues {
            count: Some(p.count),
            sum: p.sum,
            min: p.min,
            max: p.max,
            explicit_bounds: Some(&view.f64s[p.bounds.clone()]),
            bucket_counts: Some(u64s(&p.bucket_counts)),
            ..Default::default()
        },
        DataKind::ExponentialHistogram { .. } => PointValues {
            count: Some(p.count),
            sum: p.sum,
            min: p.min,
            max: p.max,
            scale: Some(p.scale),
            zero_count: Some(p.zero_count),
            zero_threshold: Some(p.zero_threshold),
            positive: p.positive.as_ref().map(|(offset, counts)| (*offset, u64s(counts))),
            negative: p.negative.as_ref().map(|(offset, counts)| (*offset, u64s(counts))),
            ..Default::default()
        },
        DataKind::Summary => PointValues {
            count: Some(p.count),
            sum: p.sum,
            quantiles: Some(&view.quantiles[p.quantiles.clone()]),
            ..Default::default()
        },
    }
}

/// Why a point is refused, or `None` when it is valid.
fn point_problem(view: &MetricsView<'_>, kind: DataKind, point: &PointView) -> Option<String> {
    if point.time == 0 {
        return Some("data point time_unix_nano must be set (got 0)".into());
    }
    // Summaries have no exemplars (the view never fills them).
    for e in &view.exemplars[point.exemplars.clone()] {
        if !e.trace_id.is_empty() && e.trace_id.len() != 16 {
            return Some(format!("exemplar trace_id must be empty or 16 bytes (got {} bytes)", e.trace_id.len()));
        }
        if !e.span_id.is_empty() && e.span_id.len() != 8 {
            return Some(format!("exemplar span_id must be empty or 8 bytes (got {} bytes)", e.span_id.len()));
        }
    }
    if let DataKind::Histogram { .. } = kind {
        let bounds = &view.f64s[point.bounds.clone()];
        let (n_bounds, counts) = (bounds.len(), point.bucket_counts.len());
        if counts != 0 && counts != n_bounds + 1 {
            return Some(format!(
                "histogram has {counts} bucket counts for {n_bounds} explicit bounds (want {})",
                n_bounds + 1
            ));
        }
        let increasing = bounds.windows(2).all(|w| w[0] < w[1]);
        if !increasing || bounds.iter().any(|b| b.is_nan()) {
            return Some("histogram explicit bounds must be strictly increasing".into());
        }
    }
    None
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
    fn append_points(
        &mut self,
        view: &MetricsView<'_>,
        metric: &MetricRow<'_>,
        kind: DataKind,
        series_prefix: usize,
        shared_truncated: u64,
        points: &[PointView],
    ) -> Result<(), ModelError> {
        for point in points {
            if let Some(problem) = point_problem(view, kind, point) {
                self.reject(1, metric.name, || problem);
                continue;
            }
            self.point_attrs.encode_refs(view.point_attrs[point.attrs.clone()].iter().cloned(), self.limits);
            self.series_key.truncate(series_prefix);
            write_attrs(&mut self.series_key, &self.point_attrs, &mut self.order);
            let series_hash = xxhash_rust::xxh3::xxh3_64(&self.series_key);
            if self.shard_count > 1 {
                self.shard_of_row.push(shard_for_series(series_hash, self.shard_count) as u32);
            }
            let row = PointRow {
                series_hash,
                attributes: &self.point_attrs,
                start_time_unix_nano: point.start,
                time_unix_nano: point.time,
                flags: point.flags,
                exemplars: &view.exemplars[point.exemplars.clone()],
                exemplar_attrs: &view.exemplar_attrs,
            };
            self.truncated += shared_truncated + self.point_attrs.truncated;
            let values = point_values(view, kind, point);
            self.builders.append(metric, &row, &values, self.limits, &mut self.truncated)?;
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
    convert(&MetricsView::of(request), limits, shard_count)
}

/// [`metrics_to_arrow`] for an encoded `ExportMetricsServiceRequest`,
/// decoded without copying its strings or building a message per point (see
/// `wire.rs`); input the fast decoder does not handle goes through prost,
/// so the result is always prost's.
pub fn metrics_to_arrow_from_protobuf(
    bytes: &[u8],
    limits: &ConvertLimits,
    shard_count: usize,
) -> Result<PointBatch, ModelError> {
    match super::wire::metrics_view(bytes) {
        Ok(view) => convert(&view, limits, shard_count),
        Err(crate::wire::Unsupported) => {
            let request = ExportMetricsServiceRequest::decode(bytes).map_err(ModelError::InvalidProtobuf)?;
            metrics_to_arrow(&request, limits, shard_count)
        }
    }
}

fn convert(view: &MetricsView<'_>, limits: &ConvertLimits, shard_count: usize) -> Result<PointBatch, ModelError> {
    let points = view.points.len();
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
    for rm in &view.resources {
        let res_attrs = &view.attrs[rm.attrs.clone()];
        resource.encode_refs(res_attrs.iter().cloned(), limits);
        resource.freeze();
        resource_key.clear();
        write_attrs(&mut resource_key, &resource, &mut c.order);
        let service = service_name(res_attrs.iter().cloned());
        for sm in &view.scopes[rm.scopes.clone()] {
            scope.encode_refs(view.attrs[sm.attrs.clone()].iter().cloned(), limits);
            scope.freeze();
            for metric in &view.metrics[sm.metrics.clone()] {
                let MetricView { name, description, unit, .. } = *metric;
                let Some(kind) = metric.data else {
                    c.reject(1, name, || "metric has no data (gauge, sum, histogram, ...)".into());
                    continue;
                };
                if name.is_empty() {
                    c.reject(metric.points.len().max(1) as u64, name, || "metric name must not be empty".into());
                    continue;
                }
                metadata.encode_refs(view.metadata[metric.metadata.clone()].iter().cloned(), limits);
                metadata.freeze();
                c.series_key.clear();
                write_str(&mut c.series_key, name);
                c.series_key.extend_from_slice(&resource_key);
                let prefix = c.series_key.len();
                let shared_truncated = resource.truncated + scope.truncated + metadata.truncated;
                let (metric_type, temporality, is_monotonic) = kind_of(kind);
                let row = MetricRow {
                    name,
                    metric_type,
                    unit,
                    description,
                    metadata: &metadata,
                    service_name: service,
                    resource: &resource,
                    resource_dropped: rm.dropped_attrs,
                    resource_schema_url: rm.schema_url,
                    scope_name: sm.name,
                    scope_version: sm.version,
                    scope: &scope,
                    scope_dropped: sm.dropped_attrs,
                    scope_schema_url: sm.schema_url,
                    temporality,
                    is_monotonic,
                };
                let points = &view.points[metric.points.clone()];
                c.append_points(view, &row, kind, prefix, shared_truncated, points)?;
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
fn kind_of(kind: DataKind) -> (&'static str, Option<i32>, Option<bool>) {
    match kind {
        DataKind::Gauge => (metric_type::GAUGE, None, None),
        DataKind::Sum { temporality, is_monotonic } => (metric_type::SUM, Some(temporality), Some(is_monotonic)),
        DataKind::Histogram { temporality } => (metric_type::HISTOGRAM, Some(temporality), None),
        DataKind::ExponentialHistogram { temporality } => (metric_type::EXPONENTIAL_HISTOGRAM, Some(temporality), None),
        DataKind::Summary => (metric_type::SUMMARY, None, None),
    }
}
