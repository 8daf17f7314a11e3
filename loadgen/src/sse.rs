//! The SSE client: `GET /sse`, parsing the event stream incrementally.
//!
//! The response head is setup; any body bytes that arrived in the same read as the head are
//! moved to the steady state. The body may be chunked or delimited by the connection's end;
//! either way the decoded bytes go through [`SseParser`]. An event's receive time is the
//! time of the read that completed it. A stream that ends is re-opened with
//! `?after=CURSOR`, so the server replays what the client missed.
//!
//! A plain HTTP/1.1 stream is lent to the scenario's receive loop once its head is read
//! ([`crate::receive_loop`]): the loop decodes and accounts its events with the same decoder
//! and parser, and gives the socket back, with their state, at stop or when the stream ends.
//!
//! Over HTTP/2 ([`crate::h2`]) the stream is one of the group connection's: DATA chunks go
//! through the same parser, stamped with the connection's latest socket read, and their
//! flow-control capacity is released as they are consumed. A stream that ends is re-opened
//! on the same connection unless the connection itself ended.

use std::time::Duration;

use bytes::BytesMut;

use crate::client::{backoff, unless_stopped, ClientState};
use crate::client_io::ClientIo;
use crate::event::parse_event;
use crate::h2::{self, H2Pool, Member};
use crate::http::{BodyFraming, ChunkedDecoder, HttpConn};
use crate::polling::{self, PollConn};
use crate::receive_loop::{Lent, ReceiveLoops, SseState, Why};
use crate::sse_parser::{SseEvent, SseParser};

/// How long the response head may take.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest SSE line accepted.
const MAX_LINE: usize = 16 << 20;

/// How a stream ended.
enum End {
    Stopped,
    Lost(String),
}

/// Runs one SSE client until stopped.
pub async fn run(st: &mut ClientState<'_>) {
    let ctx = st.ctx();
    if let Some(pool) = &ctx.h2 {
        return run_h2(st, pool).await;
    }
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        if failures > 0 && !backoff(ctx, failures).await {
            break;
        }
        let Some((stream, open, started)) = st.connect_io(true).await else {
            failures += 1;
            continue;
        };
        let mut conn = PollConn::new(HttpConn::new(stream, &ctx.target.host), open);
        let framing = match start_stream(st, &mut conn.http).await {
            Ok(Some(framing)) => framing,
            Ok(None) => {
                polling::discard(st, conn);
                break;
            }
            Err(kind) => {
                st.error(&kind);
                polling::discard(st, conn);
                failures += 1;
                continue;
            }
        };
        st.connected(started);
        failures = 0;
        let state = SseState {
            chunked: (framing == BodyFraming::Chunked).then(ChunkedDecoder::new),
            parser: SseParser::new(MAX_LINE),
        };
        let (end, conn) = match &ctx.receive_loops {
            Some(loops) => receive_lent(st, loops, conn, state).await,
            None => {
                let end = read_events(st, &mut conn.http, state).await;
                (end, Some(conn))
            }
        };
        match end {
            End::Stopped => {
                if let Some(conn) = conn {
                    polling::close(st, conn).await;
                }
                break;
            }
            End::Lost(kind) => {
                st.error(&kind);
                if let Some(conn) = conn {
                    polling::discard(st, conn);
                }
                failures += 1;
            }
        }
    }
}

