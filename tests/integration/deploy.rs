//! Deployment files stay true: the Kubernetes manifests render with
//! `kubectl kustomize` to the committed copy, validate offline against the
//! Kubernetes schemas, and carry a Skein configuration the binary accepts.

use std::process::Command;

use crate::support::{python, workspace_root};

#[test]
fn kubernetes_manifests_render_validate_and_load() {
    let root = workspace_root();
    let output = Command::new(root.join("scripts/check-kubernetes.sh"))
        .current_dir(&root)
        .env("SKEIN_TEST_PYTHON", python::python())
        .env("SKEIN_BIN", env!("CARGO_BIN_EXE_skein"))
        .output()
        .expect("check-kubernetes.sh runs");
    assert!(
        output.status.success(),
        "scripts/check-kubernetes.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
