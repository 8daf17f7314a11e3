#!/usr/bin/env bash
# WebSocket fan-out at CLIENTS (10,000) clients: the highest event rate at which p99
# delivery latency stays under LIMIT_MS (50 ms), printed in events delivered per second
# (measured deliveries in the window / its length, about rate x clients).
#
# One server (`feedbench serve --worker-threads 1`, CPU 0) for every step; each step is one
# `feedbench load --transport ws --clients CLIENTS --rate R` on CPU 1 (connect over a 3 s
# ramp, 2 s warm-up, DURATION measured). A step passes when the run is complete, p99 is
# under the limit, nothing was missed and the server closed no slow consumer. The rate
# doubles from START_RATE until a step fails (at most 10 doublings), then the interval
# between the last pass and the first fail is bisected BISECT times. If even START_RATE
# fails, no rate passes (p99 is then one event's fan-out to every client) and the script
# says so with the p99 it measured. Bounded: at most
# 10 + BISECT steps of about 15-20 s each, each under `timeout 120`. Steps whose results
# say the load generator was the bottleneck are flagged: the figure then understates the
# server.
#
#   scripts/ws-fanout.sh [CLIENTS (10000)] [LIMIT_MS (50)] [DURATION (5s)] [START_RATE (1)] [BISECT (4)]
#
# SERVER_CPUS (0), LOADGEN_CPUS (1) and SERVER_THREADS (1) change the placement, e.g.
# to see what a second server core buys. When no rate passes, the script also measures the
# machine's floor at the same fan-out with scripts/loopback-floor.c and prints the ratio
# (FLOOR=0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-10000}"
limit_ms="${2:-50}"
duration="${3:-5s}"
start_rate="${4:-1}"
bisect="${5:-4}"
server_cpus="${SERVER_CPUS:-0}"
loadgen_cpus="${LOADGEN_CPUS:-1}"
server_threads="${SERVER_THREADS:-1}"
cargo build --release --locked -q -p feedbench
bin=target/release/feedbench

source scripts/lib.sh
work="$(mktemp -d)"
cleanup() {
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

fb_server_start "$work" "$server_cpus" --worker-threads "$server_threads" --rate 1
url="$FB_URL"

# step RATE: runs one step; prints "PASS|FAIL RATE DELIVERED_PER_S P99_MS NOTE".
step() {
  local rate="$1" out="$work/step-$1.json"
  timeout 120 taskset -c "$loadgen_cpus" "$bin" load --target "$url" --transport ws --clients "$clients" \
    --rate "$rate" --payload-bytes 64 --ramp 3s --warmup 2s --duration "$duration" \
    --out "$out" >/dev/null 2>"$work/load.err" || true
  python3 - "$out" "$rate" "$limit_ms" <<'PY'
import json, sys
path, rate, limit_ms = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
try:
    s = json.load(open(path))["scenarios"][0]
except (OSError, ValueError, IndexError, KeyError):
    print(f"FAIL {rate:g} 0 0 no-results")
    sys.exit()
p99_ms = s["latency_us"]["p99"] / 1000
delivered = s["events"]["delivered"] / s["measured_s"] if s["measured_s"] else 0
closed = (s.get("server") or {}).get("slow_consumer_closed", 0)
notes = []
if s["status"] != "complete":
    notes.append(s["status"])
if not s["events"]["delivered"]:
    notes.append("no-events")
if s["events"]["missed"]:
    notes.append(f"missed={s['events']['missed']}")
if closed:
    notes.append(f"slow_consumer_closed={closed}")
if any("load-generator bound" in w for w in s["warnings"]):
    notes.append("loadgen-bound")
ok = p99_ms < limit_ms and not [n for n in notes if n != "loadgen-bound"]
print(f"{'PASS' if ok else 'FAIL'} {rate:g} {delivered:.0f} {p99_ms:.2f} {','.join(notes) or '-'}")
PY
}

echo "ws fan-out: $clients clients, p99 limit $limit_ms ms, $duration per step;" \
  "server on CPU $server_cpus ($server_threads worker threads), load generator on CPU $loadgen_cpus"
best=""; good=""; bad=""; first=""
rate="$start_rate"
for _ in $(seq 11); do
  line="$(step "$rate")"
  echo "rate $rate/s: $line"
  [ -n "$first" ] || first="$line"
  if [ "${line%% *}" = PASS ]; then best="$line"; good="$rate"; rate=$(python3 -c "print(f'{$rate * 2:g}')")
  else bad="$rate"; break; fi
done
# Bisect only between a pass and a fail: below the start rate, p99 is one event's fan-out
# to every client, which a lower rate does not shorten.
if [ -n "$bad" ] && [ -n "$good" ]; then
  for _ in $(seq "$bisect"); do
    rate=$(python3 -c "print(f'{($good + $bad) / 2:.3g}')")
    [ "$rate" = "$good" ] || [ "$rate" = "$bad" ] && break
    line="$(step "$rate")"
    echo "rate $rate/s: $line"
    if [ "${line%% *}" = PASS ]; then best="$line"; good="$rate"; else bad="$rate"; fi
  done
fi
if [ -z "$best" ]; then
  read -r _ r delivered p99 notes <<<"$first"
  echo "highest passing rate: none: at $r events/s ($delivered events delivered/s) p99 is already $p99 ms;" \
    "one event's fan-out to $clients clients takes longer than $limit_ms ms (about $(python3 -c "print(f'{$p99 * 1000 / $clients:.1f}')") us per client at p99)"
  # Is the limit reachable on this machine at all? The C loopback floor (one thread, one
  # write per client, no HTTP or framing) at the same fan-out answers that.
  if [ "${FLOOR:-1}" = 1 ]; then
    fb_server_stop
    BUILD_ONLY=1 scripts/loopback-floor.sh
    # The program pins its writer to CPU 0 and its reader to CPU 1 itself.
    floor_p99="$(timeout 120 target/loopback-floor/loopback-floor \
      --clients "$clients" --rate 1 --seconds 5 2>/dev/null |
      awk '/^latency from schedule/ { for (i = 1; i <= NF; i++) if ($i == "p99") print $(i+1) / 1000 }')"
    if [ -n "$floor_p99" ]; then
      echo "machine floor (scripts/loopback-floor.c, same fan-out, 1 event/s): p99 $floor_p99 ms;" \
        "feedbench/floor $(python3 -c "print(f'{$p99 / $floor_p99:.2f}')")$(python3 -c "print('' if $floor_p99 < $limit_ms else '; the limit is below the floor: no single-threaded sender meets it here')")"
    else
      echo "machine floor: the C reference did not run (FLOOR=0 skips it)"
    fi
  fi
  exit 0
fi
read -r _ r delivered p99 notes <<<"$best"
echo "highest passing rate: $r events/s x $clients clients: $delivered events delivered/s (p99 $p99 ms${notes:+, $notes}); first failing rate: ${bad:-none found}/s"
