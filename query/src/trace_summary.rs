//! `GET /api/v1/traces/{id}/summary`: what a trace holds, computed on the
//! server from its outline, so a browser can show a huge trace's shape
//! before (or without) loading its spans: span and error counts per service
//! and per level, the critical path (the slowest path through the trace),
//! and where errors start, with the spans that led there.

use std::collections::BTreeMap;

use axum::extract::Path;
use axum::http::Uri;
use axum::response::Response;
use serde::Serialize;

use crate::params::Params;
use crate::tenancy::TenantState;
use crate::trace_outline::{OutlineSpan, TraceSpans, as_string, json_or_not_found, trace_id_param};
use crate::{QueryEngine, QueryError};

/// Spans of the critical path listed at most (all are counted).
const MAX_PATH_SPANS: usize = 200;
/// Error origins listed at most (all are counted).
const MAX_ERROR_ORIGINS: usize = 20;
/// Ancestors listed with each error origin, nearest last.
const MAX_ANCESTORS: usize = 8;

/// The shape of one trace (the `summary` endpoint's answer; the search
/// results' per-trace rows are [`crate::TraceSummary`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceOverview {
    pub trace_id: String,
    #[serde(serialize_with = "as_string")]
    pub start_time_unix_nano: i64,
    pub duration_nanos: i64,
    pub span_count: usize,
    pub error_count: usize,
    /// Spans whose parent is not in the trace: it is partial.
    pub orphan_count: usize,
    /// Levels in the tree.
    pub depth: usize,
    /// Most spans first.
    pub services: Vec<ServiceCount>,
    /// From the roots down.
    pub levels: Vec<LevelCount>,
    pub critical_path_span_count: usize,
    /// The first spans of the critical path, in start order.
    pub critical_path: Vec<SummarySpan>,
    pub error_origin_count: usize,
    /// Error spans none of whose children failed, in start order.
    pub error_origins: Vec<ErrorOrigin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCount {
    pub service_name: String,
    pub span_count: usize,
    pub error_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LevelCount {
    pub depth: usize,
    pub span_count: usize,
    pub error_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummarySpan {
    pub span_id: String,
    pub name: String,
    pub service_name: String,
    pub start_offset_nanos: i64,
    pub duration_nanos: i64,
    pub depth: usize,
    pub error: bool,
}

impl From<&OutlineSpan> for SummarySpan {
    fn from(span: &OutlineSpan) -> Self {
        SummarySpan {
            span_id: span.span_id.clone(),
            name: span.name.clone(),
            service_name: span.service_name.clone(),
            start_offset_nanos: span.start_offset_nanos,
            duration_nanos: span.duration_nanos,
            depth: span.depth,
            error: span.error,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorOrigin {
    #[serde(flatten)]
    pub span: SummarySpan,
    /// Its nearest ancestors, root side first (all of them when `depth` is
    /// no more than their number).
    pub ancestors: Vec<SummarySpan>,
}

impl QueryEngine {
    /// The summary of one trace; `None` when the trace is unknown.
    pub async fn trace_summary(&self, trace_id: &str) -> Result<Option<TraceOverview>, QueryError> {
        let trace = self.trace_spans(trace_id, self.max_trace_spans(), "max_trace_spans").await?;
        Ok(trace.map(|trace| summarize(&trace)))
    }
}

fn summarize(trace: &TraceSpans) -> TraceOverview {
    let spans = &trace.spans;
    let mut services: BTreeMap<&str, ServiceCount> = BTreeMap::new();
    let mut levels: Vec<LevelCount> = Vec::new();
    for span in spans {
        let service = services.entry(&span.service_name).or_insert_with(|| ServiceCount {
            service_name: span.service_name.clone(),
            span_count: 0,
            error_count: 0,
        });
        service.span_count += 1;
        service.error_count += usize::from(span.error);
        while levels.len() <= span.depth {
            levels.push(LevelCount { depth: levels.len(), span_count: 0, error_count: 0 });
        }
        levels[span.depth].span_count += 1;
        levels[span.depth].error_count += usize::from(span.error);
    }
    let mut services: Vec<ServiceCount> = services.into_values().collect();
    services.sort_by(|a, b| b.span_count.cmp(&a.span_count).then_with(|| a.service_name.cmp(&b.service_name)));
    let path = trace.tree.critical_path(spans);
    let origins = trace.tree.error_origins(spans);
    TraceOverview {
        trace_id: trace.trace_id.clone(),
        start_time_unix_nano: trace.start_time_unix_nano,
        duration_nanos: trace.duration_nanos,
        span_count: spans.len(),
        error_count: spans.iter().filter(|s| s.error).count(),
        orphan_count: trace.tree.orphans(),
        depth: levels.len(),
        services,
        levels,
        critical_path_span_count: path.len(),
        critical_path: path.iter().take(MAX_PATH_SPANS).map(|&i| SummarySpan::from(&spans[i])).collect(),
        error_origin_count: origins.len(),
        error_origins: origins
            .iter()
            .take(MAX_ERROR_ORIGINS)
            .map(|&i| ErrorOrigin {
                span: SummarySpan::from(&spans[i]),
                ancestors: trace
                    .tree
                    .ancestors(i, MAX_ANCESTORS)
                    .into_iter()
                    .map(|a| SummarySpan::from(&spans[a]))
                    .collect(),
            })
            .collect(),
    }
}

pub(crate) async fn get_summary(TenantState(state): TenantState, Path(trace_id): Path<String>, uri: Uri) -> Response {
    state
        .observe("trace_summary", async {
            Params::from_uri(&uri)?.only(&[])?;
            let id = trace_id_param(&trace_id)?;
            json_or_not_found(state.engine.trace_summary(&id).await?, || format!("trace {id} not found"))
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::Value;

    use crate::test_support::{T1, T3, assert_golden, get};

    #[tokio::test]
    async fn a_summary_counts_services_and_levels_and_finds_the_critical_path_and_errors() {
        let (status, _, body) = get(&format!("/api/v1/traces/{T1}/summary")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_golden("trace_summary.json", &json);
        // The same counts as the full trace.
        let (_, _, full) = get(&format!("/api/v1/traces/{T1}")).await;
        let full: Value = serde_json::from_slice(&full).expect("json");
        assert_eq!(json["spanCount"], full["spanCount"]);
        assert_eq!(json["errorCount"], full["errorCount"]);
    }

    #[tokio::test]
    async fn a_partial_trace_counts_its_orphans() {
        let (status, _, body) = get(&format!("/api/v1/traces/{T3}/summary")).await;
        assert_eq!(status, StatusCode::OK);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["orphanCount"], 1);
        assert_eq!(
            json["levels"],
            serde_json::json!([
                {"depth": 0, "spanCount": 1, "errorCount": 0},
                {"depth": 1, "spanCount": 1, "errorCount": 0},
            ])
        );
        let (status, _, _) = get(&format!("/api/v1/traces/{}/summary", "f".repeat(32))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&format!("/api/v1/traces/{T3}/summary?depth=2")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
