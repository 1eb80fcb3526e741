//! The OpenTelemetry JavaScript SDK for Node.js (tests/js/send.mjs) exports
//! a trace, metrics and logs in each OTLP encoding its exporters offer
//! (HTTP/JSON, HTTP/protobuf, gRPC); the spans come back from the trace API
//! and the Jaeger API, the points from SQL, and the log records (three in
//! the trace's spans, an event with a structured body outside) exactly from
//! SQL and, typed, from the log API, before and after flush.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde_json::{Value, json};

use crate::support::js::run_node;
use crate::support::logs::{decode_hex_requests, explode, stored};
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

/// What send.mjs printed of its logs: the records as the SDK exported them
/// (plain JSON values) and each export as the SDK's protobuf encoding.
struct SentLogs {
    requests: Vec<ExportLogsServiceRequest>,
    records: Vec<Value>,
    trace_id: String,
    root_span_id: String,
    child_span_id: String,
}

impl SentLogs {
    fn new(printed: &Value, trace_id: &str) -> Self {
        let requests = decode_hex_requests(&printed["requests"]);
        let text = |key: &str| printed[key].as_str().expect("a span ID").to_owned();
        SentLogs {
            requests,
            records: printed["records"].as_array().expect("records").clone(),
            trace_id: trace_id.to_owned(),
            root_span_id: text("rootSpanId"),
            child_span_id: text("childSpanId"),
        }
    }

    fn record(&self, body: &str) -> &Value {
        self.records.iter().find(|r| r["body"] == body).unwrap_or_else(|| panic!("no record {body:?}"))
    }
}

/// A typed value (`{"type", "value"}`) as plain JSON, as the script prints
/// the SDK's: arrays of values, key-value lists as objects, bytes in base64.
fn untyped(typed: &Value) -> Value {
    match typed["type"].as_str().expect("a typed value") {
        "array" => Value::Array(typed["value"].as_array().expect("array").iter().map(untyped).collect()),
        "kvlist" => untyped_attributes(&typed["value"]),
        _ => typed["value"].clone(),
    }
}

/// Typed attributes (`[{"key", "type", "value"}]`) as a plain `{key: value}`.
fn untyped_attributes(stored: &Value) -> Value {
    let entries = stored.as_array().expect("attributes").iter();
    Value::Object(entries.map(|a| (a["key"].as_str().expect("key").to_owned(), untyped(a))).collect())
}

/// The types alone of a typed value: `"int"`, `["string", ...]` for an
/// array, `{key: type}` for a key-value list.
fn type_tree(typed: &Value) -> Value {
    match typed["type"].as_str().expect("a typed value") {
        "array" => Value::Array(typed["value"].as_array().expect("array").iter().map(type_tree).collect()),
        "kvlist" => attribute_types(&typed["value"]),
        other => json!(other),
    }
}

fn attribute_types(stored: &Value) -> Value {
    let entries = stored.as_array().expect("attributes").iter();
    Value::Object(entries.map(|a| (a["key"].as_str().expect("key").to_owned(), type_tree(a))).collect())
}

fn nanos(value: &Value) -> u64 {
    value.as_str().expect("nanoseconds as a string").parse().expect("nanoseconds")
}

/// One stored record of the log API against the record the SDK exported.
fn check_log_entry(service: &str, stored: &Value, sdk: &Value) {
    let body = &sdk["body"];
    assert_eq!(untyped(&stored["body"]), *body, "{service}: body");
    let body_type = if body.is_string() { "string" } else { "kvlist" };
    assert_eq!(stored["body"]["type"], body_type, "{service}: body type of {body}");
    for key in ["timeUnixNano", "observedTimeUnixNano", "severityNumber", "severityText", "eventName"] {
        assert_eq!(stored[key], sdk[key], "{service}: {key} of {body}");
    }
    for key in ["traceId", "spanId", "flags"] {
        assert_eq!(stored[key], sdk[key], "{service}: {key} of {body}");
    }
    let number = sdk["severityNumber"].as_u64().expect("severity number") as usize;
    assert_eq!(stored["severity"], ["trace", "debug", "info", "warn", "error", "fatal"][(number - 1) / 4]);
    assert_eq!(untyped_attributes(&stored["attributes"]), sdk["attributes"], "{service}: attributes of {body}");
    assert_eq!(stored["droppedAttributesCount"], 0);
    assert_eq!(stored["serviceName"], service);
    assert_eq!(stored["scope"]["name"], sdk["scope"]["name"]);
    assert_eq!(stored["scope"]["version"], sdk["scope"]["version"]);
    let resource = attribute_map(&stored["resource"]["attributes"]);
    assert_eq!(resource, json!({"service.name": service, "deployment.environment": "test"}));
}

