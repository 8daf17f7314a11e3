//! The SSE client: `GET /sse`, parsing the event stream incrementally.
//!
//! The response head is setup; any body bytes that arrived in the same read as the head are
//! moved to the steady state. The body may be chunked or delimited by the connection's end;
//! either way the decoded bytes go through [`SseParser`]. An event's receive time is the
//! time of the read that completed it. A stream that ends is re-opened with
//! `?after=CURSOR`, so the server replays what the client missed.

use std::time::Duration;

use bytes::BytesMut;

use crate::client::{backoff, ClientState};
use crate::client_io::ClientIo;
use crate::event::parse_event;
use crate::http::{BodyFraming, ChunkedDecoder, HttpConn};
use crate::polling::{self, PollConn};
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
        match read_events(st, &mut conn.http, framing).await {
            End::Stopped => {
                polling::close(st, conn).await;
                break;
            }
            End::Lost(kind) => {
                st.error(&kind);
                polling::discard(st, conn);
                failures += 1;
            }
        }
    }
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

async fn read_events(
    st: &mut ClientState<'_>,
    http: &mut HttpConn<ClientIo>,
    framing: BodyFraming,
) -> End {
    let ctx = st.ctx();
    let mut parser = SseParser::new(MAX_LINE);
    let mut chunked = (framing == BodyFraming::Chunked).then(ChunkedDecoder::new);
    let mut decoded = BytesMut::new();
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
        let n = tokio::select! {
            _ = ctx.stop.cancelled() => return End::Stopped,
            r = http.read_more() => r,
        };
        match n {
            Ok(0) => return End::Lost("closed".into()),
            Ok(_) => {}
            Err(e) => return End::Lost(e.kind().to_string()),
        }
    }
}

fn on_sse_event(st: &mut ClientState<'_>, ev: SseEvent, recv_ns: u64) {
    match parse_event(&ev.data) {
        Ok(head) => st.on_event(head, ev.data.len(), recv_ns),
        Err(_) => st.error("bad_event"),
    }
}
