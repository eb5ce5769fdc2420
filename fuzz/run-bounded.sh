#!/usr/bin/env bash
# Builds one fuzz target with libFuzzer coverage instrumentation on the stable
# toolchain and runs it for a bounded time.
#
#   fuzz/run-bounded.sh TARGET SECONDS [extra libFuzzer flags...]
#
# Exits non-zero when the build fails or the target crashes (panic, failed
# assertion, timeout, out of memory); the crashing input is left in
# fuzz/artifacts/TARGET/. The corpus grows in fuzz/corpus/TARGET/.
# CARGO_TARGET_DIR defaults to fuzz/target.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 TARGET SECONDS [libFuzzer flags...]" >&2
    exit 2
fi
target=$1
seconds=$2
shift 2

cd "$(dirname "$0")"
if [ ! -f "fuzz_targets/$target.rs" ]; then
    echo "no fuzz target $target (fuzz_targets/$target.rs)" >&2
    exit 2
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
export RUSTFLAGS="-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares"
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros
# (serde_derive, proc-macro2): instrumented, they fail to link.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --target "$host" --bin "$target"

mkdir -p "corpus/$target" "artifacts/$target"
# libFuzzer exits 0 when the time is up without a crash, non-zero otherwise.
exec "$CARGO_TARGET_DIR/$host/release/$target" \
    -max_total_time="$seconds" \
    -artifact_prefix="artifacts/$target/" \
    -print_final_stats=1 \
    "$@" \
    "corpus/$target"
