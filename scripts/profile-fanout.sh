#!/usr/bin/env bash
# Where the server's CPU goes during a fan-out: a perf profile of `feedbench serve` while
# CLIENTS push clients (ws or sse) receive RATE events/s, placed as scripts/floor-compare.sh
# places them (server on CPU 0 with one worker thread, load generator on CPU 1).
#
#   scripts/profile-fanout.sh [TRANSPORT ws|sse (ws)] [CLIENTS 1-19000 (10000)] [RATE 1-1000 (1)]
#
# Prints the kernel/user split of the server's samples (perf's cpu-clock: this VM has no
# hardware counters) and the heaviest symbols, and keeps perf.data in the directory it
# names. Needs `perf` (Debian: linux-perf) and permission to profile another process
# (root, or kernel.perf_event_paranoid <= 1). Bounded: the run lasts about 25 s.
set -euo pipefail
cd "$(dirname "$0")/.."
transport="${1:-ws}"
clients="${2:-10000}"
rate="${3:-1}"
if ! [[ "$transport" =~ ^(ws|sse)$ && "$clients" =~ ^[1-9][0-9]{0,4}$ && "$rate" =~ ^[1-9][0-9]{0,3}$ ]] ||
  ((clients > 19000 || rate > 1000)); then
  echo "usage: scripts/profile-fanout.sh [TRANSPORT ws|sse (ws)] [CLIENTS 1-19000 (10000)] [RATE 1-1000 (1)]" >&2
  exit 2
fi
command -v perf >/dev/null || { echo "profile-fanout: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }
cargo build --release --locked -q -p feedbench
bin=target/release/feedbench

source scripts/lib.sh
work="$(mktemp -d /tmp/feedbench-profile.XXXXXX)"
load_pid=""
cleanup() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  fb_server_stop
}
trap cleanup EXIT

fb_server_start "$work" 0 --worker-threads 1 --rate 0
timeout 120 taskset -c 1 "$bin" load --target "$FB_URL" --transport "$transport" \
  --clients "$clients" --rate "$rate" --payload-bytes 64 --ramp 3s --warmup 2s --duration 14s \
  --out "$work/load.json" >/dev/null 2>"$work/load.err" &
load_pid=$!
# Ramp and warm-up take 5 s (more at 10,000 clients); profile 8 s of the measure window.
sleep 8
timeout 30 perf record -F 999 -g -p "$FB_SERVER_PID" -o "$work/perf.data" -- sleep 8 \
  2>"$work/perf.err" || { echo "perf record failed: $(tail -n 3 "$work/perf.err")" >&2; exit 1; }
wait "$load_pid" || true
load_pid=""
fb_server_stop
python3 - "$work/load.json" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["scenarios"][0]
    e = s["events"]
    print(f'run: {s["status"]}, {e["delivered"]} delivered, {e["missed"]} missed, '
          f'p50 {s["latency_us"]["p50"]} us, p99 {s["latency_us"]["p99"]} us')
except (OSError, ValueError, IndexError, KeyError) as err:
    print(f"run: no result ({err})")
PY
echo "server samples by where they ran:"
perf report -i "$work/perf.data" --no-children --stdio --sort dso -g none 2>/dev/null |
  grep -E '^ +[0-9.]+%' | sed -E 's/ +- +- *$//' | head -5
echo "heaviest symbols:"
perf report -i "$work/perf.data" --no-children --stdio --sort symbol -g none 2>/dev/null |
  grep -E '^ +[0-9.]+%' | sed -E 's/ +- +- *$//' | head -25
echo "perf.data and the run's results: $work"
