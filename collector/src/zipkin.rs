//! Zipkin v2 JSON ingest: `POST /api/v2/spans` on the OTLP/HTTP port takes
//! a JSON array of Zipkin v2 spans (optionally gzip), maps it to one OTLP
//! export request and sends that down the same ingest path as OTLP, so the
//! spans are durable before the `202 Accepted` Zipkin reporters expect.
//!
//! The mapping is the OpenTelemetry Zipkin transformation read backwards
//! (docs/ingest.md has the table). Every span is checked before anything is
//! written: one bad span refuses the whole request with a 400 that names the
//! span's index and the field, so nothing is ever half-accepted silently.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{Ipv4Addr, Ipv6Addr};

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValueKind;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, SpanKind};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as OtlpStatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Map, Value};
use skein_model::security::RequestTenant;

use crate::CollectorError;
use crate::codec::{self, Compression, Encoding, JSON};
use crate::http::{HttpState, admit_and_read, failure_response};
use crate::metrics::Transport;
use crate::signal::{Payload, Signal, SignalKind, Traces};
use crate::tenant_limits::tenant_of;

/// Tags that become span fields rather than attributes.
const TAG_ERROR: &str = "error";
const TAG_STATUS_CODE: &str = "otel.status_code";
const TAG_STATUS_DESCRIPTION: &str = "otel.status_description";
const TAG_SCOPE_NAME: [&str; 2] = ["otel.scope.name", "otel.library.name"];
const TAG_SCOPE_VERSION: [&str; 2] = ["otel.scope.version", "otel.library.version"];
const TAG_TRACE_STATE: &str = "w3c.tracestate";

pub(crate) async fn handler(
    State(state): State<HttpState>,
    tenant: Option<Extension<RequestTenant>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut body_read = false;
    let tenant = tenant_of(tenant.as_ref().map(|t| &t.0));
    match ingest(&state, tenant, &headers, body, &mut body_read).await {
        Ok(response) if Traces::is_full_success(&response) => StatusCode::ACCEPTED.into_response(),
        // Accepted, but not all of it as sent (values truncated): say so in
        // the body, in the OTLP/JSON response's words.
        Ok(response) => {
            let body = codec::encode_response::<Traces>(&response, Encoding::Json);
            (StatusCode::ACCEPTED, [(CONTENT_TYPE, JSON)], body).into_response()
        }
        Err(error) => {
            failure_response(&state, SignalKind::Traces, Transport::Zipkin, &error, Encoding::Json, body_read)
        }
    }
}

async fn ingest(
    state: &HttpState,
    tenant: &str,
    headers: &HeaderMap,
    body: Body,
    body_read: &mut bool,
) -> Result<ExportTraceServiceResponse, CollectorError> {
    check_content_type(headers)?;
    let compression = Compression::of_request(headers)?;
    let (_permit, body) = admit_and_read(state, tenant, headers, body, body_read).await?;
    let limit = state.max_request_bytes;
    let metrics = state.ingest.metrics().clone();
    let request = tokio::task::spawn_blocking(move || {
        let raw = codec::decompress(body, compression, limit)?;
        metrics.observe_body(SignalKind::Traces, Transport::Zipkin, raw.len());
        to_otlp(&raw)
    })
    .await
    .map_err(|e| CollectorError::Internal(format!("zipkin decoding task failed: {e}")))??;
    state.ingest.export::<Traces>(Transport::Zipkin, tenant, Payload::Decoded(request)).await
}

/// Zipkin reporters send `application/json`; a missing type is taken as
/// JSON too. Zipkin's protobuf encoding is not accepted.
fn check_content_type(headers: &HeaderMap) -> Result<(), CollectorError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    match codec::media_type(value.as_bytes()).as_deref() {
        Some(JSON) => Ok(()),
        other => Err(CollectorError::UnsupportedMediaType(format!(
            "unsupported Content-Type {:?} for Zipkin spans: send Zipkin v2 JSON as {JSON} (Zipkin protobuf and v1 \
             are not accepted)",
            other.unwrap_or("<not text>")
        ))),
    }
}

