//! Service-level views computed from spans for the UI's Services and Service
//! map screens:
//! - `GET /api/v1/service_stats`: per service, operation and kind, the
//!   request count, error count and p50/p95/p99 duration over the range and
//!   per time step (RED metrics);
//! - `GET /api/v1/service_graph`: who calls whom (a span whose parent span is
//!   in another service), with call counts, errors and callee latency.
//!
//! Both aggregate in DataFusion with the range pushed down to the shards;
//! values are literals, never spliced into SQL. When the steps are whole
//! minutes they read the `span_metrics` table and `service_graph` view
//! (per-minute rows derived from spans; the range widens to whole minutes
//! and percentiles come from their histograms, within about 4.5%), so a day
//! costs what a few thousand rows cost. Finer steps scan the spans.

use std::collections::HashMap;

use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::functions_aggregate::expr_fn::{approx_percentile_cont, count, sum};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, cast as cast_expr, col, lit, when};
use serde::Serialize;
use skein_model::schema::col as span_col;
use skein_model::span_metrics::{MINUTE_NS, col as red};

use crate::engine::{SPAN_METRICS_TABLE, SPANS_TABLE};
use crate::params::{Params, now_ns, parse_time, step, timestamp};
use crate::tenancy::TenantState;
use crate::trace_outline::cast_column;
use crate::views::SERVICE_GRAPH_VIEW;
use crate::{QueryEngine, QueryError};
use crate::{QueryResult, duration_quantile};

const DEFAULT_RANGE_NS: i64 = 3_600 * 1_000_000_000;
/// Operations returned by default, busiest first; span names can be unique per span.
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 1_000;

/// The time range and filters of a stats or graph request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    pub kind: Option<String>,
    pub start_ns: i64,
    pub end_ns: i64,
    pub step_ns: i64,
    /// Most operations to return.
    pub limit: usize,
}

impl StatsQuery {
    fn from_params(params: &Params, known: &[&str]) -> Result<Self, QueryError> {
        params.only(known)?;
        let end_ns = params.single("end")?.map(|v| parse_time("end", v)).transpose()?.unwrap_or_else(now_ns);
        let start_ns =
            params.single("start")?.map(|v| parse_time("start", v)).transpose()?.unwrap_or(end_ns - DEFAULT_RANGE_NS);
        if start_ns >= end_ns {
            return Err(QueryError::InvalidRequest("start must be before end".into()));
        }
        let step_ns = step(params, end_ns - start_ns)?;
        let limit = match params.single("limit")? {
            None => DEFAULT_LIMIT,
            Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
                QueryError::InvalidRequest(format!("limit must be an integer from 1 to {MAX_LIMIT}, got {text:?}"))
            })?,
        };
        Ok(Self {
            limit,
            service: params.single("service")?.map(str::to_owned),
            operation: params.single("operation")?.map(str::to_owned),
            kind: params.single("kind")?.map(str::to_owned),
            start_ns,
            end_ns,
            step_ns,
        })
    }

    /// Whether the per-minute span metrics can answer: steps of whole
    /// minutes. The range is widened to whole minutes then.
    fn minute_aligned(&self) -> Option<Self> {
        (self.step_ns % MINUTE_NS == 0).then(|| self.whole_minutes())
    }

    /// The range widened to whole minutes.
    fn whole_minutes(&self) -> Self {
        Self {
            start_ns: self.start_ns.div_euclid(MINUTE_NS) * MINUTE_NS,
            end_ns: (self.end_ns + MINUTE_NS - 1).div_euclid(MINUTE_NS) * MINUTE_NS,
            ..self.clone()
        }
    }

    /// The filter of this query on `span_metrics` rows.
    fn red_filter(&self) -> Expr {
        let mut filters = vec![self.red_range()];
        let equal = |column: &str, value: &Option<String>| value.as_ref().map(|v| col(column).eq(lit(v.as_str())));
        filters.extend(equal(red::SERVICE_NAME, &self.service));
        filters.extend(equal(red::NAME, &self.operation));
        filters.extend(equal(red::KIND, &self.kind));
        conjunction(filters).unwrap_or(lit(true))
    }

    /// The range on the minute column of `span_metrics` rows.
    fn red_range(&self) -> Expr {
        col(red::TIME).gt_eq(timestamp(self.start_ns)).and(col(red::TIME).lt(timestamp(self.end_ns)))
    }

    fn filter(&self, start_ns: i64) -> Expr {
        let mut filters = vec![
            col(span_col::START_TIME).gt_eq(timestamp(start_ns)),
            col(span_col::START_TIME).lt(timestamp(self.end_ns)),
        ];
        let equal = |column: &str, value: &Option<String>| value.as_ref().map(|v| col(column).eq(lit(v.as_str())));
        filters.extend(equal(span_col::SERVICE_NAME, &self.service));
        filters.extend(equal(span_col::NAME, &self.operation));
        filters.extend(equal(span_col::KIND, &self.kind));
        conjunction(filters).unwrap_or(lit(true))
    }
}

