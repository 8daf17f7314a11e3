//! The long-poll client: `GET /longpoll?after=CURSOR` again as soon as each answer arrives.
//!
//! The first request has no cursor: the server holds it until the event after the current
//! head (setup). Every request, the first included, is a `/longpoll`, so the server counts
//! all of a client's bytes in its `long_poll` class. A parked request
//! is abandoned on stop by half-closing, so the server's answer, if any, is still read and
//! counted.
//!
//! After the first answer a plain HTTP/1.1 connection is lent to the scenario's receive
//! loop ([`crate::receive_loop`]), which writes the same request bytes ([`request_template`])
//! and accounts answers as [`answered`] does; an answer it does not take, and the parked
//! request at stop, come back here to be finished.
//!
//! Over HTTP/2 ([`crate::h2`]) each long-poll is a stream on the client's group connection
//! with the same deadlines and accounting; a parked stream is abandoned on stop by resetting
//! it (`RST_STREAM`, as a browser does), and whatever the server still sends is read and
//! counted when the connection's last user closes it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::client::{backoff, record_us, ClientState};
use crate::client_io::ClientIo;
use crate::clock::unix_nanos;
use crate::h2::{self, H2Pool, Member};
use crate::http::{format_request, HttpConn, HttpError, Response};
use crate::polling::{self, PollConn};
use crate::receive_loop::{Lent, LongPollState, ReceiveLoops, RequestTemplate, Why};

/// The `timeout_ms` the client asks for.
pub const LONGPOLL_TIMEOUT_MS: u64 = 30_000;
/// How long past `timeout_ms` the client waits before giving up on an answer.
const ANSWER_GRACE: Duration = Duration::from_secs(10);
/// The longest wait for an answer.
const ANSWER_WAIT: Duration =
    Duration::from_millis(LONGPOLL_TIMEOUT_MS).saturating_add(ANSWER_GRACE);

