#!/usr/bin/env bash
# Figures for hostile conditions that need a release build and separate processes (the
# tests in server/tests/hostile.rs assert the hard facts at small scale):
#
#  1. slowloris: p99 delivery latency of 20 healthy ws clients at 100 events/s
#     (`feedbench load`) without and with 500 connections dripping a request head one byte
#     every 100 ms (reconnecting when the server cuts them off at the header timeout, so the
#     pressure never stops). Interleaved rounds; prints the medians and the ratio.
#  2. churn: 10,000 parked long-polls whose clients all vanish: parked waiters and open
#     connections return to 0, and server RSS before, at the peak and after.
#
# Server on CPU 0, clients on CPU 1. Bounded: every phase has a deadline.
#   scripts/hostile-figures.sh [ROUNDS (3)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
cargo build --release --locked -q --bin feedbench
bin="$PWD/target/release/feedbench"
work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

start_server() {
  taskset -c 0 "$bin" serve --addr 127.0.0.1:0 --worker-threads 1 --header-timeout 2s "$@" \
    >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  for _ in $(seq 100); do grep -q listening "$work/serve.out" 2>/dev/null && break; sleep 0.05; done
  addr="$(sed -n 's/^feedbench listening on http:\/\///p' "$work/serve.out")"
  [ -n "$addr" ] || { echo "server did not start" >&2; exit 2; }
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }

p99_ms() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["scenarios"][0]; print(s["latency_us"]["p99"]/1000, s["events"]["missed"])' "$1"; }

echo "== slowloris: 20 ws clients at 100 events/s, without and with 500 slowloris connections"
start_server
base=(); loris=()
for r in $(seq "$rounds"); do
  taskset -c 1 "$bin" load --target "http://$addr" --transport ws --clients 20 --rate 100 \
    --duration 5s --warmup 1s --out "$work/base-$r.json" >/dev/null 2>&1
  timeout 60 taskset -c 1 python3 - "$addr" 500 9 >"$work/loris-$r.txt" <<'PY' &
import asyncio, sys, time
host, port = sys.argv[1].split(":"); n = int(sys.argv[2]); seconds = float(sys.argv[3])
head = b"GET /poll?after=0 HTTP/1.1\r\nhost: t\r\nx-padding: " + b"a" * 4000
held, stop = [], time.monotonic() + seconds
async def loris():
    while time.monotonic() < stop:
        t0 = time.monotonic()
        try:
            r, w = await asyncio.open_connection(host, int(port))
        except OSError:
            await asyncio.sleep(0.1); continue
        try:
            for b in head:
                if time.monotonic() >= stop: break
                w.write(bytes([b])); await w.drain()
                try:
                    if await asyncio.wait_for(r.read(512), 0.1) == b"": break
                except asyncio.TimeoutError:
                    pass
            else:
                pass
            if time.monotonic() < stop: held.append(time.monotonic() - t0)
        except (ConnectionError, OSError):
            held.append(time.monotonic() - t0)
        finally:
            w.close()
async def main():
    await asyncio.gather(*(loris() for _ in range(n)))
asyncio.run(main())
held.sort()
print(f"{len(held)} {held[0] if held else 0:.2f} {held[len(held)//2] if held else 0:.2f} {held[-1] if held else 0:.2f}")
PY
  loris_pid=$!
  sleep 2
  taskset -c 1 "$bin" load --target "http://$addr" --transport ws --clients 20 --rate 100 \
    --duration 5s --warmup 1s --out "$work/loris-$r.json" >/dev/null 2>&1
  wait "$loris_pid" || true
  read -r b_p99 b_missed < <(p99_ms "$work/base-$r.json")
  read -r l_p99 l_missed < <(p99_ms "$work/loris-$r.json")
  read -r cut min med max < "$work/loris-$r.txt"
  echo "round $r: p99 without ${b_p99} ms (missed $b_missed), with ${l_p99} ms (missed $l_missed); slowloris cut off $cut times after ${min}/${med}/${max} s (min/median/max, header timeout 2 s)"
  base+=("$b_p99"); loris+=("$l_p99")
done
python3 - "${base[*]}" "${loris[*]}" <<'PY'
import statistics, sys
b = [float(x) for x in sys.argv[1].split()]; l = [float(x) for x in sys.argv[2].split()]
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