/// Lends the stream's socket to the scenario's receive loop, which decodes and accounts its
/// events until it gives the socket back; reads on here if the loop gives it back to be read
/// on. Returns how the stream ended and the connection (`None` if the socket was lost on
/// the way; its bytes are accounted then).
async fn receive_lent<'g>(
    st: &mut ClientState<'g>,
    loops: &ReceiveLoops,
    conn: PollConn<'g>,
    state: SseState,
) -> (End, Option<PollConn<'g>>) {
    let (http, open) = conn.into_parts();
    let (io, mut rest) = http.detach();
    let ClientIo::Plain(stream) = io else {
        // A TLS connection keeps its own reader.
        let mut c = PollConn::new(HttpConn::attach(io, rest), open);
        let end = read_events(st, &mut c.http, state).await;
        return (end, Some(c));
    };
    let counters = stream.counters();
    // The body bytes that came with the head go with the socket.
    let part = rest.take_buffered();
    let back = match loops
        .lend_socket(st, stream, part, Lent::Sse(Box::new(state)))
        .await
    {
        Ok(back) => back,
        Err((kind, _)) => {
            st.add_bytes(&counters.counts());
            return (End::Lost(kind), None);
        }
    };
    let mut http = HttpConn::attach(ClientIo::Plain(back.stream), rest);
    http.buffered().extend_from_slice(&back.part);
    let mut c = PollConn::new(http, open);
    let end = match (back.why, back.lent) {
        (Why::Stopped, _) => End::Stopped,
        // What this client's own reader says of a stream that ends.
        (Why::Ended, _) => End::Lost("closed".into()),
        (Why::Lost(kind), _) => End::Lost(kind),
        // The loop has ended (or could not take the socket): read on from where it stood.
        (Why::Resume, Lent::Sse(state)) => read_events(st, &mut c.http, *state).await,
        // A loop gives back what it was lent.
        (Why::Resume, Lent::Ws | Lent::LongPoll(_)) => End::Lost("receive_loop_lost".into()),
    };
    (end, Some(c))
}

/// Sends the request and reads the head; `Ok(None)` if stopped meanwhile.
async fn start_stream(
    st: &ClientState<'_>,
    http: &mut HttpConn<ClientIo>,
) -> Result<Option<BodyFraming>, String> {
    let ctx = st.ctx();
    let path = match st.highest() {
        0 => "/sse".to_string(),
        after => format!("/sse?after={after}"),
    };
    http.send("GET", &path, "Accept: text/event-stream\r\n", &[])
        .await
        .map_err(|e| e.kind().to_string())?;
    let head = tokio::select! {
        _ = ctx.stop.cancelled() => return Ok(None),
        r = tokio::time::timeout(HEAD_TIMEOUT, http.read_head()) => match r {
            Ok(Ok(head)) => head,
            Ok(Err(e)) => return Err(e.kind().to_string()),
            Err(_) => return Err("timeout".into()),
        },
    };
    if head.status != 200 {
        return Err(format!("http_{}", head.status));
    }
    if matches!(head.framing, BodyFraming::Empty | BodyFraming::Length(_)) {
        return Err("sse_not_streaming".into());
    }
    // Body bytes that came with the head belong to the steady state.
    let early = http.buffered().len() as u64;
    let t = http.stream().last_read_ns();
    let stream = http.stream_mut();
    stream.end_setup();
    stream.reattribute_setup_down(early, t);
    Ok(Some(head.framing))
}

/// Decodes and accounts the stream's events on this task, from where `state` stands, until
/// it ends or the client stops.
async fn read_events(
    st: &mut ClientState<'_>,
    http: &mut HttpConn<ClientIo>,
    state: SseState,
) -> End {
    let ctx = st.ctx();
    let SseState {
        mut chunked,
        mut parser,
    } = state;
    let mut decoded = BytesMut::new();
    let stop = ctx.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let recv_ns = http.stream().last_read_ns();
        let done = match chunked.as_mut() {
            Some(dec) => match dec.decode(http.buffered(), &mut decoded) {
                Ok(done) => done,
                Err(_) => return End::Lost("bad_chunk".into()),
            },
            None => {
                decoded.extend_from_slice(&http.buffered().split());
                false
            }
        };
        let fed = parser.feed(&decoded, |ev| on_sse_event(st, ev, recv_ns));
        decoded.clear();
        if fed.is_err() {
            return End::Lost("sse_line_too_long".into());
        }
        if done {
            return End::Lost("stream_ended".into());
        }
        let Some(n) = unless_stopped(ctx, stop.as_mut(), http.read_more()).await else {
            return End::Stopped;
        };
        match n {
            Ok(0) => return End::Lost("closed".into()),
            Ok(_) => {}
            Err(e) => return End::Lost(e.kind().to_string()),
        }
    }
}