/// RED numbers of one group: over the whole range, or one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Red {
    pub count: i64,
    pub errors: i64,
    pub p50_nanos: f64,
    pub p95_nanos: f64,
    pub p99_nanos: f64,
}

/// One service operation (span name and kind) with its totals and steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OperationStats {
    pub service: String,
    pub operation: String,
    pub kind: String,
    pub total: Red,
    /// `(step start in unix milliseconds, numbers)`, steps without spans left out.
    pub steps: Vec<(i64, Red)>,
}

/// One service of the service graph: its spans in the range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceNode {
    pub service: String,
    pub spans: i64,
    pub errors: i64,
}

/// One edge of the service graph.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceEdge {
    pub caller: String,
    pub callee: String,
    pub calls: i64,
    pub errors: i64,
    pub p50_nanos: f64,
    pub p95_nanos: f64,
}

fn red_aggregates(duration: Expr, status: Expr) -> Result<Vec<Expr>, QueryError> {
    let is_error = when(status.eq(lit("error")), lit(1i64))
        .otherwise(lit(0i64))
        .map_err(|e| QueryError::Execution(e.to_string()))?;
    let percentile = |q: f64| approx_percentile_cont(duration.clone().sort(true, false), lit(q), None);
    Ok(vec![
        count(lit(1i64)).alias("count"),
        sum(is_error).alias("errors"),
        percentile(0.5).alias("p50"),
        percentile(0.95).alias("p95"),
        percentile(0.99).alias("p99"),
    ])
}

/// What `red_aggregates` computes, from `span_metrics` rows.
fn red_aggregates_from_metrics(calls: &str, errors: &str, histogram: &str) -> Vec<Expr> {
    let quantile = |q: f64| duration_quantile::udaf().call(vec![col(histogram), lit(q)]);
    vec![
        sum(col(calls)).alias("count"),
        sum(col(errors)).alias("errors"),
        quantile(0.5).alias("p50"),
        quantile(0.95).alias("p95"),
        quantile(0.99).alias("p99"),
    ]
}

/// The RED numbers of every row of `batch`, by the aliases of `red_aggregates`.
fn read_red(batch: &RecordBatch) -> Result<Vec<Red>, QueryError> {
    let int = |name| cast_column(batch, name, &DataType::Int64);
    let float = |name| cast_column(batch, name, &DataType::Float64);
    let (count, errors) = (int("count")?, int("errors")?);
    let (count, errors) = (count.as_primitive::<Int64Type>(), errors.as_primitive::<Int64Type>());
    let (p50, p95, p99) = (float("p50")?, float("p95")?, float("p99")?);
    let value = |a: &dyn Array, row| {
        let a = a.as_primitive::<Float64Type>();
        if a.is_null(row) { 0.0 } else { a.value(row) }
    };
    Ok((0..batch.num_rows())
        .map(|row| Red {
            count: count.value(row),
            errors: if errors.is_null(row) { 0 } else { errors.value(row) },
            p50_nanos: value(&p50, row),
            p95_nanos: value(&p95, row),
            p99_nanos: value(&p99, row),
        })
        .collect())
}

fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<String>, QueryError> {
    let array = cast_column(batch, name, &DataType::Utf8)?;
    let array = array.as_string::<i32>();
    Ok((0..array.len())
        .map(|row| if array.is_null(row) { String::new() } else { array.value(row).to_owned() })
        .collect())
}

