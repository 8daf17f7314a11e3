#!/usr/bin/env bash
# How exactly the emulated link does what its spec says, and how much it can carry.
# Needs root (network namespaces, TUN devices). Prints one line per check:
#
#   rtt      TCP connect time through rtt=20/50/100/200/400ms (median, min, max of 20
#            connects; a connect is one round trip), and the error against the spec
#   jitter   rtt=100ms,jitter=10ms: the spread of 150 connect times, 150 ms apart (each
#            direction's delay is uniform in ±10 ms, so a round trip spreads over ±20 ms,
#            triangular)
#   rate     a 4 MB bulk transfer through down=10mbit: the IP-level rate the emulator
#            delivered (its byte counts over the transfer's time) and TCP's goodput
#   capacity a 200 MB bulk transfer through rtt=0ms with no rate limit: packets per second
#            the emulator forwarded and the share of one core its thread used
#
#   scripts/net-accuracy.sh            all checks
#   scripts/net-accuracy.sh rtt rate   some of them
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" -eq 0 ] || { echo "net-accuracy: needs root (network namespaces and TUN devices)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "net-accuracy: needs python3" >&2; exit 2; }
cargo build --release --locked -q
EXE=target/release/feedbench
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(rtt jitter rate capacity)

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A sink and a source on this side of the link, listening on all addresses (the command
# behind the link reaches them at $FEEDBENCH_NET_HOST): port A swallows what it is sent,
# port B sends what it is asked for (a decimal byte count on one line).
python3 - "$work/ports" <<'EOF' &
import socket, sys, threading
def serve(sock, handler):
    while True:
        c, _ = sock.accept()
        threading.Thread(target=handler, args=(c,), daemon=True).start()
def sink(c):
    while c.recv(1 << 16):
        pass
    c.close()
def source(c):
    n = int(c.makefile().readline())
    chunk = b"x" * 65536
    while n > 0:
        c.sendall(chunk[: min(n, len(chunk))])
        n -= len(chunk)
    c.close()
socks = []
for h in (sink, source):
    s = socket.socket()
    s.bind(("0.0.0.0", 0))
    s.listen(256)
    socks.append((s, h))
open(sys.argv[1], "w").write(" ".join(str(s.getsockname()[1]) for s, _ in socks) + "\n")
for s, h in socks[1:]:
    threading.Thread(target=serve, args=(s, h), daemon=True).start()
serve(*socks[0])
EOF
server_pid=$!
for _ in $(seq 50); do [ -s "$work/ports" ] && break; sleep 0.1; done
read -r SINK SOURCE < "$work/ports"

# Connect times in ms (µs resolution), one per line, from behind the link.
# $3 (optional) is a pause between connects: the link keeps each client's packets in order,
# so a SYN sent while the previous connection's last packets are still on the way waits
# behind them; spaced by more than the largest delay, every packet's delay is its own draw.
CONNECTS='for i in $(seq "$2"); do t0=${EPOCHREALTIME/./}; exec 3<>"/dev/tcp/$FEEDBENCH_NET_HOST/$1"; t1=${EPOCHREALTIME/./}; exec 3>&-; echo $(( t1 - t0 )); [ -z "${3:-}" ] || sleep "$3"; done'
# Fetches $2 bytes from the source; prints the elapsed µs.
FETCH='t0=${EPOCHREALTIME/./}; exec 3<>"/dev/tcp/$FEEDBENCH_NET_HOST/$1"; echo "$2" >&3; cat <&3 >/dev/null; t1=${EPOCHREALTIME/./}; echo $(( t1 - t0 ))'

stats() { # µs per line on stdin -> "median min max sd" in ms
  python3 -c 'import sys,statistics as s; v=sorted(int(l)/1e3 for l in sys.stdin if l.strip()); print("%.2f %.2f %.2f %.2f" % (s.median(v), v[0], v[-1], s.pstdev(v)))'
}

for check in "${checks[@]}"; do
  case "$check" in
    rtt)
      for rtt in 20 50 100 200 400; do
        read -r med lo hi _ < <("$EXE" net --link "rtt=${rtt}ms" -- bash -c "$CONNECTS" x "$SINK" 20 2>/dev/null | stats)
        echo "rtt      spec ${rtt} ms: connect median ${med} ms (min ${lo}, max ${hi}), error $(python3 -c "print('%+.2f' % ($med - $rtt))") ms"
      done
      ;;
    jitter)
      read -r med lo hi sd < <("$EXE" net --link "rtt=100ms,jitter=10ms" -- bash -c "$CONNECTS" x "$SINK" 150 0.15 2>/dev/null | stats)
      echo "jitter   spec rtt=100ms,jitter=10ms: 150 connects 150 ms apart: median ${med} ms, min ${lo}, max ${hi}, sd ${sd} ms (two draws uniform in ±10 ms: triangular over 80-120 ms, median 100, sd 8.16 ms)"
      ;;
    rate)
      bytes=4000000
      us=$("$EXE" net --link "down=10mbit" --counts-out "$work/rate.json" -- bash -c "$FETCH" x "$SOURCE" "$bytes" 2>/dev/null)
      python3 - "$work/rate.json" "$us" "$bytes" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); us = int(sys.argv[2]); n = int(sys.argv[3])
ip = c["down"]["delivered_bytes"] * 8 / (us / 1e6) / 1e6
good = n * 8 / (us / 1e6) / 1e6
print("rate     spec down=10mbit: IP-level %.3f Mbit/s (%+.1f%%), TCP goodput %.3f Mbit/s, %d packets, %d queue drops"
      % (ip, (ip / 10 - 1) * 100, good, c["down"]["delivered_packets"], c["down"]["drops_queue"]))
EOF
      ;;
    capacity)
      bytes=200000000
      us=$("$EXE" net --link "rtt=0ms" --counts-out "$work/cap.json" -- bash -c "$FETCH" x "$SOURCE" "$bytes" 2>/dev/null)
      python3 - "$work/cap.json" "$us" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); s = int(sys.argv[2]) / 1e6
pk = c["down"]["delivered_packets"] + c["up"]["delivered_packets"]
e = c["emulator"]
print("capacity rtt=0ms bulk: %.0f packets/s forwarded (%.0f Mbit/s down), emulator thread %.0f%% of a core; %.0f packets/s per core-second"
      % (pk / s, c["down"]["delivered_bytes"] * 8 / s / 1e6, 100 * e["cpu_s"] / max(e["wall_s"], 1e-9), pk / max(e["cpu_s"], 1e-9)))
EOF
      ;;
    *) echo "net-accuracy: unknown check $check (rtt, jitter, rate, capacity)" >&2; exit 2 ;;
  esac
done
