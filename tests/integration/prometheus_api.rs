//! The Prometheus HTTP API through a real client: metrics sent by the
//! OpenTelemetry Python SDK are queried with the `prometheus-api-client`
//! package (POST, as Grafana does), and the answers agree with what the SDK
//! exported.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as Number;
use serde_json::Value;

use crate::support::ClusterBuilder;
use crate::support::python::{query_prometheus, send_metrics};

/// The data of `metric` in the last export that has it (cumulative: the totals).
fn last_data<'a>(sent: &'a [ExportMetricsServiceRequest], metric: &str) -> &'a Data {
    sent.iter()
        .rev()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .find(|m| m.name == metric)
        .and_then(|m| m.data.as_ref())
        .unwrap_or_else(|| panic!("the SDK exported {metric}"))
}

/// The float of the single element of an instant vector answer.
fn single(result: &Value) -> f64 {
    let result = result.as_array().expect("a vector");
    assert_eq!(result.len(), 1, "{result:?}");
    result[0]["value"][1].as_str().expect("string value").parse().expect("number")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_api_client_reads_what_the_python_sdk_sent() {
    let node = ClusterBuilder::new().shards(3).start().await;
    let service = "py-prometheus";
    let endpoint = node.otlp_grpc();
    let sent = tokio::task::spawn_blocking(move || send_metrics(&endpoint, "grpc", "cumulative", service))
        .await
        .expect("script task");
    let Data::Sum(requests) = last_data(&sent, "http.server.requests") else { panic!("a sum") };
    let requests_total: f64 = requests
        .data_points
        .iter()
        .map(|p| match p.value {
            Some(Number::AsInt(v)) => v as f64,
            Some(Number::AsDouble(v)) => v,
            None => 0.0,
        })
        .sum();
    let Data::Histogram(durations) = last_data(&sent, "http.server.duration") else { panic!("a histogram") };
    let duration_count: u64 = durations.data_points.iter().map(|p| p.count).sum();
    assert!(requests_total > 0.0 && duration_count > 0, "the SDK sent data");

    let url = node.query();
    let got = tokio::task::spawn_blocking(move || query_prometheus(&url, service)).await.expect("script task");

    let names: Vec<&str> = got["names"].as_array().expect("names").iter().filter_map(Value::as_str).collect();
    for name in [
        "http_server_requests_total",
        "http_server_duration_milliseconds_bucket",
        "http_server_duration_milliseconds_count",
        "rpc_server_duration_milliseconds",
        "process_cpu_utilization_ratio",
        "queue_depth",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let labels = &got["labels"];
    for label in ["__name__", "job", "http_route", "le", "host_name"] {
        assert!(labels.as_array().is_some_and(|l| l.contains(&Value::from(label))), "{label} in {labels}");
    }
    assert_eq!(single(&got["requests_total"]), requests_total);
    assert_eq!(got["requests_by_route"].as_array().map(Vec::len), Some(2), "/cart and /checkout");
    assert_eq!(single(&got["duration_count"]), duration_count as f64);
    assert_eq!(single(&got["rpc_native_count"]), 2.0, "two rpc.method series");
    let range = got["range"].as_array().expect("a matrix");
    assert_eq!(range.len(), 1, "{range:?}");
    let last = range[0]["values"].as_array().and_then(|v| v.last()).expect("points");
    assert_eq!(last[1].as_str().and_then(|v| v.parse::<f64>().ok()), Some(requests_total));
    let metadata = serde_json::json!([{
        "metric_name": "http_server_requests_total", "type": "counter", "help": "Requests served", "unit": ""
    }]);
    assert_eq!(got["metadata"], metadata);
    let series = got["series"].as_array().expect("series");
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(series[0]["job"], service);
    assert_eq!(series[0]["queue"], "orders");
    node.stop().await;
}