/// Maps a Zipkin v2 JSON body to one OTLP export request: a resource per
/// local service name, a scope per instrumentation scope tag, spans in the
/// order sent.
pub(crate) fn to_otlp(body: &[u8]) -> Result<ExportTraceServiceRequest, CollectorError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| CollectorError::InvalidRequest(format!("invalid Zipkin JSON body: {e}")))?;
    let Value::Array(items) = value else {
        return Err(CollectorError::InvalidRequest(
            "invalid Zipkin JSON body: expected a JSON array of Zipkin v2 spans".into(),
        ));
    };
    type Scopes = BTreeMap<(String, String), Vec<Span>>;
    let mut services: BTreeMap<Option<String>, Scopes> = BTreeMap::new();
    for (index, item) in items.iter().enumerate() {
        let mapped = map_span(At { index }, item)?;
        services.entry(mapped.service).or_default().entry(mapped.scope).or_default().push(mapped.span);
    }
    let resource_spans = services
        .into_iter()
        .map(|(service, scopes)| ResourceSpans {
            resource: Some(Resource {
                attributes: service.map(|name| string_kv("service.name", name)).into_iter().collect(),
                ..Default::default()
            }),
            scope_spans: scopes
                .into_iter()
                .map(|((name, version), spans)| ScopeSpans {
                    scope: (!name.is_empty() || !version.is_empty()).then(|| InstrumentationScope {
                        name,
                        version,
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                })
                .collect(),
            schema_url: String::new(),
        })
        .collect();
    Ok(ExportTraceServiceRequest { resource_spans })
}

/// One Zipkin span as OTLP, with where it belongs.
struct Mapped {
    service: Option<String>,
    /// Instrumentation scope name and version.
    scope: (String, String),
    span: Span,
}

/// The index of the span being mapped, for error messages.
#[derive(Clone, Copy)]
struct At {
    index: usize,
}

impl At {
    fn error(self, field: &str, problem: impl Display) -> CollectorError {
        CollectorError::InvalidRequest(format!(
            "invalid Zipkin span at spans[{}].{field}: {problem}; no span of this request was stored",
            self.index
        ))
    }
}

fn map_span(at: At, item: &Value) -> Result<Mapped, CollectorError> {
    let Value::Object(fields) = item else {
        return Err(CollectorError::InvalidRequest(format!(
            "invalid Zipkin span at spans[{}]: expected a JSON object; no span of this request was stored",
            at.index
        )));
    };
    if fields.contains_key("binaryAnnotations") {
        return Err(at.error("binaryAnnotations", "this is a Zipkin v1 span; send Zipkin v2 spans"));
    }
    let trace_id = parse_trace_id(at, fields)?;
    let span_id = parse_span_id(at, fields, "id")?.ok_or_else(|| at.error("id", "missing"))?;
    // A parent equal to the span itself, or all zeros, means "no parent"
    // in some reporters.
    let parent_span_id = parse_span_id(at, fields, "parentId")?.filter(|parent| *parent != span_id).unwrap_or_default();
    let name = string(at, fields, "name")?.unwrap_or_default().to_owned();
    let kind = parse_kind(at, fields)?;
    let start = micros_as_nanos(at, fields, "timestamp")?
        .ok_or_else(|| at.error("timestamp", "missing (Skein needs each span's start time)"))?;
    let duration = micros_as_nanos(at, fields, "duration")?.unwrap_or(0);
    let end =
        start.checked_add(duration).ok_or_else(|| at.error("duration", "timestamp + duration is out of range"))?;

    let mut tags = parse_tags(at, fields)?;
    let status = status_from_tags(&mut tags);
    let scope = (take_first(&mut tags, &TAG_SCOPE_NAME), take_first(&mut tags, &TAG_SCOPE_VERSION));
    let trace_state = tags.remove(TAG_TRACE_STATE).unwrap_or_default();
    let mut attributes: Vec<KeyValue> = Vec::with_capacity(tags.len() + 6);
    let tagged = |attributes: &[KeyValue], key: &str| attributes.iter().any(|kv| kv.key == key);
    for (key, value) in tags {
        attributes.push(string_kv(&key, value));
    }
    let local = endpoint(at, fields, "localEndpoint")?;
    let remote = endpoint(at, fields, "remoteEndpoint")?;
    // Endpoint fields never override a tag of the same name.
    let derived = [
        ("network.local.address", local.address.map(AnyValueKind::StringValue)),
        ("network.local.port", local.port.map(AnyValueKind::IntValue)),
        ("peer.service", remote.service.map(AnyValueKind::StringValue)),
        ("network.peer.address", remote.address.map(AnyValueKind::StringValue)),
        ("network.peer.port", remote.port.map(AnyValueKind::IntValue)),
        ("zipkin.debug", flag(at, fields, "debug")?.then_some(AnyValueKind::BoolValue(true))),
        ("zipkin.shared", flag(at, fields, "shared")?.then_some(AnyValueKind::BoolValue(true))),
    ];
    for (key, value) in derived {
        if let Some(value) = value
            && !tagged(&attributes, key)
        {
            attributes.push(KeyValue {
                key: key.into(),
                value: Some(AnyValue { value: Some(value) }),
                key_strindex: 0,
            });
        }
    }

    let span = Span {
        trace_id,
        span_id,
        trace_state,
        parent_span_id,
        name,
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        events: annotations(at, fields)?,
        status,
        ..Default::default()
    };
    Ok(Mapped { service: local.service, scope, span })
}

/// `traceId`: 16 hex digits (64-bit, stored with 16 leading zeros) or 32.
fn parse_trace_id(at: At, fields: &Map<String, Value>) -> Result<Vec<u8>, CollectorError> {
    let text = string(at, fields, "traceId")?.ok_or_else(|| at.error("traceId", "missing"))?;
    if !matches!(text.len(), 16 | 32) {
        return Err(at.error("traceId", format!("{text:?} is not 16 or 32 hex digits")));
    }
    let bytes = decode_hex(text).ok_or_else(|| at.error("traceId", format!("{text:?} is not hexadecimal")))?;
    if bytes.iter().all(|b| *b == 0) {
        return Err(at.error("traceId", "must not be all zeros"));
    }
    let mut id = vec![0; 16 - bytes.len()];
    id.extend_from_slice(&bytes);
    Ok(id)
}

/// `id` or `parentId`: 16 hex digits; `None` when absent (or an all-zero parent).
fn parse_span_id(at: At, fields: &Map<String, Value>, field: &str) -> Result<Option<Vec<u8>>, CollectorError> {
    let Some(text) = string(at, fields, field)?.filter(|t| !(t.is_empty() && field == "parentId")) else {
        return Ok(None);
    };
    if text.len() != 16 {
        return Err(at.error(field, format!("{text:?} is not 16 hex digits")));
    }
    let bytes = decode_hex(text).ok_or_else(|| at.error(field, format!("{text:?} is not hexadecimal")))?;
    if bytes.iter().all(|b| *b == 0) {
        return match field {
            "parentId" => Ok(None),
            _ => Err(at.error(field, "must not be all zeros")),
        };
    }
    Ok(Some(bytes))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.is_ascii() || !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok()).collect()
}

