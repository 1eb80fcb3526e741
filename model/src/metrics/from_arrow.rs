//! Arrow point rows → OTLP metrics requests: the exact inverse of
//! [`super::metrics_to_arrow`].
//!
//! Consecutive rows with equal resource, scope and metric columns regroup
//! into one `ResourceMetrics` / `ScopeMetrics` / `Metric`, so converting a
//! request and back gives the same request (as long as the sender did not
//! split equal neighbours into separate messages, and no metric was empty).

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, Float64Array, Int32Array, Int64Array, ListArray, MapArray, RecordBatch, StringArray,
    StructArray, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{
    Float64Type, Int32Type, Int64Type, TimestampNanosecondType, UInt32Type, UInt64Type,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::summary_data_point::ValueAtQuantile;
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint, exemplar, number_data_point,
};

use super::schema::{col, metric_type, temporality_from_name};
use crate::ModelError;
use crate::arrow_read::{
    ResourceScopeColumns, bools, hex_bytes, key_values, lists, map_eq, maps, opt, prims, str_eq, strings, struct_map,
    struct_prims, struct_strings,
};

/// The flattened items of a list column (`exemplars`, `quantile_values`).
struct Items<'a> {
    list: &'a ListArray,
    items: &'a StructArray,
}

impl<'a> Items<'a> {
    fn new(list: &'a ListArray, name: &'static str) -> Result<Self, ModelError> {
        Ok(Self { list, items: list.values().as_struct_opt().ok_or(ModelError::Column(name))? })
    }

    /// Indices into `items` of row `row`'s entries.
    fn range(&self, row: usize) -> std::ops::Range<usize> {
        let offsets = self.list.value_offsets();
        offsets[row] as usize..offsets[row + 1] as usize
    }
}

/// Decoded `exemplars` child columns.
struct Exemplars<'a> {
    items: Items<'a>,
    time: &'a TimestampNanosecondArray,
    value: &'a Float64Array,
    value_int: &'a Int64Array,
    trace_id: StringArray,
    span_id: StringArray,
    attrs: &'a MapArray,
    attr_types: StringArray,
}

impl<'a> Exemplars<'a> {
    fn new(list: &'a ListArray) -> Result<Self, ModelError> {
        use col::nested::*;
        let items = Items::new(list, col::EXEMPLARS)?;
        let s = items.items;
        Ok(Self {
            time: struct_prims::<TimestampNanosecondType>(s, TIME)?,
            value: struct_prims::<Float64Type>(s, VALUE)?,
            value_int: struct_prims::<Int64Type>(s, VALUE_INT)?,
            trace_id: struct_strings(s, TRACE_ID)?,
            span_id: struct_strings(s, SPAN_ID)?,
            attrs: struct_map(s, FILTERED_ATTRIBUTES)?,
            attr_types: struct_strings(s, FILTERED_ATTRIBUTE_TYPES)?,
            items,
        })
    }

    fn of_row(&self, row: usize) -> Result<Vec<Exemplar>, ModelError> {
        let id = |ids: &StringArray, i: usize| if ids.is_null(i) { Ok(Vec::new()) } else { hex_bytes(ids.value(i)) };
        self.items
            .range(row)
            .map(|i| {
                let value = match (opt(self.value_int, i), opt(self.value, i)) {
                    (Some(int), _) => Some(exemplar::Value::AsInt(int)),
                    (None, Some(double)) => Some(exemplar::Value::AsDouble(double)),
                    (None, None) => None,
                };
                Ok(Exemplar {
                    filtered_attributes: key_values(self.attrs, &self.attr_types, i)?,
                    time_unix_nano: self.time.value(i) as u64,
                    span_id: id(&self.span_id, i)?,
                    trace_id: id(&self.trace_id, i)?,
                    value,
                })
            })
            .collect()
    }
}

