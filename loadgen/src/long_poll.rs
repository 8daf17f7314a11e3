//! The long-poll client: `GET /longpoll?after=CURSOR` again as soon as each answer arrives.
//!
//! The first request has no cursor: the server holds it until the event after the current
//! head (setup). Every request, the first included, is a `/longpoll`, so the server counts
//! all of a client's bytes in its `long_poll` class. A parked request
//! is abandoned on stop by half-closing, so the server's answer, if any, is still read and
//! counted.
//!
//! Over HTTP/2 ([`crate::h2`]) each long-poll is a stream on the client's group connection
//! with the same deadlines and accounting; a parked stream is abandoned on stop by resetting
//! it (`RST_STREAM`, as a browser does), and whatever the server still sends is read and
//! counted when the connection's last user closes it.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::{backoff, record_us, ClientState};
use crate::clock::unix_nanos;
use crate::h2::{self, H2Pool, Member};
use crate::http::Response;
use crate::polling::{self, PollConn};

/// The `timeout_ms` the client asks for.
pub const LONGPOLL_TIMEOUT_MS: u64 = 30_000;
/// How long past `timeout_ms` the client waits before giving up on an answer.
const ANSWER_GRACE: Duration = Duration::from_secs(10);

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
        match long_poll_once(st, c, cursor).await {
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
    let path = match after {
        Some(after) => format!("/longpoll?after={after}&timeout_ms={LONGPOLL_TIMEOUT_MS}"),
        None => format!("/longpoll?timeout_ms={LONGPOLL_TIMEOUT_MS}"),
    };
    (in_window, Instant::now(), path)
}

/// One long-poll; without a cursor it subscribes from the current head (the server then
/// waits for the next event).
async fn long_poll_once(
    st: &mut ClientState<'_>,
    c: &mut PollConn<'_>,
    after: Option<u64>,
) -> Exchange {
    let (in_window, started, path) = begin_long_poll(st, after);
    let ctx = st.ctx();
    if let Err(e) = c.http.send("GET", &path, "", &[]).await {
        return Exchange::Failed(e.kind().to_string());
    }
    let wait = Duration::from_millis(LONGPOLL_TIMEOUT_MS) + ANSWER_GRACE;
    let resp = tokio::select! {
        _ = ctx.stop.cancelled() => return Exchange::Stopped,
        r = tokio::time::timeout(wait, c.http.read_response()) => match r {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Exchange::Failed(e.kind().to_string()),
            Err(_) => return Exchange::Failed("timeout".into()),
        },
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
