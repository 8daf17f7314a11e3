#!/usr/bin/env bash
# Checks scripts/ws-client-floor.c, the bare C WebSocket client that scripts/floor-compare.sh
# measures the load generator's receive path against, on feedbench's server:
#   1. 50 clients, a 200 events/s feed, a 2 s window: every client counts exactly the
#      events published in the window (400 each, give or take the one at each edge), with
#      consecutive seqs (the program fails on a gap), and latency and CPU are printed;
#   2. the same at 50 events/s with 1 KiB payloads read 61 bytes at a time, each client
#      first asking for every event since seq 1 (`?after=1`, replayed as one batch): every
#      frame (with a 16-bit length) is split over about 18 reads, reads span frames, and
#      the first seq must be 2;
#   3. both again with --sse (GET /sse, one HTTP chunk per event): chunks split over reads
#      and reads spanning chunks in the second;
#   4. bad usage exits 2; a port with nothing listening exits 1.
# About 25 s. Exit 0 when all pass, 1 otherwise.
#
#   scripts/ws-client-floor-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null 2>&1 || { echo "ws-client-floor-check: needs curl" >&2; exit 2; }
cargo build --release --locked -q -p feedbench
BUILD_ONLY=1 scripts/loopback-floor.sh
client=target/loopback-floor/ws-client-floor

source scripts/lib.sh
work="$(mktemp -d)"
cleanup() {
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT
fb_server_start "$work" - --rate 0

fail=0
# run NAME RATE PAYLOAD READ_BYTES [ARGS...]: 50 clients, a 2 s window after 1 s warm-up.
run() {
  local name="$1" rate="$2" payload="$3" read_bytes="$4" out="$work/run.out"
  shift 4
  curl -fsS -X PUT "$FB_URL/control/feed" -d "{\"rate_hz\":$rate,\"payload_bytes\":$payload}" >/dev/null
  sleep 0.5
  if ! timeout 60 "$client" --connect "$FB_ADDR" --clients 50 --seconds 2 --warmup 1 --cpu 0 \
    --read-bytes "$read_bytes" "$@" >"$out" 2>&1; then
    echo "FAIL $name: $(tail -n 3 "$out")"
    fail=1
    return
  fi
  curl -fsS -X PUT "$FB_URL/control/feed" -d '{"rate_hz":0}' >/dev/null
  local n want=$((50 * rate * 2))
  n="$(awk '/^messages in window/ { print $4 }' "$out")"
  # 50 clients x RATE x 2 s; each client's window may hold one event more or fewer at its
  # edges.
  if [ -n "$n" ] && [ "$n" -ge $((want - 50)) ] && [ "$n" -le $((want + 50)) ] &&
    grep -q '^latency from schedule (us): p50 [0-9]* p99 [0-9]* max [0-9]*$' "$out" &&
    grep -q '^reader cpu per message (us): [0-9.]*$' "$out"; then
    echo "ok   $name: $n messages in the window; $(sed -n 's/^latency from schedule (us): //p' "$out") us"
  else
    echo "FAIL $name: expected $want +- 50 messages and the latency and cpu lines:"
    cat "$out"
    fail=1
  fi
}
run "64-byte events, whole reads" 200 64 65536
run "1 KiB events, 61-byte reads, replay" 50 1024 61 --after 1
run "SSE, 64-byte events, whole reads" 200 64 65536 --sse
run "SSE, 1 KiB events, 61-byte reads, replay" 50 1024 61 --after 1 --sse
run "long-poll, 64-byte events, whole reads" 200 64 65536 --longpoll
run "long-poll, 1 KiB events, 61-byte reads" 50 1024 61 --longpoll

# expect NAME STATUS ARGS...: the client exits with STATUS.
expect() {
  local name="$1" want="$2" rc=0
  shift 2
  timeout 30 "$client" "$@" >"$work/x.out" 2>&1 || rc=$?
  if [ "$rc" = "$want" ]; then
    echo "ok   $name: exit $rc ($(head -c 100 "$work/x.out" | head -n 1))"
  else
    echo "FAIL $name: exit $rc, expected $want: $(head -n 3 "$work/x.out")"
    fail=1
  fi
}
expect "no target" 2 --clients 3
expect "unknown option" 2 --connect "$FB_ADDR" --bogus 1
expect "read size 0" 2 --connect "$FB_ADDR" --read-bytes 0
expect "SSE and long-poll at once" 2 --connect "$FB_ADDR" --sse --longpoll
expect "not an IPv4 address" 2 --connect "localhost:1"
nc_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
expect "nothing listening" 1 --connect "127.0.0.1:$nc_port" --clients 1

exit "$fail"
