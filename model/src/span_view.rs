//! A borrowed, flat view of an OTLP traces request: what the span converter
//! reads. It is filled either from decoded messages ([`TracesView::of`]) or
//! straight from the protobuf bytes (`crate::wire`), so both paths share one
//! converter and the fast one allocates nothing per attribute.
//!
//! Nested lists (a resource's scopes, a scope's spans, a span's attributes,
//! events and links) are ranges into the view's flat vectors.

use std::ops::Range;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;

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
    pub spans: Range<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct SpanView<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    pub trace_state: &'a str,
    pub flags: u32,
    pub name: &'a str,
    pub kind: i32,
    pub start: u64,
    pub end: u64,
    pub attrs: Range<usize>,
    pub dropped_attrs: u32,
    pub events: Range<usize>,
    pub dropped_events: u32,
    pub links: Range<usize>,
    pub dropped_links: u32,
    pub status_code: i32,
    pub status_message: &'a str,
}

#[derive(Debug, Default)]
pub(crate) struct EventView<'a> {
    pub time: u64,
    pub name: &'a str,
    pub attrs: Range<usize>,
    pub dropped_attrs: u32,
}

#[derive(Debug, Default)]
pub(crate) struct LinkView<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub flags: u32,
    pub attrs: Range<usize>,
    pub dropped_attrs: u32,
}

/// Every resource, scope, span, event, link and attribute of one request.
#[derive(Debug, Default)]
pub(crate) struct TracesView<'a> {
    pub resources: Vec<ResourceView<'a>>,
    pub scopes: Vec<ScopeView<'a>>,
    pub spans: Vec<SpanView<'a>>,
    pub events: Vec<EventView<'a>>,
    pub links: Vec<LinkView<'a>>,
    pub attrs: Vec<AttrRef<'a>>,
}

impl<'a> TracesView<'a> {
    /// The view of a decoded request.
    pub fn of(request: &'a ExportTraceServiceRequest) -> Self {
        let mut view = TracesView::default();
        for rs in &request.resource_spans {
            let (attrs, dropped_attrs) =
                rs.resource.as_ref().map_or((&[][..], 0), |r| (&r.attributes[..], r.dropped_attributes_count));
            let attrs = view.push_attrs(attrs);
            let first_scope = view.scopes.len();
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref();
                let attrs = view.push_attrs(scope.map_or(&[][..], |s| &s.attributes[..]));
                let first_span = view.spans.len();
                for span in &ss.spans {
                    let attrs = view.push_attrs(&span.attributes);
                    let first_event = view.events.len();
                    for event in &span.events {
                        let attrs = view.push_attrs(&event.attributes);
                        view.events.push(EventView {
                            time: event.time_unix_nano,
                            name: &event.name,
                            attrs,
                            dropped_attrs: event.dropped_attributes_count,
                        });
                    }
                    let first_link = view.links.len();
                    for link in &span.links {
                        let attrs = view.push_attrs(&link.attributes);
                        view.links.push(LinkView {
                            trace_id: &link.trace_id,
                            span_id: &link.span_id,
                            trace_state: &link.trace_state,
                            flags: link.flags,
                            attrs,
                            dropped_attrs: link.dropped_attributes_count,
                        });
                    }
                    let (status_code, status_message) =
                        span.status.as_ref().map_or((0, ""), |s| (s.code, s.message.as_str()));
                    view.spans.push(SpanView {
                        trace_id: &span.trace_id,
                        span_id: &span.span_id,
                        parent_span_id: &span.parent_span_id,
                        trace_state: &span.trace_state,
                        flags: span.flags,
                        name: &span.name,
                        kind: span.kind,
                        start: span.start_time_unix_nano,
                        end: span.end_time_unix_nano,
                        attrs,
                        dropped_attrs: span.dropped_attributes_count,
                        events: first_event..view.events.len(),
                        dropped_events: span.dropped_events_count,
                        links: first_link..view.links.len(),
                        dropped_links: span.dropped_links_count,
                        status_code,
                        status_message,
                    });
                }
                view.scopes.push(ScopeView {
                    name: scope.map_or("", |s| s.name.as_str()),
                    version: scope.map_or("", |s| s.version.as_str()),
                    attrs,
                    dropped_attrs: scope.map_or(0, |s| s.dropped_attributes_count),
                    schema_url: &ss.schema_url,
                    spans: first_span..view.spans.len(),
                });
            }
            view.resources.push(ResourceView {
                attrs,
                dropped_attrs,
                schema_url: &rs.schema_url,
                scopes: first_scope..view.scopes.len(),
            });
        }
        view
    }

    fn push_attrs(&mut self, attrs: &'a [KeyValue]) -> Range<usize> {
        let first = self.attrs.len();
        self.attrs.extend(attrs.iter().map(attr_ref));
        first..self.attrs.len()
    }

    pub fn attrs(&self, range: &Range<usize>) -> &[AttrRef<'a>] {
        &self.attrs[range.clone()]
    }
}
