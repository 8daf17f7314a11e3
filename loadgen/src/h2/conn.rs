//! One HTTP/2 client connection on the `h2` crate, over any counted socket.
//!
//! `h2` takes ownership of its IO, so the socket is lent to it through [`Lent`]: the
//! driver task can take the socket back once `h2` is done (GOAWAY sent) and read what the
//! server still sends until it closes (bounded), so both sides count the same bytes. The
//! socket's counters ([`Counted`]) stay readable all along: the last-read time is the
//! receive stamp of whatever a stream yields, and the byte counts are read once, by the
//! last user of the connection ([`H2Conn::finish`]).
//!
//! Flow control: the windows are Chrome's (6 MiB per stream, 15 MiB per connection) and
//! every DATA chunk's capacity is released as soon as it is consumed, so a long-lived SSE
//! stream never stalls and `WINDOW_UPDATE` frames are rare (one per half window).

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::counting::{ByteCounts, ConnCounters, Counted};
use crate::http::io_error_kind;

/// Stream flow-control window (Chrome's).
pub const STREAM_WINDOW: u32 = 6 << 20;
/// Connection flow-control window (Chrome's).
pub const CONNECTION_WINDOW: u32 = 15 << 20;
/// Largest poll body accepted, as over HTTP/1.1.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;
/// How long a failed stream waits for its connection's end to learn the reason.
const END_WAIT: Duration = Duration::from_millis(500);

/// A socket the HTTP/2 client can run over: counted ([`Counted`]: the counters stay
/// readable while `h2` owns the socket), plaintext or TLS.
pub trait Wire: Counted + AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<W: Counted + AsyncRead + AsyncWrite + Unpin + Send + 'static> Wire for W {}

/// Why an HTTP/2 exchange failed; [`H2Error::kind`] names it for the error counts.
#[derive(Debug, thiserror::Error)]
pub enum H2Error {
    /// The `h2` crate reported an error (protocol, reset, GOAWAY or the socket's).
    #[error("http/2: {0}")]
    H2(#[from] ::h2::Error),
    /// The connection had already ended, for the reason named.
    #[error("http/2 connection ended ({0})")]
    Ended(&'static str),
    /// The response body broke a limit.
    #[error("http/2 response body too large")]
    TooLarge,
}

impl H2Error {
    /// A short stable name for the error counts in results.
    pub fn kind(&self) -> &'static str {
        match self {
            H2Error::H2(e) => error_kind(e),
            H2Error::Ended(kind) => kind,
            H2Error::TooLarge => "bad_response",
        }
    }
}

/// The error-count name of an `h2` error: the socket's error kind when the socket failed,
/// `h2_goaway` when the server sent GOAWAY, `h2_refused_stream` for a stream the server
/// refused, `h2_protocol` for everything else (the client's own GOAWAY over a frame it
/// could not accept among them).
pub fn error_kind(e: &::h2::Error) -> &'static str {
    if let Some(io) = e.get_io() {
        return io_error_kind(io);
    }
    if e.is_go_away() && e.is_remote() {
        return "h2_goaway";
    }
    if e.reason() == Some(::h2::Reason::REFUSED_STREAM) {
        return "h2_refused_stream";
    }
    "h2_protocol"
}

type Slot<W> = Mutex<Option<W>>;

fn lock<W>(slot: &Slot<W>) -> MutexGuard<'_, Option<W>> {
    // A panic while a socket call held the lock leaves the socket as it was.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// The socket as `h2` sees it: a share of a slot the driver takes it back from.
struct Lent<W>(Arc<Slot<W>>);

fn taken() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket taken back from h2")
}

impl<W: Wire> AsyncRead for Lent<W> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match lock(&self.0).as_mut() {
            Some(w) => Pin::new(w).poll_read(cx, buf),
            None => Poll::Ready(Err(taken())),
        }
    }
}

