//! A borrowed, flat view of an OTLP metrics request: what the point
//! converter reads. It is filled either from decoded messages
//! ([`MetricsView::of`]) or straight from the protobuf bytes
//! (`super::wire`), so both paths share one converter and the fast one
//! allocates nothing per attribute or per point.
//!
//! Nested lists are ranges into the view's flat vectors. Attributes live in
//! one vector per level (resource and scope, metric metadata, points,
//! exemplars), so a level's entries stay contiguous whatever order the
//! sender wrote the fields of the enclosing message in.

use std::ops::Range;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::{Exemplar, exemplar, number_data_point};

use crate::arrow_build::{AttrRef, attr_ref};

#[derive(Debug, Default)]
pub(crate) struct ResourceView<'a> {
    pub attrs: Range<usize>,
    pub dropped_attrs: u32,
    pub schema_url: &'a str,
    pub scopes: Range<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct ScopeView<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub attrs: Range<usize>,
    pub dropped_attrs: u32,
    pub schema_url: &'a str,
    pub metrics: Range<usize>,
}

/// The point type of a metric's data, with the fields its container carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum DataKind {
    Gauge,
    Sum { temporality: i32, is_monotonic: bool },
    Histogram { temporality: i32 },
    ExponentialHistogram { temporality: i32 },
    Summary,
}

#[derive(Debug, Default)]
pub(crate) struct MetricView<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub unit: &'a str,
    /// Into [`MetricsView::metadata`].
    pub metadata: Range<usize>,
    /// `None`: the metric carries no data at all.
    pub data: Option<DataKind>,
    pub points: Range<usize>,
}

/// A number (`NumberDataPoint` and `Exemplar` values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Double(f64),
    Int(i64),
}

/// One data point of any type; the fields its type lacks stay at their
/// defaults and are ignored (the metric's [`DataKind`] says which apply).
#[derive(Debug, Default, Clone)]
pub(crate) struct PointView {
    /// Into [`MetricsView::point_attrs`].
    pub attrs: Range<usize>,
    pub start: u64,
    pub time: u64,
    pub flags: u32,
    pub exemplars: Range<usize>,
    pub value: Option<Number>,
    pub count: u64,
    /// Summaries always have a sum; histograms may not.
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Into [`MetricsView::f64s`].
    pub bounds: Range<usize>,
    /// Into [`MetricsView::u64s`].
    pub bucket_counts: Range<usize>,
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    /// Offset and counts (into [`MetricsView::u64s`]) of the exponential buckets.
    pub positive: Option<(i32, Range<usize>)>,
    pub negative: Option<(i32, Range<usize>)>,
    /// Into [`MetricsView::quantiles`].
    pub quantiles: Range<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct ExemplarView<'a> {
    /// Into [`MetricsView::exemplar_attrs`].
    pub attrs: Range<usize>,
    pub time: u64,
    pub value: Option<Number>,
    pub span_id: &'a [u8],
    pub trace_id: &'a [u8],
}

/// Every resource, scope, metric, point and attribute of one request.
#[derive(Debug, Default)]
pub(crate) struct MetricsView<'a> {
    pub resources: Vec<ResourceView<'a>>,
    pub scopes: Vec<ScopeView<'a>>,
    pub metrics: Vec<MetricView<'a>>,
    pub points: Vec<PointView>,
    pub exemplars: Vec<ExemplarView<'a>>,
    /// Resource and scope attributes.
    pub attrs: Vec<AttrRef<'a>>,
    pub metadata: Vec<AttrRef<'a>>,
    pub point_attrs: Vec<AttrRef<'a>>,
    pub exemplar_attrs: Vec<AttrRef<'a>>,
    /// Explicit bounds.
    pub f64s: Vec<f64>,
    /// Bucket counts of both histogram types.
    pub u64s: Vec<u64>,
    /// Summary (quantile, value) pairs.
    pub quantiles: Vec<(f64, f64)>,
}

fn push<'a>(to: &mut Vec<AttrRef<'a>>, attrs: &'a [KeyValue]) -> Range<usize> {
    let first = to.len();
    to.extend(attrs.iter().map(attr_ref));
    first..to.len()
}

fn extend<T: Copy>(to: &mut Vec<T>, values: &[T]) -> Range<usize> {
    let first = to.len();
    to.extend_from_slice(values);
    first..to.len()
}

