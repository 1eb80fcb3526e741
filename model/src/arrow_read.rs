//! Typed column access shared by the span and metric decoders. Strings are
//! accepted as Utf8, Utf8View, LargeUtf8 or dictionaries (as Parquet readers
//! may hand them back) and cast to Utf8.

use datafusion::arrow::array::{
    Array, AsArray, BooleanArray, ListArray, MapArray, PrimitiveArray, RecordBatch, StringArray, StructArray,
    TimestampNanosecondArray, UInt32Array,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{ArrowPrimitiveType, DataType};
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;

use crate::ModelError;
use crate::attributes::{code, decode_value};

pub(crate) fn column<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a dyn Array, ModelError> {
    batch.column_by_name(name).map(|c| c.as_ref()).ok_or(ModelError::Column(name))
}

pub(crate) fn strings(batch: &RecordBatch, name: &'static str) -> Result<StringArray, ModelError> {
    let c = column(batch, name)?;
    match c.data_type() {
        DataType::Utf8 => Ok(c.as_string::<i32>().clone()),
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => {
            Ok(cast(c, &DataType::Utf8)?.as_string::<i32>().clone())
        }
        _ => Err(ModelError::Column(name)),
    }
}

/// A Utf8 column, borrowed (no cast: derivations read buffers and files
/// written in the span schema).
pub(crate) fn utf8<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a StringArray, ModelError> {
    column(batch, name)?.as_string_opt::<i32>().ok_or(ModelError::Column(name))
}

pub(crate) fn u32s<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a UInt32Array, ModelError> {
    column(batch, name)?.as_primitive_opt().ok_or(ModelError::Column(name))
}

pub(crate) fn times<'a>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a TimestampNanosecondArray, ModelError> {
    column(batch, name)?.as_primitive_opt().ok_or(ModelError::Column(name))
}

pub(crate) fn maps<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a MapArray, ModelError> {
    column(batch, name)?.as_map_opt().ok_or(ModelError::Column(name))
}

pub(crate) fn lists<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a ListArray, ModelError> {
    column(batch, name)?.as_list_opt::<i32>().ok_or(ModelError::Column(name))
}

pub(crate) fn hex_bytes(text: &str) -> Result<Vec<u8>, ModelError> {
    const_hex::decode(text).map_err(|_| ModelError::Corrupt(format!("{text:?} is not hex")))
}

/// Decodes row `row` of an attribute map plus its type string.
pub(crate) fn key_values(map: &MapArray, types: &StringArray, row: usize) -> Result<Vec<KeyValue>, ModelError> {
    let entries = map.value(row);
    let keys = entries.column(0).as_string::<i32>();
    let values = entries.column(1).as_string::<i32>();
    let codes: Vec<char> = if types.is_null(row) { Vec::new() } else { types.value(row).chars().collect() };
    (0..entries.len())
        .map(|i| {
            let ty = codes.get(i).copied().unwrap_or(code::STRING);
            let text = if values.is_null(i) { "" } else { values.value(i) };
            // `key_strindex` is profiles-only and never stored for spans.
            Ok(KeyValue { key: keys.value(i).to_owned(), value: Some(decode_value(text, ty)?), key_strindex: 0 })
        })
        .collect()
}

pub(crate) fn struct_strings(s: &StructArray, name: &'static str) -> Result<StringArray, ModelError> {
    let c = s.column_by_name(name).ok_or(ModelError::Column(name))?;
    Ok(cast(c, &DataType::Utf8)?.as_string::<i32>().clone())
}

pub(crate) fn struct_u32<'a>(s: &'a StructArray, name: &'static str) -> Result<&'a UInt32Array, ModelError> {
    s.column_by_name(name).and_then(|c| c.as_primitive_opt()).ok_or(ModelError::Column(name))
}

pub(crate) fn struct_map<'a>(s: &'a StructArray, name: &'static str) -> Result<&'a MapArray, ModelError> {
    s.column_by_name(name).and_then(|c| c.as_map_opt()).ok_or(ModelError::Column(name))
}

pub(crate) fn prims<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &'static str,
) -> Result<&'a PrimitiveArray<T>, ModelError> {
    column(batch, name)?.as_primitive_opt().ok_or(ModelError::Column(name))
}

pub(crate) fn bools<'a>(batch: &'a RecordBatch, name: &'static str) -> Result<&'a BooleanArray, ModelError> {
    column(batch, name)?.as_boolean_opt().ok_or(ModelError::Column(name))
}

pub(crate) fn struct_prims<'a, T: ArrowPrimitiveType>(
    s: &'a StructArray,
    name: &'static str,
) -> Result<&'a PrimitiveArray<T>, ModelError> {
    s.column_by_name(name).and_then(|c| c.as_primitive_opt()).ok_or(ModelError::Column(name))
}

