//! Result encodings for `/api/v1/sql`: JSON (default), CSV, NDJSON and the
//! Arrow IPC stream format.
//!
//! JSON keeps values exact: integers stay integers (64-bit included),
//! timestamps are RFC 3339 strings with nanoseconds, maps and structs are
//! objects and lists are arrays. CSV and NDJSON use the same conversion,
//! CSV writing nested values as JSON text.

use std::io::Write;

use datafusion::arrow::array::{Array, AsArray, GenericListArray, OffsetSizeTrait, PrimitiveArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map as JsonMap, Number, Value, json};

use crate::QueryError;
use crate::engine::QueryResult;

/// How `/api/v1/sql` encodes its rows (`?format=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    #[default]
    Json,
    Csv,
    Ndjson,
    Arrow,
}

impl OutputFormat {
    pub fn parse(text: &str) -> Result<Self, QueryError> {
        match text.to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "ndjson" | "jsonl" => Ok(Self::Ndjson),
            "arrow" => Ok(Self::Arrow),
            other => {
                Err(QueryError::InvalidRequest(format!("unknown format {other:?}; use json, csv, ndjson or arrow")))
            }
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Ndjson => "application/x-ndjson",
            Self::Arrow => "application/vnd.apache.arrow.stream",
        }
    }

    /// Encodes a whole result.
    pub fn encode(self, result: &QueryResult) -> Result<Vec<u8>, QueryError> {
        let encoded = match self {
            Self::Json => write_json(result),
            Self::Csv => write_csv(result),
            Self::Ndjson => write_ndjson(result),
            Self::Arrow => write_arrow(result),
        };
        encoded.map_err(|e| QueryError::Encode(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
enum EncodeError {
    #[error(transparent)]
    Arrow(#[from] ArrowError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// `{"columns": [{"name", "type"}], "rows": [[...]], "rowCount": n}`
fn write_json(result: &QueryResult) -> Result<Vec<u8>, EncodeError> {
    let columns: Vec<Value> =
        result.schema.fields().iter().map(|f| json!({ "name": f.name(), "type": f.data_type().to_string() })).collect();
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"columns\":");
    serde_json::to_writer(&mut out, &columns)?;
    out.extend_from_slice(b",\"rows\":[");
    let mut first_row = true;
    for batch in &result.batches {
        let columns = batch.columns().iter().map(|c| column_to_json(c.as_ref())).collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            if !std::mem::take(&mut first_row) {
                out.push(b',');
            }
            out.push(b'[');
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut out, &column[row])?;
            }
            out.push(b']');
        }
    }
    write!(out, "],\"rowCount\":{}}}", result.row_count)?;
    Ok(out)
}

/// One JSON object per row, keys in column order.
fn write_ndjson(result: &QueryResult) -> Result<Vec<u8>, EncodeError> {
    let keys: Vec<String> =
        result.schema.fields().iter().map(|f| serde_json::to_string(f.name())).collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for batch in &result.batches {
        let columns = batch.columns().iter().map(|c| column_to_json(c.as_ref())).collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            out.push(b'{');
            for (i, (key, column)) in keys.iter().zip(&columns).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(key.as_bytes());
                out.push(b':');
                serde_json::to_writer(&mut out, &column[row])?;
            }
            out.extend_from_slice(b"}\n");
        }
    }
    Ok(out)
}

/// RFC 4180 CSV with a header row; NULL is an empty field.
fn write_csv(result: &QueryResult) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    let header: Vec<&str> = result.schema.fields().iter().map(|f| f.name().as_str()).collect();
    write_csv_record(&mut out, header.iter().copied())?;
    for batch in &result.batches {
        let columns = batch.columns().iter().map(|c| column_to_json(c.as_ref())).collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = columns.iter().map(|column| csv_text(&column[row])).collect();
            write_csv_record(&mut out, cells.iter().map(String::as_str))?;
        }
    }
    Ok(out)
}

