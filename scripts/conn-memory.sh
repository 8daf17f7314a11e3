#!/usr/bin/env bash
# Server memory per open idle connection, by kind: (RSS at N - RSS at 0) / N, with RSS
# read from the server's own /stats (`process.rss_bytes`). Kinds: ws, sse, long-poll (a
# client in steady state: one answered long-poll, then a parked one), idle keep-alive (a
# short-poll client between polls: one answered /poll, then nothing), and hyper-idle (a
# keep-alive connection whose last request, /healthz, hyper served). For each kind and
# each round, a fresh release server
# (`feedbench serve --addr 127.0.0.1:0 --rate 0`) is started as this script's child, N
# idle clients of that kind are opened from one python3 asyncio process, and the server's
# RSS is read before and after. Prints KiB per connection for every round and the median.
# Bounded: every wait has a deadline and the whole run is under `timeout`.
#
# With `tls`, the server runs `--tls --cert-out FILE` (a self-signed certificate) and the
# same clients speak TLS 1.3 with ALPN http/1.1 through Python's ssl module (trusting
# FILE): the load generator's TLS client is not used, so this script stands alone. Two
# more kinds then run over ALPN h2 with a minimal HTTP/2 client written here: sse-h2 (one
# open /sse stream) and idle-h2 (one answered /poll, then nothing), and sse-hyper, an SSE
# stream that hyper serves (what every TLS stream cost before the direct path took TLS).
#
#   scripts/conn-memory.sh [N (10000)] [ROUNDS (3)] [plain|tls (plain)]
#
# N connections need N descriptors in the client and in the server (20,000 allowed here).
# Each kind connects from its own 127.0.x.y source address, so earlier rounds' TIME_WAIT
# sockets never exhaust the ephemeral ports.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-10000}"
rounds="${2:-3}"
mode="${3:-plain}"
case "$mode" in plain|tls) ;; *) echo "mode must be plain or tls, got '$mode'" >&2; exit 2 ;; esac
cargo build --release --locked -q --bin feedbench
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/feedbench"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

timeout --kill-after=10s "$(( 120 + rounds * 5 * (30 + n / 100) ))s" \
  python3 - "$bin" "$n" "$rounds" "$mode" "$work" <<'PY'
import asyncio, json, os, signal, socket, ssl, statistics, subprocess, sys, time

BIN, N, ROUNDS, MODE, WORK = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
TLS = MODE == "tls"
CERT = os.path.join(WORK, "cert.pem")
KINDS = ["ws", "sse", "long-poll", "idle", "hyper-idle"] + (
    ["sse-hyper", "sse-h2", "idle-h2"] if TLS else [])
# The /stats gauge that counts each kind once it is open.
GAUGE = {"ws": "ws", "sse": "sse", "long-poll": "long_poll_parked", "idle": "http_idle",
         "sse-h2": "sse", "idle-h2": "http_idle", "sse-hyper": "sse",
         "hyper-idle": "http_idle"}
# What each kind sends first, and whether a complete answer (content-length body) comes.
FIRST = {
    "ws": (b"GET /ws HTTP/1.1\r\nhost: t\r\nconnection: upgrade\r\nupgrade: websocket\r\n"
           b"sec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n", False),
    "sse": (b"GET /sse HTTP/1.1\r\nhost: t\r\n\r\n", False),
    "long-poll": (b"GET /longpoll?timeout_ms=0 HTTP/1.1\r\nhost: t\r\n\r\n", True),
    "idle": (b"GET /poll HTTP/1.1\r\nhost: t\r\n\r\n", True),
    "hyper-idle": (b"GET /healthz HTTP/1.1\r\nhost: t\r\n\r\n", True),
    # A connection option the direct path leaves to hyper: an SSE stream as hyper serves it.
    "sse-hyper": (b"GET /sse HTTP/1.1\r\nhost: t\r\nconnection: keep-alive, x-hyper\r\n\r\n", False),
}
# Sent after the first answer: the long-poll that stays parked.
THEN = {"long-poll": b"GET /longpoll?timeout_ms=120000 HTTP/1.1\r\nhost: t\r\n\r\n"}
CONNECT_CONCURRENCY = 256
# How long the connections sit before RSS is read. TLS handshakes (up to 256 at once) leave
# freed memory that jemalloc returns within its 1 s decay; read before that, it would be
# counted against the connections (about 3-6 KiB each at N = 2,000).
SETTLE_S = 2.5 if TLS else 0.5
CTX = None
CTX_H2 = None
IP_BIND_ADDRESS_NO_PORT = 24


def client_tls(alpn="http/1.1"):
    if not TLS:
        return None
    ctx = ssl.create_default_context(cafile=CERT)
    ctx.set_alpn_protocols([alpn])
    return ctx


def h2_frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def h2_get(path):
    """The preface, an empty SETTINGS and GET `path` on stream 1 (HPACK: :method GET,
    :scheme https indexed; :path and :authority literal, never indexed)."""
    lit = lambda index, value: bytes([index, len(value)]) + value
    block = b"\x82\x87" + lit(4, path) + lit(1, b"localhost")
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0)
            + h2_frame(1, 0x5, 1, block))