impl QueryEngine {
    /// RED numbers per service operation over `query`'s range and steps,
    /// busiest operation first, at most `query.limit`; true when there were more.
    /// The range and steps answered too: widened to whole minutes when
    /// the span metrics answer.
    pub async fn service_stats(
        &self,
        query: &StatsQuery,
    ) -> Result<(StatsQuery, Vec<OperationStats>, bool), QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let (source, time, aggregates, query) = match query.minute_aligned() {
                Some(aligned) => {
                    let rows = ctx.table(SPAN_METRICS_TABLE).await.and_then(|f| f.filter(aligned.red_filter()));
                    let aggregates = red_aggregates_from_metrics(red::CALLS, red::ERRORS, red::DURATION_HISTOGRAM);
                    (rows, red::TIME, aggregates, aligned)
                }
                None => {
                    let rows = ctx.table(SPANS_TABLE).await.and_then(|f| f.filter(query.filter(query.start_ns)));
                    let aggregates = red_aggregates(col(span_col::DURATION_NS), col(span_col::STATUS_CODE))?;
                    (rows, span_col::START_TIME, aggregates, query.clone())
                }
            };
            let source = source.map_err(|e| self.datafusion_error(e))?;
            // `span_metrics` names its columns as `spans` does.
            let keys = || vec![col(span_col::SERVICE_NAME), col(span_col::NAME), col(span_col::KIND)];
            let step = (cast_expr(col(time), DataType::Int64) - lit(query.start_ns)) / lit(query.step_ns);
            let mut stepped_keys = keys();
            stepped_keys.push(step.alias("step"));
            let totals = source.clone().aggregate(keys(), aggregates.clone()).map_err(|e| self.datafusion_error(e))?;
            let stepped = source.aggregate(stepped_keys, aggregates).map_err(|e| self.datafusion_error(e))?;
            let (totals, stepped) = (
                self.collect(totals, self.max_result_rows()).await?,
                self.collect(stepped, self.max_result_rows()).await?,
            );

            let mut operations = Vec::new();
            for batch in &totals.batches {
                let (service, name, kind) = (
                    strings(batch, span_col::SERVICE_NAME)?,
                    strings(batch, span_col::NAME)?,
                    strings(batch, span_col::KIND)?,
                );
                for (row, total) in read_red(batch)?.into_iter().enumerate() {
                    operations.push(OperationStats {
                        service: service[row].clone(),
                        operation: name[row].clone(),
                        kind: kind[row].clone(),
                        total,
                        steps: Vec::new(),
                    });
                }
            }
            operations.sort_by(|a, b| {
                (b.total.count, &a.service, &a.operation, &a.kind).cmp(&(
                    a.total.count,
                    &b.service,
                    &b.operation,
                    &b.kind,
                ))
            });
            let truncated = operations.len() > query.limit;
            operations.truncate(query.limit);
            let index: HashMap<(&str, &str, &str), usize> = operations
                .iter()
                .enumerate()
                .map(|(i, o)| ((o.service.as_str(), o.operation.as_str(), o.kind.as_str()), i))
                .collect();
            let mut steps: Vec<(usize, i64, Red)> = Vec::new();
            for batch in &stepped.batches {
                let (service, name, kind) = (
                    strings(batch, span_col::SERVICE_NAME)?,
                    strings(batch, span_col::NAME)?,
                    strings(batch, span_col::KIND)?,
                );
                let step = cast_column(batch, "step", &DataType::Int64)?;
                let step = step.as_primitive::<Int64Type>();
                for (row, red) in read_red(batch)?.into_iter().enumerate() {
                    if let Some(&i) = index.get(&(service[row].as_str(), name[row].as_str(), kind[row].as_str())) {
                        let millis = (query.start_ns + step.value(row) * query.step_ns) / 1_000_000;
                        steps.push((i, millis, red));
                    }
                }
            }
            for (i, millis, red) in steps {
                operations[i].steps.push((millis, red));
            }
            for operation in &mut operations {
                operation.steps.sort_by_key(|(millis, _)| *millis);
            }
            Ok((query, operations, truncated))
        })
        .await
    }

    /// The services with spans in `query`'s range, and the calls between
    /// them (a span whose parent span belongs to another service), busiest first.
    /// The services with spans in `query`'s range (widened to whole
    /// minutes), and the calls between them (a span whose parent span
    /// belongs to another service), busiest first, from the span metrics.
    pub async fn service_graph(
        &self,
        query: &StatsQuery,
    ) -> Result<(StatsQuery, Vec<ServiceNode>, Vec<ServiceEdge>), QueryError> {
        let aligned = query.whole_minutes();
        self.limited(async {
            let ctx = self.session()?;
            let range = aligned.red_range();
            let edges = ctx
                .table(SERVICE_GRAPH_VIEW)
                .await
                .and_then(|f| f.filter(range.clone()))
                .and_then(|f| {
                    f.aggregate(
                        vec![col("client_service").alias("caller"), col("server_service").alias("callee")],
                        red_aggregates_from_metrics(red::CALLS, red::ERRORS, red::DURATION_HISTOGRAM),
                    )
                })
                .map_err(|e| self.datafusion_error(e))?;
            let services = ctx
                .table(SPAN_METRICS_TABLE)
                .await
                .and_then(|f| f.filter(range))
                .and_then(|f| {
                    f.aggregate(
                        vec![col(red::SERVICE_NAME)],
                        vec![sum(col(red::CALLS)).alias("count"), sum(col(red::ERRORS)).alias("errors")],
                    )
                })
                .map_err(|e| self.datafusion_error(e))?;
            let edges = self.collect(edges, self.max_result_rows()).await?;
            let services = self.collect(services, self.max_result_rows()).await?;
            Ok((aligned.clone(), read_nodes(&services)?, read_edges(&edges)?))
        })
        .await
    }
}

