//! `GET /poll` and `GET /longpoll` answered straight to the socket, for requests
//! [`crate::direct`] found plain; the connection then goes back to waiting for its next
//! request, holding no buffer in between.
//!
//! The answer is the one `poll::short_poll` / `poll::long_poll` give through hyper, byte for
//! byte. A parked long-poll watches its own socket: a client that closes (or resets) while
//! parked ends it at once, so a vanished client leaves no waiter, as on the hyper path.
//! Bytes the client sends while parked (a pipelined request) are read and kept, so that a
//! client that pipelines and then leaves is still noticed; the kept bytes are served once
//! the long-poll has been answered. At shutdown, or when the request said
//! `Connection: close`, the answer carries `connection: close` and the connection ends.
//!
//! A parked long-poll on a plain socket whose cursor is the head is answered by the
//! publisher ([`crate::fanout`]): it writes the whole answer, the same bytes, when it
//! publishes, reads the client's next request itself and parks it in place, and the task
//! is woken for none of it. The task wakes when the client leaves, when a parked request's
//! timeout is up, at shutdown, or when the publisher hands the socket back (a request it
//! does not take, with the bytes it read; no request in time; the socket not taking the
//! answer); it then takes the socket back and goes on as above, the header timeout for
//! the next request counting from the publisher's last answer. Bytes a client pipelines
//! while parked wait in the kernel for the publisher's read (the socket's low-water mark
//! keeps them from waking the task), unless they are more than a request head may hold.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use crate::app::App;
use crate::direct::{json_head, write_all, Io};
use crate::fanout::{self, Registered};
use crate::poll::{self, PollParams};
use crate::stats::{Class, ConnTag, Counted, Endpoint, GaugeGuard, Path};

/// What the connection does after an answer.
#[derive(Debug)]
pub enum After {
    /// The connection is done (client gone, `Connection: close`, shutdown, write failed).
    Close,
    /// Read the next request; the bytes of it already read, if any, come first. The
    /// instant is the answer's: the header timeout for the next request counts from it.
    Next(Option<Bytes>, Instant),
}

/// Bodies up to this size are sent with their head in one write.
const ONE_WRITE: usize = 64 * 1024;

/// Answers one request (already read) and says what the connection does next.
///
/// A plain function returning an `async move` block: an `async fn` would keep its
/// arguments twice in its state, and a parked long-poll holds this state.
// Not an `async fn`: see above (the state would hold the arguments twice).
#[allow(clippy::manual_async_fn)]
pub fn answer<'a, S: Io + 'static>(
    app: &'a Arc<App>,
    stream: &'a mut Counted<S>,
    tag: &'a ConnTag,
    long: bool,
    mut params: PollParams,
    close: bool,
) -> impl std::future::Future<Output = After> + Send + 'a {
    async move {
        let (endpoint, class) = if long {
            (Endpoint::LongPoll, Class::LongPoll)
        } else {
            (Endpoint::Poll, Class::ShortPoll)
        };
        tag.classify(class);
        app.stats.count_request(endpoint);
        app.stats.count_path(Path::Direct);
        let mut pipelined = Vec::new();
        // `Connection: close` answers (and then FIN) are the task's to write.
        if long && app.config.publisher_writes && !close && !params.timeout.is_zero() {
            match lend_long_poll(app, stream, &mut params).await {
                Lent::Back => {}
                Lent::Answered(at, read) => return After::Next(read, at),
                Lent::Gone => return After::Close,
            }
        }
        let body = if long {
            match long_poll(app, stream, params, &mut pipelined).await {
                Some(body) => body,
                // The client left while parked.
                None => return After::Close,
            }
        } else {
            poll::short_poll_body(app, &params)
        };
        if !send(app, stream, &body, close).await {
            return After::Close;
        }
        let pipelined = (!pipelined.is_empty()).then(|| Bytes::from(pipelined));
        After::Next(pipelined, Instant::now())
    }
}