fn csv_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn write_csv_record<'a>(out: &mut Vec<u8>, cells: impl Iterator<Item = &'a str>) -> std::io::Result<()> {
    for (i, cell) in cells.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if cell.contains([',', '"', '\n', '\r']) {
            write!(out, "\"{}\"", cell.replace('"', "\"\""))?;
        } else {
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out.push(b'\n');
    Ok(())
}

/// The Arrow IPC streaming format: the schema, then every batch.
fn write_arrow(result: &QueryResult) -> Result<Vec<u8>, EncodeError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &result.schema)?;
    for batch in &result.batches {
        writer.write(batch)?;
    }
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Converts one column to JSON values, one per row.
pub fn column_to_json(array: &dyn Array) -> Result<Vec<Value>, ArrowError> {
    use DataType::*;
    Ok(match array.data_type() {
        Null => vec![Value::Null; array.len()],
        Boolean => array.as_boolean().iter().map(|v| v.map_or(Value::Null, Value::Bool)).collect(),
        Int8 => integers(array.as_primitive::<Int8Type>()),
        Int16 => integers(array.as_primitive::<Int16Type>()),
        Int32 => integers(array.as_primitive::<Int32Type>()),
        Int64 => integers(array.as_primitive::<Int64Type>()),
        UInt8 => integers(array.as_primitive::<UInt8Type>()),
        UInt16 => integers(array.as_primitive::<UInt16Type>()),
        UInt32 => integers(array.as_primitive::<UInt32Type>()),
        UInt64 => integers(array.as_primitive::<UInt64Type>()),
        Float32 => array.as_primitive::<Float32Type>().iter().map(|v| float(v.map(f64::from))).collect(),
        Float64 => array.as_primitive::<Float64Type>().iter().map(float).collect(),
        Utf8 => strings(array.as_string::<i32>().iter()),
        LargeUtf8 => strings(array.as_string::<i64>().iter()),
        Utf8View => strings(array.as_string_view().iter()),
        List(_) => list(array.as_list::<i32>())?,
        LargeList(_) => list(array.as_list::<i64>())?,
        FixedSizeList(..) => {
            let list = array.as_fixed_size_list();
            (0..list.len())
                .map(|i| {
                    if list.is_null(i) {
                        Ok(Value::Null)
                    } else {
                        column_to_json(list.value(i).as_ref()).map(Value::Array)
                    }
                })
                .collect::<Result<_, ArrowError>>()?
        }
        Struct(_) => {
            let structs = array.as_struct();
            let names = structs.column_names();
            let columns =
                structs.columns().iter().map(|c| column_to_json(c.as_ref())).collect::<Result<Vec<_>, _>>()?;
            (0..structs.len())
                .map(|row| {
                    if structs.is_null(row) {
                        return Value::Null;
                    }
                    let object: JsonMap<String, Value> = names
                        .iter()
                        .zip(&columns)
                        .map(|(name, column)| (name.to_string(), column[row].clone()))
                        .collect();
                    Value::Object(object)
                })
                .collect()
        }
        Map(..) => {
            let map = array.as_map();
            let keys = column_to_json(map.keys().as_ref())?;
            let values = column_to_json(map.values().as_ref())?;
            let offsets = map.value_offsets();
            (0..map.len())
                .map(|row| {
                    if map.is_null(row) {
                        return Value::Null;
                    }
                    let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
                    let object: JsonMap<String, Value> =
                        (start..end).map(|i| (key_text(&keys[i]), values[i].clone())).collect();
                    Value::Object(object)
                })
                .collect()
        }
        Dictionary(_, value_type) => column_to_json(cast(array, value_type)?.as_ref())?,
        Timestamp(_, tz) => {
            let format = match tz.as_deref() {
                None => "%Y-%m-%dT%H:%M:%S%.9f",
                Some("UTC" | "utc" | "Z" | "+00:00") => "%Y-%m-%dT%H:%M:%S%.9fZ",
                Some(_) => "%Y-%m-%dT%H:%M:%S%.9f%:z",
            };
            let options = FormatOptions::new()
                .with_display_error(false)
                .with_timestamp_format(Some(format))
                .with_timestamp_tz_format(Some(format));
            formatted(array, &options)?
        }
        // Dates, times, durations, intervals, decimals and binaries as text:
        // exact, unlike a JSON number.
        _ => formatted(array, &FormatOptions::new().with_display_error(false))?,
    })
}

fn integers<T>(array: &PrimitiveArray<T>) -> Vec<Value>
where
    T: ArrowPrimitiveType,
    Value: From<T::Native>,
{
    array.iter().map(|v| v.map_or(Value::Null, Value::from)).collect()
}

