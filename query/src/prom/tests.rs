//! The Prometheus API over the query crate's test metrics (ingested with
//! `metrics_to_arrow` as the collector does; see `test_support`): golden
//! answers of every endpoint, values checked by hand, and refusals.

use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::test_support::{BASE_SECONDS, assert_golden, get, request, test_config};

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn ok(uri: &str) -> Value {
    let (status, _, body) = get(uri).await;
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, StatusCode::OK, "{uri}: {json}");
    assert_eq!(json["status"], "success", "{uri}: {json}");
    json
}

async fn instant(query: &str, at: i64) -> Value {
    ok(&format!("/api/v1/query?query={}&time={}", encode(query), BASE_SECONDS + at)).await
}

/// The single float of an instant vector or scalar answer.
async fn single_value(query: &str, at: i64) -> f64 {
    let json = instant(query, at).await;
    let result = &json["data"]["result"];
    let value = match json["data"]["resultType"].as_str() {
        Some("scalar") => &result[1],
        _ => {
            assert_eq!(result.as_array().map(Vec::len), Some(1), "{query}: {json}");
            &result[0]["value"][1]
        }
    };
    value.as_str().expect("string value").parse().expect("number")
}

async fn refused(uri: &str) -> (StatusCode, Value) {
    let (status, _, body) = get(uri).await;
    (status, serde_json::from_slice(&body).expect("json"))
}

fn close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
}

