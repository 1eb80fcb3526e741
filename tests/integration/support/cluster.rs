//! A multi-process cluster for tests: every member is the real `skein`
//! binary in its own process on port 0 (`skein storage`, `skein collector`,
//! `skein query`), started in dependency order and awaited through ready
//! files with deadlines. Members can be killed (`kill -9`), frozen
//! (`SIGSTOP`) and restarted over the same data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use skein_model::cluster::test_dns::TestDns;

use super::seaweedfs::{BUCKET, SeaweedFs};

const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// One member process.
pub struct Member {
    pub name: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ready_file: PathBuf,
    /// Where the process's log goes, when captured.
    log_file: Option<PathBuf>,
    child: Option<Child>,
    pub addresses: Value,
}

impl Member {
    fn spawn(name: &str, args: Vec<String>, env: Vec<(String, String)>, run_dir: &Path, capture: bool) -> Self {
        let mut member = Self::new(name, args, env, run_dir, capture);
        member.start();
        member
    }

    /// A member not started yet.
    fn new(name: &str, args: Vec<String>, env: Vec<(String, String)>, run_dir: &Path, capture: bool) -> Self {
        let ready_file = run_dir.join(format!("{name}.json"));
        let log_file = capture.then(|| run_dir.join(format!("{name}.log")));
        Self { name: name.to_owned(), args, env, ready_file, log_file, child: None, addresses: Value::Null }
    }

    /// A storage node's SRV target: host and internal port.
    fn srv_target(&self) -> (String, u16) {
        let i = self.args.iter().position(|a| a == "--internal-listen").expect("a storage node");
        (storage_host(&self.name), port(&self.args[i + 1]))
    }

    /// Changes the value of `flag` for the next start.
    fn set_arg(&mut self, flag: &str, value: &str) {
        let i = self.args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{} has no {flag}", self.name));
        self.args[i + 1] = value.to_owned();
    }

