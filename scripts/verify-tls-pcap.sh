#!/usr/bin/env bash
# Checks feedbench's TLS byte accounting against a packet capture, which sees ciphertext.
#
# Starts `feedbench serve --tls --cert-out`, captures its port on loopback with tcpdump, and
# runs one `feedbench load` per transport (short-poll, long-poll, ws, sse) and stack (TLS
# HTTP/1.1, TLS HTTP/2), plus a short-poll without keep-alive (one resumed handshake per
# poll), each run's clients from a loopback address of its own (`--source-addrs
# 127.0.0.N`; the load generator's own /stats, /control, /time and feed connections come
# from 127.0.0.1 and are left out). The clients write their session secrets to a key log
# (SSLKEYLOGFILE, rustls' KeyLogFile), so scripts/tls_pcap.py can reassemble each TCP
# direction by sequence number, walk its TLS records and decrypt them (the `cryptography`
# package, installed with pip if missing) to read each record's true content type. Per run
# and direction it must equal the results exactly:
#   captured TCP payload bytes              = bytes.total_up / total_down
#   application-data plaintext              = stack.run_tls.*.plaintext
#   application-data records × 22 B         = stack.run_tls.*.tls (every record costs 22 B)
#   every other record, whole (handshake)   = stack.run_tls.*.handshake
# and every ws event over TLS·HTTP/1.1 is one record of its JSON + 2 + 22 bytes.
# Exit 0 when all match, 1 on a mismatch, 2 on a set-up error. Needs root for the capture;
# as another user it prints `skipped` and exits 0.
#
#   scripts/verify-tls-pcap.sh [CLIENTS (10)] [DURATION (2s)]
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-10}"
duration="${2:-2s}"
if [ "$(id -u)" -ne 0 ]; then
  echo "verify-tls-pcap: skipped (needs root for the packet capture)"
  exit 0
fi
need=()
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! python3 -c 'import cryptography' 2>/dev/null; then
  python3 -m pip install -q cryptography 2>/dev/null \
    || python3 -m pip install -q --break-system-packages cryptography \
    || { echo "verify-tls-pcap: cannot install the python package cryptography" >&2; exit 2; }
fi
cargo build --release --locked -q
bin="${CARGO_TARGET_DIR:-target}/release/feedbench"

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
fb_server_start "$work" - --addr "127.0.0.1:$port" --rate 20 --tls --cert-out "$work/cert.pem"

# Whole packets (the parser decrypts them), a large buffer so nothing drops.
tcpdump -i lo -s 0 -B 65536 -U -w "$work/cap.pcap" "tcp port $port" 2>"$work/tcpdump.err" &
dump_pid=$!
for _ in $(seq 100); do grep -q "listening on" "$work/tcpdump.err" 2>/dev/null && break; sleep 0.05; done

# One line per run: name, source address, load arguments.
runs=()
n=10
for http in 1.1 2; do
  for t in short-poll long-poll ws sse; do
    n=$((n + 1))
    extra=""
    [ "$t" = short-poll ] && extra="--poll-interval 200ms"
    runs+=("$t-h$http 127.0.0.$n --transport $t --http $http $extra")
  done
done
n=$((n + 1))
runs+=("short-poll-h1.1-nokeepalive 127.0.0.$n --transport short-poll --http 1.1 --poll-interval 200ms --no-keepalive")
for run in "${runs[@]}"; do
  read -r name addr args <<<"$run"
  # shellcheck disable=SC2086 # $args is a list of words on purpose.
  SSLKEYLOGFILE="$work/keys.log" "$bin" load --target "https://127.0.0.1:$port" \
    --ca "$work/cert.pem" --source-addrs "$addr" --clients "$clients" --rate 20 \
    --payload-bytes 64 --duration "$duration" --warmup 1s $args --out "$work/$name.json" \
    >/dev/null
  echo "$name $addr" >>"$work/runs.txt"
done
sleep 0.5
kill -INT "$dump_pid"; wait "$dump_pid" 2>/dev/null || true; dump_pid=""
grep -E "packets (captured|dropped)" "$work/tcpdump.err" >&2 || true

python3 scripts/tls_pcap.py "$work/cap.pcap" "$work/keys.log" "$port" "$work/runs.txt" "$work"
