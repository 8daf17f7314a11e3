#!/usr/bin/env bash
# Checks feedbench's byte counts against an independent measurement: a packet capture.
#
# Starts `feedbench serve` on a loopback port, captures that port with tcpdump, runs one
# `feedbench load` per transport, and sums the TCP payload bytes of every connection in the
# capture, classified by its first request line (/poll, /longpoll, /ws, /sse; the load
# generator's own /stats, /control and /time connections are left out). Each transport's
# client-to-server and server-to-client totals must equal the load generator's
# `bytes.total_up` / `bytes.total_down` exactly. The load generator's feed reader (which
# reads each window's events with `GET /poll?limit=` or, in a short-poll run,
# `GET /longpoll?timeout_ms=0&`: see loadgen/src/feed.rs) is counted apart: the server's
# counters, read once at the end, hold every run's traffic of a class, so they must equal
# the clients' bytes plus the feed readers' bytes in that class, exactly.
# Exit 0 when all match, 1 on a mismatch, 2 on a set-up error. Needs root for the capture.
#
#   scripts/verify-bytes-pcap.sh [CLIENTS (10)] [DURATION (3s)]
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-10}"
duration="${2:-3s}"
need=()
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
cargo build --release --locked -q
bin=target/release/feedbench

source scripts/lib.sh
work="$(mktemp -d)"
dump_pid=""
cleanup() {
  [ -n "$dump_pid" ] && kill "$dump_pid" 2>/dev/null || true
  fb_server_stop
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
fb_server_start "$work" - --addr "127.0.0.1:$port" --rate 20

# Full packets (payload needed for the request line), a large buffer so nothing drops.
tcpdump -i lo -s 512 -B 65536 -U -w "$work/cap.pcap" "tcp port $port" 2>"$work/tcpdump.err" &
dump_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/tcpdump.err" 2>/dev/null && break; sleep 0.05; done

for t in short-poll long-poll ws sse; do
  extra=()
  [ "$t" = short-poll ] && extra=(--poll-interval 200ms)
  "$bin" load --target "http://127.0.0.1:$port" --transport "$t" --clients "$clients" \
    --rate 20 --payload-bytes 64 --duration "$duration" --warmup 1s "${extra[@]}" \
    --out "$work/$t.json" >/dev/null
done
curl -sf "http://127.0.0.1:$port/stats" >"$work/stats.json"
# A last request the capture must hold before it stops (a 404 of no class, after /stats).
fb_capture_flush "$work/cap.pcap" "http://127.0.0.1:$port/fb-capture-end"
kill -INT "$dump_pid"; wait "$dump_pid" 2>/dev/null || true; dump_pid=""
grep -E "packets (captured|dropped)" "$work/tcpdump.err" >&2 || true

python3 - "$work" "$port" <<'PY'
import json, struct, sys
work, port = sys.argv[1], int(sys.argv[2])
data = open(f"{work}/cap.pcap", "rb").read()
magic = struct.unpack("<I", data[:4])[0]
endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
linktype = struct.unpack(endian + "I", data[20:24])[0]
# One entry per TCP connection: keyed by the client's address and port plus a generation
# that a new SYN starts, because the clients connect from several 127.0.0.x addresses (the
# same port can be in use on two of them) and a 4-tuple can come back once the old
# connection is gone (seen in CI: an SSE connection reused a ws one's tuple).
streams = {}  # (client ip, client port, generation) -> {"up": n, "down": n, "first": bytes}
generation = {}  # (client ip, client port) -> current generation
off = 24
while off + 16 <= len(data):
    _, _, incl, orig = struct.unpack(endian + "IIII", data[off:off + 16])
    pkt = data[off + 16: off + 16 + incl]
    off += 16 + incl
    if linktype == 1:        # Ethernet (Linux lo)
        ip = pkt[14:]
    elif linktype == 113:    # Linux cooked
        ip = pkt[16:]
    else:
        ip = pkt[4:]
    if not ip or ip[0] >> 4 != 4:
        continue
    ihl = (ip[0] & 15) * 4
    total = struct.unpack(">H", ip[2:4])[0]
    tcp = ip[ihl:]
    sport, dport = struct.unpack(">HH", tcp[:4])
    doff = (tcp[12] >> 4) * 4
    payload_len = total - ihl - doff
    client = (ip[12:16], sport) if dport == port else (ip[16:20], dport)
    syn, ack = tcp[13] & 0x02, tcp[13] & 0x10
    if dport == port and syn and not ack:
        generation[client] = generation.get(client, 0) + 1
    if payload_len <= 0:
        continue
    key = (*client, generation.get(client, 0))
    s = streams.setdefault(key, {"up": 0, "down": 0, "first": b""})
    if dport == port:
        s["up"] += payload_len
        if not s["first"]:
            s["first"] = bytes(tcp[doff:doff + 40])
    else:
        s["down"] += payload_len
classes = {"/poll": "short-poll", "/longpoll": "long-poll", "/ws": "ws", "/sse": "sse"}
# The feed reader's first request (feed.rs: the head read just before the window).
reader_prefixes = (b"/poll?limit=", b"/longpoll?timeout_ms=0&")
pcap = {t: {"up": 0, "down": 0, "conns": 0} for t in classes.values()}
reader = {t: {"up": 0, "down": 0, "conns": 0} for t in classes.values()}
for s in streams.values():
    parts = s["first"].split(b" ")
    target = parts[1] if len(parts) > 1 else b""
    t = classes.get(target.split(b"?")[0].decode(errors="replace"))
    if t:
        bucket = reader if target.startswith(reader_prefixes) else pcap
        bucket[t]["up"] += s["up"]; bucket[t]["down"] += s["down"]; bucket[t]["conns"] += 1
stats = json.load(open(f"{work}/stats.json"))
server_class = {"short-poll": "short_poll", "long-poll": "long_poll", "ws": "ws", "sse": "sse"}
ok = True
print(f"{'transport':<11} {'conns':>5} {'pcap up':>10} {'loadgen up':>10} {'server in':>10} {'pcap down':>10} {'loadgen down':>12} {'server out':>10} {'reader':>7}  verdict")
for t in ["short-poll", "long-poll", "ws", "sse"]:
    r = json.load(open(f"{work}/{t}.json"))
    b = r["scenarios"][0]["bytes"]
    srv = stats["bytes"][server_class[t]]
    p, q = pcap[t], reader[t]
    clients = p["up"] == b["total_up"] and p["down"] == b["total_down"]
    server = srv["in"] == p["up"] + q["up"] and srv["out"] == p["down"] + q["down"]
    match = clients and server
    ok &= match
    rd = f"{q['up'] + q['down']}/{q['conns']}"
    print(f"{t:<11} {p['conns']:>5} {p['up']:>10} {b['total_up']:>10} {srv['in']:>10} {p['down']:>10} {b['total_down']:>12} {srv['out']:>10} {rd:>7}  {'exact' if match else 'MISMATCH'}")
print("(reader: bytes/connections of the load generator's feed reads in that class; the server "
      "counts them too, so server = clients + reader)")
sys.exit(0 if ok else 1)
PY