/// Edges from rows of (caller, callee, the `red_aggregates` aliases), busiest first.
fn read_edges(result: &QueryResult) -> Result<Vec<ServiceEdge>, QueryError> {
    let mut edges = Vec::new();
    for batch in &result.batches {
        let (caller, callee) = (strings(batch, "caller")?, strings(batch, "callee")?);
        for (row, red) in read_red(batch)?.into_iter().enumerate() {
            edges.push(ServiceEdge {
                caller: caller[row].clone(),
                callee: callee[row].clone(),
                calls: red.count,
                errors: red.errors,
                p50_nanos: red.p50_nanos,
                p95_nanos: red.p95_nanos,
            });
        }
    }
    edges.sort_by(|a, b| (b.calls, &a.caller, &a.callee).cmp(&(a.calls, &b.caller, &b.callee)));
    Ok(edges)
}

/// Nodes from rows of (service_name, count, errors), by name.
fn read_nodes(result: &QueryResult) -> Result<Vec<ServiceNode>, QueryError> {
    let mut nodes = Vec::new();
    for batch in &result.batches {
        let names = strings(batch, span_col::SERVICE_NAME)?;
        let spans = cast_column(batch, "count", &DataType::Int64)?;
        let errors = cast_column(batch, "errors", &DataType::Int64)?;
        let (spans, errors) = (spans.as_primitive::<Int64Type>(), errors.as_primitive::<Int64Type>());
        for (row, service) in names.into_iter().enumerate() {
            let errors = if errors.is_null(row) { 0 } else { errors.value(row) };
            nodes.push(ServiceNode { service, spans: spans.value(row), errors });
        }
    }
    nodes.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(nodes)
}

pub(crate) async fn get_service_stats(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("service_stats", async {
            let params = Params::from_uri(&uri)?;
            let known = ["service", "operation", "kind", "start", "end", "step", "limit"];
            let query = StatsQuery::from_params(&params, &known)?;
            let (query, operations, truncated) = state.engine.service_stats(&query).await?;
            Ok(axum::Json(serde_json::json!({
                "start": (query.start_ns / 1_000_000),
                "end": (query.end_ns / 1_000_000),
                "step_ms": query.step_ns / 1_000_000,
                "operations": operations,
                "truncated": truncated,
            }))
            .into_response())
        })
        .await
}

