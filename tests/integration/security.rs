//! TLS and bearer tokens end to end: the Python SDK exports over TLS with a
//! token (gRPC and HTTP), tokens made by `skein token create`; wrong,
//! missing, under-scoped and removed tokens are refused; client
//! certificates are required with mTLS; certificates rotate without a
//! restart.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;
use skein_bench::{IngestArgs, ingest as bench_ingest};

use crate::support::cluster::ProcessClusterBuilder;
use crate::support::python::send_traces_with_env;
use crate::support::tls::{TestCa, TestCert, https_request};
use crate::support::{ClusterBuilder, TestNode};

/// Longest wait for a changed file to be noticed (the servers check every 2 s).
const RELOAD_DEADLINE: Duration = Duration::from_secs(15);

/// `skein token create ... --json`, the real binary, appending to `tokens_file`.
fn create_token(tokens_file: &Path, scopes: &str) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["token", "create", "--tenant", "acme", "--scopes", scopes, "--json", "--tokens-file"])
        .arg(tokens_file)
        .output()
        .expect("skein token create runs");
    assert!(output.status.success(), "token create failed: {}", String::from_utf8_lossy(&output.stderr));
    let json: Value = serde_json::from_slice(&output.stdout).expect("json");
    assert_eq!(json["tenant"], "acme");
    json["token"].as_str().expect("token").to_owned()
}

async fn start_secure(server: &TestCert, client_ca: Option<&Path>, tokens_file: Option<&Path>) -> TestNode {
    let (cert, key) = (server.cert_file.clone(), server.key_file.clone());
    let (client_ca, tokens_file) = (client_ca.map(Path::to_path_buf), tokens_file.map(Path::to_path_buf));
    ClusterBuilder::new()
        .configure(move |c| {
            c.tls.cert_file = Some(cert);
            c.tls.key_file = Some(key);
            c.tls.client_ca_file = client_ca;
            c.auth.tokens_file = tokens_file;
        })
        .start()
        .await
}

/// The SDK's environment for an exporter using `token` over TLS.
fn sdk_env<'a>(ca: &'a str, header: &'a str) -> [(&'a str, &'a str); 2] {
    [("OTEL_EXPORTER_OTLP_CERTIFICATE", ca), ("OTEL_EXPORTER_OTLP_HEADERS", header)]
}

async fn sdk_export(
    endpoint: String,
    protocol: &'static str,
    env: Vec<(String, String)>,
) -> Result<Vec<Value>, String> {
    tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        send_traces_with_env(&endpoint, protocol, "secure-shop", 2, &env)
    })
    .await
    .expect("python task")
}

