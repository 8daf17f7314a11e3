#!/usr/bin/env bash
# A distributed feedbench run on a Kubernetes cluster, end to end with kubectl:
#
#   scripts/k8s-run.sh --image REGISTRY/feedbench:TAG [--shards 4] [--clients-per-shard 1000]
#                      [--transport ws] [--rate 10] [--payload-bytes 64] [--duration 30s]
#                      [--warmup 5s] [--ramp 0s] [--poll-interval 1s] [--margin 60]
#                      [--namespace feedbench] [--out DIR] [--timeout 300] [--keep]
#
# 1. applies the namespace, the control-token Secret (from $FEEDBENCH_CONTROL_TOKEN, or a
#    new random token; given to kubectl on stdin, never on a command line) and the server
#    (deploy/k8s/server.yaml), and waits for its rollout (readiness probe on /healthz);
# 2. sets START_AT = now + --margin seconds (time for the pods to be scheduled, pull the
#    image and start) and creates the load as an Indexed Job of --shards pods, each running
#    shard $JOB_COMPLETION_INDEX of the scenario (total clients = shards x clients per
#    shard);
# 3. waits for the Job to finish (bounded: START_AT + ramp + warm-up + duration + --timeout;
#    the Job's own activeDeadlineSeconds bounds it on the cluster even if this script dies);
# 4. collects each shard's results from its pod's log (`kubectl logs`: the pod prints its
#    results file between two marker lines, with its length and SHA-256), merges them with
#    `feedbench merge` and reports with `feedbench report`, into --out;
# 5. cleans up (also on error and Ctrl-C): deletes the Job, the ConfigMap, the server and the
#    Secret, or the whole namespace when this script created it. --keep leaves everything.
#
# Environment: FEEDBENCH (the local binary that merges and reports, default
# target/release/feedbench), KUBECTL (default kubectl; e.g. "kubectl --context lab"),
# FEEDBENCH_CONTROL_TOKEN, FB_MAX_CLIENTS_PER_POD (default 19000: each client is one
# descriptor, and the open-file hard limit this was sized on is 20,000 per process).
# Exit: 0 every shard complete and merged; 1 the run failed or a shard is missing (what was
# collected is still merged and reported); 2 usage or setup error.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

IMAGE="feedbench:latest" PULL_POLICY="" SHARDS=4 CLIENTS_PER_SHARD=1000 TRANSPORT=ws
RATE=10 PAYLOAD_BYTES=64 DURATION=30s WARMUP=5s RAMP=0s POLL_INTERVAL=1s MARGIN=60
NAMESPACE=feedbench OUT="" TIMEOUT=300 KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --image) IMAGE="$2"; shift 2 ;;
    --pull-policy) PULL_POLICY="$2"; shift 2 ;;
    --shards) SHARDS="$2"; shift 2 ;;
    --clients-per-shard) CLIENTS_PER_SHARD="$2"; shift 2 ;;
    --transport) TRANSPORT="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    --payload-bytes) PAYLOAD_BYTES="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --warmup) WARMUP="$2"; shift 2 ;;
    --ramp) RAMP="$2"; shift 2 ;;
    --poll-interval) POLL_INTERVAL="$2"; shift 2 ;;
    --margin) MARGIN="$2"; shift 2 ;;
    --namespace) NAMESPACE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --timeout) TIMEOUT="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "k8s-run: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "k8s-run: $*" >&2; exit 2; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }
flag() { local f="${1,,}"; echo "--${f//_/-}"; }
for v in SHARDS CLIENTS_PER_SHARD MARGIN TIMEOUT RATE PAYLOAD_BYTES; do
  is_uint "${!v}" || die "$(flag "$v") must be a whole number (got ${!v})"
done
[ "$SHARDS" -ge 1 ] || die "--shards must be at least 1"
[ "$CLIENTS_PER_SHARD" -ge 1 ] || die "--clients-per-shard must be at least 1"
max_per_pod="${FB_MAX_CLIENTS_PER_POD:-19000}"
[ "$CLIENTS_PER_SHARD" -le "$max_per_pod" ] ||
  die "--clients-per-shard $CLIENTS_PER_SHARD is above $max_per_pod: each client is one open file, and the limit sized on is 20,000 per process (FB_MAX_CLIENTS_PER_POD overrides after checking \`ulimit -Hn\` in a pod)"
case "$TRANSPORT" in short-poll|long-poll|ws|sse) ;; *) die "--transport must be short-poll, long-poll, ws or sse" ;; esac
total=$((SHARDS * CLIENTS_PER_SHARD))

