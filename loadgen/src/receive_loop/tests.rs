//! The receive loop's frame classification, and lent sockets on real loopback connections:
//! every event accounted, exact byte counts, and sockets coming back with exactly the bytes
//! the loop did not take.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use super::*;
use crate::clock::unix_nanos;
use crate::http::ChunkedDecoder;
use crate::sse_parser::SseParser;

/// An unmasked server frame: `b0` (FIN, opcode) and `payload`, with the shortest length.
fn frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![b0];
    match payload.len() {
        n @ 0..=125 => f.push(n as u8),
        n @ 126..=65535 => {
            f.push(126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(payload);
    f
}

/// An event's JSON as the server writes it, published now.
fn event(seq: u64) -> Vec<u8> {
    format!(
        r#"{{"seq":{seq},"ts":{},"data":"0123456789abcdef"}}"#,
        unix_nanos()
    )
    .into_bytes()
}

#[test]
fn only_whole_final_unmasked_data_frames_are_taken() {
    let hello = frame(0x81, b"hello");
    assert_eq!(
        next_frame(&hello),
        Next::Data {
            header: 2,
            total: 7,
            text: true
        }
    );
    // Followed by more: only the first frame.
    let mut two = hello.clone();
    two.extend_from_slice(&frame(0x82, b"x"));
    assert_eq!(
        next_frame(&two),
        Next::Data {
            header: 2,
            total: 7,
            text: true
        }
    );
    assert_eq!(
        next_frame(&frame(0x82, b"bin")),
        Next::Data {
            header: 2,
            total: 5,
            text: false
        }
    );
    // Not whole yet.
    assert_eq!(next_frame(&[]), Next::Partial);
    assert_eq!(next_frame(&[0x81]), Next::Partial);
    assert_eq!(next_frame(&hello[..6]), Next::Partial);
    // 16-bit and 64-bit lengths, whole and not.
    let mid = frame(0x81, &[b'a'; 300]);
    assert_eq!(next_frame(&mid[..3]), Next::Partial);
    assert_eq!(next_frame(&mid[..303]), Next::Partial);
    assert_eq!(
        next_frame(&mid),
        Next::Data {
            header: 4,
            total: 304,
            text: true
        }
    );
    let mut long_len = vec![0x82, 127];
    long_len.extend_from_slice(&200u64.to_be_bytes());
    assert_eq!(next_frame(&long_len[..9]), Next::Partial);
    long_len.extend_from_slice(&[0; 200]);
    assert_eq!(
        next_frame(&long_len),
        Next::Data {
            header: 10,
            total: 210,
            text: false
        }
    );
    // Larger than the read buffer, even before it is whole: tungstenite's.
    assert_eq!(
        next_frame(&frame(0x82, &vec![0; READ_BUF])[..20]),
        Next::Foreign
    );
    let mut huge = vec![0x82, 127];
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    assert_eq!(next_frame(&huge), Next::Foreign);
    // Control frames, fragments, reserved bits, a masked frame: tungstenite's, told apart
    // by the first byte alone where it can be.
    for b0 in [0x88, 0x89, 0x8a, 0x01, 0x02, 0x80, 0xc1, 0x91, 0xa1, 0x83] {
        assert_eq!(next_frame(&[b0]), Next::Foreign, "{b0:#x}");
        assert_eq!(next_frame(&frame(b0, b"ab")), Next::Foreign, "{b0:#x}");
    }
    assert_eq!(
        next_frame(&[0x81, 0x82, 1, 2, 3, 4, b'a', b'b']),
        Next::Foreign
    );
}

/// A loop, its connection to a test "server", and the lent socket's counters.
struct Rig {
    receivers: ReceiveLoops,
    window: Arc<Window>,
    live: Arc<LiveStats>,
    stop: CancellationToken,
    listener: TcpListener,
}

impl Rig {
    fn new(n_clients: usize) -> Self {
        let window = Arc::new(Window::new());
        // The window covers the whole test.
        window.set(unix_nanos() - 1, u64::MAX - 1);
        let live = Arc::new(LiveStats::new(n_clients));
        let stop = CancellationToken::new();
        let receivers = ReceiveLoops::start(1, &window, &live, 0, &stop).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Self {
            receivers,
            window,
            live,
            stop,
            listener,
        }
    }

    /// Connects a client; returns its socket, counters (past setup) and the server's side.
    fn connect(&self) -> (TcpStream, Arc<ConnCounters>, TcpStream) {
        let client = TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
        let (server, _) = self.listener.accept().unwrap();
        server.set_nodelay(true).unwrap();
        client.set_nonblocking(true).unwrap();
        let counters = Arc::new(ConnCounters::new(self.window.clone(), false));
        counters.end_setup();
        (client, counters, server)
    }

    /// Lends client `index`'s `stream` as a WebSocket.
    fn lend(
        &self,
        index: usize,
        stream: TcpStream,
        part: Vec<u8>,
        counters: &Arc<ConnCounters>,
    ) -> oneshot::Receiver<Return> {
        self.lend_as(index, stream, part, Lent::Ws, counters)
    }

    /// Lends client `index`'s `stream`, carrying `lent`, with `part` unparsed.
    fn lend_as(
        &self,
        index: usize,
        stream: TcpStream,
        part: Vec<u8>,
        lent: Lent,
        counters: &Arc<ConnCounters>,
    ) -> oneshot::Receiver<Return> {
        let conn = Conn {
            stream,
            part,
            seqs: Seqs::default(),
            lent,
        };
        self.receivers
            .lend(index, conn, counters.clone())
            .expect("the loop runs")
    }
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn back(rx: oneshot::Receiver<Return>) -> Return {
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .expect("the socket comes back within 10 s")
        .expect("the loop replies")
}

#[tokio::test]
async fn a_lent_socket_accounts_every_event_and_comes_back_at_a_ping() {
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let events: Vec<Vec<u8>> = (1..=40).map(event).collect();
    let frames: Vec<Vec<u8>> = events.iter().map(|e| frame(0x81, e)).collect();
    // What the upgrade read past the head: event 1 and the first 3 bytes of event 2.
    let mut part = frames[0].clone();
    part.extend_from_slice(&frames[1][..3]);
    // As the upgrade's read would have (there in setup, here in the window): the part's
    // events take that read's instant.
    let part_len = part.len();
    counters.count_read(part_len as u64);
    let rx = rig.lend(0, client, part, &counters);
    // The rest of event 2, then every other event split at every position mod 7, so the
    // loop meets frames cut anywhere (header included) whatever its reads return.
    let mut wire = frames[1][3..].to_vec();
    for f in &frames[2..] {
        wire.extend_from_slice(f);
    }
    let mut written = 0;
    for (i, chunk) in wire.chunks(7).enumerate() {
        server.write_all(chunk).unwrap();
        written += chunk.len();
        if i % 16 == 0 {
            // Let some of them arrive in reads of their own.
            let sent = written as u64;
            until("the bytes so far to be read", || {
                counters.counts().down[1] == (part_len + sent as usize) as u64
            })
            .await;
        }
    }
    // A ping and an event after it: tungstenite's, byte for byte from the ping on.
    let ping = frame(0x89, b"hi");
    let after = frame(0x81, &event(41));
    let mut tail = ping.clone();
    tail.extend_from_slice(&after);
    server.write_all(&tail).unwrap();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Resume);
    // The loop read the ping and maybe the event after it in one read: the part starts at
    // the ping and is a prefix of what followed it.
    assert!(conn.part.len() >= ping.len(), "{:?}", conn.part);
    assert_eq!(conn.part[..], tail[..conn.part.len()]);
    assert_eq!(conn.seqs.highest(), 40);
    assert_eq!(rig.live.clients[0].highest.load(Ordering::Relaxed), 40);
    // Every byte the socket gave is counted, once, in the window.
    let counted = counters.counts().down[1];
    assert_eq!(counted, (part_len + written + conn.part.len()) as u64);
    assert_eq!(counters.counts().setup_down, 0);
    rig.stop.cancel();
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.window_events, 40);
    assert_eq!(
        stats.payload_bytes,
        events.iter().map(|e| e.len() as u64).sum::<u64>()
    );
    assert_eq!(stats.latency.len(), 40);
    assert_eq!(rig.live.delivered.load(Ordering::Relaxed), 40);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert_eq!(stats.duplicates + stats.out_of_order, 0);
}

#[tokio::test]
async fn stop_hands_every_socket_back_with_its_partial_frame_and_the_loop_then_refuses() {
    let rig = Rig::new(3);
    let mut servers = Vec::new();
    let mut rxs = Vec::new();
    let mut counters_of = Vec::new();
    for i in 0..3 {
        let (client, counters, server) = rig.connect();
        rxs.push(rig.lend(i, client, Vec::new(), &counters));
        servers.push(server);
        counters_of.push(counters);
    }
    let half = frame(0x81, &event(2));
    let mut wire = frame(0x81, &event(1));
    wire.extend_from_slice(&half[..half.len() / 2]);
    for (server, counters) in servers.iter_mut().zip(&counters_of) {
        server.write_all(&wire).unwrap();
        let n = wire.len() as u64;
        until("the writes to be read", || counters.counts().down[1] == n).await;
    }
    rig.stop.cancel();
    for (i, rx) in rxs.into_iter().enumerate() {
        let Return { conn, why } = back(rx).await;
        assert_eq!(why, Why::Stopped, "client {i}");
        assert_eq!(conn.part, half[..half.len() / 2], "client {i}");
        assert_eq!(conn.seqs.highest(), 1, "client {i}");
    }
    // A loan during the stop comes back at once.
    let (client, counters, _server) = rig.connect();
    let Return { why, .. } = back(rig.lend(0, client, Vec::new(), &counters)).await;
    assert_eq!(why, Why::Stopped);
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.window_events, 3);
    // After the loop ended, a loan is refused and the socket given back.
    let (client, counters, _server) = rig.connect();
    let conn = Conn {
        stream: client,
        part: b"kept".to_vec(),
        seqs: Seqs::default(),
        lent: Lent::Ws,
    };
    let refused = rig.receivers.lend(0, conn, counters).unwrap_err();
    assert_eq!(refused.part, b"kept");
}

