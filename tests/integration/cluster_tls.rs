//! mTLS between the roles of a cluster (`[cluster.tls]`): members with a
//! certificate of the cluster CA write and read through the storage nodes'
//! internal port; a member with a certificate of another CA is refused,
//! and both sides say so in their logs.

use serde_json::json;

use crate::cluster::{count, post, trace_request};
use crate::support::cluster::ProcessClusterBuilder;
use crate::support::tls::{TestCa, TestCert};

fn tls_env(cert: &TestCert, ca_file: &std::path::Path) -> Vec<(String, String)> {
    vec![
        ("SKEIN_CLUSTER__TLS__CERT_FILE".to_owned(), cert.cert_file.display().to_string()),
        ("SKEIN_CLUSTER__TLS__KEY_FILE".to_owned(), cert.key_file.display().to_string()),
        ("SKEIN_CLUSTER__TLS__CA_FILE".to_owned(), ca_file.display().to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_members_talk_over_mtls_and_refuse_a_stranger() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ca = TestCa::new(dir.path(), "cluster");
    let member = ca.issue(dir.path(), "member");
    let mut builder = ProcessClusterBuilder::new().collectors(1).storage(2).query(1).shards(4).capture_logs("info");
    for (key, value) in tls_env(&member, &ca.cert_file) {
        builder = builder.env(&key, &value);
    }
    let cluster = builder.start();
    cluster.wait_healthy().await;
    cluster.storage[0].wait_for_log_line(&["storage internal port serving", "tls=true"]);

    // Writes (Flight DoPut), health (DoAction) and scans (DoGet) all cross mTLS.
    let client = skein_bench::client::http_client();
    for trace in 1..=4 {
        let (status, text, _) =
            post(&client, &format!("{}/v1/traces", cluster.otlp_http(0)), &trace_request(trace, 3)).await;
        assert_eq!(status, 200, "{text}");
    }
    assert_eq!(count(&client, &cluster.query_url(0), "SELECT count(*) FROM spans").await, 12);

    // A collector whose certificate another CA signed gets nowhere, and
    // says why; so do the storage nodes it tried.
    let stranger = TestCa::new(dir.path(), "stranger").issue(dir.path(), "stranger");
    let rogue = cluster.start_collector("rogue", tls_env(&stranger, &ca.cert_file));
    let line = rogue.wait_for_log_line(&["storage node is unhealthy"]);
    assert!(line.to_lowercase().contains("certificate"), "the collector says why: {line}");
    let line = cluster.storage[0].wait_for_log_line(&["tls handshake refused", "listener=\"internal\""]);
    assert!(line.contains("WARN"), "a refused member is a warning: {line}");
    assert!(line.to_lowercase().contains("certificate"), "the storage node says why: {line}");
    let (status, text, _) = post(&client, &format!("{}/v1/traces", rogue.url("otlp_http")), &trace_request(9, 3)).await;
    assert_eq!(status, 503, "nothing is acknowledged without a storage node: {text}");

    // A collector without cluster TLS is refused the same way.
    let plain = cluster.start_collector("plain", vec![]);
    plain.wait_for_log_line(&["cluster tls off"]);
    plain.wait_for_log_line(&["storage node is unhealthy"]);
    assert_eq!(
        count(&client, &cluster.query_url(0), "SELECT count(*) FROM spans").await,
        12,
        "{}",
        json!("no stray writes")
    );
}
