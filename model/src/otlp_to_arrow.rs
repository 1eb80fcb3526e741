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
use prost::Message;

use crate::arrow_build::{AttrRef, AttrsBuilder, EncodedAttrs, ResourceScopeBuilders, timestamp_builder};
use crate::attributes::ValueRef;
use crate::ids::{hex_lower, valid_span_id, valid_trace_id};
use crate::schema::{self, UNKNOWN_SERVICE, event_fields, link_fields, list_item, span_schema};
use crate::span_view::{SpanView, TracesView};
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
    /// Builders sized for `rows` spans carrying `attrs` attributes in all
    /// (events and links included), so the hot path rarely regrows.
    fn with_capacity(rows: usize, attrs: usize) -> Self {
        let strings = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Self {
            trace_id: strings(32),
            span_id: strings(16),
            parent_span_id: strings(16),
            trace_state: strings(0),
            flags: UInt32Builder::with_capacity(rows),
            name: strings(24),
            kind: strings(8),
            start: timestamp_builder(rows),
            end: timestamp_builder(rows),
            duration: Int64Builder::with_capacity(rows),
            status_code: strings(5),
            status_message: strings(0),
            service_name: strings(16),
            attrs: AttrsBuilder::sized(rows, attrs),
            dropped_attrs: UInt32Builder::with_capacity(rows),
            event_lens: Vec::with_capacity(rows),
            event_time: timestamp_builder(0),
            event_name: StringBuilder::new(),
            event_attrs: AttrsBuilder::new(),
            event_dropped: UInt32Builder::new(),
            dropped_events: UInt32Builder::with_capacity(rows),
            link_lens: Vec::with_capacity(rows),
            link_trace_id: StringBuilder::new(),
            link_span_id: StringBuilder::new(),
            link_trace_state: StringBuilder::new(),
            link_flags: UInt32Builder::new(),
            link_attrs: AttrsBuilder::new(),
            link_dropped: UInt32Builder::new(),
            dropped_links: UInt32Builder::with_capacity(rows),
            resource_scope: ResourceScopeBuilders::with_capacity(rows),
        }
    }

    fn append_span(
        &mut self,
        view: &TracesView<'_>,
        span: &SpanView<'_>,
        limits: &ConvertLimits,
        truncated: &mut u64,
    ) -> Result<(), ModelError> {
        self.trace_id.append_value(hex_lower(span.trace_id));
        self.span_id.append_value(hex_lower(span.span_id));
        if span.parent_span_id.is_empty() {
            self.parent_span_id.append_null();
        } else {
            self.parent_span_id.append_value(hex_lower(span.parent_span_id));
        }
        self.trace_state.append_value(span.trace_state);
        self.flags.append_value(span.flags);
        self.name.append_value(span.name);
        self.kind.append_value(schema::kind_name(span.kind));
        // Nanosecond timestamps are u64 on the wire; the cast is bit-exact and
        // only wraps after the year 2262.
        self.start.append_value(span.start as i64);
        self.end.append_value(span.end as i64);
        self.duration.append_value((span.end as i64).wrapping_sub(span.start as i64));
        self.status_code.append_value(schema::status_name(span.status_code));
        self.status_message.append_value(span.status_message);
        self.attrs.append_refs(view.attrs(&span.attrs).iter().cloned(), limits, truncated)?;
        self.dropped_attrs.append_value(span.dropped_attrs);

        self.event_lens.push(span.events.len());
        for event in &view.events[span.events.clone()] {
            self.event_time.append_value(event.time as i64);
            self.event_name.append_value(event.name);
            self.event_attrs.append_refs(view.attrs(&event.attrs).iter().cloned(), limits, truncated)?;
            self.event_dropped.append_value(event.dropped_attrs);
        }
        self.dropped_events.append_value(span.dropped_events);

        self.link_lens.push(span.links.len());
        for link in &view.links[span.links.clone()] {
            self.link_trace_id.append_value(hex_lower(link.trace_id));
            self.link_span_id.append_value(hex_lower(link.span_id));
            self.link_trace_state.append_value(link.trace_state);
            self.link_flags.append_value(link.flags);
            self.link_attrs.append_refs(view.attrs(&link.attrs).iter().cloned(), limits, truncated)?;
            self.link_dropped.append_value(link.dropped_attrs);
        }
        self.dropped_links.append_value(span.dropped_links);
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
fn span_problem(span: &SpanView<'_>) -> Option<String> {
    if !valid_trace_id(span.trace_id) {
        return Some(format!(
            "span {:?}: trace_id must be 16 bytes and not all zero (got {} bytes)",
            span.name,
            span.trace_id.len()
        ));
    }
    if !valid_span_id(span.span_id) {
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
    convert(&TracesView::of(request), limits, shard_count)
}

/// [`spans_to_arrow`] for an encoded `ExportTraceServiceRequest`, decoded
/// without copying its strings (see `wire.rs`); input the fast decoder does
/// not handle goes through prost, so the result is always prost's.
pub fn spans_to_arrow_from_protobuf(
    bytes: &[u8],
    limits: &ConvertLimits,
    shard_count: usize,
) -> Result<SpanBatch, ModelError> {
    match crate::wire::traces_view(bytes) {
        Ok(view) => convert(&view, limits, shard_count),
        Err(crate::wire::Unsupported) => {
            let request = ExportTraceServiceRequest::decode(bytes).map_err(ModelError::InvalidProtobuf)?;
            spans_to_arrow(&request, limits, shard_count)
        }
    }
}

fn convert(view: &TracesView<'_>, limits: &ConvertLimits, shard_count: usize) -> Result<SpanBatch, ModelError> {
    let mut b = SpanBuilders::with_capacity(view.spans.len(), view.attrs.len());
    let mut rejected = 0u64;
    let mut truncated = 0u64;
    let mut first_error = None;
    let mut shard_of_row = Vec::new();
    let mut resource_attrs = EncodedAttrs::default();
    let mut scope_attrs = EncodedAttrs::default();
    for resource in &view.resources {
        let res_attrs = view.attrs(&resource.attrs);
        let service = service_name(res_attrs.iter().cloned());
        resource_attrs.encode_refs(res_attrs.iter().cloned(), limits);
        resource_attrs.freeze();
        for scope in &view.scopes[resource.scopes.clone()] {
            scope_attrs.encode_refs(view.attrs(&scope.attrs).iter().cloned(), limits);
            scope_attrs.freeze();
            for span in &view.spans[scope.spans.clone()] {
                if let Some(problem) = span_problem(span) {
                    rejected += 1;
                    first_error.get_or_insert(problem);
                    continue;
                }
                if shard_count > 1 {
                    shard_of_row.push(shard_for_trace(span.trace_id, shard_count) as u32);
                }
                b.append_span(view, span, limits, &mut truncated)?;
                b.service_name.append_value(service);
                let rs = &mut b.resource_scope;
                rs.res_attrs.append_encoded(&resource_attrs)?;
                rs.res_dropped.append_value(resource.dropped_attrs);
                rs.res_schema_url.append_value(resource.schema_url);
                rs.scope_name.append_value(scope.name);
                rs.scope_version.append_value(scope.version);
                rs.scope_attrs.append_encoded(&scope_attrs)?;
                rs.scope_dropped.append_value(scope.dropped_attrs);
                rs.scope_schema_url.append_value(scope.schema_url);
                // Resource and scope values are cut once per row, as if
                // each span carried its own copy.
                truncated += resource_attrs.truncated + scope_attrs.truncated;
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
pub(crate) fn service_name<'a>(resource_attributes: impl IntoIterator<Item = AttrRef<'a>>) -> &'a str {
    resource_attributes
        .into_iter()
        .find(|(key, _)| *key == "service.name")
        .and_then(|(_, value)| match value {
            ValueRef::Str(s) if !s.is_empty() => Some(s),
            _ => None,
        })
        .unwrap_or(UNKNOWN_SERVICE)
}
