#!/usr/bin/env bash
# CI smoke run of the fuzz targets (fuzz/README.md): builds them with cargo-fuzz (installed
# if missing), then runs each one for FUZZ_SECS seconds (default 60) from its seeds, in a
# temporary corpus. Fails on the first crash, hang (> 10 s for one input) or out-of-memory;
# libFuzzer prints the input that failed and cargo-fuzz how to reproduce it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${FUZZ_SECS:-60}"
targets=(${FUZZ_TARGETS:-import text mutate})
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
# No sanitizer: the code is safe Rust, and ASan would double build and run times. `-a`
# keeps debug assertions and overflow checks on, which is what catches unchecked
# arithmetic.
flags=(--sanitizer none -a)
start=$(date +%s)
cargo fuzz build "${flags[@]}"
echo "fuzz-smoke: built in $(( $(date +%s) - start )) s"
work="$(mktemp -d "${TMPDIR:-/tmp}/graphc-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    seeds=()
    [ -d "seeds/$t" ] && [ "$t" != mutate ] && seeds=("seeds/$t")
    echo "fuzz-smoke: $t for $secs s"
    # grep hides libFuzzer's progress lines; the status is the fuzzer's.
    set +e
    cargo fuzz run "${flags[@]}" "$t" "$work/$t" "${seeds[@]}" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$work/" 2>&1 |
        grep -E '^#[0-9]+: *DONE|^stat::(number_of_executed_units|peak_rss_mb)|panicked|ERROR|SUMMARY|Test unit written|^thread'
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
        mkdir -p artifacts/"$t"
        cp "$work"/crash-* "$work"/timeout-* "$work"/oom-* artifacts/"$t"/ 2>/dev/null || true
        echo "fuzz-smoke: $t failed (exit $status); inputs copied to fuzz/artifacts/$t/" >&2
        exit "$status"
    fi
done
echo "fuzz-smoke: done in $(( $(date +%s) - start )) s"
