//! A deliberately sluggish PROTOCOL.md server, written apart from feedbench's own, for the
//! loss-accounting tests.
//!
//! It publishes on an open-loop schedule but puts each event out up to `jitter` late (still
//! stamped with its scheduled time, in seq order), answers `/stats` with the head as it was
//! `stats_lag` ago and no byte counters, and holds every `/poll` and `/longpoll` answer up to
//! `poll_delay`. A [`Fault`] makes it lose one event on purpose: for one client, or for
//! everyone. The faulty event is the first one stamped at least `fault_delay` after the
//! server has seen `fault_after_conns` feed connections, so it lands inside the measure
//! window of a scenario with that many clients; the test reads which seq it was.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::SinkExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// An event lost on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing is lost.
    None,
    /// The faulty event is left out of the first answer or stream that would carry it.
    DropForOne,
    /// The faulty event is left out of every answer and stream.
    DropForAll,
}

/// How sluggish the server is.
#[derive(Debug, Clone)]
pub struct SluggishConfig {
    /// Events per second.
    pub rate_hz: f64,
    /// `data` length.
    pub payload_bytes: usize,
    /// Each event is published up to this late, uniformly at random.
    pub jitter: Duration,
    /// `/stats` reports the head as it was this long ago.
    pub stats_lag: Duration,
    /// `/poll` and `/longpoll` answers wait up to this long, uniformly at random.
    pub poll_delay: Duration,
    /// Which event is lost on purpose.
    pub fault: Fault,
    /// Feed connections after which the fault is armed.
    pub fault_after_conns: usize,
    /// How long after arming the faulty event is stamped.
    pub fault_delay: Duration,
}

impl Default for SluggishConfig {
    fn default() -> Self {
        Self {
            rate_hz: 50.0,
            payload_bytes: 64,
            jitter: Duration::from_millis(50),
            stats_lag: Duration::from_millis(300),
            poll_delay: Duration::from_millis(30),
            fault: Fault::None,
            fault_after_conns: usize::MAX,
            fault_delay: Duration::from_secs(1),
        }
    }
}

/// A running sluggish server.
pub struct Sluggish {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Sluggish {
    /// The seq lost on purpose, once it has been chosen.
    pub fn fault_seq(&self) -> Option<u64> {
        Some(self.shared.fault_seq.load(Ordering::Relaxed)).filter(|&s| s > 0)
    }

    /// Stops the server's tasks.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

struct Ev {
    seq: u64,
    json: Arc<str>,
}

struct Shared {
    cfg: SluggishConfig,
    ring: Mutex<VecDeque<Ev>>,
    head: watch::Sender<u64>,
    /// (when, head) pairs for the lagging `/stats`.
    history: Mutex<VecDeque<(Instant, u64)>>,
    feed_conns: AtomicUsize,
    /// Unix ns from which the faulty event is chosen; 0 until armed.
    armed_at_ns: AtomicU64,
    fault_seq: AtomicU64,
    /// Whether the one-client drop has happened.
    dropped_once: AtomicBool,
    rng: Mutex<u64>,
}

const RETAIN: usize = 100_000;

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

impl Shared {
    fn random(&self, max: Duration) -> Duration {
        let mut x = self.rng.lock().unwrap();
        // xorshift64
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        max.mul_f64((*x % 1_000_001) as f64 / 1_000_000.0)
    }

