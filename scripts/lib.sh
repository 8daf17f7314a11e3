# shellcheck shell=bash
# Shared by the scripts that start a feedbench server of their own; source it from the
# repository root (`source scripts/lib.sh`). Not meant to be run.
#
#   fb_server_start WORKDIR CPUS ARGS...
#       Starts `target/release/feedbench serve ARGS...` (under $CARGO_TARGET_DIR if set;
#       $FB_SERVER_BIN instead, if set, to measure another build's server; pinned with taskset to CPUS, or
#       unpinned when CPUS is `-`), with its stdout/stderr in WORKDIR/serve.{out,err}, and
#       waits (at most 5 s) for its `feedbench listening on http(s)://ADDR` line. Sets
#       FB_SERVER_PID, FB_URL (http://ADDR or https://ADDR) and FB_ADDR (ADDR). Without `--addr` in ARGS
#       it listens on 127.0.0.1 with a free port. Exits 2 if the server does not start.
#   fb_server_stop
#       Stops that server (SIGTERM, then waits for it); safe to call twice, or when none
#       was started, so cleanup traps can call it unconditionally.

FB_SERVER_PID=""
export FB_URL=""
export FB_ADDR=""

fb_server_start() {
  local work="$1" cpus="$2"
  shift 2
  local args=("$@")
  [[ " ${args[*]} " == *" --addr "* ]] || args=(--addr 127.0.0.1:0 "${args[@]}")
  local run=("${FB_SERVER_BIN:-${CARGO_TARGET_DIR:-target}/release/feedbench}" serve "${args[@]}")
  [ "$cpus" = - ] || run=(taskset -c "$cpus" "${run[@]}")
  "${run[@]}" >"$work/serve.out" 2>"$work/serve.err" &
  FB_SERVER_PID=$!
  local _
  for _ in $(seq 100); do
    grep -q '^feedbench listening on ' "$work/serve.out" 2>/dev/null && break
    kill -0 "$FB_SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  FB_URL="$(sed -n 's/^feedbench listening on //p' "$work/serve.out")"
  FB_ADDR="${FB_URL#*://}"
  if [ -z "$FB_URL" ]; then
    echo "feedbench serve did not start: $(tail -n 5 "$work/serve.err" 2>/dev/null)" >&2
    fb_server_stop
    exit 2
  fi
}

fb_server_stop() {
  if [ -n "$FB_SERVER_PID" ]; then
    kill "$FB_SERVER_PID" 2>/dev/null || true
    wait "$FB_SERVER_PID" 2>/dev/null || true
    FB_SERVER_PID=""
  fi
}

# fb_capture_flush PCAP URL: requests URL (a path no client uses, named in it) and waits, at
# most 10 s, until the capture file written with `tcpdump -U` holds that path, so that
# everything sent before it is in the file too when the capture is stopped. A fixed sleep
# once lost the last run's final packets on a busy machine (CI, verify-bytes-pcap.sh: the
# SSE run's feed read and its last events missing from the capture, no drop reported).
fb_capture_flush() {
  local pcap="$1" url="$2" marker="${2##*/}"
  curl -s -o /dev/null "$url" || true
  for _ in $(seq 200); do
    grep -qaF "$marker" "$pcap" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "capture: $marker never reached $pcap" >&2
  return 1
}