async def h2_until(r, w, done):
    """Reads frames, acknowledging the server's SETTINGS, until `done(frame)` holds."""
    while True:
        head = await asyncio.wait_for(r.readexactly(9), 30)
        length, kind, flags = int.from_bytes(head[:3], "big"), head[3], head[4]
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        payload = await asyncio.wait_for(r.readexactly(length), 30)
        if kind == 4 and not flags & 1:
            w.write(h2_frame(4, 1, 0))
        if kind in (3, 7):
            sys.exit(f"http/2 stream reset or goaway: {payload!r}")
        if done(kind, flags, stream):
            return


async def open_h2(r, w, kind):
    if kind == "sse-h2":
        # The response HEADERS on stream 1: the stream is open.
        w.write(h2_get(b"/sse"))
        await h2_until(r, w, lambda k, f, s: k == 1 and s == 1)
    else:
        # The whole answer to one /poll (END_STREAM on stream 1), then nothing.
        w.write(h2_get(b"/poll"))
        await h2_until(r, w, lambda k, f, s: s == 1 and f & 1)


def start_server():
    tls_args = ["--tls", "--cert-out", CERT] if TLS else []
    proc = subprocess.Popen(
        [BIN, "serve", "--addr", "127.0.0.1:0", "--rate", "0",
         "--max-connections", str(N + 100), "--worker-threads", "2"] + tls_args,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    prefix = "feedbench listening on https://" if TLS else "feedbench listening on http://"
    if not line.startswith(prefix):
        proc.kill()
        sys.exit(f"server did not start: {line!r}")
    host, port = line[len(prefix):].rsplit(":", 1)
    return proc, (host, int(port))


async def stats(addr):
    ctx = client_tls()
    r, w = await asyncio.open_connection(*addr, ssl=ctx,
                                         server_hostname="localhost" if ctx else None)
    w.write(b"GET /stats HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
    raw = await asyncio.wait_for(r.read(), 10)
    w.close()
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])


async def wait_stats(addr, what, cond, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while True:
        s = await stats(addr)
        if cond(s):
            return s
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}: {s['connections']['open']}")
        await asyncio.sleep(0.1)


async def open_one(addr, kind, src, sem, conns):
    async with sem:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((src, 0))
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, addr)
        ctx = CTX_H2 if kind.endswith("-h2") else CTX
        r, w = await asyncio.open_connection(sock=s, ssl=ctx,
                                             server_hostname="localhost" if ctx else None)
        if kind.endswith("-h2"):
            await open_h2(r, w, kind)
            conns.append((r, w))
            return
        request, answered = FIRST[kind]
        w.write(request)
        # The ws 101, the sse head, or a whole answer (head and content-length body).
        head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
        status = head.split(b" ", 2)[1]
        if status not in (b"101", b"200"):
            sys.exit(f"{kind}: unexpected status {status!r}")
        if answered:
            length = next(int(l.split(b":")[1]) for l in head.split(b"\r\n")
                          if l.lower().startswith(b"content-length:"))
            await asyncio.wait_for(r.readexactly(length), 30)
        if kind in THEN:
            w.write(THEN[kind])
        conns.append((r, w))


async def measure(kind, round_no):
    global CTX, CTX_H2
    proc, addr = start_server()
    CTX = client_tls()
    CTX_H2 = client_tls("h2")
    try:
        # Let the runtime settle and warm up the /stats path itself before the baseline.
        for _ in range(3):
            await stats(addr)
        await asyncio.sleep(0.5)
        before = (await stats(addr))["process"]["rss_bytes"]
        src = f"127.0.{10 + round_no}.{1 + KINDS.index(kind)}"
        sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
        conns = []
        await asyncio.wait_for(
            asyncio.gather(*(open_one(addr, kind, src, sem, conns) for _ in range(N))),
            60 + N / 100)
        gauge = GAUGE[kind]
        await wait_stats(addr, f"{N} open {gauge}",
                         lambda s: s["connections"]["open"][gauge] >= N)
        await asyncio.sleep(SETTLE_S)
        after = (await stats(addr))["process"]["rss_bytes"]
        for _, w in conns:
            w.close()
        return (after - before) / N / 1024, before, after
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def main():
    print(f"server RSS per open idle connection ({'TLS 1.3' if TLS else 'plaintext'}), "
          f"N = {N}, {ROUNDS} round(s), fresh server each")
    results = {k: [] for k in KINDS}
    for round_no in range(ROUNDS):
        for kind in KINDS:
            kib, before, after = await measure(kind, round_no)
            results[kind].append(kib)
            print(f"  round {round_no + 1} {kind:9} {kib:6.2f} KiB/conn "
                  f"(rss {before / 2**20:.1f} -> {after / 2**20:.1f} MiB)", flush=True)
    print("median KiB per connection:")
    for kind in KINDS:
        print(f"  {kind:9} {statistics.median(results[kind]):6.2f}")

asyncio.run(main())
PY
