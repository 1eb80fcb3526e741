//! Column builders for one batch of metric points. Every point appends to
//! every column (nulls where its type has no such field), through
//! [`PointValues`] so no column can be forgotten.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, ListArray, ListBuilder, RecordBatch,
    StringBuilder, StructArray, TimestampNanosecondBuilder, UInt32Builder, UInt64Builder,
};
use datafusion::arrow::buffer::{NullBuffer, OffsetBuffer};
use datafusion::arrow::datatypes::DataType;

use super::schema::{self, exemplar_fields, metric_schema, quantile_fields, temporality_name};
use super::series::series_id_digits;
use super::view::{ExemplarView, Number};
use crate::arrow_build::{AttrRef, AttrsBuilder, EncodedAttrs, ResourceScopeBuilders, timestamp_builder};
use crate::{ConvertLimits, ModelError};

/// What a metric contributes to each of its rows, encoded once per metric.
pub(super) struct MetricRow<'a> {
    pub name: &'a str,
    pub metric_type: &'static str,
    pub unit: &'a str,
    pub description: &'a str,
    pub metadata: &'a EncodedAttrs,
    pub service_name: &'a str,
    pub resource: &'a EncodedAttrs,
    pub resource_dropped: u32,
    pub resource_schema_url: &'a str,
    pub scope_name: &'a str,
    pub scope_version: &'a str,
    pub scope: &'a EncodedAttrs,
    pub scope_dropped: u32,
    pub scope_schema_url: &'a str,
    pub temporality: Option<i32>,
    pub is_monotonic: Option<bool>,
}

/// The fields common to every point type.
pub(super) struct PointRow<'a> {
    pub series_hash: u64,
    pub attributes: &'a EncodedAttrs,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub flags: u32,
    pub exemplars: &'a [ExemplarView<'a>],
    /// What the exemplars' attribute ranges index.
    pub exemplar_attrs: &'a [AttrRef<'a>],
}

/// The type-specific columns of one point; `None` is stored as null.
#[derive(Default)]
pub(super) struct PointValues<'a> {
    pub value: Option<f64>,
    pub value_int: Option<i64>,
    pub count: Option<u64>,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub explicit_bounds: Option<&'a [f64]>,
    pub bucket_counts: Option<&'a [u64]>,
    pub scale: Option<i32>,
    pub zero_count: Option<u64>,
    pub zero_threshold: Option<f64>,
    /// Offset and counts of the positive / negative exponential buckets.
    pub positive: Option<(i32, &'a [u64])>,
    pub negative: Option<(i32, &'a [u64])>,
    /// (quantile, value) pairs.
    pub quantiles: Option<&'a [(f64, f64)]>,
}

fn f64_list() -> ListBuilder<Float64Builder> {
    ListBuilder::new(Float64Builder::new()).with_field(schema::list_item(DataType::Float64))
}

fn u64_list() -> ListBuilder<UInt64Builder> {
    ListBuilder::new(UInt64Builder::new()).with_field(schema::list_item(DataType::UInt64))
}

fn append_f64s(list: &mut ListBuilder<Float64Builder>, values: Option<&[f64]>) {
    if let Some(values) = values {
        list.values().append_slice(values);
    }
    list.append(values.is_some());
}

fn append_u64s(list: &mut ListBuilder<UInt64Builder>, values: Option<&[u64]>) {
    if let Some(values) = values {
        list.values().append_slice(values);
    }
    list.append(values.is_some());
}

/// The `value` and `value_int` columns of a number: an int is stored in
/// `value` as a double too, so SQL can use one column.
pub(super) fn number_columns(number: Option<Number>) -> (Option<f64>, Option<i64>) {
    match number {
        Some(Number::Double(d)) => (Some(d), None),
        Some(Number::Int(i)) => (Some(i as f64), Some(i)),
        None => (None, None),
    }
}

/// Lowercase hex of an ID into a stack buffer; `None` for an empty ID.
fn id_hex<'b>(id: &[u8], buf: &'b mut [u8; 32]) -> Option<&'b str> {
    let out = buf.get_mut(..id.len() * 2)?;
    if id.is_empty() || const_hex::encode_to_slice(id, out).is_err() {
        return None;
    }
    std::str::from_utf8(out).ok()
}

