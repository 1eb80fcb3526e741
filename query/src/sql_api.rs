//! `POST /api/v1/sql`: one read-only SQL statement over `spans`, `metrics`
//! and the metric views, answered as JSON, CSV, NDJSON or an Arrow IPC
//! stream (`?format=`).

use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use crate::QueryError;
use crate::format::OutputFormat;
use crate::params::Params;
use crate::server::AppState;
use crate::tenancy::TenantState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlRequest {
    sql: String,
}

pub(crate) async fn post_sql(
    TenantState(state): TenantState,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    state.observe("sql", sql_response(&state, &uri, body)).await
}

async fn sql_response(
    state: &AppState,
    uri: &Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, QueryError> {
    let params = Params::from_uri(uri)?;
    let format = match params.only(&["format"])?.single("format")? {
        None => OutputFormat::default(),
        Some(name) => OutputFormat::parse(name)?,
    };
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            QueryError::BodyTooLarge { limit: state.config.max_body_bytes }
        } else {
            QueryError::InvalidRequest(rejection.body_text())
        }
    })?;
    let request: SqlRequest = serde_json::from_slice(&body).map_err(|e| {
        QueryError::InvalidRequest(format!("the body must be JSON like {{\"sql\": \"SELECT ...\"}}: {e}"))
    })?;
    let result = state.engine.sql(&request.sql).await?;
    // Encoding up to max_result_rows rows is CPU work; keep it off the I/O threads.
    let encoded = tokio::task::spawn_blocking(move || format.encode(&result))
        .await
        .map_err(|e| QueryError::Encode(e.to_string()))??;
    Ok(([(header::CONTENT_TYPE, format.content_type())], encoded).into_response())
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use datafusion::arrow::ipc::reader::StreamReader;
    use serde_json::{Value, json};

    use crate::QueryConfig;
    use crate::test_support::{T1, T3, post_sql, request, test_config};

    #[tokio::test]
    async fn answers_json_with_exact_types() {
        let sql = format!(
            "SELECT name, duration_ns, start_time, span_attributes FROM spans WHERE trace_id = '{T1}' ORDER BY start_time"
        );
        let (status, headers, body) = post_sql(&sql, None).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert_eq!(headers["content-type"], "application/json");
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["rowCount"], 2);
        assert_eq!(json["columns"][0], json!({"name": "name", "type": "Utf8"}));
        assert_eq!(json["columns"][1]["type"], "Int64");
        assert_eq!(
            json["rows"][0],
            json!(["POST /checkout", 500_000_000, "2023-11-14T22:13:20.000000000Z", {"http.route": "/checkout", "http.status_code": "200"}])
        );
        assert_eq!(json["rows"][1][0], "charge");
    }

    /// The example queries of the README run, and give the expected answers.
    #[tokio::test]
    async fn readme_examples_run() {
        let examples = [
            "SELECT span_attributes['http.route'] AS route, approx_percentile_cont(duration_ns, 0.99) / 1e6 AS p99_ms, count(*) AS requests FROM spans WHERE kind = 'server' GROUP BY 1 ORDER BY p99_ms DESC LIMIT 10",
            "SELECT service_name, avg(CASE WHEN status_code = 'error' THEN 1.0 ELSE 0.0 END) AS error_rate, count(*) AS spans FROM spans GROUP BY service_name ORDER BY error_rate DESC, service_name",
            "SELECT service_name, name, approx_percentile_cont(duration_ns, 0.5) / 1e6 AS p50_ms, approx_percentile_cont(duration_ns, 0.95) / 1e6 AS p95_ms, approx_percentile_cont(duration_ns, 0.99) / 1e6 AS p99_ms FROM spans GROUP BY 1, 2 ORDER BY p99_ms DESC",
            "SELECT span_id, parent_span_id, service_name, name, duration_ns / 1e6 AS ms FROM spans WHERE trace_id = '5b8efff798038103d269b633813fc60c' ORDER BY start_time",
            "SELECT date_trunc('minute', start_time) AS minute, count(*) AS requests FROM spans WHERE service_name = 'checkout' AND kind = 'server' AND start_time > now() - INTERVAL '1 hour' GROUP BY 1 ORDER BY 1",
            "SELECT span_attributes['http.route'] AS route, count(*) AS errors FROM spans WHERE CAST(span_attributes['http.response.status_code'] AS INT) >= 500 GROUP BY 1 ORDER BY errors DESC",
            "SELECT span_attributes['db.system.name'] AS db, span_attributes['db.query.text'] AS query, max(duration_ns) / 1e6 AS max_ms, count(*) AS calls FROM spans WHERE span_attributes['db.system.name'] IS NOT NULL GROUP BY 1, 2 ORDER BY max_ms DESC LIMIT 20",
            "SELECT client_service AS caller, server_service AS callee, sum(calls) AS calls, sum(errors) AS errors, duration_quantile(duration_histogram, 0.95) / 1e6 AS p95_ms FROM service_graph GROUP BY 1, 2 ORDER BY calls DESC",
            "SELECT service_name, e['attributes']['exception.type'] AS exception, count(*) AS n FROM (SELECT service_name, unnest(events) AS e FROM spans) WHERE e['name'] = 'exception' GROUP BY 1, 2 ORDER BY n DESC",
            "SELECT trace_id, count(*) AS spans, (max(end_time) - min(start_time)) AS duration FROM spans GROUP BY trace_id ORDER BY spans DESC, trace_id LIMIT 10",
            "SELECT service_name, sum(errors) * 1.0 / sum(calls) AS error_rate, duration_quantile(duration_histogram, 0.99) / 1e6 AS p99_ms, sum(calls) AS calls FROM span_metrics GROUP BY 1 ORDER BY error_rate DESC, service_name",
            "SELECT time AS minute, sum(calls) AS requests, duration_quantile(duration_histogram, 0.95) / 1e6 AS p95_ms FROM span_metrics WHERE service_name = 'checkout' AND kind = 'server' AND time > now() - INTERVAL '1 hour' GROUP BY 1 ORDER BY 1",
            "SELECT trace_id, root_service_name, root_name, duration_ns / 1e6 AS ms, span_count FROM traces WHERE NOT complete ORDER BY duration_ns DESC LIMIT 20",
        ];
        let mut answers = Vec::new();
        for sql in examples {
            let (status, _, body) = post_sql(sql, None).await;
            assert_eq!(status, StatusCode::OK, "{sql}: {}", String::from_utf8_lossy(&body));
            answers.push(serde_json::from_slice::<Value>(&body).expect("json")["rows"].clone());
        }
        assert_eq!(answers[0], json!([["/checkout", 500.0, 1], ["/cart", 50.0, 1]]));
        assert_eq!(answers[1][0], json!(["payments", 1.0, 1]));
        let first = |answer: &Value, n: usize| answer[0].as_array().expect("row")[..n].to_vec();
        assert_eq!(first(&answers[7], 4), vec![json!("checkout"), json!("payments"), json!(1), json!(1)]);
        assert_eq!(first(&answers[10], 2), first(&answers[1], 2), "error rates from span metrics and from spans agree");
        assert_eq!(answers[9][0][0], T1);
        assert_eq!(answers[9][0][1], 2);
        assert_eq!(answers[12], json!([[T3, "checkout", "process", 2000.0, 2]]), "trace 3 has no root");
    }

    /// Each row of `traces` (merged from per-batch parts) is what an
    /// aggregate over the trace's spans gives.
    #[tokio::test]
    async fn traces_table_summarizes_each_trace_like_its_spans() {
        let from_traces = "SELECT trace_id, start_time, end_time, duration_ns, root_service_name, root_name, \
             services, span_count, error_count, has_root FROM traces ORDER BY trace_id";
        let from_spans = "SELECT trace_id, min(start_time), max(end_time), \
             CAST(max(end_time) AS BIGINT) - CAST(min(start_time) AS BIGINT), \
             first_value(service_name ORDER BY parent_span_id IS NOT NULL, start_time, span_id), \
             first_value(name ORDER BY parent_span_id IS NOT NULL, start_time, span_id), \
             array_sort(array_distinct(array_agg(service_name))), count(*), \
             sum(CASE WHEN status_code = 'error' THEN 1 ELSE 0 END), bool_or(parent_span_id IS NULL) \
             FROM spans GROUP BY trace_id ORDER BY trace_id";
        let mut answers = Vec::new();
        for sql in [from_traces, from_spans] {
            let (status, _, body) = post_sql(sql, None).await;
            assert_eq!(status, StatusCode::OK, "{sql}: {}", String::from_utf8_lossy(&body));
            answers.push(serde_json::from_slice::<Value>(&body).expect("json")["rows"].clone());
        }
        assert_eq!(answers[0].as_array().map(Vec::len), Some(3), "{}", answers[0]);
        assert_eq!(answers[0], answers[1]);
    }

    #[tokio::test]
    async fn map_access_works_in_sql() {
        let (status, _, body) = post_sql(
            "SELECT span_attributes['http.route'] AS route, count(*) AS n FROM spans \
             WHERE span_attributes['http.route'] IS NOT NULL GROUP BY 1 ORDER BY 1",
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["rows"], json!([["/cart", 1], ["/checkout", 1]]));
    }

    #[tokio::test]
    async fn answers_csv_ndjson_and_arrow() {
        let sql = format!("SELECT name, duration_ns FROM spans WHERE trace_id = '{T1}' ORDER BY start_time");
        let (status, headers, body) = post_sql(&sql, Some("csv")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
        assert_eq!(
            String::from_utf8(body.to_vec()).expect("utf8"),
            "name,duration_ns\nPOST /checkout,500000000\ncharge,300000000\n"
        );

        let (status, headers, body) = post_sql(&sql, Some("ndjson")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/x-ndjson");
        assert_eq!(
            String::from_utf8(body.to_vec()).expect("utf8"),
            "{\"name\":\"POST /checkout\",\"duration_ns\":500000000}\n{\"name\":\"charge\",\"duration_ns\":300000000}\n"
        );

        let (status, headers, body) = post_sql(&sql, Some("arrow")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers["content-type"], "application/vnd.apache.arrow.stream");
        let reader = StreamReader::try_new(std::io::Cursor::new(body.to_vec()), None).expect("arrow stream");
        assert_eq!(reader.schema().field(1).name(), "duration_ns");
        let rows: usize = reader.map(|b| b.expect("batch").num_rows()).sum();
        assert_eq!(rows, 2);

        let (status, _, _) = post_sql(&sql, Some("xml")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn refusals_and_bad_sql_are_400_with_a_message() {
        for sql in [
            "CREATE TABLE t (x INT)",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "INSERT INTO spans SELECT * FROM spans",
            "COPY spans TO '/tmp/spans.parquet'",
            "DROP TABLE spans",
            "SET datafusion.execution.batch_size = 1",
            "SELEC nonsense",
            "SELECT no_such_column FROM spans",
        ] {
            let (status, _, body) = post_sql(sql, None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{sql}");
            let json: Value = serde_json::from_slice(&body).expect("json");
            assert_eq!(json["error"]["code"], "invalid_argument", "{sql}");
            assert!(!json["error"]["message"].as_str().expect("message").is_empty());
        }
    }

    #[tokio::test]
    async fn bad_bodies_are_refused() {
        let app = crate::server::test_router(test_config());
        let (status, _, body) = request(app, "POST", "/api/v1/sql", "not json".into()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("must be JSON"));

        let config = QueryConfig { max_body_bytes: 1024, ..test_config() };
        let big = serde_json::to_string(&json!({ "sql": format!("SELECT '{}'", "x".repeat(2000)) })).expect("json");
        let (status, _, body) = request(crate::server::test_router(config), "POST", "/api/v1/sql", big).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "payload_too_large");
    }

    #[tokio::test]
    async fn limits_map_to_their_classes() {
        let config = QueryConfig { timeout: std::time::Duration::from_millis(1), ..test_config() };
        let sql = json!({ "sql": "SELECT count(*) FROM generate_series(1, 100000000) a(x) CROSS JOIN generate_series(1, 100000000) b(y)" });
        let (status, _, body) =
            request(crate::server::test_router(config), "POST", "/api/v1/sql", sql.to_string()).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(serde_json::from_slice::<Value>(&body).expect("json")["error"]["code"], "timeout");

        let config = QueryConfig { max_result_rows: 2, ..test_config() };
        let sql = json!({ "sql": "SELECT * FROM spans" });
        let (status, _, body) =
            request(crate::server::test_router(config), "POST", "/api/v1/sql", sql.to_string()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "query_too_expensive");
        assert!(json["error"]["message"].as_str().expect("message").contains("max_result_rows"));
    }
}