    /// Whether `seq` is left out of the answer or stream being built.
    fn omit(&self, seq: u64) -> bool {
        if seq != self.fault_seq.load(Ordering::Relaxed) {
            return false;
        }
        match self.cfg.fault {
            Fault::None => false,
            Fault::DropForAll => true,
            Fault::DropForOne => self
                .dropped_once
                .compare_exchange(false, true, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok(),
        }
    }

    /// Retained events after `after`, at most `limit`, and how many had left the ring.
    fn after(&self, after: u64, limit: usize) -> (Vec<(u64, Arc<str>)>, u64) {
        let ring = self.ring.lock().unwrap();
        let first = ring.front().map_or(after + 1, |e| e.seq);
        let missed = first.saturating_sub(after + 1);
        let events = ring
            .iter()
            .filter(|e| e.seq > after)
            .take(limit)
            .map(|e| (e.seq, e.json.clone()))
            .collect();
        (events, missed)
    }

    fn note_feed_conn(&self) {
        let n = self.feed_conns.fetch_add(1, Ordering::Relaxed) + 1;
        if n == self.cfg.fault_after_conns {
            let at = now_ns() + self.cfg.fault_delay.as_nanos() as u64;
            self.armed_at_ns.store(at, Ordering::Relaxed);
        }
    }
}

/// Starts a sluggish server on 127.0.0.1:0.
pub async fn start(cfg: SluggishConfig) -> Sluggish {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shared = Arc::new(Shared {
        cfg,
        ring: Mutex::new(VecDeque::new()),
        head: watch::channel(0).0,
        history: Mutex::new(VecDeque::new()),
        feed_conns: AtomicUsize::new(0),
        armed_at_ns: AtomicU64::new(0),
        fault_seq: AtomicU64::new(0),
        dropped_once: AtomicBool::new(false),
        rng: Mutex::new(0x9E37_79B9_7F4A_7C15),
    });
    let stop = CancellationToken::new();
    tokio::spawn(publish(shared.clone(), stop.clone()));
    let (s, st) = (shared.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = st.cancelled() => break,
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let (s, st) = (s.clone(), st.clone());
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = st.cancelled() => {}
                            _ = serve(s, stream) => {}
                        }
                    });
                }
            }
        }
    });
    Sluggish { addr, shared, stop }
}

async fn publish(s: Arc<Shared>, stop: CancellationToken) {
    let (t0, t0_ns) = (Instant::now(), now_ns());
    let interval = Duration::from_secs_f64(1.0 / s.cfg.rate_hz);
    let mut last_out = t0;
    for seq in 1u64.. {
        let due = interval * seq as u32;
        // Late by up to `jitter`, but never before the event before it.
        let out = (t0 + due + s.random(s.cfg.jitter)).max(last_out);
        last_out = out;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(out) => {}
        }
        let ts = t0_ns + due.as_nanos() as u64;
        let armed = s.armed_at_ns.load(Ordering::Relaxed);
        if armed > 0 && ts >= armed && s.fault_seq.load(Ordering::Relaxed) == 0 {
            s.fault_seq.store(seq, Ordering::Relaxed);
        }
        let data: String = (0..s.cfg.payload_bytes)
            .map(|i| (b'a' + ((seq as usize + i) % 26) as u8) as char)
            .collect();
        let json: Arc<str> = format!(r#"{{"seq":{seq},"ts":{ts},"data":"{data}"}}"#).into();
        {
            let mut ring = s.ring.lock().unwrap();
            ring.push_back(Ev { seq, json });
            if ring.len() > RETAIN {
                ring.pop_front();
            }
        }
        let mut h = s.history.lock().unwrap();
        h.push_back((Instant::now(), seq));
        while h.len() > 2 && h[1].0.elapsed() > s.cfg.stats_lag + Duration::from_secs(1) {
            h.pop_front();
        }
        drop(h);
        s.head.send_replace(seq);
    }
}

struct Request {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    content_length: usize,
    ws_key: Option<String>,
}

