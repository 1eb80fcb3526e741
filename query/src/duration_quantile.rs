//! `duration_quantile(duration_histogram, q)`: the aggregate that turns the
//! latency histograms of `span_metrics` / `service_graph` rows into a
//! quantile (in nanoseconds, as a float), merging the histograms of every
//! row in the group first. Accurate to half a histogram bucket (about ±4.5%;
//! see `skein_model::span_metrics::histogram`).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array, Int64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int32Type, Int64Type};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDF, AggregateUDFImpl, Signature, Volatility};
use skein_model::span_metrics::col;
use skein_model::span_metrics::histogram::Histogram;
use skein_model::span_metrics::histogram_type;

pub const NAME: &str = "duration_quantile";

/// The aggregate function, to register in a session.
pub fn udaf() -> AggregateUDF {
    AggregateUDF::from(DurationQuantile {
        signature: Signature::exact(vec![histogram_type(), DataType::Float64], Volatility::Immutable),
    })
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct DurationQuantile {
    signature: Signature,
}

impl AggregateUDFImpl for DurationQuantile {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(QuantileAccumulator::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let name = |part: &str| format!("{}[{part}]", args.name);
        Ok(vec![
            Arc::new(Field::new(name("offset"), DataType::Int32, true)),
            Arc::new(Field::new(name("counts"), counts_type(), true)),
            Arc::new(Field::new(name("q"), DataType::Float64, true)),
        ])
    }
}

fn counts_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Int64, false)))
}

#[derive(Debug, Default)]
struct QuantileAccumulator {
    histogram: Histogram,
    q: Option<f64>,
}

impl QuantileAccumulator {
    fn take_q(&mut self, q: &ArrayRef) -> Result<()> {
        let Some(q) = q.as_primitive_opt::<Float64Type>() else {
            return exec_err!("{NAME}: the quantile must be a float, like 0.99");
        };
        if self.q.is_none()
            && let Some(value) = q.iter().flatten().next()
        {
            if !(0.0..=1.0).contains(&value) {
                return exec_err!("{NAME}: the quantile must be between 0 and 1, not {value}");
            }
            self.q = Some(value);
        }
        Ok(())
    }

    /// Merges every row's histogram: straight from the list's value buffer,
    /// no per-row array.
    fn merge_lists(&mut self, offsets: &Int32Array, counts: &ListArray) {
        let bounds = counts.value_offsets();
        let values = counts.values().as_primitive::<Int64Type>().values();
        for row in 0..counts.len() {
            if counts.is_valid(row) && offsets.is_valid(row) {
                let (start, end) = (bounds[row] as usize, bounds[row + 1] as usize);
                self.histogram.merge(offsets.value(row), &values[start..end]);
            }
        }
    }
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let [histograms, q] = values else {
            return exec_err!("{NAME} takes a histogram and a quantile");
        };
        self.take_q(q)?;
        let Some(histograms) = histograms.as_struct_opt() else {
            return exec_err!("{NAME}: the first argument must be a {} column", col::DURATION_HISTOGRAM);
        };
        let (Some(offsets), Some(counts)) = (
            histograms.column_by_name(col::HISTOGRAM_OFFSET).and_then(|c| c.as_primitive_opt::<Int32Type>()),
            histograms.column_by_name(col::HISTOGRAM_COUNTS).and_then(|c| c.as_list_opt::<i32>()),
        ) else {
            return exec_err!("{NAME}: the first argument must be a {} column", col::DURATION_HISTOGRAM);
        };
        self.merge_lists(offsets, counts);
        Ok(())
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.q.and_then(|q| self.histogram.quantile(q))))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.histogram.counts.capacity() * std::mem::size_of::<i64>()
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        let counts = Int64Array::from(self.histogram.counts.clone());
        let list = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Int64, false)),
            OffsetBuffer::from_lengths([counts.len()]),
            Arc::new(counts),
            None,
        )?;
        Ok(vec![
            ScalarValue::Int32(Some(self.histogram.offset)),
            ScalarValue::List(Arc::new(list)),
            ScalarValue::Float64(self.q),
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let [offsets, counts, q] = states else {
            return exec_err!("{NAME}: unexpected state");
        };
        self.take_q(q)?;
        let (Some(offsets), Some(counts)) = (offsets.as_primitive_opt::<Int32Type>(), counts.as_list_opt::<i32>())
        else {
            return exec_err!("{NAME}: unexpected state types");
        };
        self.merge_lists(offsets, counts);
        Ok(())
    }
}

/// A histogram column of `histograms`.
#[cfg(test)]
fn histogram_array(histograms: &[Histogram]) -> Result<datafusion::arrow::array::StructArray> {
    let lengths: Vec<usize> = histograms.iter().map(|h| h.counts.len()).collect();
    let counts = Int64Array::from(histograms.iter().flat_map(|h| h.counts.iter().copied()).collect::<Vec<_>>());
    let list = ListArray::try_new(
        Arc::new(Field::new("item", DataType::Int64, false)),
        OffsetBuffer::from_lengths(lengths),
        Arc::new(counts),
        None,
    )?;
    let offsets = Int32Array::from_iter_values(histograms.iter().map(|h| h.offset));
    let DataType::Struct(fields) = histogram_type() else { unreachable!("the histogram type is a struct") };
    Ok(datafusion::arrow::array::StructArray::try_new(fields, vec![Arc::new(offsets), Arc::new(list)], None)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, RecordBatch};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn merges_histograms_per_group_then_takes_the_quantile() {
        let mut fast = Histogram::default();
        (1..=100).for_each(|i| fast.record(i * 1_000));
        let mut slow = Histogram::default();
        (1..=100).for_each(|i| slow.record(i * 1_000_000));
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, false),
            Field::new(col::DURATION_HISTOGRAM, histogram_type(), false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(datafusion::arrow::array::StringArray::from(vec!["a", "a", "b"])),
                Arc::new(histogram_array(&[fast.clone(), slow.clone(), fast.clone()]).expect("array")),
            ],
        )
        .expect("batch");
        let ctx = SessionContext::new();
        ctx.register_udaf(udaf());
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, vec![vec![batch]]).expect("table")))
            .expect("register");
        let frame = ctx
            .sql("SELECT g, duration_quantile(duration_histogram, 0.5) AS p50 FROM t GROUP BY g ORDER BY g")
            .await
            .expect("plan");
        let batches = frame.collect().await.expect("run");
        let p50 = batches[0].column(1).as_any().downcast_ref::<Float64Array>().expect("floats");
        // Group a: 100 values around 1-100 µs and 100 around 1-100 ms: the median sits at ~100 µs.
        let a = p50.value(0);
        assert!((90_000.0..=110_000.0).contains(&a), "p50 of a is {a}");
        let b = p50.value(1);
        assert!((45_000.0..=55_000.0).contains(&b), "p50 of b is {b}");

        let refused =
            ctx.sql("SELECT duration_quantile(duration_histogram, 1.5) FROM t").await.expect("plan").collect().await;
        assert!(refused.expect_err("q out of range").to_string().contains("between 0 and 1"));
    }
}