/// JSON has no NaN or infinities; they are written as strings.
pub(crate) fn float(value: Option<f64>) -> Value {
    match value {
        None => Value::Null,
        Some(v) => match Number::from_f64(v) {
            Some(n) => Value::Number(n),
            None if v.is_nan() => Value::String("NaN".into()),
            None if v > 0.0 => Value::String("Infinity".into()),
            None => Value::String("-Infinity".into()),
        },
    }
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> Vec<Value> {
    values.map(|v| v.map_or(Value::Null, |s| Value::String(s.to_owned()))).collect()
}

fn list<O: OffsetSizeTrait>(list: &GenericListArray<O>) -> Result<Vec<Value>, ArrowError> {
    let items = column_to_json(list.values().as_ref())?;
    let offsets = list.value_offsets();
    Ok((0..list.len())
        .map(|row| {
            if list.is_null(row) {
                return Value::Null;
            }
            Value::Array(items[offsets[row].as_usize()..offsets[row + 1].as_usize()].to_vec())
        })
        .collect())
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn formatted(array: &dyn Array, options: &FormatOptions<'_>) -> Result<Vec<Value>, ArrowError> {
    let formatter = ArrayFormatter::try_new(array, options)?;
    (0..array.len())
        .map(|i| if array.is_null(i) { Ok(Value::Null) } else { formatter.value(i).try_to_string().map(Value::String) })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, TimestampNanosecondArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::arrow::ipc::reader::StreamReader;

    fn sample() -> QueryResult {
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(vec![Some(i64::MAX), None])),
            Arc::new(UInt64Array::from(vec![u64::MAX, 1])),
            Arc::new(StringArray::from(vec![Some("a,\"b\"\nc"), Some("plain")])),
            Arc::new(Float64Array::from(vec![f64::NAN, 0.5])),
            Arc::new(TimestampNanosecondArray::from(vec![1_700_000_000_123_456_789, 0]).with_timezone("UTC")),
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1), None]), None])),
        ];
        let schema = Arc::new(Schema::new(
            ["big", "unsigned", "text", "ratio", "at", "list"]
                .iter()
                .zip(&columns)
                .map(|(name, c)| Field::new(*name, c.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(schema.clone(), columns).expect("batch");
        QueryResult { schema, batches: vec![batch], row_count: 2 }
    }

    #[test]
    fn json_keeps_values_exact() {
        let out = OutputFormat::Json.encode(&sample()).expect("encodes");
        let json: Value = serde_json::from_slice(&out).expect("valid json");
        assert_eq!(json["rowCount"], 2);
        assert_eq!(json["columns"][0], json!({"name": "big", "type": "Int64"}));
        let row = &json["rows"][0];
        assert_eq!(row[0].as_i64(), Some(i64::MAX));
        assert_eq!(row[1].as_u64(), Some(u64::MAX));
        assert_eq!(row[2], "a,\"b\"\nc");
        assert_eq!(row[3], "NaN");
        assert_eq!(row[4], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(row[5], json!([1, null]));
        assert_eq!(json["rows"][1], json!([null, 1, "plain", 0.5, "1970-01-01T00:00:00.000000000Z", null]));
    }

    #[test]
    fn csv_quotes_and_leaves_nulls_empty() {
        let out = String::from_utf8(OutputFormat::Csv.encode(&sample()).expect("encodes")).expect("utf8");
        let expected = "big,unsigned,text,ratio,at,list\n\
            9223372036854775807,18446744073709551615,\"a,\"\"b\"\"\nc\",NaN,2023-11-14T22:13:20.123456789Z,\"[1,null]\"\n\
            ,1,plain,0.5,1970-01-01T00:00:00.000000000Z,\n";
        assert_eq!(out, expected);
    }

    #[test]
    fn ndjson_is_one_object_per_line_in_column_order() {
        let out = String::from_utf8(OutputFormat::Ndjson.encode(&sample()).expect("encodes")).expect("utf8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("{\"big\":null,\"unsigned\":1,"), "{}", lines[1]);
        let first: Value = serde_json::from_str(lines[0]).expect("json line");
        assert_eq!(first["list"], json!([1, null]));
    }

    #[test]
    fn arrow_stream_round_trips() {
        let result = sample();
        let out = OutputFormat::Arrow.encode(&result).expect("encodes");
        let reader = StreamReader::try_new(std::io::Cursor::new(out), None).expect("stream");
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().expect("batches");
        assert_eq!(batches, result.batches);
    }

    #[test]
    fn parses_formats() {
        assert_eq!(OutputFormat::parse("CSV").expect("csv"), OutputFormat::Csv);
        assert_eq!(OutputFormat::parse("arrow").expect("arrow").content_type(), "application/vnd.apache.arrow.stream");
        assert!(OutputFormat::parse("xml").is_err());
    }
}