to_s() { # 30s, 2m, 500ms, 0s -> whole seconds, rounded up
  case "$1" in
    *ms) echo $(( (${1%ms} + 999) / 1000 )) ;;
    *s) echo "${1%s}" ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *h) echo $(( ${1%h} * 3600 )) ;;
    *) echo "$1" ;;
  esac
}
for v in DURATION WARMUP RAMP; do
  is_uint "$(to_s "${!v}")" || die "$(flag "$v") takes e.g. 30s, 2m or 500ms (got ${!v})"
done
run_s=$(( $(to_s "$RAMP") + $(to_s "$WARMUP") + $(to_s "$DURATION") ))

read -ra kc <<<"${KUBECTL:-kubectl}"
command -v "${kc[0]}" >/dev/null || die "${kc[0]} not found"
python3 -c 'import yaml' 2>/dev/null || die "needs python3 with PyYAML (pip install pyyaml)"
FEEDBENCH="${FEEDBENCH:-target/release/feedbench}"
[ -x "$FEEDBENCH" ] || die "no feedbench binary at $FEEDBENCH to merge and report with (FEEDBENCH=...)"
"$FEEDBENCH" merge --help >/dev/null 2>&1 || die "$FEEDBENCH has no merge subcommand"
OUT="${OUT:-bench-results/k8s-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

k() { "${kc[@]}" --namespace "$NAMESPACE" "$@"; }
render() { python3 scripts/k8s-tool.py render --namespace "$NAMESPACE" --image "$IMAGE" \
  ${PULL_POLICY:+--pull-policy "$PULL_POLICY"} "$@"; }

# ---- cleanup, on every exit
created_ns=0 created_secret=0 cleaning=0
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  [ "$cleaning" -eq 0 ] || return 0
  cleaning=1
  if [ "$KEEP" -eq 1 ]; then
    echo "k8s-run: --keep: leaving namespace $NAMESPACE as it is"
    return 0
  fi
  echo "k8s-run: cleaning up"
  k delete job feedbench-load --ignore-not-found --wait=false >/dev/null 2>&1 || true
  if [ "$created_ns" -eq 1 ]; then
    "${kc[@]}" delete namespace "$NAMESPACE" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  else
    k delete configmap feedbench-load --ignore-not-found >/dev/null 2>&1 || true
    k delete deployment,service feedbench-server --ignore-not-found >/dev/null 2>&1 || true
    [ "$created_secret" -eq 0 ] || k delete secret feedbench-control --ignore-not-found >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
trap 'echo "k8s-run: interrupted" >&2; exit 130' INT TERM

echo "k8s-run: $SHARDS shards x $CLIENTS_PER_SHARD clients = $total $TRANSPORT clients, rate $RATE/s, payload $PAYLOAD_BYTES B, warm-up $WARMUP, window $DURATION; image $IMAGE; namespace $NAMESPACE; results in $OUT"

# ---- 1. namespace, Secret, server
if ! "${kc[@]}" get namespace "$NAMESPACE" >/dev/null 2>&1; then
  created_ns=1
  render --only namespace | "${kc[@]}" apply -f - >/dev/null
  echo "k8s-run: created namespace $NAMESPACE"
fi
if [ -n "${FEEDBENCH_CONTROL_TOKEN:-}" ] || ! k get secret feedbench-control >/dev/null 2>&1; then
  k get secret feedbench-control >/dev/null 2>&1 || created_secret=1
  token="${FEEDBENCH_CONTROL_TOKEN:-$(head -c 32 /dev/urandom | base64 | tr -d '/+=')}"
  # printf is a builtin: the token goes to kubectl on stdin, never on a command line.
  printf 'apiVersion: v1\nkind: Secret\nmetadata:\n  name: feedbench-control\n  namespace: %s\n  labels: {app.kubernetes.io/name: feedbench}\ntype: Opaque\nstringData:\n  token: "%s"\n' \
    "$NAMESPACE" "$token" | k apply -f - >/dev/null
  unset token
  echo "k8s-run: control token Secret feedbench-control set"
fi
# The server refuses connections above --max-connections; leave room for every client.
max_conn=$(( total + 200 > 19800 ? total + 200 : 19800 ))
[ "$max_conn" -le 19800 ] ||
  echo "k8s-run: note: $total clients on one server: its pod needs an open-file hard limit above $max_conn (it logs nothing about it; check \`ulimit -Hn\` in the pod)"
render --only server --max-connections "$max_conn" | k apply -f - >/dev/null
echo "k8s-run: waiting for the server's rollout (at most 300 s)"
k rollout status deployment/feedbench-server --timeout=300s