pub(super) struct PointBuilders {
    metric_name: StringBuilder,
    metric_type: StringBuilder,
    unit: StringBuilder,
    description: StringBuilder,
    metadata: AttrsBuilder,
    series_id: StringBuilder,
    service_name: StringBuilder,
    resource_scope: ResourceScopeBuilders,
    attrs: AttrsBuilder,
    start: TimestampNanosecondBuilder,
    time: TimestampNanosecondBuilder,
    flags: UInt32Builder,
    temporality: StringBuilder,
    monotonic: BooleanBuilder,
    value: Float64Builder,
    value_int: Int64Builder,
    count: UInt64Builder,
    sum: Float64Builder,
    min: Float64Builder,
    max: Float64Builder,
    bounds: ListBuilder<Float64Builder>,
    bucket_counts: ListBuilder<UInt64Builder>,
    scale: Int32Builder,
    zero_count: UInt64Builder,
    zero_threshold: Float64Builder,
    pos_offset: Int32Builder,
    neg_offset: Int32Builder,
    pos_counts: ListBuilder<UInt64Builder>,
    neg_counts: ListBuilder<UInt64Builder>,
    quantile_lens: Vec<usize>,
    quantile_valid: Vec<bool>,
    q_quantile: Float64Builder,
    q_value: Float64Builder,
    exemplar_lens: Vec<usize>,
    ex_time: TimestampNanosecondBuilder,
    ex_value: Float64Builder,
    ex_value_int: Int64Builder,
    ex_trace_id: StringBuilder,
    ex_span_id: StringBuilder,
    ex_attrs: AttrsBuilder,
}

impl PointBuilders {
    /// Builders sized for `rows` points, so the hot path rarely regrows.
    pub fn with_capacity(rows: usize) -> Self {
        let strings = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Self {
            metric_name: strings(32),
            metric_type: strings(12),
            unit: strings(4),
            description: strings(32),
            metadata: AttrsBuilder::with_capacity(rows),
            series_id: strings(16),
            service_name: strings(16),
            resource_scope: ResourceScopeBuilders::with_capacity(rows),
            attrs: AttrsBuilder::with_capacity(rows),
            start: timestamp_builder(rows),
            time: timestamp_builder(rows),
            flags: UInt32Builder::with_capacity(rows),
            temporality: strings(10),
            monotonic: BooleanBuilder::with_capacity(rows),
            value: Float64Builder::with_capacity(rows),
            value_int: Int64Builder::with_capacity(rows),
            count: UInt64Builder::with_capacity(rows),
            sum: Float64Builder::with_capacity(rows),
            min: Float64Builder::with_capacity(rows),
            max: Float64Builder::with_capacity(rows),
            bounds: f64_list(),
            bucket_counts: u64_list(),
            scale: Int32Builder::with_capacity(rows),
            zero_count: UInt64Builder::with_capacity(rows),
            zero_threshold: Float64Builder::with_capacity(rows),
            pos_offset: Int32Builder::with_capacity(rows),
            neg_offset: Int32Builder::with_capacity(rows),
            pos_counts: u64_list(),
            neg_counts: u64_list(),
            quantile_lens: Vec::with_capacity(rows),
            quantile_valid: Vec::with_capacity(rows),
            q_quantile: Float64Builder::new(),
            q_value: Float64Builder::new(),
            exemplar_lens: Vec::with_capacity(rows),
            ex_time: timestamp_builder(0),
            ex_value: Float64Builder::new(),
            ex_value_int: Int64Builder::new(),
            ex_trace_id: strings(0),
            ex_span_id: strings(0),
            ex_attrs: AttrsBuilder::new(),
        }
    }

