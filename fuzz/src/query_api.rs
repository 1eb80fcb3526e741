//! Requests through the query service's real routes over a real storage
//! (a temporary data directory holding the fixtures, part flushed to Parquet
//! and part still in the write buffer): SQL through the planner, the safety
//! checks and execution, and the parameters of search, metrics, logs and the
//! Tempo, Jaeger and Prometheus APIs. Malformed input must get a 4xx, never
//! a 5xx or a panic.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use prometheus_client::registry::Registry;
use skein_model::{ConvertLimits, ShardWriter, Signal, logs_to_arrow, metrics_to_arrow, spans_to_arrow};
use skein_query::{QueryConfig, QueryServer, Tables};
use skein_storage::{Storage, StorageConfig};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::fixtures::{self, TRACE_IDS};

const SHARDS: usize = 4;

struct QueryApi {
    runtime: Runtime,
    router: Router,
    _storage: Arc<Storage>,
    _data_dir: TempDir,
}

fn query_api() -> &'static QueryApi {
    static API: OnceLock<QueryApi> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = crate::runtime();
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let (storage, router) = runtime.block_on(async {
            let storage = Storage::open(
                StorageConfig { data_dir: data_dir.path().to_owned(), shards: SHARDS, ..StorageConfig::default() },
                &mut Registry::default(),
                CancellationToken::new(),
            )
            .await
            .expect("storage opens in a temporary directory");
            load_fixtures(&storage).await;
            let tables = Tables {
                spans: storage.span_tables(),
                metrics: storage.metric_tables(),
                span_metrics: storage.span_metrics_tables(),
                logs: storage.log_tables(),
                trace_parts: storage.trace_parts_tables(),
                span_links: storage.span_links_tables(),
                span_start_bounds: None,
            };
            let config = QueryConfig {
                listen: "127.0.0.1:0".parse().expect("address"),
                // Generous: a slow query is not what these targets look for,
                // and a timeout would be a 5xx-class answer.
                timeout: Duration::from_secs(60),
                ..QueryConfig::default()
            };
            let server = QueryServer::bind(config, tables, Registry::default()).await.expect("query service binds");
            (storage, server.router())
        });
        QueryApi { runtime, router, _storage: storage, _data_dir: data_dir }
    })
}

/// Writes the fixtures: spans and metrics flushed to Parquet, then logs and
/// the spans again left in the write buffer, so queries read both.
async fn load_fixtures(storage: &Storage) {
    let limits = ConvertLimits::default();
    let spans = spans_to_arrow(&fixtures::traces_request(), &limits, SHARDS).expect("fixture spans convert");
    let points = metrics_to_arrow(&fixtures::metrics_request(), &limits, SHARDS).expect("fixture points convert");
    let logs = logs_to_arrow(&fixtures::logs_request(), &limits, SHARDS).expect("fixture logs convert");
    let write = |signal, converted: &skein_model::ConvertedBatch| {
        let parts = converted.split_by_shard(SHARDS).expect("fixtures split by shard");
        async move {
            for (shard, batch) in parts {
                storage.write(signal, shard, batch).await.expect("fixture rows are written");
            }
        }
    };
    write(Signal::Spans, &spans).await;
    write(Signal::Metrics, &points).await;
    storage.flush_all().await.expect("fixtures flush");
    write(Signal::Logs, &logs).await;
    write(Signal::Spans, &spans).await;
}

fn answer(request: Request<Body>) -> (StatusCode, String) {
    let api = query_api();
    api.runtime.block_on(async {
        let response = api.router.clone().oneshot(request).await.expect("infallible");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
        (status, String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned())
    })
}

fn assert_not_server_error(what: &str, (status, body): (StatusCode, String)) {
    assert!(!status.is_server_error(), "{what}: answered {status}: {body}");
}

/// SQL the service must refuse: the seeds that are not expected to run.
const REFUSED_SQL: [&str; 2] = ["DROP TABLE spans", "COPY spans TO '/tmp/x.parquet'"];

const FORMATS: [&str; 4] = ["json", "csv", "ndjson", "arrow"];

/// The first byte picks the output format; the rest is the SQL text.
pub fn sql(data: &[u8]) {
    if let Some((sql, answer)) = sql_answer(data) {
        assert_not_server_error(&format!("sql {sql:?}"), answer);
    }
}