#[tokio::test]
async fn text_that_is_not_utf8_goes_to_tungstenite_and_bad_json_is_counted() {
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend(0, client, Vec::new(), &counters);
    // A binary frame that is no event: counted as bad, and reading goes on.
    let mut wire = frame(0x82, b"not json");
    wire.extend_from_slice(&frame(0x82, &event(1)));
    let bad_text = frame(0x81, &[0xff, 0xfe]);
    wire.extend_from_slice(&bad_text);
    server.write_all(&wire).unwrap();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Resume);
    assert_eq!(conn.part, bad_text);
    assert_eq!(conn.seqs.highest(), 1);
    rig.stop.cancel();
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.errors.get("bad_event"), Some(&1));
    assert_eq!(stats.window_events, 1);
}

#[tokio::test]
async fn the_end_of_the_stream_comes_back_with_the_unparsed_bytes() {
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend(0, client, Vec::new(), &counters);
    let f = frame(0x81, &event(7));
    server.write_all(&f[..5]).unwrap();
    drop(server);
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Ended);
    assert_eq!(conn.part, f[..5]);
    assert_eq!(counters.counts().down[1], 5);
    rig.stop.cancel();
    assert_eq!(rig.receivers.finish().await.window_events, 0);
}

/// The long-poll client's requests for host `h`, with `answer_wait`.
fn template(answer_wait: Duration) -> Arc<RequestTemplate> {
    Arc::new(RequestTemplate {
        prefix: b"GET /longpoll?after=".to_vec(),
        suffix: b"&timeout_ms=30000 HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(),
        answer_wait,
    })
}

