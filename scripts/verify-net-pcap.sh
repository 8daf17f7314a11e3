#!/usr/bin/env bash
# Checks the network emulator's IP counts against an independent measurement: a packet
# capture on the link's host-side TUN device.
#
# Starts `feedbench serve` (all addresses, a control token), then runs `feedbench load` for
# one transport behind an emulated link (`feedbench net --link SPEC -- feedbench load ...`)
# while tcpdump captures the link's host-side device `fbh<pid>`. Every packet the host
# sends into the link passes that device on its way in, and every packet the link delivers
# to the host passes it on its way out, so the capture must hold exactly the emulator's
# `down.packets` / `down.bytes` (what entered, lost ones included) and
# `up.delivered_packets` / `up.delivered_bytes` (what came through). IP bytes are the IP
# header's total length. Exit 0 when all four match for every transport, 1 on a mismatch,
# 2 on a set-up error. Needs root.
#
#   scripts/verify-net-pcap.sh [SPEC (rtt=20ms,loss=1%)] [CLIENTS (10)]
set -euo pipefail
cd "$(dirname "$0")/.."
spec="${1:-rtt=20ms,loss=1%}"
clients="${2:-10}"
[ "$(id -u)" -eq 0 ] || { echo "verify-net-pcap: needs root (network namespaces, TUN devices, capture)" >&2; exit 2; }
if ! command -v tcpdump >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends tcpdump >/dev/null
fi
cargo build --release --locked -q
bin="$PWD/target/release/feedbench"
source scripts/lib.sh

work="$(mktemp -d)"
cap_pid=""
cleanup() {
  [ -n "$cap_pid" ] && kill "$cap_pid" 2>/dev/null || true
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

FEEDBENCH_CONTROL_TOKEN="$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export FEEDBENCH_CONTROL_TOKEN
fb_server_start "$work" - --addr 0.0.0.0:0
port="${FB_ADDR##*:}"

fail=0
for transport in short-poll long-poll ws sse; do
  # The command waits until the capture runs, runs the load, lets the last packets settle
  # and waits until the capture has stopped: the capture must end while the device still
  # exists, or its last packets are lost with it.
  rm -f "$work/capturing" "$work/done" "$work/stopped"
  "$bin" net --link "$spec" --counts-out "$work/$transport.json" -- bash -c '
    for _ in $(seq 100); do [ -e "$1/capturing" ] && break; sleep 0.05; done
    "$2" load --target "http://$FEEDBENCH_NET_HOST:$3" --transport "$4" --clients "$5" \
      --rate 20 --duration 3s --warmup 1s --poll-interval 200ms --out "$1/$4.results.json" || exit $?
    sleep 1
    touch "$1/done"
    for _ in $(seq 200); do [ -e "$1/stopped" ] && break; sleep 0.05; done
  ' x "$work" "$bin" "$port" "$transport" "$clients" >"$work/$transport.out" 2>"$work/$transport.err" &
  net_pid=$!
  dev=""
  for _ in $(seq 100); do
    dev="$(sed -n 's/.*namespace fbnet-\([0-9]*\).*/fbh\1/p' "$work/$transport.err" | head -n1)"
    [ -n "$dev" ] && break
    sleep 0.05
  done
  [ -n "$dev" ] || { echo "verify-net-pcap: the link did not come up: $(cat "$work/$transport.err")" >&2; exit 2; }
  tcpdump -i "$dev" -w "$work/$transport.pcap" -U -s 128 2>"$work/$transport.tcpdump" &
  cap_pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/$transport.tcpdump" 2>/dev/null && break; sleep 0.05; done
  touch "$work/capturing"
  for _ in $(seq 600); do [ -e "$work/done" ] || ! kill -0 "$net_pid" 2>/dev/null && break; sleep 0.05; done
  kill -INT "$cap_pid" 2>/dev/null || true
  wait "$cap_pid" 2>/dev/null || true
  cap_pid=""
  touch "$work/stopped"
  wait "$net_pid" || { echo "verify-net-pcap: $transport: feedbench net failed: $(tail -n 3 "$work/$transport.err")" >&2; exit 2; }
  grep -q "^0 packets dropped by kernel" "$work/$transport.tcpdump" || { echo "verify-net-pcap: the capture dropped packets: $(cat "$work/$transport.tcpdump")" >&2; exit 2; }
  python3 - "$work/$transport.pcap" "$work/$transport.json" "$transport" <<'EOF' || fail=1
import json, struct, sys
pcap, counts, transport = sys.argv[1:4]
data = open(pcap, "rb").read()
magic = struct.unpack("<I", data[:4])[0]
endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
off, host = 24, bytes([198, 19, 0, 1])
got = {"down": [0, 0], "up": [0, 0]}
while off + 16 <= len(data):
    _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
    pkt = data[off + 16:off + 16 + incl]
    off += 16 + incl
    if len(pkt) < 20 or pkt[0] >> 4 != 4:
        continue
    total = struct.unpack(">H", pkt[2:4])[0]
    way = "down" if pkt[12:16] == host else "up" if pkt[16:20] == host else None
    if way:
        got[way][0] += 1
        got[way][1] += total
c = json.load(open(counts))
want = {"down": [c["down"]["packets"], c["down"]["bytes"]],
        "up": [c["up"]["delivered_packets"], c["up"]["delivered_bytes"]]}
ok = got == want
print("%-10s %s  capture down %d pkts %d B, up %d pkts %d B; emulator down %d pkts %d B (in), up %d pkts %d B (delivered); retransmits %d/%d, lost %d/%d"
      % (transport, "ok      " if ok else "MISMATCH", *got["down"], *got["up"], *want["down"], *want["up"],
         c["down"]["tcp_retransmits"], c["up"]["tcp_retransmits"], c["down"]["drops_loss"], c["up"]["drops_loss"]))
sys.exit(0 if ok else 1)
EOF
done
exit "$fail"