/// Every column of a metric batch, typed.
struct Columns<'a> {
    name: StringArray,
    metric_type: StringArray,
    unit: StringArray,
    description: StringArray,
    metadata: &'a MapArray,
    metadata_types: StringArray,
    resource_scope: ResourceScopeColumns<'a>,
    attrs: &'a MapArray,
    attr_types: StringArray,
    start: &'a TimestampNanosecondArray,
    time: &'a TimestampNanosecondArray,
    flags: &'a UInt32Array,
    temporality: StringArray,
    monotonic: &'a BooleanArray,
    value: &'a Float64Array,
    value_int: &'a Int64Array,
    count: &'a UInt64Array,
    sum: &'a Float64Array,
    min: &'a Float64Array,
    max: &'a Float64Array,
    bounds: &'a ListArray,
    bucket_counts: &'a ListArray,
    scale: &'a Int32Array,
    zero_count: &'a UInt64Array,
    zero_threshold: &'a Float64Array,
    pos_offset: &'a Int32Array,
    neg_offset: &'a Int32Array,
    pos_counts: &'a ListArray,
    neg_counts: &'a ListArray,
    quantiles: Items<'a>,
    q_quantile: &'a Float64Array,
    q_value: &'a Float64Array,
    exemplars: Exemplars<'a>,
}

