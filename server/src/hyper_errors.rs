//! hyper's automatic answers to requests it cannot parse, given the JSON body PROTOCOL.md
//! promises for every 4xx.
//!
//! hyper answers a malformed request head itself, before any handler runs, with a bare
//! head: `HTTP/1.1 400 Bad Request` (or 431 for a head over its buffer, 414 for a target
//! too long), then `connection: close`, `content-length: 0` and `date`, and closes the
//! connection. hyper 1.x has no hook to change that answer, so the connection's writer
//! recognises exactly that head (nothing else the server writes can look like it: its own
//! heads always carry `content-type`, and no body holds a raw CRLF) and writes the same
//! answer with `content-type: application/json` and `{"error":"..."}` instead. hyper
//! closes the connection after it, as before.
//!
//! The writer reports hyper's bytes as written only once the replacement is, so hyper's
//! flushing and closing are unchanged. The wrapper says it cannot write vectored, so hyper
//! hands it whole, flattened buffers: a head is never split across writes.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The statuses hyper answers by itself, with what the JSON error says.
const AUTOMATIC: [(&str, &str); 3] = [
    ("400 Bad Request", "malformed request head"),
    (
        "431 Request Header Fields Too Large",
        "request head too large",
    ),
    ("414 URI Too Long", "request target too long"),
];

/// Length of an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
const DATE_LEN: usize = 29;

/// A writer that gives hyper's automatic error answers a JSON body.
#[derive(Debug)]
pub struct JsonErrors<S> {
    inner: S,
    /// A replacement being written, and how many of hyper's bytes it stands for.
    replacing: Option<(Bytes, usize)>,
}

impl<S> JsonErrors<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        JsonErrors {
            inner,
            replacing: None,
        }
    }
}

/// If `buf` ends with one of hyper's automatic error heads, the bytes to write instead:
/// everything before it unchanged, then the same answer with a JSON body.
fn replacement(buf: &[u8]) -> Option<Bytes> {
    for (status, message) in AUTOMATIC {
        for version in ["HTTP/1.1", "HTTP/1.0"] {
            let prefix =
                format!("{version} {status}\r\nconnection: close\r\ncontent-length: 0\r\ndate: ");
            let head_len = prefix.len() + DATE_LEN + 4;
            let Some(start) = buf.len().checked_sub(head_len) else {
                continue;
            };
            let head = &buf[start..];
            if !head.starts_with(prefix.as_bytes()) || !head.ends_with(b"\r\n\r\n") {
                continue;
            }
            let date = &head[prefix.len()..prefix.len() + DATE_LEN];
            let body = format!(r#"{{"error":"{message}"}}"#);
            let mut out = buf[..start].to_vec();
            out.extend_from_slice(
                format!(
                    "{version} {status}\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
                     connection: close\r\ncontent-length: {}\r\ndate: ",
                    body.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(date);
            out.extend_from_slice(b"\r\n\r\n");
            out.extend_from_slice(body.as_bytes());
            return Some(Bytes::from(out));
        }
    }
    None
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            // Only a write that ends with a head can be one of hyper's error answers.
            if !buf.ends_with(b"\r\n\r\n") {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            }
            match replacement(buf) {
                Some(out) => this.replacing = Some((out, buf.len())),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        // hyper calls again with the same bytes until told they are written.
        while let Some((out, stands_for)) = this.replacing.as_mut() {
            if out.is_empty() {
                let n = *stands_for;
                this.replacing = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            out.advance(n);
        }
        Poll::Ready(Ok(0))
    }

    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Mon, 30 Nov 2026 17:08:44 GMT";

    #[test]
    fn replaces_exactly_hyper_s_automatic_answers() {
        let bare = format!(
            "HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n"
        );
        let out = replacement(bare.as_bytes()).unwrap();
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            format!(
                "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n\
                 cache-control: no-store\r\nconnection: close\r\ncontent-length: 34\r\ndate: {DATE}\r\n\r\n\
                 {{\"error\":\"request head too large\"}}"
            )
        );
        // After a pipelined answer in the same buffer: that answer is kept as it was.
        let before = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        let joined = format!(
            "{before}{}",
            bare.replace("431 Request Header Fields Too Large", "400 Bad Request")
        );
        let out = replacement(joined.as_bytes()).unwrap();
        assert!(out.starts_with(before.as_bytes()));
        assert!(out.ends_with(br#"{"error":"malformed request head"}"#));
        // Our own answers, and anything else, pass unchanged.
        for other in [
            format!("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: 2\r\ndate: {DATE}\r\n\r\n"),
            format!("HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n"),
            format!("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\nx"),
        ] {
            assert!(replacement(other.as_bytes()).is_none(), "{other:?}");
        }
    }

    #[tokio::test]
    async fn hyper_s_bytes_count_as_written_once_the_replacement_is() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A pipe smaller than the replacement forces partial writes.
        let (a, mut b) = tokio::io::duplex(16);
        let mut w = JsonErrors::new(a);
        let bare = format!(
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: {DATE}\r\n\r\n"
        );
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            b.read_to_end(&mut all).await.unwrap();
            all
        });
        let n = w.write(bare.as_bytes()).await.unwrap();
        assert_eq!(n, bare.len());
        w.shutdown().await.unwrap();
        drop(w);
        let all = reader.await.unwrap();
        assert_eq!(all, replacement(bare.as_bytes()).unwrap());
    }
}
