#!/usr/bin/env bash
# scripts/any-server-truth.sh [RUNS] [DURATION]      (defaults: 10 runs, 3s)
#
# Checks feedbench's loss accounting against a server that is not its own: starts the
# independent Python/aiohttp implementation of PROTOCOL.md (scripts/reference/) on
# 127.0.0.1 with a free port (20 events/s, 100-byte payloads), then runs
# `feedbench load` RUNS times per transport (short-poll every 200 ms, long-poll, ws, sse;
# 10 clients, warm-up 1s, measure window DURATION) against it, and prints one line per run
# and a summary per transport.
#
# Env: JITTER_MS (default 0) publishes each event up to that many ms late (uniform, still
#      stamped with its scheduled time, in seq order), a stress for the accounting.
#      KEEP=1 keeps the work directory (results files, server log) even on success.
#      FEEDBENCH=PATH runs that feedbench binary instead of target/release/feedbench.
#
# Exit: 0 when every run completed with nothing missed, duplicated or out of order;
#       1 when a run failed or lost/duplicated/reordered an event; 2 usage or setup error.
# Builds nothing unless target/release/feedbench is missing and FEEDBENCH is unset (then
# `cargo build --release`).
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/any-server-truth.sh [RUNS] [DURATION]  (e.g. 10 3s)" >&2; exit 2; }
RUNS="${1:-10}"
DURATION="${2:-3s}"
JITTER_MS="${JITTER_MS:-0}"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$JITTER_MS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "JITTER_MS must be a number of ms" >&2; exit 2; }
# DURATION as humantime understands it; only the simple forms, so the time bound below is sure.
if [[ "$DURATION" =~ ^([0-9]+)(ms|s|m)$ ]]; then
  case "${BASH_REMATCH[2]}" in
    ms) dur_s=$(( (BASH_REMATCH[1] + 999) / 1000 )) ;;
    s) dur_s=${BASH_REMATCH[1]} ;;
    m) dur_s=$(( BASH_REMATCH[1] * 60 )) ;;
  esac
else
  usage
fi
WARMUP=1s
POLL_INTERVAL=200ms
CLIENTS=10
RATE=20
PAYLOAD=100
TRANSPORTS=(short-poll long-poll ws sse)
# Each `feedbench load` is bounded: warm-up + window + a generous margin for setup/teardown.
RUN_LIMIT_S=$(( dur_s + 1 + 60 ))

FB="${FEEDBENCH:-target/release/feedbench}"
if [ -z "${FEEDBENCH:-}" ] && [ ! -x "$FB" ]; then
  echo "any-server-truth: $FB missing, building it (cargo build --release)" >&2
  cargo build --release >&2
fi

# The real interpreter, not a shim (pyenv's shim is a shell script: killing its PID would
# leave the server running).
PY="$(python3 -c 'import sys; print(sys.executable)')" || { echo "python3 not found" >&2; exit 2; }
"$PY" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null \
  || { echo "any-server-truth: needs Python 3.11+ ($PY)" >&2; exit 2; }
if ! "$PY" -c 'import aiohttp' 2>/dev/null; then
  echo "any-server-truth: installing aiohttp (scripts/reference/requirements.txt)" >&2
  "$PY" -m pip install -q -r scripts/reference/requirements.txt >&2
fi

WORK="$(mktemp -d /tmp/any-server-truth.XXXXXX)"
SERVER_PID=""
LOAD_PID=""
cleanup() {
  local rc=$?
  if [ -n "$LOAD_PID" ]; then   # interrupted during a run: stop that feedbench load first
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$LOAD_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 40); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  if [ "$rc" -eq 0 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$WORK"
  else
    echo "any-server-truth: results and server log kept in $WORK" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$PY" scripts/reference/aiohttp_server.py --addr 127.0.0.1:0 --rate "$RATE" \
  --payload-bytes "$PAYLOAD" --jitter-ms "$JITTER_MS" >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER_PID=$!
for _ in $(seq 200); do   # at most 10 s for the first line
  grep -q '^feedbench listening on ' "$WORK/serve.out" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
URL="$(sed -n '1s/^feedbench listening on //p' "$WORK/serve.out")"
if [ -z "$URL" ]; then
  echo "any-server-truth: the reference server did not start: $(tail -n 5 "$WORK/serve.err")" >&2
  exit 2
fi
case "$URL" in
  http://127.0.0.1:*) ;;
  *) echo "any-server-truth: unexpected address $URL (loopback only)" >&2; exit 2 ;;
esac
echo "reference server (aiohttp $("$PY" -c 'import aiohttp; print(aiohttp.__version__)'), jitter ${JITTER_MS} ms) at $URL; feedbench: $FB"
echo "$CLIENTS clients, $RATE events/s, $PAYLOAD B payload, warm-up $WARMUP, window $DURATION, $RUNS runs per transport"
echo

