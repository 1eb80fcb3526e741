//! The bounded fuzz run of `cargo test`: seeds, committed regressions, then
//! seeded mutations. A failure prints the input, to save under
//! `fuzz/regressions/<target>/` once fixed.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;

use crate::mutate::{Rng, mutate};
use crate::{TARGETS, Target, target};

const DEFAULT_MUTATIONS: usize = 2000;

fn mutations() -> usize {
    std::env::var("SKEIN_FUZZ_MUTATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MUTATIONS)
}

fn regressions(target: &Target) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions").join(target.name);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut inputs: Vec<(String, Vec<u8>)> = entries
        .map(|entry| {
            let path = entry.expect("a regressions directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            (path.display().to_string(), bytes)
        })
        .collect();
    inputs.sort();
    inputs
}

fn run_one(target: &Target, what: &str, input: &[u8]) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (target.run)(input))) {
        eprintln!(
            "fuzz target {} failed on {what}; the input ({} bytes): {:?}",
            target.name,
            input.len(),
            String::from_utf8_lossy(input)
        );
        eprintln!("as hex: {}", input.iter().map(|b| format!("{b:02x}")).collect::<String>());
        resume_unwind(panic);
    }
}

fn fuzz(name: &str) {
    let target = target(name).expect("a listed target");
    let seeds = (target.seeds)();
    assert!(!seeds.is_empty(), "{name} has no seeds");
    for (i, seed) in seeds.iter().enumerate() {
        run_one(target, &format!("seed {i}"), seed);
    }
    for (path, input) in regressions(target) {
        run_one(target, &path, &input);
    }
    // One fixed seed per target, from its name, so runs repeat exactly.
    let mut rng =
        Rng::new(name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)));
    for i in 0..mutations() {
        let input = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())];
        let mutated = mutate(&mut rng, input, other);
        run_one(target, &format!("mutation {i}"), &mutated);
    }
}

#[test]
fn every_target_has_a_test() {
    let tests = [
        "otlp_traces_protobuf",
        "otlp_metrics_protobuf",
        "otlp_logs_protobuf",
        "otlp_http",
        "sql",
        "query_params",
        "tokens_file",
        "keys_file",
        "wal_record",
    ];
    let names: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(names, tests);
}

#[test]
fn otlp_traces_protobuf() {
    fuzz("otlp_traces_protobuf");
}

#[test]
fn otlp_metrics_protobuf() {
    fuzz("otlp_metrics_protobuf");
}

#[test]
fn otlp_logs_protobuf() {
    fuzz("otlp_logs_protobuf");
}

#[test]
fn otlp_http() {
    fuzz("otlp_http");
}

#[test]
fn sql() {
    fuzz("sql");
}

#[test]
fn query_params() {
    fuzz("query_params");
}

#[test]
fn tokens_file() {
    fuzz("tokens_file");
}

#[test]
fn keys_file() {
    fuzz("keys_file");
}

#[test]
fn wal_record() {
    fuzz("wal_record");
}

#[test]
fn mutations_repeat_from_a_seed() {
    let input = b"SELECT count(*) FROM spans";
    let run = || {
        let mut rng = Rng::new(7);
        (0..50).map(|_| mutate(&mut rng, input, b"{}")).collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first, run());
    assert!(first.iter().any(|m| m.as_slice() != input), "mutations change the input");
}
