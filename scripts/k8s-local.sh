#!/usr/bin/env bash
# Runs what the Kubernetes pods would run, on this machine, with no cluster:
#
#   scripts/k8s-local.sh [SHARDS]        (default 4, at most 16; needs root)
#
# The server's and the load Job's command lines and environments are read from the
# manifests (rendered by scripts/k8s-tool.py exactly as scripts/k8s-run.sh renders them),
# and each process runs in a network namespace of its own, as a pod would have:
#
#   fb-k8s-srv   the server, 198.18.0.1:8080 (the manifest's --addr 0.0.0.0:8080 with the
#                address this namespace has), token from the environment
#   fb-k8s-I     shard I (JOB_COMPLETION_INDEX=I), 198.18.0.(10+I)
#   fb-k8s-br    a bridge joining them (veth pairs); nothing is added to the root namespace
#
# Addresses are only from 198.18.0.0/15 (the benchmarking range), and no traffic leaves
# these namespaces. Each shard's combined stdout+stderr stands in for `kubectl logs`: its
# results are pulled out with the same `k8s-tool.py extract` that k8s-run.sh uses, then
# merged (`feedbench merge`) and reported (`feedbench report`).
#
# Every namespace (and with it every veth and the bridge) and every process started here is
# removed at the end, on error and on Ctrl-C; a run first removes what a killed run left
# (everything named fb-k8s-*). All waits are bounded.
#
# A binary without `load --shard/--start-at` or `merge` yet runs in PLUMBING mode: the same
# manifest command, with a `feedbench` shim on PATH that drops --shard/--start-at, runs that
# shard's block of clients as a plain load after sleeping until START_AT, and each shard is
# reported on its own instead of merged. Set FB_K8S_LOCAL_REQUIRE_SHARD=1 to fail instead.
#
# Environment: FEEDBENCH (binary, default target/release/feedbench), TRANSPORT (ws),
# CLIENTS_PER_SHARD (50), RATE (20), PAYLOAD_BYTES (64), DURATION (5s), WARMUP (1s),
# RAMP (0s), POLL_INTERVAL (1s), MARGIN (seconds from now to START_AT, 3), OUT (results
# directory, default a new temporary one).
# Exit: 0 every shard complete and merged (or skipped as non-root); 1 a shard failed or the
# merge or report did; 2 usage or setup error.
# Each pod's environment is exported in a subshell of its own, on purpose:
# shellcheck disable=SC2030,SC2031
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "k8s-local: skipped: needs root (it creates network namespaces); nothing was run"
  exit 0
fi

SHARDS="${1:-4}"
if ! [[ "$SHARDS" =~ ^[0-9]+$ ]] || [ "$SHARDS" -lt 1 ] || [ "$SHARDS" -gt 16 ]; then
  echo "usage: scripts/k8s-local.sh [SHARDS]   (1 to 16)" >&2
  exit 2
fi
FEEDBENCH="${FEEDBENCH:-target/release/feedbench}"
TRANSPORT="${TRANSPORT:-ws}"
CLIENTS_PER_SHARD="${CLIENTS_PER_SHARD:-50}"
RATE="${RATE:-20}"
PAYLOAD_BYTES="${PAYLOAD_BYTES:-64}"
DURATION="${DURATION:-5s}"
WARMUP="${WARMUP:-1s}"
RAMP="${RAMP:-0s}"
POLL_INTERVAL="${POLL_INTERVAL:-1s}"
MARGIN="${MARGIN:-3}"
OUT="${OUT:-$(mktemp -d)/k8s-local}"

PREFIX=fb-k8s-
BR_NS="${PREFIX}br"
SRV_NS="${PREFIX}srv"
SRV_IP=198.18.0.1
PORT=8080

[ -x "$FEEDBENCH" ] || { echo "k8s-local: no executable at FEEDBENCH=$FEEDBENCH (build it, or point FEEDBENCH at one)" >&2; exit 2; }
FEEDBENCH="$(cd "$(dirname "$FEEDBENCH")" && pwd)/$(basename "$FEEDBENCH")"
command -v ip >/dev/null || { echo "k8s-local: needs iproute2 (ip)" >&2; exit 2; }
python3 -c 'import yaml' 2>/dev/null || { echo "k8s-local: needs PyYAML (pip install pyyaml)" >&2; exit 2; }
total=$((SHARDS * CLIENTS_PER_SHARD))

