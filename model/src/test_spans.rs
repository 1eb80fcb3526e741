//! Span batches for the derivations' unit tests: only the columns derived
//! tables read.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray};

use crate::schema::col;

/// (trace, span, parent, service, name, status, start, duration).
pub(crate) type Row<'a> = (&'a str, &'a str, Option<&'a str>, &'a str, &'a str, &'a str, i64, i64);

/// One span row per `rows` entry, all of kind `server`.
pub(crate) fn span_batch(rows: &[Row<'_>]) -> RecordBatch {
    let text = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
    let time = |values: Vec<i64>| -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from_iter_values(values).with_timezone("UTC"))
    };
    RecordBatch::try_from_iter(vec![
        (col::TRACE_ID, text(rows.iter().map(|r| r.0).collect())),
        (col::SPAN_ID, text(rows.iter().map(|r| r.1).collect())),
        (col::PARENT_SPAN_ID, Arc::new(rows.iter().map(|r| r.2).collect::<StringArray>()) as ArrayRef),
        (col::SERVICE_NAME, text(rows.iter().map(|r| r.3).collect())),
        (col::NAME, text(rows.iter().map(|r| r.4).collect())),
        (col::KIND, text(vec!["server"; rows.len()])),
        (col::STATUS_CODE, text(rows.iter().map(|r| r.5).collect())),
        (col::START_TIME, time(rows.iter().map(|r| r.6).collect())),
        (col::END_TIME, time(rows.iter().map(|r| r.6 + r.7).collect())),
        (col::DURATION_NS, Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.7)))),
    ])
    .expect("batch")
}
