#!/usr/bin/env bash
# Loopback TCP push floor of this machine: how long it takes one thread to write one small
# (112-byte) message to each of N loopback TCP clients, and for a reader thread on the other
# core to see it. Any server's delivery latency on this machine (HTTP polling, WebSocket, SSE,
# whatever feedbench measures) is bounded below by this figure at the same fan-out: a server
# does at least these write() calls and the clients at least these reads, plus its own work.
# It is an independent reference, with no Rust, no HTTP and no framing involved.
#
# scripts/loopback-floor.c (built here with gcc into target/loopback-floor/) runs a writer
# pinned to CPU 0 on an open-loop schedule (1 s warm-up, then SECONDS measured) and a reader
# pinned to CPU 1 on epoll. It reports timer lateness, the write loop per event (and per
# client), and latency per message from the scheduled time and from the start of the write
# loop. Cases, one after another, each under `timeout`:
#   a  100 clients,   10/s, 10 s, blocking (clock_nanosleep + epoll_wait that sleeps)
#   b  100 clients,   10/s, 10 s, --spin   (busy-wait; no wake-up costs: the pure path)
#   c  1 client,      10/s, 10 s, blocking (one write, one read)
#   d  10000 clients,  1/s, 10 s, blocking (fan-out: the last client waits for all writes)
# About 50 s per round.
#
#   scripts/loopback-floor.sh [ROUNDS (1)] [CASES (abcd)]
#
# CASES picks cases by letter (e.g. `ad`); BUILD_ONLY=1 only builds the programs (for other
# scripts, e.g. scripts/floor-compare.sh, that run them themselves).
#
# With ROUNDS > 1 the set is repeated and a summary gives, per case, the median over rounds
# of each round's p50 and p99 (from write start and from schedule) and of the per-client
# write cost. Exits non-zero if any run failed or lost a message.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  echo "usage: scripts/loopback-floor.sh [ROUNDS (1)] [CASES (abcd)]" >&2
  exit 2
}
[ "$#" -le 2 ] || usage
rounds="${1:-1}"
cases="${2:-abcd}"
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ ]] || [ "$rounds" -gt 20 ]; then usage; fi
if ! [[ "$cases" =~ ^[abcd]+$ ]]; then usage; fi

if ! command -v gcc >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q
  $sudo apt-get install -y -q gcc libc6-dev
fi
mkdir -p target/loopback-floor
bin=target/loopback-floor/loopback-floor
gcc -std=c11 -O2 -Wall -Wextra -Werror -pthread -o "$bin" scripts/loopback-floor.c
# The WebSocket client floor (scripts/floor-compare.sh runs it against feedbench's server).
gcc -std=c11 -O2 -Wall -Wextra -Werror -o target/loopback-floor/ws-client-floor scripts/ws-client-floor.c
[ "${BUILD_ONLY:-0}" != 1 ] || exit 0

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

names=(a b c d)
labels=(
  "100 clients, 10/s, blocking"
  "100 clients, 10/s, spin"
  "1 client, 10/s, blocking"
  "10000 clients, 1/s, blocking"
)
args=(
  "--clients 100 --rate 10 --seconds 10"
  "--clients 100 --rate 10 --seconds 10 --spin"
  "--clients 1 --rate 10 --seconds 10"
  "--clients 10000 --rate 1 --seconds 10"
)

failed=0
for ((r = 1; r <= rounds; r++)); do
  for i in "${!names[@]}"; do
    [[ "$cases" == *"${names[i]}"* ]] || continue
    echo "== round $r/$rounds, case ${names[i]}: ${labels[i]}"
    out="$work/${names[i]}.$r.out"
    read -ra case_args <<<"${args[i]}"
    if timeout 60 "$bin" "${case_args[@]}" >"$out"; then
      cat "$out"
      # one line per round: write-start p50 p99, schedule p50 p99, per-client write cost
      awk '
        /^latency from write start/ { for (i = 1; i <= NF; i++) { if ($i == "p50") w50 = $(i+1); if ($i == "p99") w99 = $(i+1) } }
        /^latency from schedule/    { for (i = 1; i <= NF; i++) { if ($i == "p50") s50 = $(i+1); if ($i == "p99") s99 = $(i+1) } }
        /^write loop per event/     { for (i = 1; i <= NF; i++) if ($i == "client") pc = $(i+1) }
        END { print w50, w99, s50, s99, pc }
      ' "$out" >>"$work/${names[i]}.vals"
    else
      rc=$?
      cat "$out"
      note=""
      [ "$rc" -ne 124 ] || note=", timed out"
      echo "!! case ${names[i]} failed (exit $rc$note)"
      failed=1
    fi
  done
done

# median of column $1 over the lines of file $2 (mean of the middle two if even)
median() {
  awk -v c="$1" '{ print $c }' "$2" | sort -g | awk '
    { v[NR] = $1 }
    END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "== summary: median over $rounds round(s) of each round's figure, µs"
printf '%-4s %-30s %9s %9s %9s %9s %10s\n' case "" "write p50" "write p99" "sched p50" "sched p99" "per-client"
for i in "${!names[@]}"; do
  [[ "$cases" == *"${names[i]}"* ]] || continue
  vals="$work/${names[i]}.vals"
  if [ -s "$vals" ]; then
    printf '%-4s %-30s %9s %9s %9s %9s %10s\n' "${names[i]}" "${labels[i]}" \
      "$(median 1 "$vals")" "$(median 2 "$vals")" "$(median 3 "$vals")" "$(median 4 "$vals")" \
      "$(median 5 "$vals")"
  else
    printf '%-4s %-30s %s\n' "${names[i]}" "${labels[i]}" "no successful run"
  fi
done
echo "(write = latency from write-loop start, sched = latency from scheduled time;"
echo " per-client = write loop p50 / clients)"
exit "$failed"
