//! A small HTTP/1.1 client for the polling transports and the SSE stream.
//!
//! Hand-written over a counted stream ([`CountingStream`](crate::counting::CountingStream), or a
//! [`ClientIo`](crate::client_io::ClientIo) that may be TLS) rather than hyper's client so
//! that every byte is accounted exactly and a request costs one `write` and as few `read`s as the kernel
//! allows. It speaks just what feedbench needs: `GET`/`PUT` with a small body, response
//! heads parsed with `httparse`, bodies framed by `Content-Length`, chunked transfer
//! encoding, or the end of the connection. The chunked decoder is incremental so the SSE
//! client can feed a never-ending body through it.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::counting::Counted;

/// Largest response head accepted.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest response body accepted (a poll answer with 10,000 large events fits).
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// Why an HTTP exchange failed; [`HttpError::kind`] names it for the error counts.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection before the response was complete.
    #[error("connection closed before the response was complete")]
    Closed,
    /// The response is not valid HTTP/1.1 or breaks a limit.
    #[error("bad response: {0}")]
    BadResponse(String),
}

impl HttpError {
    /// A short stable name for the error counts in results.
    pub fn kind(&self) -> &'static str {
        match self {
            HttpError::Io(e) => io_error_kind(e),
            HttpError::Closed => "closed",
            HttpError::BadResponse(_) => "bad_response",
        }
    }
}

/// A short stable name for an I/O error; a TLS error inside one is named by
/// [`tls_error_kind`](crate::tls::tls_error_kind).
pub fn io_error_kind(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    if let Some(tls) = crate::tls::inner_tls_error(e) {
        return crate::tls::tls_error_kind(tls);
    }
    match e.kind() {
        K::ConnectionRefused => "connect_refused",
        K::ConnectionReset => "connection_reset",
        K::ConnectionAborted => "connection_aborted",
        K::BrokenPipe => "broken_pipe",
        K::TimedOut => "timeout",
        K::UnexpectedEof => "closed",
        K::AddrNotAvailable => "addr_not_available",
        _ => "io_other",
    }
}

/// How a response body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// `Content-Length: N`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
    /// No body (1xx, 204, 304).
    Empty,
}

/// A parsed response head.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// Status code.
    pub status: u16,
    /// Body framing.
    pub framing: BodyFraming,
    /// Whether the connection stays open after this response.
    pub keep_alive: bool,
    /// Bytes the head took on the wire.
    pub head_len: usize,
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The head.
    pub head: ResponseHead,
    /// The decoded body.
    pub body: Bytes,
    /// Unix ns of the read that completed the response.
    pub recv_ns: u64,
}

/// Parses a response head from the start of `buf`; `Ok(None)` if more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() > MAX_HEAD_BYTES {
                return Err(HttpError::BadResponse("response head too large".into()));
            }
            return Ok(None);
        }
        Err(e) => return Err(HttpError::BadResponse(format!("unparsable head: {e}"))),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep_alive = resp.version == Some(1);
    let mut content_length = None;
    let mut chunked = false;
    for h in resp.headers.iter() {
        // Only the headers read here are decoded: another header's value may be any bytes
        // HTTP allows (obs-text included), and decoding them all cost a tenth of a
        // long-poll answer's parse (`client_parse/long_poll_answer_1`).
        let read = ["content-length", "transfer-encoding", "connection"]
            .iter()
            .any(|name| h.name.eq_ignore_ascii_case(name));
        if !read {
            continue;
        }
        let value = std::str::from_utf8(h.value)
            .map_err(|_| HttpError::BadResponse(format!("header {} is not utf-8", h.name)))?
            .trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .parse::<u64>()
                .map_err(|_| HttpError::BadResponse(format!("bad content-length {value:?}")))?;
            content_length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in value.split(',') {
                let token = token.trim();
                if token.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        BodyFraming::Empty
    } else if chunked {
        BodyFraming::Chunked
    } else if let Some(n) = content_length {
        BodyFraming::Length(n)
    } else {
        keep_alive = false;
        BodyFraming::UntilClose
    };
    Ok(Some(ResponseHead {
        status,
        framing,
        keep_alive,
        head_len,
    }))
}