fn owned(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_exports_over_tls_with_tokens_and_bad_tokens_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "main");
    let server = ca.issue(dir.path(), "server");
    let tokens_file = dir.path().join("tokens.toml");
    let ingest = create_token(&tokens_file, "ingest");
    let query = create_token(&tokens_file, "query");
    let node = start_secure(&server, None, Some(&tokens_file)).await;
    let ca_file = ca.cert_file.to_str().expect("utf8 path").to_owned();
    let grpc = format!("https://{}", node.addresses.otlp_grpc);
    let http = format!("https://{}", node.addresses.otlp_http);

    // The real SDK, both transports, over TLS with an ingest token.
    let good = format!("authorization=Bearer%20{ingest}");
    let mut sent = 0;
    for (endpoint, protocol) in [(&grpc, "grpc"), (&http, "http")] {
        let spans = sdk_export(endpoint.clone(), protocol, owned(&sdk_env(&ca_file, &good))).await;
        sent += spans.unwrap_or_else(|e| panic!("{protocol} over tls with a token: {e}")).len();
    }
    assert!(sent > 0);

    // Refused, and not retried into success: a wrong token, a token
    // without the ingest scope, no token at all.
    let wrong = "authorization=Bearer%20skein_not-a-real-token".to_owned();
    let query_only = format!("authorization=Bearer%20{query}");
    for (endpoint, protocol, unauthenticated, forbidden) in
        [(&grpc, "grpc", "UNAUTHENTICATED", "PERMISSION_DENIED"), (&http, "http", "code: 401", "code: 403")]
    {
        let no_token = owned(&[("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.as_str())]);
        for (env, expected) in [
            (owned(&sdk_env(&ca_file, &wrong)), unauthenticated),
            (owned(&sdk_env(&ca_file, &query_only)), forbidden),
            (no_token, unauthenticated),
        ] {
            let error = sdk_export(endpoint.clone(), protocol, env).await.expect_err("refused");
            assert!(error.contains(expected), "{protocol}: expected {expected} in {error}");
            assert!(!error.contains("retrying"), "{protocol}: auth failures are not retried: {error}");
        }
    }

    // The query API: 401 without a token, 403 with the wrong scope, and the
    // exported spans, exactly, with the right one; health stays open.
    let addr = node.addresses.query;
    let get = |path: &'static str, token: Option<String>| {
        let ca_file = ca.cert_file.clone();
        async move { https_request(addr, "GET", path, &ca_file, None, token.as_deref(), None).await.expect("https") }
    };
    let missing = get("/api/v1/services", None).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert_eq!(missing.headers["www-authenticate"], "Bearer");
    assert!(missing.body.contains("unauthenticated"), "{}", missing.body);
    let forbidden = get("/api/v1/services", Some(ingest.clone())).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.body);
    assert!(forbidden.body.contains("lacks the query scope"), "{}", forbidden.body);
    assert_eq!(get("/healthz", None).await.status, 200);
    let session: Value = serde_json::from_str(&get("/api/v1/session", Some(query.clone())).await.body).expect("json");
    assert_eq!(session["tenant"], "acme");
    assert_eq!(session["scopes"], serde_json::json!(["query"]));
    let services = get("/api/v1/services", Some(query.clone())).await;
    assert_eq!(services.status, 200, "{}", services.body);
    assert!(services.body.contains("secure-shop"), "{}", services.body);
    let sql = r#"{"sql": "SELECT count(*) FROM spans"}"#;
    let count = https_request(addr, "POST", "/api/v1/sql", &ca.cert_file, None, Some(&query), Some(sql)).await;
    let count: Value = serde_json::from_str(&count.expect("https").body).expect("json");
    assert_eq!(count["rows"][0][0], sent, "every exported span once, nothing from the refused exports: {count}");

    // Skein's own clients over TLS with tokens: the load generator on both
    // transports (then every span it sent is stored), and cluster status.
    let ca_path = ca.cert_file.to_str().expect("utf8").to_owned();
    let mut benched = 0;
    for (protocol, endpoint) in [("grpc", &grpc), ("http", &http)] {
        let args = ["ingest", "--protocol", protocol, "--endpoint", endpoint, "--ca", &ca_path, "--token", &ingest];
        let args = args.into_iter().chain(["--rate", "2000", "--duration", "1s", "--batch", "50", "--json"]);
        let report = bench_ingest(IngestArgs::try_parse_from(args).expect("flags")).await.expect("bench over tls");
        assert!(report.items_acknowledged > 0 && report.items_acknowledged == report.items_sent, "{protocol}");
        benched += report.items_acknowledged;
    }
    let count = https_request(addr, "POST", "/api/v1/sql", &ca.cert_file, None, Some(&query), Some(sql)).await;
    let count: Value = serde_json::from_str(&count.expect("https").body).expect("json");
    assert_eq!(count["rows"][0][0], sent as u64 + benched, "{count}");
    let status = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["cluster", "status", "--json", "--query", &format!("https://{addr}"), "--ca", &ca_path])
        .env("SKEIN_TOKEN", &query)
        .output()
        .expect("skein cluster status runs");
    assert!(status.status.success(), "cluster status over tls: {}", String::from_utf8_lossy(&status.stderr));
    let status: Value = serde_json::from_slice(&status.stdout).expect("json");
    assert_eq!(status["mode"], "all-in-one", "{status}");
    let refused = Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["cluster", "status", "--query", &format!("https://{addr}"), "--insecure"])
        .env_remove("SKEIN_TOKEN")
        .output()
        .expect("skein cluster status runs");
    assert!(!refused.status.success(), "no token");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{}", String::from_utf8_lossy(&refused.stderr));

    // Clear text on the TLS port gets no answer.
    let plain = skein_bench::client::http_client().get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err(), "plain http on a tls port: {plain:?}");

    // Removing the query token from the file revokes it without a restart.
    let text = std::fs::read_to_string(&tokens_file).expect("reads");
    let kept: Vec<&str> = text.split("\n[[tokens]]").filter(|entry| !entry.contains("\"query\"")).collect();
    std::fs::write(&tokens_file, kept.join("\n[[tokens]]")).expect("rewrites");
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        let answer = get("/api/v1/services", Some(query.clone())).await;
        if answer.status == 401 {
            break;
        }
        assert!(Instant::now() < deadline, "removed token still accepted after {RELOAD_DEADLINE:?}: {}", answer.status);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mtls_requires_a_client_certificate_from_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "main");
    let server = ca.issue(dir.path(), "server");
    let client = ca.issue(dir.path(), "client");
    let stranger = TestCa::new(dir.path(), "other").issue(dir.path(), "stranger");
    let node = start_secure(&server, Some(&ca.cert_file), None).await;
    let addr = node.addresses.query;

    let ok =
        https_request(addr, "GET", "/api/v1/services", &ca.cert_file, Some(&client), None, None).await.expect("mtls");
    assert_eq!(ok.status, 200, "{}", ok.body);
    for (what, cert) in [("no client certificate", None), ("a certificate of another CA", Some(&stranger))] {
        let refused = https_request(addr, "GET", "/healthz", &ca.cert_file, cert, None, None).await;
        assert!(refused.is_err(), "{what} must be refused: got {}", refused.map(|a| a.status).unwrap_or(0));
    }
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_certificates_are_served_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "main");
    let server = ca.issue(dir.path(), "server");
    let node = start_secure(&server, None, None).await;
    let addr = node.addresses.query;
    let first = https_request(addr, "GET", "/healthz", &ca.cert_file, None, None, None).await.expect("https");
    assert_eq!(first.server_cert, server.der);

    // cert-manager style: new files in place of the old ones.
    let rotated = ca.issue(dir.path(), "rotated");
    std::fs::copy(&rotated.key_file, &server.key_file).expect("key");
    std::fs::copy(&rotated.cert_file, &server.cert_file).expect("cert");
    let deadline = Instant::now() + RELOAD_DEADLINE;
    loop {
        let answer = https_request(addr, "GET", "/healthz", &ca.cert_file, None, None, None).await.expect("https");
        assert_eq!(answer.status, 200);
        if answer.server_cert == rotated.der {
            break;
        }
        assert!(Instant::now() < deadline, "the old certificate is still served after {RELOAD_DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    node.stop().await;
}

/// `storage.object_store.server_side_encryption = "sse-s3"`: every object
/// Skein writes is stored encrypted by the store (SeaweedFS here), and
/// reads back transparently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_are_written_with_server_side_encryption() {
    use crate::support::seaweedfs::{BUCKET, SeaweedFs};
    use skein_storage::{ObjectStoreConfig, ServerSideEncryption};
    let weed = SeaweedFs::start().await;
    let store = ObjectStoreConfig {
        url: format!("s3://{BUCKET}/sse"),
        endpoint: Some(weed.endpoint()),
        allow_http: true,
        access_key_id: Some("skein-test".into()),
        secret_access_key: Some("skein-test".into()),
        server_side_encryption: Some(ServerSideEncryption::SseS3),
        ..ObjectStoreConfig::default()
    };
    let node = ClusterBuilder::new().configure(move |c| c.storage.object_store = Some(store)).start().await;
    let trace_id = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
    let span = serde_json::json!({
        "traceId": trace_id, "spanId": "5e5e5e5e5e5e5e5e", "name": "encrypted", "kind": 1,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000",
    });
    let body = serde_json::json!({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [span]}]}]});
    assert_eq!(node.post_otlp_json(&body).await.0, 200);
    node.flush().await;
    let keys = weed.keys("sse/").await;
    let parquet = keys.iter().find(|k| k.ends_with(".parquet")).unwrap_or_else(|| panic!("no Parquet file: {keys:?}"));
    let head = skein_bench::client::http_client()
        .head(format!("{}/{BUCKET}/{parquet}", weed.endpoint()))
        .send()
        .await
        .expect("head");
    assert_eq!(
        head.headers().get("x-amz-server-side-encryption").and_then(|v| v.to_str().ok()),
        Some("AES256"),
        "{:?}",
        head.headers()
    );
    assert_eq!(node.trace(trace_id).await["spans"].as_array().map(Vec::len), Some(1));
    node.stop().await;
}

