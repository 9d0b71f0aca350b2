#!/usr/bin/env bash
# Runs every fuzz target (or those named) for RUNS executions or SECONDS,
# whichever comes first, with a 1 s hang limit and a memory limit, and
# prints one line per target from libFuzzer's final stats. Needs nightly
# and cargo-fuzz (`cargo install cargo-fuzz`). New corpus entries land in
# fuzz/corpus/NAME; crashers in fuzz/artifacts/NAME (copy them to
# fuzz/regressions/NAME once fixed: `cargo test` replays them).
#
#   bench/fuzz.sh                      # all targets, 10 million runs each
#   RUNS=1000000 bench/fuzz.sh patch   # one target, a shorter run
#   SANITIZER=none bench/fuzz.sh snapshot  # without AddressSanitizer: 2-4x faster
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-10000000}
SECONDS_CAP=${SECONDS_CAP:-3600}
RSS_MB=${RSS_MB:-2048}
SANITIZER=${SANITIZER:-address}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

cargo +nightly fuzz build -s "$SANITIZER" >/dev/null
printf '%-18s %12s %8s %10s %8s %s\n' target runs seconds exec/s rss_mb result
for t in "${targets[@]}"; do
    log=$(mktemp)
    start=$(date +%s)
    if cargo +nightly fuzz run -s "$SANITIZER" "$t" -- -runs="$RUNS" -max_total_time="$SECONDS_CAP" \
        -timeout=1 -rss_limit_mb="$RSS_MB" -print_final_stats=1 >"$log" 2>&1; then
        result=ok
    else
        result="FAILED (see fuzz/artifacts/$t)"
    fi
    took=$(( $(date +%s) - start ))
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    printf '%-18s %12s %8s %10s %8s %s\n' "$t" "$(stat number_of_executed_units)" "$took" \
        "$(stat average_exec_per_sec)" "$(stat peak_rss_mb)" "$result"
    [ "$result" = ok ] || tail -40 "$log" >&2
    rm -f "$log"
done