/// `kind`: absent means an internal span (the inverse of OTLP → Zipkin).
fn parse_kind(at: At, fields: &Map<String, Value>) -> Result<SpanKind, CollectorError> {
    let Some(text) = string(at, fields, "kind")? else {
        return Ok(SpanKind::Internal);
    };
    match text.to_ascii_uppercase().as_str() {
        "CLIENT" => Ok(SpanKind::Client),
        "SERVER" => Ok(SpanKind::Server),
        "PRODUCER" => Ok(SpanKind::Producer),
        "CONSUMER" => Ok(SpanKind::Consumer),
        _ => Err(at.error("kind", format!("{text:?} is not CLIENT, SERVER, PRODUCER or CONSUMER"))),
    }
}

/// A time in microseconds (`timestamp`, `duration`) as nanoseconds. Zipkin
/// sends whole microseconds; fractions (older OpenTelemetry exporters) are kept.
fn micros_as_nanos(at: At, fields: &Map<String, Value>, field: &str) -> Result<Option<u64>, CollectorError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => micros_value_as_nanos(value).map(Some).ok_or_else(|| {
            at.error(field, format!("{value} is not a number of microseconds (a non-negative integer)"))
        }),
    }
}

fn micros_value_as_nanos(value: &Value) -> Option<u64> {
    if let Some(micros) = value.as_u64() {
        return micros.checked_mul(1000);
    }
    let micros = value.as_f64().filter(|m| m.is_finite() && *m >= 0.0)?;
    let nanos = (micros * 1000.0).round();
    (nanos < u64::MAX as f64).then_some(nanos as u64)
}

/// `tags`: string values; numbers and booleans (sent by some reporters)
/// are kept as their JSON text.
fn parse_tags(at: At, fields: &Map<String, Value>) -> Result<BTreeMap<String, String>, CollectorError> {
    let mut tags = BTreeMap::new();
    match fields.get("tags") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => return Err(at.error(&format!("tags.{key}"), "must be a string")),
                };
                tags.insert(key.clone(), text);
            }
        }
        Some(_) => return Err(at.error("tags", "must be an object of string values")),
    }
    Ok(tags)
}