/// Row `row` of a `List<primitive>` column; a null list reads as empty.
fn list_values<T>(list: &ListArray, row: usize, name: &'static str) -> Result<Vec<T::Native>, ModelError>
where
    T: datafusion::arrow::datatypes::ArrowPrimitiveType,
{
    if list.is_null(row) {
        return Ok(Vec::new());
    }
    let values = list.values().as_primitive_opt::<T>().ok_or(ModelError::Column(name))?;
    let offsets = list.value_offsets();
    Ok(values.values()[offsets[row] as usize..offsets[row + 1] as usize].to_vec())
}

impl<'a> Columns<'a> {
    fn new(batch: &'a RecordBatch) -> Result<Self, ModelError> {
        use col::*;
        let quantiles = Items::new(lists(batch, QUANTILE_VALUES)?, QUANTILE_VALUES)?;
        Ok(Self {
            name: strings(batch, METRIC_NAME)?,
            metric_type: strings(batch, METRIC_TYPE)?,
            unit: strings(batch, UNIT)?,
            description: strings(batch, DESCRIPTION)?,
            metadata: maps(batch, METRIC_METADATA)?,
            metadata_types: strings(batch, METRIC_METADATA_TYPES)?,
            resource_scope: ResourceScopeColumns::new(batch)?,
            attrs: maps(batch, ATTRIBUTES)?,
            attr_types: strings(batch, ATTRIBUTE_TYPES)?,
            start: prims::<TimestampNanosecondType>(batch, START_TIME)?,
            time: prims::<TimestampNanosecondType>(batch, TIME)?,
            flags: prims::<UInt32Type>(batch, FLAGS)?,
            temporality: strings(batch, AGGREGATION_TEMPORALITY)?,
            monotonic: bools(batch, IS_MONOTONIC)?,
            value: prims::<Float64Type>(batch, VALUE)?,
            value_int: prims::<Int64Type>(batch, VALUE_INT)?,
            count: prims::<UInt64Type>(batch, COUNT)?,
            sum: prims::<Float64Type>(batch, SUM)?,
            min: prims::<Float64Type>(batch, MIN)?,
            max: prims::<Float64Type>(batch, MAX)?,
            bounds: lists(batch, EXPLICIT_BOUNDS)?,
            bucket_counts: lists(batch, BUCKET_COUNTS)?,
            scale: prims::<Int32Type>(batch, SCALE)?,
            zero_count: prims::<UInt64Type>(batch, ZERO_COUNT)?,
            zero_threshold: prims::<Float64Type>(batch, ZERO_THRESHOLD)?,
            pos_offset: prims::<Int32Type>(batch, POSITIVE_OFFSET)?,
            neg_offset: prims::<Int32Type>(batch, NEGATIVE_OFFSET)?,
            pos_counts: lists(batch, POSITIVE_BUCKET_COUNTS)?,
            neg_counts: lists(batch, NEGATIVE_BUCKET_COUNTS)?,
            q_quantile: struct_prims::<Float64Type>(quantiles.items, nested::QUANTILE)?,
            q_value: struct_prims::<Float64Type>(quantiles.items, nested::VALUE)?,
            quantiles,
            exemplars: Exemplars::new(lists(batch, EXEMPLARS)?)?,
        })
    }

    fn same_resource(&self, a: usize, b: usize) -> Result<bool, ModelError> {
        self.resource_scope.same_resource(a, b)
    }

    fn same_scope(&self, a: usize, b: usize) -> Result<bool, ModelError> {
        self.resource_scope.same_scope(a, b)
    }

    fn same_metric(&self, a: usize, b: usize) -> Result<bool, ModelError> {
        Ok(str_eq(&self.name, a, b)
            && str_eq(&self.metric_type, a, b)
            && str_eq(&self.unit, a, b)
            && str_eq(&self.description, a, b)
            && str_eq(&self.temporality, a, b)
            && opt_bool(self.monotonic, a) == opt_bool(self.monotonic, b)
            && str_eq(&self.metadata_types, a, b)
            && map_eq(self.metadata, a, b)?)
    }

    fn resource(&self, row: usize) -> Result<ResourceMetrics, ModelError> {
        let (resource, schema_url) = self.resource_scope.resource(row)?;
        Ok(ResourceMetrics { resource: Some(resource), scope_metrics: Vec::new(), schema_url })
    }

    fn scope(&self, row: usize) -> Result<ScopeMetrics, ModelError> {
        let (scope, schema_url) = self.resource_scope.scope(row)?;
        Ok(ScopeMetrics { scope: Some(scope), metrics: Vec::new(), schema_url })
    }

    /// A metric with the row's fields and no points yet.
    fn metric(&self, row: usize) -> Result<Metric, ModelError> {
        let temporality = || -> Result<i32, ModelError> {
            if self.temporality.is_null(row) {
                return Ok(0);
            }
            let name = self.temporality.value(row);
            temporality_from_name(name).ok_or_else(|| ModelError::Corrupt(format!("unknown temporality {name:?}")))
        };
        let data = match self.metric_type.value(row) {
            metric_type::GAUGE => Data::Gauge(Gauge { data_points: Vec::new() }),
            metric_type::SUM => Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: temporality()?,
                is_monotonic: opt_bool(self.monotonic, row).unwrap_or_default(),
            }),
            metric_type::HISTOGRAM => {
                Data::Histogram(Histogram { data_points: Vec::new(), aggregation_temporality: temporality()? })
            }
            metric_type::EXPONENTIAL_HISTOGRAM => Data::ExponentialHistogram(ExponentialHistogram {
                data_points: Vec::new(),
                aggregation_temporality: temporality()?,
            }),
            metric_type::SUMMARY => Data::Summary(Summary { data_points: Vec::new() }),
            other => return Err(ModelError::Corrupt(format!("unknown metric type {other:?}"))),
        };
        Ok(Metric {
            name: self.name.value(row).to_owned(),
            description: self.description.value(row).to_owned(),
            unit: self.unit.value(row).to_owned(),
            metadata: key_values(self.metadata, &self.metadata_types, row)?,
            data: Some(data),
        })
    }

    /// Appends row `row`'s point to `data` (whose type the row matches).
    fn push_point(&self, row: usize, data: &mut Data) -> Result<(), ModelError> {
        use col::*;
        let attributes = key_values(self.attrs, &self.attr_types, row)?;
        let start_time_unix_nano = opt(self.start, row).unwrap_or_default() as u64;
        let time_unix_nano = self.time.value(row) as u64;
        let flags = self.flags.value(row);
        match data {
            Data::Gauge(Gauge { data_points }) | Data::Sum(Sum { data_points, .. }) => {
                let value = match (opt(self.value_int, row), opt(self.value, row)) {
                    (Some(int), _) => Some(number_data_point::Value::AsInt(int)),
                    (None, Some(double)) => Some(number_data_point::Value::AsDouble(double)),
                    (None, None) => None,
                };
                data_points.push(NumberDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    exemplars: self.exemplars.of_row(row)?,
                    flags,
                    value,
                });
            }
            Data::Histogram(h) => h.data_points.push(HistogramDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count: opt(self.count, row).unwrap_or_default(),
                sum: opt(self.sum, row),
                bucket_counts: list_values::<UInt64Type>(self.bucket_counts, row, BUCKET_COUNTS)?,
                explicit_bounds: list_values::<Float64Type>(self.bounds, row, EXPLICIT_BOUNDS)?,
                exemplars: self.exemplars.of_row(row)?,
                flags,
                min: opt(self.min, row),
                max: opt(self.max, row),
            }),
            Data::ExponentialHistogram(e) => {
                let buckets = |offset: &Int32Array, counts: &ListArray, name| -> Result<Option<Buckets>, ModelError> {
                    if offset.is_null(row) && counts.is_null(row) {
                        return Ok(None);
                    }
                    Ok(Some(Buckets {
                        offset: opt(offset, row).unwrap_or_default(),
                        bucket_counts: list_values::<UInt64Type>(counts, row, name)?,
                    }))
                };
                e.data_points.push(ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano,
                    time_unix_nano,
                    count: opt(self.count, row).unwrap_or_default(),
                    sum: opt(self.sum, row),
                    scale: opt(self.scale, row).unwrap_or_default(),
                    zero_count: opt(self.zero_count, row).unwrap_or_default(),
                    positive: buckets(self.pos_offset, self.pos_counts, POSITIVE_BUCKET_COUNTS)?,
                    negative: buckets(self.neg_offset, self.neg_counts, NEGATIVE_BUCKET_COUNTS)?,
                    flags,
                    exemplars: self.exemplars.of_row(row)?,
                    min: opt(self.min, row),
                    max: opt(self.max, row),
                    zero_threshold: opt(self.zero_threshold, row).unwrap_or_default(),
                })
            }
            Data::Summary(s) => s.data_points.push(SummaryDataPoint {
                attributes,
                start_time_unix_nano,
                time_unix_nano,
                count: opt(self.count, row).unwrap_or_default(),
                sum: opt(self.sum, row).unwrap_or_default(),
                quantile_values: self
                    .quantiles
                    .range(row)
                    .map(|i| ValueAtQuantile { quantile: self.q_quantile.value(i), value: self.q_value.value(i) })
                    .collect(),
                flags,
            }),
        }
        Ok(())
    }
}

