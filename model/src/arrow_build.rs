//! Arrow building blocks shared by the span and metric converters:
//! attribute columns, timestamps, truncation and the per-shard split.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, MapBuilder, MapFieldNames, RecordBatch, StringArray, StringBuilder, TimestampNanosecondBuilder,
    UInt32Array, UInt32Builder,
};
use datafusion::arrow::compute::take_record_batch;
use opentelemetry_proto::tonic::common::v1::KeyValue;

use crate::attributes::{ValueRef, code};
use crate::otlp_to_arrow::ConvertLimits;
use crate::{ModelError, schema};

/// Splits `batch` into one batch per shard (skipping empty shards), given
/// the shard of each row. An empty `shard_of_row` means "all on shard 0".
pub(crate) fn split_by_shard(
    batch: &RecordBatch,
    shard_of_row: &[u32],
    shard_count: usize,
) -> Result<Vec<(usize, RecordBatch)>, ModelError> {
    if shard_count <= 1 || shard_of_row.is_empty() {
        return Ok(if batch.num_rows() == 0 { vec![] } else { vec![(0, batch.clone())] });
    }
    let mut rows: Vec<Vec<u32>> = vec![Vec::new(); shard_count];
    for (row, shard) in shard_of_row.iter().enumerate() {
        rows[*shard as usize].push(row as u32);
    }
    let mut out = Vec::new();
    for (shard, indices) in rows.into_iter().enumerate() {
        if indices.is_empty() {
            continue;
        }
        // One shard: the batch as is, without copying.
        if indices.len() == batch.num_rows() {
            out.push((shard, batch.clone()));
            continue;
        }
        let indices = UInt32Array::from(indices);
        out.push((shard, take_record_batch(batch, &indices)?));
    }
    Ok(out)
}

pub(crate) fn timestamp_builder(capacity: usize) -> TimestampNanosecondBuilder {
    TimestampNanosecondBuilder::with_capacity(capacity).with_data_type(schema::timestamp_type())
}

/// One attribute list encoded once (keys and value texts in one buffer), so
/// a resource shared by many rows is encoded once and copied per row, and a
/// point's attributes feed both the map column and the series identity.
#[derive(Debug, Default)]
pub(crate) struct EncodedAttrs {
    text: String,
    /// Per entry: start of the key, end of the key, end of the value (in
    /// `text`), type code.
    parts: Vec<(usize, usize, usize, char)>,
    types: String,
    all_strings: bool,
    /// Whether the keys are in ascending order (so series keys need no sort).
    sorted: bool,
    /// Values cut to the size limit in the last `encode`.
    pub truncated: u64,
    /// Keys and values as Arrow arrays, for lists appended to many rows.
    frozen: Option<(StringArray, StringArray)>,
}

impl EncodedAttrs {
    /// Encodes `attrs`, replacing the previous content.
    pub fn encode(&mut self, attrs: &[KeyValue], limits: &ConvertLimits) {
        self.encode_refs(attrs.iter().map(attr_ref), limits);
    }

    /// [`Self::encode`] for borrowed attributes.
    pub fn encode_refs<'v>(&mut self, attrs: impl IntoIterator<Item = AttrRef<'v>>, limits: &ConvertLimits) {
        self.text.clear();
        self.parts.clear();
        self.types.clear();
        self.all_strings = true;
        self.sorted = true;
        self.truncated = 0;
        self.frozen = None;
        let mut previous: &str = "";
        for (key, value) in attrs {
            self.sorted &= previous <= key;
            previous = key;
            let key_start = self.text.len();
            self.text.push_str(key);
            let key_end = self.text.len();
            let (value, cut) = value.truncated(limits.max_attribute_value_bytes);
            self.truncated += u64::from(cut);
            let ty = value.encode_into(&mut self.text);
            self.parts.push((key_start, key_end, self.text.len(), ty));
            self.types.push(ty);
            self.all_strings &= ty == code::STRING;
        }
    }

    /// Prepares a list that will be appended to many rows: each row then
    /// copies two arrays in bulk instead of appending entry by entry.
    pub fn freeze(&mut self) {
        if self.parts.is_empty() {
            return;
        }
        let keys = StringArray::from_iter_values(self.entries().map(|(key, _, _)| key));
        let values = StringArray::from_iter_values(self.entries().map(|(_, value, _)| value));
        self.frozen = Some((keys, values));
    }

    pub fn len(&self) -> usize {
        self.parts.len()
    }

    /// Key, value text and type code of entry `i`.
    pub fn entry(&self, i: usize) -> (&str, &str, char) {
        let (start, key_end, value_end, ty) = self.parts[i];
        (&self.text[start..key_end], &self.text[key_end..value_end], ty)
    }

    /// Every entry in order, as [`Self::entry`] gives them.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, char)> {
        self.parts
            .iter()
            .map(|&(start, key_end, value_end, ty)| (&self.text[start..key_end], &self.text[key_end..value_end], ty))
    }

    /// The key of entry `i` as bytes (for sorting; `str` order is byte order).
    pub fn key_bytes(&self, i: usize) -> &[u8] {
        let (start, key_end, _, _) = self.parts[i];
        &self.text.as_bytes()[start..key_end]
    }

    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// The type-code string, `None` when every value is a string.
    pub fn types(&self) -> Option<&str> {
        (!self.all_strings).then_some(self.types.as_str())
    }
}