async fn check_logs(node: &TestNode, service: &str, sent: &SentLogs) {
    // What the script emitted, as the SDK exported it: the in-span records
    // carry their span's IDs, the event none.
    assert_eq!(sent.records.len(), 4, "{service}: every record exported");
    for (body, span) in [
        ("checkout started", Some(&sent.root_span_id)),
        ("card declined", Some(&sent.child_span_id)),
        ("checkout answered 200 after a declined card", Some(&sent.root_span_id)),
    ] {
        let sdk = sent.record(body);
        assert_eq!(sdk["traceId"], sent.trace_id.as_str(), "{service}: {body}");
        assert_eq!(sdk["spanId"].as_str(), span.map(String::as_str), "{service}: {body}");
    }
    let event = sent.records.iter().find(|r| r["eventName"] == "cart.viewed").expect("the event");
    assert!(event["body"].is_object() && event["traceId"].is_null(), "{service}: {event}");

    // Every record exactly (as OTLP, read back from SQL as Arrow).
    let want = explode(&sent.requests);
    assert_eq!(want.len(), sent.records.len(), "{service}: one encoded record per exported record");
    assert!(stored(node, service).await == want, "{service}: every record round-trips exactly");

    // The columns SQL sees.
    let sql = format!(
        "SELECT severity_number, severity_text, body_type, event_name, trace_id, span_id, flags, \
         log_attributes['cart.items'], log_attributes['exception.type'] FROM logs \
         WHERE service_name = '{service}' ORDER BY severity_number, event_name"
    );
    let mut expected: Vec<&Value> = sent.records.iter().collect();
    expected.sort_by_key(|r| (r["severityNumber"].as_u64(), r["eventName"].as_str().map(str::to_owned)));
    let expected: Vec<Value> = expected
        .into_iter()
        .map(|r| {
            // Attribute values as stored text; `body_type` is null for strings.
            let text = |v: &Value| match v {
                Value::Null => Value::Null,
                Value::String(s) => json!(s),
                other => json!(other.to_string()),
            };
            let body_type = if r["body"].is_string() { Value::Null } else { json!("k") };
            json!([
                r["severityNumber"],
                r["severityText"],
                body_type,
                r["eventName"],
                r["traceId"],
                r["spanId"],
                r["flags"],
                text(&r["attributes"]["cart.items"]),
                text(&r["attributes"]["exception.type"]),
            ])
        })
        .collect();
    assert_eq!(node.sql(&sql).await["rows"], Value::Array(expected), "{service}");

    // The log API: every record, newest first, typed.
    let (status, found) = node.get(&format!("/api/v1/logs?service={service}")).await;
    assert_eq!(status, 200, "{found}");
    let logs = found["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), sent.records.len(), "{found}");
    assert!(logs.windows(2).all(|w| nanos(&w[0]["timeUnixNano"]) >= nanos(&w[1]["timeUnixNano"])), "{found}");
    for sdk in &sent.records {
        let stored = logs.iter().find(|l| untyped(&l["body"]) == sdk["body"]).expect("record stored");
        check_log_entry(service, stored, sdk);
    }
    // JavaScript numbers arrive typed: integers as ints, fractions as doubles;
    // the structured body keeps its structure, bytes included.
    let types = |body: &str| {
        let stored = logs.iter().find(|l| l["body"]["value"] == body).expect("record stored");
        attribute_types(&stored["attributes"])
    };
    assert_eq!(
        types("checkout started"),
        json!({"user.id": "string", "cart.items": "int", "cart.total": "double", "user.vip": "bool",
               "cart.skus": ["string", "string"]}),
        "{service}"
    );
    assert_eq!(
        types("checkout answered 200 after a declined card"),
        json!({"retry.count": "int", "latency.ratio": "double"})
    );
    assert_eq!(
        types("card declined"),
        json!({"payment.attempt": "int", "exception.type": "string", "exception.message": "string",
               "exception.stacktrace": "string"}),
        "{service}"
    );
    let stored_event = logs.iter().find(|l| l["eventName"] == "cart.viewed").expect("event stored");
    assert_eq!(
        type_tree(&stored_event["body"]),
        json!({"event": "string", "items": ["int", "double", "bool", "string"],
               "user": {"id": "string", "vip": "bool"}, "checksum": "bytes"}),
        "{service}"
    );
    assert_eq!(attribute_types(&stored_event["attributes"]), json!({"channel": "string", "cart.size": "int"}));

    // Found by severity and text; counted by the volume API.
    let (status, errors) = node.get(&format!("/api/v1/logs?service={service}&severity=error&q=DECLINED")).await;
    assert_eq!(status, 200, "{errors}");
    let errors = errors["logs"].as_array().expect("logs");
    assert_eq!(errors.len(), 1, "{errors:?}");
    check_log_entry(service, &errors[0], sent.record("card declined"));
    let (status, volume) = node.get(&format!("/api/v1/logs/volume?service={service}")).await;
    assert_eq!(status, 200, "{volume}");
    assert_eq!(volume["total"], sent.records.len());

    // The trace's logs: the three records emitted in its spans, oldest first.
    let (status, trace_logs) = node.get(&format!("/api/v1/traces/{}/logs", sent.trace_id)).await;
    assert_eq!(status, 200, "{trace_logs}");
    assert_eq!(trace_logs["traceId"], sent.trace_id.as_str());
    assert_eq!(trace_logs["truncated"], false);
    let logs = trace_logs["logs"].as_array().expect("logs");
    let in_spans: Vec<&Value> = sent.records.iter().filter(|r| r["traceId"] == sent.trace_id.as_str()).collect();
    assert_eq!(logs.len(), in_spans.len(), "{trace_logs}");
    assert!(logs.windows(2).all(|w| nanos(&w[0]["timeUnixNano"]) <= nanos(&w[1]["timeUnixNano"])), "{trace_logs}");
    for sdk in in_spans {
        let stored = logs.iter().find(|l| untyped(&l["body"]) == sdk["body"]).expect("record in the trace's logs");
        check_log_entry(service, stored, sdk);
    }
    let (status, otlp) = node.get(&format!("/api/v1/traces/{}/logs?format=otlp", sent.trace_id)).await;
    assert_eq!(status, 200, "{otlp}");
    let count: usize = otlp["resourceLogs"]
        .as_array()
        .expect("resourceLogs")
        .iter()
        .flat_map(|rl| rl["scopeLogs"].as_array().expect("scopeLogs"))
        .map(|sl| sl["logRecords"].as_array().expect("logRecords").len())
        .sum();
    assert_eq!(count, logs.len(), "{otlp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_sdk_in_every_otlp_encoding() {
    let node = ClusterBuilder::new().start().await;
    let mut sent_logs = Vec::new();
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
        let logs = SentLogs::new(&sent["logs"], recorded[0]["traceId"].as_str().expect("trace id"));
        check_logs(&node, service, &logs).await;
        sent_logs.push((service, logs));
    }
    // The same answers from Parquet.
    node.flush().await;
    for (service, logs) in &sent_logs {
        check_metrics(&node, service).await;
        check_logs(&node, service, logs).await;
    }
    node.stop().await;
}