fn request(after: u64) -> Vec<u8> {
    format!("GET /longpoll?after={after}&timeout_ms=30000 HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes()
}

/// A poll answer: `200`, kept alive, with a length.
fn answer(seqs: &[u64], next: u64, missed: u64) -> Vec<u8> {
    let events: Vec<String> = seqs
        .iter()
        .map(|&seq| String::from_utf8(event(seq)).unwrap())
        .collect();
    let body = format!(
        r#"{{"events":[{}],"next":{next},"missed":{missed}}}"#,
        events.join(",")
    );
    let mut a = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    a.extend_from_slice(body.as_bytes());
    a
}

/// Reads one request (up to its blank line) from the server's side, blocking (bounded).
fn read_request(server: &mut TcpStream) -> Vec<u8> {
    server
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(
            server.read(&mut byte).unwrap(),
            1,
            "request cut short: {got:?}"
        );
        got.push(byte[0]);
    }
    got
}

impl Rig {
    fn lend_long_poll(
        &self,
        stream: TcpStream,
        cursor: u64,
        answer_wait: Duration,
        counters: &Arc<ConnCounters>,
    ) -> oneshot::Receiver<Return> {
        let lent = Lent::LongPoll(LongPollState {
            template: template(answer_wait),
            cursor,
            pending: None,
        });
        self.lend_as(0, stream, Vec::new(), lent, counters)
    }
}

fn long_poll_state(conn: &Conn) -> &LongPollState {
    match &conn.lent {
        Lent::LongPoll(lp) => lp,
        other => panic!("a long-poll came back as {other:?}"),
    }
}

