//! End-to-end tests of the metric endpoints and SQL tables through the
//! router, over the fixture metrics of `test_support` (two in-memory shards
//! filled by `metrics_to_arrow`, as ingest fills storage).

use axum::http::StatusCode;
use serde_json::{Value, json};

use skein_model::metric_schema;

use super::catalog::{SeriesInfo, SeriesRow};
use super::*;
use crate::QueryConfig;
use crate::test_support::{BASE_SECONDS, get, post_sql, recording_metrics_engine, request, test_config};

/// `BASE` in unix milliseconds, as range points carry it.
const BASE_MS: i64 = BASE_SECONDS * 1000;

async fn get_json(uri: &str) -> Value {
    let (status, _, body) = get(uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("json")
}

/// `query_range` with `start`/`end` in seconds after `BASE`.
async fn range(query: &str, start: i64, end: i64) -> Value {
    get_json(&format!("/api/v1/metrics/query_range?{query}&start={}&end={}", BASE_SECONDS + start, BASE_SECONDS + end))
        .await
}

/// The points of every series, with values rounded to 1e-9.
fn points(json: &Value) -> Vec<Vec<(i64, f64)>> {
    json["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| {
            s["points"]
                .as_array()
                .expect("points")
                .iter()
                .map(|p| {
                    let value = p[1].as_f64().expect("a number");
                    ((p[0].as_i64().expect("ms") - BASE_MS) / 1000, (value * 1e9).round() / 1e9)
                })
                .collect()
        })
        .collect()
}

async fn error(uri: &str, config: QueryConfig) -> (StatusCode, String, String) {
    let (status, _, body) = request(crate::server::test_router(config), "GET", uri, String::new()).await;
    let json: Value = serde_json::from_slice(&body).expect("json");
    let code = json["error"]["code"].as_str().expect("code").to_owned();
    (status, code, json["error"]["message"].as_str().expect("message").to_owned())
}

