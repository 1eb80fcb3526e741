//! OTLP logs requests → Arrow log batches.
//!
//! Every record is kept: OTLP says a receiver should treat a malformed
//! trace or span ID as "not associated with a span", so IDs are stored as
//! sent (hex) and only a valid trace ID routes the record to its trace's
//! shard. Attribute values over the size limit are truncated and counted;
//! bodies are kept whole (the request size limit bounds them).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use datafusion::arrow::array::{
    ArrayRef, Int32Builder, RecordBatch, StringBuilder, TimestampNanosecondBuilder, UInt32Builder,
};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message;

use super::schema::log_schema;
use crate::arrow_build::{AttrsBuilder, EncodedAttrs, ResourceScopeBuilders, attr_ref, timestamp_builder};
use crate::attributes::{ValueRef, code};
use crate::ids::{hex_lower, valid_trace_id};
use crate::otlp_to_arrow::{ConvertLimits, ConvertedBatch, service_name};
use crate::{ModelError, shard_for_trace};

/// The result of converting one logs export request.
pub type LogBatch = ConvertedBatch;

/// Converts an export request to one log batch. With `shard_count > 1` the
/// shard of each row is computed too: a record with a valid trace ID lives
/// on its trace's shard (so a trace's logs are read where its spans are),
/// any other record on a shard picked by a hash of its content.
pub fn logs_to_arrow(
    request: &ExportLogsServiceRequest,
    limits: &ConvertLimits,
    shard_count: usize,
) -> Result<LogBatch, ModelError> {
    convert(request, limits, shard_count, now_nanos())
}

/// [`logs_to_arrow`] for an encoded `ExportLogsServiceRequest`.
pub fn logs_to_arrow_from_protobuf(
    bytes: &[u8],
    limits: &ConvertLimits,
    shard_count: usize,
) -> Result<LogBatch, ModelError> {
    let request = ExportLogsServiceRequest::decode(bytes)?;
    logs_to_arrow(&request, limits, shard_count)
}

fn now_nanos() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Column builders for one batch of log records.
struct LogBuilders {
    timestamp: TimestampNanosecondBuilder,
    time: TimestampNanosecondBuilder,
    observed_time: TimestampNanosecondBuilder,
    severity_number: Int32Builder,
    severity_text: StringBuilder,
    body: StringBuilder,
    body_type: StringBuilder,
    event_name: StringBuilder,
    trace_id: StringBuilder,
    span_id: StringBuilder,
    flags: UInt32Builder,
    service_name: StringBuilder,
    attrs: AttrsBuilder,
    dropped_attrs: UInt32Builder,
    resource_scope: ResourceScopeBuilders,
}

impl LogBuilders {
    fn with_capacity(rows: usize) -> Self {
        let strings = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Self {
            timestamp: timestamp_builder(rows),
            time: timestamp_builder(rows),
            observed_time: timestamp_builder(rows),
            severity_number: Int32Builder::with_capacity(rows),
            severity_text: strings(5),
            body: strings(64),
            body_type: strings(0),
            event_name: strings(0),
            trace_id: strings(32),
            span_id: strings(16),
            flags: UInt32Builder::with_capacity(rows),
            service_name: strings(16),
            attrs: AttrsBuilder::with_capacity(rows),
            dropped_attrs: UInt32Builder::with_capacity(rows),
            resource_scope: ResourceScopeBuilders::with_capacity(rows),
        }
    }

    fn append_record(
        &mut self,
        record: &LogRecord,
        received_ns: i64,
        limits: &ConvertLimits,
        truncated: &mut u64,
    ) -> Result<(), ModelError> {
        // Nanosecond timestamps are u64 on the wire; the cast is bit-exact and
        // only wraps after the year 2262. Zero means "unset" in OTLP.
        let time = (record.time_unix_nano != 0).then_some(record.time_unix_nano as i64);
        let observed = (record.observed_time_unix_nano != 0).then_some(record.observed_time_unix_nano as i64);
        self.timestamp.append_value(time.or(observed).unwrap_or(received_ns));
        self.time.append_option(time);
        self.observed_time.append_option(observed);
        self.severity_number.append_value(record.severity_number);
        self.severity_text.append_value(&record.severity_text);
        match &record.body {
            None => {
                self.body.append_null();
                self.body_type.append_null();
            }
            Some(body) => {
                let ty = ValueRef::of(Some(body)).encode_into(&mut self.body);
                // Ends the value written above.
                self.body.append_value("");
                self.body_type.append_option((ty != code::STRING).then(|| ty.to_string()));
            }
        }
        self.event_name.append_value(&record.event_name);
        append_id(&mut self.trace_id, &record.trace_id);
        append_id(&mut self.span_id, &record.span_id);
        self.flags.append_value(record.flags);
        self.attrs.append_refs(record.attributes.iter().map(attr_ref), limits, truncated)?;
        self.dropped_attrs.append_value(record.dropped_attributes_count);
        Ok(())
    }