    /// Appends one row. Exemplar attribute truncations are added to `truncated`.
    pub fn append(
        &mut self,
        metric: &MetricRow<'_>,
        point: &PointRow<'_>,
        values: &PointValues<'_>,
        limits: &ConvertLimits,
        truncated: &mut u64,
    ) -> Result<(), ModelError> {
        self.metric_name.append_value(metric.name);
        self.metric_type.append_value(metric.metric_type);
        self.unit.append_value(metric.unit);
        self.description.append_value(metric.description);
        self.metadata.append_encoded(metric.metadata)?;
        self.series_id.append_value(series_id_digits(point.series_hash, &mut [0; 16]));
        self.service_name.append_value(metric.service_name);
        self.resource_scope.res_attrs.append_encoded(metric.resource)?;
        self.resource_scope.res_dropped.append_value(metric.resource_dropped);
        self.resource_scope.res_schema_url.append_value(metric.resource_schema_url);
        self.resource_scope.scope_name.append_value(metric.scope_name);
        self.resource_scope.scope_version.append_value(metric.scope_version);
        self.resource_scope.scope_attrs.append_encoded(metric.scope)?;
        self.resource_scope.scope_dropped.append_value(metric.scope_dropped);
        self.resource_scope.scope_schema_url.append_value(metric.scope_schema_url);
        self.attrs.append_encoded(point.attributes)?;
        // 0 means "unknown start" in OTLP (always so for gauges).
        let start = point.start_time_unix_nano;
        self.start.append_option((start != 0).then_some(start as i64));
        // u64 → i64 is bit-exact; it only wraps after the year 2262.
        self.time.append_value(point.time_unix_nano as i64);
        self.flags.append_value(point.flags);
        self.temporality.append_option(metric.temporality.map(temporality_name));
        self.monotonic.append_option(metric.is_monotonic);

        self.value.append_option(values.value);
        self.value_int.append_option(values.value_int);
        self.count.append_option(values.count);
        self.sum.append_option(values.sum);
        self.min.append_option(values.min);
        self.max.append_option(values.max);
        append_f64s(&mut self.bounds, values.explicit_bounds);
        append_u64s(&mut self.bucket_counts, values.bucket_counts);
        self.scale.append_option(values.scale);
        self.zero_count.append_option(values.zero_count);
        self.zero_threshold.append_option(values.zero_threshold);
        self.pos_offset.append_option(values.positive.map(|(offset, _)| offset));
        append_u64s(&mut self.pos_counts, values.positive.map(|(_, counts)| counts));
        self.neg_offset.append_option(values.negative.map(|(offset, _)| offset));
        append_u64s(&mut self.neg_counts, values.negative.map(|(_, counts)| counts));
        let quantiles = values.quantiles.unwrap_or_default();
        self.quantile_lens.push(quantiles.len());
        self.quantile_valid.push(values.quantiles.is_some());
        for &(quantile, value) in quantiles {
            self.q_quantile.append_value(quantile);
            self.q_value.append_value(value);
        }

        self.exemplar_lens.push(point.exemplars.len());
        let mut hex = [0u8; 32];
        for e in point.exemplars {
            self.ex_time.append_value(e.time as i64);
            let (value, value_int) = number_columns(e.value);
            self.ex_value.append_option(value);
            self.ex_value_int.append_option(value_int);
            self.ex_trace_id.append_option(id_hex(e.trace_id, &mut hex));
            self.ex_span_id.append_option(id_hex(e.span_id, &mut hex));
            let attrs = &point.exemplar_attrs[e.attrs.clone()];
            self.ex_attrs.append_refs(attrs.iter().cloned(), limits, truncated)?;
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<RecordBatch, ModelError> {
        let quantiles = StructArray::try_new(
            quantile_fields(),
            vec![Arc::new(self.q_quantile.finish()), Arc::new(self.q_value.finish())],
            None,
        )?;
        let quantiles = ListArray::try_new(
            crate::schema::list_item(quantile_fields()),
            OffsetBuffer::from_lengths(self.quantile_lens),
            Arc::new(quantiles),
            Some(NullBuffer::from(self.quantile_valid)),
        )?;
        let (ex_attrs, ex_types) = self.ex_attrs.finish();
        let exemplars = StructArray::try_new(
            exemplar_fields(),
            vec![
                Arc::new(self.ex_time.finish()),
                Arc::new(self.ex_value.finish()),
                Arc::new(self.ex_value_int.finish()),
                Arc::new(self.ex_trace_id.finish()),
                Arc::new(self.ex_span_id.finish()),
                ex_attrs,
                ex_types,
            ],
            None,
        )?;
        let exemplars = ListArray::try_new(
            crate::schema::list_item(exemplar_fields()),
            OffsetBuffer::from_lengths(self.exemplar_lens),
            Arc::new(exemplars),
            None,
        )?;
        let (metadata, metadata_types) = self.metadata.finish();
        let (attrs, attr_types) = self.attrs.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.metric_name.finish()),
            Arc::new(self.metric_type.finish()),
            Arc::new(self.unit.finish()),
            Arc::new(self.description.finish()),
            metadata,
            metadata_types,
            Arc::new(self.series_id.finish()),
            Arc::new(self.service_name.finish()),
        ];
        columns.extend(self.resource_scope.finish());
        columns.extend([
            attrs,
            attr_types,
            Arc::new(self.start.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.temporality.finish()),
            Arc::new(self.monotonic.finish()),
            Arc::new(self.value.finish()),
            Arc::new(self.value_int.finish()),
            Arc::new(self.count.finish()),
            Arc::new(self.sum.finish()),
            Arc::new(self.min.finish()),
            Arc::new(self.max.finish()),
            Arc::new(self.bounds.finish()),
            Arc::new(self.bucket_counts.finish()),
            Arc::new(self.scale.finish()),
            Arc::new(self.zero_count.finish()),
            Arc::new(self.zero_threshold.finish()),
            Arc::new(self.pos_offset.finish()),
            Arc::new(self.neg_offset.finish()),
            Arc::new(self.pos_counts.finish()),
            Arc::new(self.neg_counts.finish()),
            Arc::new(quantiles),
            Arc::new(exemplars),
        ]);
        Ok(RecordBatch::try_new(metric_schema(), columns)?)
    }
}
