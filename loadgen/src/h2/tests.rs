//! The HTTP/2 clients against the real server (in process, h2c on 127.0.0.1:0): exact
//! connection counts, sequence accounting and bytes, and what HPACK does to a poll.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use feedbench_server::{ServerConfig, ServerHandle};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::client::{ClientCtx, ClientParams, GroupStats, LiveStats, Target};
use crate::client_io::TlsClient;
use crate::clock::unix_nanos;
use crate::counting::{CountingStream, Window};
use crate::http::HttpConn;
use crate::scenario::Transport;
use crate::stack::{HttpVersion, StackSpec};
use crate::tls::{client_config, server_name, TlsOptions};
use feedbench_server::TlsSettings;

async fn start_server(rate_hz: f64, tls: bool) -> ServerHandle {
    let addr = "127.0.0.1:0".parse().unwrap();
    let cfg = ServerConfig {
        addr,
        rate_hz,
        payload_bytes: 64,
        retain: 4096,
        tls: tls.then(|| TlsSettings::self_signed(addr).unwrap()),
        ..ServerConfig::default()
    };
    feedbench_server::start(cfg).await.unwrap()
}

/// A TLS client offering `alpn` that trusts anything (the test's own server).
fn tls_client(alpn: &[u8], n: usize) -> TlsClient {
    TlsClient {
        config: client_config(&TlsOptions::default(), alpn, n).unwrap(),
        name: server_name("127.0.0.1").unwrap(),
    }
}

/// Clients of `transport`; `per_conn` clients per HTTP/2 connection, or HTTP/1.1 if 0;
/// over TLS when `tls`.
fn ctx(
    server: &ServerHandle,
    transport: Transport,
    n: usize,
    per_conn: usize,
    tls: bool,
) -> ClientCtx {
    let scheme = if tls { "https" } else { "http" };
    let target = Target::parse(&format!("{scheme}://{}", server.local_addr())).unwrap();
    ctx_for(target, transport, n, per_conn, tls)
}

/// [`ctx`] for any target.
fn ctx_for(
    target: Target,
    transport: Transport,
    n: usize,
    per_conn: usize,
    tls: bool,
) -> ClientCtx {
    let http = if per_conn > 0 {
        HttpVersion::Http2
    } else {
        HttpVersion::Http1
    };
    // The window opens once every client is connected (see `run_clients`).
    let window = Arc::new(Window::new());
    ClientCtx {
        client_addr: target.addr,
        target,
        params: ClientParams {
            transport,
            poll_interval: Duration::from_millis(20),
            keepalive: true,
            seed: 1,
            stack: StackSpec {
                tls,
                http,
                streams_per_connection: per_conn.max(1) as u32,
                tls_resumption: true,
            },
            payload_bytes: 64,
        },
        window,
        stop: CancellationToken::new(),
        live: Arc::new(LiveStats::new(n)),
        connect_limit: Semaphore::new(16),
        epoch: Instant::now(),
        sources: Vec::new(),
        link: None,
        h2: (per_conn > 0).then(|| H2Pool::new(n, per_conn)),
        to_server_ns: 0,
        tls: tls.then(|| tls_client(http.alpn(), n)),
        receive_loops: None,
    }
}

/// What one run of HTTP/2 clients saw.
struct Run {
    stats: GroupStats,
    /// Seqs every client must have received: `(first, last)`.
    span: (u64, u64),
    server: serde_json::Value,
}