/// Writes the answer; false when the connection is done (write failed, `Connection:
/// close`, shutdown). Its own future, so that its state and a parked long-poll's share
/// room in `answer`'s state rather than sit side by side.
async fn send<S: Io>(app: &App, stream: &mut Counted<S>, body: &[u8], close: bool) -> bool {
    // Active (not parked) while the answer is written.
    let _active = GaugeGuard::new(&app.stats.http_active);
    let close = close || app.shutdown.is_cancelled();
    let head = json_head(body.len(), close);
    let written = if body.len() <= ONE_WRITE {
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        write_all(app, stream, &out).await
    } else {
        match write_all(app, stream, head.as_bytes()).await {
            Ok(true) => write_all(app, stream, body).await,
            other => other,
        }
    };
    if !matches!(written, Ok(true)) {
        return false;
    }
    if close {
        // As hyper does after an answer that ends the connection: FIN, then close.
        let _ = tokio::time::timeout(app.config.shutdown_grace, stream.shutdown()).await;
        return false;
    }
    // Shutdown began while the answer was written: close after it, as hyper does.
    !app.shutdown.is_cancelled()
}

/// Waits as `poll::long_poll` does, and also for the client to leave (`None`), keeping in
/// `pipelined` what it sends meanwhile.
// Not an `async fn`: see above (the state would hold the arguments twice).
#[allow(clippy::manual_async_fn)]
fn long_poll<'a, S: Io>(
    app: &'a App,
    stream: &'a mut Counted<S>,
    p: PollParams,
    pipelined: &'a mut Vec<u8>,
) -> impl std::future::Future<Output = Option<Bytes>> + Send + 'a {
    // An `async move` block (not an `async fn`, which keeps its arguments twice) and a
    // loop on `changed` (not `wait_for`, 48 bytes more): a parked long-poll holds this state.
    async move {
        let mut head_rx = app.hub.subscribe();
        let after = p.after.unwrap_or_else(|| *head_rx.borrow_and_update());
        if app.hub.head() <= after && !p.timeout.is_zero() {
            let _parked = GaugeGuard::new(&app.stats.parked);
            let published = async {
                while *head_rx.borrow_and_update() <= after {
                    if head_rx.changed().await.is_err() {
                        // The hub outlives every connection; wait out the timeout.
                        std::future::pending::<()>().await;
                    }
                }
            };
            tokio::select! {
                () = published => {}
                _ = tokio::time::sleep(p.timeout) => {}
                _ = app.shutdown.cancelled() => {}
                () = client_gone(stream, pipelined, app.config.max_header_bytes) => return None,
            }
        }
        Some(poll::encode_body(
            &app.hub.read_after(after, p.limit),
            after,
        ))
    }
}

/// How a long-poll lent to the publisher came back.
enum Lent {
    /// Not answered (the socket is not a plain one, the head had moved, the client sent or
    /// left, shutdown, the timeout): the task goes on with the parameters as updated, and
    /// answers itself.
    Back,
    /// The publisher answered, at this instant (and what the socket did not take of the
    /// answer has been written since); the bytes are those of the next request it read and
    /// left to the task, if any.
    Answered(Instant, Option<Bytes>),
    /// The socket failed.
    Gone,
}

