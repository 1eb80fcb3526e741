//! Span links by target: one row per link of a stored span, keyed by the
//! span the link points at, computed from spans by [`derive`]. Storage
//! keeps these rows beside each span file (and derives its buffers' at
//! scan time), so "which spans link to this one" reads a small table sorted
//! by the linked trace instead of every span's links, at any distance in
//! time.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray, StringBuilder, TimestampNanosecondBuilder};
use datafusion::arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::ModelError;
use crate::arrow_read::{times, utf8};
use crate::schema::{col as span_col, timestamp_type};

/// Column names of span links.
pub mod col {
    /// The trace and span the link points at.
    pub const LINKED_TRACE_ID: &str = "linked_trace_id";
    pub const LINKED_SPAN_ID: &str = "linked_span_id";
    /// The span that carries the link.
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const SERVICE_NAME: &str = "service_name";
    pub const NAME: &str = "name";
    pub const START_TIME: &str = "start_time";
}

/// The span columns span links are derived from.
pub const SOURCE_COLUMNS: [&str; 6] = [
    span_col::TRACE_ID,
    span_col::SPAN_ID,
    span_col::SERVICE_NAME,
    span_col::NAME,
    span_col::START_TIME,
    span_col::LINKS,
];

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    Arc::new(Schema::new(vec![
        utf8(LINKED_TRACE_ID),
        utf8(LINKED_SPAN_ID),
        utf8(TRACE_ID),
        utf8(SPAN_ID),
        utf8(SERVICE_NAME),
        utf8(NAME),
        Field::new(START_TIME, timestamp_type(), false),
    ]))
});

/// The schema of span links, in memory, in files and on the wire.
pub fn span_links_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// The links of `batches` (span rows; only [`SOURCE_COLUMNS`] need be
/// present), one row per link, sorted by the linked trace and span.
pub fn derive(batches: &[RecordBatch]) -> Result<RecordBatch, ModelError> {
    let mut linked_trace = StringBuilder::new();
    let mut linked_span = StringBuilder::new();
    let mut trace = StringBuilder::new();
    let mut span = StringBuilder::new();
    let mut service = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut start = TimestampNanosecondBuilder::new().with_timezone("UTC");
    for batch in batches {
        let links = batch
            .column_by_name(span_col::LINKS)
            .and_then(|c| c.as_list_opt::<i32>())
            .ok_or(ModelError::Column(span_col::LINKS))?;
        let items = links.values().as_struct_opt().ok_or(ModelError::Column(span_col::LINKS))?;
        let nested = |field: &'static str| -> Result<&StringArray, ModelError> {
            items.column_by_name(field).and_then(|c| c.as_string_opt::<i32>()).ok_or(ModelError::Column(field))
        };
        let (to_trace, to_span) = (nested(span_col::nested::TRACE_ID)?, nested(span_col::nested::SPAN_ID)?);
        let (trace_ids, span_ids) = (utf8(batch, span_col::TRACE_ID)?, utf8(batch, span_col::SPAN_ID)?);
        let (services, names) = (utf8(batch, span_col::SERVICE_NAME)?, utf8(batch, span_col::NAME)?);
        let starts = times(batch, span_col::START_TIME)?;
        let offsets = links.value_offsets();
        for row in (0..batch.num_rows()).filter(|&row| links.is_valid(row)) {
            for item in offsets[row] as usize..offsets[row + 1] as usize {
                linked_trace.append_value(to_trace.value(item));
                linked_span.append_value(to_span.value(item));
                trace.append_value(trace_ids.value(row));
                span.append_value(span_ids.value(row));
                service.append_value(services.value(row));
                name.append_value(names.value(row));
                start.append_value(starts.value(row));
            }
        }
    }
    let rows = RecordBatch::try_new(
        span_links_schema(),
        vec![
            Arc::new(linked_trace.finish()),
            Arc::new(linked_span.finish()),
            Arc::new(trace.finish()),
            Arc::new(span.finish()),
            Arc::new(service.finish()),
            Arc::new(name.finish()),
            Arc::new(start.finish()),
        ],
    )?;
    let order = lexsort_to_indices(
        &[0, 1, 2, 3].map(|i| SortColumn { values: Arc::clone(rows.column(i)), options: None }),
        None,
    )?;
    Ok(take_record_batch(&rows, &order)?)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::span::Link;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;
    use crate::{ConvertLimits, spans_to_arrow};

    fn span(trace: u8, id: u8, start: u64, links: &[(u8, u8)]) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("op {id}"),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 10,
            links: links
                .iter()
                .map(|&(t, s)| Link { trace_id: vec![t; 16], span_id: vec![s; 8], ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    fn batch(spans: Vec<Span>) -> RecordBatch {
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        };
        spans_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts").batch
    }

    fn column(rows: &RecordBatch, name: &str) -> Vec<String> {
        let array = rows.column_by_name(name).expect("column").as_string::<i32>();
        (0..array.len()).map(|i| array.value(i).to_owned()).collect()
    }

    #[test]
    fn one_row_per_link_sorted_by_what_it_points_at() {
        let batches = [
            batch(vec![span(1, 1, 100, &[(9, 9), (3, 3)]), span(1, 2, 200, &[])]),
            batch(vec![span(2, 4, 300, &[(3, 3)])]),
        ];
        let rows = derive(&batches).expect("derives");
        assert_eq!(rows.schema(), span_links_schema());
        let hex = |b: u8, n: usize| format!("{b:02x}").repeat(n);
        assert_eq!(column(&rows, col::LINKED_TRACE_ID), [hex(3, 16), hex(3, 16), hex(9, 16)]);
        assert_eq!(column(&rows, col::LINKED_SPAN_ID), [hex(3, 8), hex(3, 8), hex(9, 8)]);
        assert_eq!(column(&rows, col::TRACE_ID), [hex(1, 16), hex(2, 16), hex(1, 16)]);
        assert_eq!(column(&rows, col::SPAN_ID), [hex(1, 8), hex(4, 8), hex(1, 8)]);
        assert_eq!(column(&rows, col::NAME), ["op 1", "op 4", "op 1"]);
        let starts = rows
            .column_by_name(col::START_TIME)
            .expect("start")
            .as_primitive::<datafusion::arrow::datatypes::TimestampNanosecondType>();
        assert_eq!(starts.values().to_vec(), [100, 300, 100]);
        assert_eq!(derive(&[]).expect("derives").num_rows(), 0);
    }
}
