use std::fs::File;
use std::sync::Arc;

use datafusion::arrow::array::{MapBuilder, MapFieldNames, StringArray, StringBuilder};
use datafusion::arrow::datatypes::Field;
use datafusion::common::config::TableParquetOptions;
use datafusion::functions::core::expr_fn::get_field;
use datafusion::logical_expr::{col, lit};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::prelude::SessionContext;
use skein_model::schema::{MAP_ENTRIES, MAP_KEY, MAP_VALUE, attributes_type};

use super::*;
use crate::provider::{ParquetScan, ScanFile};

const MAP: &str = "attrs";

fn table_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false), Field::new(MAP, attributes_type(), false)]))
}

/// One row: its id and its map's entries (key, value).
type Row<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

/// A batch of `rows`.
fn batch(rows: &[Row<'_>]) -> RecordBatch {
    let names = MapFieldNames { entry: MAP_ENTRIES.into(), key: MAP_KEY.into(), value: MAP_VALUE.into() };
    let mut map = MapBuilder::new(Some(names), StringBuilder::new(), StringBuilder::new());
    for (_, entries) in rows {
        for (key, value) in *entries {
            map.keys().append_value(key);
            map.values().append_option(*value);
        }
        map.append(true).expect("row");
    }
    let ids = StringArray::from_iter_values(rows.iter().map(|(id, _)| *id));
    RecordBatch::try_new(table_schema(), vec![Arc::new(ids), Arc::new(map.finish())]).expect("batch")
}

fn strings_of(array: &ArrayRef) -> Vec<Option<String>> {
    array.as_string::<i32>().iter().map(|v| v.map(str::to_owned)).collect()
}

#[test]
fn frequent_keys_become_columns_most_frequent_first() {
    // `route` in 3 rows, `status` in 2, `rare` in 1 of 40.
    let mut rows: Vec<Row<'_>> = vec![
        ("a", &[("route", Some("/a")), ("status", Some("200"))]),
        ("b", &[("status", Some("500")), ("route", Some("/b"))]),
        ("c", &[("route", Some("/c")), ("rare", Some("x"))]),
    ];
    rows.extend(std::iter::repeat_n(("empty", &[][..]), 37));
    let layout = AttributeLayout::learn(&[MAP], &[batch(&rows)]).expect("learns");
    assert_eq!(layout.column_names(), ["attrs.route", "attrs.status"]);
    let keys = layout.maps[0].keys.as_ref().expect("few keys are listed");
    assert_eq!(keys.iter().map(String::as_str).collect::<Vec<_>>(), ["rare", "route", "status"]);
}

#[test]
fn columns_are_capped_and_long_key_lists_are_not_kept() {
    let keys: Vec<String> = (0..MAX_LISTED_KEYS + 1).map(|n| format!("k{n:04}")).collect();
    let entries: Vec<(&str, Option<&str>)> = keys.iter().map(|k| (k.as_str(), Some("v"))).collect();
    let layout = AttributeLayout::learn(&[MAP], &[batch(&[("only", &entries)])]).expect("learns");
    assert_eq!(layout.column_names().len(), MAX_COLUMNS_PER_MAP);
    assert_eq!(layout.column_names()[0], "attrs.k0000", "ties rank by key");
    assert!(layout.maps[0].keys.is_none());
}

#[test]
fn columns_hold_what_get_field_reads_from_the_map() {
    let rows: [Row<'_>; 4] = [
        ("a", &[("route", Some("/a")), ("route", Some("/second"))]),
        ("b", &[("other", Some("x"))]),
        ("c", &[("route", None), ("status", Some("404"))]),
        ("d", &[("status", Some("200")), ("route", Some("/d"))]),
    ];
    // A slice, as the hour split and row groups pass them.
    let sliced = batch(&rows).slice(1, 3);
    let layout = AttributeLayout::learn(&[MAP], std::slice::from_ref(&sliced)).expect("learns");
    assert_eq!(layout.column_names(), ["attrs.route", "attrs.status", "attrs.other"]);
    let file_schema = layout.file_schema(&table_schema()).expect("schema");
    let extended = layout.extend(&file_schema, &sliced).expect("extends");
    assert_eq!(extended.num_columns(), 5);
    assert_eq!(strings_of(extended.column(4)), [Some("x".to_owned()), None, None]);
    assert_eq!(strings_of(extended.column(2)), [None, None, Some("/d".to_owned())]);
    assert_eq!(strings_of(extended.column(3)), [None, Some("404".to_owned()), Some("200".to_owned())]);
    assert_eq!(AttributeLayout::of_schema(&[MAP], &file_schema), layout, "the file schema says its layout");

    // The moved values are NULL in the map, and come back from the columns.
    let written = extended.column(1).as_map();
    let kept: Vec<Option<&str>> = written.values().as_string::<i32>().iter().collect();
    assert_eq!(&kept[2..7], [None; 5], "rows b, c, d: every key has a column");
    assert_eq!(&kept[..2], [Some("/a"), Some("/second")], "row a is not in the slice");
    let columns: Vec<&StringArray> = extended.columns()[2..].iter().map(|c| c.as_string::<i32>()).collect();
    let restored = restore::restore(written, &layout.maps[0].columns, &columns).expect("restores");
    assert_eq!(&restored as &dyn Array, sliced.column(1).as_ref());

    // The first entry of a repeated key, as get_field reads it; the
    // second keeps its value in the map.
    let whole = batch(&rows[..1]);
    let layout = AttributeLayout::learn(&[MAP], std::slice::from_ref(&whole)).expect("learns");
    let extended = layout.extend(&layout.file_schema(&table_schema()).expect("schema"), &whole).expect("extends");
    assert_eq!(strings_of(extended.column(2)), [Some("/a".to_owned())]);
    let kept: Vec<Option<&str>> = extended.column(1).as_map().values().as_string::<i32>().iter().collect();
    assert_eq!(kept, [None, Some("/second")]);
}

