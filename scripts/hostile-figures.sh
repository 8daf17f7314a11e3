#!/usr/bin/env bash
# Figures for hostile conditions that need a release build and separate processes (the
# tests in server/tests/hostile.rs assert the hard facts at small scale):
#
#  1. slowloris: p99 delivery latency of 20 healthy ws clients at 100 events/s
#     (`feedbench load`) without and with 500 connections dripping a request head one byte
#     every 100 ms (reconnecting when the server cuts them off at the header timeout, so the
#     pressure never stops). Interleaved rounds; prints per round the p99s and what the
#     dripper did (connections, bytes, how long the server let the cut-off connections live,
#     and the dripper's own CPU time), then the medians and the ratio.
#  2. churn: 10,000 parked long-polls whose clients all vanish: parked waiters and open
#     connections return to 0, and server RSS before, at the peak and after.
#
# The dripper is scripts/slowloris.c (built here with gcc into target/slowloris/): one
# thread on epoll, its writes spread evenly over the interval. It runs on CPU 1 with the
# healthy clients (the attacker is "the network side"); it reports its own CPU time so the
# share of CPU 1 it took from the measuring client is on record. On loopback that time is
# mostly kernel TCP work (the server-side receive path runs on the sending CPU).
#
# Server on CPU 0, clients on CPU 1. Bounded: every phase has a deadline. Exits 1 if a
# round's dripper connections were not cut off at about the 2 s header timeout.
#   scripts/hostile-figures.sh [ROUNDS (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: scripts/hostile-figures.sh [ROUNDS (5), 1..20]" >&2; exit 2; }
[ "$#" -le 1 ] || usage
rounds="${1:-5}"
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]] || [ "$rounds" -gt 20 ]; then usage; fi
cargo build --release --locked -q --bin feedbench
bin="$PWD/target/release/feedbench"
if ! command -v gcc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo apt-get install -y -q gcc libc6-dev
fi
mkdir -p target/slowloris
loris_bin="$PWD/target/slowloris/slowloris"
gcc -std=c11 -O2 -Wall -Wextra -Werror -o "$loris_bin" scripts/slowloris.c
bad=0
source scripts/lib.sh
work="$(mktemp -d)"
# shellcheck disable=SC2317  # invoked by the trap
cleanup() {
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  fb_server_start "$work" 0 --worker-threads 1 --header-timeout 2s "$@"
  addr="$FB_ADDR"
}
stop_server() { fb_server_stop; }

# kv KEY FILE: the value of KEY=... in the dripper's stats line
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$2"; }
secs() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", 100 * a / b }'; }
p99_ms() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["scenarios"][0]; print(s["latency_us"]["p99"]/1000, s["events"]["missed"])' "$1"; }

