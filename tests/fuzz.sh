#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (default 60 s; FUZZ_SECONDS overrides) starting from
# the committed seeds (real /proc/net/tcp{,6} and sock_diag replies captured on a Linux host,
# and sample queries). Fails on the first crash; libFuzzer leaves the input in
# fuzz/artifacts/TARGET/. cargo-fuzz needs nightly flags: RUSTC_BOOTSTRAP=1 lets the stable
# toolchain accept them.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${FUZZ_SECONDS:-60}"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in procfs sock_diag snapshot_query; do
    mkdir -p "corpus/$target"
    log=$(mktemp)
    if ! cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- -max_total_time="$seconds" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target crashed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    echo "fuzz: $target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)"
    rm -f "$log"
done
