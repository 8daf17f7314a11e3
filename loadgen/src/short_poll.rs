//! The short-poll client: `GET /poll?after=CURSOR` on a fixed schedule.
//!
//! Client *i* polls at `epoch + phase_i + k·P` for k = 0, 1, 2, …, with `phase_i` drawn
//! from the seeded PRNG over one interval so polls don't arrive in lockstep. A response
//! that arrives after the next tick was due sends the next poll at once; the ticks that
//! passed meanwhile are counted as missed, and request latency is recorded with
//! coordinated-omission correction (`record_correct` with the interval), so a slow server
//! cannot hide behind the polls it prevented. The first poll has no cursor: it learns the
//! head and is setup.
//!
//! An interval of zero is *back-to-back* mode, a throughput test rather than a schedule:
//! each client sends its next poll as soon as the previous answer is in (closed loop), so
//! there are no ticks to miss and request latency is recorded as measured.
//!
//! Over HTTP/2 ([`crate::h2`]) each poll is a stream on the client's group connection, with
//! the same schedule, accounting and deadlines; a stream that fails leaves the connection
//! to the other clients unless the connection itself ended.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::{record_us, ClientState, HIST_MAX_US};
use crate::clock::unix_nanos;
use crate::h2::{self, H2Pool, Member};
use crate::polling::{self, PollConn};
use crate::rng::SplitMix64;

/// Longest a poll may take before it counts as a timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The phase offset of client `index` as a fraction of the interval.
pub fn phase_fraction(seed: u64, index: usize) -> f64 {
    // Consecutive SplitMix64 seeds give independent streams; one draw per client.
    SplitMix64::new(seed.wrapping_add(index as u64)).next_f64()
}

/// Runs one short-poll client until stopped.
pub async fn run(st: &mut ClientState<'_>) {
    let ctx = st.ctx();
    let interval = ctx.params.poll_interval;
    if interval.is_zero() {
        return run_back_to_back(st).await;
    }
    let origin = ctx.epoch + interval.mul_f64(phase_fraction(ctx.params.seed, st.index));
    let mut conn = Link::new(st);
    let mut cursor: Option<u64> = None;
    let mut tick: u64 = 0;
    loop {
        let due = origin + interval * tick as u32;
        if due > Instant::now() {
            tokio::select! {
                _ = ctx.stop.cancelled() => break,
                _ = tokio::time::sleep_until(due) => {}
            }
            if polling::now_in_window(st) {
                let lag_us = due.elapsed().as_micros() as u64;
                st.with_stats(|g| record_us(&mut g.schedule_lag, lag_us));
            }
        } else if ctx.stop.is_cancelled() {
            break;
        }
        conn.poll(st, &mut cursor).await;
        // Index of the latest tick due by now: if it is past ours, the response was slow.
        let latest_due = (Instant::now().saturating_duration_since(origin).as_nanos()
            / interval.as_nanos().max(1)) as u64;
        if latest_due > tick {
            if polling::now_in_window(st) {
                st.with_stats(|g| g.missed_ticks += latest_due - tick - 1);
            }
            tick = latest_due;
        } else {
            tick += 1;
        }
    }
    conn.close(st).await;
}

/// Polls as fast as answers come back, until stopped. A poll in flight when the stop
/// comes is finished (it is bounded by the request timeout), as on the scheduled path: a
/// request counted as sent always ends in a latency sample or an error.
async fn run_back_to_back(st: &mut ClientState<'_>) {
    let ctx = st.ctx();
    let mut conn = Link::new(st);
    let mut cursor: Option<u64> = None;
    while !ctx.stop.is_cancelled() {
        conn.poll(st, &mut cursor).await;
    }
    conn.close(st).await;
}

