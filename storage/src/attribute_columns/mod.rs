//! Attribute columns: the keys most rows of a file have in an attribute map
//! (`http.route`, `http.response.status_code`, `db.system.name`, ...) are
//! also stored as Utf8 columns of their own, named `<map>.<key>`
//! (`span_attributes.http.route`), so `span_attributes['http.route']` and
//! attribute search read one dictionary-encoded column, with statistics
//! (and, once merged, a bloom filter), instead of decoding every key and
//! value of the map.
//!
//! Nothing is configured: each file learns its keys from its rows (a flush)
//! or from its inputs (a merge). The map keeps every entry in order, but a
//! value stored in a column is stored only there: its map entry keeps the
//! key with a NULL value (module `restore`). A file also lists every key
//! its rows have in each map (when there are few): a lookup of a key a file
//! never had then reads nothing of the map either.
//!
//! Every read of span files goes through DataFusion with
//! [`AttributeColumnsAdapterFactory`] (the shard tables' scans and the
//! compaction's): per file, it turns `get_field(<map>, '<key>')` into the
//! key's column (or NULL), and any other read of the map into the map with
//! its values put back, so no query or merge can tell the difference.

mod restore;
mod rewrite;

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, MapArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
// hashbrown with foldhash: these maps hash every attribute key of a flush.
use datafusion::common::HashMap;

use crate::error::StorageError;
pub(crate) use rewrite::AttributeColumnsAdapterFactory;

/// At most this many keys of one map become columns in one file.
pub(crate) const MAX_COLUMNS_PER_MAP: usize = 32;
/// A key becomes a column when at least one row in this many has it.
const MIN_ROWS_PER_KEY_DIVISOR: usize = 20;
/// A file lists a map's keys only when it has at most this many.
const MAX_LISTED_KEYS: usize = 512;
/// Schema metadata naming every key of a map in the file: `<prefix><map>`
/// holds a JSON array of keys.
const KEYS_METADATA_PREFIX: &str = "skein.attribute_keys.";

/// The column holding `key` of the attribute map `map`.
pub(crate) fn column_name(map: &str, key: &str) -> String {
    format!("{map}.{key}")
}

/// The metadata entry listing the keys of `map`.
fn keys_metadata_key(map: &str) -> String {
    format!("{KEYS_METADATA_PREFIX}{map}")
}

/// Which attribute keys of which maps one file stores as columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AttributeLayout {
    maps: Vec<MapLayout>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MapLayout {
    map: String,
    /// Keys stored as columns, most frequent first.
    columns: Vec<String>,
    /// Every key the file's rows have in this map, when few enough to list.
    keys: Option<BTreeSet<String>>,
}

impl AttributeLayout {
    /// Learns the layout of a file holding `batches`: per map column of
    /// `maps`, the keys at least one row in [`MIN_ROWS_PER_KEY_DIVISOR`] has.
    pub(crate) fn learn(maps: &[&str], batches: &[RecordBatch]) -> Result<Self, StorageError> {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let mut layouts = Vec::with_capacity(maps.len());
        for map in maps {
            let mut counts: HashMap<&str, usize> = HashMap::default();
            for batch in batches {
                let entries = map_column(batch, map)?;
                let keys = entries.keys().as_string::<i32>();
                let offsets = entries.value_offsets();
                let (first, last) = (offsets[0] as usize, offsets[entries.len()] as usize);
                for entry in first..last {
                    *counts.entry(keys.value(entry)).or_default() += 1;
                }
            }
            let mut frequent: Vec<(&str, usize)> =
                counts.iter().filter(|(_, n)| **n * MIN_ROWS_PER_KEY_DIVISOR >= rows).map(|(k, n)| (*k, *n)).collect();
            frequent.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let columns = frequent.into_iter().take(MAX_COLUMNS_PER_MAP).map(|(k, _)| k.to_owned()).collect();
            let keys = (counts.len() <= MAX_LISTED_KEYS).then(|| counts.keys().map(|k| (*k).to_owned()).collect());
            layouts.push(MapLayout { map: (*map).to_owned(), columns, keys });
        }
        Ok(Self { maps: layouts })
    }

    /// The layout a file of `schema` was written with (none for files
    /// written before attribute columns, or of another signal).
    pub(crate) fn of_schema(maps: &[&str], schema: &Schema) -> Self {
        let layouts = maps
            .iter()
            .map(|map| {
                let prefix = column_name(map, "");
                let columns = schema
                    .fields()
                    .iter()
                    .filter(|f| f.data_type() == &DataType::Utf8)
                    .filter_map(|f| f.name().strip_prefix(prefix.as_str()))
                    .map(str::to_owned);
                MapLayout { map: (*map).to_owned(), columns: columns.collect(), keys: listed_keys(schema, map) }
            })
            .collect();
        Self { maps: layouts }
    }

