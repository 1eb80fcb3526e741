//! Tenants kept apart below SQL: each tenant's token (or, without tokens,
//! `X-Scope-OrgID`) reaches only its own storage, whatever SQL it writes,
//! and its data survives a restart in its own directory; in a cluster each
//! tenant's shards fail over with their own WAL.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::{Value, json};

use crate::cluster::trace_request;
use crate::support::cluster::ProcessClusterBuilder;
use crate::support::python::send_traces_with_env;
use crate::support::seaweedfs::SeaweedFs;
use crate::support::{ClusterBuilder, TestNode};

/// One trace ID both tenants use: each must see only its own spans of it.
const SHARED_TRACE: &str = "7e4a1c0d2b3f4e5a6b7c8d9e0f1a2b3c";

/// `skein token create --tenant <tenant> --scopes ingest,query`, appended to `tokens_file`.
fn create_token(tokens_file: &Path, tenant: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["token", "create", "--tenant", tenant, "--scopes", "ingest,query", "--json", "--tokens-file"])
        .arg(tokens_file)
        .output()
        .expect("skein token create runs");
    assert!(output.status.success(), "token create failed: {}", String::from_utf8_lossy(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    json["token"].as_str().expect("token").to_owned()
}

/// `spans` spans of `trace_hex` from `service`, starting now.
fn spans_of(service: &str, trace_hex: &str, spans: u64) -> Value {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos() as u64;
    let span = |s: u64| {
        json!({
            "traceId": trace_hex,
            "spanId": format!("{s:016x}"),
            "parentSpanId": if s == 1 { String::new() } else { format!("{:016x}", 1) },
            "name": format!("{service}-op"),
            "kind": 2,
            "startTimeUnixNano": (now + s * 1000).to_string(),
            "endTimeUnixNano": (now + s * 1000 + 500_000).to_string(),
        })
    };
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": (1..=spans).map(span).collect::<Vec<_>>()}]
    }]})
}

/// How a test request names its tenant.
#[derive(Clone, Copy)]
enum As<'a> {
    Token(&'a str),
    OrgId(&'a str),
    Nobody,
}

impl As<'_> {
    fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            As::Token(token) => request.bearer_auth(token),
            As::OrgId(tenant) => request.header("X-Scope-OrgID", tenant),
            As::Nobody => request,
        }
    }
}

async fn export(node: &TestNode, who: As<'_>, body: &Value) -> u16 {
    let request = node.http.post(format!("{}/v1/traces", node.otlp_http())).header("content-type", "application/json");
    who.apply(request).body(body.to_string()).send().await.expect("sent").status().as_u16()
}

async fn sql(node: &TestNode, who: As<'_>, sql: &str) -> (u16, Value) {
    let request = node.http.post(format!("{}/api/v1/sql", node.query())).json(&json!({ "sql": sql }));
    let response = who.apply(request).send().await.expect("sent");
    (response.status().as_u16(), response.json().await.expect("json"))
}

