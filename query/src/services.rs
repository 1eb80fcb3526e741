//! Service and operation listings for search forms:
//! `GET /api/v1/services` and `GET /api/v1/services/{service}/operations`.

use axum::extract::Path;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{col, lit};
use serde::Serialize;
use skein_model::schema::col as span_col;

use crate::engine::{QueryResult, SPANS_TABLE};
use crate::params::Params;
use crate::tenancy::TenantState;
use crate::{QueryEngine, QueryError};

/// A span name used by a service, with its kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Operation {
    pub name: String,
    pub kind: String,
}

impl QueryEngine {
    /// Every service that has sent spans, sorted.
    pub async fn services(&self) -> Result<Vec<String>, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let frame = ctx
                .table(SPANS_TABLE)
                .await
                .and_then(|f| f.aggregate(vec![col(span_col::SERVICE_NAME)], vec![]))
                .and_then(|f| f.sort(vec![col(span_col::SERVICE_NAME).sort(true, false)]))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            Ok(string_rows(&result, 1)?.into_iter().map(|mut row| row.remove(0)).collect())
        })
        .await
    }

    /// The distinct (span name, kind) pairs of one service, sorted.
    pub async fn operations(&self, service: &str) -> Result<Vec<Operation>, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let frame = ctx
                .table(SPANS_TABLE)
                .await
                .and_then(|f| f.filter(col(span_col::SERVICE_NAME).eq(lit(service))))
                .and_then(|f| f.aggregate(vec![col(span_col::NAME), col(span_col::KIND)], vec![]))
                .and_then(|f| {
                    f.sort(vec![col(span_col::NAME).sort(true, false), col(span_col::KIND).sort(true, false)])
                })
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, self.max_result_rows()).await?;
            Ok(string_rows(&result, 2)?
                .into_iter()
                .map(|row| {
                    let [name, kind]: [String; 2] = row.try_into().unwrap_or_default();
                    Operation { name, kind }
                })
                .collect())
        })
        .await
    }
}

/// The first `width` columns of every row, as strings.
fn string_rows(result: &QueryResult, width: usize) -> Result<Vec<Vec<String>>, QueryError> {
    let mut rows = Vec::with_capacity(result.row_count);
    for batch in &result.batches {
        let columns = batch.columns()[..width]
            .iter()
            .map(|c| cast(c, &DataType::Utf8))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| QueryError::Execution(e.to_string()))?;
        for row in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| {
                        let c = c.as_string::<i32>();
                        if c.is_null(row) { String::new() } else { c.value(row).to_owned() }
                    })
                    .collect(),
            );
        }
    }
    Ok(rows)
}

pub(crate) async fn list_services(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("services", async {
            Params::from_uri(&uri)?.only(&[])?;
            let services = state.engine.services().await?;
            Ok(axum::Json(serde_json::json!({ "services": services })).into_response())
        })
        .await
}

pub(crate) async fn list_operations(
    TenantState(state): TenantState,
    Path(service): Path<String>,
    uri: Uri,
) -> Response {
    state
        .observe("operations", async {
            Params::from_uri(&uri)?.only(&[])?;
            let operations = state.engine.operations(&service).await?;
            Ok(axum::Json(serde_json::json!({ "operations": operations })).into_response())
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_support::get;

    #[tokio::test]
    async fn lists_services_sorted() {
        let (status, _, body) = get("/api/v1/services").await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json, json!({ "services": ["cart", "checkout", "payments"] }));
    }

    #[tokio::test]
    async fn lists_operations_of_one_service() {
        let (status, _, body) = get("/api/v1/services/checkout/operations").await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(
            json,
            json!({ "operations": [
                { "name": "POST /checkout", "kind": "server" },
                { "name": "process", "kind": "internal" },
                { "name": "process.step", "kind": "internal" },
            ]})
        );
        let (status, _, body) = get("/api/v1/services/nope/operations").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), json!({ "operations": [] }));
    }
}