pids=()
our_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep "^${PREFIX}" || true; }
# Stops every process in our namespaces (only this script starts any there: the server,
# the shards' shells and the loads they run), waits for them (at most 10 s, so a load
# can still write its results), then deletes the namespaces, and with them their veths
# and the bridge.
cleanup_namespaces() {
  local nss ns pid _ left
  nss="$(our_namespaces)"
  [ -n "$nss" ] || return 0
  for ns in $nss; do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill "$pid" 2>/dev/null || true; done
  done
  for _ in $(seq 100); do
    left=0
    for ns in $nss; do [ -z "$(ip netns pids "$ns" 2>/dev/null || true)" ] || left=1; done
    [ "$left" -eq 0 ] && break
    sleep 0.1
  done
  for ns in $nss; do
    for pid in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}
# Reaps the processes this run started (after cleanup_namespaces has stopped them).
reap_pids() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  cleanup_namespaces
  reap_pids
}
trap cleanup EXIT
trap 'echo "k8s-local: interrupted" >&2; exit 130' INT TERM

if [ -n "$(our_namespaces)" ]; then
  echo "k8s-local: removing what an earlier run left: $(our_namespaces | tr '\n' ' ')"
  cleanup_namespaces
fi

mkdir -p "$OUT"
echo "k8s-local: $SHARDS shards x $CLIENTS_PER_SHARD clients ($total), $TRANSPORT, rate $RATE/s, warm-up $WARMUP, window $DURATION; binary $FEEDBENCH; output $OUT"

# ---- does the binary have the shard contract yet?
mode=full
if ! "$FEEDBENCH" load --help 2>/dev/null | grep -q -- '--shard' ||
   ! "$FEEDBENCH" load --help 2>/dev/null | grep -q -- '--start-at' ||
   ! "$FEEDBENCH" merge --help >/dev/null 2>&1; then
  if [ "${FB_K8S_LOCAL_REQUIRE_SHARD:-0}" = 1 ]; then
    echo "k8s-local: $FEEDBENCH has no load --shard/--start-at or no merge (FB_K8S_LOCAL_REQUIRE_SHARD=1)" >&2
    exit 2
  fi
  mode=plumbing
  echo "k8s-local: PLUMBING mode: $FEEDBENCH has no load --shard/--start-at or no merge yet; each shard runs its block of clients as a plain load, and the shards are reported, not merged"
fi

# ---- the network: a bridge namespace, and one namespace per pod on it
ip netns add "$BR_NS"
ip -n "$BR_NS" link set lo up
ip -n "$BR_NS" link add br0 type bridge
ip -n "$BR_NS" link set br0 up
add_pod_ns() { # NAME PORT-NAME ADDRESS
  local ns="$1" port="$2" addr="$3"
  ip netns add "$ns"
  ip -n "$BR_NS" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$BR_NS" link set "$port" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
}
add_pod_ns "$SRV_NS" srv "$SRV_IP"
for i in $(seq 0 $((SHARDS - 1))); do
  add_pod_ns "${PREFIX}$i" "s$i" "198.18.0.$((10 + i))"
done

# ---- the control token: generated, handed over in the environment only
FEEDBENCH_CONTROL_TOKEN="$(head -c 24 /dev/urandom | base64 | tr -d '/+=')"

# ---- render the manifests as k8s-run.sh would, for this run
run_id="local-$(date +%s)-$$"
start_at=$(( $(date +%s) + MARGIN + 2 ))
python3 scripts/k8s-tool.py render --shards "$SHARDS" --max-connections 19800 \
  --set RUN_ID="$run_id" --set TARGET="http://$SRV_IP:$PORT" --set TRANSPORT="$TRANSPORT" \
  --set CLIENTS="$total" --set RATE="$RATE" --set PAYLOAD_BYTES="$PAYLOAD_BYTES" \
  --set DURATION="$DURATION" --set WARMUP="$WARMUP" --set RAMP="$RAMP" \
  --set POLL_INTERVAL="$POLL_INTERVAL" --set START_AT="$start_at" >"$OUT/rendered.yaml"