/// A storage node's admin port serves TLS as `[tls]` says, and `/admin/drain`
/// needs a token of the `admin` scope; `skein storage --drain` reaches it
/// with `--ca` and `--token`. Health checks stay open.
#[tokio::test(flavor = "multi_thread")]
async fn a_storage_nodes_admin_port_speaks_tls_and_drain_needs_the_admin_scope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = TestCa::new(dir.path(), "main");
    let server = ca.issue(dir.path(), "server");
    let tokens_file = dir.path().join("tokens.toml");
    let admin_token = create_token(&tokens_file, "admin");
    let query_token = create_token(&tokens_file, "query");
    let path = |p: &Path| p.display().to_string();
    let cluster = ProcessClusterBuilder::new()
        .storage(1)
        .collectors(0)
        .query(0)
        .env("SKEIN_TLS__CERT_FILE", &path(&server.cert_file))
        .env("SKEIN_TLS__KEY_FILE", &path(&server.key_file))
        .env("SKEIN_AUTH__TOKENS_FILE", &path(&tokens_file))
        .start();
    let admin: std::net::SocketAddr = cluster.storage[0].address("admin").parse().expect("admin address");

    let health = https_request(admin, "GET", "/healthz", &ca.cert_file, None, None, None).await.expect("tls");
    assert_eq!(health.status, 200, "{}", health.body);
    let clear = skein_bench::client::http_client().get(format!("http://{admin}/healthz")).send().await;
    assert!(clear.is_err() || clear.is_ok_and(|r| !r.status().is_success()), "clear text must not be served");
    // No object store here: an authorized drain is refused as impossible (409).
    for (token, status) in [(None, 401), (Some(query_token.as_str()), 403), (Some(admin_token.as_str()), 409)] {
        let answer = https_request(admin, "POST", "/admin/drain", &ca.cert_file, None, token, None).await.expect("tls");
        assert_eq!(answer.status, status, "token {token:?}: {}", answer.body);
    }
    let state =
        https_request(admin, "GET", "/admin/drain", &ca.cert_file, None, Some(&admin_token), None).await.expect("tls");
    assert_eq!((state.status, state.body.contains(r#""draining":false"#)), (200, true), "{}", state.body);

    let drain = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_skein"))
            .args(["storage", "--drain", "--admin", &format!("https://{admin}"), "--drain-timeout", "5s", "--ca"])
            .arg(&ca.cert_file)
            .env("SKEIN_TOKEN", token)
            .output()
            .expect("skein storage --drain runs")
    };
    let refused = drain(&query_token);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("403"), "{stderr}");
    let impossible = drain(&admin_token);
    let stderr = String::from_utf8_lossy(&impossible.stderr);
    assert!(!impossible.status.success() && stderr.contains("409") && stderr.contains("object_store"), "{stderr}");
}