fn on_sse_event(st: &mut ClientState<'_>, ev: SseEvent<'_>, recv_ns: u64) {
    match parse_event(ev.data) {
        Ok(head) => st.on_event(head, ev.data.len(), recv_ns),
        Err(_) => st.error("bad_event"),
    }
}

/// [`run`] over HTTP/2: a share of the group's connection, one stream at a time.
async fn run_h2(st: &mut ClientState<'_>, pool: &H2Pool) {
    let ctx = st.ctx();
    let mut member: Option<Member> = None;
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        if failures > 0 && !backoff(ctx, failures).await {
            break;
        }
        if member.is_none() {
            member = h2::acquire(st, pool, true).await;
            if member.is_none() {
                failures += 1;
                continue;
            }
        }
        let Some(m) = member.as_mut() else { continue };
        let end = match start_stream_h2(st, m).await {
            Ok(Some(body)) => {
                failures = 0;
                read_events_h2(st, m, body).await
            }
            Ok(None) => End::Stopped,
            Err(kind) => End::Lost(kind),
        };
        match end {
            End::Stopped => break,
            End::Lost(kind) => {
                st.error(&kind);
                if m.conn.is_ended() {
                    if let Some(m) = member.take() {
                        h2::release(st, pool, m).await;
                    }
                }
                failures += 1;
            }
        }
    }
    if let Some(m) = member {
        h2::release(st, pool, m).await;
    }
}

/// Opens the event stream and waits for its head; `Ok(None)` if stopped meanwhile.
async fn start_stream_h2(
    st: &ClientState<'_>,
    m: &mut Member,
) -> Result<Option<::h2::RecvStream>, String> {
    let ctx = st.ctx();
    let path = match st.highest() {
        0 => "/sse".to_string(),
        after => format!("/sse?after={after}"),
    };
    let accept = [("accept", "text/event-stream")];
    let (status, _, body) = tokio::select! {
        _ = ctx.stop.cancelled() => return Ok(None),
        r = tokio::time::timeout(HEAD_TIMEOUT, m.conn.open(&path, &accept)) => match r {
            Ok(Ok(head)) => head,
            Ok(Err(e)) => return Err(e.kind().to_string()),
            Err(_) => return Err("timeout".into()),
        },
    };
    if status != 200 {
        return Err(format!("http_{status}"));
    }
    if body.is_end_stream() {
        return Err("sse_not_streaming".into());
    }
    m.conn.end_setup();
    Ok(Some(body))
}

/// Feeds the stream's DATA through the parser until it ends or the client stops.
async fn read_events_h2(st: &mut ClientState<'_>, m: &Member, mut body: ::h2::RecvStream) -> End {
    let ctx = st.ctx();
    let mut parser = SseParser::new(MAX_LINE);
    let stop = ctx.stop.cancelled();
    tokio::pin!(stop);
    loop {
        let Some(chunk) = unless_stopped(ctx, stop.as_mut(), body.data()).await else {
            return End::Stopped;
        };
        let chunk = match chunk {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => return End::Lost(m.conn.explain(e).await.kind().to_string()),
            None => return End::Lost("stream_ended".into()),
        };
        // The bytes were read from the socket by the connection's task; its latest read
        // is the one that carried them (or, on a busy shared connection, a later one).
        let recv_ns = m.conn.last_read_ns();
        let _ = body.flow_control().release_capacity(chunk.len());
        m.conn.count_data_down(chunk.len() as u64);
        if parser
            .feed(&chunk, |ev| on_sse_event(st, ev, recv_ns))
            .is_err()
        {
            return End::Lost("sse_line_too_long".into());
        }
    }
}
