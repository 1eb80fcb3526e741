//! OTLP trace requests → Arrow span batches, with per-span validation.
//!
//! Invalid spans (bad trace or span ID) are skipped and counted so the
//! collector can answer with `partial_success`; everything else is kept.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Builder, ListArray, RecordBatch, StringBuilder, StructArray, TimestampNanosecondBuilder,
    UInt32Builder,
};
use datafusion::arrow::buffer::OffsetBuffer;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::arrow_build::{AttrsBuilder, ResourceScopeBuilders, timestamp_builder};
use crate::ids::{hex_lower, valid_span_id, valid_trace_id};
use crate::schema::{self, UNKNOWN_SERVICE, event_fields, link_fields, list_item, span_schema};
use crate::{ModelError, shard_for_trace};

/// Limits applied while converting; values over them are truncated.
#[derive(Debug, Clone, Copy)]
pub struct ConvertLimits {
    /// Longest string or bytes attribute value kept, in bytes.
    pub max_attribute_value_bytes: usize,
}

impl Default for ConvertLimits {
    fn default() -> Self {
        Self { max_attribute_value_bytes: 64 * 1024 }
    }
}

/// The result of converting one export request of either signal (spans or
/// metric data points): the accepted rows and what was refused or cut.
#[derive(Debug)]
pub struct ConvertedBatch {
    /// Accepted items (spans or data points), in request order.
    pub batch: RecordBatch,
    /// Shard of each row of `batch` (empty when converted for one shard).
    pub shard_of_row: Vec<u32>,
    /// Items refused (spans with invalid IDs; points per [`crate::metrics_to_arrow`]).
    pub rejected: u64,
    /// Attribute values cut to the size limit.
    pub truncated_values: u64,
    /// A human-readable reason for the first refusal or truncation.
    pub first_error: Option<String>,
}

impl ConvertedBatch {
    /// Splits the batch into one batch per shard, skipping empty shards.
    pub fn split_by_shard(&self, shard_count: usize) -> Result<Vec<(usize, RecordBatch)>, ModelError> {
        crate::arrow_build::split_by_shard(&self.batch, &self.shard_of_row, shard_count)
    }
}

/// The result of converting one traces export request.
pub type SpanBatch = ConvertedBatch;

/// Column builders for one batch of spans.
struct SpanBuilders {
    trace_id: StringBuilder,
    span_id: StringBuilder,
    parent_span_id: StringBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    name: StringBuilder,
    kind: StringBuilder,
    start: TimestampNanosecondBuilder,
    end: TimestampNanosecondBuilder,
    duration: Int64Builder,
    status_code: StringBuilder,
    status_message: StringBuilder,
    service_name: StringBuilder,
    attrs: AttrsBuilder,
    dropped_attrs: UInt32Builder,
    event_lens: Vec<usize>,
    event_time: TimestampNanosecondBuilder,
    event_name: StringBuilder,
    event_attrs: AttrsBuilder,
    event_dropped: UInt32Builder,
    dropped_events: UInt32Builder,
    link_lens: Vec<usize>,
    link_trace_id: StringBuilder,
    link_span_id: StringBuilder,
    link_trace_state: StringBuilder,
    link_flags: UInt32Builder,
    link_attrs: AttrsBuilder,
    link_dropped: UInt32Builder,
    dropped_links: UInt32Builder,
    resource_scope: ResourceScopeBuilders,
}

