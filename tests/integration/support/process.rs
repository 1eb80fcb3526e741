//! The real `skein` binary as a child process, for crash and signal tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct SkeinProcess {
    child: Child,
    pub otlp_http: String,
    pub query: String,
}

impl SkeinProcess {
    /// Starts `skein all-in-one` on port 0 over `data_dir` and waits until
    /// it reports ready through its ready file.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with_env(data_dir, &[])
    }

    /// As [`Self::start`], with extra `SKEIN_*` settings in the environment.
    pub fn start_with_env(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        let ready = data_dir.with_extension("ready.json");
        let _ = std::fs::remove_file(&ready);
        let child = command(data_dir, &ready).envs(env.iter().copied()).spawn().expect("skein binary starts");
        let mut process = Self { child, otlp_http: String::new(), query: String::new() };
        let addresses = process.wait_ready(&ready);
        process.otlp_http = format!("http://{}", addresses["otlp_http"].as_str().expect("otlp_http"));
        process.query = format!("http://{}", addresses["query"].as_str().expect("query"));
        process
    }

    /// Starts a second `skein all-in-one` over the same data directory,
    /// which must refuse to start: its exit status and standard error.
    pub fn start_another(&self, data_dir: &Path) -> (std::process::ExitStatus, String) {
        let ready = data_dir.with_extension("another.ready.json");
        let mut child = command(data_dir, &ready).stderr(Stdio::piped()).spawn().expect("a second skein binary starts");
        let deadline = Instant::now() + Duration::from_secs(60);
        while child.try_wait().expect("poll child").is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                panic!("a second skein on a data directory in use still runs after 60 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("reaped");
        (output.status, String::from_utf8_lossy(&output.stderr).into_owned())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self, ready: &PathBuf) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(text) = std::fs::read_to_string(ready) {
                return serde_json::from_str(&text).expect("ready file is JSON");
            }
            if let Some(status) = self.child.try_wait().expect("poll child") {
                panic!("skein exited before it was ready: {status}");
            }
            assert!(Instant::now() < deadline, "skein was not ready within 120 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// SIGTERM and wait for a clean exit.
    pub fn terminate(mut self) {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        send_sigterm(pid);
        let status = self.child.wait().expect("reaped");
        assert!(status.success(), "skein exited with {status} after SIGTERM");
    }
}

/// `skein all-in-one` on port 0 over `data_dir`, writing `ready` once ready.
fn command(data_dir: &Path, ready: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_skein"));
    command
        .args(["--data-dir"])
        .arg(data_dir)
        .args(["--otlp-grpc-listen", "127.0.0.1:0", "--otlp-http-listen", "127.0.0.1:0"])
        .args(["--query-listen", "127.0.0.1:0", "--shards", "2", "--log-filter", "warn"])
        .arg("all-in-one")
        .arg("--ready-file")
        .arg(ready)
        // Nothing is flushed by age during the test: a kill loses only
        // what the WAL does not hold.
        .env("SKEIN_STORAGE__FLUSH_INTERVAL", "1h")
        .stdin(Stdio::null());
    command
}

impl Drop for SkeinProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// std can only SIGKILL a child; the workspace forbids `unsafe`, so SIGTERM
/// goes through the `kill` command.
fn send_sigterm(pid: i32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill runs");
    assert!(status.success(), "kill -TERM {pid} failed");
}