/// A client's way to the server: its own HTTP/1.1 connection, or a share of its group's
/// HTTP/2 connection.
enum Link<'g> {
    Http1(Option<PollConn<'g>>),
    Http2(&'g H2Pool, Option<Member>),
}

impl<'g> Link<'g> {
    fn new(st: &ClientState<'g>) -> Self {
        match &st.ctx().h2 {
            Some(pool) => Link::Http2(pool, None),
            None => Link::Http1(None),
        }
    }

    async fn poll(&mut self, st: &mut ClientState<'g>, cursor: &mut Option<u64>) {
        match self {
            Link::Http1(conn) => poll_once(st, conn, cursor).await,
            Link::Http2(pool, member) => poll_once_h2(st, pool, member, cursor).await,
        }
    }

    async fn close(self, st: &ClientState<'g>) {
        match self {
            Link::Http1(Some(c)) => polling::close(st, c).await,
            Link::Http2(pool, Some(m)) => h2::release(st, pool, m).await,
            _ => {}
        }
    }
}

/// Sends one poll (connecting first if needed) and applies the answer.
async fn poll_once<'g>(
    st: &mut ClientState<'g>,
    conn: &mut Option<PollConn<'g>>,
    cursor: &mut Option<u64>,
) {
    let ctx = st.ctx();
    let keepalive = ctx.params.keepalive;
    let headers = if keepalive {
        ""
    } else {
        "Connection: close\r\n"
    };
    if conn.is_none() {
        let Some(mut c) = polling::open(st, cursor.is_none()).await else {
            return;
        };
        if cursor.is_some() {
            // Only the very first exchange is setup; later connections of a
            // no-keep-alive client are the steady-state cost of that mode.
            c.http.stream_mut().end_setup();
        }
        *conn = Some(c);
    }
    let Some(c) = conn.as_mut() else { return };
    let Some(after) = *cursor else {
        match polling::subscribe(st, c, headers).await {
            Ok(head) => *cursor = Some(head),
            Err(kind) => {
                st.error(&kind);
                if let Some(c) = conn.take() {
                    polling::discard(st, c);
                }
                return;
            }
        }
        if !keepalive {
            if let Some(c) = conn.take() {
                polling::close(st, c).await;
            }
        }
        return;
    };
    let in_window = ctx.window.contains(unix_nanos());
    st.with_stats(|g| {
        g.requests_total += 1;
        g.requests_sent += in_window as u64;
    });
    let started = Instant::now();
    let path = format!("/poll?after={after}");
    let result = tokio::time::timeout(REQUEST_TIMEOUT, c.http.get(&path, headers)).await;
    let elapsed_us = started.elapsed().as_micros() as u64;
    let resp = match result {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return fail(st, conn, e.kind()),
        Err(_) => return fail(st, conn, "timeout"),
    };
    if in_window {
        record_request(st, elapsed_us);
    }
    if resp.head.status != 200 {
        st.error(&format!("http_{}", resp.head.status));
    } else {
        match polling::apply_answer(st, &resp) {
            Ok(answer) => {
                *cursor = Some(answer.next.max(after));
                if answer.n_events == 0 && in_window {
                    st.with_stats(|g| g.empty += 1);
                }
            }
            Err(kind) => st.error(kind),
        }
    }
    if !keepalive || !resp.head.keep_alive {
        if let Some(c) = conn.take() {
            polling::close(st, c).await;
        }
    }
}