/// Runs `n` clients of `transport`, `per_conn` per connection; once all are connected and
/// past setup, opens the window, publishes `events` events and waits until every client
/// has them; then closes the window, stops the clients and waits for the server to see
/// every connection closed.
async fn run_clients(
    transport: Transport,
    n: usize,
    per_conn: usize,
    tls: bool,
    events: u64,
) -> Run {
    // No publisher thread: the test publishes, so the window's edges fall where no
    // event is in flight.
    let server = start_server(0.0, tls).await;
    let ctx = ctx(&server, transport, n, per_conn, tls);
    let stats = Mutex::new(GroupStats::new());
    let clients = futures_util::future::join_all((0..n).map(|i| {
        let (ctx, stats) = (&ctx, &stats);
        async move {
            let mut st = ClientState::new(i, ctx, stats);
            match transport {
                Transport::ShortPoll => crate::short_poll::run(&mut st).await,
                Transport::LongPoll => crate::long_poll::run(&mut st).await,
                Transport::Sse => crate::sse::run(&mut st).await,
                Transport::Ws => crate::ws::run(&mut st).await,
            }
            st.finish();
        }
    }));
    let control = async {
        let deadline = Instant::now() + Duration::from_secs(20);
        let ready = || ctx.live.ready.load(Ordering::Relaxed) as usize == n;
        while !ready() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Give a short-poll's subscribe a moment to land, then one warm-up event ends
        // every client's setup (a long-poll's first answer is setup).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let hub = server.hub();
        let warm = hub.publish(&[unix_nanos()], 64);
        while ctx.live.caught_up(warm) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The window opens while nothing is in flight, so no event straddles its edge.
        tokio::time::sleep(Duration::from_millis(50)).await;
        ctx.window.set(unix_nanos(), u64::MAX - 1);
        let first = hub.head() + 1;
        for _ in 0..events {
            hub.publish(&[unix_nanos()], 64);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let last = hub.head();
        assert_eq!(last, first + events - 1);
        while ctx.live.caught_up(last) < n && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The window ends before the goodbyes, as a scenario's does.
        ctx.window.close_at(unix_nanos());
        ctx.stop.cancel();
        (first, last)
    };
    let (_, span) = tokio::join!(clients, control);
    let expected_conns = n.div_ceil(per_conn.max(1)) as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut server_stats = server.stats();
    while server_stats["connections"]["closed"].as_u64() != Some(expected_conns)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
        server_stats = server.stats();
    }
    server.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
    Run {
        stats: stats.into_inner().unwrap(),
        span,
        server: server_stats,
    }
}