fn opt_bool(array: &BooleanArray, row: usize) -> Option<bool> {
    array.is_valid(row).then(|| array.value(row))
}

/// Decodes a batch of metric points (all columns of the metric schema) into
/// one export request.
pub fn metric_requests_from_batch(batch: &RecordBatch) -> Result<ExportMetricsServiceRequest, ModelError> {
    let c = Columns::new(batch)?;
    let mut resource_metrics: Vec<ResourceMetrics> = Vec::new();
    for row in 0..batch.num_rows() {
        let new_resource = row == 0 || !c.same_resource(row - 1, row)?;
        let new_scope = new_resource || !c.same_scope(row - 1, row)?;
        let new_metric = new_scope || !c.same_metric(row - 1, row)?;
        if new_resource {
            resource_metrics.push(c.resource(row)?);
        }
        let scopes =
            &mut resource_metrics.last_mut().ok_or(ModelError::Column(col::RESOURCE_ATTRIBUTES))?.scope_metrics;
        if new_scope {
            scopes.push(c.scope(row)?);
        }
        let metrics = &mut scopes.last_mut().ok_or(ModelError::Column(col::SCOPE_NAME))?.metrics;
        if new_metric {
            metrics.push(c.metric(row)?);
        }
        let data = metrics.last_mut().and_then(|m| m.data.as_mut()).ok_or(ModelError::Column(col::METRIC_NAME))?;
        c.push_point(row, data)?;
    }
    Ok(ExportMetricsServiceRequest { resource_metrics })
}