    /// Waits (with a deadline) until the member's captured log has a line
    /// containing every one of `parts`, and returns that line.
    pub fn wait_for_log_line(&self, parts: &[&str]) -> String {
        let path = self.log_file.as_ref().expect("the cluster captures logs");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if let Some(line) = text.lines().find(|line| parts.iter().all(|p| line.contains(p))) {
                return line.to_owned();
            }
            assert!(Instant::now() < deadline, "{} logged no line with {parts:?}:\n{text}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// (Re)starts the process with the same arguments and waits until ready.
    pub fn start(&mut self) {
        let _ = std::fs::remove_file(&self.ready_file);
        let stderr = match &self.log_file {
            Some(path) => {
                Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).expect("member log file"))
            }
            None => Stdio::inherit(),
        };
        let child = Command::new(env!("CARGO_BIN_EXE_skein"))
            .args(&self.args)
            .arg("--ready-file")
            .arg(&self.ready_file)
            // Nothing is flushed by age during a test.
            .env("SKEIN_STORAGE__FLUSH_INTERVAL", "1h")
            .env("SKEIN_CLUSTER__HEALTH_INTERVAL", "200ms")
            .env("SKEIN_CLUSTER__REQUEST_TIMEOUT", "3s")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("skein binary starts");
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&self.ready_file) {
                self.addresses = serde_json::from_str(&text).expect("ready file is JSON");
                self.pin_ports();
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().expect("poll child")) {
                panic!("{} exited before it was ready: {status}", self.name);
            }
            assert!(Instant::now() < deadline, "{} was not ready within {READY_TIMEOUT:?}", self.name);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A restart binds the ports of the first start, as a restarted
    /// server would: the other members know it by address.
    fn pin_ports(&mut self) {
        const FLAGS: [(&str, &str); 5] = [
            ("--internal-listen", "internal"),
            ("--admin-listen", "admin"),
            ("--otlp-grpc-listen", "otlp_grpc"),
            ("--otlp-http-listen", "otlp_http"),
            ("--query-listen", "query"),
        ];
        for (flag, key) in FLAGS {
            if let (Some(i), Some(bound)) = (self.args.iter().position(|a| a == flag), self.addresses[key].as_str()) {
                self.args[i + 1] = bound.to_owned();
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn address(&self, key: &str) -> String {
        self.addresses[key]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no {key}: {}", self.name, self.addresses))
            .to_owned()
    }

    pub fn url(&self, key: &str) -> String {
        format!("http://{}", self.address(key))
    }

    /// SIGKILL: no chance to flush or drain.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(&mut self) {
        self.signal("TERM");
        if let Some(mut child) = self.child.take() {
            let status = child.wait().expect("reaped");
            assert!(status.success(), "{} exited with {status} after SIGTERM", self.name);
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-CONT", &child.id().to_string()]).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Builds a [`ProcessCluster`].
pub struct ProcessClusterBuilder {
    collectors: usize,
    storage: usize,
    query: usize,
    shards: usize,
    /// S3 endpoint of the object store for flushed data, if any.
    object_store: Option<String>,
    /// Environment for every member.
    env: Vec<(String, String)>,
    /// Members log at this level into `<run dir>/<name>.log` (default: warn, to stderr).
    captured_log_filter: Option<String>,
    /// Storage nodes added later ([`ProcessCluster::add_storage_nodes`]).
    added_storage: usize,
    /// Members find the storage nodes as SRV records on this DNS server
    /// ([`ProcessClusterBuilder::start_with_dns`]) instead of a list.
    dns: Option<std::net::SocketAddr>,
}

/// The SRV name storage nodes are published under in DNS-discovery tests.
pub const STORAGE_SRV: &str = "_internal._tcp.storage.skein.test";

/// Storage node `id`'s SRV target.
fn storage_host(id: &str) -> String {
    format!("{id}.storage.skein.test")
}

impl ProcessClusterBuilder {
    pub fn new() -> Self {
        Self {
            collectors: 1,
            storage: 2,
            query: 1,
            shards: 8,
            object_store: None,
            env: Vec::new(),
            captured_log_filter: None,
            added_storage: 0,
            dns: None,
        }
    }

    /// Starts the cluster with every member finding the storage nodes in
    /// `dns` (`--storage-dns`): the storage nodes started now are published
    /// first, those of [`ProcessClusterBuilder::added_storage`] by
    /// [`ProcessCluster::add_storage_nodes_by_dns`].
    pub async fn start_with_dns(mut self, dns: &TestDns) -> ProcessCluster {
        assert!(self.object_store.is_some(), "storage nodes found in dns need an object store");
        self.dns = Some(dns.addr());
        let (ids, internal) = self.storage_addresses();
        let now: Vec<(String, u16)> =
            ids.iter().zip(&internal).take(self.storage).map(|(id, a)| (storage_host(id), port(a))).collect();
        publish(dns, &now).await;
        self.start_members(ids, internal)
    }

    /// `n` more storage nodes (with an object store) that are neither
    /// started nor listed until [`ProcessCluster::add_storage_nodes`].
    pub fn added_storage(mut self, n: usize) -> Self {
        self.added_storage = n;
        self
    }

    /// Members log at `filter` into files the test reads
    /// ([`Member::wait_for_log_line`]).
    pub fn capture_logs(mut self, filter: &str) -> Self {
        self.captured_log_filter = Some(filter.to_owned());
        self
    }

    /// Storage nodes keep flushed data in `weed`'s test bucket.
    pub fn object_store(mut self, weed: &SeaweedFs) -> Self {
        self.object_store = Some(weed.endpoint());
        self
    }

    /// Sets `key` in every member's environment (a `SKEIN_*` setting).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    pub fn collectors(mut self, n: usize) -> Self {
        self.collectors = n;
        self
    }

    pub fn storage(mut self, n: usize) -> Self {
        self.storage = n;
        self
    }

    pub fn query(mut self, n: usize) -> Self {
        self.query = n;
        self
    }

    pub fn shards(mut self, n: usize) -> Self {
        self.shards = n;
        self
    }

    /// Starts storage nodes, then collectors and query nodes with their addresses.
    pub fn start(self) -> ProcessCluster {
        assert!(self.dns.is_none());
        let (ids, internal) = self.storage_addresses();
        self.start_members(ids, internal)
    }

    /// Every storage node's ID and internal address (those added later too).
    fn storage_addresses(&self) -> (Vec<String>, Vec<String>) {
        let ids: Vec<String> = (0..self.storage + self.added_storage).map(|i| format!("storage-{i}")).collect();
        // With an object store, shards fail over, and storage nodes watch
        // each other: each needs its peers' addresses before any starts.
        let internal: Vec<String> = match &self.object_store {
            Some(_) => reserve_loopback_ports(ids.len()),
            None => vec!["127.0.0.1:0".to_owned(); ids.len()],
        };
        (ids, internal)
    }

    fn start_members(self, ids: Vec<String>, internal: Vec<String>) -> ProcessCluster {
        let temp = tempfile::tempdir().expect("temp dir");
        let run_dir = temp.path().join("run");
        std::fs::create_dir_all(&run_dir).expect("run dir");
        let filter = self.captured_log_filter.clone().unwrap_or_else(|| "warn".to_owned());
        let capture = self.captured_log_filter.is_some();
        let common = |role: &str| -> Vec<String> {
            vec!["--shards".into(), self.shards.to_string(), "--log-filter".into(), filter.clone(), role.into()]
        };
        let mut storage_list = match &self.object_store {
            Some(_) => ids.iter().zip(&internal).map(|(id, address)| format!("{id}={address}")).collect::<Vec<_>>(),
            None => ids.clone(),
        };
        assert!(self.added_storage == 0 || self.object_store.is_some(), "adding storage nodes needs an object store");
        let grown_list = storage_list.join(",");
        storage_list.truncate(self.storage);
        let membership = |list: &str| -> Vec<String> {
            match self.dns {
                Some(server) => {
                    vec!["--storage-dns".into(), STORAGE_SRV.into(), "--dns-servers".into(), server.to_string()]
                }
                None => vec!["--storage-nodes".into(), list.into()],
            }
        };
        let mut storage: Vec<Member> = ids
            .iter()
            .zip(&internal)
            .enumerate()
            .map(|(i, (id, internal))| {
                let mut args: Vec<String> = vec!["--node-id".into(), id.clone()];
                args.extend(membership(&storage_list.join(",")));
                args.extend([
                    "--data-dir".into(),
                    temp.path().join(id).display().to_string(),
                    "--internal-listen".into(),
                    internal.clone(),
                    "--admin-listen".into(),
                    "127.0.0.1:0".into(),
                ]);
                let mut env = self.env.clone();
                if let Some(endpoint) = &self.object_store {
                    let prefix = temp.path().file_name().and_then(|n| n.to_str()).unwrap_or("cluster");
                    args.extend([
                        "--object-store".into(),
                        format!("s3://{BUCKET}/{prefix}"),
                        "--object-store-endpoint".into(),
                        endpoint.clone(),
                    ]);
                    // SeaweedFS without an identity config accepts any key.
                    env.push(("AWS_ACCESS_KEY_ID".to_owned(), "skein-test".to_owned()));
                    env.push(("AWS_SECRET_ACCESS_KEY".to_owned(), "skein-test".to_owned()));
                }
                args.extend(common("storage"));
                if i < self.storage {
                    Member::spawn(id, args, env, &run_dir, capture)
                } else {
                    let mut added = Member::new(id, args, env, &run_dir, capture);
                    if self.dns.is_none() {
                        added.set_arg("--storage-nodes", &grown_list);
                    }
                    added
                }
            })
            .collect();
        let added = storage.split_off(self.storage);
        let storage_nodes: Vec<String> =
            storage.iter().map(|m| format!("{}={}", m.name, m.address("internal"))).collect();
        let frontend = |extra: &[&str], role: &str| -> Vec<String> {
            let mut args = membership(&storage_nodes.join(","));
            args.extend(extra.iter().map(|s| (*s).to_owned()));
            args.extend(common(role));
            args
        };
        let collectors = (0..self.collectors)
            .map(|i| {
                let args =
                    frontend(&["--otlp-grpc-listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0"], "collector");
                Member::spawn(&format!("collector-{i}"), args, self.env.clone(), &run_dir, capture)
            })
            .collect();
        let query = (0..self.query)
            .map(|i| {
                let args = frontend(&["--query-listen", "127.0.0.1:0"], "query");
                Member::spawn(&format!("query-{i}"), args, self.env.clone(), &run_dir, capture)
            })
            .collect();
        let extra_collector =
            frontend(&["--otlp-grpc-listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0"], "collector");
        ProcessCluster { storage, collectors, query, temp, run_dir, extra_collector, capture, added, grown_list }
    }
}

/// Free loopback addresses, found by binding port 0 and letting go: the
/// only way to tell every storage node its peers before any of them runs.
/// Another process could take one in between; the member's start would
/// then fail loudly, not flakily pass.
/// Makes `dns` list exactly `targets` (host, port) as the storage nodes, at 127.0.0.1.
async fn publish(dns: &TestDns, targets: &[(String, u16)]) {
    let srv: Vec<(&str, u16)> = targets.iter().map(|(h, p)| (h.as_str(), *p)).collect();
    dns.set_srv(STORAGE_SRV, &srv).await;
    for (host, _) in targets {
        dns.set_a(host, std::net::Ipv4Addr::LOCALHOST).await;
    }
}

fn port(address: &str) -> u16 {
    address.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).unwrap_or_else(|| panic!("no port in {address}"))
}

/// Internal addresses the storage nodes are told before they start (with
/// an object store, each node lists its peers' addresses).
fn reserve_loopback_ports(count: usize) -> Vec<String> {
    super::free_loopback_ports(count).into_iter().map(|port| format!("127.0.0.1:{port}")).collect()
}

/// A running multi-process cluster.
pub struct ProcessCluster {
    pub storage: Vec<Member>,
    pub collectors: Vec<Member>,
    pub query: Vec<Member>,
    temp: TempDir,
    run_dir: PathBuf,
    /// The arguments of one more collector of this cluster.
    extra_collector: Vec<String>,
    capture: bool,
    /// Storage nodes not started yet, and the list with them.
    added: Vec<Member>,
    grown_list: String,
}

impl ProcessCluster {
    /// Starts one more collector named `name` with `env` (only): a member
    /// configured differently from the others.
    pub fn start_collector(&self, name: &str, env: Vec<(String, String)>) -> Member {
        Member::spawn(name, self.extra_collector.clone(), env, &self.run_dir, self.capture)
    }

    /// Adds the storage nodes held back by [`ProcessClusterBuilder::added_storage`]
    /// the way an operator would: every member is restarted in turn (SIGTERM,
    /// then a start) with the longer `storage_nodes` list, storage nodes
    /// first, each waited for; then the new nodes start. `between` runs
    /// after each step (a check that the cluster still answers).
    pub async fn add_storage_nodes<F: std::future::Future<Output = ()>>(
        &mut self,
        mut between: impl FnMut(String) -> F,
    ) {
        let list = self.grown_list.clone();
        for member in self.storage.iter_mut().chain(self.collectors.iter_mut()).chain(self.query.iter_mut()) {
            member.set_arg("--storage-nodes", &list);
            member.terminate();
            member.start();
            between(format!("after restarting {}", member.name)).await;
        }
        for mut member in std::mem::take(&mut self.added) {
            member.start();
            self.storage.push(member);
        }
        self.wait_healthy().await;
        between("after adding the storage nodes".to_owned()).await;
    }

    /// Adds the storage nodes held back by [`ProcessClusterBuilder::added_storage`]
    /// the way a StatefulSet scaled up does with DNS discovery: they are
    /// published in `dns` and started; no member restarts.
    pub async fn add_storage_nodes_by_dns(&mut self, dns: &TestDns) {
        assert!(
            self.storage.iter().chain(&self.added).all(|m| m.args.iter().any(|a| a == "--storage-dns")),
            "the cluster was started with start_with_dns"
        );
        let added = std::mem::take(&mut self.added);
        let all: Vec<(String, u16)> = self.storage.iter().chain(&added).map(Member::srv_target).collect();
        publish(dns, &all).await;
        for mut member in added {
            member.start();
            self.storage.push(member);
        }
    }

    /// Publishes only `ids` of the storage nodes in `dns`.
    pub async fn publish_storage_nodes(&self, dns: &TestDns, ids: &[&str]) {
        let all: Vec<(String, u16)> =
            self.storage.iter().filter(|m| ids.contains(&m.name.as_str())).map(Member::srv_target).collect();
        publish(dns, &all).await;
    }

    /// Storage node `i`'s data directory.
    pub fn storage_dir(&self, i: usize) -> PathBuf {
        self.temp.path().join(&self.storage[i].name)
    }

    /// The key prefix of this cluster's data in the object store's bucket.
    pub fn object_prefix(&self) -> String {
        self.temp.path().file_name().and_then(|n| n.to_str()).unwrap_or("cluster").to_owned()
    }

    /// A query node's base URL.
    pub fn query_url(&self, i: usize) -> String {
        self.query[i].url("query")
    }

    /// A collector's OTLP/HTTP base URL.
    pub fn otlp_http(&self, i: usize) -> String {
        self.collectors[i].url("otlp_http")
    }

    /// Waits (with a deadline) until the query node reports every storage
    /// node healthy and holding exactly the shards it owns: with failover, a
    /// node that started late may have had its shards taken over and must
    /// take them back before the cluster is settled.
    pub async fn wait_healthy(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let body: Value = skein_bench::client::http_client()
                .get(format!("{}/api/v1/cluster", self.query_url(0)))
                .send()
                .await
                .expect("cluster status")
                .json()
                .await
                .expect("json");
            let storage: Vec<&Value> =
                body["members"].as_array().expect("members").iter().filter(|m| m["role"] == "storage").collect();
            let settled = |m: &&Value| {
                let held: Vec<&Value> =
                    m["shards"].as_array().map(|s| s.iter().map(|s| &s["shard"]).collect()).unwrap_or_default();
                let owned: Vec<&Value> = m["owned_shards"].as_array().map(|s| s.iter().collect()).unwrap_or_default();
                m["healthy"] == true && held == owned
            };
            if storage.len() == self.storage.len() && storage.iter().all(settled) {
                return;
            }
            assert!(Instant::now() < deadline, "storage nodes not healthy: {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
