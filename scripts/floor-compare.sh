#!/usr/bin/env bash
# feedbench's push transports' delivery latency next to this machine's floor, side by side.
#
# The floor is scripts/loopback-floor.c: one C thread writing a message to each of N
# loopback TCP clients, a reader on the other core (no HTTP, no framing, no runtime). Each
# feedbench run reports its socket bytes per delivered event (ws with 64-byte payloads: the
# event JSON + a 2-byte frame header, about 112 B; SSE: the `id:`/`data:` lines and the
# chunked framing around them, about 130 B), and the floor run that follows it writes
# messages of exactly that size, so the two move the same bytes through the same kernel
# path, placed the same way (sender on CPU 0, receiver on CPU 1), with latency taken from
# the scheduled publish time in both. Per transport, two comparisons, interleaved round by
# round:
#   floor   100 clients x 10 events/s (the latency-floor target: p50)
#   fan-out 10,000 clients x 1 event/s (the fan-out target: p99)
# Per round it prints both p50 and p99; at the end the medians and feedbench/floor ratios,
# both the ratio of the medians and the median (and range) of each round's own ratio: the
# floor drifts with the machine (its 100 x 10/s p50 has moved 1.7x within one run), and a
# round's feedbench run and its floor run are seconds apart, so the per-round ratio cancels
# most of the drift; quote it with its range.
# Each run also gives its receiving side's CPU per delivered event: the load generator's
# process CPU over the measured window per delivery (`loadgen.cpu_s` / `events.delivered`),
# and the floor reader thread's CPU per message; their ratio says how much the load
# generator's receive path costs beyond reading the bytes. Likewise the server's CPU per
# delivery (`server.cpu_s` from its /stats, over the window) against the floor writer's.
# A ratio near 1 means feedbench adds little to what the kernel costs here; a target below
# the floor cannot be met by any single-threaded sender on this machine. Long-poll is
# compared with the floor's request/response mode (`--request`, at feedbench's request bytes
# per event): each client asks before every event and the floor's writer reads that request
# before answering, so both sides make a read and a write per delivery.
#
# For every transport, each round also runs scripts/ws-client-floor.c against feedbench's
# own server: N bare C WebSocket clients (with --sse, SSE clients; with --longpoll,
# long-polling clients sending the load generator's request bytes) on one thread (epoll,
# one read per readiness, frames, chunks or answers parsed in place), on the load
# generator's CPU, at the same fan-out and feed. It sees the same
# arrivals as the load generator, so
#   - the load generator's CPU per delivery over the C client's is the load generator's own
#     receive cost (the floor reader above receives from a faster sender, whose denser
#     bursts need fewer wake-ups per message), and
#   - the C client's latency over the floor's is the server's share alone, without the
#     load generator's.
#
#   scripts/floor-compare.sh [ROUNDS (3)] [DURATION_S (5)] [TRANSPORTS (ws,sse,long-poll)]
#                            [SIZES (floor,fanout)]
#
# SIZES picks the comparisons: `floor` (100 x 10/s) and/or `fanout` (10,000 x 1/s), so that
# more rounds of one fit the same time.
#
# With FB_SERVER_BIN=PATH the server is that binary (another revision's build, say) and the
# load generator and the floor are this tree's, so a before/after comparison differs only
# in the server: run the script alternately with and without it, one round each.
#
# FEEDBENCH_TASK_READS=1 keeps the load generator's WebSocket, SSE and long-poll clients each on
# its own reader (tungstenite, the HTTP client) instead of its receive loops, for the same
# kind of comparison on the receiving side.
#
# FB_SERVER_ARGS adds arguments to the server's command line: FB_SERVER_ARGS=--task-writes
# measures the server with every event written by its stream's task, for a side-by-side
# comparison with the default (the publisher writes to caught-up sockets itself).
#
# Bounded: every run is under `timeout`; about 70 s per transport per round with the
# defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
secs="${2:-5}"
transports="${3:-ws,sse,long-poll}"
sizes="${4:-floor,fanout}"
if ! [[ "$rounds" =~ ^[1-9][0-9]?$ && "$secs" =~ ^[1-9][0-9]?$ && "$transports" =~ ^(ws|sse|long-poll)(,(ws|sse|long-poll))*$ && "$sizes" =~ ^(floor|fanout)(,(floor|fanout))?$ ]]; then
  echo "usage: scripts/floor-compare.sh [ROUNDS 1-99 (3)] [DURATION_S 1-99 (5)] [TRANSPORTS ws,sse,long-poll (ws,sse,long-poll)] [SIZES floor,fanout (floor,fanout)]" >&2
  exit 2
