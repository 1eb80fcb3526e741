#!/usr/bin/env bash
# rustc wrapper for scripts/fuzz.sh (cargo runs it as `fuzz-rustc.sh rustc
# ARGS...`). It adds sanitizer-coverage instrumentation only to the crates
# that parse fuzzed input: Skein's own, and the decoders and parsers they
# hand bytes to. Instrumenting every crate (DataFusion, Arrow, tokio, ...)
# made libFuzzer spend ~90% of each execution clearing and scanning
# millions of coverage counters that say nothing about the parsers, and
# runs ~100x slower. Host units (build scripts, proc macros) are built
# without `--target` and are never instrumented: they are not linked with
# libFuzzer.
set -euo pipefail
rustc=$1
shift

crate=""
for_target=false
previous=""
for arg in "$@"; do
    case "$previous" in
        --crate-name) crate=$arg ;;
        --target) for_target=true ;;
    esac
    previous=$arg
done

case "$crate" in
    skein_* | prost | opentelemetry_proto | serde_json | toml | toml_edit | toml_parser | sqlparser | base64 | serde_urlencoded | form_urlencoded)
        if $for_target; then
            exec "$rustc" "$@" -Cpasses=sancov-module \
                -Cllvm-args=-sanitizer-coverage-level=4 \
                -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
                -Cllvm-args=-sanitizer-coverage-pc-table \
                -Cllvm-args=-sanitizer-coverage-trace-compares
        fi
        ;;
esac
exec "$rustc" "$@"