/// [`poll_once`] over HTTP/2: one stream per poll on the group's connection.
async fn poll_once_h2(
    st: &mut ClientState<'_>,
    pool: &H2Pool,
    member: &mut Option<Member>,
    cursor: &mut Option<u64>,
) {
    let ctx = st.ctx();
    if member.is_none() {
        // Only the very first exchange is setup, as over HTTP/1.1.
        let Some(m) = h2::acquire(st, pool, cursor.is_none()).await else {
            return;
        };
        *member = Some(m);
    }
    let Some(m) = member.as_mut() else { return };
    let Some(after) = *cursor else {
        st.with_stats(|g| g.requests_total += 1);
        let result = tokio::time::timeout(REQUEST_TIMEOUT, m.conn.get("/poll")).await;
        let subscribed = match result {
            Ok(Ok(resp)) if resp.status == 200 => {
                polling::apply_answer(st, &h2::as_http1(resp)).map_err(str::to_string)
            }
            Ok(Ok(resp)) => Err(format!("http_{}", resp.status)),
            Ok(Err(e)) => Err(e.kind().to_string()),
            Err(_) => Err("timeout".to_string()),
        };
        match subscribed {
            Ok(answer) => {
                m.conn.end_setup();
                *cursor = Some(answer.next);
            }
            Err(kind) => return fail_h2(st, pool, member, &kind).await,
        }
        if !ctx.params.keepalive {
            leave_h2(st, pool, member).await;
        }
        return;
    };
    let in_window = ctx.window.contains(unix_nanos());
    st.with_stats(|g| {
        g.requests_total += 1;
        g.requests_sent += in_window as u64;
    });
    let started = Instant::now();
    let path = format!("/poll?after={after}");
    let result = tokio::time::timeout(REQUEST_TIMEOUT, m.conn.get(&path)).await;
    let elapsed_us = started.elapsed().as_micros() as u64;
    let resp = match result {
        Ok(Ok(resp)) => resp,
        Ok(Err(e)) => return fail_h2(st, pool, member, e.kind()).await,
        Err(_) => return fail_h2(st, pool, member, "timeout").await,
    };
    if in_window {
        record_request(st, elapsed_us);
    }
    if resp.status != 200 {
        st.error(&format!("http_{}", resp.status));
    } else {
        match polling::apply_answer(st, &h2::as_http1(resp)) {
            Ok(answer) => {
                *cursor = Some(answer.next.max(after));
                if answer.n_events == 0 && in_window {
                    st.with_stats(|g| g.empty += 1);
                }
            }
            Err(kind) => st.error(kind),
        }
    }
    if !ctx.params.keepalive {
        leave_h2(st, pool, member).await;
    }
}

/// Records an in-window poll's latency, corrected for the polls a slow answer prevented.
fn record_request(st: &ClientState<'_>, elapsed_us: u64) {
    let interval_us = st.ctx().params.poll_interval.as_micros() as u64;
    st.with_stats(|g| {
        let us = elapsed_us.clamp(1, HIST_MAX_US);
        // Back to back there is no schedule, hence nothing to correct for.
        let _ = match interval_us {
            0 => g.request_latency.record(us),
            _ => g.request_latency.record_correct(us, interval_us),
        };
    });
}

/// Counts a failed HTTP/2 poll; the client leaves the connection only if it ended (a
/// failed stream leaves it usable for the group).
async fn fail_h2(st: &ClientState<'_>, pool: &H2Pool, member: &mut Option<Member>, kind: &str) {
    st.error(kind);
    if member.as_ref().is_some_and(|m| m.conn.is_ended()) {
        leave_h2(st, pool, member).await;
    }
}

async fn leave_h2(st: &ClientState<'_>, pool: &H2Pool, member: &mut Option<Member>) {
    if let Some(m) = member.take() {
        h2::release(st, pool, m).await;
    }
}

fn fail<'g>(st: &ClientState<'g>, conn: &mut Option<PollConn<'g>>, kind: &str) {
    st.error(kind);
    if let Some(c) = conn.take() {
        polling::discard(st, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_over_the_interval() {
        let mut phases: Vec<f64> = (0..1000).map(|i| phase_fraction(42, i)).collect();
        assert_eq!(phases[3], phase_fraction(42, 3));
        assert_ne!(phases[3], phase_fraction(43, 3));
        phases.sort_by(f64::total_cmp);
        // Every tenth of the interval gets roughly a tenth of the clients.
        for k in 0..10 {
            let n = phases
                .iter()
                .filter(|&&p| p >= k as f64 / 10.0 && p < (k + 1) as f64 / 10.0)
                .count();
            assert!((60..140).contains(&n), "decile {k}: {n}");
        }
    }
}