fn sql_answer(data: &[u8]) -> Option<(String, (StatusCode, String))> {
    let (&first, text) = data.split_first()?;
    let sql = String::from_utf8_lossy(text).into_owned();
    let body = serde_json::json!({ "sql": sql }).to_string();
    let format = FORMATS[usize::from(first) % FORMATS.len()];
    let request = Request::post(format!("/api/v1/sql?format={format}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .expect("request");
    Some((sql, answer(request)))
}

pub fn sql_seeds() -> Vec<Vec<u8>> {
    let trace = TRACE_IDS[0];
    [
        "SELECT count(*) FROM spans",
        "SELECT service_name, name, count(*) AS calls, approx_percentile_cont(duration_ns, 0.99) FROM spans GROUP BY 1, 2 ORDER BY calls DESC LIMIT 10",
        "SELECT span_attributes['http.route'] AS route, avg(duration_ns) FROM spans WHERE start_time > now() - INTERVAL '1 hour' GROUP BY route",
        "SELECT p.service_name AS caller, c.service_name AS callee, count(*) FROM spans c JOIN spans p ON c.trace_id = p.trace_id AND c.parent_span_id = p.span_id WHERE p.service_name <> c.service_name GROUP BY 1, 2",
        &format!("SELECT * FROM spans WHERE trace_id = '{trace}' ORDER BY start_time"),
        "SELECT * FROM traces ORDER BY start_time DESC LIMIT 20",
        "SELECT metric_name, count(*) FROM metrics GROUP BY metric_name",
        "SELECT * FROM logs WHERE severity_number >= 17 LIMIT 5",
        "SELECT * FROM span_metrics LIMIT 3",
        "SELECT * FROM service_graph",
        "SELECT table_name, column_name FROM information_schema.columns",
        "EXPLAIN SELECT trace_id FROM spans WHERE duration_ns > 1000000 UNION ALL SELECT trace_id FROM traces",
        "WITH t AS (SELECT trace_id, max(duration_ns) d FROM spans GROUP BY trace_id) SELECT * FROM t WHERE d > (SELECT avg(duration_ns) FROM spans)",
        "SELECT name, row_number() OVER (PARTITION BY trace_id ORDER BY start_time) FROM spans",
        "SELECT unnest(events) FROM spans",
    ]
    .iter()
    .chain(&REFUSED_SQL)
    .enumerate()
    .map(|(i, sql)| [vec![i as u8], sql.as_bytes().to_vec()].concat())
    .collect()
}

/// The GET endpoints whose parameters are fuzzed; `{}` takes a fuzzed path
/// segment.
const ENDPOINTS: [&str; 21] = [
    "/api/v1/search",
    "/api/v1/metrics/query_range",
    "/api/v1/service_stats",
    "/api/v1/service_graph",
    "/api/v1/logs",
    "/api/v1/logs/volume",
    "/api/v1/metrics",
    "/api/v1/metrics/{}/series",
    "/api/v1/metrics/{}/exemplars",
    "/api/v1/traces/{}",
    "/api/v1/traces/{}/outline",
    "/api/v1/traces/0af7651916cd43dd8448eb211c80319c/spans/{}/linked_from",
    "/api/v1/services/{}/operations",
    "/api/search",
    "/api/v2/search/tag/{}/values",
    "/api/v1/query_range",
    "/api/v1/query",
    "/api/v1/series",
    "/jaeger/api/traces",
    "/api/v1/query_exemplars",
    "/api/v1/traces/{}/summary",
];

/// Percent-encodes all but unreserved characters, so the fuzzer works on
/// decoded text.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &byte in bytes {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The query string of tab-separated `name=value` text, each part
/// percent-encoded (so a value may hold `&` and `=`, as TraceQL does).
fn encode_query(text: &[u8]) -> String {
    let pairs = text.split(|&b| b == b'\t').map(|pair| match pair.iter().position(|&b| b == b'=') {
        Some(at) => format!("{}={}", encode(&pair[..at]), encode(&pair[at + 1..])),
        None => encode(pair),
    });
    pairs.collect::<Vec<_>>().join("&")
}

/// The first byte picks the endpoint; the rest is `segment\nquery`, or the
/// query alone where the endpoint takes no segment; the query is
/// tab-separated `name=value` text.
pub fn query_params(data: &[u8]) {
    if let Some((uri, answer)) = params_answer(data) {
        assert_not_server_error(&uri, answer);
    }
}

fn params_answer(data: &[u8]) -> Option<(String, (StatusCode, String))> {
    let (&first, rest) = data.split_first()?;
    let endpoint = ENDPOINTS[usize::from(first) % ENDPOINTS.len()];
    let (segment, query) = match (endpoint.contains("{}"), rest.iter().position(|&b| b == b'\n')) {
        (true, Some(at)) => (&rest[..at], &rest[at + 1..]),
        (true, None) => (rest, &[][..]),
        (false, _) => (&[][..], rest),
    };
    let path = endpoint.replace("{}", &encode(segment));
    let uri = format!("{path}?{}", encode_query(query));
    let request = Request::get(&uri).body(Body::empty()).expect("a percent-encoded uri parses");
    let answer = answer(request);
    Some((uri, answer))
}

pub fn query_params_seeds() -> Vec<Vec<u8>> {
    let seed = |endpoint: &str, segment: &str, query: &str| {
        let index = ENDPOINTS.iter().position(|e| *e == endpoint).expect("a listed endpoint");
        // Seeds are written as query strings; `%%` stands for TraceQL's `&&`.
        let query = query.replace('&', "\t").replace("%%", "&&");
        let rest = if endpoint.contains("{}") { format!("{segment}\n{query}") } else { query };
        [vec![index as u8], rest.into_bytes()].concat()
    };
    let (start, end) = ("2023-11-14T22:00:00Z", "2023-11-14T23:00:00Z");
    vec![
        seed(
            ENDPOINTS[0],
            "",
            &format!(
                "service=checkout&name=charge&tags=http.route=/checkout&min_duration=10ms&max_duration=2s&status=error&start={start}&end={end}&limit=20"
            ),
        ),
        seed(ENDPOINTS[0], "", "limit=5&status=ok&attr=http.status_code=200"),
        seed(
            ENDPOINTS[1],
            "",
            &format!(
                "metric=http.duration&aggregation=quantile&quantile=0.99&step=10s&group_by=http.route&match=host=host-a&start={start}&end={end}"
            ),
        ),
        seed(ENDPOINTS[1], "", "metric=http.requests&aggregation=rate&step=1m"),
        seed(ENDPOINTS[2], "", &format!("service=checkout&start={start}&end={end}&step=1m")),
        seed(ENDPOINTS[3], "", &format!("start={start}&end={end}")),
        seed(ENDPOINTS[4], "", "service=payments&severity=error&q=declined&limit=10"),
        seed(ENDPOINTS[5], "", "step=1m"),
        seed(ENDPOINTS[6], "", "limit=10"),
        seed(ENDPOINTS[7], "http.duration", "match=host=host-a"),
        seed(ENDPOINTS[8], "http.duration", "match=http.route=/checkout&limit=5"),
        seed(ENDPOINTS[9], TRACE_IDS[0], "format=otlp"),
        seed(ENDPOINTS[10], TRACE_IDS[1], ""),
        seed(ENDPOINTS[11], "0000000000000101", ""),
        seed(ENDPOINTS[12], "checkout", ""),
        seed(
            ENDPOINTS[13],
            "",
            "q={ resource.service.name = \"checkout\" %% duration > 100ms %% status = error }&limit=20&spss=3",
        ),
        seed(ENDPOINTS[14], "resource.service.name", "q={}"),
        seed(
            ENDPOINTS[15],
            "",
            "query=histogram_quantile(0.9, sum by (le) (rate(http_duration_bucket[5m])))&start=1700000000&end=1700003600&step=15",
        ),
        seed(ENDPOINTS[16], "", "query=sum(http_requests_total{host=~\"host-.*\"})&time=1700000060"),
        seed(ENDPOINTS[17], "", "match[]=cpu_usage&start=1700000000"),
        seed(
            ENDPOINTS[18],
            "",
            "service=checkout&operation=charge&tags={\"http.route\":\"/checkout\"}&minDuration=1ms&limit=20&lookback=1h",
        ),
        seed(ENDPOINTS[19], "", "query=http_duration_bucket&start=1700000000&end=1700003600"),
        seed(ENDPOINTS[10], TRACE_IDS[1], "max_spans=1&reveal=0000000000000202&find=a&critical_path=true"),
        seed(ENDPOINTS[10], TRACE_IDS[1], "under=0000000000000201&max_spans=2"),
        seed(ENDPOINTS[20], TRACE_IDS[0], ""),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Otherwise a wrong column, parameter or path would make every input
    /// a 4xx and the targets would reach little beyond the checks.
    #[test]
    fn every_seed_is_answered() {
        let mut wrong = Vec::new();
        for seed in sql_seeds() {
            let (sql, (status, body)) = sql_answer(&seed).expect("a seed");
            let expected = if REFUSED_SQL.contains(&sql.as_str()) { StatusCode::BAD_REQUEST } else { StatusCode::OK };
            if status != expected {
                wrong.push(format!("{sql}: {status}: {body}"));
            }
        }
        for seed in query_params_seeds() {
            let (uri, (status, body)) = params_answer(&seed).expect("a seed");
            if status != StatusCode::OK {
                wrong.push(format!("{uri}: {status}: {body}"));
            }
        }
        assert!(wrong.is_empty(), "seeds not answered as expected:\n{}", wrong.join("\n"));
    }
}
