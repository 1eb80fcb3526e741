//! Arrow span rows → OTLP messages: the exact inverse of `otlp_to_arrow`.
//!
//! Used to answer trace lookups (as Skein JSON or as re-exportable OTLP/JSON)
//! and to prove the schema lossless in tests.

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray, ListArray, RecordBatch, TimestampNanosecondArray};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

use crate::ModelError;
use crate::arrow_read::{
    ResourceScopeColumns, hex_bytes, key_values, lists, maps, strings, struct_map, struct_strings, struct_u32, times,
    u32s,
};
use crate::schema::{self, col};

/// One stored span with its resource and scope, as OTLP messages.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanRecord {
    pub resource: Resource,
    pub resource_schema_url: String,
    pub scope: InstrumentationScope,
    pub scope_schema_url: String,
    pub span: Span,
    pub service_name: String,
}

fn events_of(list: &ListArray, row: usize) -> Result<Vec<Event>, ModelError> {
    use col::nested::*;
    let items = list.value(row);
    let s = items.as_struct_opt().ok_or(ModelError::Column(col::EVENTS))?;
    let time: &TimestampNanosecondArray =
        s.column_by_name(TIME).and_then(|c| c.as_primitive_opt()).ok_or(ModelError::Column(TIME))?;
    let name = struct_strings(s, NAME)?;
    let attrs = struct_map(s, ATTRIBUTES)?;
    let types = struct_strings(s, ATTRIBUTE_TYPES)?;
    let dropped = struct_u32(s, DROPPED_ATTRIBUTES_COUNT)?;
    (0..s.len())
        .map(|i| {
            Ok(Event {
                time_unix_nano: time.value(i) as u64,
                name: name.value(i).to_owned(),
                attributes: key_values(attrs, &types, i)?,
                dropped_attributes_count: dropped.value(i),
            })
        })
        .collect()
}

fn links_of(list: &ListArray, row: usize) -> Result<Vec<Link>, ModelError> {
    use col::nested::*;
    let items = list.value(row);
    let s = items.as_struct_opt().ok_or(ModelError::Column(col::LINKS))?;
    let trace_id = struct_strings(s, TRACE_ID)?;
    let span_id = struct_strings(s, SPAN_ID)?;
    let trace_state = struct_strings(s, TRACE_STATE)?;
    let flags = struct_u32(s, FLAGS)?;
    let attrs = struct_map(s, ATTRIBUTES)?;
    let types = struct_strings(s, ATTRIBUTE_TYPES)?;
    let dropped = struct_u32(s, DROPPED_ATTRIBUTES_COUNT)?;
    (0..s.len())
        .map(|i| {
            Ok(Link {
                trace_id: hex_bytes(trace_id.value(i))?,
                span_id: hex_bytes(span_id.value(i))?,
                trace_state: trace_state.value(i).to_owned(),
                flags: flags.value(i),
                attributes: key_values(attrs, &types, i)?,
                dropped_attributes_count: dropped.value(i),
            })
        })
        .collect()
}