#[tokio::test]
async fn a_lent_long_poll_writes_every_request_and_accounts_every_answer() {
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_long_poll(client, 5, Duration::from_secs(30), &counters);
    let mut up = 0;
    let mut down = 0;
    // The loop asks at once, from the cursor it was given.
    let exchanges: [(u64, Vec<u8>); 3] = [
        (5, answer(&[6, 7], 7, 0)),
        // A timeout's empty answer keeps the cursor.
        (7, answer(&[], 7, 0)),
        // Events that left the ring: `missed`.
        (7, answer(&[11], 11, 3)),
    ];
    for (after, a) in &exchanges {
        let req = read_request(&mut server);
        assert_eq!(req, request(*after), "{}", String::from_utf8_lossy(&req));
        up += req.len();
        // Cut inside the head and inside the body.
        let (head, rest) = a.split_at(20);
        server.write_all(head).unwrap();
        let sent = (down + head.len()) as u64;
        until("the head's first bytes to be read", || {
            counters.counts().down[1] == sent
        })
        .await;
        server.write_all(rest).unwrap();
        down += a.len();
    }
    let req = read_request(&mut server);
    assert_eq!(req, request(11));
    up += req.len();
    // Not a `200`: the client's reader takes it, with its request.
    let refused = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}".to_vec();
    server.write_all(&refused).unwrap();
    down += refused.len();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Resume);
    assert_eq!(conn.part, refused);
    let lp = long_poll_state(&conn);
    assert_eq!(lp.cursor, 11);
    let pending = lp.pending.expect("the 503's request is in flight");
    assert!(pending.in_window);
    assert_eq!(conn.seqs.highest(), 11);
    let counts = counters.counts();
    assert_eq!(counts.up[1], up as u64);
    assert_eq!(counts.down[1], down as u64);
    rig.stop.cancel();
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.window_events, 3);
    assert_eq!(stats.requests_total, 4);
    assert_eq!(stats.requests_sent, 4);
    assert_eq!(stats.request_latency.len(), 3);
    assert_eq!(stats.empty, 1);
    assert_eq!(stats.server_missed, 3);
    assert_eq!(stats.latency.len(), 3);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
}

#[tokio::test]
async fn an_overdue_answer_fails_and_a_stop_returns_the_request_in_flight() {
    let rig = Rig::new(2);
    // Nobody answers: the sweep fails the exchange once the wait is over.
    let (client, counters, mut server) = rig.connect();
    let t0 = Instant::now();
    let rx = rig.lend_long_poll(client, 1, Duration::from_millis(100), &counters);
    assert_eq!(read_request(&mut server), request(1));
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Lost("timeout".into()));
    assert!(t0.elapsed() >= Duration::from_millis(100));
    assert!(long_poll_state(&conn).pending.is_none());
    // A stop gives the parked request back for the client to abandon.
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_long_poll(client, 9, Duration::from_secs(30), &counters);
    assert_eq!(read_request(&mut server), request(9));
    rig.stop.cancel();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Stopped);
    let lp = long_poll_state(&conn);
    assert_eq!(lp.cursor, 9);
    assert!(lp.pending.is_some());
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.requests_total, 2);
    assert_eq!(stats.request_latency.len(), 0);
}

#[tokio::test]
async fn a_body_that_is_no_poll_answer_fails_the_exchange() {
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_long_poll(client, 3, Duration::from_secs(30), &counters);
    assert_eq!(read_request(&mut server), request(3));
    server
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
        .unwrap();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Lost("bad_body".into()));
    assert!(conn.part.is_empty());
    rig.stop.cancel();
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.request_latency.len(), 1);
    assert_eq!(stats.window_events, 0);
}

/// An event as the server frames it on an SSE stream.
fn sse_event(seq: u64) -> Vec<u8> {
    let mut f = format!("id: {seq}\ndata: ").into_bytes();
    f.extend_from_slice(&event(seq));
    f.extend_from_slice(b"\n\n");
    f
}

/// `data` as one chunk of a chunked body.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut c = format!("{:x}\r\n", data.len()).into_bytes();
    c.extend_from_slice(data);
    c.extend_from_slice(b"\r\n");
    c
}

impl Rig {
    fn lend_sse(
        &self,
        stream: TcpStream,
        part: Vec<u8>,
        chunked: bool,
        max_line: usize,
        counters: &Arc<ConnCounters>,
    ) -> oneshot::Receiver<Return> {
        let lent = Lent::Sse(Box::new(SseState {
            chunked: chunked.then(ChunkedDecoder::new),
            parser: SseParser::new(max_line),
        }));
        self.lend_as(0, stream, part, lent, counters)
    }
}