# One results file → "status published expected delivered missed server_missed duplicates
# out_of_order warnings notes errors" (a dash for a missing member).
summarise() {
  "$PY" - "$1" <<'EOF'
import json, sys
try:
    doc = json.load(open(sys.argv[1]))
    sc = doc["scenarios"][0]
except Exception as e:  # no file, not JSON, no scenario
    print("unreadable", *["-"] * 10)
    sys.exit(0)
ev = sc.get("events") or {}
get = lambda k: ev.get(k, "-")
errors = sc.get("errors") or {}
n_err = sum(v if isinstance(v, int) else 1 for v in errors.values()) if isinstance(errors, dict) else len(errors)
print(sc.get("status", "-"), get("published"), get("expected"), get("delivered"), get("missed"),
      get("server_missed"), get("duplicates"), get("out_of_order"), len(sc.get("warnings") or []),
      len(sc.get("notes") or []), n_err)
EOF
}

failed=0
declare -A SUM_RUNS SUM_MISSED MAX_MISSED SUM_BAD
printf '%-10s %4s %-9s %9s %8s %9s %6s %6s %4s %4s %4s %4s %4s  %s\n' \
  transport run status published expected delivered missed srvmis dup ooo warn note err verdict
for t in "${TRANSPORTS[@]}"; do
  SUM_RUNS[$t]=0; SUM_MISSED[$t]=0; MAX_MISSED[$t]=0; SUM_BAD[$t]=0
  for run in $(seq "$RUNS"); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "any-server-truth: the reference server died: $(tail -n 5 "$WORK/serve.err")" >&2
      exit 1
    fi
    out="$WORK/$t-$run.json"
    extra=()
    [ "$t" = short-poll ] && extra=(--poll-interval "$POLL_INTERVAL")
    rc=0
    # In the background so that a signal to this script is handled at once (see cleanup).
    timeout --kill-after=10 "$RUN_LIMIT_S" "$FB" load --target "$URL" --transport "$t" \
      --clients "$CLIENTS" --rate "$RATE" --payload-bytes "$PAYLOAD" --duration "$DURATION" \
      --warmup "$WARMUP" "${extra[@]}" --out "$out" >"$WORK/$t-$run.stdout" 2>"$WORK/$t-$run.stderr" &
    LOAD_PID=$!
    wait "$LOAD_PID" || rc=$?
    LOAD_PID=""
    read -r status published expected delivered missed smissed dup ooo nwarn nnote nerr \
      < <(summarise "$out")
    verdict=ok
    num() { [[ "$1" =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }
    if [ "$rc" -ne 0 ] || [ "$status" != complete ]; then
      verdict="FAILED (exit $rc; $(tail -n 1 "$WORK/$t-$run.stderr" | cut -c1-160))"
    elif [ "$(num "$missed")" -gt 0 ] || [ "$(num "$dup")" -gt 0 ] || [ "$(num "$ooo")" -gt 0 ]; then
      verdict="LOSS/ORDER"
    fi
    [ "$verdict" = ok ] || { failed=1; SUM_BAD[$t]=$(( SUM_BAD[$t] + 1 )); }
    m=$(num "$missed")
    SUM_RUNS[$t]=$(( SUM_RUNS[$t] + 1 ))
    SUM_MISSED[$t]=$(( SUM_MISSED[$t] + m ))
    [ "$m" -gt "${MAX_MISSED[$t]}" ] && MAX_MISSED[$t]=$m
    printf '%-10s %4s %-9s %9s %8s %9s %6s %6s %4s %4s %4s %4s %4s  %s\n' \
      "$t" "$run" "$status" "$published" "$expected" "$delivered" "$missed" "$smissed" "$dup" "$ooo" \
      "$nwarn" "$nnote" "$nerr" "$verdict"
  done
done

echo
printf '%-10s %5s %12s %11s %9s\n' transport runs total_missed max_missed bad_runs
for t in "${TRANSPORTS[@]}"; do
  printf '%-10s %5s %12s %11s %9s\n' "$t" "${SUM_RUNS[$t]}" "${SUM_MISSED[$t]}" "${MAX_MISSED[$t]}" "${SUM_BAD[$t]}"
done

# The distinct warnings and notes the runs carried (a note, e.g.: the server reports no
# byte counters, so the clients' bytes are not cross-checked).
"$PY" - "$WORK" <<'EOF'
import collections, glob, json, re, sys
for member in ("warnings", "notes"):
    seen = collections.Counter()
    for path in sorted(glob.glob(sys.argv[1] + "/*.json")):
        try:
            sc = json.load(open(path))["scenarios"][0]
        except Exception:
            continue
        for w in sc.get(member) or []:
            w = w if isinstance(w, str) else json.dumps(w, sort_keys=True)
            seen[re.sub(r"\b\d+\b", "N", w)] += 1  # one line per kind, numbers folded
    print(f"\n{member} seen (distinct, numbers as N; runs):")
    for w, n in sorted(seen.items(), key=lambda x: -x[1]):
        print(f"  {n:3d}x {w}")
    if not seen:
        print("  (none)")
EOF

if [ "$failed" -ne 0 ]; then
  echo "any-server-truth: FAIL (a run failed or missed, duplicated or reordered events)"
  exit 1
fi
echo "any-server-truth: ok (no run missed, duplicated or reordered an event)"