# ---- 2. the load Job, with START_AT
k delete job feedbench-load --ignore-not-found --wait=true --timeout=120s >/dev/null
run_id="k8s-$(date -u +%Y%m%dT%H%M%SZ)-$$"
start_at=$(( $(date +%s) + MARGIN ))
render --only load --shards "$SHARDS" --active-deadline $(( MARGIN + run_s + 120 )) \
  --set RUN_ID="$run_id" --set TRANSPORT="$TRANSPORT" --set CLIENTS="$total" \
  --set RATE="$RATE" --set PAYLOAD_BYTES="$PAYLOAD_BYTES" --set DURATION="$DURATION" \
  --set WARMUP="$WARMUP" --set RAMP="$RAMP" --set POLL_INTERVAL="$POLL_INTERVAL" \
  --set START_AT="$start_at" >"$OUT/load.yaml"
k apply -f "$OUT/load.yaml" >/dev/null
echo "k8s-run: Job feedbench-load created, run $run_id; START_AT $start_at ($(date -u -d "@$start_at" +%FT%TZ))"

# ---- 3. wait for it (bounded)
deadline=$(( start_at + run_s + TIMEOUT ))
warned_late=0 final=""
while [ "$(date +%s)" -lt "$deadline" ]; do
  conds="$(k get job feedbench-load -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}' 2>/dev/null || true)"
  case " $conds " in
    *" Complete "*) final=Complete; break ;;
    *" Failed "*) final=Failed; break ;;
  esac
  if [ "$warned_late" -eq 0 ] && [ "$(date +%s)" -ge "$start_at" ]; then
    warned_late=1
    not_running="$(k get pods -l job-name=feedbench-load -o jsonpath='{range .items[?(@.status.phase=="Pending")]}{.metadata.name}{" "}{end}' 2>/dev/null || true)"
    [ -z "$not_running" ] || echo "k8s-run: WARNING: still Pending at START_AT (they will start late; raise --margin): $not_running" >&2
  fi
  echo "k8s-run: $(k get job feedbench-load -o jsonpath='active {.status.active}, succeeded {.status.succeeded}, failed {.status.failed}' 2>/dev/null || echo 'job status unknown')"
  sleep 10
done
[ -n "$final" ] || echo "k8s-run: the Job did not finish by $(date -u -d "@$deadline" +%TZ); collecting what there is" >&2
echo "k8s-run: Job ${final:-unfinished}"

# ---- 4. collect, merge, report
status=0
[ "$final" = Complete ] || status=1
pods="$(k get pods -l job-name=feedbench-load -o jsonpath='{range .items[*]}{.metadata.annotations.batch\.kubernetes\.io/job-completion-index}{" "}{.metadata.name}{"\n"}{end}')"
shard_files=() missing=()
for i in $(seq 0 $((SHARDS - 1))); do
  got=0
  while read -r index pod; do
    [ "$index" = "$i" ] || continue
    k logs "pod/$pod" -c load >"$OUT/pod-$i.log" 2>"$OUT/pod-$i.logerr" </dev/null || continue
    if load_rc="$(python3 scripts/k8s-tool.py extract "$OUT/pod-$i.log" "$OUT/shard-$i.json" --run "$run_id" --index "$i" </dev/null)"; then
      got=1
      echo "k8s-run: shard $i from $pod ($(wc -c <"$OUT/shard-$i.json") bytes, load exit $load_rc)"
      [ "$load_rc" = 0 ] || status=1
      break
    fi
  done <<<"$pods"
  if [ "$got" -eq 1 ]; then shard_files+=("$OUT/shard-$i.json"); else missing+=("$i"); fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  status=1
  echo "k8s-run: no results from shard(s) ${missing[*]} (their logs, if any: $OUT/pod-N.log)" >&2
fi
[ "${#shard_files[@]}" -gt 0 ] || { echo "k8s-run: no shard results to merge" >&2; exit 1; }

merge_rc=0
"$FEEDBENCH" merge "${shard_files[@]}" --out "$OUT/merged.json" || merge_rc=$?
[ "$merge_rc" -eq 0 ] || status=1
if [ -s "$OUT/merged.json" ]; then
  "$FEEDBENCH" report "$OUT/merged.json" --out "$OUT/report" || status=1
  echo "k8s-run: merged results $OUT/merged.json, report $OUT/report/index.html"
else
  echo "k8s-run: feedbench merge wrote nothing (exit $merge_rc)" >&2
fi
exit "$status"
