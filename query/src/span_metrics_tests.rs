//! `span_metrics`, `service_graph` and `duration_quantile` against the same
//! numbers computed by SQL over the raw spans.

use axum::http::StatusCode;
use serde_json::Value;

use crate::test_support::post_sql;

async fn rows(sql: &str) -> Vec<Value> {
    let (status, _, body) = post_sql(sql, None).await;
    assert_eq!(status, StatusCode::OK, "{sql}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<Value>(&body).expect("json")["rows"].as_array().expect("rows").clone()
}

#[tokio::test]
async fn span_metrics_equal_an_aggregate_over_spans() {
    let from_spans = rows(
        "SELECT service_name, name, kind, status_code, date_trunc('minute', start_time) AS minute, count(*), \
         sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END), sum(duration_ns), min(duration_ns), max(duration_ns) \
         FROM spans GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
    )
    .await;
    let from_metrics = rows(
        "SELECT service_name, name, kind, status_code, time, sum(calls), sum(errors), sum(duration_sum_ns), \
         min(duration_min_ns), max(duration_max_ns) FROM span_metrics GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
    )
    .await;
    assert!(from_spans.len() > 3, "the sample has several operations: {from_spans:?}");
    assert_eq!(from_metrics, from_spans);
}

#[tokio::test]
async fn service_graph_equals_a_join_of_spans_with_their_parents() {
    let from_spans = rows(
        "SELECT p.service_name, c.service_name, c.name, count(*), sum(CASE WHEN c.status_code = 'error' THEN 1 ELSE 0 END), \
         sum(c.duration_ns) FROM spans c JOIN spans p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id \
         WHERE p.service_name <> c.service_name GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await;
    let from_graph = rows(
        "SELECT client_service, server_service, server_operation, sum(calls), sum(errors), sum(duration_sum_ns) \
         FROM service_graph GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await;
    assert!(!from_spans.is_empty(), "the sample has calls across services");
    assert_eq!(from_graph, from_spans);
}

#[tokio::test]
async fn duration_quantiles_are_within_a_bucket_of_exact_ones() {
    let exact = rows(
        "SELECT service_name, approx_percentile_cont(duration_ns, 0.5), max(duration_ns) FROM spans \
         GROUP BY 1 ORDER BY 1",
    )
    .await;
    let estimated = rows(
        "SELECT service_name, duration_quantile(duration_histogram, 0.5), duration_quantile(duration_histogram, 1.0) \
         FROM span_metrics GROUP BY 1 ORDER BY 1",
    )
    .await;
    assert_eq!(exact.len(), estimated.len());
    for (exact, estimated) in exact.iter().zip(&estimated) {
        assert_eq!(exact[0], estimated[0]);
        let max = exact[2].as_f64().expect("max");
        let top = estimated[2].as_f64().expect("estimated max");
        // The top bucket's upper bound is at most one bucket (~9%) above the max.
        assert!(top >= max && top <= max * 1.1, "{exact:?} against {estimated:?}");
    }
}