/// The span status from its tags (removed): an `error` tag makes it an
/// error whose message is the tag's value (Zipkin counts any `error` tag as
/// a failure); `otel.status_code` gives OK or ERROR.
fn status_from_tags(tags: &mut BTreeMap<String, String>) -> Option<Status> {
    let code = tags.remove(TAG_STATUS_CODE);
    let description = tags.remove(TAG_STATUS_DESCRIPTION);
    if let Some(error) = tags.remove(TAG_ERROR) {
        // `true` / empty mark an error without saying what it was.
        let message = match error.as_str() {
            "" | "true" => description.unwrap_or_default(),
            _ => error,
        };
        return Some(Status { message, code: OtlpStatusCode::Error as i32 });
    }
    match code.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some("ERROR") => Some(Status { message: description.unwrap_or_default(), code: OtlpStatusCode::Error as i32 }),
        Some("OK") => Some(Status { message: String::new(), code: OtlpStatusCode::Ok as i32 }),
        Some(_) => {
            // Not a code OTLP knows: keep what was sent as plain attributes.
            tags.extend(code.map(|c| (TAG_STATUS_CODE.to_owned(), c)));
            tags.extend(description.map(|d| (TAG_STATUS_DESCRIPTION.to_owned(), d)));
            None
        }
        None => {
            tags.extend(description.map(|d| (TAG_STATUS_DESCRIPTION.to_owned(), d)));
            None
        }
    }
}

/// Removes the first of `keys` present (and the others) from `tags`.
fn take_first(tags: &mut BTreeMap<String, String>, keys: &[&str]) -> String {
    let mut found = None;
    for key in keys {
        if let Some(value) = tags.remove(*key) {
            found.get_or_insert(value);
        }
    }
    found.unwrap_or_default()
}

/// A Zipkin endpoint, mapped: IPv4 wins over IPv6 when both are given.
#[derive(Default)]
struct Endpoint {
    service: Option<String>,
    address: Option<String>,
    port: Option<i64>,
}

fn endpoint(at: At, fields: &Map<String, Value>, field: &str) -> Result<Endpoint, CollectorError> {
    let object = match fields.get(field) {
        None | Some(Value::Null) => return Ok(Endpoint::default()),
        Some(Value::Object(object)) => object,
        Some(_) => return Err(at.error(field, "must be an object")),
    };
    let inner = |name: &str| format!("{field}.{name}");
    let text = |name: &str| endpoint_text(object, name).map_err(|()| at.error(&inner(name), "must be a string"));
    let service = text("serviceName")?.map(str::to_owned);
    let ipv4 = text("ipv4")?
        .map(|ip| {
            ip.parse::<Ipv4Addr>().map_err(|_| at.error(&inner("ipv4"), format!("{ip:?} is not an IPv4 address")))
        })
        .transpose()?;
    let ipv6 = text("ipv6")?
        .map(|ip| {
            ip.parse::<Ipv6Addr>().map_err(|_| at.error(&inner("ipv6"), format!("{ip:?} is not an IPv6 address")))
        })
        .transpose()?;
    let port = match object.get("port") {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(0) => None,
            Some(port) if port <= u64::from(u16::MAX) => Some(port as i64),
            _ => return Err(at.error(&inner("port"), format!("{value} is not a port number"))),
        },
    };
    let address = ipv4.map(|ip| ip.to_string()).or_else(|| ipv6.map(|ip| ip.to_string()));
    Ok(Endpoint { service, address, port })
}

/// A string field of an endpoint; absent, `null` and empty are `None`.
fn endpoint_text<'a>(object: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ()> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.is_empty() => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(()),
    }
}

fn flag(at: At, fields: &Map<String, Value>, field: &str) -> Result<bool, CollectorError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(flag)) => Ok(*flag),
        Some(_) => Err(at.error(field, "must be true or false")),
    }
}

/// `annotations` become events: the value is the event name.
fn annotations(at: At, fields: &Map<String, Value>) -> Result<Vec<Event>, CollectorError> {
    let items = match fields.get("annotations") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(at.error("annotations", "must be an array")),
    };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| format!("annotations[{i}].{name}");
        let time =
            item.get("timestamp").filter(|v| !v.is_null()).ok_or_else(|| at.error(&field("timestamp"), "missing"))?;
        let time = micros_value_as_nanos(time)
            .ok_or_else(|| at.error(&field("timestamp"), format!("{time} is not a number of microseconds")))?;
        let name = match item.get("value") {
            Some(Value::String(value)) => value.clone(),
            _ => return Err(at.error(&field("value"), "missing or not a string")),
        };
        events.push(Event { time_unix_nano: time, name, ..Default::default() });
    }
    Ok(events)
}

/// A string field; absent and `null` are `None`.
fn string<'a>(at: At, fields: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, CollectorError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(other) => Err(at.error(field, format!("must be a string, not {other}"))),
    }
}

fn string_kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(AnyValueKind::StringValue(value)) }),
        key_strindex: 0,
    }
}