/// Decodes every row of a span batch (all columns of the span schema).
pub fn records_from_batch(batch: &RecordBatch) -> Result<Vec<SpanRecord>, ModelError> {
    let trace_id = strings(batch, col::TRACE_ID)?;
    let span_id = strings(batch, col::SPAN_ID)?;
    let parent = strings(batch, col::PARENT_SPAN_ID)?;
    let trace_state = strings(batch, col::TRACE_STATE)?;
    let flags = u32s(batch, col::FLAGS)?;
    let name = strings(batch, col::NAME)?;
    let kind = strings(batch, col::KIND)?;
    let start = times(batch, col::START_TIME)?;
    let end = times(batch, col::END_TIME)?;
    let status_code = strings(batch, col::STATUS_CODE)?;
    let status_message = strings(batch, col::STATUS_MESSAGE)?;
    let service = strings(batch, col::SERVICE_NAME)?;
    let attrs = maps(batch, col::SPAN_ATTRIBUTES)?;
    let attr_types = strings(batch, col::SPAN_ATTRIBUTE_TYPES)?;
    let dropped_attrs = u32s(batch, col::DROPPED_ATTRIBUTES_COUNT)?;
    let events = lists(batch, col::EVENTS)?;
    let dropped_events = u32s(batch, col::DROPPED_EVENTS_COUNT)?;
    let links = lists(batch, col::LINKS)?;
    let dropped_links = u32s(batch, col::DROPPED_LINKS_COUNT)?;
    let resource_scope = ResourceScopeColumns::new(batch)?;

    (0..batch.num_rows())
        .map(|row| {
            let code = schema::status_from_name(status_code.value(row)).unwrap_or_default();
            let message = status_message.value(row);
            let status = (code != 0 || !message.is_empty()).then(|| Status { code, message: message.to_owned() });
            let span = Span {
                trace_id: hex_bytes(trace_id.value(row))?,
                span_id: hex_bytes(span_id.value(row))?,
                trace_state: trace_state.value(row).to_owned(),
                parent_span_id: if parent.is_null(row) { Vec::new() } else { hex_bytes(parent.value(row))? },
                flags: flags.value(row),
                name: name.value(row).to_owned(),
                kind: schema::kind_from_name(kind.value(row)).unwrap_or_default(),
                start_time_unix_nano: start.value(row) as u64,
                end_time_unix_nano: end.value(row) as u64,
                attributes: key_values(attrs, &attr_types, row)?,
                dropped_attributes_count: dropped_attrs.value(row),
                events: events_of(events, row)?,
                dropped_events_count: dropped_events.value(row),
                links: links_of(links, row)?,
                dropped_links_count: dropped_links.value(row),
                status,
            };
            let (resource, resource_schema_url) = resource_scope.resource(row)?;
            let (scope, scope_schema_url) = resource_scope.scope(row)?;
            Ok(SpanRecord {
                resource,
                resource_schema_url,
                scope,
                scope_schema_url,
                span,
                service_name: service.value(row).to_owned(),
            })
        })
        .collect()
}

/// Regroups span records into an OTLP export request: one `ResourceSpans`
/// per distinct resource, one `ScopeSpans` per distinct scope within it,
/// in order of first appearance.
pub fn records_to_request(records: Vec<SpanRecord>) -> ExportTraceServiceRequest {
    let items = records.into_iter().map(|r| (r.resource, r.resource_schema_url, r.scope, r.scope_schema_url, r.span));
    let resource_spans = group_by_resource_scope(items)
        .into_iter()
        .map(|group| ResourceSpans {
            resource: Some(group.resource),
            schema_url: group.resource_schema_url,
            scope_spans: group
                .scopes
                .into_iter()
                .map(|(scope, schema_url, spans)| ScopeSpans { scope: Some(scope), spans, schema_url })
                .collect(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// Items of one resource, by scope (scope, its schema URL, the items).
pub(crate) struct ResourceGroup<T> {
    pub resource: Resource,
    pub resource_schema_url: String,
    pub scopes: Vec<(InstrumentationScope, String, Vec<T>)>,
}

/// Groups `(resource, resource schema URL, scope, scope schema URL, item)`
/// by distinct resource, then distinct scope within it, in order of first
/// appearance: how OTLP requests nest the items of any signal.
pub(crate) fn group_by_resource_scope<T>(
    items: impl IntoIterator<Item = (Resource, String, InstrumentationScope, String, T)>,
) -> Vec<ResourceGroup<T>> {
    let mut groups: Vec<ResourceGroup<T>> = Vec::new();
    let mut resource_index: HashMap<(Vec<u8>, String), usize> = HashMap::new();
    let mut scope_index: HashMap<(usize, Vec<u8>, String), usize> = HashMap::new();
    for (resource, resource_schema_url, scope, scope_schema_url, item) in items {
        let res_key = (prost_key(&resource), resource_schema_url.clone());
        let ri = *resource_index.entry(res_key).or_insert_with(|| {
            groups.push(ResourceGroup { resource, resource_schema_url, scopes: Vec::new() });
            groups.len() - 1
        });
        let scope_key = (ri, prost_key(&scope), scope_schema_url.clone());
        let scopes = &mut groups[ri].scopes;
        let si = *scope_index.entry(scope_key).or_insert_with(|| {
            scopes.push((scope, scope_schema_url, Vec::new()));
            scopes.len() - 1
        });
        scopes[si].2.push(item);
    }
    groups
}

/// A resource or scope's identity for grouping: its protobuf encoding.
fn prost_key<M: prost::Message>(message: &M) -> Vec<u8> {
    message.encode_to_vec()
}
