//! The OpenTelemetry Python SDK exports over gRPC and HTTP/protobuf; every
//! field it recorded comes back from the trace API, before and after flush.

use std::collections::HashMap;

use serde_json::Value;

use crate::support::python::send_traces;
use crate::support::{ClusterBuilder, TestNode};

fn sorted_by_key(attrs: &Value) -> Vec<Value> {
    let mut list = attrs.as_array().cloned().unwrap_or_default();
    list.sort_by_key(|a| a["key"].as_str().unwrap_or_default().to_owned());
    list
}

/// Compares one SDK span with Skein's JSON of the same span, field by field.
fn assert_same_span(sdk: &Value, stored: &Value) {
    let id = &sdk["spanId"];
    for field in [
        "traceId",
        "spanId",
        "parentSpanId",
        "traceState",
        "name",
        "kind",
        "startTimeUnixNano",
        "endTimeUnixNano",
        "status",
        "attributes",
    ] {
        assert_eq!(stored[field], sdk[field], "span {id}: field {field}");
    }
    let events = stored["events"].as_array().expect("events");
    let sdk_events = sdk["events"].as_array().expect("events");
    assert_eq!(events.len(), sdk_events.len(), "span {id}: event count");
    for (got, want) in events.iter().zip(sdk_events) {
        for field in ["timeUnixNano", "name", "attributes"] {
            assert_eq!(got[field], want[field], "span {id}: event {field}");
        }
    }
    let links = stored["links"].as_array().expect("links");
    let sdk_links = sdk["links"].as_array().expect("links");
    assert_eq!(links.len(), sdk_links.len(), "span {id}: link count");
    for (got, want) in links.iter().zip(sdk_links) {
        for field in ["traceId", "spanId", "attributes"] {
            assert_eq!(got[field], want[field], "span {id}: link {field}");
        }
    }
    assert_eq!(
        sorted_by_key(&stored["resource"]["attributes"]),
        sorted_by_key(&sdk["resource"]["attributes"]),
        "span {id}: resource"
    );
    assert_eq!(stored["scope"]["name"], sdk["scope"]["name"], "span {id}: scope name");
    assert_eq!(stored["scope"]["version"], sdk["scope"]["version"], "span {id}: scope version");
}

async fn check_all(node: &TestNode, sdk_spans: &[Value]) {
    let mut traces: HashMap<String, Value> = HashMap::new();
    for sdk in sdk_spans {
        let trace_id = sdk["traceId"].as_str().expect("trace id").to_owned();
        if !traces.contains_key(&trace_id) {
            traces.insert(trace_id.clone(), node.trace(&trace_id).await);
        }
        let stored = traces[&trace_id]["spans"]
            .as_array()
            .expect("spans")
            .iter()
            .find(|s| s["spanId"] == sdk["spanId"])
            .unwrap_or_else(|| panic!("span {} not stored", sdk["spanId"]));
        assert_same_span(sdk, stored);
    }
    let stored_total: usize = traces.values().map(|t| t["spanCount"].as_u64().expect("count") as usize).sum();
    assert_eq!(stored_total, sdk_spans.len(), "no span stored twice");
}

async fn export_and_verify(protocol: &'static str) {
    let node = ClusterBuilder::new().start().await;
    let endpoint = if protocol == "grpc" { node.otlp_grpc() } else { node.otlp_http() };
    let service = format!("python-{protocol}");
    let svc = service.clone();
    let sdk_spans =
        tokio::task::spawn_blocking(move || send_traces(&endpoint, protocol, &svc, 3)).await.expect("python thread");
    assert_eq!(sdk_spans.len(), 3 * 5, "the script emits five spans per trace");
    check_all(&node, &sdk_spans).await;
    let count = node.sql_count(&format!("SELECT count(*) FROM spans WHERE service_name = '{service}'")).await;
    assert_eq!(count, 15);
    node.flush().await;
    check_all(&node, &sdk_spans).await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_grpc() {
    export_and_verify("grpc").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_over_http_protobuf() {
    export_and_verify("http").await;
}
