//! The OpenTelemetry JavaScript SDK for Node.js (tests/js/send.mjs) exports
//! a trace and metrics in each OTLP encoding its exporters offer (HTTP/JSON,
//! HTTP/protobuf, gRPC); the spans come back from the trace API and the
//! Jaeger API, the points from SQL.

use serde_json::{Value, json};

use crate::support::js::run_node;
use crate::support::{ClusterBuilder, TestNode};

/// Stored typed attributes (`[{"key", "type", "value"}]`) as `{key: value}`.
fn attribute_map(stored: &Value) -> Value {
    let map = stored
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| (a["key"].as_str().expect("key").to_owned(), a["value"].clone()))
        .collect::<serde_json::Map<_, _>>();
    Value::Object(map)
}

async fn check_trace(node: &TestNode, service: &str, recorded: &[Value]) {
    let trace_id = recorded[0]["traceId"].as_str().expect("trace id");
    let stored = node.trace(trace_id).await;
    let spans = stored["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), recorded.len(), "{service}: every span once");
    for sdk in recorded {
        let span = spans.iter().find(|s| s["spanId"] == sdk["spanId"]).expect("span stored");
        assert_eq!(span["name"], sdk["name"]);
        assert_eq!(span["kind"], sdk["kind"]);
        assert_eq!(span["parentSpanId"], sdk["parentSpanId"]);
        assert_eq!(span["serviceName"], service);
        assert_eq!(span["status"], sdk["status"], "{service}: status of {}", sdk["name"]);
        assert_eq!(attribute_map(&span["attributes"]), sdk["attributes"], "{service}: attributes of {}", sdk["name"]);
        let events: Vec<Value> = span["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| json!({ "name": e["name"], "attributes": attribute_map(&e["attributes"]) }))
            .collect();
        assert_eq!(Value::Array(events), sdk["events"]);
        assert_eq!(span["scope"]["name"], "skein-js-test");
        assert_eq!(span["scope"]["version"], "1.2.3");
    }
    // JavaScript numbers arrive typed: integers as ints, fractions as doubles.
    let root = spans.iter().find(|s| s["name"] == "GET /checkout").expect("root");
    let types: Vec<(&str, &str)> = root["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .map(|a| (a["key"].as_str().expect("key"), a["type"].as_str().expect("type")))
        .collect();
    for expected in [("http.response.status_code", "int"), ("js.ratio", "double"), ("js.sampled", "bool")] {
        assert!(types.contains(&expected), "{service}: {expected:?} in {types:?}");
    }

    // The same trace through the Jaeger API, found by a search for the service.
    let (status, found) =
        node.get(&format!("/jaeger/api/traces?service={service}&tags=%7B%22error%22%3A%22true%22%7D")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["data"].as_array().expect("data").len(), 1, "{found}");
    let trace = &found["data"][0];
    assert_eq!(trace["traceID"], trace_id);
    assert_eq!(trace["processes"]["p1"]["serviceName"], service);
    let charge = trace["spans"].as_array().expect("spans").iter().find(|s| s["operationName"] == "charge card");
    let charge = charge.expect("the error span");
    assert!(charge["tags"].as_array().expect("tags").contains(&json!({"key": "error", "type": "bool", "value": true})));
    assert_eq!(charge["references"][0]["refType"], "CHILD_OF");
    assert_eq!(charge["logs"][0]["fields"][0], json!({"key": "event", "type": "string", "value": "retry"}));

    // And through api_v3: the search's summary, then the trace as OTLP/JSON.
    let now = std::time::SystemTime::now();
    let hour = std::time::Duration::from_secs(3600);
    let rfc3339 = |t| humantime_serde::re::humantime::format_rfc3339(t).to_string();
    let range = format!("query.start_time_min={}&query.start_time_max={}", rfc3339(now - hour), rfc3339(now + hour));
    let (status, summaries) =
        node.get(&format!("/jaeger/api/v3/trace-summaries?{range}&query.service_name={service}")).await;
    assert_eq!(status, 200, "{summaries}");
    assert_eq!(
        summaries["summaries"],
        json!([{
            "traceId": trace_id, "rootServiceName": service, "rootOperationName": "GET /checkout",
            "minStartTimeUnixNano": summaries["summaries"][0]["minStartTimeUnixNano"],
            "maxEndTimeUnixNano": summaries["summaries"][0]["maxEndTimeUnixNano"],
            "spanCount": 2, "errorSpanCount": 1,
            "services": [{"name": service, "spanCount": 2, "errorSpanCount": 1}],
        }])
    );
    let (status, otlp) = node.get(&format!("/jaeger/api/v3/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{otlp}");
    let spans = otlp["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2, "{otlp}");
}

async fn check_metrics(node: &TestNode, service: &str) {
    let sql = format!(
        "SELECT metric_name, metric_type, attributes['route'], value, count, sum, unit FROM metrics \
         WHERE service_name = '{service}' ORDER BY metric_name, attributes['route']"
    );
    let rows = node.sql(&sql).await["rows"].clone();
    assert_eq!(
        rows,
        json!([
            ["js.latency", "histogram", "/a", null, 3, 45.0, "ms"],
            ["js.requests", "sum", "/a", 3.0, null, null, "{request}"],
            ["js.requests", "sum", "/b", 2.0, null, null, "{request}"],
            ["js.temperature", "gauge", null, 21.5, null, null, "Cel"],
        ]),
        "{service}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_sdk_in_every_otlp_encoding() {
    let node = ClusterBuilder::new().start().await;
    for (protocol, service) in [("http/json", "js-http-json"), ("http/protobuf", "js-http-proto"), ("grpc", "js-grpc")]
    {
        let endpoint = if protocol == "grpc" { node.otlp_grpc() } else { node.otlp_http() };
        let sent = tokio::task::spawn_blocking(move || {
            run_node("send.mjs", &["--endpoint", &endpoint, "--protocol", protocol, "--service", service], &[])
        })
        .await
        .expect("node client");
        let recorded = sent["spans"].as_array().expect("recorded spans").clone();
        assert_eq!(recorded.len(), 2);
        check_trace(&node, service, &recorded).await;
        check_metrics(&node, service).await;
    }
    // The same answers from Parquet.
    node.flush().await;
    for service in ["js-http-json", "js-http-proto", "js-grpc"] {
        check_metrics(&node, service).await;
    }
    node.stop().await;
}