    fn finish(mut self) -> Result<RecordBatch, ModelError> {
        let (attrs, attr_types) = self.attrs.finish();
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.timestamp.finish()),
            Arc::new(self.time.finish()),
            Arc::new(self.observed_time.finish()),
            Arc::new(self.severity_number.finish()),
            Arc::new(self.severity_text.finish()),
            Arc::new(self.body.finish()),
            Arc::new(self.body_type.finish()),
            Arc::new(self.event_name.finish()),
            Arc::new(self.trace_id.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.service_name.finish()),
            attrs,
            attr_types,
            Arc::new(self.dropped_attrs.finish()),
        ];
        columns.extend(self.resource_scope.finish());
        Ok(RecordBatch::try_new(log_schema(), columns)?)
    }
}

/// An ID as lowercase hex, null when absent (empty).
fn append_id(builder: &mut StringBuilder, id: &[u8]) {
    if id.is_empty() {
        builder.append_null();
    } else {
        builder.append_value(hex_lower(id));
    }
}

/// The shard of a record without a valid trace ID: a hash of what tells
/// records apart, so records spread over the shards and a retried request
/// lands where its first attempt did.
fn content_shard(record: &LogRecord, service: &str, shard_count: usize) -> usize {
    use xxhash_rust::xxh3::Xxh3;
    let mut hasher = Xxh3::new();
    hasher.update(service.as_bytes());
    hasher.update(&record.time_unix_nano.to_le_bytes());
    hasher.update(&record.observed_time_unix_nano.to_le_bytes());
    hasher.update(&record.body.as_ref().map(Message::encode_to_vec).unwrap_or_default());
    (hasher.digest() % shard_count as u64) as usize
}

fn convert(
    request: &ExportLogsServiceRequest,
    limits: &ConvertLimits,
    shard_count: usize,
    received_ns: i64,
) -> Result<LogBatch, ModelError> {
    let rows = request.resource_logs.iter().flat_map(|r| &r.scope_logs).map(|s| s.log_records.len()).sum();
    let mut b = LogBuilders::with_capacity(rows);
    let mut truncated = 0u64;
    let mut shard_of_row = Vec::new();
    let mut resource_attrs = EncodedAttrs::default();
    let mut scope_attrs = EncodedAttrs::default();
    for resource_logs in &request.resource_logs {
        let resource = resource_logs.resource.as_ref();
        let res_attrs = resource.map_or(&[][..], |r| &r.attributes);
        let service = service_name(res_attrs.iter().map(attr_ref));
        resource_attrs.encode(res_attrs, limits);
        resource_attrs.freeze();
        for scope_logs in &resource_logs.scope_logs {
            let scope = scope_logs.scope.as_ref();
            scope_attrs.encode(scope.map_or(&[][..], |s| &s.attributes), limits);
            scope_attrs.freeze();
            for record in &scope_logs.log_records {
                if shard_count > 1 {
                    let shard = if valid_trace_id(&record.trace_id) {
                        shard_for_trace(&record.trace_id, shard_count)
                    } else {
                        content_shard(record, service, shard_count)
                    };
                    shard_of_row.push(shard as u32);
                }
                b.append_record(record, received_ns, limits, &mut truncated)?;
                b.service_name.append_value(service);
                let rs = &mut b.resource_scope;
                rs.res_attrs.append_encoded(&resource_attrs)?;
                rs.res_dropped.append_value(resource.map_or(0, |r| r.dropped_attributes_count));
                rs.res_schema_url.append_value(&resource_logs.schema_url);
                rs.scope_name.append_value(scope.map_or("", |s| &s.name));
                rs.scope_version.append_value(scope.map_or("", |s| &s.version));
                rs.scope_attrs.append_encoded(&scope_attrs)?;
                rs.scope_dropped.append_value(scope.map_or(0, |s| s.dropped_attributes_count));
                rs.scope_schema_url.append_value(&scope_logs.schema_url);
                truncated += resource_attrs.truncated + scope_attrs.truncated;
            }
        }
    }
    let first_error = (truncated > 0).then(|| {
        format!("{truncated} attribute value(s) longer than {} bytes were truncated", limits.max_attribute_value_bytes)
    });
    Ok(LogBatch { batch: b.finish()?, shard_of_row, rejected: 0, truncated_values: truncated, first_error })
}

#[cfg(test)]
pub(crate) fn logs_to_arrow_at(
    request: &ExportLogsServiceRequest,
    limits: &ConvertLimits,
    shard_count: usize,
    received_ns: i64,
) -> Result<LogBatch, ModelError> {
    convert(request, limits, shard_count, received_ns)
}