/// Parks a long-poll whose cursor is the head with the publisher (see the module doc),
/// until its client leaves, shutdown, the timeout, or a hand-back. Meanwhile the publisher
/// answers it and reads and parks the client's next requests in place, so the task does
/// not wake per request. When it comes back unanswered, `p` says where the task goes on:
/// the cursor, limit and remaining timeout of the request parked last.
///
/// While lent, a request arriving wakes nobody (the publisher reads it); the client
/// closing or resetting, or sending more than a head may hold, still wakes the task, which
/// then takes the socket back ([`fanout::lend_socket`]).
///
/// Its own future rather than part of [`long_poll`]'s, so that a parked long-poll holds
/// one of the two states, not both (the answer's state stays in 640 bytes' allocation
/// class, `scripts/conn-memory.sh`).
async fn lend_long_poll<S: Io + 'static>(
    app: &Arc<App>,
    stream: &mut Counted<S>,
    p: &mut PollParams,
) -> Lent {
    use std::os::fd::AsRawFd;
    let Some(tcp) = stream.tcp() else {
        return Lent::Back;
    };
    let fd = tcp.as_raw_fd();
    let after = *p.after.get_or_insert_with(|| app.hub.head());
    let limit = u32::try_from(p.limit).unwrap_or(u32::MAX);
    let due = Instant::now() + p.timeout;
    let Some(reg) = Registered::long_poll(app, fd, limit, after, due) else {
        return Lent::Back;
    };
    fanout::lend_socket(fd, app.config.max_header_bytes);
    let header = app.config.header_timeout;
    // The task is not woken by the publisher's answers or by the requests it parks, so
    // it looks at the entry on a timer: at a parked request's deadline, a little after an
    // answer whose next request no sweep read (`fanout::UNREAD_GRACE`: then it reads it,
    // or times a silent client out a header timeout after the answer), and at least once
    // per header timeout.
    while let Some(wake) = reg.rearm(header) {
        tokio::select! {
            biased;
            _ = app.shutdown.cancelled() => break,
            () = client_left(tcp, fd) => break,
            () = poll_fn(|cx| reg.poll_handed_back(cx)) => {}
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
    }
    let back = reg.take();
    fanout::return_socket(fd);
    if back.error.is_some() {
        return Lent::Gone;
    }
    let Some(at) = back.answered else {
        // The request parked last (the publisher may have read it in place of ours).
        p.after = Some(back.seq);
        p.limit = back.limit as usize;
        p.timeout = back.due.map_or(std::time::Duration::ZERO, |due| {
            due.saturating_duration_since(Instant::now())
        });
        return Lent::Back;
    };
    // What the socket did not take of the publisher's answer.
    if back.rest.is_empty() || matches!(write_all(app, stream, &back.rest).await, Ok(true)) {
        Lent::Answered(at, (!back.read.is_empty()).then_some(back.read))
    } else {
        Lent::Gone
    }
}

/// Resolves when a lent long-poll's client has left (FIN or RST) or sent more than a
/// request head may hold: what turns the socket readable under the raised low-water mark.
/// A readiness left over from before (the publisher reads the socket's requests itself)
/// is checked with `poll(2)` and cleared.
async fn client_left(tcp: &tokio::net::TcpStream, fd: std::os::fd::RawFd) {
    poll_fn(|cx| loop {
        if tcp.poll_read_ready(cx).is_pending() {
            return Poll::Pending;
        }
        let checked = tcp.try_io(tokio::io::Interest::READABLE, || {
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN | libc::POLLRDHUP,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no wait.
            let rc = unsafe { libc::poll(&mut pfd, 1, 0) };
            if rc > 0 && pfd.revents != 0 {
                Ok(())
            } else {
                // Nothing the task must act on: clear the readiness and wait again.
                Err(std::io::ErrorKind::WouldBlock.into())
            }
        });
        if !matches!(&checked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock) {
            return Poll::Ready(());
        }
    })
    .await
}

/// Resolves when the peer closes or resets the connection, or sends more than `limit`
/// bytes while parked (no request head is that long). What it sends meanwhile (a
/// pipelined request) is appended to `pipelined`. The read buffer lives only within one
/// poll, so a parked long-poll holds none.
async fn client_gone<S: Io>(stream: &mut Counted<S>, pipelined: &mut Vec<u8>, limit: usize) {
    poll_fn(|cx| loop {
        let mut chunk = [0u8; 1024];
        let mut rb = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(()),
            Poll::Ready(Ok(())) => {
                pipelined.extend_from_slice(rb.filled());
                if pipelined.len() > limit {
                    return Poll::Ready(());
                }
            }
        }
    })
    .await
}