pub(crate) async fn get_service_graph(TenantState(state): TenantState, uri: Uri) -> Response {
    state
        .observe("service_graph", async {
            let params = Params::from_uri(&uri)?;
            let query = StatsQuery::from_params(&params, &["start", "end"])?;
            let (query, nodes, edges) = state.engine.service_graph(&query).await?;
            Ok(axum::Json(serde_json::json!({
                "start": (query.start_ns / 1_000_000),
                "end": (query.end_ns / 1_000_000),
                "nodes": nodes,
                "edges": edges,
            }))
            .into_response())
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_support::{BASE_SECONDS, get};

    fn range() -> String {
        format!("start={}&end={}", BASE_SECONDS - 60, BASE_SECONDS + 60)
    }

    #[tokio::test]
    async fn red_per_operation_over_the_range_and_per_step() {
        let (status, _, body) = get(&format!("/api/v1/service_stats?{}&step=10s&service=payments", range())).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["step_ms"], 10_000);
        assert_eq!(json["truncated"], false);
        let operations = json["operations"].as_array().expect("operations");
        assert_eq!(operations.len(), 1, "{json}");
        let charge = &operations[0];
        assert_eq!(
            (&charge["service"], &charge["operation"], &charge["kind"]),
            (&json!("payments"), &json!("charge"), &json!("client"))
        );
        assert_eq!((&charge["total"]["count"], &charge["total"]["errors"]), (&json!(1), &json!(1)));
        assert_eq!(charge["total"]["p99_nanos"], 300_000_000.0);
        let steps = charge["steps"].as_array().expect("steps");
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0][1]["count"], 1);
        // The step that holds BASE (the range starts 60 s earlier).
        assert_eq!(steps[0][0], (BASE_SECONDS - 60 + 60) * 1000);
    }

    #[tokio::test]
    async fn graph_of_calls_between_services() {
        let (status, _, body) = get(&format!("/api/v1/service_graph?{}", range())).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["nodes"][0], json!({"service": "cart", "spans": 1, "errors": 0}));
        assert_eq!(json["nodes"][2], json!({"service": "payments", "spans": 1, "errors": 1}));
        let edges = json["edges"].as_array().expect("edges");
        assert_eq!(edges.len(), 1, "{json}");
        let edge = &edges[0];
        assert_eq!((&edge["caller"], &edge["callee"]), (&json!("checkout"), &json!("payments")));
        assert_eq!((&edge["calls"], &edge["errors"]), (&json!(1), &json!(1)));
        // From the histogram: within a bucket of the 300 ms call.
        let p50 = edge["p50_nanos"].as_f64().expect("p50");
        assert!((p50 - 3e8).abs() / 3e8 < 0.1, "{edge}");
        // The range widens to whole minutes.
        assert_eq!(json["start"].as_i64().expect("start") % 60_000, 0);
    }

    #[tokio::test]
    async fn whole_minute_steps_read_span_metrics_with_the_same_counts() {
        let url = |step: &str| format!("/api/v1/service_stats?{}&step={step}", range());
        let (status, _, body) = get(&url("60s")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let minutes: Value = serde_json::from_slice(&body).expect("json");
        let (_, _, body) = get(&url("1s")).await;
        let seconds: Value = serde_json::from_slice(&body).expect("json");
        let totals = |json: &Value| -> Vec<(Value, Value, Value, Value, Value)> {
            json["operations"]
                .as_array()
                .expect("operations")
                .iter()
                .map(|o| {
                    let t = &o["total"];
                    (
                        o["service"].clone(),
                        o["operation"].clone(),
                        o["kind"].clone(),
                        t["count"].clone(),
                        t["errors"].clone(),
                    )
                })
                .collect()
        };
        assert!(!totals(&minutes).is_empty());
        assert_eq!(totals(&minutes), totals(&seconds));
        assert_eq!(minutes["start"].as_i64().expect("start") % 60_000, 0, "widened to whole minutes");
    }

    #[tokio::test]
    async fn bad_ranges_and_steps_are_refused() {
        for query in ["start=20&end=10", "step=1ns", "start=0&end=100000&step=1s", "nope=1", "limit=0"] {
            let (status, _, _) = get(&format!("/api/v1/service_stats?{query}")).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        }
    }
}
