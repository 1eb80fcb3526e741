//! Per-tenant ingest rate limits (`[collector.tenant_ingest]`): a tenant
//! over its rate gets 429 with Retry-After (RESOURCE_EXHAUSTED over gRPC),
//! which OTLP exporters retry; nothing of a refused request is stored, and
//! everything acknowledged is.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;

use crate::cluster::trace_request;
use crate::support::ClusterBuilder;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_rate_is_told_when_to_retry_and_loses_nothing_acknowledged() {
    // One span per second: a burst of requests cannot all fit, however
    // slowly this machine sends them (20 of them would take 20 s to).
    let node = ClusterBuilder::new().configure(|c| c.collector.tenant_ingest.items_per_second = 1).start().await;
    let client = skein_bench::client::http_client();
    let (mut accepted, mut refused) = (0, 0);
    for trace in 1..=20 {
        let response = client
            .post(format!("{}/v1/traces", node.otlp_http()))
            .header("content-type", "application/json")
            .body(trace_request(trace, 2).to_string())
            .send()
            .await
            .expect("sent");
        match response.status().as_u16() {
            200 => accepted += 1,
            429 => {
                refused += 1;
                let retry_after: u64 = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .expect("a Retry-After in seconds");
                assert!(retry_after >= 1, "{retry_after}");
                let body: serde_json::Value = response.json().await.expect("json status");
                let message = body["message"].as_str().unwrap_or_default();
                assert!(message.contains("tenant default") && message.contains("collector.tenant_ingest"), "{body}");
            }
            other => panic!("unexpected status {other}: {}", response.text().await.unwrap_or_default()),
        }
    }
    assert!(accepted >= 1 && refused >= 1, "accepted {accepted}, refused {refused}");
    assert_eq!(node.sql_count("SELECT count(*) FROM spans").await, 2 * accepted, "every acknowledged span, no other");

    // gRPC says RESOURCE_EXHAUSTED, with retry info, for the same reason.
    let mut grpc = TraceServiceClient::connect(node.otlp_grpc()).await.expect("grpc connects");
    let request: ExportTraceServiceRequest = serde_json::from_value(trace_request(100, 2)).expect("OTLP/JSON converts");
    let mut status = None;
    for _ in 0..20 {
        if let Err(refusal) = grpc.export(request.clone()).await {
            status = Some(refusal);
            break;
        }
    }
    let status = status.expect("a burst of exports is refused");
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("tenant default"), "{status:?}");
    node.stop().await;
}
