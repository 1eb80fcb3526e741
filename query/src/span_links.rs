//! `GET /api/v1/traces/{id}/spans/{span_id}/linked_from`: the spans whose
//! links point at one span, the other direction of a link, read from the
//! `span_links` table (one row per link, by target, derived by storage
//! beside each span file), so they are found at any distance in time.

use axum::extract::Path;
use axum::http::Uri;
use axum::response::Response;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{SortExpr, col, lit};
use serde::Serialize;
use skein_model::schema::col as span_col;
use skein_model::span_links::col as link_col;

use crate::engine::{SPAN_LINKS_TABLE, SPANS_TABLE};
use crate::params::Params;
use crate::tenancy::TenantState;
use crate::trace_outline::{cast_column, json_or_not_found, span_id_param, trace_id_param};
use crate::{QueryEngine, QueryError};

/// Most linking spans returned.
const MAX_LINKING: usize = 100;

/// A span that links to the asked-for span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkingSpan {
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    pub service_name: String,
}

impl QueryEngine {
    /// Spans linking to `span_id` of `trace_id` (stored forms), ordered by
    /// trace and span ID, at most [`MAX_LINKING`] (with whether more do);
    /// `None` when the span itself is not stored.
    pub async fn linked_from(
        &self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Option<(Vec<LinkingSpan>, bool)>, QueryError> {
        if !self.span_stored(trace_id, span_id).await? {
            return Ok(None);
        }
        self.limited(async {
            let ctx = self.session()?;
            let filter =
                col(link_col::LINKED_TRACE_ID).eq(lit(trace_id)).and(col(link_col::LINKED_SPAN_ID).eq(lit(span_id)));
            let columns = [link_col::TRACE_ID, link_col::SPAN_ID, link_col::NAME, link_col::SERVICE_NAME];
            // A span stored twice (a retried write in two files) or linking
            // twice to the same span is listed once.
            let frame = ctx
                .table(SPAN_LINKS_TABLE)
                .await
                .and_then(|f| f.filter(filter))
                .and_then(|f| f.select_columns(&columns))
                .and_then(|f| f.distinct())
                .and_then(|f| {
                    f.sort(vec![
                        SortExpr::new(col(link_col::TRACE_ID), true, false),
                        SortExpr::new(col(link_col::SPAN_ID), true, false),
                    ])
                })
                .and_then(|f| f.limit(0, Some(MAX_LINKING + 1)))
                .map_err(|e| self.datafusion_error(e))?;
            let result = self.collect(frame, MAX_LINKING + 1).await?;
            let mut linking = Vec::new();
            for batch in &result.batches {
                read_linking(batch, &mut linking)?;
            }
            let truncated = linking.len() > MAX_LINKING;
            linking.truncate(MAX_LINKING);
            Ok(Some((linking, truncated)))
        })
        .await
    }

    /// Whether one span is stored.
    async fn span_stored(&self, trace_id: &str, span_id: &str) -> Result<bool, QueryError> {
        self.limited(async {
            let ctx = self.session()?;
            let frame = ctx
                .table(SPANS_TABLE)
                .await
                .and_then(|f| {
                    f.filter(col(span_col::TRACE_ID).eq(lit(trace_id)).and(col(span_col::SPAN_ID).eq(lit(span_id))))
                })
                .and_then(|f| f.select_columns(&[span_col::SPAN_ID]))
                .and_then(|f| f.limit(0, Some(1)))
                .map_err(|e| self.datafusion_error(e))?;
            Ok(self.collect(frame, 1).await?.row_count > 0)
        })
        .await
    }
}

/// Appends the linking spans of `batch` (rows of `span_links`).
fn read_linking(batch: &RecordBatch, out: &mut Vec<LinkingSpan>) -> Result<(), QueryError> {
    let text = |name| cast_column(batch, name, &DataType::Utf8);
    let (traces, spans, names, services) =
        (text(link_col::TRACE_ID)?, text(link_col::SPAN_ID)?, text(link_col::NAME)?, text(link_col::SERVICE_NAME)?);
    let (traces, spans, names, services) =
        (traces.as_string::<i32>(), spans.as_string::<i32>(), names.as_string::<i32>(), services.as_string::<i32>());
    for row in 0..batch.num_rows() {
        out.push(LinkingSpan {
            trace_id: traces.value(row).to_owned(),
            span_id: spans.value(row).to_owned(),
            name: names.value(row).to_owned(),
            service_name: services.value(row).to_owned(),
        });
    }
    Ok(())
}

pub(crate) async fn get_linked_from(
    TenantState(state): TenantState,
    Path((trace_id, span_id)): Path<(String, String)>,
    uri: Uri,
) -> Response {
    state
        .observe("linked_from", async {
            Params::from_uri(&uri)?.only(&[])?;
            let trace = trace_id_param(&trace_id)?;
            let span = span_id_param(&span_id)?;
            let linked = state.engine.linked_from(&trace, &span).await?;
            json_or_not_found(
                linked.map(|(spans, truncated)| serde_json::json!({ "spans": spans, "truncated": truncated })),
                || format!("span {span} of trace {trace} not found"),
            )
        })
        .await
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use std::sync::Arc;

    use datafusion::datasource::MemTable;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::span::Link;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use skein_model::{ConvertLimits, span_links_schema, span_schema, spans_to_arrow};

    use crate::test_support::{T1, get, test_config};
    use crate::{QueryEngine, Tables};

    #[tokio::test]
    async fn a_span_nobody_links_to_and_bad_ids() {
        let (_, _, full) = get(&format!("/api/v1/traces/{T1}")).await;
        let full: Value = serde_json::from_slice(&full).expect("json");
        let span = full["spans"][0]["spanId"].as_str().expect("id");
        let (status, _, body) = get(&format!("/api/v1/traces/{T1}/spans/{span}/linked_from")).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), json!({"spans": [], "truncated": false}));
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/spans/{}/linked_from", "0".repeat(16))).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&format!("/api/v1/traces/{T1}/spans/xyz/linked_from")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    const DAY_NS: u64 = 86_400 * 1_000_000_000;
    const BASE: u64 = 1_700_000_000_000_000_000;