/// Every client received every seq of the span exactly once, in order; the connections
/// and the bytes match the server's count of them.
fn assert_exact(run: &Run, n: usize, per_conn: usize) {
    let g = &run.stats;
    let conns = n.div_ceil(per_conn) as u64;
    assert!(g.errors.is_empty(), "errors {:?}", g.errors);
    assert_eq!((g.opened, g.failed), (conns, 0));
    let h2 = &run.server["http2"];
    let server_h2 = h2["connections"].as_u64().unwrap() + h2["h2c_connections"].as_u64().unwrap();
    assert_eq!(server_h2, conns, "{h2}");
    let conn_errors = &run.server["connection_errors"];
    let n_errors: u64 = conn_errors
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(n_errors, 0, "the server saw clean closes: {conn_errors}");
    assert_eq!(run.server["connections"]["accepted"], conns);
    assert_eq!(g.connect.len(), conns, "one connect time per connection");
    assert_eq!((g.duplicates, g.out_of_order, g.server_missed), (0, 0, 0));
    assert_eq!(g.seqs.len(), n);
    let (first, last) = run.span;
    assert!(last >= first + 9, "{:?}", run.span);
    for (i, seen) in g.seqs.iter().enumerate() {
        assert_eq!(seen.count_in(first, last), last - first + 1, "client {i}");
    }
    // Each connection's bytes are added once: the same totals as the server's socket.
    let total = &run.server["bytes"]["total"];
    assert_eq!(total["in"], g.bytes.total_up(), "bytes up");
    assert_eq!(total["out"], g.bytes.total_down(), "bytes down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_poll_streams_share_connections_exactly() {
    let run = run_clients(Transport::ShortPoll, 8, 4, false, 20).await;
    assert_exact(&run, 8, 4);
    assert!(run.stats.requests_sent >= 8, "{}", run.stats.requests_sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_delivers_every_event_over_h2() {
    let run = run_clients(Transport::LongPoll, 8, 4, false, 20).await;
    assert_exact(&run, 8, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_delivers_every_event_over_h2() {
    let run = run_clients(Transport::Sse, 6, 1, false, 20).await;
    assert_exact(&run, 6, 1);
    let run = run_clients(Transport::Sse, 7, 3, true, 20).await;
    assert_exact(&run, 7, 3);
}

/// Bytes each of `n` polls took on the wire, `(up, down, body)`, over HTTP/2.
async fn h2_polls(addr: std::net::SocketAddr, n: usize) -> Vec<(u64, u64, u64)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let window = Arc::new(Window::new());
    let mut conn = H2Conn::handshake(
        CountingStream::new(tcp, window),
        "http",
        &addr.to_string(),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
    // The first exchange carries the preface and both sides' SETTINGS (and their ACKs).
    let mut before = conn.shared_counts();
    let mut out = Vec::new();
    let mut next = None;
    for _ in 0..n {
        let path = match next {
            None => "/poll".to_string(),
            Some(after) => format!("/poll?after={after}"),
        };
        let resp = conn.get(&path).await.unwrap();
        next = Some(crate::event::parse_poll_body(&resp.body).unwrap().next);
        assert_eq!(resp.status, 200);
        let now = conn.shared_counts();
        out.push((
            now.total_up() - before.total_up(),
            now.total_down() - before.total_down(),
            resp.body.len() as u64,
        ));
        before = now;
    }
    conn.finish(Duration::from_secs(1)).await;
    out
}

/// Bytes each of `n` polls took on the wire, `(up, down, body)`, over HTTP/1.1.
async fn h1_polls(addr: std::net::SocketAddr, n: usize) -> Vec<(u64, u64, u64)> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut conn = HttpConn::new(
        CountingStream::new(tcp, Arc::new(Window::new())),
        &addr.to_string(),
    );
    let mut before = conn.stream().counts();
    let mut out = Vec::new();
    let mut next = None;
    for _ in 0..n {
        let path = match next {
            None => "/poll".to_string(),
            Some(after) => format!("/poll?after={after}"),
        };
        let resp = conn.get(&path, "").await.unwrap();
        next = Some(crate::event::parse_poll_body(&resp.body).unwrap().next);
        let now = conn.stream().counts();
        out.push((
            now.total_up() - before.total_up(),
            now.total_down() - before.total_down(),
            resp.body.len() as u64,
        ));
        before = now;
    }
    out
}

#[tokio::test]
async fn hpack_shrinks_later_poll_headers_against_the_real_server() {
    // No events are published: every poll is the same empty answer, as most short polls.
    let server = start_server(0.0, false).await;
    let addr = server.local_addr();
    let h2 = h2_polls(addr, 6).await;
    let h1 = h1_polls(addr, 6).await;
    eprintln!("empty poll, (up, down, body) B: http/2 {h2:?}; http/1.1 {h1:?}");
    // Beyond the body, each response costs a 9-byte HEADERS frame header, its HPACK
    // block and a 9-byte DATA frame header.
    let heads: Vec<u64> = h2.iter().map(|&(_, d, b)| d - b - 18).collect();
    eprintln!("http/2 response bytes beyond the body and the two frame headers: {heads:?}");
    // The first carries every header as a literal (and the server's SETTINGS and ACK).
    assert!(heads[0] >= 60, "first {heads:?}");
    // Later ones are indexed: `:status`, `content-type`, `cache-control` and `date` one
    // byte each, `content-length` 4 or 5 (h2 never indexes its value). `date` changes
    // once a second and is sent as a literal again then: allow that once.
    let small = heads[2..].iter().filter(|&&h| h <= 9).count();
    assert!(small + 1 >= heads.len() - 2, "later HPACK blocks {heads:?}");
    // Over HTTP/1.1 every later response repeats its whole head.
    for &(_, d, b) in &h1[1..] {
        assert!(d - b > 100, "http/1.1 {h1:?}");
    }
    server.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
}

/// Window bytes per delivered event, `(up, down)`.
fn per_event(run: &Run) -> (f64, f64) {
    let g = &run.stats;
    let m = crate::counting::Phase::Measure as usize;
    let n = g.window_events.max(1) as f64;
    (g.bytes.up[m] as f64 / n, g.bytes.down[m] as f64 / n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_cost_fewer_bytes_per_event_over_h2() {
    for transport in [Transport::ShortPoll, Transport::LongPoll, Transport::Sse] {
        for tls in [false, true] {
            let h1 = run_clients(transport, 4, 0, tls, 20).await;
            assert!(h1.stats.errors.is_empty(), "{:?}", h1.stats.errors);
            let h2 = run_clients(transport, 4, 1, tls, 20).await;
            assert_exact(&h2, 4, 1);
            let (h1, h2) = (per_event(&h1), per_event(&h2));
            eprintln!(
                "{transport:?} tls={tls} window bytes per event (up, down): \
                 http/1.1 {h1:.1?}, http/2 {h2:.1?}"
            );
            if transport != Transport::Sse {
                // Polls repeat their headers: HPACK sends them as indexes.
                assert!(
                    h2.0 < h1.0 && h2.1 < h1.1,
                    "{transport:?}: {h1:?} vs {h2:?}"
                );
            }
        }
    }
}

/// SSE framing of one event beyond its JSON: `id: SEQ\ndata: ` and `\n\n`.
fn sse_framing(seq: u64) -> u64 {
    4 + seq.to_string().len() as u64 + 7 + 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_layers_sum_to_the_wire_bytes() {
    for tls in [false, true] {
        for transport in [Transport::ShortPoll, Transport::LongPoll, Transport::Sse] {
            let run = run_clients(transport, 4, 2, tls, 20).await;
            assert_exact(&run, 4, 2);
            let g = &run.stats;
            let m = crate::counting::Phase::Measure as usize;
            let split = g.bytes.split(g.payload_bytes, true);
            let (up, down) = (&split.up, &split.down);
            eprintln!("{transport:?} tls={tls}: {split:?}");
            let sum = |l: &feedbench_results::ByteLayers| {
                l.payload + l.framing + l.h2 + l.tls + l.handshake
            };
            assert_eq!(sum(up), g.bytes.up[m]);
            assert_eq!(sum(down), g.bytes.down[m]);
            assert_eq!(up.payload + up.framing, 0, "a GET sends no DATA");
            assert_eq!(down.payload, g.payload_bytes);
            assert_eq!(down.payload + down.framing, g.bytes.data_down[m]);
            // Frame headers and HPACK; an SSE stream sends nothing once open (but for a rare
            // WINDOW_UPDATE or a PING's answer).
            assert!(down.h2 > 0, "{split:?}");
            assert_eq!(down.tls > 0, tls, "{split:?}");
            if transport != Transport::Sse {
                assert!(up.h2 > 0, "{split:?}");
                assert_eq!(up.tls > 0, tls, "{split:?}");
            }
            if transport == Transport::Sse {
                // Over HTTP/2 the SSE stream's DATA is the events' frames and nothing else.
                let framing: u64 = g
                    .seqs
                    .iter()
                    .map(|s| {
                        let (lo, hi) = s.bounds().unwrap();
                        (lo..=hi)
                            .filter(|&q| s.contains(q))
                            .map(sse_framing)
                            .sum::<u64>()
                    })
                    .sum();
                assert_eq!(down.framing, framing);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_over_h2_extended_connect_is_lossless_and_exact() {
    for tls in [false, true] {
        let run = run_clients(Transport::Ws, 6, 3, tls, 20).await;
        assert_exact(&run, 6, 3);
        let g = &run.stats;
        let m = crate::counting::Phase::Measure as usize;
        let split = g.bytes.split(g.payload_bytes, true);
        eprintln!(
            "ws over h2 tls={tls}: {split:?}, {} events",
            g.window_events
        );
        let down = &split.down;
        assert_eq!(down.payload, g.payload_bytes);
        assert_eq!(down.payload + down.framing, g.bytes.data_down[m]);
        // Each event is one unmasked frame: a 2-byte header up to 125 bytes of JSON.
        let json = g.payload_bytes / g.window_events;
        assert!(json <= 120, "{json}");
        assert_eq!(down.framing, 2 * g.window_events);
        assert_eq!(tls, down.tls > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_is_counted_and_nothing_hangs() {
    for transport in [Transport::ShortPoll, Transport::LongPoll, Transport::Sse] {
        let server = start_server(0.0, false).await;
        let ctx = ctx(&server, transport, 4, 2, false);
        let stats = Mutex::new(GroupStats::new());
        let clients = futures_util::future::join_all((0..4).map(|i| {
            let (ctx, stats) = (&ctx, &stats);
            async move {
                let mut st = ClientState::new(i, ctx, stats);
                match transport {
                    Transport::ShortPoll => crate::short_poll::run(&mut st).await,
                    Transport::LongPoll => crate::long_poll::run(&mut st).await,
                    _ => crate::sse::run(&mut st).await,
                }
                st.finish();
            }
        }));
        let control = async {
            let deadline = Instant::now() + Duration::from_secs(20);
            while ctx.live.ready.load(Ordering::Relaxed) < 4 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            // The server shuts down (GOAWAY to every connection); the clients fail,
            // back off and find nothing to reconnect to. Waits for 4 refused reconnects,
            // not for a number of errors: how many errors come before the first one
            // depends on the transport (an SSE client counts the GOAWAY and its ended
            // stream).
            server.shutdown();
            let refused = || {
                let g = stats.lock().unwrap_or_else(|p| p.into_inner());
                g.errors.get("connect_refused").copied().unwrap_or(0)
            };
            while refused() < 4 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ctx.stop.cancel();
        };
        let ended = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(clients, control);
        })
        .await;
        assert!(ended.is_ok(), "{transport:?} clients did not end");
        let g = stats.into_inner().unwrap();
        eprintln!("{transport:?} after the server left: {:?}", g.errors);
        assert_eq!(g.opened, 2);
        assert!(
            g.errors.get("connect_refused").copied().unwrap_or(0) > 0,
            "{:?}",
            g.errors
        );
        // The server's graceful GOAWAY is named as such, not as a plain close.
        assert!(!g.errors.contains_key("closed"), "{:?}", g.errors);
        let known = [
            "connect_refused",
            "h2_goaway",
            "closed",
            "stream_ended",
            "connection_reset",
            "http_503",
        ];
        for kind in g.errors.keys() {
            assert!(
                known.contains(&kind.as_str()),
                "{transport:?}: unexpected {kind}"
            );
        }
    }
}

/// Runs one h2 client against a TLS server whose ALPN offers `alpn`; returns the client's
/// stats and how many bytes the server read after the handshake.
async fn against_alpn(alpn: Vec<Vec<u8>>) -> (GroupStats, usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut config = (*TlsSettings::self_signed(addr).unwrap().config).clone();
    config.alpn_protocols = alpn;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let accepted = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(tcp).await else {
            return 0;
        };
        let mut buf = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut tls, &mut buf).await;
        buf.len()
    });
    let target = Target::parse(&format!("https://{addr}")).unwrap();
    let ctx = ctx_for(target, Transport::ShortPoll, 1, 1, true);
    let stats = Mutex::new(GroupStats::new());
    let st = ClientState::new(0, &ctx, &stats);
    assert!(acquire(&st, ctx.h2.as_ref().unwrap(), true).await.is_none());
    drop(st);
    let read = tokio::time::timeout(Duration::from_secs(10), accepted)
        .await
        .unwrap()
        .unwrap();
    (stats.into_inner().unwrap(), read)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_server_without_h2_is_counted_not_spoken_to() {
    // A server that offers only http/1.1 refuses the handshake (rustls sends the
    // no_application_protocol alert): a failed connection of a TLS kind.
    let (g, read) = against_alpn(vec![b"http/1.1".to_vec()]).await;
    assert_eq!((g.opened, g.failed), (1, 1), "{:?}", g.errors);
    assert_eq!(g.errors.len(), 1, "{:?}", g.errors);
    assert!(
        g.errors.keys().all(|k| k.starts_with("tls_")),
        "{:?}",
        g.errors
    );
    assert_eq!(read, 0);
    // A server that ignores ALPN completes the handshake with none agreed: the client
    // counts h2_not_negotiated and sends it no HTTP/2 preface.
    let (g, read) = against_alpn(Vec::new()).await;
    assert_eq!(
        g.errors.get("h2_not_negotiated"),
        Some(&1),
        "{:?}",
        g.errors
    );
    assert!(
        g.bytes.total_down() > 0,
        "the handshake's bytes are counted"
    );
    assert_eq!(read, 0, "no HTTP/2 preface went to the server");
}

/// A socket that keeps a copy of every byte read and written (for frame-level checks).
struct Tap<S> {
    inner: S,
    read: Arc<Mutex<Vec<u8>>>,
    written: Arc<Mutex<Vec<u8>>>,
}

impl<S: crate::counting::Counted> crate::counting::Counted for Tap<S> {
    fn counters(&self) -> Arc<crate::counting::ConnCounters> {
        self.inner.counters()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        this.read
            .lock()
            .unwrap()
            .extend_from_slice(&buf.filled()[before..]);
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let res = std::pin::Pin::new(&mut this.inner).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &res {
            this.written.lock().unwrap().extend_from_slice(&buf[..*n]);
        }
        res
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The HTTP/2 frames in `bytes` as `(type, payload length)`.
fn frames(mut bytes: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = (bytes[0] as usize) << 16 | (bytes[1] as usize) << 8 | bytes[2] as usize;
        out.push((bytes[3], len));
        bytes = &bytes[(9 + len).min(bytes.len())..];
    }
    out
}

const HEADERS: u8 = 1;

#[tokio::test]
async fn hpack_blocks_of_first_and_later_polls_exactly() {
    let server = start_server(0.0, false).await;
    let addr = server.local_addr();
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (read, written) = (Arc::default(), Arc::default());
    let tap = Tap {
        inner: CountingStream::new(tcp, Arc::new(Window::new())),
        read: Arc::clone(&read),
        written: Arc::clone(&written),
    };
    let mut conn = H2Conn::handshake(tap, "http", &addr.to_string(), Duration::from_secs(1))
        .await
        .unwrap();
    let mut next = 0;
    for i in 0..6 {
        let path = match i {
            0 => "/poll".to_string(),
            _ => format!("/poll?after={next}"),
        };
        let resp = conn.get(&path).await.unwrap();
        next = crate::event::parse_poll_body(&resp.body).unwrap().next;
    }
    conn.finish(Duration::from_secs(1)).await;
    server.shutdown();
    let _ = tokio::time::timeout(Duration::from_secs(10), server.wait()).await;
    let blocks = |bytes: &[u8]| -> Vec<usize> {
        frames(bytes)
            .into_iter()
            .filter(|&(t, _)| t == HEADERS)
            .map(|(_, len)| len)
            .collect()
    };
    let responses = blocks(&read.lock().unwrap());
    // The client's bytes start with the 24-byte connection preface.
    let requests = blocks(&written.lock().unwrap()[24..]);
    eprintln!(
        "HPACK blocks: requests {requests:?}, responses {responses:?} B (+9 B frame header each)"
    );
    assert_eq!((requests.len(), responses.len()), (6, 6));
    // `:status`, content-type, cache-control, date indexed (1 B each) and content-length
    // as a literal (5 B: h2 never indexes it); `date` is a new literal when the second
    // changes, at most once in six fast polls.
    let later_small = responses[1..].iter().filter(|&&n| n == 9).count();
    assert!(later_small >= 4, "{responses:?}");
    assert!(responses[0] > 40, "{responses:?}");
}
