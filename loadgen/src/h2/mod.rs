//! The load generator's HTTP/2 client: short-poll, long-poll, SSE and WebSocket (RFC 8441,
//! [`ws`]) over h2c (prior knowledge) or TLS with ALPN `h2`.
//!
//! [`conn`] is one connection on the `h2` crate over a counted socket. This module shares
//! connections between clients: with `--streams-per-connection N`, clients `i / N` form a
//! group that uses one connection, as a browser's tabs or an edge proxy multiplex users.
//! The first client of a group to need it connects (counted once: one connection, one
//! connect time); the others wait on the group's slot and take a handle on the same
//! connection. When it dies every client of the group sees its streams fail, counts the
//! error and comes back for a new one after its usual back-off. The last client to leave a
//! connection closes it and adds its bytes (once, not once per client).
//!
//! A client's connect time is its connection's (TCP, TLS, the preface), recorded by the
//! client that opened it; the streams' own heads are not part of it, as an HTTP/1.1 SSE
//! or ws client's are.
//!
//! **Invariant:** a slot's lock is held only while connecting (bounded by the connect and
//! handshake timeouts) or swapping handles, never while a request is in flight.

pub mod conn;
#[cfg(test)]
mod tests;
pub mod ws;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use conn::{error_kind, H2Conn, H2Error, H2Response, Wire};

use crate::client::{ClientState, LiveStats};
use crate::http::{BodyFraming, Response, ResponseHead};
use crate::tls::ALPN_H2;

/// How long the HTTP/2 handshake (preface and SETTINGS written) may take after connecting.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// The shared connections of a scenario's HTTP/2 clients, one slot per group.
#[derive(Debug)]
pub struct H2Pool {
    per_conn: usize,
    slots: Vec<tokio::sync::Mutex<Option<Member>>>,
}

impl H2Pool {
    /// Slots for `n_clients` clients, `per_conn` of them per connection (at least 1).
    pub fn new(n_clients: usize, per_conn: usize) -> Self {
        let per_conn = per_conn.max(1);
        Self {
            per_conn,
            slots: (0..n_clients.div_ceil(per_conn))
                .map(|_| tokio::sync::Mutex::new(None))
                .collect(),
        }
    }

    /// The group (slot) of client `index`.
    pub fn group_of(&self, index: usize) -> usize {
        index / self.per_conn
    }
}

/// One connection's users; dropped (closing the open-connection count) after the last.
#[derive(Debug)]
struct Users {
    n: AtomicUsize,
    live: Arc<LiveStats>,
}

impl Drop for Users {
    fn drop(&mut self) {
        self.live.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A client's share of a connection (also what a slot holds).
#[derive(Debug, Clone)]
pub struct Member {
    /// The client's handle on the connection.
    pub conn: H2Conn,
    users: Arc<Users>,
}

/// Gets client `st` a connection: its group's, if that is alive, else a new one it opens.
/// `None` if connecting failed (counted).
///
/// `setup` says whether a new connection's bytes (its TLS handshake and preface included)
/// are setup (the client's first connection, a reconnect) or steady state (a poll's own
/// connection without keep-alive).
pub async fn acquire(st: &ClientState<'_>, pool: &H2Pool, setup: bool) -> Option<Member> {
    let Some(slot) = pool.slots.get(pool.group_of(st.index)) else {
        st.error("h2_no_slot");
        return None;
    };
    let mut slot = slot.lock().await;
    if let Some(m) = slot.as_ref().filter(|m| !m.conn.is_ended()) {
        m.users.n.fetch_add(1, Ordering::Relaxed);
        st.mark_ready();
        return Some(m.clone());
    }
    let (io, guard, started) = st.connect_io(setup).await?;
    let ctx = st.ctx();
    if io.is_tls() && io.alpn() != Some(ALPN_H2) {
        // The server chose HTTP/1.1 (or nothing): speaking h2 to it would be an error
        // of ours, so the connection is dropped and counted as what it is.
        st.add_bytes(&io.counts());
        st.error("h2_not_negotiated");
        return None;
    }
    let scheme = if io.is_tls() { "https" } else { "http" };
    let handshake = H2Conn::handshake(io, scheme, &ctx.target.host, st.goodbye_timeout());
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => {
            st.error(e.kind());
            return None;
        }
        Err(_) => {
            st.error("timeout");
            return None;
        }
    };
    st.connected(started);
    // The connection outlives the client that opened it, so its open count moves from
    // the client's guard (tied to the client's borrow of the scenario) to `Users`, which
    // the connection's last user drops.
    std::mem::forget(guard);
    let member = Member {
        conn,
        users: Arc::new(Users {
            n: AtomicUsize::new(1),
            live: ctx.live.clone(),
        }),
    };
    *slot = Some(member.clone());
    Some(member)
}

/// Gives back client `st`'s share; the connection's last user closes it (GOAWAY,
/// drain until the server closes, bounded) and adds its bytes.
pub async fn release(st: &ClientState<'_>, pool: &H2Pool, member: Member) {
    let last = {
        let mut slot = match pool.slots.get(pool.group_of(st.index)) {
            Some(s) => s.lock().await,
            None => return,
        };
        let left = member.users.n.fetch_sub(1, Ordering::Relaxed) - 1;
        if left == 0 && slot.as_ref().is_some_and(|m| m.conn.same_as(&member.conn)) {
            *slot = None;
        }
        left == 0
    };
    if last {
        let Member { conn, users } = member;
        let counts = conn.finish(st.goodbye_timeout()).await;
        st.add_bytes(&counts);
        drop(users);
    }
}

/// An HTTP/2 response as the HTTP/1.1 client's [`Response`], for the answer parsing both
/// versions share.
pub fn as_http1(resp: H2Response) -> Response {
    Response {
        head: ResponseHead {
            status: resp.status,
            framing: BodyFraming::Length(resp.body.len() as u64),
            keep_alive: true,
            head_len: 0,
        },
        body: resp.body,
        recv_ns: resp.recv_ns,
    }
}
