//! Builds the web UI (`ui/`, Vite + React) and generates the table of its
//! files that `src/ui.rs` embeds in the binary.
//!
//! `npm ci` runs only when `ui/node_modules` is missing or was installed
//! from another lock file; the production build runs only when a UI source,
//! `package.json`, the lock file or the build configuration changed (the
//! `rerun-if-changed` lines), so Rust-only work never waits for it.
//! `SKEIN_SKIP_UI=1` skips both: the binary then serves a "UI not built" page.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files and folders of `ui/` the production build reads.
const INPUTS: [&str; 8] =
    ["src", "public", "index.html", "package.json", "package-lock.json", "vite.config.ts", "tsconfig.json", "scripts"];

/// Where `npm ci` records which lock file `node_modules` was installed from.
const LOCK_STAMP: &str = "node_modules/.skein-installed-lock.json";

fn main() {
    if let Err(message) = run() {
        eprintln!("\nerror: the Skein web UI could not be built: {message}\n");
        eprintln!("Install Node.js 20+ and npm, or set SKEIN_SKIP_UI=1 to build without the UI.\n");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    println!("cargo:rerun-if-env-changed=SKEIN_SKIP_UI");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let ui = manifest.parent().ok_or("the query crate has no parent folder")?.join("ui");
    for input in INPUTS {
        println!("cargo:rerun-if-changed={}", ui.join(input).display());
    }
    // The SQL console's example queries are read from the README.
    println!("cargo:rerun-if-changed={}", ui.join("../README.md").display());
    let out = PathBuf::from(std::env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let table = out.join("ui_assets.rs");
    if std::env::var_os("SKEIN_SKIP_UI").is_some_and(|v| !v.is_empty() && v != "0") {
        return write(&table, "pub(crate) static UI_ASSETS: Option<&[Asset]> = None;\n");
    }
    let dist = out.join("ui-dist");
    install(&ui)?;
    npm(&ui, &["run", "build"], &[("SKEIN_UI_OUT_DIR", dist.as_os_str())])?;
    write(&table, &asset_table(&dist)?)
}

/// `npm ci`, unless `node_modules` was installed from this very lock file.
fn install(ui: &Path) -> Result<(), String> {
    let lock = std::fs::read(ui.join("package-lock.json")).map_err(|e| format!("ui/package-lock.json: {e}"))?;
    if std::fs::read(ui.join(LOCK_STAMP)).is_ok_and(|installed| installed == lock) {
        return Ok(());
    }
    npm(ui, &["ci", "--no-audit", "--no-fund"], &[])?;
    std::fs::write(ui.join(LOCK_STAMP), &lock).map_err(|e| format!("{LOCK_STAMP}: {e}"))
}

fn npm(ui: &Path, args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Result<(), String> {
    let mut command = Command::new("npm");
    command.args(args).current_dir(ui);
    for (key, value) in env {
        command.env(key, value);
    }
    // npm's output goes to cargo's build log; the status says whether it worked.
    let status = command.status().map_err(|e| format!("cannot run `npm {}`: {e}", args.join(" ")))?;
    if status.success() { Ok(()) } else { Err(format!("`npm {}` in ui/ failed with {status}", args.join(" "))) }
}

/// Rust source for every file of the build, with its precompressed
/// `.gz` / `.br` siblings when `scripts/compress.mjs` made them.
fn asset_table(dist: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    collect(dist, dist, &mut files)?;
    files.retain(|f| !f.ends_with(".gz") && !f.ends_with(".br"));
    files.sort();
    if !files.iter().any(|f| f == "index.html") {
        return Err(format!("the build made no index.html in {}", dist.display()));
    }
    let mut src = String::from("pub(crate) static UI_ASSETS: Option<&[Asset]> = Some(&[\n");
    for file in &files {
        let path = dist.join(file);
        let sibling = |ext: &str| {
            let candidate = dist.join(format!("{file}.{ext}"));
            match candidate.exists() {
                true => format!("Some(include_bytes!({:?}))", candidate.display().to_string()),
                false => "None".to_owned(),
            }
        };
        let _ = writeln!(
            src,
            "    Asset {{ path: {:?}, body: include_bytes!({:?}), gzip: {}, brotli: {} }},",
            format!("/{file}"),
            path.display().to_string(),
            sibling("gz"),
            sibling("br"),
        );
    }
    src.push_str("]);\n");
    Ok(src)
}

/// Relative paths (with `/`) of every file under `dir`.
fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            collect(root, &path, files)?;
        } else if let Ok(relative) = path.strip_prefix(root) {
            let parts: Vec<_> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            files.push(parts.join("/"));
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}
