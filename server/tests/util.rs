//! Helpers shared by the server's integration tests: start a server on 127.0.0.1:0 with a
//! paused feed (tests publish by hand, so every event is deterministic), raw HTTP/1.1 over a
//! byte-counting socket, and bounded waiting on `/stats`.

#![allow(dead_code)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use feedbench_server::{ServerConfig, ServerHandle};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Every wait in these tests gives up after this long.
pub const BOUND: Duration = Duration::from_secs(10);

/// Starts a server with the feed paused and `tweak` applied to the config.
pub async fn start(tweak: impl FnOnce(&mut ServerConfig)) -> ServerHandle {
    let mut cfg = ServerConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        rate_hz: 0.0,
        payload_bytes: 16,
        ..ServerConfig::default()
    };
    tweak(&mut cfg);
    feedbench_server::start(cfg).await.expect("server starts")
}

/// Polls `cond` every 10 ms until it holds, panicking after `BOUND`.
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + BOUND;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Byte counts of one client socket.
#[derive(Debug, Default)]
pub struct Counts {
    pub written: AtomicU64,
    pub read: AtomicU64,
}

/// A client socket that counts what it moves.
pub struct CountingStream {
    pub inner: TcpStream,
    pub counts: Arc<Counts>,
}

impl CountingStream {
    pub async fn connect(addr: SocketAddr) -> CountingStream {
        let inner = TcpStream::connect(addr).await.expect("connect");
        inner.set_nodelay(true).unwrap();
        CountingStream {
            inner,
            counts: Arc::default(),
        }
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.counts
            .read
            .fetch_add((buf.filled().len() - before) as u64, Relaxed);
        res
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.counts.written.fetch_add(n as u64, Relaxed);
        }
        res
    }
    // Vectored, as the socket is: a TLS client that fails its handshake writes its last
    // records (a ChangeCipherSpec and the alert) in one vectored write, and without this
    // only the first would go out.
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            self.counts.written.fetch_add(n as u64, Relaxed);
        }
        res
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// An HTTP/1.1 client on one keep-alive connection.
pub struct Http {
    pub stream: CountingStream,
    buf: Vec<u8>,
}

impl Http {
    pub async fn connect(addr: SocketAddr) -> Http {
        Http {
            stream: CountingStream::connect(addr).await,
            buf: Vec::new(),
        }
    }

    /// A client whose socket takes at most about `rcvbuf` bytes before the server's writes
    /// stall: a stuck consumer that the kernel cannot hide for long.
    pub async fn connect_small_window(addr: SocketAddr, rcvbuf: u32) -> Http {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
        let inner = socket.connect(addr).await.expect("connect");
        inner.set_nodelay(true).unwrap();
        Http {
            stream: CountingStream {
                inner,
                counts: Arc::default(),
            },
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `METHOD PATH` with extra header lines (each ending in CRLF) and a body.
    pub async fn send(&mut self, method: &str, path: &str, extra: &str, body: &[u8]) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: t\r\n{extra}content-length: {}\r\n\r\n",
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        self.send_raw(&req).await;
    }

    pub async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, "", b"").await;
        self.read_response().await
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(BOUND, self.stream.read(&mut chunk))
            .await
            .expect("read timed out")
            .expect("read");
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    /// Reads the response head; returns status and headers (names lower-cased).
    pub async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.buf.drain(..end + 4).collect()).unwrap();
                let mut lines = head.split("\r\n");
                let status: u16 = lines
                    .next()
                    .unwrap()
                    .split(' ')
                    .nth(1)
                    .unwrap()
                    .parse()
                    .unwrap();
                let headers = lines
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        let (k, v) = l.split_once(':').unwrap();
                        (k.trim().to_ascii_lowercase(), v.trim().to_string())
                    })
                    .collect();
                return (status, headers);
            }
            assert!(
                self.fill().await > 0,
                "connection closed before a response head"
            );
        }
    }

    /// Reads exactly `n` body bytes.
    pub async fn read_exact_body(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(self.fill().await > 0, "connection closed inside a body");
        }
        self.buf.drain(..n).collect()
    }

    /// Reads one chunk of a chunked body; `None` at the last (zero) chunk.
    pub async fn read_chunk(&mut self) -> Option<Vec<u8>> {
        let line_end = loop {
            if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                break p;
            }
            assert!(
                self.fill().await > 0,
                "connection closed inside a chunked body"
            );
        };
        let size_text = std::str::from_utf8(&self.buf[..line_end])
            .unwrap()
            .to_string();
        let size = usize::from_str_radix(&size_text, 16).unwrap();
        self.buf.drain(..line_end + 2);
        let data = self.read_exact_body(size + 2).await;
        assert_eq!(&data[size..], b"\r\n");
        (size > 0).then(|| data[..size].to_vec())
    }

    /// Reads a complete response (content-length or chunked).
    pub async fn read_response(&mut self) -> Resp {
        let (status, headers) = self.read_head().await;
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let body = if let Some(len) = get("content-length") {
            self.read_exact_body(len.parse().unwrap()).await
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            while let Some(c) = self.read_chunk().await {
                body.extend(c);
            }
            body
        } else {
            Vec::new()
        };
        Resp {
            status,
            headers,
            body,
        }
    }

    /// True once the server has closed the connection (EOF or reset), within `BOUND`.
    pub async fn closed_by_server(&mut self) -> bool {
        loop {
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(BOUND, self.stream.read(&mut chunk)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}

/// One GET on a fresh connection.
pub async fn get(addr: SocketAddr, path: &str) -> Resp {
    Http::connect(addr).await.get(path).await
}

/// A number from the server's `/stats`, read in-process.
pub fn stat(server: &ServerHandle, pointer: &str) -> u64 {
    server
        .stats()
        .pointer(pointer)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("no {pointer} in stats"))
}
