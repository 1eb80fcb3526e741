//! Arrow log rows → OTLP: the exact inverse of [`super::logs_to_arrow`],
//! for the log APIs (Skein JSON, re-exportable OTLP/JSON) and the
//! losslessness tests.

use datafusion::arrow::array::{Array, Int32Array};
use datafusion::arrow::datatypes::Int32Type;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;

use super::schema::col;
use crate::arrow_read::{ResourceScopeColumns, hex_bytes, key_values, maps, prims, strings, times, u32s};
use crate::arrow_to_otlp::group_by_resource_scope;
use crate::attributes::{code, decode_value};
use crate::{ModelError, RecordBatch};

/// One stored log record with its resource and scope, as OTLP messages.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub resource: Resource,
    pub resource_schema_url: String,
    pub scope: InstrumentationScope,
    pub scope_schema_url: String,
    pub record: LogRecord,
    pub service_name: String,
    /// The `timestamp` column: time, else observed time, else receipt.
    pub timestamp_unix_nano: i64,
}

/// Decodes every row of a log batch (all columns of the log schema).
pub fn log_rows_from_batch(batch: &RecordBatch) -> Result<Vec<LogRow>, ModelError> {
    let timestamp = times(batch, col::TIMESTAMP)?;
    let time = times(batch, col::TIME)?;
    let observed = times(batch, col::OBSERVED_TIME)?;
    let severity_number: &Int32Array = prims::<Int32Type>(batch, col::SEVERITY_NUMBER)?;
    let severity_text = strings(batch, col::SEVERITY_TEXT)?;
    let body = strings(batch, col::BODY)?;
    let body_type = strings(batch, col::BODY_TYPE)?;
    let event_name = strings(batch, col::EVENT_NAME)?;
    let trace_id = strings(batch, col::TRACE_ID)?;
    let span_id = strings(batch, col::SPAN_ID)?;
    let flags = u32s(batch, col::FLAGS)?;
    let service = strings(batch, col::SERVICE_NAME)?;
    let attrs = maps(batch, col::LOG_ATTRIBUTES)?;
    let attr_types = strings(batch, col::LOG_ATTRIBUTE_TYPES)?;
    let dropped_attrs = u32s(batch, col::DROPPED_ATTRIBUTES_COUNT)?;
    let resource_scope = ResourceScopeColumns::new(batch)?;
    let id = |array: &datafusion::arrow::array::StringArray, row: usize| {
        if array.is_null(row) { Ok(Vec::new()) } else { hex_bytes(array.value(row)) }
    };
    let unset_is_zero = |array: &datafusion::arrow::array::TimestampNanosecondArray, row: usize| {
        if array.is_null(row) { 0 } else { array.value(row) as u64 }
    };

    (0..batch.num_rows())
        .map(|row| {
            let body = if body.is_null(row) {
                None
            } else {
                let ty = if body_type.is_null(row) { code::STRING } else { type_code(body_type.value(row))? };
                Some(decode_value(body.value(row), ty)?)
            };
            let record = LogRecord {
                time_unix_nano: unset_is_zero(time, row),
                observed_time_unix_nano: unset_is_zero(observed, row),
                severity_number: severity_number.value(row),
                severity_text: severity_text.value(row).to_owned(),
                body,
                attributes: key_values(attrs, &attr_types, row)?,
                dropped_attributes_count: dropped_attrs.value(row),
                flags: flags.value(row),
                trace_id: id(&trace_id, row)?,
                span_id: id(&span_id, row)?,
                event_name: event_name.value(row).to_owned(),
            };
            let (resource, resource_schema_url) = resource_scope.resource(row)?;
            let (scope, scope_schema_url) = resource_scope.scope(row)?;
            Ok(LogRow {
                resource,
                resource_schema_url,
                scope,
                scope_schema_url,
                record,
                service_name: service.value(row).to_owned(),
                timestamp_unix_nano: timestamp.value(row),
            })
        })
        .collect()
}

fn type_code(text: &str) -> Result<char, ModelError> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => Err(ModelError::Corrupt(format!("body type {text:?} is not one type code"))),
    }
}

/// Regroups log rows into an OTLP export request: one `ResourceLogs` per
/// distinct resource, one `ScopeLogs` per distinct scope within it, in
/// order of first appearance.
pub fn log_rows_to_request(rows: Vec<LogRow>) -> ExportLogsServiceRequest {
    let items = rows.into_iter().map(|r| (r.resource, r.resource_schema_url, r.scope, r.scope_schema_url, r.record));
    let resource_logs = group_by_resource_scope(items)
        .into_iter()
        .map(|group| ResourceLogs {
            resource: Some(group.resource),
            schema_url: group.resource_schema_url,
            scope_logs: group
                .scopes
                .into_iter()
                .map(|(scope, schema_url, log_records)| ScopeLogs { scope: Some(scope), log_records, schema_url })
                .collect(),
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}
