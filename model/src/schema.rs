//! The Arrow schema of the `spans` table: one row per span, OTLP-complete.
//!
//! IDs are lowercase hex strings so that SQL can compare them to literals
//! and Parquet statistics and bloom filters apply to them directly. Enums
//! are stored as lowercase names (`server`, `error`); values outside the
//! OTLP enum keep their number as text. See ARCHITECTURE.md for the table.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

/// Column names of the `spans` table.
pub mod col {
    pub const TRACE_ID: &str = "trace_id";
    pub const SPAN_ID: &str = "span_id";
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const TRACE_STATE: &str = "trace_state";
    pub const FLAGS: &str = "flags";
    pub const NAME: &str = "name";
    pub const KIND: &str = "kind";
    pub const START_TIME: &str = "start_time";
    pub const END_TIME: &str = "end_time";
    pub const DURATION_NS: &str = "duration_ns";
    pub const STATUS_CODE: &str = "status_code";
    pub const STATUS_MESSAGE: &str = "status_message";
    pub const SERVICE_NAME: &str = "service_name";
    pub const SPAN_ATTRIBUTES: &str = "span_attributes";
    pub const SPAN_ATTRIBUTE_TYPES: &str = "span_attribute_types";
    pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
    pub const EVENTS: &str = "events";
    pub const DROPPED_EVENTS_COUNT: &str = "dropped_events_count";
    pub const LINKS: &str = "links";
    pub const DROPPED_LINKS_COUNT: &str = "dropped_links_count";
    pub const RESOURCE_ATTRIBUTES: &str = "resource_attributes";
    pub const RESOURCE_ATTRIBUTE_TYPES: &str = "resource_attribute_types";
    pub const RESOURCE_DROPPED_ATTRIBUTES_COUNT: &str = "resource_dropped_attributes_count";
    pub const RESOURCE_SCHEMA_URL: &str = "resource_schema_url";
    pub const SCOPE_NAME: &str = "scope_name";
    pub const SCOPE_VERSION: &str = "scope_version";
    pub const SCOPE_ATTRIBUTES: &str = "scope_attributes";
    pub const SCOPE_ATTRIBUTE_TYPES: &str = "scope_attribute_types";
    pub const SCOPE_DROPPED_ATTRIBUTES_COUNT: &str = "scope_dropped_attributes_count";
    pub const SCOPE_SCHEMA_URL: &str = "scope_schema_url";

    /// Field names inside the `events` and `links` structs.
    pub mod nested {
        pub const TIME: &str = "time";
        pub const NAME: &str = "name";
        pub const TRACE_ID: &str = "trace_id";
        pub const SPAN_ID: &str = "span_id";
        pub const TRACE_STATE: &str = "trace_state";
        pub const FLAGS: &str = "flags";
        pub const ATTRIBUTES: &str = "attributes";
        pub const ATTRIBUTE_TYPES: &str = "attribute_types";
        pub const DROPPED_ATTRIBUTES_COUNT: &str = "dropped_attributes_count";
    }
}

/// Names of the `Map` field parts; shared by the builders and the schema.
pub const MAP_ENTRIES: &str = "entries";
pub const MAP_KEY: &str = "key";
pub const MAP_VALUE: &str = "value";

/// `Map<Utf8, Utf8>` as used by every attribute column.
pub fn attributes_type() -> DataType {
    let entries = Field::new(
        MAP_ENTRIES,
        DataType::Struct(Fields::from(vec![
            Field::new(MAP_KEY, DataType::Utf8, false),
            Field::new(MAP_VALUE, DataType::Utf8, true),
        ])),
        false,
    );
    DataType::Map(Arc::new(entries), false)
}

pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

pub fn event_fields() -> Fields {
    use col::nested::*;
    Fields::from(vec![
        Field::new(TIME, timestamp_type(), false),
        Field::new(NAME, DataType::Utf8, false),
        Field::new(ATTRIBUTES, attributes_type(), false),
        Field::new(ATTRIBUTE_TYPES, DataType::Utf8, true),
        Field::new(DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
    ])
}

pub fn link_fields() -> Fields {
    use col::nested::*;
    Fields::from(vec![
        Field::new(TRACE_ID, DataType::Utf8, false),
        Field::new(SPAN_ID, DataType::Utf8, false),
        Field::new(TRACE_STATE, DataType::Utf8, false),
        Field::new(FLAGS, DataType::UInt32, false),
        Field::new(ATTRIBUTES, attributes_type(), false),
        Field::new(ATTRIBUTE_TYPES, DataType::Utf8, true),
        Field::new(DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
    ])
}

/// The list item field of `events` / `links`.
pub fn list_item(fields: Fields) -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(fields), false))
}