#[tokio::test]
async fn a_lent_sse_stream_accounts_every_event_from_chunks_cut_anywhere() {
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let events: Vec<Vec<u8>> = (1..=40).map(event).collect();
    // Each event a chunk of its own, as the server writes them, a comment among them.
    let mut body = Vec::new();
    for seq in 1..=40u64 {
        body.extend_from_slice(&chunk(&sse_event(seq)));
        if seq == 20 {
            body.extend_from_slice(&chunk(b": keep-alive\n\n"));
        }
    }
    // What came with the response head: event 1 and the first 3 bytes of event 2's chunk.
    let first = chunk(&sse_event(1)).len();
    let part = body[..first + 3].to_vec();
    counters.count_read(part.len() as u64);
    let rx = rig.lend_sse(client, part.clone(), true, 1 << 20, &counters);
    // The rest cut every 5 bytes, so chunk-size lines, data and CRLFs are split anywhere.
    let mut written = part.len();
    for (i, piece) in body[first + 3..].chunks(5).enumerate() {
        server.write_all(piece).unwrap();
        written += piece.len();
        if i % 16 == 0 {
            let sent = written as u64;
            until("the bytes so far to be read", || {
                counters.counts().down[1] == sent
            })
            .await;
        }
    }
    // Half of a 41st event's chunk-size line, then a stop: it comes back unparsed.
    server.write_all(b"7").unwrap();
    until("every byte to be read", || {
        counters.counts().down[1] == written as u64 + 1
    })
    .await;
    until("every event", || {
        rig.live.clients[0].highest.load(Ordering::Relaxed) == 40
    })
    .await;
    rig.stop.cancel();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Stopped);
    assert_eq!(conn.part, b"7");
    assert_eq!(conn.seqs.highest(), 40);
    let stats = rig.receivers.finish().await;
    assert_eq!(stats.window_events, 40);
    assert_eq!(
        stats.payload_bytes,
        events.iter().map(|e| e.len() as u64).sum::<u64>()
    );
    assert_eq!(stats.latency.len(), 40);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    assert_eq!(stats.duplicates + stats.out_of_order, 0);
    assert_eq!(counters.counts().down[1], written as u64 + 1);
}

#[tokio::test]
async fn an_sse_stream_that_ends_breaks_a_rule_or_closes_comes_back_lost() {
    // The last chunk: the stream ended, after its events are taken.
    let rig = Rig::new(1);
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_sse(client, Vec::new(), true, 1 << 20, &counters);
    let mut wire = chunk(&sse_event(1));
    wire.extend_from_slice(b"0\r\n\r\n");
    server.write_all(&wire).unwrap();
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Lost("stream_ended".into()));
    assert_eq!(conn.seqs.highest(), 1);

    // A chunk-size line that is none.
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_sse(client, Vec::new(), true, 1 << 20, &counters);
    server.write_all(b"zz\r\ndata: x\n\n\r\n").unwrap();
    let Return { why, .. } = back(rx).await;
    assert_eq!(why, Why::Lost("bad_chunk".into()));

    // A line longer than the parser takes.
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_sse(client, Vec::new(), true, 16, &counters);
    server.write_all(&chunk(&[b'a'; 40])).unwrap();
    let Return { why, .. } = back(rx).await;
    assert_eq!(why, Why::Lost("sse_line_too_long".into()));

    // A body the connection's end delimits: its events, then the end, with the event cut
    // short left in the parser (nothing undecoded).
    let (client, counters, mut server) = rig.connect();
    let rx = rig.lend_sse(client, Vec::new(), false, 1 << 20, &counters);
    let mut wire = sse_event(1);
    wire.extend_from_slice(b": comment\r\n\r\n");
    wire.extend_from_slice(&sse_event(2));
    let cut = sse_event(3);
    wire.extend_from_slice(&cut[..10]);
    server.write_all(&wire).unwrap();
    drop(server);
    let Return { conn, why } = back(rx).await;
    assert_eq!(why, Why::Ended);
    assert!(conn.part.is_empty());
    assert_eq!(conn.seqs.highest(), 2);
    assert_eq!(counters.counts().down[1], wire.len() as u64);
    rig.stop.cancel();
    let stats = rig.receivers.finish().await;
    // Events 1 (first stream) and 1, 2 (last): each stream's own client state.
    assert_eq!(stats.window_events, 3);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
}