impl SpanBuilders {
    fn new() -> Self {
        Self {
            trace_id: StringBuilder::new(),
            span_id: StringBuilder::new(),
            parent_span_id: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::new(),
            name: StringBuilder::new(),
            kind: StringBuilder::new(),
            start: timestamp_builder(0),
            end: timestamp_builder(0),
            duration: Int64Builder::new(),
            status_code: StringBuilder::new(),
            status_message: StringBuilder::new(),
            service_name: StringBuilder::new(),
            attrs: AttrsBuilder::new(),
            dropped_attrs: UInt32Builder::new(),
            event_lens: Vec::new(),
            event_time: timestamp_builder(0),
            event_name: StringBuilder::new(),
            event_attrs: AttrsBuilder::new(),
            event_dropped: UInt32Builder::new(),
            dropped_events: UInt32Builder::new(),
            link_lens: Vec::new(),
            link_trace_id: StringBuilder::new(),
            link_span_id: StringBuilder::new(),
            link_trace_state: StringBuilder::new(),
            link_flags: UInt32Builder::new(),
            link_attrs: AttrsBuilder::new(),
            link_dropped: UInt32Builder::new(),
            dropped_links: UInt32Builder::new(),
            resource_scope: ResourceScopeBuilders::new(),
        }
    }

    fn append_span(&mut self, span: &Span, limits: &ConvertLimits, truncated: &mut u64) -> Result<(), ModelError> {
        self.trace_id.append_value(hex_lower(&span.trace_id));
        self.span_id.append_value(hex_lower(&span.span_id));
        if span.parent_span_id.is_empty() {
            self.parent_span_id.append_null();
        } else {
            self.parent_span_id.append_value(hex_lower(&span.parent_span_id));
        }
        self.trace_state.append_value(&span.trace_state);
        self.flags.append_value(span.flags);
        self.name.append_value(&span.name);
        self.kind.append_value(schema::kind_name(span.kind));
        // Nanosecond timestamps are u64 on the wire; the cast is bit-exact and
        // only wraps after the year 2262.
        self.start.append_value(span.start_time_unix_nano as i64);
        self.end.append_value(span.end_time_unix_nano as i64);
        self.duration.append_value((span.end_time_unix_nano as i64).wrapping_sub(span.start_time_unix_nano as i64));
        let (code, message) = span.status.as_ref().map_or((0, ""), |s| (s.code, s.message.as_str()));
        self.status_code.append_value(schema::status_name(code));
        self.status_message.append_value(message);
        self.attrs.append(&span.attributes, limits, truncated)?;
        self.dropped_attrs.append_value(span.dropped_attributes_count);

        self.event_lens.push(span.events.len());
        for event in &span.events {
            self.event_time.append_value(event.time_unix_nano as i64);
            self.event_name.append_value(&event.name);
            self.event_attrs.append(&event.attributes, limits, truncated)?;
            self.event_dropped.append_value(event.dropped_attributes_count);
        }
        self.dropped_events.append_value(span.dropped_events_count);

        self.link_lens.push(span.links.len());
        for link in &span.links {
            self.link_trace_id.append_value(hex_lower(&link.trace_id));
            self.link_span_id.append_value(hex_lower(&link.span_id));
            self.link_trace_state.append_value(&link.trace_state);
            self.link_flags.append_value(link.flags);
            self.link_attrs.append(&link.attributes, limits, truncated)?;
            self.link_dropped.append_value(link.dropped_attributes_count);
        }
        self.dropped_links.append_value(span.dropped_links_count);
        Ok(())
    }

    fn finish(mut self) -> Result<RecordBatch, ModelError> {
        let (attrs, attr_types) = self.attrs.finish();

        let (ev_attrs, ev_types) = self.event_attrs.finish();
        let events = StructArray::try_new(
            event_fields(),
            vec![
                Arc::new(self.event_time.finish()),
                Arc::new(self.event_name.finish()),
                ev_attrs,
                ev_types,
                Arc::new(self.event_dropped.finish()),
            ],
            None,
        )?;
        let events = ListArray::try_new(
            list_item(event_fields()),
            OffsetBuffer::from_lengths(self.event_lens),
            Arc::new(events),
            None,
        )?;

        let (link_attrs, link_types) = self.link_attrs.finish();
        let links = StructArray::try_new(
            link_fields(),
            vec![
                Arc::new(self.link_trace_id.finish()),
                Arc::new(self.link_span_id.finish()),
                Arc::new(self.link_trace_state.finish()),
                Arc::new(self.link_flags.finish()),
                link_attrs,
                link_types,
                Arc::new(self.link_dropped.finish()),
            ],
            None,
        )?;
        let links = ListArray::try_new(
            list_item(link_fields()),
            OffsetBuffer::from_lengths(self.link_lens),
            Arc::new(links),
            None,
        )?;

        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.end.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.service_name.finish()),
            attrs,
            attr_types,
            Arc::new(self.dropped_attrs.finish()),
            Arc::new(events),
            Arc::new(self.dropped_events.finish()),
            Arc::new(links),
            Arc::new(self.dropped_links.finish()),
        ];
        columns.extend(self.resource_scope.finish());
        Ok(RecordBatch::try_new(span_schema(), columns)?)
    }
}