/// Builds an attribute `Map` column and its parallel type-code column.
pub(crate) struct AttrsBuilder {
    map: MapBuilder<StringBuilder, StringBuilder>,
    types: StringBuilder,
    type_scratch: String,
}

impl AttrsBuilder {
    pub fn new() -> Self {
        Self::with_capacity(0)
    }

    /// Sized for `rows` rows of a few short attributes each.
    pub fn with_capacity(rows: usize) -> Self {
        Self::sized(rows, rows * 4)
    }

    /// Sized for `rows` rows holding `entries` short attributes in all.
    pub fn sized(rows: usize, entries: usize) -> Self {
        let names = MapFieldNames {
            entry: schema::MAP_ENTRIES.into(),
            key: schema::MAP_KEY.into(),
            value: schema::MAP_VALUE.into(),
        };
        Self {
            map: MapBuilder::with_capacity(
                Some(names),
                StringBuilder::with_capacity(entries, entries * 16),
                StringBuilder::with_capacity(entries, entries * 16),
                rows,
            ),
            types: StringBuilder::new(),
            type_scratch: String::new(),
        }
    }

    /// Appends one row, counting truncated values into `truncated`. Values
    /// are written straight into the column (no intermediate copy).
    pub fn append_refs<'v>(
        &mut self,
        attrs: impl IntoIterator<Item = AttrRef<'v>>,
        limits: &ConvertLimits,
        truncated: &mut u64,
    ) -> Result<(), ModelError> {
        self.type_scratch.clear();
        let mut all_strings = true;
        for (key, value) in attrs {
            self.map.keys().append_value(key);
            let values = self.map.values();
            let (value, cut) = value.truncated(limits.max_attribute_value_bytes);
            *truncated += u64::from(cut);
            let ty = value.encode_into(values);
            // Ends the value written above.
            values.append_value("");
            all_strings &= ty == code::STRING;
            self.type_scratch.push(ty);
        }
        self.map.append(true)?;
        self.types.append_option((!all_strings).then_some(self.type_scratch.as_str()));
        Ok(())
    }

    /// Appends one row from an already encoded attribute list.
    pub fn append_encoded(&mut self, encoded: &EncodedAttrs) -> Result<(), ModelError> {
        Self::append_parts(&mut self.map, &mut self.types, encoded)
    }

    fn append_parts(
        map: &mut MapBuilder<StringBuilder, StringBuilder>,
        types: &mut StringBuilder,
        encoded: &EncodedAttrs,
    ) -> Result<(), ModelError> {
        if let Some((keys, values)) = &encoded.frozen {
            map.keys().append_array(keys)?;
            map.values().append_array(values)?;
        } else {
            for (key, value, _) in encoded.entries() {
                map.keys().append_value(key);
                map.values().append_value(value);
            }
        }
        map.append(true)?;
        types.append_option(encoded.types());
        Ok(())
    }

    pub fn finish(&mut self) -> (ArrayRef, ArrayRef) {
        (Arc::new(self.map.finish()), Arc::new(self.types.finish()))
    }
}

/// The resource and scope columns every signal carries, in schema order
/// (see [`schema::resource_scope_fields`]).
pub(crate) struct ResourceScopeBuilders {
    pub res_attrs: AttrsBuilder,
    pub res_dropped: UInt32Builder,
    pub res_schema_url: StringBuilder,
    pub scope_name: StringBuilder,
    pub scope_version: StringBuilder,
    pub scope_attrs: AttrsBuilder,
    pub scope_dropped: UInt32Builder,
    pub scope_schema_url: StringBuilder,
}

impl ResourceScopeBuilders {
    /// Builders sized for `rows` rows, so the hot path rarely regrows.
    pub fn with_capacity(rows: usize) -> Self {
        let strings = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        Self {
            res_attrs: AttrsBuilder::with_capacity(rows),
            res_dropped: UInt32Builder::with_capacity(rows),
            res_schema_url: strings(0),
            scope_name: strings(24),
            scope_version: strings(8),
            scope_attrs: AttrsBuilder::with_capacity(rows),
            scope_dropped: UInt32Builder::with_capacity(rows),
            scope_schema_url: strings(40),
        }
    }

    /// The ten columns, in schema order.
    pub fn finish(&mut self) -> [ArrayRef; 10] {
        let (res_attrs, res_types) = self.res_attrs.finish();
        let (scope_attrs, scope_types) = self.scope_attrs.finish();
        [
            res_attrs,
            res_types,
            Arc::new(self.res_dropped.finish()),
            Arc::new(self.res_schema_url.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            scope_attrs,
            scope_types,
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema_url.finish()),
        ]
    }
}

/// One attribute, borrowed: key and value.
pub(crate) type AttrRef<'a> = (&'a str, ValueRef<'a>);

pub(crate) fn attr_ref(kv: &KeyValue) -> AttrRef<'_> {
    (kv.key.as_str(), ValueRef::of(kv.value.as_ref()))
}
