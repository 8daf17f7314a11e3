//! A byte-counting wrapper around a client socket, and the measure window it counts against.
//!
//! Every client socket is wrapped in [`CountingStream`], so the byte figures are what
//! crossed the socket API, exactly, whatever protocol library sits on top. Bytes are
//! attributed when the read or write completes: to *setup* while the client says it is
//! setting up (connect, WebSocket handshake, SSE response head, first poll), otherwise to
//! the phase of the [`Window`] the completion time falls in. The time of the latest read
//! is kept as the receive timestamp of whatever is parsed out of those bytes.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::clock::unix_nanos;

/// Where an instant falls relative to the measure window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the window: connect and warm-up.
    Before = 0,
    /// Inside `[start, end)`.
    Measure = 1,
    /// After the window: drain and disconnect.
    After = 2,
}

/// The measure window in Unix nanoseconds, shared by every client of a scenario.
///
/// Both bounds are `u64::MAX` until the scenario fixes them after the connect phase, so
/// everything before that counts as [`Phase::Before`].
#[derive(Debug)]
pub struct Window {
    start_ns: AtomicU64,
    end_ns: AtomicU64,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// A window that has not been fixed yet.
    pub fn new() -> Self {
        Self {
            start_ns: AtomicU64::new(u64::MAX),
            end_ns: AtomicU64::new(u64::MAX),
        }
    }

    /// Fixes the window to `[start_ns, end_ns)`.
    pub fn set(&self, start_ns: u64, end_ns: u64) {
        // End first: a reader that sees the new start must not see the old (MAX) end as
        // anything but a still-open window, which it would anyway; the order only keeps
        // `start <= end` for every observer.
        self.end_ns.store(end_ns, Ordering::Release);
        self.start_ns.store(start_ns, Ordering::Release);
    }

    /// Moves the end of the window to `end_ns` (used when a run is cut short).
    pub fn close_at(&self, end_ns: u64) {
        if end_ns < self.end_ns.load(Ordering::Acquire) {
            self.end_ns.store(end_ns, Ordering::Release);
        }
    }

    /// The window start, `u64::MAX` if not fixed.
    pub fn start_ns(&self) -> u64 {
        self.start_ns.load(Ordering::Acquire)
    }

    /// The window end, `u64::MAX` if not fixed.
    pub fn end_ns(&self) -> u64 {
        self.end_ns.load(Ordering::Acquire)
    }

    /// The phase of the instant `t_ns`.
    pub fn phase(&self, t_ns: u64) -> Phase {
        if t_ns < self.start_ns() {
            Phase::Before
        } else if t_ns < self.end_ns() {
            Phase::Measure
        } else {
            Phase::After
        }
    }

    /// Whether `t_ns` is inside the window.
    pub fn contains(&self, t_ns: u64) -> bool {
        self.phase(t_ns) == Phase::Measure
    }
}

/// Bytes counted on one or more sockets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ByteCounts {
    /// Bytes written while setting up.
    pub setup_up: u64,
    /// Bytes read while setting up.
    pub setup_down: u64,
    /// Steady-state bytes written, by [`Phase`].
    pub up: [u64; 3],
    /// Steady-state bytes read, by [`Phase`].
    pub down: [u64; 3],
}

impl ByteCounts {
    /// All bytes written, setup included.
    pub fn total_up(&self) -> u64 {
        self.setup_up + self.up.iter().sum::<u64>()
    }

    /// All bytes read, setup included.
    pub fn total_down(&self) -> u64 {
        self.setup_down + self.down.iter().sum::<u64>()
    }

    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &ByteCounts) {
        self.setup_up += other.setup_up;
        self.setup_down += other.setup_down;
        for i in 0..3 {
            self.up[i] += other.up[i];
            self.down[i] += other.down[i];
        }
    }
}

/// An `AsyncRead + AsyncWrite` that counts every byte through it.
#[derive(Debug)]
pub struct CountingStream<S> {
    inner: S,
    window: std::sync::Arc<Window>,
    counts: ByteCounts,
    setup: bool,
    last_read_ns: u64,
}

impl<S> CountingStream<S> {
    /// Wraps `inner`, starting in setup mode.
    pub fn new(inner: S, window: std::sync::Arc<Window>) -> Self {
        Self {
            inner,
            window,
            counts: ByteCounts::default(),
            setup: true,
            last_read_ns: 0,
        }
    }

    /// Ends setup: later bytes count as steady state.
    pub fn end_setup(&mut self) {
        self.setup = false;
    }

    /// Moves `n` bytes already counted as setup reads to the steady state at `t_ns`.
    ///
    /// A read that completes a response head often carries the first body bytes too; the
    /// HTTP client calls this for the part past the head.
    pub fn reattribute_setup_down(&mut self, n: u64, t_ns: u64) {
        let n = n.min(self.counts.setup_down);
        self.counts.setup_down -= n;
        self.counts.down[self.window.phase(t_ns) as usize] += n;
    }

    /// Bytes counted so far.
    pub fn counts(&self) -> ByteCounts {
        self.counts
    }

    /// Unix ns of the latest read that returned data (0 before any).
    pub fn last_read_ns(&self) -> u64 {
        self.last_read_ns
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CountingStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let res = Pin::new(&mut this.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            // The receive timestamp is taken here, before anything parses the bytes.
            let now = unix_nanos();
            this.last_read_ns = now;
            if this.setup {
                this.counts.setup_down += n;
            } else {
                this.counts.down[this.window.phase(now) as usize] += n;
            }
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CountingStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &res {
            this.count_up(*n as u64);
        }
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let res = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &res {
            this.count_up(*n as u64);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S> CountingStream<S> {
    fn count_up(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        if self.setup {
            self.counts.setup_up += n;
        } else {
            let now = unix_nanos();
            self.counts.up[self.window.phase(now) as usize] += n;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counts_setup_and_phases() {
        let window = Arc::new(Window::new());
        let (a, mut b) = tokio::io::duplex(1024);
        let mut s = CountingStream::new(a, window.clone());
        s.write_all(b"hello").await.unwrap();
        b.write_all(b"abc").await.unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf).await.unwrap(), 3);
        s.end_setup();
        // Window not fixed: steady bytes are "before".
        s.write_all(b"xy").await.unwrap();
        let now = unix_nanos();
        window.set(now - 1_000_000_000, now + 60_000_000_000);
        s.write_all(b"1234").await.unwrap();
        b.write_all(b"zzzzzz").await.unwrap();
        assert_eq!(s.read(&mut buf).await.unwrap(), 6);
        assert!(s.last_read_ns() >= now);
        window.close_at(now);
        s.write_all(b"q").await.unwrap();
        let c = s.counts();
        assert_eq!((c.setup_up, c.setup_down), (5, 3));
        assert_eq!(c.up, [2, 4, 1]);
        assert_eq!(c.down, [0, 6, 0]);
        assert_eq!((c.total_up(), c.total_down()), (12, 9));
        let mut r = [0u8; 12];
        b.read_exact(&mut r).await.unwrap();
        assert_eq!(&r, b"helloxy1234q");
    }
}