#[test]
fn merged_files_keep_their_inputs_columns_and_key_lists() {
    let layout = |columns: &[&str], keys: Option<&[&str]>| AttributeLayout {
        maps: vec![MapLayout {
            map: MAP.to_owned(),
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            keys: keys.map(|k| k.iter().map(|k| (*k).to_owned()).collect()),
        }],
    };
    let merged = AttributeLayout::merge(&[
        (layout(&["status"], Some(&["status", "x"])), 10),
        (layout(&["route", "status"], Some(&["route", "status"])), 100),
    ]);
    assert_eq!(merged, layout(&["status", "route"], Some(&["route", "status", "x"])));
    // An input written before attribute columns lists no keys.
    let merged = AttributeLayout::merge(&[(layout(&["route"], Some(&["route"])), 10), (layout(&[], None), 5)]);
    assert_eq!(merged, layout(&["route"], None));
    assert_eq!(AttributeLayout::merge(&[]), AttributeLayout::default());
}

/// Writes a file whose `attrs.route` column disagrees with its map, so a
/// scan's answer shows which one it read. (A scan applies its filters
/// exactly only where they reach the row filter: map lookups never do.)
fn write_tampered_file(path: &std::path::Path) {
    let map_rows: [Row<'_>; 3] = [
        ("a", &[("route", Some("from-map")), ("only-in-map", Some("x"))]),
        ("b", &[("route", Some("/b"))]),
        ("c", &[]),
    ];
    let batch = batch(&map_rows);
    let layout = AttributeLayout {
        maps: vec![MapLayout {
            map: MAP.to_owned(),
            columns: vec!["route".to_owned()],
            keys: Some(["route".to_owned()].into()),
        }],
    };
    let file_schema = layout.file_schema(&table_schema()).expect("schema");
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(StringArray::from(vec![Some("from-column"), Some("/b"), None])));
    let tampered = RecordBatch::try_new(Arc::clone(&file_schema), columns).expect("batch");
    let file = File::create(path).expect("creates");
    let mut writer = ArrowWriter::try_new(file, file_schema, None).expect("writer");
    writer.write(&tampered).expect("writes");
    writer.close().expect("closes");
}

/// The rows of the file at `path` as a shard table's scan reads them.
async fn scan(path: &std::path::Path, filters: &[datafusion::logical_expr::Expr]) -> Vec<RecordBatch> {
    let ctx = SessionContext::new();
    let mut options = TableParquetOptions::default();
    options.global.pushdown_filters = true;
    let scan = ParquetScan { schema: table_schema(), options, cache_metadata: false, decryption: None };
    let location = ObjectPath::from_absolute_path(path).expect("absolute path");
    let size = std::fs::metadata(path).expect("metadata").len();
    let plan = scan.plan(&ctx.state(), vec![ScanFile::immutable(location, size)], None, filters, None).expect("plans");
    datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.expect("scans")
}

async fn scan_ids(path: &std::path::Path, filter: datafusion::logical_expr::Expr) -> Vec<String> {
    scan(path, &[filter]).await.iter().flat_map(|b| strings_of(b.column(0))).flatten().collect()
}

#[tokio::test]
async fn scans_put_the_moved_values_back_into_the_map() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("file.parquet");
    let rows: [Row<'_>; 3] = [
        ("a", &[("route", Some("/a")), ("peer", Some("p1")), ("route", Some("/again"))]),
        ("b", &[("peer", Some("p2"))]),
        ("c", &[]),
    ];
    let original = batch(&rows);
    let layout = AttributeLayout::learn(&[MAP], std::slice::from_ref(&original)).expect("learns");
    assert_eq!(layout.column_names(), ["attrs.peer", "attrs.route"]);
    let file_schema = layout.file_schema(&table_schema()).expect("schema");
    let mut writer =
        ArrowWriter::try_new(File::create(&path).expect("creates"), Arc::clone(&file_schema), None).expect("writer");
    writer.write(&layout.extend(&file_schema, &original).expect("extends")).expect("writes");
    writer.close().expect("closes");

    let read = scan(&path, &[]).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].columns(), original.columns(), "every entry, value and order as written");
    assert_eq!(scan_ids(&path, get_field(col(MAP), "peer").eq(lit("p2"))).await, ["b"]);
}

#[tokio::test]
async fn scans_read_the_keys_column_and_skip_keys_the_file_lacks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tampered.parquet");
    write_tampered_file(&path);
    let lookup = |key: &str, value: &str| get_field(col(MAP), key).eq(lit(value));

    // The filter reads the column, not the map.
    assert_eq!(scan_ids(&path, lookup("route", "from-column")).await, ["a"]);
    assert!(scan_ids(&path, lookup("route", "from-map")).await.is_empty());
    assert_eq!(scan_ids(&path, lookup("route", "/b")).await, ["b"]);
    // A key the file lists nowhere is NULL without reading the map (which
    // has it here, so reading the map would find the row).
    assert!(scan_ids(&path, lookup("only-in-map", "x")).await.is_empty());
}