/// Runs one long-poll client until stopped.
pub async fn run(st: &mut ClientState<'_>) {
    let ctx = st.ctx();
    if let Some(pool) = &ctx.h2 {
        return run_h2(st, pool).await;
    }
    let mut conn: Option<PollConn<'_>> = None;
    let mut cursor: Option<u64> = None;
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        if failures > 0 && !backoff(ctx, failures).await {
            break;
        }
        if conn.is_none() {
            conn = polling::open(st, cursor.is_none()).await;
            if conn.is_none() {
                failures += 1;
                continue;
            }
            if cursor.is_some() {
                if let Some(c) = conn.as_mut() {
                    c.http.stream_mut().end_setup();
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        // After the first answer (setup), a plain connection's exchanges go to the
        // scenario's receive loop when it has one.
        let exchange = match (&ctx.receive_loops, cursor) {
            (Some(loops), Some(after)) if lendable(c) => {
                let (exchange, reached) = lend(st, loops, &mut conn, after).await;
                cursor = Some(reached);
                exchange
            }
            _ => long_poll_once(st, c, cursor).await,
        };
        match exchange {
            Exchange::Answered { next, keep_alive } => {
                if cursor.is_none() {
                    // The first answer ends setup: the request that subscribed from the
                    // head and the wait for the first event.
                    if let Some(c) = conn.as_mut() {
                        c.http.stream_mut().end_setup();
                    }
                }
                cursor = Some(next);
                failures = 0;
                if !keep_alive {
                    if let Some(c) = conn.take() {
                        polling::close(st, c).await;
                    }
                }
            }
            Exchange::Failed(kind) => {
                st.error(&kind);
                drop_conn(st, &mut conn);
                failures += 1;
            }
            Exchange::Stopped => break,
        }
    }
    if let Some(c) = conn {
        polling::close(st, c).await;
    }
}

/// How one long-poll exchange ended.
enum Exchange {
    /// An answer arrived.
    Answered {
        /// The new cursor.
        next: u64,
        /// Whether the server keeps the connection open.
        keep_alive: bool,
    },
    /// The exchange failed with this error kind; the connection is unusable.
    Failed(String),
    /// The client was stopped while waiting.
    Stopped,
}

/// Counts a long-poll request and returns whether it was sent in the measure window, when it
/// started and its path: with a cursor it asks for events after it, without one it subscribes from the
/// current head. Shared by HTTP/1.1 and HTTP/2.
fn begin_long_poll(st: &mut ClientState<'_>, after: Option<u64>) -> (bool, Instant, String) {
    let in_window = st.ctx().window.contains(unix_nanos());
    st.with_stats(|g| {
        g.requests_total += 1;
        g.requests_sent += in_window as u64;
    });
    (in_window, Instant::now(), request_path(after))
}

/// The path of a long-poll for events after `after`, or from the current head.
fn request_path(after: Option<u64>) -> String {
    match after {
        Some(after) => format!("/longpoll?after={after}&timeout_ms={LONGPOLL_TIMEOUT_MS}"),
        None => format!("/longpoll?timeout_ms={LONGPOLL_TIMEOUT_MS}"),
    }
}

/// The receive loop's template of this client's requests: exactly the bytes
/// [`format_request`] makes for [`request_path`], split around the cursor.
fn request_template(host: &str) -> RequestTemplate {
    let mut full = Vec::new();
    format_request(&mut full, "GET", &request_path(Some(0)), host, "", &[]);
    // The path is `/longpoll?after=0&...`: the cursor is the `0` after the first `=`.
    let at = full
        .iter()
        .position(|&b| b == b'=')
        .map_or(full.len(), |i| i + 1);
    RequestTemplate {
        prefix: full[..at].to_vec(),
        suffix: full.get(at + 1..).unwrap_or_default().to_vec(),
        answer_wait: ANSWER_WAIT,
    }
}

/// Whether the exchanges on `c` can go to a receive loop: a plain socket, kept alive, with
/// nothing read ahead.
fn lendable(c: &mut PollConn<'_>) -> bool {
    matches!(c.http.stream(), ClientIo::Plain(_))
        && !c.http.peer_closes()
        && c.http.buffered().is_empty()
}

/// Lends the connection to the scenario's receive loop, which runs the exchanges from
/// `after` on (requests written, answers accounted) until it gives the socket back; the
/// client then finishes what the loop handed over. Returns how the last exchange ended and
/// the cursor reached.
async fn lend<'g>(
    st: &mut ClientState<'g>,
    loops: &ReceiveLoops,
    conn: &mut Option<PollConn<'g>>,
    after: u64,
) -> (Exchange, u64) {
    let Some(pc) = conn.take() else {
        return (Exchange::Failed("closed".into()), after);
    };
    let (http, open) = pc.into_parts();
    let template = Arc::new(request_template(http.host()));
    let (io, rest) = http.detach();
    let ClientIo::Plain(stream) = io else {
        // `lendable` said plain; a TLS connection keeps its own reader.
        let c = conn.insert(PollConn::new(HttpConn::attach(io, rest), open));
        return (long_poll_once(st, c, Some(after)).await, after);
    };
    let counters = stream.counters();
    let lent = Lent::LongPoll(LongPollState {
        template,
        cursor: after,
        pending: None,
    });
    let back = match loops.lend_socket(st, stream, Vec::new(), lent).await {
        Ok(back) => back,
        Err((kind, lent)) => {
            st.add_bytes(&counters.counts());
            let reached = match lent {
                Some(Lent::LongPoll(state)) => state.cursor,
                _ => after,
            };
            return (Exchange::Failed(kind), reached);
        }
    };
    let (cursor, pending) = match back.lent {
        Lent::LongPoll(state) => (state.cursor, state.pending),
        Lent::Ws | Lent::Sse(_) => (after, None),
    };
    let why = back.why;
    let mut http = HttpConn::attach(ClientIo::Plain(back.stream), rest);
    http.buffered().extend_from_slice(&back.part);
    let c = conn.insert(PollConn::new(http, open));
    let exchange = match why {
        Why::Stopped => Exchange::Stopped,
        Why::Ended => Exchange::Failed(HttpError::Closed.kind().into()),
        Why::Lost(kind) => Exchange::Failed(kind),
        Why::Resume => match pending {
            // An answer the loop does not take: read and account it here.
            Some(p) => {
                let started = Instant::from_std(p.started);
                finish_exchange(st, c, p.in_window, started, Some(cursor)).await
            }
            // Refused, or bytes that answer no request: the next exchange is this
            // client's own.
            None => long_poll_once(st, c, Some(cursor)).await,
        },
    };
    (exchange, cursor)
}

/// One long-poll; without a cursor it subscribes from the current head (the server then
/// waits for the next event).
async fn long_poll_once(
    st: &mut ClientState<'_>,
    c: &mut PollConn<'_>,
    after: Option<u64>,
) -> Exchange {
    let (in_window, started, path) = begin_long_poll(st, after);
    if let Err(e) = c.http.send("GET", &path, "", &[]).await {
        return Exchange::Failed(e.kind().to_string());
    }
    finish_exchange(st, c, in_window, started, after).await
}

/// Reads and accounts the answer to the request sent at `started` (within the answer
/// deadline counted from then). An answer already read is taken even if the run stops.
async fn finish_exchange(
    st: &mut ClientState<'_>,
    c: &mut PollConn<'_>,
    in_window: bool,
    started: Instant,
    after: Option<u64>,
) -> Exchange {
    let ctx = st.ctx();
    let wait = ANSWER_WAIT.saturating_sub(started.elapsed());
    let resp = tokio::select! {
        biased;
        r = tokio::time::timeout(wait, c.http.read_response()) => match r {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Exchange::Failed(e.kind().to_string()),
            Err(_) => return Exchange::Failed("timeout".into()),
        },
        _ = ctx.stop.cancelled() => return Exchange::Stopped,
    };
    answered(st, &resp, in_window, started, after)
}

/// Accounts a long-poll answer that arrived for a request sent at `started`.
fn answered(
    st: &mut ClientState<'_>,
    resp: &Response,
    in_window: bool,
    started: Instant,
    after: Option<u64>,
) -> Exchange {
    if in_window {
        let us = started.elapsed().as_micros() as u64;
        st.with_stats(|g| record_us(&mut g.request_latency, us));
    }
    if resp.head.status != 200 {
        // Back off rather than hammering a server that refuses long-polls.
        return Exchange::Failed(format!("http_{}", resp.head.status));
    }
    let answer = match polling::apply_answer(st, resp) {
        Ok(a) => a,
        Err(kind) => return Exchange::Failed(kind.to_string()),
    };
    if answer.n_events == 0 && in_window {
        st.with_stats(|g| g.empty += 1);
    }
    let next = answer.next.max(after.unwrap_or(0));
    Exchange::Answered {
        next,
        keep_alive: resp.head.keep_alive,
    }
}

fn drop_conn<'g>(st: &ClientState<'g>, conn: &mut Option<PollConn<'g>>) {
    if let Some(c) = conn.take() {
        polling::discard(st, c);
    }
}

