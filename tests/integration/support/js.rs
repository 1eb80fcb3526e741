//! The OpenTelemetry JavaScript SDK (tests/js), used as a real client from
//! Node.js and from a browser page.
//!
//! The harness runs `npm ci` in tests/js once per `package-lock.json`: a
//! stamp in `node_modules` records the lock file it installed (as the
//! Python harness does for its venv), so a plain `cargo test` works on a
//! fresh machine with Node.js and access to the npm registry.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use super::workspace_root;

/// tests/js with its packages installed.
pub fn js_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = workspace_root().join("tests/js");
        let lock = std::fs::read_to_string(dir.join("package-lock.json")).expect("tests/js/package-lock.json");
        let stamp = dir.join("node_modules/.skein-package-lock");
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir)
                .status()
                .unwrap_or_else(|e| panic!("cannot run npm (Node.js and npm are needed, as for the UI): {e}"));
            assert!(status.success(), "npm ci in tests/js failed with {status}");
            std::fs::write(&stamp, lock).expect("write npm stamp");
        }
        dir
    })
    .clone()
}

/// Runs `node <script> <args>` in tests/js and parses the JSON it prints.
pub fn run_node(script: &str, args: &[&str], env: &[(&str, &Path)]) -> Value {
    let mut command = Command::new("node");
    command.arg(script).args(args).current_dir(js_dir());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("node runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node {script} {args:?} failed: {}\n{stderr}", output.status);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("node {script} printed no JSON ({e}): {}\n{stderr}", String::from_utf8_lossy(&output.stdout))
    })
}

/// Bundles tests/js/browser/app.js for the page, with esbuild from npm.
pub fn bundle_browser_app(out_dir: &Path) -> PathBuf {
    let dir = js_dir();
    let out = out_dir.join("app.js");
    let status = Command::new(dir.join("node_modules/.bin/esbuild"))
        .args(["browser/app.js", "--bundle", "--format=iife", "--log-level=warning"])
        .arg(format!("--outfile={}", out.display()))
        .current_dir(&dir)
        .status()
        .expect("esbuild runs");
    assert!(status.success(), "esbuild failed with {status}");
    out
}