/// Why a span is refused, or `None` when it is valid.
pub fn span_problem(span: &Span) -> Option<String> {
    if !valid_trace_id(&span.trace_id) {
        return Some(format!(
            "span {:?}: trace_id must be 16 bytes and not all zero (got {} bytes)",
            span.name,
            span.trace_id.len()
        ));
    }
    if !valid_span_id(&span.span_id) {
        return Some(format!(
            "span {:?}: span_id must be 8 bytes and not all zero (got {} bytes)",
            span.name,
            span.span_id.len()
        ));
    }
    if !span.parent_span_id.is_empty() && span.parent_span_id.len() != 8 {
        return Some(format!(
            "span {:?}: parent_span_id must be empty or 8 bytes (got {} bytes)",
            span.name,
            span.parent_span_id.len()
        ));
    }
    None
}

/// Converts an export request to one span batch. With `shard_count > 1`
/// the shard of each row (by trace ID) is computed too.
pub fn spans_to_arrow(
    request: &ExportTraceServiceRequest,
    limits: &ConvertLimits,
    shard_count: usize,
) -> Result<SpanBatch, ModelError> {
    let mut b = SpanBuilders::new();
    let mut rejected = 0u64;
    let mut truncated = 0u64;
    let mut first_error = None;
    let mut shard_of_row = Vec::new();
    for rs in &request.resource_spans {
        let (res_attrs, res_dropped) =
            rs.resource.as_ref().map_or((&[][..], 0), |r| (&r.attributes[..], r.dropped_attributes_count));
        let service = service_name(res_attrs);
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref();
            for span in &ss.spans {
                if let Some(problem) = span_problem(span) {
                    rejected += 1;
                    first_error.get_or_insert(problem);
                    continue;
                }
                if shard_count > 1 {
                    shard_of_row.push(shard_for_trace(&span.trace_id, shard_count) as u32);
                }
                b.append_span(span, limits, &mut truncated)?;
                b.service_name.append_value(service);
                b.resource_scope.res_attrs.append(res_attrs, limits, &mut truncated)?;
                b.resource_scope.res_dropped.append_value(res_dropped);
                b.resource_scope.res_schema_url.append_value(&rs.schema_url);
                b.resource_scope.scope_name.append_value(scope.map_or("", |s| s.name.as_str()));
                b.resource_scope.scope_version.append_value(scope.map_or("", |s| s.version.as_str()));
                b.resource_scope.scope_attrs.append(
                    scope.map_or(&[][..], |s| &s.attributes[..]),
                    limits,
                    &mut truncated,
                )?;
                b.resource_scope.scope_dropped.append_value(scope.map_or(0, |s| s.dropped_attributes_count));
                b.resource_scope.scope_schema_url.append_value(&ss.schema_url);
            }
        }
    }
    if truncated > 0 && first_error.is_none() {
        first_error = Some(format!(
            "{truncated} attribute value(s) longer than {} bytes were truncated",
            limits.max_attribute_value_bytes
        ));
    }
    Ok(SpanBatch { batch: b.finish()?, shard_of_row, rejected, truncated_values: truncated, first_error })
}

/// `service.name` of a resource, or `unknown_service` when absent or not a string.
pub fn service_name(resource_attributes: &[KeyValue]) -> &str {
    resource_attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) if !s.is_empty() => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or(UNKNOWN_SERVICE)
}