#[tokio::test]
async fn lists_metrics_with_types_units_and_series_counts() {
    let json = get_json("/api/v1/metrics").await;
    assert_eq!(
        json,
        json!({
            "metrics": [
                {"name": "http.server.duration", "type": "histogram", "unit": "ms", "description": "HTTP request duration", "series": 2},
                {"name": "http.server.requests", "type": "sum", "unit": "{request}", "description": "HTTP requests", "series": 3},
                {"name": "job.latency", "type": "summary", "unit": "ms", "description": "Job latency", "series": 1},
                {"name": "queue.processed", "type": "sum", "unit": "{job}", "description": "Jobs processed", "series": 1},
                {"name": "rpc.duration", "type": "exponential_histogram", "unit": "s", "description": "RPC duration", "series": 1},
                {"name": "system.cpu.utilization", "type": "gauge", "unit": "1", "description": "CPU utilization", "series": 2},
            ],
            "truncated": false,
        })
    );
    let limited = get_json("/api/v1/metrics?limit=2").await;
    assert_eq!(limited["metrics"].as_array().expect("metrics").len(), 2);
    assert_eq!(limited["truncated"], true);
    // From 45 s on: host-b's CPU and the queue have no points any more.
    let late = get_json(&format!("/api/v1/metrics?start={}", BASE_SECONDS + 45)).await;
    let names: Vec<(&str, u64)> = late["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| (m["name"].as_str().expect("name"), m["series"].as_u64().expect("count")))
        .collect();
    assert_eq!(
        names,
        vec![
            ("http.server.duration", 2),
            ("http.server.requests", 3),
            ("job.latency", 1),
            ("rpc.duration", 1),
            ("system.cpu.utilization", 1)
        ]
    );
    let before = get_json(&format!("/api/v1/metrics?end={}", BASE_SECONDS - 1)).await;
    assert_eq!(before, json!({"metrics": [], "truncated": false}));
}

#[tokio::test]
async fn lists_series_with_labels_filtered_by_matchers() {
    let json = get_json("/api/v1/metrics/http.server.requests/series").await;
    assert_eq!(json["truncated"], false);
    let series: Vec<SeriesInfo> = json["series"]
        .as_array()
        .expect("series")
        .iter()
        .map(|s| SeriesInfo {
            series_id: s["series_id"].as_str().expect("id").to_owned(),
            labels: serde_json::from_value(s["labels"].clone()).expect("labels"),
        })
        .collect();
    let ids: Vec<&str> = series.iter().map(|s| s.series_id.as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by ID: {ids:?}");
    assert!(ids.iter().all(|id| id.len() == 16 && id.chars().all(|c| c.is_ascii_hexdigit())), "{ids:?}");
    let mut label_sets: Vec<Value> =
        json["series"].as_array().expect("series").iter().map(|s| s["labels"].clone()).collect();
    label_sets.sort_by_key(|l| l.to_string());
    let labels = |host: &str, route: &str| json!({"deployment.environment": "prod", "host.name": host, "http.route": route, "service.name": "api"});
    assert_eq!(label_sets, vec![labels("host-a", "/cart"), labels("host-a", "/checkout"), labels("host-b", "/cart")]);

    let count = |json: &Value| json["series"].as_array().expect("series").len();
    assert_eq!(count(&get_json("/api/v1/metrics/http.server.requests/series?match[]=http.route=/cart").await), 2);
    let not_a = get_json("/api/v1/metrics/http.server.requests/series?match=host.name!%3Dhost-a").await;
    assert_eq!(not_a["series"][0]["labels"], labels("host-b", "/cart"));
    assert_eq!(count(&not_a), 1);
    let both = "/api/v1/metrics/http.server.requests/series?match=http.route=/cart&match=host.name=host-a";
    assert_eq!(count(&get_json(both).await), 1);
    let limited = get_json("/api/v1/metrics/http.server.requests/series?match=service.name=api&limit=1").await;
    assert_eq!((count(&limited), &limited["truncated"]), (1, &json!(true)));
    // `label=` matches series without the label.
    assert_eq!(count(&get_json("/api/v1/metrics/http.server.requests/series?match=http.route=").await), 0);
    assert_eq!(count(&get_json("/api/v1/metrics/queue.processed/series?match=http.route=").await), 1);
    let worker = get_json("/api/v1/metrics/queue.processed/series?match=service.name=worker").await;
    assert_eq!(
        worker["series"][0]["labels"],
        json!({"deployment.environment": "staging", "host.name": "host-c", "service.name": "worker"})
    );
    let unknown = get_json("/api/v1/metrics/no.such.metric/series").await;
    assert_eq!(unknown, json!({"series": [], "truncated": false}));
}

/// A golden answer: CPU by host, last sample per 20 s step, averaged.
#[tokio::test]
async fn query_range_gauge_golden() {
    let json = range("metric=system.cpu.utilization&aggregation=avg&group_by=host.name&step=20s", 0, 60).await;
    assert_eq!(
        json,
        json!({
            "metric": "system.cpu.utilization",
            "type": "gauge",
            "aggregation": "avg",
            "step_ms": 20000,
            "series": [
                {"labels": {"host.name": "host-a"},
                 "points": [[BASE_MS, 0.5], [BASE_MS + 20000, 0.7], [BASE_MS + 40000, 0.6], [BASE_MS + 60000, 0.5]]},
                // host-b stops after 30 s: its last step has no point.
                {"labels": {"host.name": "host-b"},
                 "points": [[BASE_MS, 0.2], [BASE_MS + 20000, 0.2], [BASE_MS + 40000, 0.1]]},
            ],
        })
    );
}

/// A golden answer: request rate by route from a cumulative counter with a reset.
#[tokio::test]
async fn query_range_rate_golden() {
    let json = range("metric=http.server.requests&aggregation=rate&group_by=http.route&step=10s", 10, 60).await;
    let at = |s: i64| BASE_MS + s * 1000;
    assert_eq!(
        json,
        json!({
            "metric": "http.server.requests",
            "type": "sum",
            "aggregation": "rate",
            "step_ms": 10000,
            "series": [
                // host-a restarted at 35 s and counted 5 by 40 s: 1/s over the 5 s it ran.
                {"labels": {"http.route": "/cart"},
                 "points": [[at(10), 2.0], [at(20), 3.0], [at(30), 4.0], [at(40), 2.0], [at(50), 3.0], [at(60), 3.0]]},
                {"labels": {"http.route": "/checkout"},
                 "points": [[at(10), 0.0], [at(20), 0.5], [at(30), 0.5], [at(40), 0.0], [at(50), 1.0], [at(60), 0.0]]},
            ],
        })
    );
}

#[tokio::test]
async fn query_range_sums_filters_and_delta_rates() {
    // Sum of the counters' last values at 60 s: 45 + 30 + 1060.
    let json = range("metric=http.server.requests&aggregation=sum&step=60s", 60, 60).await;
    assert_eq!(points(&json), vec![vec![(60, 1135.0)]]);
    assert_eq!(json["series"][0]["labels"], json!({}));
    // Matchers on a resource attribute and a point attribute.
    let json = range("metric=system.cpu.utilization&aggregation=max&match=host.name=host-b&step=10s", 0, 60).await;
    assert_eq!(points(&json), vec![vec![(0, 0.2), (10, 0.3), (20, 0.2), (30, 0.1)]]);
    let json = range("metric=http.server.requests&aggregation=min&match=http.route!=/cart&step=60s", 60, 60).await;
    assert_eq!(points(&json), vec![vec![(60, 30.0)]]);
    let json = range("metric=system.cpu.utilization&aggregation=sum&match=cpu.mode!=user&step=10s", 0, 60).await;
    assert_eq!(json["type"], Value::Null);
    assert_eq!(json["series"], json!([]));
    // A delta counter: the sum of the deltas of each step, per second.
    let json = range("metric=queue.processed&aggregation=rate&match=service.name=worker&step=10s", 10, 40).await;
    assert_eq!(points(&json), vec![vec![(10, 0.5), (20, 1.0), (30, 0.0), (40, 2.0)]]);
    // Observations per second from histogram counts: (40 + 10) / 30 s, then (60 + 10) / 30 s.
    let json = range("metric=http.server.duration&aggregation=rate&step=30s", 30, 60).await;
    assert_eq!(
        points(&json),
        vec![vec![(30, (50.0_f64 / 30.0 * 1e9).round() / 1e9), (60, (70.0_f64 / 30.0 * 1e9).round() / 1e9)]]
    );
    // Nothing in the range.
    let json = range("metric=system.cpu.utilization&aggregation=avg&step=10s", 1000, 1100).await;
    assert_eq!((&json["type"], &json["series"]), (&Value::Null, &json!([])));
}

#[tokio::test]
async fn query_range_quantiles_of_histograms_and_summaries() {
    // Merged increments of both hosts, interpolated; min 1 / max 400 bound the outer buckets.
    let json = range("metric=http.server.duration&aggregation=quantile&quantile=0.5&step=30s", 30, 60).await;
    assert_eq!((&json["quantile"], &json["type"]), (&json!(0.5), &json!("histogram")));
    assert_eq!(points(&json), vec![vec![(30, 26.0), (60, 42.0)]]);
    let json = range("metric=http.server.duration&aggregation=quantile&quantile=0.95&step=30s", 60, 60).await;
    assert_eq!(points(&json), vec![vec![(60, 295.0)]]);
    // Exponential buckets at scales 1 and 0, merged at scale 0.
    let json = range("metric=rpc.duration&aggregation=quantile&quantile=0.5&step=60s", 60, 60).await;
    assert_eq!(points(&json), vec![vec![(60, 2.2)]]);
    let json = range("metric=rpc.duration&aggregation=quantile&quantile=0.25&step=60s", 60, 60).await;
    assert_eq!(points(&json), vec![vec![(60, 1.125)]]);
    // Summaries: the stored quantile.
    let json = range("metric=job.latency&aggregation=quantile&quantile=0.95&step=30s", 30, 60).await;
    assert_eq!(points(&json), vec![vec![(30, 9.0), (60, 11.0)]]);
}

#[tokio::test]
async fn query_range_pushes_name_time_and_matchers_down_to_every_shard() {
    let (engine, shards) = recording_metrics_engine();
    let second = 1_000_000_000;
    let query = RangeQuery {
        metric: "http.server.requests".into(),
        matchers: vec![LabelMatcher::parse("http.route=/cart").expect("matcher")],
        aggregation: Aggregation::Rate,
        group_by: Vec::new(),
        start_ns: (BASE_SECONDS + 10) * second,
        end_ns: (BASE_SECONDS + 60) * second,
        step_ns: 10 * second,
    };
    let result = engine.query_range(&query).await.expect("runs");
    let values: Vec<f64> = result.series[0].points.iter().map(|(_, v)| *v).collect();
    assert_eq!(values, vec![2.0, 3.0, 4.0, 2.0, 3.0, 3.0]);
    for shard in &shards {
        let seen = shard.seen.lock().expect("lock");
        assert_eq!(seen.len(), 2, "one scan for the series, one for their points");
        for (_, filters, _) in seen.iter() {
            let text = filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" AND ");
            for part in ["metric_name = Utf8(\"http.server.requests\")", "time >", "time <=", "http.route"] {
                assert!(text.contains(part), "{part} is not pushed down: {text}");
            }
        }
        let schema = metric_schema();
        let points: Vec<&str> =
            seen[1].0.as_ref().expect("projected").iter().map(|i| schema.field(*i).name().as_str()).collect();
        assert!(points.contains(&"value"), "{points:?}");
        for unneeded in ["bucket_counts", "exemplars", "scope_attributes", "quantile_values"] {
            assert!(!points.contains(&unneeded), "{unneeded} is read: {points:?}");
        }
    }
}

#[tokio::test]
async fn query_range_refuses_bad_requests_with_400() {
    let base = format!("start={BASE_SECONDS}&end={}", BASE_SECONDS + 60);
    let cases = [
        ("metric=system.cpu.utilization&aggregation=rate", "a gauge has no rate"),
        ("metric=http.server.requests&aggregation=quantile&quantile=0.5", "\"http.server.requests\" is a sum"),
        ("metric=http.server.duration&aggregation=avg", "use rate or quantile"),
        ("metric=system.cpu.utilization&aggregation=avg&step=-1s", "step must be"),
        ("aggregation=avg", "metric is required"),
        ("metric=m&aggregation=p99", "unknown aggregation"),
        ("metric=m&aggregation=avg&match=nope", "match must be"),
    ];
    for (query, message) in cases {
        let (status, code, text) = error(&format!("/api/v1/metrics/query_range?{query}&{base}"), test_config()).await;
        assert_eq!((status, code.as_str()), (StatusCode::BAD_REQUEST, "invalid_argument"), "{query}: {text}");
        assert!(text.contains(message), "{query}: {text}");
    }
    for uri in ["/api/v1/metrics?limit=0", "/api/v1/metrics?match=a=b", "/api/v1/metrics/x/series?start=soon"] {
        let (status, _, text) = error(uri, test_config()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {text}");
    }
}

#[tokio::test]
async fn query_range_limits_are_422() {
    let uri = format!(
        "/api/v1/metrics/query_range?metric=http.server.requests&aggregation=rate&step=10s&start={BASE_SECONDS}&end={}",
        BASE_SECONDS + 60
    );
    let config = QueryConfig { metrics_max_series: 2, metrics_default_limit: 2, ..test_config() };
    let (status, code, text) = error(&uri, config).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "query_too_expensive"));
    assert!(text.contains("2 series") && text.contains("query.metrics_max_series"), "{text}");
    let config = QueryConfig { metrics_max_points: 10, ..test_config() };
    let (status, _, text) = error(&uri, config).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text.contains("10 data points") && text.contains("query.metrics_max_points"), "{text}");
    let config = QueryConfig { metrics_max_steps: 5, ..test_config() };
    let (status, _, text) = error(&uri, config).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text.contains("query.metrics_max_steps"), "{text}");
}