    /// The layout of a file merged from files of `inputs` (layout, rows):
    /// the keys its inputs stored as columns, those covering most rows
    /// first; every key listed when every input listed its keys.
    pub(crate) fn merge(inputs: &[(AttributeLayout, u64)]) -> Self {
        let Some((first, _)) = inputs.first() else { return Self::default() };
        let maps = first
            .maps
            .iter()
            .enumerate()
            .map(|(index, layout)| {
                let mut covered: HashMap<&str, u64> = HashMap::default();
                let mut keys = Some(BTreeSet::new());
                for (input, rows) in inputs {
                    let Some(input) = input.maps.get(index).filter(|m| m.map == layout.map) else {
                        keys = None;
                        continue;
                    };
                    for column in &input.columns {
                        *covered.entry(column.as_str()).or_default() += rows;
                    }
                    match (&mut keys, &input.keys) {
                        (Some(all), Some(these)) => all.extend(these.iter().cloned()),
                        _ => keys = None,
                    }
                }
                let mut ranked: Vec<(&str, u64)> = covered.into_iter().collect();
                ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                let columns = ranked.into_iter().take(MAX_COLUMNS_PER_MAP).map(|(k, _)| k.to_owned()).collect();
                let keys = keys.filter(|k| k.len() <= MAX_LISTED_KEYS);
                MapLayout { map: layout.map.clone(), columns, keys }
            })
            .collect();
        Self { maps }
    }

    /// Names of the attribute columns, in file order.
    pub(crate) fn column_names(&self) -> Vec<String> {
        self.maps.iter().flat_map(|m| m.columns.iter().map(|k| column_name(&m.map, k))).collect()
    }

    /// The file schema: `schema` with the attribute columns appended and
    /// the listed keys in its metadata.
    pub(crate) fn file_schema(&self, schema: &SchemaRef) -> Result<SchemaRef, StorageError> {
        if self.maps.iter().all(|m| m.columns.is_empty() && m.keys.is_none()) {
            return Ok(Arc::clone(schema));
        }
        let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
        fields.extend(self.column_names().into_iter().map(|name| Arc::new(Field::new(name, DataType::Utf8, true))));
        let mut metadata = schema.metadata().clone();
        for layout in &self.maps {
            if let Some(keys) = &layout.keys {
                let listed = serde_json::to_string(keys)
                    .map_err(|e| StorageError::Task(format!("listing the keys of {}: {e}", layout.map)))?;
                metadata.insert(keys_metadata_key(&layout.map), listed);
            }
        }
        Ok(Arc::new(Schema::new_with_metadata(fields, metadata)))
    }

    /// `batch` (of the signal schema) as written to a file of
    /// `file_schema`: one more column per stored key, holding the map's
    /// value for it (the first entry with the key, as `get_field` reads it)
    /// or NULL, and that value moved out of the map (module `restore`).
    pub(crate) fn extend(&self, file_schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, StorageError> {
        let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
        let mut key_columns = Vec::new();
        for layout in self.maps.iter().filter(|m| !m.columns.is_empty()) {
            let map = map_column(batch, &layout.map)?;
            let values = map.values().as_string::<i32>();
            let positions = restore::first_entries(map, &layout.columns);
            for rows in &positions {
                let column: StringArray =
                    rows.iter().map(|e| e.filter(|e| values.is_valid(*e)).map(|e| values.value(e))).collect();
                key_columns.push(Arc::new(column) as ArrayRef);
            }
            let moved = positions.iter().flatten().flatten().copied();
            columns[batch.schema().index_of(&layout.map)?] = Arc::new(restore::without_values(map, moved)?);
        }
        columns.extend(key_columns);
        Ok(RecordBatch::try_new(Arc::clone(file_schema), columns)?)
    }
}

/// The keys of `map` a file of `schema` lists, if it lists them.
fn listed_keys(schema: &Schema, map: &str) -> Option<BTreeSet<String>> {
    let listed = schema.metadata().get(&keys_metadata_key(map))?;
    serde_json::from_str(listed).ok()
}

fn map_column<'a>(batch: &'a RecordBatch, map: &str) -> Result<&'a MapArray, StorageError> {
    batch
        .column_by_name(map)
        .and_then(|c| c.as_map_opt())
        .filter(|m| m.keys().data_type() == &DataType::Utf8 && m.values().data_type() == &DataType::Utf8)
        .ok_or_else(|| StorageError::Task(format!("batch has no Map<Utf8, Utf8> column {map}")))
}

#[cfg(test)]
mod tests;
