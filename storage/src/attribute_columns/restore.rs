//! Moving the values of attribute columns out of their map, and back.
//!
//! A file's map keeps every entry, in order, but an entry whose value went
//! to its key's column keeps only the key, with a NULL value (Skein never
//! stores a NULL attribute value, so the mark is unambiguous): the value is
//! stored once. Reading the whole map puts the values back.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, StringArray, StructArray};
use datafusion::arrow::buffer::{BooleanBuffer, NullBuffer};
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
// hashbrown with foldhash: these maps hash every attribute key of a flush.
use datafusion::common::HashMap;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_plan::PhysicalExpr;

/// Entry positions (into the map's entries) of the first entry of each of
/// `keys` per row: `positions[key][row]`.
pub(super) fn first_entries(map: &MapArray, keys: &[String]) -> Vec<Vec<Option<usize>>> {
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let names = map.keys().as_string::<i32>();
    let mut positions = vec![vec![None; map.len()]; keys.len()];
    let offsets = map.value_offsets();
    for row in 0..map.len() {
        for entry in offsets[row] as usize..offsets[row + 1] as usize {
            if let Some(&key) = index.get(names.value(entry)) {
                positions[key][row].get_or_insert(entry);
            }
        }
    }
    positions
}

/// `map` with the values at `moved` (entry positions) set to NULL.
pub(super) fn without_values(map: &MapArray, moved: impl Iterator<Item = usize>) -> Result<MapArray, ArrowError> {
    let values = map.values().as_string::<i32>();
    let mut valid: Vec<bool> = (0..values.len()).map(|i| values.is_valid(i)).collect();
    for entry in moved {
        valid[entry] = false;
    }
    let nulls = NullBuffer::new(BooleanBuffer::from(valid));
    let (offsets, bytes, _) = values.clone().into_parts();
    with_values(map, StringArray::try_new(offsets, bytes, Some(nulls))?)
}

/// `map` with the values its entries lost to `columns` (one per key of
/// `keys`) put back: an entry with a NULL value takes its row's value of
/// its key's column.
pub(super) fn restore(map: &MapArray, keys: &[String], columns: &[&StringArray]) -> Result<MapArray, ArrowError> {
    let values = map.values().as_string::<i32>();
    if values.null_count() == 0 {
        return Ok(map.clone());
    }
    let index: HashMap<&str, usize> = keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)).collect();
    let names = map.keys().as_string::<i32>();
    let mut restored: Vec<Option<&str>> = values.iter().collect();
    let offsets = map.value_offsets();
    for row in 0..map.len() {
        let (first, last) = (offsets[row] as usize, offsets[row + 1] as usize);
        for (entry, value) in restored.iter_mut().enumerate().take(last).skip(first) {
            if value.is_none()
                && let Some(&column) = index.get(names.value(entry))
            {
                let column = columns[column];
                *value = column.is_valid(row).then(|| column.value(row));
            }
        }
    }
    with_values(map, StringArray::from(restored))
}

fn internal(message: &str) -> DataFusionError {
    DataFusionError::Internal(message.to_owned())
}

fn with_values(map: &MapArray, values: StringArray) -> Result<MapArray, ArrowError> {
    let (field, offsets, entries, nulls, ordered) = map.clone().into_parts();
    let (fields, mut columns, entry_nulls) = entries.into_parts();
    columns[1] = Arc::new(values);
    let entries = StructArray::try_new(fields, columns, entry_nulls)?;
    MapArray::try_new(field, offsets, entries, nulls, ordered)
}

/// Reads an attribute map whose file moved the values of `keys` to the
/// `columns`: the map as it was written.
#[derive(Debug)]
pub(super) struct RestoredMap {
    pub map: Arc<dyn PhysicalExpr>,
    pub keys: Vec<String>,
    pub columns: Vec<Arc<dyn PhysicalExpr>>,
}

// By hand: deriving compares `Arc<dyn PhysicalExpr>` by move.
impl PartialEq for RestoredMap {
    fn eq(&self, other: &Self) -> bool {
        self.keys == other.keys && self.map.eq(&other.map) && self.columns.eq(&other.columns)
    }
}

impl Eq for RestoredMap {}

impl Hash for RestoredMap {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.map.hash(state);
        self.keys.hash(state);
        self.columns.hash(state);
    }
}

impl fmt::Display for RestoredMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "restored_map({}", self.map)?;
        for column in &self.columns {
            write!(f, ", {column}")?;
        }
        write!(f, ")")
    }
}

impl PhysicalExpr for RestoredMap {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.map.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.map.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        let map = self.map.evaluate(batch)?.into_array(rows)?;
        let columns: Vec<ArrayRef> =
            self.columns.iter().map(|c| c.evaluate(batch)?.into_array(rows)).collect::<Result<_>>()?;
        let strings = columns
            .iter()
            .map(|c| c.as_string_opt::<i32>().ok_or_else(|| internal("an attribute column is not Utf8")))
            .collect::<Result<Vec<_>>>()?;
        let map = map.as_map_opt().ok_or_else(|| internal("an attribute map is not a map"))?;
        Ok(ColumnarValue::Array(Arc::new(restore(map, &self.keys, &strings)?)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        std::iter::once(&self.map).chain(&self.columns).collect()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        let mut children = children.into_iter();
        let map = children.next().unwrap_or_else(|| Arc::clone(&self.map));
        Ok(Arc::new(Self { map, keys: self.keys.clone(), columns: children.collect() }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