/// Incremental decoder for `Transfer-Encoding: chunked`.
#[derive(Debug, Default)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk, this many data bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk, expecting trailer lines up to an empty line.
    Trailer,
    /// The body is complete.
    Done,
}

impl ChunkedDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the terminating chunk and trailer have been seen.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes as much of `input` as possible, consuming it and appending data to `out`.
    /// Returns whether the body is complete; bytes after the body stay in `input`.
    pub fn decode(&mut self, input: &mut BytesMut, out: &mut BytesMut) -> Result<bool, HttpError> {
        let (used, done) = self.decode_slice(input, out)?;
        input.advance(used);
        Ok(done)
    }

    /// [`Self::decode`] over a slice: returns how many bytes of `input` it took and whether
    /// the body is complete. What it did not take (a partial size or trailer line, or bytes
    /// after the body) starts at the returned count.
    pub fn decode_slice(
        &mut self,
        input: &[u8],
        out: &mut BytesMut,
    ) -> Result<(usize, bool), HttpError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                ChunkState::Done => return Ok((pos, true)),
                ChunkState::Size => {
                    let size = match httparse::parse_chunk_size(rest) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            pos += used;
                            size
                        }
                        Ok(httparse::Status::Partial) if rest.len() > MAX_LINE => {
                            return Err(HttpError::BadResponse("chunk line too long".into()))
                        }
                        Ok(httparse::Status::Partial) => return Ok((pos, false)),
                        Err(_) => {
                            let line = &rest[..rest.len().min(32)];
                            return Err(HttpError::BadResponse(format!(
                                "bad chunk size line {:?}",
                                String::from_utf8_lossy(line)
                            )));
                        }
                    };
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok((pos, false));
                    }
                    let n = (left as usize).min(rest.len());
                    out.extend_from_slice(&rest[..n]);
                    pos += n;
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                }
                ChunkState::DataEnd => {
                    if rest.len() < 2 {
                        return Ok((pos, false));
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(HttpError::BadResponse(
                            "chunk data not followed by CRLF".into(),
                        ));
                    }
                    pos += 2;
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailer => {
                    let Some(line) = line_len(rest)? else {
                        return Ok((pos, false));
                    };
                    pos += line + 2;
                    if line == 0 {
                        self.state = ChunkState::Done;
                    }
                }
            }
        }
    }
}

/// Longest chunk-size or trailer line accepted.
const MAX_LINE: usize = 4096;

/// The length of the CRLF-terminated line `input` starts with (without the CRLF), if whole.
fn line_len(input: &[u8]) -> Result<Option<usize>, HttpError> {
    match input.windows(2).position(|w| w == b"\r\n") {
        Some(i) => Ok(Some(i)),
        None if input.len() > MAX_LINE => Err(HttpError::BadResponse("chunk line too long".into())),
        None => Ok(None),
    }
}

