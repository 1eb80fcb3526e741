//! Typed access to the columns of metric query results.

use datafusion::arrow::array::{Array, AsArray, MapArray, RecordBatch};

use crate::QueryError;

/// The column `name` of `batch` as the array type `T`.
pub(crate) fn column<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, QueryError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| QueryError::Execution(format!("metric column {name} is missing or of an unexpected type")))
}

/// The `(key, value)` entries of one row of a `Map<Utf8, Utf8>` column
/// (a null value reads as "").
pub(crate) fn map_entries(map: &MapArray, row: usize) -> Result<Vec<(&str, &str)>, QueryError> {
    let bad = || QueryError::Execution("an attribute map is not Map<Utf8, Utf8>".into());
    let keys = map.keys().as_string_opt::<i32>().ok_or_else(bad)?;
    let values = map.values().as_string_opt::<i32>().ok_or_else(bad)?;
    if map.is_null(row) {
        return Ok(Vec::new());
    }
    let offsets = map.value_offsets();
    Ok((offsets[row] as usize..offsets[row + 1] as usize)
        .map(|i| (keys.value(i), if values.is_null(i) { "" } else { values.value(i) }))
        .collect())
}
