#!/usr/bin/env bash
# Request throughput of feedbench's /poll against nginx serving the same body as a static
# file: wrk with 1 thread and 64 connections against each, feedbench on one worker thread
# and nginx with one worker, each pinned to CPU 0 with wrk on CPU 1. Prints both rates and
# the ratio feedbench/nginx (target >= 1.0). Bounded: ROUNDS x 2 x DURATION plus set-up.
#
# With `tls`, both serve https with the same certificate and key (ECDSA P-256, made here
# with openssl), TLS 1.3 only, and wrk's keep-alive connections each make one handshake,
# so the rate is that of requests and responses in TLS records.
#
#   scripts/bench-server-vs-nginx.sh [DURATION (10s)] [ROUNDS (3)] [plain|tls (plain)]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
rounds="${2:-3}"
mode="${3:-plain}"
case "$mode" in plain|tls) ;; *) echo "mode must be plain or tls, got '$mode'" >&2; exit 2 ;; esac
FEEDBENCH_SETUP_BENCH_TOOLS=1 bash scripts/setup.sh
cargo build --release --locked -q --bin feedbench

source scripts/lib.sh
work="$(mktemp -d)"
nginx_pid=""
cleanup() {
  fb_server_stop
  [ -n "$nginx_pid" ] && kill "$nginx_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

scheme=http
tls_args=()
curl=(curl -sf)
nginx_listen=""
nginx_tls=""
if [ "$mode" = tls ]; then
  scheme=https
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  tls_args=(--cert "$work/cert.pem" --key "$work/key.pem")
  curl=(curl -sf --cacert "$work/cert.pem")
  nginx_listen=" ssl"
  nginx_tls="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3;"
fi

# feedbench: publish a few events, pause the feed, and poll for exactly one of them.
fb_server_start "$work" 0 --worker-threads 1 --rate 1000 --payload-bytes 64 "${tls_args[@]}"
addr="$FB_ADDR"
sleep 0.2
"${curl[@]}" -X PUT -d '{"rate_hz":0}' "$scheme://$addr/control/feed" >/dev/null
head="$("${curl[@]}" "$scheme://$addr/poll" | python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])')"
path="/poll?after=$((head - 1))"
"${curl[@]}" "$scheme://$addr$path" >"$work/body.json"

# nginx: one worker serving the same bytes with the same content type.
mkdir -p "$work/www" "$work/nginx"
cp "$work/body.json" "$work/www/poll.json"
# nginx workers drop to an unprivileged user; let them read the file.
chmod -R a+rX "$work"
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  proxy_temp_path $work/nginx;
  fastcgi_temp_path $work/nginx;
  uwsgi_temp_path $work/nginx;
  scgi_temp_path $work/nginx;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$nginx_port$nginx_listen;
    $nginx_tls
    location = /poll { default_type application/json; alias $work/www/poll.json; }
  }
}
NGINX
taskset -c 0 nginx -c "$work/nginx.conf" &
nginx_pid=$!
nginx_url="$scheme://127.0.0.1:$nginx_port/poll"
for _ in $(seq 100); do "${curl[@]}" "$nginx_url" >/dev/null 2>&1 && break; sleep 0.05; done
cmp -s <("${curl[@]}" "$nginx_url") "$work/body.json" || { echo "nginx body differs" >&2; exit 2; }

rate() { taskset -c 1 wrk -t1 -c64 -d"$duration" "$1" | awk '/Requests\/sec/ {print $2}'; }
echo "$scheme; body: $(wc -c <"$work/body.json") bytes; wrk -t1 -c64 -d$duration; $rounds interleaved rounds"
fb=(); ng=()
for r in $(seq "$rounds"); do
  fb+=("$(rate "$scheme://$addr$path")")
  ng+=("$(rate "$nginx_url")")
  echo "round $r: feedbench ${fb[-1]} req/s, nginx ${ng[-1]} req/s"
done
python3 - "${fb[*]}" "${ng[*]}" <<'PY'
import statistics, sys
fb = [float(x) for x in sys.argv[1].split()]
ng = [float(x) for x in sys.argv[2].split()]
ratios = [f / n for f, n in zip(fb, ng)]
print(f"median: feedbench {statistics.median(fb):.0f} req/s, nginx {statistics.median(ng):.0f} req/s")
print(f"ratio feedbench/nginx: median {statistics.median(ratios):.2f} (per round: {', '.join(f'{r:.2f}' for r in ratios)})")
PY