async fn rows(node: &TestNode, who: As<'_>, query: &str) -> Vec<Value> {
    let (status, body) = sql(node, who, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["rows"].as_array().expect("rows").clone()
}

async fn get(node: &TestNode, who: As<'_>, path: &str) -> (u16, Value) {
    let response = who.apply(node.http.get(format!("{}{path}", node.query()))).send().await.expect("sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Everything `who` can see through SQL and the API: its own rows only.
async fn assert_sees_only(node: &TestNode, who: As<'_>, service: &str, spans: i64, others: &[&str]) {
    let shows_other = |body: &Value| others.iter().any(|other| body.to_string().contains(other));
    let count = |rows: Vec<Value>| rows[0][0].as_i64().expect("count");
    let queries = [
        "SELECT count(*) FROM spans",
        "SELECT count(*) FROM spans s JOIN traces t ON s.trace_id = t.trace_id",
        "SELECT count(*) FROM spans WHERE trace_id IN (SELECT trace_id FROM traces)",
        "SELECT count(*) FROM (SELECT span_id FROM spans UNION ALL SELECT span_id FROM spans WHERE false) u",
    ];
    for query in queries {
        assert_eq!(count(rows(node, who, query).await), spans, "{query}");
    }
    let services = rows(node, who, "SELECT DISTINCT service_name FROM spans").await;
    assert_eq!(services, vec![json!([service])]);
    let summed = rows(node, who, "SELECT sum(span_count) FROM traces").await;
    assert_eq!(count(summed), spans);
    for query in ["SELECT * FROM information_schema.tables", "EXPLAIN SELECT * FROM spans"] {
        let (_, body) = sql(node, who, query).await;
        assert!(!shows_other(&body), "{query} shows one of {others:?}: {body}");
    }

    let (status, trace) = get(node, who, &format!("/api/v1/traces/{SHARED_TRACE}")).await;
    assert_eq!(status, 200, "{trace}");
    assert!(trace.to_string().contains(service) && !shows_other(&trace), "{trace}");
    let (status, services) = get(node, who, "/api/v1/services").await;
    assert_eq!(status, 200, "{services}");
    assert!(!shows_other(&services), "{services}");
    let (status, found) = get(node, who, "/api/v1/search?limit=50").await;
    assert_eq!(status, 200, "{found}");
    assert!(!found["traces"].as_array().expect("traces").is_empty(), "{found}");
    assert!(!shows_other(&found), "{found}");

    // The compatibility APIs go through the same per-tenant engine: what
    // Grafana's Tempo data source and the Jaeger UI ask for.
    for path in [format!("/api/traces/{SHARED_TRACE}"), format!("/jaeger/api/traces/{SHARED_TRACE}")] {
        let (status, trace) = get(node, who, &path).await;
        assert_eq!(status, 200, "{path}: {trace}");
        assert!(trace.to_string().contains(service) && !shows_other(&trace), "{path}: {trace}");
    }
    let (status, services) = get(node, who, "/jaeger/api/services").await;
    assert_eq!(status, 200, "{services}");
    assert!(services.to_string().contains(service) && !shows_other(&services), "{services}");
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_with_tokens_never_see_each_others_data_through_any_sql_and_keep_it_across_restarts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let tokens_file = dir.path().join("tokens.toml");
    let acme = create_token(&tokens_file, "acme");
    let globex = create_token(&tokens_file, "globex");
    let start = || {
        let tokens_file = tokens_file.clone();
        ClusterBuilder::new().data_dir(&data_dir).configure(move |c| c.auth.tokens_file = Some(tokens_file)).start()
    };
    let node = start().await;

    assert_eq!(export(&node, As::Token(&acme), &spans_of("acme-shop", SHARED_TRACE, 3)).await, 200);
    assert_eq!(export(&node, As::Token(&globex), &spans_of("globex-bank", SHARED_TRACE, 5)).await, 200);
    // The Python SDK, over gRPC with globex's token: its traces go to globex.
    let endpoint = node.otlp_grpc();
    let header = format!("authorization=Bearer%20{globex}");
    let sdk_spans = tokio::task::spawn_blocking(move || {
        send_traces_with_env(&endpoint, "grpc", "globex-bank", 2, &[("OTEL_EXPORTER_OTLP_HEADERS", &header)])
    })
    .await
    .expect("python task")
    .expect("the SDK exports");
    let globex_spans = 5 + sdk_spans.len() as i64;

    assert_sees_only(&node, As::Token(&acme), "acme-shop", 3, &["globex"]).await;
    assert_sees_only(&node, As::Token(&globex), "globex-bank", globex_spans, &["acme"]).await;

    // A token acts for its own tenant only, and a request without one is refused.
    let (status, body) = sql(&node, As::Token(&acme), "SELECT 1").await;
    assert_eq!(status, 200, "{body}");
    let request = node.http.post(format!("{}/api/v1/sql", node.query())).json(&json!({"sql": "SELECT 1"}));
    let response = request.bearer_auth(&acme).header("X-Scope-OrgID", "globex").send().await.expect("sent");
    assert_eq!(response.status().as_u16(), 403);
    assert!(response.text().await.expect("body").contains("cannot act for tenant \\\"globex\\\""));
    assert_eq!(sql(&node, As::Nobody, "SELECT 1").await.0, 401);
    let (_, session) = get(&node, As::Token(&globex), "/api/v1/session").await;
    assert_eq!(session["tenant"], "globex");

    // Each tenant has its own directory, and its rows come back after a restart.
    node.stop().await;
    assert!(data_dir.join("tenants/acme/shard-0000/spans/manifest.json").is_file());
    assert!(data_dir.join("tenants/globex/shard-0000/spans/manifest.json").is_file());
    let node = start().await;
    let count = "SELECT count(*) FROM spans";
    assert_eq!(rows(&node, As::Token(&acme), count).await[0][0], 3);
    assert_eq!(rows(&node, As::Token(&globex), count).await[0][0], globex_spans);
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_tokens_x_scope_orgid_chooses_the_tenant_when_multi_tenant() {
    let node = ClusterBuilder::new().configure(|c| c.auth.multi_tenant = true).start().await;
    assert_eq!(export(&node, As::OrgId("team-a"), &spans_of("a-api", SHARED_TRACE, 2)).await, 200);
    assert_eq!(export(&node, As::Nobody, &spans_of("default-api", SHARED_TRACE, 4)).await, 200);

    // gRPC carries the header as metadata.
    let mut grpc = TraceServiceClient::connect(node.otlp_grpc()).await.expect("grpc connects");
    let body: ExportTraceServiceRequest =
        serde_json::from_value(spans_of("b-api", SHARED_TRACE, 6)).expect("OTLP/JSON converts");
    let mut request = tonic::Request::new(body);
    request.metadata_mut().insert("x-scope-orgid", "team-b".parse().expect("metadata"));
    grpc.export(request).await.expect("team-b's export is accepted");

    assert_sees_only(&node, As::OrgId("team-a"), "a-api", 2, &["b-api", "default-api", "team-b"]).await;
    assert_sees_only(&node, As::OrgId("team-b"), "b-api", 6, &["\"a-api", "default-api", "team-a"]).await;
    assert_sees_only(&node, As::Nobody, "default-api", 4, &["\"a-api", "b-api", "team-"]).await;
    let (_, session) = get(&node, As::OrgId("team-b"), "/api/v1/session").await;
    assert_eq!((session["auth"].clone(), session["tenant"].clone()), (json!(false), json!("team-b")));

    // A header that cannot be a tenant is bad input on both sides.
    assert_eq!(export(&node, As::OrgId("../etc"), &spans_of("x", SHARED_TRACE, 1)).await, 400);
    let (status, body) = sql(&node, As::OrgId("a b"), "SELECT 1").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("X-Scope-OrgID"), "{body}");
    node.stop().await;
}

/// Posts `body` for `tenant` until it is acknowledged, as an SDK retries:
/// every refusal must be a retryable 503, and none may come after `deadline`.
async fn post_until_acknowledged(client: &reqwest::Client, url: &str, tenant: &str, body: &Value, deadline: Instant) {
    loop {
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("X-Scope-OrgID", tenant)
            .body(body.to_string())
            .send()
            .await
            .expect("sent");
        match response.status().as_u16() {
            200 => return,
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
            status => panic!("{tenant}: a write got {status}: {}", response.text().await.unwrap_or_default()),
        }
    }
}

/// `SELECT count(*)` for `tenant`, once a query answers (a 503 while a
/// shard moves is retried until `deadline`); never a short answer.
async fn tenant_count(client: &reqwest::Client, query: &str, tenant: &str, sql: &str, deadline: Instant) -> i64 {
    loop {
        let response = client
            .post(format!("{query}/api/v1/sql"))
            .header("X-Scope-OrgID", tenant)
            .json(&json!({ "sql": sql }))
            .send()
            .await
            .expect("sent");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        match status {
            200 => return body["rows"][0][0].as_i64().expect("count"),
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
            _ => panic!("{tenant}: {sql} got {status}: {body}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_keeps_tenants_apart_and_fails_each_over_without_loss() {
    let weed = SeaweedFs::start().await;
    let cluster = ProcessClusterBuilder::new()
        .collectors(1)
        .storage(2)
        .query(1)
        .shards(4)
        .object_store(&weed)
        .env("SKEIN_AUTH__MULTI_TENANT", "true")
        .env("SKEIN_CLUSTER__FAILOVER_AFTER", "5s")
        .start();
    cluster.wait_healthy().await;
    let client = skein_bench::client::http_client();
    let (url, query) = (format!("{}/v1/traces", cluster.otlp_http(0)), cluster.query_url(0));
    // The same trace IDs in every tenant, a different number of them each.
    let tenants = [("team-a", 6), ("team-b", 3), ("default", 2)];
    let deadline = Instant::now() + Duration::from_secs(120);
    for (tenant, traces) in tenants {
        for trace in 1..=traces {
            post_until_acknowledged(&client, &url, tenant, &trace_request(trace, 4), deadline).await;
        }
    }
    let check = |deadline: Instant| {
        let (client, query) = (client.clone(), query.clone());
        async move {
            for (tenant, traces) in tenants {
                let spans = i64::from(traces) * 4;
                let all = tenant_count(&client, &query, tenant, "SELECT count(*) FROM spans", deadline).await;
                assert_eq!(all, spans, "{tenant}");
                let distinct = "SELECT count(DISTINCT span_id) FROM spans s JOIN traces t ON s.trace_id = t.trace_id";
                assert_eq!(tenant_count(&client, &query, tenant, distinct, deadline).await, spans, "{tenant}");
            }
        }
    };
    check(Instant::now() + Duration::from_secs(30)).await;

    // kill -9 a storage node: each tenant's shards of it fail over, with
    // their WAL objects under tenants/<tenant>/ in the bucket.
    let mut cluster = cluster;
    cluster.storage[1].kill9();
    check(Instant::now() + Duration::from_secs(60)).await;
}
