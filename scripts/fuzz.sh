#!/usr/bin/env bash
# Runs one of skein-fuzz's targets under libFuzzer, coverage-guided, on
# stable Rust: the fuzz/libfuzzer crate is built with LLVM's
# sanitizer-coverage instrumentation (what cargo-fuzz passes, minus the
# nightly-only sanitizers) on the crates that parse the input, assertions
# and overflow checks on.
#
#   scripts/fuzz.sh <target> [libFuzzer flags...]
#   scripts/fuzz.sh sql -runs=1000000
#   scripts/fuzz.sh otlp_traces_protobuf -max_total_time=600 -jobs=2
#
# Targets: otlp_traces_protobuf otlp_metrics_protobuf otlp_logs_protobuf
# otlp_http sql query_params tokens_file keys_file wal_record. The corpus grows in
# fuzz/corpus/<target>/ (seeded from the target's fixtures); a finding is
# written to fuzz/artifacts/<target>/; once fixed, copy it into
# fuzz/regressions/<target>/ so `cargo test` replays it forever.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 1 ]; then
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi
target=$1
shift

host=$(rustc -vV | sed -n 's/^host: //p')
# Only the crates that parse fuzzed input are instrumented (see
# scripts/fuzz-rustc.sh for which and why).
export RUSTC_WRAPPER="$PWD/scripts/fuzz-rustc.sh"
unset RUSTFLAGS
export CARGO_TARGET_DIR="${SKEIN_FUZZ_TARGET_DIR:-target/fuzz}"
# The same dependency versions as the workspace (libFuzzer's crate is added).
cp Cargo.lock fuzz/libfuzzer/Cargo.lock
SKEIN_SKIP_UI=1 cargo build --release --target "$host" --manifest-path fuzz/libfuzzer/Cargo.toml

corpus="fuzz/corpus/$target"
artifacts="fuzz/artifacts/$target"
mkdir -p "$corpus" "$artifacts"
export SKEIN_FUZZ_TARGET="$target" SKEIN_FUZZ_SEEDS_DIR="$corpus"
exec "$CARGO_TARGET_DIR/$host/release/skein-fuzz" -artifact_prefix="$artifacts/" "$@" "$corpus"
