#!/usr/bin/env bash
# gate-power.sh: how small a change `feedbench compare` detects, measured.
#
# Builds a release binary with the server's off-by-default `inject` feature
# (server/src/inject.rs), then runs pairs of suite runs, baseline then candidate, each
# pair under the machine-wide benchmark lock, and judges every candidate against its
# baseline with `feedbench compare`:
#   - A/A pairs (the candidate is the same binary, nothing injected): any regression is a
#     false alarm;
#   - injected +5%, +10%, +25% in p50 latency (every event stamped earlier by that share of
#     the first baseline's p50), in server CPU per event (a busy loop of that share of the
#     first baseline's CPU per delivered event), and in bytes per event down (an SSE
#     comment line of that share of the first baseline's bytes per event).
# Prints, per pair, the verdict of the metric aimed at, and a summary table.
#
#   scripts/gate-power.sh [AA_PAIRS (5)] [OUT (bench-results/gate-power)]
#
# The suite: SSE, 50 clients, 20 events/s, 64-byte payload, 3 repeats of 3 s (1 s warm-up)
# per run, as one transport of the quick suite. Time: measured 403 s for 5 A/A pairs and
# 9 injected ones (28 runs, about 14 s each), plus the build and any wait for the lock.
# README ("The gate's power, measured") has the figures of such a run.
# Exit codes: 0 measured (whatever was detected); 2 usage, build or run error.
set -euo pipefail
cd "$(dirname "$0")/.."
aa=${1:-5}
out=${2:-bench-results/gate-power}
[[ "$aa" =~ ^[0-9]+$ ]] && [ "$aa" -ge 1 ] && [ "$aa" -le 20 ] || { echo "gate-power: AA_PAIRS must be 1..20, got '$aa'" >&2; exit 2; }
target=${CARGO_TARGET_DIR:-$PWD/target}
lock=/tmp/feedbench-bench.lock

echo "gate-power: building the release binary with the inject feature" >&2
cargo build --release --locked --quiet --bin feedbench --features feedbench-server/inject || exit 2
rm -rf "$out"
mkdir -p "$out"
bin="$out/feedbench-inject"
cp "$target/release/feedbench" "$bin"

cat >"$out/suite.toml" <<'TOML'
name = "gate-power"
repeat = 3
duration = "3s"
warmup = "1s"
ramp = "0s"
seed = 1
keepalive = true
[matrix]
transports = ["sse"]
clients = [50]
rate_hz = [20]
payload_bytes = [64]
TOML

# One suite run with FEEDBENCH_INJECT=$2 into $out/$1.
run() {
    timeout 180 env FEEDBENCH_INJECT="$2" "$bin" run --no-report --suite "$out/suite.toml" \
        --out "$out/$1" >"$out/$1.log" 2>&1 || { echo "gate-power: run $1 failed, see $out/$1.log" >&2; exit 2; }
}

# A pair under the lock: baseline then candidate.
pair() {
    local name=$1 inject=$2
    flock "$lock" bash -c "$(declare -f run); out='$out' bin='$bin'; run '$name-base' ''; run '$name' '$inject'"
}

# The verdict of metric $2 in the comparison of pair $1 (and the whole gate's exit code).
verdict() {
    local name=$1 metric=$2 code=0
    "$bin" compare "$out/$name-base/results.json" "$out/$name/results.json" \
        --md "$out/$name.md" >/dev/null || code=$?
    [ "$code" -le 1 ] || { echo "gate-power: compare of $name failed ($code)" >&2; exit 2; }
    local row
    row=$(grep -F "| $metric |" "$out/$name.md" | tail -n 1 | awk -F'|' '{gsub(/^ +| +$/, "", $7); gsub(/^ +| +$/, "", $6); print $6 " " $7}')
    echo "$row; gate exit $code"
}

field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1]))['scenarios']; v=sorted(eval(sys.argv[2]) for x in s); print(v[len(v)//2])" "$1" "$2"; }

summary="$out/summary.txt"
: >"$summary"
start=$(date +%s)
for i in $(seq "$aa"); do
    pair "aa$i" ""
    line="A/A $i: $(verdict "aa$i" "p50 latency") | cpu: $(verdict "aa$i" "server CPU/1k events" | cut -d';' -f1) | bytes: $(verdict "aa$i" "bytes/event down" | cut -d';' -f1)"
    echo "$line" | tee -a "$summary"
done

base="$out/aa1-base/results.json"
p50_us=$(field "$base" "x['latency_us']['p50']")
cpu_us_per_event=$(field "$base" "x['server']['cpu_s'] * 1e6 / x['events']['delivered']")
bytes_per_event=$(field "$base" "x['bytes']['per_event_down']")
echo "first baseline: p50 ${p50_us} us, server CPU ${cpu_us_per_event} us/event, ${bytes_per_event} B/event down" | tee -a "$summary"

for pct in 5 10 25; do
    lat=$(python3 -c "print(max(1, round($p50_us * $pct / 100)))")
    spin=$(python3 -c "print(max(1, round($cpu_us_per_event * $pct / 100)))")
    pad=$(python3 -c "print(max(2, round($bytes_per_event * $pct / 100)))")
    pair "lat$pct" "stamp_us=$lat"
    echo "latency +$pct% (stamp_us=$lat): $(verdict "lat$pct" "p50 latency")" | tee -a "$summary"
    pair "cpu$pct" "spin_us=$spin"
    echo "CPU +$pct% (spin_us=$spin): $(verdict "cpu$pct" "server CPU/1k events")" | tee -a "$summary"
    pair "bytes$pct" "pad=$pad"
    echo "bytes +$pct% (pad=$pad): $(verdict "bytes$pct" "bytes/event down")" | tee -a "$summary"
done
echo "gate-power: $(( $(date +%s) - start )) s of runs; summary in $summary" | tee -a "$summary"