/// The value at `row`, `None` when null.
pub(crate) fn opt<T: ArrowPrimitiveType>(array: &PrimitiveArray<T>, row: usize) -> Option<T::Native> {
    array.is_valid(row).then(|| array.value(row))
}

/// Whether rows `a` and `b` of a string column are equal (nulls equal nulls).
pub(crate) fn str_eq(array: &StringArray, a: usize, b: usize) -> bool {
    match (array.is_valid(a), array.is_valid(b)) {
        (true, true) => array.value(a) == array.value(b),
        (va, vb) => va == vb,
    }
}

/// Whether rows `a` and `b` of an attribute map column hold the same entries
/// in the same order.
pub(crate) fn map_eq(map: &MapArray, a: usize, b: usize) -> Result<bool, ModelError> {
    let keys = map.keys().as_string_opt::<i32>().ok_or(ModelError::Column("map keys"))?;
    let values = map.values().as_string_opt::<i32>().ok_or(ModelError::Column("map values"))?;
    let offsets = map.value_offsets();
    let (sa, ea) = (offsets[a] as usize, offsets[a + 1] as usize);
    let (sb, eb) = (offsets[b] as usize, offsets[b + 1] as usize);
    if ea - sa != eb - sb || map.is_valid(a) != map.is_valid(b) {
        return Ok(false);
    }
    Ok((0..ea - sa).all(|i| keys.value(sa + i) == keys.value(sb + i) && str_eq(values, sa + i, sb + i)))
}

/// The resource and scope columns every signal's table carries, decoded per row.
pub(crate) struct ResourceScopeColumns<'a> {
    res_attrs: &'a MapArray,
    res_types: StringArray,
    res_dropped: &'a UInt32Array,
    res_url: StringArray,
    scope_name: StringArray,
    scope_version: StringArray,
    scope_attrs: &'a MapArray,
    scope_types: StringArray,
    scope_dropped: &'a UInt32Array,
    scope_url: StringArray,
}

impl<'a> ResourceScopeColumns<'a> {
    pub fn new(batch: &'a RecordBatch) -> Result<Self, ModelError> {
        use crate::schema::col::*;
        Ok(Self {
            res_attrs: maps(batch, RESOURCE_ATTRIBUTES)?,
            res_types: strings(batch, RESOURCE_ATTRIBUTE_TYPES)?,
            res_dropped: u32s(batch, RESOURCE_DROPPED_ATTRIBUTES_COUNT)?,
            res_url: strings(batch, RESOURCE_SCHEMA_URL)?,
            scope_name: strings(batch, SCOPE_NAME)?,
            scope_version: strings(batch, SCOPE_VERSION)?,
            scope_attrs: maps(batch, SCOPE_ATTRIBUTES)?,
            scope_types: strings(batch, SCOPE_ATTRIBUTE_TYPES)?,
            scope_dropped: u32s(batch, SCOPE_DROPPED_ATTRIBUTES_COUNT)?,
            scope_url: strings(batch, SCOPE_SCHEMA_URL)?,
        })
    }

    /// Row `row`'s resource and its schema URL.
    pub fn resource(&self, row: usize) -> Result<(Resource, String), ModelError> {
        let resource = Resource {
            attributes: key_values(self.res_attrs, &self.res_types, row)?,
            dropped_attributes_count: self.res_dropped.value(row),
            entity_refs: Vec::new(),
        };
        Ok((resource, self.res_url.value(row).to_owned()))
    }

    /// Whether rows `a` and `b` have the same resource (and schema URL).
    pub fn same_resource(&self, a: usize, b: usize) -> Result<bool, ModelError> {
        Ok(str_eq(&self.res_url, a, b)
            && self.res_dropped.value(a) == self.res_dropped.value(b)
            && str_eq(&self.res_types, a, b)
            && map_eq(self.res_attrs, a, b)?)
    }

    /// Whether rows `a` and `b` have the same scope (and schema URL).
    pub fn same_scope(&self, a: usize, b: usize) -> Result<bool, ModelError> {
        Ok(str_eq(&self.scope_name, a, b)
            && str_eq(&self.scope_version, a, b)
            && str_eq(&self.scope_url, a, b)
            && self.scope_dropped.value(a) == self.scope_dropped.value(b)
            && str_eq(&self.scope_types, a, b)
            && map_eq(self.scope_attrs, a, b)?)
    }

    /// Row `row`'s instrumentation scope and its schema URL.
    pub fn scope(&self, row: usize) -> Result<(InstrumentationScope, String), ModelError> {
        let scope = InstrumentationScope {
            name: self.scope_name.value(row).to_owned(),
            version: self.scope_version.value(row).to_owned(),
            attributes: key_values(self.scope_attrs, &self.scope_types, row)?,
            dropped_attributes_count: self.scope_dropped.value(row),
        };
        Ok((scope, self.scope_url.value(row).to_owned()))
    }
}
