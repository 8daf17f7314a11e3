#!/usr/bin/env bash
# feedbench's WebSocket delivery latency next to this machine's floor, side by side.
#
# The floor is scripts/loopback-floor.c: one C thread writing a 112-byte message to each of
# N loopback TCP clients, a reader on the other core (no HTTP, no framing, no runtime).
# feedbench's ws transport with 64-byte payloads sends exactly 112 bytes per event (110 B of
# JSON + a 2-byte frame header), so the two move the same bytes through the same kernel
# path, placed the same way (sender on CPU 0, receiver on CPU 1), with latency taken from
# the scheduled publish time in both. Two comparisons, interleaved round by round:
#   floor   100 clients x 10 events/s (the latency-floor target: ws p50)
#   fan-out 10,000 clients x 1 event/s (the fan-out target: ws p99)
# Per round it prints both p50 and p99; at the end the medians and feedbench/floor ratios.
# A ratio near 1 means feedbench adds little to what the kernel costs here; a target below
# the floor cannot be met by any single-threaded sender on this machine.
#
#   scripts/floor-compare.sh [ROUNDS (3)] [DURATION_S (5)]
#
# Bounded: every run is under `timeout`; about 70 s per round with the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
secs="${2:-5}"
if ! [[ "$rounds" =~ ^[1-9][0-9]?$ && "$secs" =~ ^[1-9][0-9]?$ ]]; then
  echo "usage: scripts/floor-compare.sh [ROUNDS 1-99 (3)] [DURATION_S 1-99 (5)]" >&2
  exit 2
fi
cargo build --release --locked -q -p feedbench
BUILD_ONLY=1 scripts/loopback-floor.sh
bin=target/release/feedbench
floor=target/loopback-floor/loopback-floor

source scripts/lib.sh
work="$(mktemp -d)"
cleanup() {
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

fb_server_start "$work" 0 --worker-threads 1 --rate 0
url="$FB_URL"

# feedbench CLIENTS RATE RAMP: one ws run; prints "p50_us p99_us" or "fail".
feedbench() {
  local out="$work/fb.json"
  rm -f "$out"
  timeout 180 taskset -c 1 "$bin" load --target "$url" --transport ws --clients "$1" \
    --rate "$2" --payload-bytes 64 --ramp "$3" --warmup 2s --duration "${secs}s" \
    --out "$out" >/dev/null 2>"$work/load.err" || true
  python3 - "$out" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["scenarios"][0]
except (OSError, ValueError, IndexError, KeyError):
    print("fail"); sys.exit()
ok = s["status"] == "complete" and s["events"]["missed"] == 0 and s["events"]["delivered"] > 0
print(f'{s["latency_us"]["p50"]} {s["latency_us"]["p99"]}' if ok else "fail")
PY
}

# cfloor CLIENTS RATE: one C floor run; prints "p50_us p99_us" (from schedule) or "fail".
cfloor() {
  timeout 120 "$floor" --clients "$1" --rate "$2" --seconds "$secs" >"$work/c.out" 2>&1 || { echo fail; return; }
  awk '/^lost messages/ { lost = $3 }
       /^latency from schedule/ { for (i = 1; i <= NF; i++) { if ($i == "p50") p50 = $(i+1); if ($i == "p99") p99 = $(i+1) } }
       END { if (lost != "0" || p50 == "") print "fail"; else print p50, p99 }' "$work/c.out"
}

echo "feedbench ws vs the C loopback floor, $rounds round(s), ${secs} s measured per run, latency from schedule (us)"
: >"$work/vals"
for ((r = 1; r <= rounds; r++)); do
  fb_small="$(feedbench 100 10 1s)"
  c_small="$(cfloor 100 10)"
  fb_big="$(feedbench 10000 1 3s)"
  c_big="$(cfloor 10000 1)"
  printf 'round %d  100 x 10/s: feedbench p50/p99 %s  floor %s | 10000 x 1/s: feedbench %s  floor %s\n' \
    "$r" "${fb_small/ //}" "${c_small/ //}" "${fb_big/ //}" "${c_big/ //}"
  if [[ "$fb_small $c_small $fb_big $c_big" != *fail* ]]; then
    echo "$fb_small $c_small $fb_big $c_big" >>"$work/vals"
  fi
done
[ -s "$work/vals" ] || { echo "no round completed" >&2; exit 1; }
python3 - "$work/vals" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
cols = list(zip(*rows))
med = [statistics.median(c) for c in cols]
names = ["100 clients x 10/s", "10000 clients x 1/s"]
print(f"medians over {len(rows)} complete round(s):")
for i, name in enumerate(names):
    fb50, fb99, c50, c99 = med[4 * i: 4 * i + 4]
    print(f"  {name:20} feedbench p50 {fb50:9.0f} p99 {fb99:9.0f} | floor p50 {c50:9.0f} p99 {c99:9.0f}"
          f" | ratio p50 {fb50 / c50:4.2f} p99 {fb99 / c99:4.2f}")
PY
