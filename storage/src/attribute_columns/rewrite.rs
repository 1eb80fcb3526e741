//! Per-file rewriting of a Parquet scan's filter and projection for the
//! file's attribute columns: `get_field(<map>, '<key>')` reads the key's
//! column when the file has one, and becomes NULL when the file lists its
//! map's keys and `<key>` is not among them; any other use of the map reads
//! it with its values put back ([`RestoredMap`]). DataFusion then prunes row
//! groups and pages on the key's column (statistics, bloom filter), applies
//! the filter in its row filter (which map lookups never reach) and decodes
//! only that column; a lookup that became NULL simplifies away (`NULL = 'x'`
//! is false).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr_adapter::{
    DefaultPhysicalExprAdapterFactory, PhysicalExprAdapter, PhysicalExprAdapterFactory,
};
use datafusion::physical_plan::PhysicalExpr;

use super::restore::RestoredMap;
use super::{AttributeLayout, column_name};

/// Builds the rewriter of each file: DataFusion's default adaptation to the
/// file schema, then the attribute columns.
#[derive(Debug, Default)]
pub(crate) struct AttributeColumnsAdapterFactory;

impl PhysicalExprAdapterFactory for AttributeColumnsAdapterFactory {
    fn create(
        &self,
        logical_file_schema: SchemaRef,
        physical_file_schema: SchemaRef,
    ) -> Result<Arc<dyn PhysicalExprAdapter>> {
        let default =
            DefaultPhysicalExprAdapterFactory.create(logical_file_schema, Arc::clone(&physical_file_schema))?;
        let maps = FileMaps::of(&physical_file_schema);
        Ok(Arc::new(AttributeColumnsAdapter { default, maps }))
    }
}

#[derive(Debug)]
struct AttributeColumnsAdapter {
    default: Arc<dyn PhysicalExprAdapter>,
    maps: FileMaps,
}

/// The attribute layout of one file, read once per file: per map column,
/// its keys' columns (key, column index) and its listed keys.
#[derive(Debug, Default)]
struct FileMaps(HashMap<String, FileMap>);

#[derive(Debug)]
struct FileMap {
    columns: Vec<(String, usize)>,
    keys: Option<BTreeSet<String>>,
}

impl FileMaps {
    fn of(schema: &SchemaRef) -> Self {
        let maps: Vec<&str> =
            schema.fields().iter().filter(|f| is_string_map(f.data_type())).map(|f| f.name().as_str()).collect();
        let layout = AttributeLayout::of_schema(&maps, schema);
        let maps = layout.maps.into_iter().map(|map| {
            let columns = map
                .columns
                .into_iter()
                .filter_map(|key| schema.index_of(&column_name(&map.map, &key)).ok().map(|index| (key, index)))
                .collect();
            (map.map, FileMap { columns, keys: map.keys })
        });
        Self(maps.collect())
    }
}

fn is_string_map(data_type: &DataType) -> bool {
    let DataType::Map(entries, _) = data_type else { return false };
    let DataType::Struct(fields) = entries.data_type() else { return false };
    fields.len() == 2 && fields.iter().all(|f| f.data_type() == &DataType::Utf8)
}

impl PhysicalExprAdapter for AttributeColumnsAdapter {
    fn rewrite(&self, expr: Arc<dyn PhysicalExpr>) -> Result<Arc<dyn PhysicalExpr>> {
        let adapted = self.default.rewrite(expr)?;
        // Top down, so a lookup is seen before the map column inside it;
        // a replaced node's children are not visited again.
        adapted
            .transform_down(|expr| {
                if let Some((map, key)) = attribute_lookup(&expr) {
                    return Ok(match self.lookup(map, key) {
                        Some(read) => Transformed::new(read, true, TreeNodeRecursion::Jump),
                        // Values of keys without a column stay in the map.
                        None => Transformed::new(expr, false, TreeNodeRecursion::Jump),
                    });
                }
                if let Some(column) = expr.downcast_ref::<Column>()
                    && let Some(columns) = self.maps.0.get(column.name()).map(|m| &m.columns)
                    && !columns.is_empty()
                {
                    let restored = RestoredMap {
                        map: Arc::clone(&expr),
                        keys: columns.iter().map(|(key, _)| key.clone()).collect(),
                        columns: columns
                            .iter()
                            .map(|(key, index)| {
                                Arc::new(Column::new(&column_name(column.name(), key), *index)) as Arc<dyn PhysicalExpr>
                            })
                            .collect(),
                    };
                    return Ok(Transformed::new(Arc::new(restored), true, TreeNodeRecursion::Jump));
                }
                Ok(Transformed::no(expr))
            })
            .data()
    }
}

/// The map column and key of `get_field(<map column>, '<key>')` on a
/// `Map<Utf8, Utf8>`.
fn attribute_lookup(expr: &Arc<dyn PhysicalExpr>) -> Option<(&Column, &str)> {
    let call = expr.downcast_ref::<ScalarFunctionExpr>()?;
    let [map, key] = call.args() else { return None };
    if call.fun().name() != "get_field" || call.return_type() != &DataType::Utf8 {
        return None;
    }
    let map = map.downcast_ref::<Column>()?;
    let key = key.downcast_ref::<Literal>()?.value().try_as_str()??;
    Some((map, key))
}

impl AttributeColumnsAdapter {
    /// What reads `key` of `map` in this file instead of the map: its
    /// column, or NULL when the file lists the map's keys without it.
    fn lookup(&self, map: &Column, key: &str) -> Option<Arc<dyn PhysicalExpr>> {
        let file_map = self.maps.0.get(map.name())?;
        if let Some((_, index)) = file_map.columns.iter().find(|(k, _)| k == key) {
            return Some(Arc::new(Column::new(&column_name(map.name(), key), *index)));
        }
        let listed = file_map.keys.as_ref()?;
        (!listed.contains(key)).then(|| Arc::new(Literal::new(ScalarValue::Utf8(None))) as Arc<dyn PhysicalExpr>)
    }
}