# Reads one container's argv and literal environment (ConfigMap included) from the
# rendered manifests into the arrays ARGV and ENVS (NAME=VALUE).
read_pod() {
  ARGV=() ENVS=()
  local json
  json="$(python3 scripts/k8s-tool.py pod "$1" --file "$OUT/rendered.yaml")"
  mapfile -d '' -t ARGV < <(printf '%s' "$json" | python3 -c 'import json,sys; sys.stdout.write("".join(a + "\0" for a in json.load(sys.stdin)["argv"]))')
  mapfile -d '' -t ENVS < <(printf '%s' "$json" | python3 -c 'import json,sys; sys.stdout.write("".join(f"{k}={v}\0" for k, v in json.load(sys.stdin)["env"].items()))')
  printf '%s' "$json" | python3 -c 'import json,sys; s=json.load(sys.stdin)["secret_env"]; assert s == ["FEEDBENCH_CONTROL_TOKEN"], s'
}

# ---- `feedbench` on PATH, as in the image
mkdir -p "$OUT/bin"
if [ "$mode" = full ]; then
  ln -sf "$FEEDBENCH" "$OUT/bin/feedbench"
else
  cat >"$OUT/bin/feedbench" <<EOF
#!/bin/sh
# PLUMBING shim (k8s-local.sh): the binary has no --shard/--start-at yet. Runs shard I's
# contiguous block of the clients as a plain load, starting at START_AT.
real='$FEEDBENCH'
[ "\$1" = load ] || exec "\$real" "\$@"
shift
shard='' start='' clients=''
n=\$#
while [ "\$n" -gt 0 ]; do
  a=\$1; shift; n=\$((n - 1))
  case "\$a" in
    --shard) shard=\$1; shift; n=\$((n - 1)) ;;
    --start-at) start=\$1; shift; n=\$((n - 1)) ;;
    --clients) clients=\$1; shift; n=\$((n - 1)) ;;
    *) set -- "\$@" "\$a" ;;
  esac
done
i=\${shard%/*} k=\${shard#*/}
mine=\$(( clients / k + (i < clients % k ? 1 : 0) ))
now=\$(date +%s)
[ "\${start%.*}" -gt "\$now" ] && sleep \$(( \${start%.*} - now ))
exec "\$real" load --clients "\$mine" "\$@"
EOF
  chmod +x "$OUT/bin/feedbench"
fi

# ---- the server, in its namespace, on 198.18.0.1
read_pod server
srv_argv=()
for ((k = 0; k < ${#ARGV[@]}; k++)); do
  a="${ARGV[k]}"
  if [ "$k" -gt 0 ] && [ "${ARGV[k - 1]}" = --addr ]; then a="$SRV_IP:${a##*:}"; fi
  srv_argv+=("$a")
done
[ "${srv_argv[0]}" = feedbench ] || { echo "k8s-local: the server command is not feedbench: ${srv_argv[*]}" >&2; exit 2; }
echo "k8s-local: server: ${srv_argv[*]} (in $SRV_NS)"
(
  export "${ENVS[@]}"
  export FEEDBENCH_CONTROL_TOKEN PATH="$OUT/bin:$PATH"
  exec ip netns exec "$SRV_NS" "${srv_argv[@]}"
) >"$OUT/server.out" 2>"$OUT/server.err" &
pids+=($!)
srv_pid=$!
for _ in $(seq 100); do
  grep -q '^feedbench listening on ' "$OUT/server.out" 2>/dev/null && break
  kill -0 "$srv_pid" 2>/dev/null || break
  sleep 0.05
done
listening="$(sed -n 's/^feedbench listening on //p' "$OUT/server.out")"
if [ "$listening" != "http://$SRV_IP:$PORT" ]; then
  echo "k8s-local: the server did not start on $SRV_IP:$PORT (${listening:-no banner}): $(tail -n 5 "$OUT/server.err")" >&2
  exit 2
fi
echo "k8s-local: server listening on $listening"
# Reachable from a shard's namespace (bounded); /healthz is what the readiness probe asks.
ok=0
for _ in $(seq 20); do
  if ip netns exec "${PREFIX}0" curl -fsS -m 2 -o /dev/null "http://$SRV_IP:$PORT/healthz"; then ok=1; break; fi
  sleep 0.25
done
[ "$ok" = 1 ] || { echo "k8s-local: /healthz not reachable from ${PREFIX}0" >&2; exit 2; }
echo "k8s-local: /healthz answers from ${PREFIX}0 (198.18.0.10)"

# ---- the shards: the Job's command, JOB_COMPLETION_INDEX=i, one namespace each
read_pod load
shard_pids=()
for i in $(seq 0 $((SHARDS - 1))); do
  mkdir -p "$OUT/pod-$i"
  (
    export "${ENVS[@]}"
    export FEEDBENCH_CONTROL_TOKEN PATH="$OUT/bin:$PATH" JOB_COMPLETION_INDEX="$i" RESULTS_DIR="$OUT/pod-$i"
    exec ip netns exec "${PREFIX}$i" "${ARGV[@]}"
  ) >"$OUT/pod-$i.log" 2>&1 &
  pids+=($!)
  shard_pids+=($!)
done
echo "k8s-local: $SHARDS shard processes started; START_AT=$start_at ($(date -u -d "@$start_at" +%H:%M:%SZ))"

to_s() { # 5s, 1m, 500ms, 0s -> whole seconds, rounded up
  local v="$1"
  case "$v" in
    *ms) echo $(( (${v%ms} + 999) / 1000 )) ;;
    *s) echo "${v%s}" ;;
    *m) echo $(( ${v%m} * 60 )) ;;
    *) echo "$v" ;;
  esac
}
deadline=$(( start_at + $(to_s "$RAMP") + $(to_s "$WARMUP") + $(to_s "$DURATION") + 60 ))
for i in "${!shard_pids[@]}"; do
  pid="${shard_pids[i]}"
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "k8s-local: shard $i still running at the deadline; stopping it" >&2
    kill "$pid" 2>/dev/null || true
  fi
  rc=0
  wait "$pid" || rc=$?
  echo "k8s-local: shard $i pod exited $rc"
