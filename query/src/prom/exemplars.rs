//! `/api/v1/query_exemplars`: the exemplars (trace and span IDs) of the
//! points of the series a query's selectors select, grouped by series, so
//! Grafana can draw them and link to the traces. Read with the metric
//! API's exemplar scan ([`QueryEngine::metric_exemplars`]), per metric.

use std::collections::{BTreeMap, BTreeSet};

use promql_parser::parser::Expr;
use serde_json::{Value as JsonValue, json};

use super::eval::Evaluator;
use super::names::{Component, PromLabels, prom_labels};
use super::response::{number, timestamp};
use crate::{QueryEngine, QueryError};

/// Every selector of `expr`, in order.
fn selectors<'a>(expr: &'a Expr, out: &mut Vec<&'a promql_parser::parser::VectorSelector>) {
    match expr {
        Expr::VectorSelector(vs) => out.push(vs),
        Expr::MatrixSelector(ms) => out.push(&ms.vs),
        Expr::Aggregate(agg) => {
            selectors(&agg.expr, out);
            if let Some(param) = &agg.param {
                selectors(param, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::Call(call) => call.args.args.iter().for_each(|a| selectors(a, out)),
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
    }
}

/// `[{"seriesLabels", "exemplars": [{"labels", "value", "timestamp"}]}]` of
/// the points in `[start, end]`; a histogram's exemplars are listed under
/// its `_bucket` series without `le` (the bucket is not recorded).
pub(crate) async fn query_exemplars(
    engine: &QueryEngine,
    expr: &Expr,
    start: i64,
    end: i64,
) -> Result<Vec<JsonValue>, QueryError> {
    let ctx = engine.session()?;
    let mut found = Vec::new();
    selectors(expr, &mut found);
    let window = Some((start.saturating_sub(1), end));
    // (metric, series ID) → the labels the series is listed under.
    let mut series: BTreeMap<(String, String), PromLabels> = BTreeMap::new();
    for vs in found {
        for target in engine.prom_resolve(&ctx, &Evaluator::matchers(vs)?, window).await? {
            if matches!(target.component, Component::Sum | Component::Quantile) {
                continue;
            }
            for row in target.rows {
                let mut labels = prom_labels(&target.name, &row.info.labels);
                labels.remove("le");
                series.entry((target.family.otel_name.clone(), row.info.series_id)).or_insert(labels);
            }
        }
    }
    let limit = engine.metrics_max_points();
    let metrics: BTreeSet<&String> = series.keys().map(|(metric, _)| metric).collect();
    let mut grouped: BTreeMap<PromLabels, Vec<JsonValue>> = BTreeMap::new();
    for metric in metrics {
        let (exemplars, truncated) = engine.metric_exemplars(metric, &[], start, end, limit).await?;
        if truncated {
            return Err(QueryError::TooMuchData { what: "exemplars", limit, key: "metrics_max_points" });
        }
        for exemplar in exemplars {
            let Some(labels) = series.get(&(metric.clone(), exemplar.series_id.clone())) else { continue };
            let Some(value) = exemplar.value else { continue };
            let mut ids = serde_json::Map::new();
            if let Some(trace_id) = exemplar.trace_id {
                ids.insert("trace_id".into(), json!(trace_id));
            }
            if let Some(span_id) = exemplar.span_id {
                ids.insert("span_id".into(), json!(span_id));
            }
            let time = (exemplar.time_ms * 1e6).round() as i64;
            grouped.entry(labels.clone()).or_default().push(json!({
                "labels": ids,
                "value": number(value),
                "timestamp": timestamp(time),
            }));
        }
    }
    Ok(grouped
        .into_iter()
        .map(|(labels, exemplars)| json!({ "seriesLabels": labels, "exemplars": exemplars }))
        .collect())
}