echo "== slowloris: 20 ws clients at 100 events/s, without and with 500 slowloris connections"
start_server
base=(); loris=(); loris_cpu=(); loris_p50=()
dstat() { kv "$1" "$work/loris-$r.txt"; }  # a figure from this round's dripper stats
for r in $(seq "$rounds"); do
  timeout 60 taskset -c 1 "$bin" load --target "http://$addr" --transport ws --clients 20 --rate 100 \
    --duration 5s --warmup 1s --out "$work/base-$r.json" >/dev/null 2>&1
  # 9 s of dripping: 2 s to reach steady state (every connection opened, the first ones
  # already cut off and reconnecting), then the same 6 s load run as above.
  timeout 60 taskset -c 1 "$loris_bin" "${addr%:*}" "${addr##*:}" --conns 500 --interval-ms 100 \
    --seconds 9 >"$work/loris-$r.txt" 2>"$work/loris-$r.err" &
  loris_pid=$!
  sleep 2
  timeout 60 taskset -c 1 "$bin" load --target "http://$addr" --transport ws --clients 20 --rate 100 \
    --duration 5s --warmup 1s --out "$work/loris-$r.json" >/dev/null 2>&1
  if ! wait "$loris_pid"; then
    echo "round $r: the slowloris dripper failed:" >&2
    cat "$work/loris-$r.err" >&2
    exit 1
  fi
  read -r b_p99 b_missed < <(p99_ms "$work/base-$r.json")
  read -r l_p99 l_missed < <(p99_ms "$work/loris-$r.json")
  cpu_ms=$(($(dstat cpu_user_ms) + $(dstat cpu_sys_ms)))
  echo "round $r: p99 without ${b_p99} ms (missed $b_missed), with ${l_p99} ms (missed $l_missed)"
  echo "  dripper: $(dstat opened) connections, $(dstat dripped_bytes) bytes dripped," \
    "cut off $(dstat server_closes) times after $(secs "$(dstat lifetime_ms_min)")/$(secs "$(dstat lifetime_ms_p50)")/$(secs "$(dstat lifetime_ms_max)") s" \
    "(min/median/max, header timeout 2 s), $(dstat connect_errors) connect errors;" \
    "CPU $(dstat cpu_user_ms) ms user + $(dstat cpu_sys_ms) ms sys in $(secs "$(dstat wall_ms)") s" \
    "= $(pct "$cpu_ms" "$(dstat wall_ms)")% of CPU 1; max schedule lag $(dstat max_lag_ms) ms"
  if [ "$(dstat server_closes)" -eq 0 ] || ! awk -v m="$(dstat lifetime_ms_p50)" 'BEGIN { exit !(m >= 1900 && m <= 3000) }'; then
    echo "  WARNING: slowloris connections were not cut off at about the 2 s header timeout" >&2
    bad=1
  fi
  base+=("$b_p99"); loris+=("$l_p99"); loris_cpu+=("$cpu_ms"); loris_p50+=("$(dstat lifetime_ms_p50)")
done
python3 - "${base[*]}" "${loris[*]}" "${loris_cpu[*]}" "${loris_p50[*]}" <<'PY'
import statistics, sys
b, l, cpu, life = ([float(x) for x in a.split()] for a in sys.argv[1:5])
print(f"slowloris dripper: median CPU {statistics.median(cpu):.0f} ms per 9 s run ({statistics.median(cpu) / 90:.1f}% of CPU 1), median lifetime of cut-off connections {statistics.median(life) / 1000:.3f} s")
print(f"slowloris: healthy p99 median {statistics.median(b):.2f} ms without, {statistics.median(l):.2f} ms with: ratio {statistics.median(l)/statistics.median(b):.2f} (target <= 2)")
PY
stop_server

echo "== churn: 10,000 parked long-polls whose clients vanish"
start_server --rate 0
timeout 300 taskset -c 1 python3 - "$addr" 10000 <<'PY'
import asyncio, json, resource, sys, time, urllib.request
resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
addr, n = sys.argv[1], int(sys.argv[2]); host, port = addr.split(":")
def stats(): return json.load(urllib.request.urlopen(f"http://{addr}/stats"))
def until(cond, what, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        s = stats()
        if cond(s): return s
        if time.monotonic() > deadline: sys.exit(f"timed out waiting for {what}")
        time.sleep(0.2)
async def main():
    before = stats()["process"]["rss_bytes"]
    conns = []
    for i in range(n):
        r, w = await asyncio.open_connection(host, int(port), local_addr=(f"127.0.{10 + i // 5000}.{1 + i % 250}", 0))
        w.write(b"GET /longpoll?timeout_ms=120000 HTTP/1.1\r\nhost: t\r\n\r\n")
        conns.append(w)
        if i % 500 == 0: await asyncio.sleep(0)
    s = until(lambda s: s["connections"]["open"]["long_poll_parked"] == n, "all parked")
    peak = s["process"]["rss_bytes"]
    for w in conns: w.close()
    await asyncio.sleep(0)
    s = until(lambda s: s["connections"]["open"]["long_poll_parked"] == 0 and s["connections"]["open"]["total"] <= 1, "no waiters")
    right_after = s["process"]["rss_bytes"]
    time.sleep(3)  # the jemalloc background thread returns freed pages within ~1 s
    after = stats()["process"]["rss_bytes"]
    mib = lambda b: b / 2**20
    print(f"churn: {n} parked -> 0 waiters, 0 connections; RSS {mib(before):.1f} MiB before, {mib(peak):.1f} MiB parked, {mib(right_after):.1f} MiB when all had left, {mib(after):.1f} MiB 3 s later")
asyncio.run(main())
PY
stop_server
exit "$bad"