#[test]
fn a_metric_with_several_types_is_refused() {
    let row = |kind: &str| SeriesRow {
        info: SeriesInfo { series_id: "0".into(), labels: Labels::new() },
        types: (kind.to_owned(), kind.to_owned()),
    };
    assert_eq!(single_type("m", &[]).expect("no series"), None);
    assert_eq!(single_type("m", &[row("sum"), row("sum")]).expect("one type"), Some(MetricType::Sum));
    let err = single_type("m", &[row("sum"), row("gauge")]).expect_err("two types");
    assert!(err.to_string().contains("several types in this range (gauge, sum)"), "{err}");
}

async fn sql_rows(sql: &str) -> Value {
    let (status, _, body) = post_sql(sql, None).await;
    assert_eq!(status, StatusCode::OK, "{sql}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice::<Value>(&body).expect("json")["rows"].clone()
}

#[tokio::test]
async fn sql_sees_the_metrics_table_and_its_views() {
    let counts = sql_rows(
        "SELECT (SELECT count(*) FROM metrics) AS a, (SELECT count(*) FROM metrics_gauge) AS g, \
         (SELECT count(*) FROM metrics_sum) AS s, (SELECT count(*) FROM metrics_histogram) AS h, \
         (SELECT count(*) FROM metrics_exp_histogram) AS e, (SELECT count(*) FROM metrics_summary) AS q",
    )
    .await;
    assert_eq!(counts, json!([[46, 11, 25, 6, 2, 2]]));
    let (status, _, body) = post_sql("SELECT * FROM metrics_gauge LIMIT 1", None).await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_slice(&body).expect("json");
    let columns: Vec<&str> =
        json["columns"].as_array().expect("columns").iter().map(|c| c["name"].as_str().expect("name")).collect();
    assert!(columns.contains(&"value") && columns.contains(&"exemplars"), "{columns:?}");
    assert!(!columns.contains(&"bucket_counts") && !columns.contains(&"metric_type"), "{columns:?}");
    let histogram = sql_rows(
        "SELECT explicit_bounds, bucket_counts, min, max FROM metrics_histogram \
         WHERE resource_attributes['host.name'] = 'host-b' ORDER BY time DESC LIMIT 1",
    )
    .await;
    assert_eq!(histogram, json!([[[10.0, 50.0, 100.0, 500.0], [10, 10, 0, 0, 0], 1.0, 45.0]]));
    let tables = sql_rows(
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_schema = 'public' ORDER BY table_name",
    )
    .await;
    assert_eq!(
        tables,
        json!([
            ["logs", "BASE TABLE"],
            ["metrics", "BASE TABLE"],
            ["metrics_exp_histogram", "VIEW"],
            ["metrics_gauge", "VIEW"],
            ["metrics_histogram", "VIEW"],
            ["metrics_sum", "VIEW"],
            ["metrics_summary", "VIEW"],
            ["service_graph", "VIEW"],
            ["span_links", "BASE TABLE"],
            ["span_metrics", "BASE TABLE"],
            ["spans", "BASE TABLE"],
            ["traces", "VIEW"]
        ])
    );
}

#[tokio::test]
async fn sql_on_metrics_stays_read_only() {
    for sql in [
        "INSERT INTO metrics SELECT * FROM metrics",
        "DELETE FROM metrics_gauge",
        "DROP VIEW metrics_gauge",
        "CREATE VIEW mine AS SELECT * FROM metrics",
        "CREATE TABLE copy AS SELECT * FROM metrics_sum",
        "COPY metrics_sum TO '/tmp/out.parquet'",
        "SELECT * INTO t FROM metrics_summary",
    ] {
        let (status, _, body) = post_sql(sql, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{sql}");
        let json: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["error"]["code"], "invalid_argument", "{sql}");
    }
}

/// The SQL examples of the API documentation, with their answers on the fixture.
pub(crate) const SQL_EXAMPLES: [&str; 3] = [
    // CPU by host: average utilization per host and minute.
    "SELECT resource_attributes['host.name'] AS host, date_bin(INTERVAL '1 minute', time) AS minute, \
     round(avg(value), 3) AS cpu \
     FROM metrics_gauge WHERE metric_name = 'system.cpu.utilization' \
     GROUP BY 1, 2 ORDER BY 1, 2",
    // Request rate per route from a cumulative counter: the increase between
    // consecutive points of each series (a drop is a restart from 0) per second.
    "WITH points AS ( \
       SELECT attributes['http.route'] AS route, time, value, \
              lag(value) OVER (PARTITION BY series_id ORDER BY time) AS previous, \
              lag(time) OVER (PARTITION BY series_id ORDER BY time) AS previous_time \
       FROM metrics_sum \
       WHERE metric_name = 'http.server.requests' AND aggregation_temporality = 'cumulative') \
     SELECT route, time, \
            sum(CASE WHEN value >= previous THEN value - previous ELSE value END \
                / (date_part('epoch', time) - date_part('epoch', previous_time))) AS per_second \
     FROM points WHERE previous IS NOT NULL \
     GROUP BY route, time ORDER BY route, time",
    // p95 from histogram buckets: the newest cumulative point of every
    // series, buckets summed across series, interpolated in the p95 bucket.
    "WITH newest AS ( \
       SELECT explicit_bounds, bucket_counts FROM ( \
         SELECT explicit_bounds, bucket_counts, \
                row_number() OVER (PARTITION BY series_id ORDER BY time DESC) AS n \
         FROM metrics_histogram WHERE metric_name = 'http.server.duration') \
       WHERE n = 1), \
     buckets AS ( \
       SELECT coalesce(le, CAST('inf' AS DOUBLE)) AS le, sum(count) AS count \
       FROM (SELECT unnest(explicit_bounds) AS le, unnest(bucket_counts) AS count FROM newest) \
       GROUP BY 1), \
     ranked AS ( \
       SELECT le, count, coalesce(lag(le) OVER (ORDER BY le), 0) AS lower, \
              sum(count) OVER (ORDER BY le) AS below, sum(count) OVER () AS total \
       FROM buckets) \
     SELECT lower + (le - lower) * (0.95 * total - (below - count)) / count AS p95 \
     FROM ranked WHERE below >= 0.95 * total ORDER BY le LIMIT 1",
];

#[tokio::test]
async fn sql_examples_give_the_documented_answers() {
    let cpu = sql_rows(SQL_EXAMPLES[0]).await;
    assert_eq!(
        cpu,
        json!([
            ["host-a", "2023-11-14T22:13:00.000000000Z", 0.65],
            ["host-a", "2023-11-14T22:14:00.000000000Z", 0.5],
            ["host-b", "2023-11-14T22:13:00.000000000Z", 0.2],
        ])
    );
    let rates = sql_rows(SQL_EXAMPLES[1]).await;
    let per_route: Vec<(String, f64)> = rates
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r[0].as_str().expect("route").to_owned(), r[2].as_f64().expect("rate")))
        .collect();
    let expected = [
        ("/cart", 2.0),
        ("/cart", 3.0),
        ("/cart", 4.0),
        ("/cart", 1.5),
        ("/cart", 3.0),
        ("/cart", 3.0),
        ("/checkout", 0.0),
        ("/checkout", 0.5),
        ("/checkout", 0.5),
        ("/checkout", 0.0),
        ("/checkout", 1.0),
        ("/checkout", 0.0),
    ];
    assert_eq!(per_route.len(), expected.len(), "{rates}");
    for ((route, rate), (want_route, want)) in per_route.iter().zip(expected) {
        assert_eq!(route, want_route);
        assert!((rate - want).abs() < 1e-9, "{route}: {rate} != {want}");
    }
    assert_eq!(rates[0][1], "2023-11-14T22:13:30.000000000Z");
    let p95 = sql_rows(SQL_EXAMPLES[2]).await;
    assert_eq!(p95, json!([[260.0]]));
}
