#!/usr/bin/env bash
# Short-poll request rate of feedbench's load generator against wrk's: same server, same
# endpoint and body, 64 keep-alive connections, one thread each. Prints both rates and the
# ratio load generator / wrk (target >= 1.0), and each client's own CPU time per request
# (when both rates are equal the server is the bound, and CPU per request compares the
# clients' efficiency).
#
# The server (`feedbench serve --worker-threads 1`) runs on CPU 0 and the client under test
# on CPU 1. The feed is paused after a few events, so every poll is `GET /poll?after=HEAD`
# and every answer is the same empty poll body: wrk requests exactly that path; the load
# generator learns HEAD with its first poll and then polls it back to back
# (`--poll-interval 0 --threads 1 --no-control`). Rates: wrk's Requests/sec, and the load
# generator's requests sent in its measure window / the window's length. ROUNDS rounds,
# interleaved (wrk, load generator, wrk, ...); the medians and the median of the per-round
# ratios are printed. Bounded: about ROUNDS x 2 x (DURATION + 2 s) plus set-up.
#
#   scripts/bench-loadgen-vs-wrk.sh [DURATION (5s)] [ROUNDS (5)]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5s}"
rounds="${2:-5}"
command -v wrk >/dev/null 2>&1 || FEEDBENCH_SETUP_BENCH_TOOLS=1 bash scripts/setup.sh
cargo build --release --locked -q -p feedbench
bin=target/release/feedbench

source scripts/lib.sh
work="$(mktemp -d)"
cleanup() {
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

fb_server_start "$work" 0 --worker-threads 1 --rate 1000 --payload-bytes 64
addr="$FB_ADDR"
sleep 0.2
curl -sf -X PUT -d '{"rate_hz":0}' "http://$addr/control/feed" >/dev/null
head="$(curl -sf "http://$addr/poll" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')"
path="/poll?after=$head"
body="$(curl -sf "http://$addr$path")"

# Each prints "REQ_PER_S CPU_US_PER_REQ": the client's own CPU time per request tells
# whether the rate is bounded by the client or by the server.
wrk_rate() {
  timeout 60 /usr/bin/time -f "%U %S" -o "$work/wrk.time" taskset -c 1 \
    wrk -t1 -c64 -d"$duration" "http://$addr$path" >"$work/wrk.out"
  python3 - "$work/wrk.out" "$work/wrk.time" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
user, sys_ = map(float, open(sys.argv[2]).read().split()[-2:])
print(f"{rate:.0f} {(user + sys_) * 1e6 / max(total, 1):.1f}")
PY
}
loadgen_rate() {
  timeout 60 taskset -c 1 "$bin" load --target "http://$addr" --transport short-poll \
    --clients 64 --poll-interval 0 --threads 1 --no-control --source-addrs 127.0.0.1 \
    --duration "$duration" --warmup 1s --out "$work/load.json" >/dev/null 2>"$work/load.err" \
    || { cat "$work/load.err" >&2; return 1; }
  python3 - "$work/load.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["scenarios"][0]
# Every answer must have been the paused feed's empty body, as wrk's are.
if s["status"] != "complete" or s["errors"] or s["requests"]["empty"] != s["requests"]["sent"]:
    sys.exit(f"load generator run not clean: status {s['status']}, errors {s['errors']}, "
             f"{s['requests']['empty']} empty of {s['requests']['sent']}")
sent = s["requests"]["sent"]
print(f"{sent / s['measured_s']:.0f} {s['loadgen']['cpu_s'] * 1e6 / max(sent, 1):.1f}")
PY
}

echo "body: ${#body} bytes ($body); 64 connections, 1 thread each, $duration per run, $rounds interleaved rounds"
lg=(); wk=(); lg_cpu=(); wk_cpu=()
for r in $(seq "$rounds"); do
  read -r rate cpu <<<"$(wrk_rate)"; wk+=("$rate"); wk_cpu+=("$cpu")
  read -r rate cpu <<<"$(loadgen_rate)"; lg+=("$rate"); lg_cpu+=("$cpu")
  echo "round $r: wrk ${wk[-1]} req/s (${wk_cpu[-1]} us CPU/req), load generator ${lg[-1]} req/s (${lg_cpu[-1]} us CPU/req)"
done
python3 - "${lg[*]}" "${wk[*]}" "${lg_cpu[*]}" "${wk_cpu[*]}" <<'PY'
import statistics, sys
lg, wk, lg_cpu, wk_cpu = ([float(x) for x in a.split()] for a in sys.argv[1:5])
ratios = [l / w for l, w in zip(lg, wk)]
print(f"median: load generator {statistics.median(lg):.0f} req/s, wrk {statistics.median(wk):.0f} req/s")
print(f"client CPU per request (median): load generator {statistics.median(lg_cpu):.1f} us, "
      f"wrk {statistics.median(wk_cpu):.1f} us")
print(f"ratio load generator/wrk: median {statistics.median(ratios):.2f} "
      f"(per round: {', '.join(f'{r:.2f}' for r in ratios)})")
PY
