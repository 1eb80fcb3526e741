//! Per-file rewriting of a Parquet scan's filter and projection for the
//! file's attribute columns: `get_field(<map>, '<key>')` reads the key's
//! column when the file has one, and becomes NULL when the file lists its
//! map's keys and `<key>` is not among them; any other use of the map reads
//! it with its values put back ([`RestoredMap`]). DataFusion then prunes row
//! groups and pages on the key's column (statistics, bloom filter), applies
//! the filter in its row filter (which map lookups never reach) and decodes
//! only that column; a lookup that became NULL simplifies away (`NULL = 'x'`
//! is false).

use std::collections::HashMap;
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
use super::{column_name, listed_keys};

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
        Ok(Arc::new(AttributeColumnsAdapter { default, maps, file_schema: physical_file_schema }))
    }
}

#[derive(Debug)]
struct AttributeColumnsAdapter {
    default: Arc<dyn PhysicalExprAdapter>,
    maps: FileMaps,
    file_schema: SchemaRef,
}

/// The attribute columns of one file: per map column, its keys' columns
/// (key, column index), in file order.
#[derive(Debug, Default)]
struct FileMaps(HashMap<String, Vec<(String, usize)>>);

impl FileMaps {
    fn of(schema: &SchemaRef) -> Self {
        let mut maps = HashMap::new();
        for field in schema.fields().iter().filter(|f| is_string_map(f.data_type())) {
            let prefix = column_name(field.name(), "");
            let columns: Vec<(String, usize)> = schema
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.data_type() == &DataType::Utf8)
                .filter_map(|(i, f)| f.name().strip_prefix(prefix.as_str()).map(|key| (key.to_owned(), i)))
                .collect();
            if !columns.is_empty() {
                maps.insert(field.name().clone(), columns);
            }
        }
        Self(maps)
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
                    && let Some(columns) = self.maps.0.get(column.name())
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
        let columns = self.maps.0.get(map.name()).map(Vec::as_slice).unwrap_or_default();
        if let Some((_, index)) = columns.iter().find(|(k, _)| k == key) {
            return Some(Arc::new(Column::new(&column_name(map.name(), key), *index)));
        }
        let listed = listed_keys(&self.file_schema, map.name())?;
        (!listed.contains(key)).then(|| Arc::new(Literal::new(ScalarValue::Utf8(None))) as Arc<dyn PhysicalExpr>)
    }
}
