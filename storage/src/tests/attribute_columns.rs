//! Attribute columns end to end: flushed and compacted span files carry
//! their frequent keys as columns, and SQL over `span_attributes[...]`
//! answers the same from the buffer, from flushed files and from compacted
//! ones.

use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

use super::compaction::{compacting, write_flushed_files};
use super::*;

/// Top-level column names of a Parquet file.
fn file_columns(path: &Path) -> Vec<String> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).expect("opens")).expect("footer");
    let schema = reader.metadata().file_metadata().schema_descr();
    schema.root_schema().get_fields().iter().map(|f| f.name().to_owned()).collect()
}

/// Queries whose answers must not depend on where the rows live.
const QUERIES: [&str; 4] = [
    "SELECT span_id, span_attributes['http.route'] AS route, span_attributes['i'] AS i, \
     resource_attributes['service.name'] AS service FROM spans ORDER BY span_id",
    "SELECT span_attributes['i'] AS i, count(*) AS n FROM spans GROUP BY 1 ORDER BY 1",
    "SELECT count(*) AS n FROM spans WHERE span_attributes['i'] = '2' OR resource_attributes['i'] = '2'",
    "SELECT count(*) AS n FROM spans WHERE span_attributes['no.such.key'] = '2'",
];

async fn answers(storage: &Storage) -> Vec<String> {
    let ctx = context(storage);
    let mut all = Vec::new();
    for sql in QUERIES {
        all.push(run(&ctx, sql).await);
    }
    all
}

#[tokio::test]
async fn flushed_and_compacted_files_answer_attribute_lookups_as_the_buffer_does() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    for n in 0..6u32 {
        write(&storage, batch_of(trace_spans(n, 3, BASE_NS + u64::from(n) * 1_000_000))).await;
    }
    let buffered = answers(&storage).await;
    assert!(buffered[2].contains("| 6 "), "one span per trace has i=2: {}", buffered[2]);
    let before = all_records(&storage).await;

    storage.flush_all().await.expect("flushes");
    let files = files_with_suffix(&spans_dir(dir.path()), ".parquet");
    assert_eq!(files.len(), 1);
    let columns = file_columns(&files[0]);
    for column in ["span_attributes.http.route", "span_attributes.i", "resource_attributes.service.name"] {
        assert!(columns.iter().any(|c| c == column), "{column} in {columns:?}");
    }
    assert_eq!(answers(&storage).await, buffered, "flushed");
    assert_eq!(all_records(&storage).await, before, "the maps are intact");
}

#[tokio::test]
async fn merges_keep_the_attribute_columns_of_their_inputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(compacting(quiet_config(dir.path()))).await;
    write_flushed_files(&storage).await;
    let flushed = answers(&storage).await;
    let before = all_records(&storage).await;
    assert_eq!(storage.compact_now().await.expect("compacts"), 2);
    for file in files_with_suffix(&spans_dir(dir.path()), ".parquet") {
        let columns = file_columns(&file);
        assert!(columns.iter().any(|c| c == "span_attributes.http.route"), "{columns:?}");
    }
    assert_eq!(answers(&storage).await, flushed, "compacted");
    assert_eq!(all_records(&storage).await, before, "the maps are intact");
}

#[tokio::test]
async fn attribute_lookups_reach_the_parquet_scan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = open(quiet_config(dir.path())).await;
    write(&storage, batch_of(trace_spans(1, 3, BASE_NS))).await;
    storage.flush_all().await.expect("flushes");
    let ctx = context(&storage);
    let sql = "SELECT span_attributes['http.route'] AS route, count(*) FROM spans \
               WHERE span_attributes['i'] = '1' GROUP BY 1";
    let plan = ctx.sql(sql).await.expect("plans").create_physical_plan().await.expect("physical plan");
    let text = datafusion::physical_plan::displayable(plan.as_ref()).indent(true).to_string();
    let scan = text.lines().find(|l| l.contains("DataSourceExec") && l.contains("parquet")).expect("a parquet scan");
    // The lookups are the scan's own expressions, which each file's reader
    // turns into its attribute columns (module attribute_columns).
    assert!(scan.contains("predicate=get_field(span_attributes@"), "{text}");
    assert!(scan.contains("projection=[get_field(span_attributes@"), "{text}");
    assert_eq!(run(&ctx, sql).await.matches("/cart").count(), 1);
}