impl Request {
    fn param(&self, name: &str) -> Option<u64> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// Reads one request head (and skips its body); `None` at end of stream.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(n)) = req.parse(buf) {
            let target = req.path.unwrap_or("/").to_string();
            let (path, q) = target.split_once('?').unwrap_or((&target, ""));
            let header = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .map(|h| String::from_utf8_lossy(h.value).to_string())
            };
            let request = Request {
                method: req.method.unwrap_or("GET").to_string(),
                path: path.to_string(),
                query: q
                    .split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                content_length: header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                ws_key: header("sec-websocket-key"),
            };
            buf.drain(..n);
            while buf.len() < request.content_length {
                let mut chunk = [0u8; 4096];
                let got = stream.read(&mut chunk).await.ok()?;
                if got == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            buf.drain(..request.content_length);
            return Some(request);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn respond(stream: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(format!("{head}{body}").as_bytes()).await
}

fn poll_body(s: &Shared, after: u64, limit: usize) -> String {
    let (events, missed) = s.after(after, limit);
    let next = events.last().map_or(after, |e| e.0);
    let kept: Vec<&str> = events
        .iter()
        .filter(|(seq, _)| !s.omit(*seq))
        .map(|(_, json)| &**json)
        .collect();
    format!(
        r#"{{"events":[{}],"next":{next},"missed":{missed}}}"#,
        kept.join(",")
    )
}

async fn serve(s: Arc<Shared>, mut stream: TcpStream) {
    let mut buf = Vec::new();
    let mut counted = false;
    while let Some(req) = read_request(&mut stream, &mut buf).await {
        let feed = matches!(req.path.as_str(), "/poll" | "/longpoll" | "/sse" | "/ws");
        if feed && !counted {
            counted = true;
            s.note_feed_conn();
        }
        let head = *s.head.borrow();
        let limit = req.param("limit").unwrap_or(1000) as usize;
        let ok = match (req.method.as_str(), req.path.as_str()) {
            ("GET", "/poll") => {
                tokio::time::sleep(s.random(s.cfg.poll_delay)).await;
                let body = match req.param("after") {
                    Some(after) => poll_body(&s, after, limit),
                    None => format!(r#"{{"events":[],"next":{head},"missed":0}}"#),
                };
                respond(&mut stream, "200 OK", &body).await
            }
            ("GET", "/longpoll") => {
                tokio::time::sleep(s.random(s.cfg.poll_delay)).await;
                let after = req.param("after").unwrap_or(head);
                let timeout = Duration::from_millis(req.param("timeout_ms").unwrap_or(30_000));
                let mut rx = s.head.subscribe();
                let _ = tokio::time::timeout(timeout, rx.wait_for(|&h| h > after)).await;
                respond(&mut stream, "200 OK", &poll_body(&s, after, limit)).await
            }
            ("GET", "/stats") => {
                let lagged = {
                    let h = s.history.lock().unwrap();
                    h.iter()
                        .rev()
                        .find(|(t, _)| t.elapsed() >= s.cfg.stats_lag)
                        .map_or(0, |e| e.1)
                };
                respond(
                    &mut stream,
                    "200 OK",
                    &format!(r#"{{"head_seq":{lagged}}}"#),
                )
                .await
            }
            ("PUT", "/control/feed") => respond(&mut stream, "200 OK", "{}").await,
            ("GET", "/sse") => return sse(&s, stream, req.param("after")).await,
            ("GET", "/ws") => return ws(&s, stream, &req).await,
            _ => respond(&mut stream, "404 Not Found", r#"{"error":"not found"}"#).await,
        };
        if ok.is_err() {
            return;
        }
    }
}

/// Pushes every event after `cursor` through `send` as it is published, until `send` fails.
async fn push<F, Fut>(s: &Shared, cursor: Option<u64>, mut send: F)
where
    F: FnMut(u64, Arc<str>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut rx = s.head.subscribe();
    let mut cursor = cursor.unwrap_or(*rx.borrow_and_update());
    loop {
        let (events, _) = s.after(cursor, 1000);
        for (seq, json) in events {
            cursor = seq;
            if !s.omit(seq) && !send(seq, json).await {
                return;
            }
        }
        if rx.wait_for(|&h| h > cursor).await.is_err() {
            return;
        }
    }
}

async fn sse(s: &Shared, mut stream: TcpStream, after: Option<u64>) {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-store\r\ntransfer-encoding: chunked\r\n\r\n";
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let stream = tokio::sync::Mutex::new(stream);
    push(s, after, |seq, json| {
        let frame = format!("id: {seq}\ndata: {json}\n\n");
        let chunk = format!("{:X}\r\n{frame}\r\n", frame.len());
        let stream = &stream;
        async move {
            stream
                .lock()
                .await
                .write_all(chunk.as_bytes())
                .await
                .is_ok()
        }
    })
    .await;
}

async fn ws(s: &Shared, mut stream: TcpStream, req: &Request) {
    let Some(key) = &req.ws_key else {
        let _ = respond(&mut stream, "400 Bad Request", r#"{"error":"no key"}"#).await;
        return;
    };
    let accept = derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: {accept}\r\n\r\n"
    );
    if stream.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let ws = WebSocketStream::from_raw_socket(stream, Role::Server, None).await;
    let (sink, mut incoming) = futures_util::StreamExt::split(ws);
    let sink = tokio::sync::Mutex::new(sink);
    // Reading keeps the close handshake and pings working; the feed goes out meanwhile.
    let reader =
        async { while let Some(Ok(_)) = futures_util::StreamExt::next(&mut incoming).await {} };
    let writer = push(s, req.param("after"), |_, json| {
        let sink = &sink;
        async move { sink.lock().await.send(Message::text(&*json)).await.is_ok() }
    });
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}