/// [`run`] over HTTP/2: a share of the group's connection, one stream per long-poll.
async fn run_h2(st: &mut ClientState<'_>, pool: &H2Pool) {
    let ctx = st.ctx();
    let mut member: Option<Member> = None;
    let mut cursor: Option<u64> = None;
    let mut failures = 0u32;
    while !ctx.stop.is_cancelled() {
        if failures > 0 && !backoff(ctx, failures).await {
            break;
        }
        if member.is_none() {
            member = h2::acquire(st, pool, cursor.is_none()).await;
            if member.is_none() {
                failures += 1;
                continue;
            }
        }
        let Some(m) = member.as_mut() else { continue };
        if cursor.is_some() {
            m.conn.end_setup();
        }
        match long_poll_once_h2(st, m, cursor).await {
            Exchange::Answered { next, .. } => {
                // The first answer ends setup, as over HTTP/1.1.
                m.conn.end_setup();
                cursor = Some(next);
                failures = 0;
            }
            Exchange::Failed(kind) => {
                st.error(&kind);
                if m.conn.is_ended() {
                    if let Some(m) = member.take() {
                        h2::release(st, pool, m).await;
                    }
                }
                failures += 1;
            }
            Exchange::Stopped => break,
        }
    }
    if let Some(m) = member {
        h2::release(st, pool, m).await;
    }
}

/// [`long_poll_once`] over HTTP/2; dropping the stream on stop resets it.
async fn long_poll_once_h2(
    st: &mut ClientState<'_>,
    m: &mut Member,
    after: Option<u64>,
) -> Exchange {
    let (in_window, started, path) = begin_long_poll(st, after);
    let ctx = st.ctx();
    let wait = Duration::from_millis(LONGPOLL_TIMEOUT_MS) + ANSWER_GRACE;
    let resp = tokio::select! {
        _ = ctx.stop.cancelled() => return Exchange::Stopped,
        r = tokio::time::timeout(wait, m.conn.get(&path)) => match r {
            Ok(Ok(resp)) => h2::as_http1(resp),
            Ok(Err(e)) => return Exchange::Failed(e.kind().to_string()),
            Err(_) => return Exchange::Failed("timeout".into()),
        },
    };
    answered(st, &resp, in_window, started, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_loop_writes_the_bytes_this_client_writes() {
        let t = request_template("127.0.0.1:8080");
        for cursor in [0, 1, 7, 12_345, u64::MAX] {
            let mut from_loop = Vec::new();
            t.write(&mut from_loop, cursor);
            let mut own = Vec::new();
            format_request(
                &mut own,
                "GET",
                &request_path(Some(cursor)),
                "127.0.0.1:8080",
                "",
                &[],
            );
            assert_eq!(from_loop, own, "{}", String::from_utf8_lossy(&own));
        }
        assert_eq!(t.answer_wait, Duration::from_secs(40));
    }
}