#[tokio::test]
async fn instant_values_match_hand_computed_ones() {
    // host-b: 1050 at 50 s, 1060 at 60 s; 10 over 10 s extrapolated to the 20 s range.
    close(single_value(r#"rate(http_server_requests_total{host_name="host-b"}[20s])"#, 60).await, 1.0);
    // host-a /cart 110 130 160 | 5 25 45 in (0, 60]: 95 over 50 s, extrapolated by 10 s.
    let cart = r#"increase(http_server_requests_total{host_name="host-a",http_route="/cart"}[1m])"#;
    close(single_value(cart, 60).await, 95.0 * 60.0 / 50.0);
    // /checkout 10 15 20 20 30 30 in (0, 60]: 20, extrapolated by 10 s.
    close(single_value(r#"increase(http_server_requests_total{http_route="/checkout"}[1m])"#, 60).await, 24.0);
    // irate: the last two samples, 25 → 45 over 10 s.
    close(single_value(cart.replace("increase", "irate").as_str(), 60).await, 2.0);
    // Delta sums are accumulated: 5 + 10 + 0 + 20.
    close(single_value("queue_processed_total", 40).await, 35.0);
    // Lookback: host-b's last CPU sample (30 s) is still seen 30 s later.
    close(single_value(r#"system_cpu_utilization_ratio{host_name="host-b"}"#, 60).await, 0.1);
    close(single_value("sum(system_cpu_utilization_ratio)", 30).await, 0.8 + 0.1);
    close(single_value("count(system_cpu_utilization_ratio)", 60).await, 2.0);
    close(single_value("max(system_cpu_utilization_ratio) * 100", 0).await, 50.0);
    close(single_value(r#"system_cpu_utilization_ratio offset 30s > 0.7"#, 60).await, 0.8);
    close(single_value("(1 + 2) * -3", 0).await, -9.0);
}

#[tokio::test]
async fn histogram_quantile_over_classic_and_native_histograms() {
    // Bucket increases in (0, 60] summed over both hosts: le 10: 30, 50: 80, 100: 110,
    // 500 and +Inf: 120 (each extrapolated by its own zero point). Rank 60 is 30 into (10, 50].
    let classic = "histogram_quantile(0.5, sum by (le) (increase(http_server_duration_milliseconds_bucket[1m])))";
    close(single_value(classic, 60).await, 10.0 + 40.0 * 30.0 / 50.0);
    // The delta exponential histogram accumulated to 60 s: [-2,-1): 1, zero: 1, (1,2]: 2,
    // (2,4]: 5. Rank 4.5 is 0.1 into (2,4], interpolated exponentially.
    close(single_value("histogram_quantile(0.5, rpc_duration_seconds)", 60).await, 2f64.powf(1.1));
    // Through rate and sum: the increase in (0, 60] is the second point's 3 values in (2,4],
    // so the median is halfway through that bucket.
    let rated = "histogram_quantile(0.5, sum(rate(rpc_duration_seconds[1m])))";
    close(single_value(rated, 60).await, 2f64.powf(1.5));
}

#[tokio::test]
async fn query_golden() {
    let answers = json!({
        "cpu": instant("system_cpu_utilization_ratio", 60).await,
        "native": instant("rpc_duration_seconds", 60).await,
        "summary": instant("job_latency_milliseconds", 60).await,
        "scalar": instant("1 + 2", 0).await,
        "string": instant("\"skein\"", 0).await,
        "matrix": instant(r#"http_server_requests_total{http_route="/checkout"}[30s]"#, 60).await,
        "topk": instant("topk(1, http_server_requests_total)", 60).await,
        "ratio": instant(
            r#"sum by (job) (rate(http_server_requests_total[1m])) / on (job) sum by (job) (rate(http_server_duration_milliseconds_count[1m]))"#,
            60,
        )
        .await,
    });
    assert_golden("prom/query.json", &answers);
}

#[tokio::test]
async fn query_range_golden_and_post_form() {
    let query = "sum by (http_route) (rate(http_server_requests_total[30s]))";
    let params = format!("query={}&start={}&end={}&step=20s", encode(query), BASE_SECONDS + 20, BASE_SECONDS + 60);
    let json = ok(&format!("/api/v1/query_range?{params}")).await;
    assert_golden("prom/query_range.json", &json);
    // Grafana POSTs a form: the same answer.
    let (status, _, body) = form("/api/v1/query_range", &params).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), json);
    let native = ok(&format!(
        "/api/v1/query_range?query={}&start={}&end={}&step=30",
        encode("rpc_duration_seconds"),
        BASE_SECONDS + 30,
        BASE_SECONDS + 60
    ))
    .await;
    assert_golden("prom/query_range_native.json", &native);
}

async fn form(uri: &str, body: &str) -> (StatusCode, axum::http::HeaderMap, bytes::Bytes) {
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(body.to_owned()))
        .expect("request");
    let response = tower::ServiceExt::oneshot(crate::server::test_router(test_config()), request).await.expect("ok");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body"))
}

#[tokio::test]
async fn listing_golden() {
    let range = format!("start={}&end={}", BASE_SECONDS, BASE_SECONDS + 60);
    let selector = encode(r#"http_server_duration_milliseconds_bucket{host_name="host-a"}"#);
    let answers = json!({
        "series": ok(&format!("/api/v1/series?match[]={selector}&{range}")).await,
        "labels": ok(&format!("/api/v1/labels?{range}")).await,
        "labels_matched": ok(&format!("/api/v1/labels?match[]={}&{range}", encode("queue_processed_total"))).await,
        "names": ok(&format!("/api/v1/label/__name__/values?{range}")).await,
        "jobs": ok(&format!("/api/v1/label/job/values?{range}")).await,
        "le": ok(&format!("/api/v1/label/le/values?{range}")).await,
        "routes_matched": ok(&format!(
            "/api/v1/label/http_route/values?match[]={}&{range}",
            encode(r#"{__name__=~"http_server_.*",host_name="host-b"}"#)
        ))
        .await,
        "metadata": ok("/api/v1/metadata").await,
        "metadata_one": ok("/api/v1/metadata?metric=http_server_requests_total").await,
        "buildinfo": ok("/api/v1/status/buildinfo").await,
    });
    assert_golden("prom/listing.json", &answers);
    // Series by POST form.
    let (status, _, body) = form("/api/v1/series", &format!("match[]={selector}&{range}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(serde_json::from_slice::<Value>(&body).expect("json"), answers["series"]);
}

#[tokio::test]
async fn unsupported_promql_is_a_400_naming_it() {
    let cases = [
        ("abs(system_cpu_utilization_ratio)", "the function abs()"),
        ("rate(http_server_requests_total[5m:1m])", "subqueries"),
        ("stddev(system_cpu_utilization_ratio)", "the aggregation stddev"),
        ("system_cpu_utilization_ratio and system_cpu_utilization_ratio", "the binary operator and"),
        ("system_cpu_utilization_ratio * on (job) group_left system_cpu_utilization_ratio", "group_left"),
        ("system_cpu_utilization_ratio @ 1700000000", "the @ modifier"),
        ("sum(", "invalid parameter \"query\""),
        (r#"{job=~".*"}"#, "at least one non-empty matcher"),
    ];
    for (query, message) in cases {
        let (status, json) = refused(&format!("/api/v1/query?query={}&time={BASE_SECONDS}", encode(query))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {json}");
        assert_eq!(json["status"], "error");
        assert_eq!(json["errorType"], "bad_data");
        assert!(json["error"].as_str().is_some_and(|e| e.contains(message)), "{query}: {json}");
    }
}

#[tokio::test]
async fn bad_parameters_are_bad_data() {
    let cases = [
        ("/api/v1/query_range?query=up&start=0&end=11001&step=1", "exceeded maximum resolution of 11000 points"),
        ("/api/v1/query_range?query=up&start=0&end=10", "\"step\""),
        ("/api/v1/query_range?query=up&start=10&end=0&step=1", "end timestamp must not be before start"),
        ("/api/v1/query?query=up&time=soon", "\"time\""),
        ("/api/v1/query_range?query=up%5B1m%5D&start=0&end=10&step=1", "range vector"),
        ("/api/v1/series", "no match[]"),
    ];
    for (uri, message) in cases {
        let (status, json) = refused(uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
        assert_eq!(json["errorType"], "bad_data", "{uri}");
        assert!(json["error"].as_str().is_some_and(|e| e.contains(message)), "{uri}: {json}");
    }
}

#[tokio::test]
async fn unknown_metrics_give_empty_results() {
    let json = instant("no_such_metric", 60).await;
    assert_eq!(json["data"], json!({"resultType": "vector", "result": []}));
    let (status, _, _) =
        request(crate::server::test_router(test_config()), "GET", "/api/v1/metrics", String::new()).await;
    assert_eq!(status, StatusCode::OK, "Skein's own metric API is still served");
}

#[tokio::test]
async fn regex_matchers_are_fully_anchored() {
    let count = |query: &'static str| async move { single_value(query, 60).await };
    let routes = r#"count(http_server_requests_total{http_route=~"/c.*"})"#;
    close(count(routes).await, 3.0);
    // "cart" is not "/cart": anchored at both ends, as in Prometheus.
    let json = instant(r#"http_server_requests_total{http_route=~"cart"}"#, 60).await;
    assert_eq!(json["data"]["result"], json!([]));
    close(count(r#"count(http_server_requests_total{http_route!~"/cart"})"#).await, 1.0);
    close(count(r#"count(http_server_requests_total{http_route!="/cart"})"#).await, 1.0);
    close(count(r#"count({__name__=~"http_server_duration_milliseconds_(sum|count)"})"#).await, 4.0);
    close(count(r#"count(http_server_duration_milliseconds_bucket{le=~"1.*"})"#).await, 4.0);
}

#[tokio::test]
async fn selectors_push_name_time_and_series_down_to_every_shard() {
    let (engine, shards) = crate::test_support::recording_metrics_engine();
    let expr =
        promql_parser::parser::parse(r#"rate(http_server_requests_total{host_name="host-b"}[1m])"#).expect("parses");
    let second = 1_000_000_000;
    let value = super::evaluate(&engine, &expr, vec![(BASE_SECONDS + 60) * second]).await.expect("runs");
    let super::value::Evaluated::Vector(steps) = value else { panic!("a vector") };
    assert_eq!(steps[0].len(), 1, "host-b's one series");
    for shard in &shards {
        let seen = shard.seen.lock().expect("lock");
        // The metric names in the range, the series of the metric, their points.
        assert_eq!(seen.len(), 3, "{seen:?}");
        for (_, filters, _) in seen.iter() {
            let text = filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" AND ");
            assert!(text.contains("time >") && text.contains("time <="), "time is pushed down: {text}");
        }
        let text = |i: usize| seen[i].1.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(" AND ");
        assert!(text(1).contains("metric_name = Utf8(\"http.server.requests\")"), "{}", text(1));
        assert!(text(2).contains("metric_name = Utf8(\"http.server.requests\")"), "{}", text(2));
        assert!(text(2).contains("series_id"), "only the matching series' points are read: {}", text(2));
        let schema = skein_model::metric_schema();
        let columns: Vec<&str> =
            seen[2].0.as_ref().expect("projected").iter().map(|i| schema.field(*i).name().as_str()).collect();
        for unneeded in ["bucket_counts", "exemplars", "scope_attributes", "attributes"] {
            assert!(!columns.contains(&unneeded), "{unneeded} is read: {columns:?}");
        }
    }
}

/// An engine over one shard holding `request`'s points.
fn engine_with(
    request: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
) -> crate::QueryEngine {
    use std::sync::Arc;

    use datafusion::catalog::{MemTable, TableProvider};
    use skein_model::{ConvertLimits, metric_schema, metrics_to_arrow};

    let converted = metrics_to_arrow(request, &ConvertLimits::default(), 1).expect("converts");
    let table = MemTable::try_new(metric_schema(), vec![vec![converted.batch]]).expect("mem table");
    let metrics = vec![Arc::new(table) as Arc<dyn TableProvider>];
    crate::QueryEngine::new(&test_config(), crate::Tables { metrics, ..crate::Tables::default() }).expect("engine")
}

#[tokio::test]
async fn variants_of_one_metric_are_separate_families() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics};

    let second = 1_000_000_000u64;
    let base = BASE_SECONDS as u64 * second;
    // The unit changed from Celsius to kelvin between two exports.
    let gauge = |unit: &str, at: u64, value: f64| Metric {
        name: "room.temperature".into(),
        unit: unit.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: at,
                value: Some(Number::AsDouble(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![gauge("Cel", base, 21.0), gauge("K", base + 10 * second, 294.15)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let engine = engine_with(&request);
    let at = vec![(BASE_SECONDS + 20) * second as i64];
    let value = |query: &str| {
        let expr = promql_parser::parser::parse(query).expect("parses");
        let engine = &engine;
        let at = at.clone();
        async move {
            match super::evaluate(engine, &expr, at).await.expect("runs") {
                super::value::Evaluated::Vector(steps) => steps[0]
                    .iter()
                    .map(|e| match e.point {
                        super::value::Point::Float(v) => v,
                        _ => panic!("a float"),
                    })
                    .collect::<Vec<f64>>(),
                other => panic!("a vector, got {other:?}"),
            }
        }
    };
    assert_eq!(value("room_temperature_celsius").await, vec![21.0]);
    assert_eq!(value("room_temperature_K").await, vec![294.15]);
}

#[tokio::test]
async fn results_over_the_point_limit_are_422_not_truncated() {
    // 11 stored CPU points fit a limit of 12; the 7 steps of 2 series (lookback
    // carries host-b's last sample forward) do not.
    let config = crate::QueryConfig { metrics_max_points: 12, ..test_config() };
    let uri = format!(
        "/api/v1/query_range?query=system_cpu_utilization_ratio&start={BASE_SECONDS}&end={}&step=10",
        BASE_SECONDS + 60
    );
    let (status, _, body) = request(crate::server::test_router(config), "GET", &uri, String::new()).await;
    let json: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{json}");
    assert_eq!(json["errorType"], "execution");
    assert!(json["error"].as_str().is_some_and(|e| e.contains("12 result points")), "{json}");
}

#[tokio::test]
async fn exemplars_of_the_selected_series_link_their_spans() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::metrics::v1::exemplar::Value as ExemplarValue;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::{
        Exemplar, Histogram, HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
    };
    use opentelemetry_proto::tonic::resource::v1::Resource;

    let second = 1_000_000_000u64;
    let base = BASE_SECONDS as u64 * second;
    let route = |r: &str| KeyValue {
        key: "http.route".into(),
        value: Some(AnyValue { value: Some(Any::StringValue(r.into())) }),
        ..Default::default()
    };
    let point = |r: &str, trace: u8| HistogramDataPoint {
        attributes: vec![route(r)],
        start_time_unix_nano: base,
        time_unix_nano: base + 10 * second,
        count: 1,
        bucket_counts: vec![0, 1],
        explicit_bounds: vec![0.1],
        exemplars: vec![Exemplar {
            time_unix_nano: base + 5 * second,
            trace_id: vec![trace; 16],
            span_id: vec![trace; 8],
            value: Some(ExemplarValue::AsDouble(0.25)),
            ..Default::default()
        }],
        ..Default::default()
    };
    let service = KeyValue {
        key: "service.name".into(),
        value: Some(AnyValue { value: Some(Any::StringValue("api".into())) }),
        ..Default::default()
    };
    let request = ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![service], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "latency".into(),
                    unit: "s".into(),
                    data: Some(Data::Histogram(Histogram {
                        data_points: vec![point("/cart", 0xab), point("/checkout", 0xcd)],
                        aggregation_temporality: 2,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let engine = engine_with(&request);
    let expr = promql_parser::parser::parse(
        r#"histogram_quantile(0.9, sum by (le) (rate(latency_seconds_bucket{http_route="/cart"}[5m])))"#,
    )
    .expect("parses");
    let (start, end) = (BASE_SECONDS * second as i64, (BASE_SECONDS + 60) * second as i64);
    let found = super::exemplars::query_exemplars(&engine, &expr, start, end).await.expect("runs");
    let expected = json!([{
        "seriesLabels": {"__name__": "latency_seconds_bucket", "http_route": "/cart", "job": "api"},
        "exemplars": [{
            "labels": {"trace_id": "abababababababababababababababab", "span_id": "abababababababab"},
            "value": "0.25",
            "timestamp": BASE_SECONDS + 5,
        }],
    }]);
    assert_eq!(Value::Array(found), expected);
    // Through the router, on the test data (no exemplars there): an empty list.
    let uri = format!(
        "/api/v1/query_exemplars?query=http_server_requests_total&start={BASE_SECONDS}&end={}",
        BASE_SECONDS + 60
    );
    assert_eq!(ok(&uri).await["data"], json!([]));
}