    fn span(trace: u8, id: u8, start: u64, links: &[(u8, u8)]) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![id; 8],
            name: format!("op {id}"),
            start_time_unix_nano: start,
            end_time_unix_nano: start + 1_000,
            links: links
                .iter()
                .map(|&(t, s)| Link { trace_id: vec![t; 16], span_id: vec![s; 8], ..Default::default() })
                .collect(),
            ..Default::default()
        }
    }

    /// An engine over one shard holding `files` (each a batch of spans), with
    /// span links derived per file as storage does.
    fn engine(files: Vec<Vec<Span>>) -> QueryEngine {
        let batches: Vec<_> = files
            .into_iter()
            .map(|spans| {
                let request = ExportTraceServiceRequest {
                    resource_spans: vec![ResourceSpans {
                        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                        ..Default::default()
                    }],
                };
                spans_to_arrow(&request, &ConvertLimits::default(), 1).expect("converts").batch
            })
            .collect();
        let links = batches
            .iter()
            .map(|batch| skein_model::span_links::derive(std::slice::from_ref(batch)).expect("derives"))
            .collect();
        let table = |schema, batches| Arc::new(MemTable::try_new(schema, vec![batches]).expect("mem table")) as _;
        let tables = Tables {
            spans: vec![table(span_schema(), batches)],
            span_links: vec![table(span_links_schema(), links)],
            span_start_bounds: None,
            ..crate::test_support::mem_tables()
        };
        QueryEngine::new(&test_config(), tables).expect("engine")
    }

    #[tokio::test]
    async fn linking_spans_are_found_days_away_once_each() {
        let target = (0xaa, 0x01);
        let engine = engine(vec![
            vec![span(0xaa, 0x01, BASE, &[]), span(0xbb, 0x02, BASE + 7 * DAY_NS, &[target, target])],
            // A week before, and a span stored twice (a retried write).
            vec![span(0xcc, 0x03, BASE - 7 * DAY_NS, &[(0xaa, 0x09), target])],
            vec![span(0xbb, 0x02, BASE + 7 * DAY_NS, &[target]), span(0xdd, 0x04, BASE, &[(0xaa, 0x09)])],
        ]);
        let (linking, truncated) =
            engine.linked_from(&"aa".repeat(16), &"01".repeat(8)).await.expect("answers").expect("span stored");
        let ids: Vec<(String, String)> = linking.iter().map(|s| (s.trace_id.clone(), s.span_id.clone())).collect();
        assert_eq!(ids, [("bb".repeat(16), "02".repeat(8)), ("cc".repeat(16), "03".repeat(8))]);
        assert_eq!(linking[0].name, "op 2");
        assert!(!truncated);
        // A span that is not stored is not found, even when spans link to it.
        assert!(engine.linked_from(&"aa".repeat(16), &"09".repeat(8)).await.expect("answers").is_none());
    }

    #[tokio::test]
    async fn more_linking_spans_than_listed_are_flagged() {
        let target = (0xaa, 0x01);
        let linking: Vec<Span> = (1..=super::MAX_LINKING as u8 + 1).map(|i| span(0xbb, i, BASE, &[target])).collect();
        let engine = engine(vec![vec![span(0xaa, 0x01, BASE, &[])], linking]);
        let (listed, truncated) =
            engine.linked_from(&"aa".repeat(16), &"01".repeat(8)).await.expect("answers").expect("span stored");
        assert_eq!((listed.len(), truncated), (super::MAX_LINKING, true));
    }
}