/// An attribute map column and its type-code column (null when every value
/// is a string).
pub(crate) fn attribute_fields(map: &str, types: &str) -> [Field; 2] {
    [Field::new(map, attributes_type(), false), Field::new(types, DataType::Utf8, true)]
}

/// The resource and scope columns both tables carry, in schema order (built
/// by `arrow_build::ResourceScopeBuilders`).
pub(crate) fn resource_scope_fields() -> [Field; 10] {
    use col::*;
    let [res_attrs, res_types] = attribute_fields(RESOURCE_ATTRIBUTES, RESOURCE_ATTRIBUTE_TYPES);
    let [scope_attrs, scope_types] = attribute_fields(SCOPE_ATTRIBUTES, SCOPE_ATTRIBUTE_TYPES);
    [
        res_attrs,
        res_types,
        Field::new(RESOURCE_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
        Field::new(RESOURCE_SCHEMA_URL, DataType::Utf8, false),
        Field::new(SCOPE_NAME, DataType::Utf8, false),
        Field::new(SCOPE_VERSION, DataType::Utf8, false),
        scope_attrs,
        scope_types,
        Field::new(SCOPE_DROPPED_ATTRIBUTES_COUNT, DataType::UInt32, false),
        Field::new(SCOPE_SCHEMA_URL, DataType::Utf8, false),
    ]
}

static SPAN_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use col::*;
    let utf8 = |name: &str| Field::new(name, DataType::Utf8, false);
    let u32f = |name: &str| Field::new(name, DataType::UInt32, false);
    let mut fields = vec![
        utf8(TRACE_ID),
        utf8(SPAN_ID),
        Field::new(PARENT_SPAN_ID, DataType::Utf8, true),
        utf8(TRACE_STATE),
        u32f(FLAGS),
        utf8(NAME),
        utf8(KIND),
        Field::new(START_TIME, timestamp_type(), false),
        Field::new(END_TIME, timestamp_type(), false),
        Field::new(DURATION_NS, DataType::Int64, false),
        utf8(STATUS_CODE),
        utf8(STATUS_MESSAGE),
        utf8(SERVICE_NAME),
        Field::new(SPAN_ATTRIBUTES, attributes_type(), false),
        Field::new(SPAN_ATTRIBUTE_TYPES, DataType::Utf8, true),
        u32f(DROPPED_ATTRIBUTES_COUNT),
        Field::new(EVENTS, DataType::List(list_item(event_fields())), false),
        u32f(DROPPED_EVENTS_COUNT),
        Field::new(LINKS, DataType::List(list_item(link_fields())), false),
        u32f(DROPPED_LINKS_COUNT),
    ];
    fields.extend(resource_scope_fields());
    Arc::new(Schema::new(fields))
});

/// The schema of every span batch, in memory, in the WAL and in Parquet.
pub fn span_schema() -> SchemaRef {
    Arc::clone(&SPAN_SCHEMA)
}

/// OTLP `SpanKind` as stored in the `kind` column.
pub fn kind_name(kind: i32) -> std::borrow::Cow<'static, str> {
    match kind {
        0 => "unspecified".into(),
        1 => "internal".into(),
        2 => "server".into(),
        3 => "client".into(),
        4 => "producer".into(),
        5 => "consumer".into(),
        other => other.to_string().into(),
    }
}

pub fn kind_from_name(name: &str) -> Option<i32> {
    Some(match name {
        "unspecified" => 0,
        "internal" => 1,
        "server" => 2,
        "client" => 3,
        "producer" => 4,
        "consumer" => 5,
        other => return other.parse().ok(),
    })
}

/// OTLP `Status.code` as stored in the `status_code` column.
pub fn status_name(code: i32) -> std::borrow::Cow<'static, str> {
    match code {
        0 => "unset".into(),
        1 => "ok".into(),
        2 => "error".into(),
        other => other.to_string().into(),
    }
}

pub fn status_from_name(name: &str) -> Option<i32> {
    Some(match name {
        "unset" => 0,
        "ok" => 1,
        "error" => 2,
        other => return other.parse().ok(),
    })
}

/// Service name used when a resource has no `service.name` (OTel's own default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";