fi
run_small=0 run_big=0
[[ ",$sizes," == *,floor,* ]] && run_small=1
[[ ",$sizes," == *,fanout,* ]] && run_big=1
IFS=, read -r -a transport_list <<<"$transports"
if [[ ",$transports," == *,ws,* ]] && ! command -v curl >/dev/null 2>&1; then
  echo "floor-compare: the ws comparison sets the feed with curl, which is not installed" >&2
  exit 2
fi
cargo build --release --locked -q -p feedbench
BUILD_ONLY=1 scripts/loopback-floor.sh
bin=target/release/feedbench
floor=target/loopback-floor/loopback-floor
wsclient=target/loopback-floor/ws-client-floor

source scripts/lib.sh
work="$(mktemp -d)"
cleanup() {
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

read -r -a extra_args <<<"${FB_SERVER_ARGS:-}"
fb_server_start "$work" 0 --worker-threads 1 --rate 0 "${extra_args[@]}"
url="$FB_URL"

# feedbench TRANSPORT CLIENTS RATE RAMP: one run; prints "p50_us p99_us bytes_per_event
# loadgen_cpu_us_per_delivery bytes_up_per_event server_cpu_us_per_delivery" or "fail".
feedbench() {
  local out="$work/fb.json"
  rm -f "$out"
  timeout 180 taskset -c 1 "$bin" load --target "$url" --transport "$1" --clients "$2" \
    --rate "$3" --payload-bytes 64 --ramp "$4" --warmup 2s --duration "${secs}s" \
    --out "$out" >/dev/null 2>"$work/load.err" || true
  python3 - "$out" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["scenarios"][0]
except (OSError, ValueError, IndexError, KeyError):
    print("fail"); sys.exit()
ok = s["status"] == "complete" and s["events"]["missed"] == 0 and s["events"]["delivered"] > 0
per_event = round(s["bytes"]["per_event_down"])
cpu_us = s["loadgen"]["cpu_s"] * 1e6 / s["events"]["delivered"] if ok else 0
up = max(1, round(s["bytes"]["per_event_up"])) if ok else 0
srv_us = (s.get("server") or {}).get("cpu_s", 0) * 1e6 / s["events"]["delivered"] if ok else 0
print(f'{s["latency_us"]["p50"]} {s["latency_us"]["p99"]} {per_event} {cpu_us:.3f} {up} {srv_us:.3f}' if ok else "fail")
PY
}

# cfloor CLIENTS RATE MSG_BYTES [REQUEST_BYTES]: one C floor run (request/response with
# REQUEST_BYTES); prints "p50_us p99_us reader_cpu_us writer_cpu_us" (latency from
# schedule; the reader's and the writer's thread CPU per message) or "fail".
cfloor() {
  local msg="$3" req=()
  ((msg < 32)) && msg=32
  [ -n "${4:-}" ] && req=(--request "$4")
  timeout 120 "$floor" --clients "$1" --rate "$2" --seconds "$secs" --msg "$msg" "${req[@]}" >"$work/c.out" 2>&1 || { echo fail; return; }
  awk '/^lost messages/ { lost = $3 }
       /^latency from schedule/ { for (i = 1; i <= NF; i++) { if ($i == "p50") p50 = $(i+1); if ($i == "p99") p99 = $(i+1) } }
       /^reader cpu per message/ { cpu = $5 }
       /^writer cpu per message/ { wcpu = $5 }
       END { if (lost != "0" || p50 == "" || cpu == "" || wcpu == "") print "fail"; else print p50, p99, cpu, wcpu }' "$work/c.out"
}

# cclient TRANSPORT CLIENTS RATE: the C WebSocket (SSE, long-poll) clients against feedbench's
# server with the feed at RATE events/s and 64-byte payloads (paused again after); prints
# "p50_us p99_us cpu_us" or "fail".
cclient() {
  local out="$work/cc.out" ok=1 mode=()
  [ "$1" = sse ] && mode=(--sse)
  [ "$1" = long-poll ] && mode=(--longpoll)
  shift
  curl -fsS -X PUT "$url/control/feed" -d "{\"rate_hz\":$2,\"payload_bytes\":64}" >/dev/null || ok=0
  ((ok)) && { timeout 120 "$wsclient" --connect "$FB_ADDR" --clients "$1" --seconds "$secs" --warmup 2 --cpu 1 "${mode[@]}" >"$out" 2>&1 || ok=0; }
  curl -fsS -X PUT "$url/control/feed" -d '{"rate_hz":0}' >/dev/null || ok=0
  ((ok)) || { echo fail; return; }
  awk '/^latency from schedule/ { p50 = $6; p99 = $8 }
       /^reader cpu per message/ { cpu = $6 }
       END { if (p50 == "" || cpu == "") print "fail"; else print p50, p99, cpu }' "$out"
}

# pair TRANSPORT CLIENTS RATE RAMP: feedbench, then the floor at feedbench's bytes per event
# (for long-poll, request/response with feedbench's request bytes per event), and the C
# client on feedbench's server; prints "fb_p50 fb_p99 floor_p50 floor_p99 bytes fb_cpu
# floor_cpu server_cpu floor_writer_cpu cclient_p50 cclient_p99 cclient_cpu" or "fail".
pair() {
  local fb c fb50 fb99 bytes fbcpu up srvcpu c50 c99 ccpu wcpu
  fb="$(feedbench "$1" "$2" "$3" "$4")"
  [ "$fb" = fail ] && { echo fail; return; }
  read -r fb50 fb99 bytes fbcpu up srvcpu <<<"$fb"
  [ "$1" = long-poll ] || up=""
  c="$(cfloor "$2" "$3" "$bytes" "$up")"
  [ "$c" = fail ] && { echo fail; return; }
  read -r c50 c99 ccpu wcpu <<<"$c"
  local k50 k99 kcpu k
  k="$(cclient "$1" "$2" "$3")"
  [ "$k" = fail ] && { echo fail; return; }
  read -r k50 k99 kcpu <<<"$k"
  echo "$fb50 $fb99 $c50 $c99 $bytes $fbcpu $ccpu $srvcpu $wcpu $k50 $k99 $kcpu"
}

echo "feedbench ${transports} vs the C loopback floor, $rounds round(s), ${secs} s measured per run, latency from schedule (us)"
: >"$work/vals"
for ((r = 1; r <= rounds; r++)); do
  for t in "${transport_list[@]}"; do
    small=skipped big=skipped
    ((run_small)) && small="$(pair "$t" 100 10 1s)"
    ((run_big)) && big="$(pair "$t" 10000 1 3s)"
    printf 'round %d %-9s 100 x 10/s: feedbench p50 p99, floor p50 p99, bytes, receive cpu, send cpu (feedbench floor), C client p50 p99 cpu: %s | 10000 x 1/s: %s\n' \
      "$r" "$t" "$small" "$big"
    [[ "$small" != fail && "$small" != skipped ]] && echo "$t small $small" >>"$work/vals"
    [[ "$big" != fail && "$big" != skipped ]] && echo "$t big $big" >>"$work/vals"
  done
done
[ -s "$work/vals" ] || { echo "no run completed" >&2; exit 1; }
python3 - "$work/vals" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(list)
for line in open(sys.argv[1]):
    t, size, *v = line.split()
    rows[(t, size)].append(list(map(float, v)))
names = {"small": "100 clients x 10/s", "big": "10000 clients x 1/s"}
print("medians over the complete runs:")
for (t, size), vals in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] != "small")):
    fb50, fb99, c50, c99, b, fbcpu, ccpu, srv, wcpu, k50, k99, kcpu = (statistics.median(c) for c in zip(*vals))
    print(f"  {t:9} {names[size]:20} n={len(vals)} {b:4.0f} B/event  feedbench p50 {fb50:9.0f} p99 {fb99:9.0f}"
          f" | floor p50 {c50:9.0f} p99 {c99:9.0f} | ratio p50 {fb50 / c50:4.2f} p99 {fb99 / c99:4.2f}")
    # The target's percentile: p50 at 100 x 10/s, p99 at 10,000 x 1/s.
    at = 0 if size == "small" else 1
    name = "p50" if size == "small" else "p99"
    def spread(ratios):
        r = sorted(ratios)
        return f"median {statistics.median(r):4.2f} (range {r[0]:4.2f}-{r[-1]:4.2f} over {len(r)})"
    line = f"per-round ratio {name}: feedbench / floor {spread(v[at] / v[2 + at] for v in vals)}"
    if kcpu > 0:
        line += f"; server alone (C client) / floor {spread(v[9 + at] / v[2 + at] for v in vals)}"
    print(f"  {'':9} {'':20} {line}")
    print(f"  {'':9} {'':20} receive cpu per delivered event: load generator {fbcpu:.2f} us,"
          f" floor reader {ccpu:.2f} us, ratio {fbcpu / ccpu:4.2f}")
    print(f"  {'':9} {'':20} send cpu per delivered event:    server         {srv:.2f} us,"
          f" floor writer {wcpu:.2f} us, ratio {srv / wcpu:4.2f}")
    if kcpu > 0:
        print(f"  {'':9} {'':20} C client on feedbench's server: p50 {k50:9.0f} p99 {k99:9.0f}"
              f" | server alone / floor: p50 {k50 / c50:4.2f} p99 {k99 / c99:4.2f}")
        print(f"  {'':9} {'':20} load generator / C client on the same server: latency p50 {fb50 / k50:4.2f}"
              f" p99 {fb99 / k99:4.2f}, receive cpu {fbcpu:.2f} / {kcpu:.2f} us = {fbcpu / kcpu:4.2f}")
PY