/// Appends the bytes of a request to `out`: the request line, `Host`, `extra_headers`
/// (complete `Name: value\r\n` lines), a `Content-Length` unless it is a `GET` without a
/// body, and the body. Every HTTP/1.1 request the load generator sends is made here.
pub fn format_request(
    out: &mut Vec<u8>,
    method: &str,
    path: &str,
    host: &str,
    extra_headers: &str,
    body: &[u8],
) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(
        out,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra_headers}"
    );
    if !body.is_empty() || method != "GET" {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// What an [`HttpConn`] holds besides its stream, while the stream is used elsewhere
/// ([`HttpConn::detach`]).
#[derive(Debug)]
pub struct Detached {
    peer_closes: bool,
    buf: BytesMut,
    host: String,
    request: Vec<u8>,
}

/// One HTTP/1.1 connection over a counted stream `S` ([`CountingStream`] or
/// [`ClientIo`](crate::client_io::ClientIo)).
#[derive(Debug)]
pub struct HttpConn<S> {
    stream: S,
    /// Whether the latest response said the server closes the connection after it.
    peer_closes: bool,
    buf: BytesMut,
    host: String,
    request: Vec<u8>,
}

impl Detached {
    /// Takes the bytes read and not parsed yet, leaving an empty buffer that holds no memory
    /// (the next read reserves what it needs).
    pub fn take_buffered(&mut self) -> Vec<u8> {
        let taken = std::mem::take(&mut self.buf);
        taken.to_vec()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Counted> HttpConn<S> {
    /// Wraps a connected stream; `host` goes into the `Host` header.
    pub fn new(stream: S, host: &str) -> Self {
        Self {
            stream,
            peer_closes: false,
            buf: BytesMut::with_capacity(8 * 1024),
            host: host.to_string(),
            request: Vec::with_capacity(256),
        }
    }

    /// Takes the connection apart, for its stream to be read elsewhere a while;
    /// [`HttpConn::attach`] puts it together again.
    pub fn detach(self) -> (S, Detached) {
        let Self {
            stream,
            peer_closes,
            buf,
            host,
            request,
        } = self;
        let rest = Detached {
            peer_closes,
            buf,
            host,
            request,
        };
        (stream, rest)
    }

    /// The connection [`HttpConn::detach`] took apart, over `stream`.
    pub fn attach(stream: S, rest: Detached) -> Self {
        let Detached {
            peer_closes,
            buf,
            host,
            request,
        } = rest;
        Self {
            stream,
            peer_closes,
            buf,
            host,
            request,
        }
    }

    /// The `Host` the requests carry.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The counted stream.
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// The counted stream, mutably (to end setup).
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Whether the latest response said the server closes the connection after it
    /// (`Connection: close`, or HTTP/1.0 without keep-alive).
    pub fn peer_closes(&self) -> bool {
        self.peer_closes
    }

    /// Bytes read but not consumed yet.
    pub fn buffered(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Writes a request. `extra_headers` are complete `Name: value\r\n` lines.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        extra_headers: &str,
        body: &[u8],
    ) -> Result<(), HttpError> {
        self.request.clear();
        format_request(
            &mut self.request,
            method,
            path,
            &self.host,
            extra_headers,
            body,
        );
        self.stream.write_all(&self.request).await?;
        self.stream.flush().await?;
        Ok(())
    }

    /// Reads more bytes into the buffer; returns how many (0 at end of stream).
    pub async fn read_more(&mut self) -> Result<usize, HttpError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        Ok(self.stream.read_buf(&mut self.buf).await?)
    }

    /// Reads a response head, leaving any body bytes in the buffer.
    pub async fn read_head(&mut self) -> Result<ResponseHead, HttpError> {
        loop {
            if let Some(head) = parse_head(&self.buf)? {
                self.buf.advance(head.head_len);
                return Ok(head);
            }
            if self.read_more().await? == 0 {
                return Err(HttpError::Closed);
            }
        }
    }

    /// Reads the complete body framed as `head` says.
    pub async fn read_body(&mut self, head: &ResponseHead) -> Result<Bytes, HttpError> {
        match head.framing {
            BodyFraming::Empty => Ok(Bytes::new()),
            BodyFraming::Length(n) => {
                let n = usize::try_from(n)
                    .ok()
                    .filter(|&n| n <= MAX_BODY_BYTES)
                    .ok_or_else(|| {
                        HttpError::BadResponse(format!("body of {n} bytes is too large"))
                    })?;
                while self.buf.len() < n {
                    if self.read_more().await? == 0 {
                        return Err(HttpError::Closed);
                    }
                }
                Ok(self.buf.split_to(n).freeze())
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new();
                let mut out = BytesMut::new();
                while !decoder.decode(&mut self.buf, &mut out)? {
                    if out.len() > MAX_BODY_BYTES {
                        return Err(HttpError::BadResponse("chunked body too large".into()));
                    }
                    if self.read_more().await? == 0 {
                        return Err(HttpError::Closed);
                    }
                }
                Ok(out.freeze())
            }
            BodyFraming::UntilClose => {
                while self.read_more().await? > 0 {
                    if self.buf.len() > MAX_BODY_BYTES {
                        return Err(HttpError::BadResponse("body too large".into()));
                    }
                }
                Ok(self.buf.split().freeze())
            }
        }
    }

    /// Sends a `GET` and reads the whole response.
    pub async fn get(&mut self, path: &str, extra_headers: &str) -> Result<Response, HttpError> {
        self.send("GET", path, extra_headers, &[]).await?;
        self.read_response().await
    }

    /// Reads one complete response.
    pub async fn read_response(&mut self) -> Result<Response, HttpError> {
        let head = self.read_head().await?;
        self.peer_closes = !head.keep_alive;
        let body = self.read_body(&head).await?;
        Ok(Response {
            head,
            body,
            recv_ns: Counted::last_read_ns(&self.stream),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::AsyncWriteExt;

    use crate::counting::{CountingStream, Window};

    #[test]
    fn parses_heads() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"a\":1}";
        let head = parse_head(raw).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.framing, BodyFraming::Length(12));
        assert!(head.keep_alive);
        assert_eq!(head.head_len, raw.len() - 7);
        // Bytes that are no UTF-8 pass in a header not read, and fail in one that is.
        let latin1 = b"HTTP/1.1 200 OK\r\nserver: caf\xe9\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(
            parse_head(latin1).unwrap().unwrap().framing,
            BodyFraming::Length(0)
        );
        let bad = b"HTTP/1.1 200 OK\r\ncontent-length: 1\xe9\r\n\r\n";
        assert!(
            matches!(parse_head(bad), Err(HttpError::BadResponse(m)) if m.contains("not utf-8"))
        );

        assert!(parse_head(b"HTTP/1.1 200 OK\r\ncontent-le")
            .unwrap()
            .is_none());
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, BodyFraming::Chunked);
        assert!(!h.keep_alive);
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(h.framing, BodyFraming::UntilClose);
        assert!(!h.keep_alive);
        let h = parse_head(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, BodyFraming::Empty);
        assert!(matches!(
            parse_head(b"HTTP/1.1 abc\r\n\r\n"),
            Err(HttpError::BadResponse(_))
        ));
        assert!(matches!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
            Err(HttpError::BadResponse(m)) if m.contains("content-length")
        ));
    }

    #[test]
    fn decodes_chunks_incrementally() {
        let wire = b"5;ext=1\r\nhello\r\nb\r\n world!!!!!\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        // Feed the body one byte at a time: the decoder must not care where reads split.
        let mut dec = ChunkedDecoder::new();
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut done_at = None;
        for (i, b) in wire.iter().enumerate() {
            input.extend_from_slice(&[*b]);
            if dec.decode(&mut input, &mut out).unwrap() {
                done_at = Some(i);
                break;
            }
        }
        assert_eq!(&out[..], b"hello world!!!!!");
        assert_eq!(done_at, Some(wire.len() - 5));
        assert!(dec.is_done());

        let mut bad = BytesMut::from(&b"zz\r\n"[..]);
        assert!(ChunkedDecoder::new().decode(&mut bad, &mut out).is_err());
        let mut bad = BytesMut::from(&b"2\r\nabXY"[..]);
        assert!(ChunkedDecoder::new().decode(&mut bad, &mut out).is_err());
    }

    #[tokio::test]
    async fn exchanges_over_a_stream() {
        let (a, mut server) = tokio::io::duplex(4096);
        let mut conn = HttpConn::new(CountingStream::new(a, Arc::new(Window::new())), "h:1");
        let responder = tokio::spawn(async move {
            let mut req = vec![0u8; 1024];
            let n = server.read(&mut req).await.unwrap();
            server
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
                .await
                .unwrap();
            server.write_all(b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\n").await.unwrap();
            String::from_utf8(req[..n].to_vec()).unwrap()
        });
        let r = conn.get("/poll?after=1", "").await.unwrap();
        assert_eq!((r.head.status, &r.body[..]), (200, &b"abc"[..]));
        let r = conn.read_response().await.unwrap();
        assert_eq!((r.head.status, &r.body[..]), (404, &b"no"[..]));
        let request = "GET /poll?after=1 HTTP/1.1\r\nHost: h:1\r\n\r\n";
        assert_eq!(responder.await.unwrap(), request);
        let c = conn.stream().counts();
        assert_eq!(c.total_up(), request.len() as u64);
        assert_eq!(c.total_down(), 41 + 66);
    }
}
