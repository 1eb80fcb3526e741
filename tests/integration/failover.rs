//! Shards that move between storage processes with the WAL in SeaweedFS:
//! a killed (`kill -9`) or frozen (`SIGSTOP`) storage node's shards are
//! served by the others within 30 s, a drained one hands them off before
//! it leaves, and in every case each acknowledged span is stored exactly
//! once, while writes in the gap get retryable answers that an SDK's retry
//! gets in.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::{count, get, post, sql, trace_id, trace_request};
use crate::support::cluster::{ProcessCluster, ProcessClusterBuilder, STORAGE_SRV};
use crate::support::seaweedfs::SeaweedFs;
use skein_model::cluster::test_dns::TestDns;

/// One OTLP/JSON export of `count` traces from `first` on (4 spans each):
/// their shards differ, so a request can succeed on some shards and fail
/// on others.
fn traces_request(first: u32, count: u32) -> Value {
    let resource_spans: Vec<Value> = (first..first + count)
        .flat_map(|trace| trace_request(trace, 4)["resourceSpans"].as_array().cloned().unwrap_or_default())
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// A cluster of one collector, `storage` storage nodes and one query node
/// with its WAL in SeaweedFS, and what was sent to it.
struct Rig {
    _weed: SeaweedFs,
    cluster: ProcessCluster,
    client: reqwest::Client,
    /// The collector's OTLP/HTTP traces URL.
    url: String,
    query: String,
    /// Traces acknowledged so far (ids 1..=traces, 4 spans each).
    traces: u32,
}

impl Rig {
    async fn start(storage: usize, shards: usize, env: &[(&str, &str)]) -> Self {
        let weed = SeaweedFs::start().await;
        let mut builder =
            ProcessClusterBuilder::new().collectors(1).storage(storage).query(1).shards(shards).object_store(&weed);
        for (key, value) in env {
            builder = builder.env(key, value);
        }
        Self::over(weed, builder.start()).await
    }

    /// The rig of a started `cluster` with its WAL in `weed`, once it settled.
    async fn over(weed: SeaweedFs, cluster: ProcessCluster) -> Self {
        cluster.wait_healthy().await;
        let (url, query) = (format!("{}/v1/traces", cluster.otlp_http(0)), cluster.query_url(0));
        Self { _weed: weed, cluster, client: skein_bench::client::http_client(), url, query, traces: 0 }
    }

    /// Sends `exports` exports of 4 new traces each, each posted until it is
    /// acknowledged, as an OTLP SDK retries: every refusal must be a 503
    /// with Retry-After, and the last one must come before `deadline`.
    /// Returns how many attempts were refused.
    async fn send(&mut self, exports: u32, deadline: Instant) -> u32 {
        let mut refused = 0;
        for _ in 0..exports {
            let body = traces_request(self.traces + 1, 4);
            loop {
                match post(&self.client, &self.url, &body).await {
                    (200, _, _) => break,
                    (503, text, retry_after) => {
                        assert!(retry_after.is_some(), "503 without Retry-After: {text}");
                        assert!(Instant::now() < deadline, "still refused at the deadline: {text}");
                        refused += 1;
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    (status, text, _) => panic!("a write got {status}: {text}"),
                }
            }
            self.traces += 4;
        }
        refused
    }

    fn spans(&self) -> i64 {
        i64::from(self.traces) * 4
    }

    /// One count(*) query: 200 with exactly every acknowledged span, or a
    /// 503 (a shard between owners); never a short answer. Whether it
    /// answered.
    async fn count_is_complete_or_refused(&self) -> bool {
        let (status, body) = sql(&self.client, &self.query, "SELECT count(*) FROM spans").await;
        match status {
            200 => {
                assert_eq!(body["rows"][0][0].as_i64(), Some(self.spans()), "{body}");
                true
            }
            503 => false,
            other => panic!("a query got {other}: {body}"),
        }
    }

    /// Waits (with a deadline) until a query answers, then checks that
    /// every acknowledged span is stored once and every trace is whole.
    async fn check_every_span_once(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.count_is_complete_or_refused().await {
            assert!(Instant::now() < deadline, "queries still refused");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let distinct = count(&self.client, &self.query, "SELECT count(DISTINCT span_id) FROM spans").await;
        assert_eq!(distinct, self.spans(), "no span stored twice");
        for trace in 1..=self.traces {
            let (status, body) = get(&self.client, &format!("{}/api/v1/traces/{}", self.query, trace_id(trace))).await;
            assert_eq!(status, 200, "trace {trace}: {body}");
            assert_eq!(body["spans"].as_array().map(Vec::len), Some(4), "trace {trace}");
        }
    }

    /// Shards each storage node owns, by the query node's view.
    async fn owned_shards(&self) -> Vec<usize> {
        let (_, status) = get(&self.client, &format!("{}/api/v1/cluster", self.query)).await;
        assert_eq!(status["failover"], true, "{status}");
        let storage = status["members"].as_array().expect("members").iter().filter(|m| m["role"] == "storage");
        storage.map(|m| m["owned_shards"].as_array().map_or(0, Vec::len)).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_storage_nodes_shards_fail_over_without_loss() {
    let mut rig = Rig::start(3, 8, &[("SKEIN_CLUSTER__FAILOVER_AFTER", "5s")]).await;
    // A member that misses health checks on a loaded machine may be
    // suspected for a moment: that costs retries, never rows.
    rig.send(5, Instant::now() + Duration::from_secs(120)).await;

    // kill -9 a storage node: nothing flushed, its shards' rows live only in
    // the WAL objects. Its shards must be served again within 30 s.
    rig.cluster.storage[1].kill9();
    let refused = rig.send(10, Instant::now() + Duration::from_secs(30)).await;
    assert!(refused > 0, "no write touched the killed node's shards");
    // Retried requests had landed on their other shards: stored once all the same.
    rig.check_every_span_once().await;

    // The node comes back and takes its shards back: still every span once.
    rig.cluster.storage[1].start();
    rig.cluster.wait_healthy().await;
    rig.send(5, Instant::now() + Duration::from_secs(60)).await;
    rig.check_every_span_once().await;
    assert_eq!(rig.owned_shards().await.iter().sum::<usize>(), 8, "every shard has one owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_storage_nodes_shards_fail_over_and_it_is_fenced_when_it_wakes() {
    let mut rig = Rig::start(2, 4, &[]).await;
    rig.send(3, Instant::now() + Duration::from_secs(120)).await;

    // SIGSTOP: the node neither answers nor knows it stopped. Its shards
    // must be served by the other node within 30 s, with the default
    // cluster.failover_after (10 s).
    rig.cluster.storage[0].signal("STOP");
    let refused = rig.send(5, Instant::now() + Duration::from_secs(30)).await;
    assert!(refused > 0, "no write touched the frozen node's shards");
    rig.check_every_span_once().await;

    // It wakes up still believing it owns its shards; the object store
    // fences it off, it takes them back, and nothing is lost or doubled.
    rig.cluster.storage[0].signal("CONT");
    rig.send(5, Instant::now() + Duration::from_secs(60)).await;
    rig.check_every_span_once().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_a_storage_node_moves_its_shards_without_loss_or_a_failover_wait() {
    let mut rig = Rig::start(3, 8, &[]).await;
    rig.send(4, Instant::now() + Duration::from_secs(120)).await;

    // `skein storage --drain` drains storage-1 through its admin port: its
    // shards move, it stays up holding none, and a query during the move is
    // complete or refused, never short.
    let admin = rig.cluster.storage[1].url("admin");
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_skein"))
        .args(["storage", "--drain", "--admin", &admin, "--drain-timeout", "30s"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("skein storage --drain starts");
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        rig.count_is_complete_or_refused().await;
        if let Some(status) = command.try_wait().expect("polls the drain command") {
            break status;
        }
        assert!(Instant::now() < deadline, "skein storage --drain did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "skein storage --drain failed: {status}");
    let (status, body) = get(&rig.client, &format!("{admin}/admin/drain")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["draining"], true, "{body}");
    assert_eq!(body["shards"], serde_json::json!([]), "{body}");
    rig.check_every_span_once().await;

    // SIGTERM hands storage-2's shards off before it exits: writes after
    // its exit are served well before failover_after (10 s) would move them.
    rig.cluster.storage[2].terminate();
    rig.send(4, Instant::now() + Duration::from_secs(5)).await;
    rig.check_every_span_once().await;
    assert_eq!(rig.owned_shards().await, vec![8, 0, 0], "storage-0 owns every shard");
}

/// One collector, two storage nodes and a third held back to be added, one
/// query node; the WAL in `weed`, failover after 3 s.
fn growing_cluster(weed: &SeaweedFs) -> ProcessClusterBuilder {
    ProcessClusterBuilder::new()
        .collectors(1)
        .storage(2)
        .added_storage(1)
        .query(1)
        .shards(8)
        .object_store(weed)
        .env("SKEIN_CLUSTER__FAILOVER_AFTER", "3s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_storage_node_moves_shards_to_it_without_loss() {
    let weed = SeaweedFs::start().await;
    let cluster = growing_cluster(&weed).start();
    let mut rig = Rig::over(weed, cluster).await;
    rig.send(4, Instant::now() + Duration::from_secs(120)).await;
    assert_eq!(rig.owned_shards().await.len(), 2);

    // As an operator would: every member restarted in turn with the longer
    // storage_nodes list, then the new node started. After each step a
    // query answers with every acknowledged span (it may be refused for a
    // moment while a shard changes hands, never answered short).
    let (client, query, spans) = (rig.client.clone(), rig.query.clone(), rig.spans());
    rig.cluster
        .add_storage_nodes(|step| {
            let (client, query) = (client.clone(), query.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let (status, body) = sql(&client, &query, "SELECT count(*) FROM spans").await;
                    match status {
                        200 => {
                            assert_eq!(body["rows"][0][0].as_i64(), Some(spans), "{step}: {body}");
                            return;
                        }
                        503 => assert!(Instant::now() < deadline, "{step}: queries still refused: {body}"),
                        other => panic!("{step}: a query got {other}: {body}"),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        })
        .await;
    let owned = rig.owned_shards().await;
    assert_eq!((owned.len(), owned.iter().sum::<usize>()), (3, 8), "{owned:?}");
    assert!(owned[2] > 0, "the new node owns shards: {owned:?}");

    // Writes after the move land on all three; every span is stored once.
    rig.send(6, Instant::now() + Duration::from_secs(60)).await;
    rig.check_every_span_once().await;
}

/// With `cluster.storage_dns` every member follows the SRV records, as a
/// StatefulSet scaled up and down changes them: a node that appears joins
/// and takes its share of the shards, a node that drains and disappears
/// leaves, and no member restarts. Queries meanwhile answer with every
/// acknowledged span or a 503, and at the end each span is stored once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_nodes_found_in_dns_join_and_leave_without_restarts() {
    let weed = SeaweedFs::start().await;
    let dns = TestDns::start("skein.test").await.expect("a dns server");
    let cluster = growing_cluster(&weed).env("SKEIN_CLUSTER__DNS_REFRESH", "300ms").start_with_dns(&dns).await;
    let mut rig = Rig::over(weed, cluster).await;
    rig.send(4, Instant::now() + Duration::from_secs(120)).await;
    assert_eq!(rig.owned_shards().await.len(), 2);
    let (_, status) = get(&rig.client, &format!("{}/api/v1/cluster", rig.query)).await;
    assert_eq!(status["discovery"]["srv"], STORAGE_SRV, "{status}");
    assert_eq!(status["discovery"]["error"], Value::Null, "{status}");

    // Scaled up: the new node is published and started, nothing else.
    rig.cluster.add_storage_nodes_by_dns(&dns).await;
    for _ in 0..5 {
        rig.count_is_complete_or_refused().await;
    }
    rig.cluster.wait_healthy().await;
    let owned = rig.owned_shards().await;
    assert_eq!((owned.len(), owned.iter().sum::<usize>()), (3, 8), "{owned:?}");
    assert!(owned[2] > 0, "the new node owns shards: {owned:?}");
    rig.send(6, Instant::now() + Duration::from_secs(60)).await;
    rig.check_every_span_once().await;

    // Scaled down: the node leaves DNS and drains on SIGTERM; the others
    // take its shards and drop it once it stopped answering.
    rig.cluster.publish_storage_nodes(&dns, &["storage-0", "storage-1"]).await;
    let mut gone = rig.cluster.storage.pop().expect("the added node");
    gone.terminate();
    rig.cluster.wait_healthy().await;
    let owned = rig.owned_shards().await;
    assert_eq!((owned.len(), owned.iter().sum::<usize>()), (2, 8), "{owned:?}");
    rig.send(4, Instant::now() + Duration::from_secs(60)).await;
    rig.check_every_span_once().await;
}
