//! Encoding a file's row groups with the columns spread over a few threads.
//!
//! A flush is one blocking task; encoding its columns one after another
//! left the flush slower than ingest on a 2-core machine while the other
//! core idled, and the buffer filled up. Columns are independent in Parquet,
//! so each row group's column chunks are encoded in parallel (heaviest
//! columns first, pulled from a shared queue) and appended in schema order.

use std::io::Write;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, compute_leaves};
use parking_lot::Mutex;

use crate::error::StorageError;

/// At most this many threads encode one row group.
const MAX_ENCODE_THREADS: usize = 4;

/// Writes `batches` through `writer` in row groups of `row_group_rows` rows
/// and closes the file.
pub(crate) fn write_parallel<W: Write + Send>(
    writer: ArrowWriter<W>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<(), StorageError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_ENCODE_THREADS);
    let (mut file_writer, factory) = writer.into_serialized_writer()?;
    let roots: Vec<usize> = (0..file_writer.schema_descr().num_columns())
        .map(|leaf| file_writer.schema_descr().get_column_root_idx(leaf))
        .collect();
    for (index, group) in row_groups(batches, row_group_rows).iter().enumerate() {
        // The leaf writers of each top-level column, in schema order.
        let mut per_column: Vec<Vec<ArrowColumnWriter>> = (0..schema.fields().len()).map(|_| Vec::new()).collect();
        for (leaf, writer) in factory.create_column_writers(index)?.into_iter().enumerate() {
            per_column[roots[leaf]].push(writer);
        }
        let chunks = encode_columns(schema, group, per_column, threads)?;
        let mut row_group = file_writer.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    file_writer.close()?;
    Ok(())
}

/// `batches` cut (without copying) into groups of at most `rows` rows.
fn row_groups(batches: &[RecordBatch], rows: usize) -> Vec<Vec<RecordBatch>> {
    let rows = rows.max(1);
    let mut groups = Vec::new();
    let mut current = Vec::new();
    let mut filled = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (batch.num_rows() - offset).min(rows - filled);
            current.push(batch.slice(offset, take));
            offset += take;
            filled += take;
            if filled == rows {
                groups.push(std::mem::take(&mut current));
                filled = 0;
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// One top-level column to encode: its index and its leaf writers.
type Job = (usize, Vec<ArrowColumnWriter>);

/// Encodes every column of one row group; chunks come back in schema order.
fn encode_columns(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    per_column: Vec<Vec<ArrowColumnWriter>>,
    threads: usize,
) -> Result<Vec<ArrowColumnChunk>, StorageError> {
    let column_count = per_column.len();
    let mut jobs: Vec<Job> = per_column.into_iter().enumerate().collect();
    // Heaviest first, so the last job to finish is a small one. The queue
    // pops from the back.
    let weight = |column: usize| -> usize { batches.iter().map(|b| b.column(column).get_array_memory_size()).sum() };
    jobs.sort_by_cached_key(|(column, _)| weight(*column));
    let queue = Mutex::new(jobs);
    let done: Mutex<Vec<Option<Vec<ArrowColumnChunk>>>> = Mutex::new((0..column_count).map(|_| None).collect());

    let work = || -> Result<(), StorageError> {
        loop {
            let Some((column, mut writers)) = queue.lock().pop() else {
                return Ok(());
            };
            let field = schema.field(column);
            for batch in batches {
                let leaves = compute_leaves(field, batch.column(column))?;
                for (writer, leaf) in writers.iter_mut().zip(leaves) {
                    writer.write(&leaf)?;
                }
            }
            let chunks = writers.into_iter().map(ArrowColumnWriter::close).collect::<Result<Vec<_>, _>>()?;
            done.lock()[column] = Some(chunks);
        }
    };
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut result = work();
        for helper in helpers {
            let joined = helper.join().unwrap_or_else(|_| Err(StorageError::Task("parquet encoder panicked".into())));
            result = result.and(joined);
        }
        result
    })?;
    let mut chunks = Vec::new();
    for (column, encoded) in done.into_inner().into_iter().enumerate() {
        let encoded =
            encoded.ok_or_else(|| StorageError::Task(format!("column {column} of a row group was not encoded")))?;
        chunks.extend(encoded);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Int64Array;
    use std::sync::Arc;

    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn row_groups_are_cut_at_the_row_count_without_losing_rows() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = |from: i64, to: i64| {
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from_iter_values(from..to))])
                .expect("batch")
        };
        let groups = row_groups(&[batch(0, 5), batch(5, 12), batch(12, 13)], 4);
        let sizes: Vec<usize> = groups.iter().map(|g| g.iter().map(RecordBatch::num_rows).sum()).collect();
        assert_eq!(sizes, [4, 4, 4, 1]);
        let values: Vec<i64> = groups
            .iter()
            .flatten()
            .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().expect("int64").values().to_vec())
            .collect();
        assert_eq!(values, (0..13).collect::<Vec<_>>());
    }
}