impl<'a> MetricsView<'a> {
    /// The view of a decoded request.
    pub fn of(request: &'a ExportMetricsServiceRequest) -> Self {
        let mut view = MetricsView::default();
        for rm in &request.resource_metrics {
            let resource = rm.resource.as_ref();
            let attrs = push(&mut view.attrs, resource.map_or(&[][..], |r| &r.attributes[..]));
            let first_scope = view.scopes.len();
            for sm in &rm.scope_metrics {
                let scope = sm.scope.as_ref();
                let attrs = push(&mut view.attrs, scope.map_or(&[][..], |s| &s.attributes[..]));
                let first_metric = view.metrics.len();
                for metric in &sm.metrics {
                    let metadata = push(&mut view.metadata, &metric.metadata);
                    let first_point = view.points.len();
                    let data = metric.data.as_ref().map(|data| view.push_data(data));
                    view.metrics.push(MetricView {
                        name: &metric.name,
                        description: &metric.description,
                        unit: &metric.unit,
                        metadata,
                        data,
                        points: first_point..view.points.len(),
                    });
                }
                view.scopes.push(ScopeView {
                    name: scope.map_or("", |s| s.name.as_str()),
                    version: scope.map_or("", |s| s.version.as_str()),
                    attrs,
                    dropped_attrs: scope.map_or(0, |s| s.dropped_attributes_count),
                    schema_url: &sm.schema_url,
                    metrics: first_metric..view.metrics.len(),
                });
            }
            view.resources.push(ResourceView {
                attrs,
                dropped_attrs: resource.map_or(0, |r| r.dropped_attributes_count),
                schema_url: &rm.schema_url,
                scopes: first_scope..view.scopes.len(),
            });
        }
        view
    }

    /// Pushes the points of one metric's data; returns its kind.
    fn push_data(&mut self, data: &'a Data) -> DataKind {
        match data {
            Data::Gauge(g) => {
                g.data_points.iter().for_each(|p| self.push_number(p));
                DataKind::Gauge
            }
            Data::Sum(s) => {
                s.data_points.iter().for_each(|p| self.push_number(p));
                DataKind::Sum { temporality: s.aggregation_temporality, is_monotonic: s.is_monotonic }
            }
            Data::Histogram(h) => {
                for p in &h.data_points {
                    let point = PointView {
                        attrs: push(&mut self.point_attrs, &p.attributes),
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        flags: p.flags,
                        exemplars: self.push_exemplars(&p.exemplars),
                        count: p.count,
                        sum: p.sum,
                        min: p.min,
                        max: p.max,
                        bounds: extend(&mut self.f64s, &p.explicit_bounds),
                        bucket_counts: extend(&mut self.u64s, &p.bucket_counts),
                        ..PointView::default()
                    };
                    self.points.push(point);
                }
                DataKind::Histogram { temporality: h.aggregation_temporality }
            }
            Data::ExponentialHistogram(e) => {
                for p in &e.data_points {
                    let point = PointView {
                        attrs: push(&mut self.point_attrs, &p.attributes),
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        flags: p.flags,
                        exemplars: self.push_exemplars(&p.exemplars),
                        count: p.count,
                        sum: p.sum,
                        min: p.min,
                        max: p.max,
                        scale: p.scale,
                        zero_count: p.zero_count,
                        zero_threshold: p.zero_threshold,
                        positive: p.positive.as_ref().map(|b| (b.offset, extend(&mut self.u64s, &b.bucket_counts))),
                        negative: p.negative.as_ref().map(|b| (b.offset, extend(&mut self.u64s, &b.bucket_counts))),
                        ..PointView::default()
                    };
                    self.points.push(point);
                }
                DataKind::ExponentialHistogram { temporality: e.aggregation_temporality }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    let first = self.quantiles.len();
                    self.quantiles.extend(p.quantile_values.iter().map(|q| (q.quantile, q.value)));
                    let point = PointView {
                        attrs: push(&mut self.point_attrs, &p.attributes),
                        start: p.start_time_unix_nano,
                        time: p.time_unix_nano,
                        flags: p.flags,
                        count: p.count,
                        sum: Some(p.sum),
                        quantiles: first..self.quantiles.len(),
                        ..PointView::default()
                    };
                    self.points.push(point);
                }
                DataKind::Summary
            }
        }
    }

    fn push_number(&mut self, p: &'a opentelemetry_proto::tonic::metrics::v1::NumberDataPoint) {
        let point = PointView {
            attrs: push(&mut self.point_attrs, &p.attributes),
            start: p.start_time_unix_nano,
            time: p.time_unix_nano,
            flags: p.flags,
            exemplars: self.push_exemplars(&p.exemplars),
            value: p.value.map(|v| match v {
                number_data_point::Value::AsDouble(d) => Number::Double(d),
                number_data_point::Value::AsInt(i) => Number::Int(i),
            }),
            ..PointView::default()
        };
        self.points.push(point);
    }

    fn push_exemplars(&mut self, exemplars: &'a [Exemplar]) -> Range<usize> {
        let first = self.exemplars.len();
        for e in exemplars {
            let attrs = push(&mut self.exemplar_attrs, &e.filtered_attributes);
            self.exemplars.push(ExemplarView {
                attrs,
                time: e.time_unix_nano,
                value: e.value.map(|v| match v {
                    exemplar::Value::AsDouble(d) => Number::Double(d),
                    exemplar::Value::AsInt(i) => Number::Int(i),
                }),
                span_id: &e.span_id,
                trace_id: &e.trace_id,
            });
        }
        first..self.exemplars.len()
    }
}