done

# ---- collect, as k8s-run.sh does from `kubectl logs`
status=0
shard_files=()
for i in $(seq 0 $((SHARDS - 1))); do
  if load_rc="$(python3 scripts/k8s-tool.py extract "$OUT/pod-$i.log" "$OUT/shard-$i.json" --run "$run_id" --index "$i")"; then
    shard_files+=("$OUT/shard-$i.json")
    echo "k8s-local: shard $i results collected ($(wc -c <"$OUT/shard-$i.json") bytes, load exit $load_rc)"
    [ "$load_rc" = 0 ] || status=1
  else
    echo "k8s-local: shard $i: no results (log: $OUT/pod-$i.log)" >&2
    status=1
  fi
done
[ "${#shard_files[@]}" -gt 0 ] || { echo "k8s-local: no shard results at all" >&2; exit 1; }

cleanup_namespaces
reap_pids
echo "k8s-local: server stopped, namespaces removed"

if [ "$mode" = full ]; then
  merge_rc=0
  "$FEEDBENCH" merge "${shard_files[@]}" --out "$OUT/merged.json" || merge_rc=$?
  [ "$merge_rc" -eq 0 ] || status=1
  if [ -s "$OUT/merged.json" ]; then
    "$FEEDBENCH" report "$OUT/merged.json" --out "$OUT/report" >/dev/null || status=1
    results=("$OUT/merged.json")
  else
    echo "k8s-local: merge wrote nothing (exit $merge_rc)" >&2
    exit 1
  fi
else
  labels=()
  for f in "${shard_files[@]}"; do labels+=(--label "$(basename "$f" .json)"); done
  "$FEEDBENCH" report "${shard_files[@]}" "${labels[@]}" --out "$OUT/report" >/dev/null || status=1
  results=("${shard_files[@]}")
fi

python3 - "${results[@]}" <<'PY'
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    for s in r["scenarios"]:
        e = s["events"]
        p50 = (s.get("latency_us") or {}).get("p50", "?")
        print(f"k8s-local: {path.rsplit('/', 1)[-1]}: {r['status']}, {s['transport']} "
              f"{s['params']['clients']} clients, "
              f"delivered {e['delivered']}/{e['expected']}, missed {e['missed']}, p50 {p50} us")
PY
echo "k8s-local: report in $OUT/report ($mode mode)"
exit "$status"