impl<W: Wire> AsyncWrite for Lent<W> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match lock(&self.0).as_mut() {
            Some(w) => Pin::new(w).poll_write(cx, b),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match lock(&self.0).as_mut() {
            Some(w) => Pin::new(w).poll_write_vectored(cx, bufs),
            None => Poll::Ready(Err(taken())),
        }
    }

    fn is_write_vectored(&self) -> bool {
        lock(&self.0)
            .as_ref()
            .is_some_and(|w| w.is_write_vectored())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match lock(&self.0).as_mut() {
            Some(w) => Pin::new(w).poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    /// Only flushes: the driver closes the socket itself once `h2` is done (see [`drain`]).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// State shared by every handle of one connection and its driver task.
struct Shared {
    /// Cancelled when `h2`'s connection task has ended.
    ended: CancellationToken,
    /// Why it ended, if by an error.
    end_kind: Mutex<Option<&'static str>>,
    /// The socket's counters (and its last-read time), whoever holds the socket.
    counters: Arc<ConnCounters>,
    /// The driver task, taken by whoever finishes the connection.
    driver: Mutex<Option<JoinHandle<()>>>,
    /// `scheme://authority` of every request's URI.
    base: String,
}

/// A handle on one HTTP/2 connection: cheap to clone, one per client using it.
#[derive(Clone)]
pub struct H2Conn {
    send: ::h2::client::SendRequest<Bytes>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for H2Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Conn")
            .field("base", &self.shared.base)
            .field("ended", &self.shared.ended.is_cancelled())
            .finish()
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct H2Response {
    /// Status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body (the DATA payload, concatenated).
    pub body: Bytes,
    /// Unix ns of the socket read that completed the response.
    pub recv_ns: u64,
}

impl H2Conn {
    /// Runs the client side of the HTTP/2 handshake over `io` (prior knowledge: the
    /// preface and SETTINGS go out at once) and spawns the connection's driver task.
    /// `scheme` is `http` (h2c) or `https`; `goodbye` bounds the final drain. The caller
    /// bounds the whole call with its connect timeout.
    pub async fn handshake<W: Wire>(
        io: W,
        scheme: &str,
        authority: &str,
        goodbye: Duration,
    ) -> Result<H2Conn, H2Error> {
        let counters = io.counters();
        let slot: Arc<Slot<W>> = Arc::new(Mutex::new(Some(io)));
        let (send, connection) = ::h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .enable_push(false)
            .handshake::<_, Bytes>(Lent(slot.clone()))
            .await?;
        let shared = Arc::new(Shared {
            ended: CancellationToken::new(),
            end_kind: Mutex::new(None),
            counters,
            driver: Mutex::new(None),
            base: format!("{scheme}://{authority}"),
        });
        let driver = tokio::spawn(drive(connection, slot, shared.clone(), goodbye));
        *shared.driver.lock().unwrap_or_else(|p| p.into_inner()) = Some(driver);
        Ok(H2Conn { send, shared })
    }

    /// Whether the connection has ended (every request on it would fail).
    pub fn is_ended(&self) -> bool {
        self.shared.ended.is_cancelled()
    }

    /// Resolves when the connection has ended.
    pub async fn ended(&self) {
        self.shared.ended.cancelled().await
    }

    /// Unix ns of the connection's latest socket read that returned data.
    pub fn last_read_ns(&self) -> u64 {
        self.shared.counters.last_read_ns()
    }

    /// Ends the setup phase of the connection's byte counts (idempotent).
    pub fn end_setup(&self) {
        self.shared.counters.end_setup()
    }

    /// Counts `n` bytes of DATA payload read (in the phase of the latest socket read).
    pub fn count_data_down(&self, n: u64) {
        self.shared.counters.count_data_down(n)
    }

    /// Names the error `e` of a stream of this connection (see [`H2Conn::get`]'s).
    pub async fn explain(&self, e: ::h2::Error) -> H2Error {
        self.after(e).await
    }

    /// The connection's byte counts so far.
    pub fn shared_counts(&self) -> ByteCounts {
        self.shared.counters.counts()
    }

    /// Whether `self` and `other` are handles on the same connection.
    pub fn same_as(&self, other: &H2Conn) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    fn ended_error(&self) -> H2Error {
        let kind = *self
            .shared
            .end_kind
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        H2Error::Ended(kind.unwrap_or("closed"))
    }

    /// Opens a `GET` stream for `path` (headers `extra`) and waits for the response head.
    /// The caller bounds it with its deadline.
    pub async fn open(
        &mut self,
        path: &str,
        extra: &[(&'static str, &str)],
    ) -> Result<(u16, Option<String>, ::h2::RecvStream), H2Error> {
        if self.is_ended() {
            return Err(self.ended_error());
        }
        let mut req = http::Request::get(format!("{}{path}", self.shared.base));
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        // Every part of the request is a valid static name or a URI built from the
        // target's host and a path of ours, so building cannot fail; if it did, the
        // request counts as a protocol error rather than a panic.
        let req = req.body(()).map_err(|_| H2Error::Ended("h2_protocol"))?;
        let ready = std::future::poll_fn(|cx| self.send.poll_ready(cx)).await;
        if let Err(e) = ready {
            return Err(self.after(e).await);
        }
        let response = match self.send.send_request(req, true) {
            Ok((response, _)) => response.await,
            Err(e) => Err(e),
        };
        let response = match response {
            Ok(r) => r,
            Err(e) => return Err(self.after(e).await),
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((status, content_type, response.into_body()))
    }

    /// An error on a request. A stream that failed because its connection failed (the
    /// socket, or a GOAWAY) counts under the connection's reason, which the driver
    /// records as the connection ends, so the group's clients agree on it.
    async fn after(&self, e: ::h2::Error) -> H2Error {
        if e.is_reset() && !e.is_go_away() {
            return H2Error::H2(e);
        }
        let _ = tokio::time::timeout(END_WAIT, self.ended()).await;
        let kind = *self
            .shared
            .end_kind
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match kind {
            Some(kind) => H2Error::Ended(kind),
            None => H2Error::H2(e),
        }
    }

    /// Opens a tunnel by extended CONNECT (RFC 8441) with `:protocol` `protocol` to
    /// `path`, headers `extra`, and waits for the response head; the caller bounds it.
    pub async fn open_tunnel(
        &mut self,
        path: &str,
        protocol: &'static str,
        extra: &[(&'static str, &str)],
    ) -> Result<(u16, ::h2::SendStream<Bytes>, ::h2::RecvStream), H2Error> {
        if self.is_ended() {
            return Err(self.ended_error());
        }
        let mut req = http::Request::builder()
            .method(http::Method::CONNECT)
            .uri(format!("{}{path}", self.shared.base))
            .extension(::h2::ext::Protocol::from_static(protocol));
        for (name, value) in extra {
            req = req.header(*name, *value);
        }
        // As in `open`: built from valid parts, so this cannot fail.
        let req = req.body(()).map_err(|_| H2Error::Ended("h2_protocol"))?;
        let ready = std::future::poll_fn(|cx| self.send.poll_ready(cx)).await;
        if let Err(e) = ready {
            return Err(self.after(e).await);
        }
        let (response, send) = match self.send.send_request(req, false) {
            Ok(sent) => sent,
            Err(e) => return Err(self.after(e).await),
        };
        let response = match response.await {
            Ok(r) => r,
            Err(e) => return Err(self.after(e).await),
        };
        Ok((response.status().as_u16(), send, response.into_body()))
    }

    /// The connection's counters (bytes, DATA, last read).
    pub fn counters(&self) -> Arc<ConnCounters> {
        self.shared.counters.clone()
    }

    /// Sends a `GET` for `path` and reads the whole response, releasing flow-control
    /// capacity as it goes. The caller bounds it with its deadline.
    pub async fn get(&mut self, path: &str) -> Result<H2Response, H2Error> {
        let (status, content_type, mut body) = self.open(path, &[]).await?;
        let mut buf = BytesMut::new();
        let mut first: Option<Bytes> = None;
        while let Some(chunk) = body.data().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return Err(self.after(e).await),
            };
            let _ = body.flow_control().release_capacity(chunk.len());
            self.count_data_down(chunk.len() as u64);
            // One DATA frame is the usual answer: keep it without copying.
            match first.take() {
                None if buf.is_empty() => first = Some(chunk),
                prev => {
                    if let Some(prev) = prev {
                        buf.extend_from_slice(&prev);
                    }
                    buf.extend_from_slice(&chunk);
                    if buf.len() > MAX_BODY_BYTES {
                        return Err(H2Error::TooLarge);
                    }
                }
            }
        }
        let body = first.unwrap_or_else(|| buf.freeze());
        Ok(H2Response {
            status,
            content_type,
            body,
            recv_ns: self.last_read_ns(),
        })
    }

    /// Ends this handle, the connection's last: drops it so `h2` says GOAWAY, waits for
    /// the driver to drain the socket (bounded by `goodbye`), and returns the
    /// connection's byte counts.
    pub async fn finish(self, goodbye: Duration) -> ByteCounts {
        let H2Conn { send, shared } = self;
        drop(send);
        let driver = shared
            .driver
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut driver) = driver {
            if tokio::time::timeout(goodbye, &mut driver).await.is_err() {
                // A stream some other handle still holds keeps h2 running; the
                // goodbye is over, so stop it.
                driver.abort();
            }
        }
        shared.counters.counts()
    }
}

/// Drives `h2`'s connection task to its end, records why it ended, then takes the socket
/// back and drains it.
async fn drive<W: Wire>(
    connection: ::h2::client::Connection<Lent<W>, Bytes>,
    slot: Arc<Slot<W>>,
    shared: Arc<Shared>,
    goodbye: Duration,
) {
    let end = connection.await;
    if let Err(e) = &end {
        *shared.end_kind.lock().unwrap_or_else(|p| p.into_inner()) = Some(error_kind(e));
    }
    shared.ended.cancel();
    let taken = lock(&slot).take();
    let Some(mut io) = taken else { return };
    if tokio::time::timeout(goodbye, drain(&mut io)).await.is_err() {
        // The server kept the connection open: close it from this side.
        let _ = tokio::time::timeout(goodbye, io.shutdown()).await;
    }
    *lock(&slot) = Some(io);
}

/// Reads until the server closes, which it does once it has read `h2`'s GOAWAY: the
/// server's own GOAWAY and any answer still in flight are counted, as the server counts
/// them. The socket is not shut down first: a TLS close_notify sent after the GOAWAY
/// reaches a server that has stopped reading, so only one side would count it.
async fn drain<W: Wire>(io: &mut W) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = io.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    use ::h2::server::SendResponse;
    use ::h2::{Reason, SendStream};

    use crate::counting::{CountingStream, Window};

    /// A fixed `date`, so HPACK can index it as it would within one second of a real server.
    const DATE: &str = "Tue, 01 Dec 2026 00:00:00 GMT";

    /// Sends `data` on `stream` as the peer's windows allow, `end` closing the stream.
    pub(crate) async fn send_all(stream: &mut SendStream<Bytes>, mut data: Bytes, end: bool) {
        if data.is_empty() {
            stream.send_data(data, end).expect("send");
            return;
        }
        while !data.is_empty() {
            stream.reserve_capacity(data.len());
            let cap = std::future::poll_fn(|cx| stream.poll_capacity(cx))
                .await
                .expect("stream open")
                .expect("capacity");
            let chunk = data.split_to(cap.min(data.len()));
            stream
                .send_data(chunk, end && data.is_empty())
                .expect("send");
        }
    }

    /// Answers `respond` with 200 and a JSON `body` as the feed server does.
    pub(crate) async fn answer_json(mut respond: SendResponse<Bytes>, body: Bytes) {
        let resp = http::Response::builder()
            .header("content-type", "application/json")
            .header("cache-control", "no-store")
            .header("content-length", body.len())
            .header("date", DATE)
            .body(())
            .unwrap();
        let mut stream = respond.send_response(resp, false).unwrap();
        send_all(&mut stream, body, true).await;
    }

    /// Serves one h2 connection over `io`, handing every request to `handle`.
    pub(crate) async fn serve<T, F, Fut>(io: T, handle: F)
    where
        T: AsyncRead + AsyncWrite + Unpin,
        F: Fn(http::Request<::h2::RecvStream>, SendResponse<Bytes>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let mut conn = ::h2::server::handshake(io).await.unwrap();
        while let Some(Ok((req, respond))) = conn.accept().await {
            tokio::spawn(handle(req, respond));
        }
    }

    /// A poll answer of `n` events after `after`, each `{"seq":..,"ts":..,"data":"xxxxxxxx"}`.
    pub(crate) fn poll_body(after: u64, n: u64) -> Bytes {
        let events: Vec<String> = (after + 1..=after + n)
            .map(|s| format!(r#"{{"seq":{s},"ts":1,"data":"xxxxxxxx"}}"#))
            .collect();
        let next = after + n;
        Bytes::from(format!(
            r#"{{"events":[{}],"next":{next},"missed":0}}"#,
            events.join(",")
        ))
    }

    fn counted(io: tokio::io::DuplexStream) -> CountingStream<tokio::io::DuplexStream> {
        CountingStream::new(io, Arc::new(Window::new()))
    }

    fn query_after(req: &http::Request<::h2::RecvStream>) -> u64 {
        req.uri()
            .query()
            .and_then(|q| q.strip_prefix("after="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn later_poll_responses_cost_a_few_header_bytes() {
        let (a, b) = tokio::io::duplex(1 << 20);
        tokio::spawn(serve(b, |req, respond| async move {
            // Same body size every time, as when a poll carries one event of fixed size.
            answer_json(respond, poll_body(query_after(&req) % 9, 0)).await
        }));
        let mut conn = H2Conn::handshake(counted(a), "http", "h:1", Duration::from_secs(1))
            .await
            .unwrap();
        let mut costs = Vec::new();
        let mut before = conn.shared.counters.counts();
        for after in 1..=5 {
            let resp = conn.get(&format!("/poll?after={after}")).await.unwrap();
            assert_eq!(resp.status, 200);
            assert_eq!(resp.content_type.as_deref(), Some("application/json"));
            let now = conn.shared.counters.counts();
            let up = now.total_up() - before.total_up();
            let down = now.total_down() - before.total_down();
            costs.push((up, down, resp.body.len() as u64));
            before = now;
        }
        eprintln!("h2 poll exchanges (up, down, body): {costs:?}");
        let (_, _, body) = costs[1];
        for &(up, down, b) in &costs[1..] {
            assert_eq!(b, body);
            // HEADERS (9-byte frame header + HPACK) and one DATA frame (9 + body). Of a
            // later response's 9 B of HPACK, `:status`, `content-type`, `cache-control`
            // and `date` are one indexed byte each; `content-length` is 5 (name index,
            // length, two digits), as h2 never indexes its value (hyper's server too).
            assert_eq!(down - body - 18, 9, "later response HPACK block");
            // The request: 9-byte frame header, :method/:scheme indexed, :authority
            // indexed after the first, :path a literal with its new cursor.
            assert!(up <= 9 + 3 + 1 + 1 + 20, "later request {up} B");
        }
        let first_headers = costs[0].1 - costs[0].2 - 18;
        // The first response's literal headers (and the server's SETTINGS and ACK).
        assert!(first_headers >= 9 + 40, "first response {first_headers} B");
        let counts = conn.finish(Duration::from_secs(1)).await;
        assert!(counts.total_down() > 0);
    }

    #[tokio::test]
    async fn a_stream_larger_than_both_windows_never_stalls() {
        let total: usize = CONNECTION_WINDOW as usize + (1 << 20);
        let (a, b) = tokio::io::duplex(1 << 20);
        tokio::spawn(serve(b, move |_req, mut respond| async move {
            let resp = http::Response::builder().body(()).unwrap();
            let mut stream = respond.send_response(resp, false).unwrap();
            let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
            for _ in 0..total / chunk.len() {
                send_all(&mut stream, chunk.clone(), false).await;
            }
            send_all(&mut stream, Bytes::new(), true).await;
        }));
        let mut conn = H2Conn::handshake(counted(a), "http", "h:1", Duration::from_secs(1))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(60), conn.get("/sse"))
            .await
            .expect("no stall")
            .unwrap();
        assert_eq!(got.body.len(), total);
    }

    #[tokio::test]
    async fn errors_are_counted_by_kind() {
        // A stream the server refuses.
        let (a, b) = tokio::io::duplex(1 << 16);
        tokio::spawn(serve(b, |_req, mut respond| async move {
            respond.send_reset(Reason::REFUSED_STREAM);
        }));
        let mut conn = H2Conn::handshake(counted(a), "http", "h:1", Duration::from_secs(1))
            .await
            .unwrap();
        let e = conn.get("/poll").await.unwrap_err();
        assert_eq!(e.kind(), "h2_refused_stream", "{e}");

        // A server that goes away with an error.
        let (a, b) = tokio::io::duplex(1 << 16);
        let refused = Arc::new(AtomicU64::new(0));
        let n = refused.clone();
        tokio::spawn(async move {
            let mut conn = ::h2::server::handshake(b).await.unwrap();
            if let Some(Ok(_)) = conn.accept().await {
                n.fetch_add(1, Ordering::Relaxed);
                conn.abrupt_shutdown(Reason::INTERNAL_ERROR);
                let _ = std::future::poll_fn(|cx| conn.poll_closed(cx)).await;
                // Keep the socket open: the client must learn of the GOAWAY from the
                // frame, not from a broken pipe.
                std::future::pending::<()>().await;
            }
        });
        let mut conn = H2Conn::handshake(counted(a), "http", "h:1", Duration::from_secs(1))
            .await
            .unwrap();
        let e = conn.get("/poll").await.unwrap_err();
        assert_eq!(e.kind(), "h2_goaway", "{e}");
        conn.ended().await;
        let e = conn.get("/poll").await.unwrap_err();
        assert_eq!(e.kind(), "h2_goaway", "{e}");

        // A peer that is not HTTP/2 at all.
        let (a, mut b) = tokio::io::duplex(1 << 16);
        tokio::spawn(async move {
            let _ = b
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            let mut sink = [0u8; 1024];
            while let Ok(n) = b.read(&mut sink).await {
                if n == 0 {
                    break;
                }
            }
        });
        let mut conn = H2Conn::handshake(counted(a), "http", "h:1", Duration::from_secs(1))
            .await
            .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(5), conn.get("/poll"))
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(e.kind(), "h2_protocol", "{e}");
    }
}
