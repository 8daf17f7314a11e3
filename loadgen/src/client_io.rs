//! A client connection's byte stream: a counted TCP socket, or TLS over one.
//!
//! [`ClientIo`] is what every transport's client reads and writes, whatever the stack: it
//! is `AsyncRead + AsyncWrite + Unpin + Send + 'static`, so a library that takes ownership
//! of its IO (h2, tokio-tungstenite) can have it, and its counters stay readable through
//! the `Arc` of [`ClientIo::counters`]. Over TLS the socket is counted below TLS (the
//! ciphertext, what a packet capture sees) and the plaintext above it, with every record
//! classified as application data or handshake (see [`crate::counting`]).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::counting::{ByteCounts, ConnCounters, Counted, CountingStream, PlaintextStream, Window};
use crate::http::io_error_kind;
use crate::tls::{inner_tls_error, tls_error_kind};

/// How long a TLS handshake may take before it counts as failed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The TLS stream of a client: rustls over the socket in record mode.
pub type TlsStream = tokio_rustls::client::TlsStream<CountingStream<TcpStream>>;

/// A client connection's stream: plaintext TCP or TLS, counted either way.
#[derive(Debug)]
pub enum ClientIo {
    /// A counted TCP socket.
    Plain(CountingStream<TcpStream>),
    /// TLS over a counted TCP socket, its plaintext counted too.
    Tls(Box<PlaintextStream<TlsStream>>),
}

/// What a TLS handshake agreed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// `TLSv1.3`, `TLSv1.2`.
    pub tls_version: String,
    /// `TLS13_AES_128_GCM_SHA256`, ...
    pub cipher_suite: String,
    /// The ALPN protocol, if one was agreed (`h2`, `http/1.1`).
    pub alpn: Option<String>,
    /// Whether the session was resumed.
    pub resumed: bool,
}

/// The TLS side of a target: the configuration every connection of a scenario shares and
/// the name the certificate is checked against.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The rustls configuration (trust, ALPN, the session store).
    pub config: Arc<ClientConfig>,
    /// The server's name.
    pub name: ServerName<'static>,
}

impl ClientIo {
    /// The connection's counters, readable after this stream moved into another owner.
    pub fn counters(&self) -> Arc<ConnCounters> {
        match self {
            ClientIo::Plain(s) => s.counters(),
            ClientIo::Tls(s) => s.counters().clone(),
        }
    }

    /// Bytes counted so far.
    pub fn counts(&self) -> ByteCounts {
        self.counters().counts()
    }

    /// Ends setup: later bytes count as steady state.
    pub fn end_setup(&self) {
        match self {
            ClientIo::Plain(s) => s.end_setup(),
            ClientIo::Tls(s) => s.counters().end_setup(),
        }
    }

    /// Moves `n` bytes read during setup to the steady state at `t_ns` (see
    /// [`ConnCounters::reattribute_setup_down`]).
    pub fn reattribute_setup_down(&self, n: u64, t_ns: u64) {
        match self {
            ClientIo::Plain(s) => s.reattribute_setup_down(n, t_ns),
            ClientIo::Tls(s) => s.counters().reattribute_setup_down(n, t_ns),
        }
    }

    /// Unix ns of the latest read from the socket that returned data (0 before any).
    pub fn last_read_ns(&self) -> u64 {
        match self {
            ClientIo::Plain(s) => s.last_read_ns(),
            ClientIo::Tls(s) => s.counters().last_read_ns(),
        }
    }

    /// Whether this is a TLS connection.
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientIo::Tls(_))
    }

    /// The ALPN protocol TLS agreed on (`None` in plaintext or when none was).
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            ClientIo::Plain(_) => None,
            ClientIo::Tls(s) => s.get_ref().get_ref().1.alpn_protocol(),
        }
    }

    /// Runs a TLS handshake over `tcp`, counted from its first byte; `setup` says whether
    /// its bytes are setup (the client's first connection) or steady state (a poll's own
    /// connection without keep-alive). On failure: the error's kind for the error counts
    /// ([`tls_error_kind`]; `tls_handshake_timeout`, `tls_handshake_closed`) and the bytes
    /// the attempt moved.
    pub async fn tls_handshake(
        tls: &TlsClient,
        tcp: TcpStream,
        window: Arc<Window>,
        setup: bool,
    ) -> Result<(ClientIo, Negotiated), (String, ByteCounts)> {
        let socket = CountingStream::tls_records(tcp, window);
        let counters = socket.counters();
        match handshake(tls, socket, setup).await {
            Ok(done) => Ok(done),
            Err(None) => Err(("tls_handshake_timeout".into(), counters.counts())),
            Err(Some(e)) => Err((handshake_error_kind(&e).into(), counters.counts())),
        }
    }

    /// [`ClientIo::tls_handshake`] with the error as an I/O error (a timeout included), for
    /// the harness's own connections.
    pub async fn tls_connect(
        tls: &TlsClient,
        tcp: TcpStream,
        window: Arc<Window>,
        setup: bool,
    ) -> io::Result<(ClientIo, Negotiated)> {
        let socket = CountingStream::tls_records(tcp, window);
        handshake(tls, socket, setup).await.map_err(|e| {
            e.unwrap_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no TLS handshake within {TLS_HANDSHAKE_TIMEOUT:?}"),
                )
            })
        })
    }
}

/// The handshake over a socket in record mode; `Err(None)` on timeout.
async fn handshake(
    tls: &TlsClient,
    socket: CountingStream<TcpStream>,
    setup: bool,
) -> Result<(ClientIo, Negotiated), Option<io::Error>> {
    if !setup {
        socket.end_setup();
    }
    let counters = socket.counters();
    let connect = TlsConnector::from(tls.config.clone()).connect(tls.name.clone(), socket);
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, connect).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(Some(e)),
        Err(_) => return Err(None),
    };
    counters.end_handshake();
    let conn = stream.get_ref().1;
    let resumed = conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    counters.count_handshake(resumed);
    let negotiated = Negotiated {
        tls_version: conn
            .protocol_version()
            .map_or("unknown".into(), version_name),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .and_then(|s| s.suite().as_str())
            .unwrap_or("unknown")
            .to_string(),
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        resumed,
    };
    Ok((
        ClientIo::Tls(Box::new(PlaintextStream::new(stream, counters))),
        negotiated,
    ))
}

impl Counted for ClientIo {
    fn counters(&self) -> Arc<ConnCounters> {
        ClientIo::counters(self)
    }

    fn last_read_ns(&self) -> u64 {
        ClientIo::last_read_ns(self)
    }
}

/// A TLS version as people write it (`TLSv1.3`); rustls' own names are `TLSv1_3`.
fn version_name(v: rustls::ProtocolVersion) -> String {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".into(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".into(),
        other => format!("{other:?}"),
    }
}

/// The kind of an error that ended a TLS handshake: the TLS error's, else `tls_handshake`
/// (the server closed or reset the connection mid-handshake).
fn handshake_error_kind(e: &io::Error) -> &'static str {
    match inner_tls_error(e) {
        Some(tls) => tls_error_kind(tls),
        None if io_error_kind(e) == "closed" => "tls_handshake_closed",
        None => "tls_handshake",
    }
}

impl AsyncRead for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientIo::Plain(s) => s.is_write_vectored(),
            ClientIo::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// What the h2 client and tokio-tungstenite ask of the IO they take over.
const _: () = {
    fn owned_io<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>() {}
    let _ = owned_io::<ClientIo>;
};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::counting::Phase;
    use crate::tls::{client_config, TlsOptions, Trust, ALPN_HTTP_1_1};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::ServerConfig;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_rustls::TlsAcceptor;

    /// A self-signed certificate for 127.0.0.1, its PEM, and a server configuration.
    pub(crate) fn server_config() -> (Arc<ServerConfig>, String) {
        let key = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let pem = key.cert.pem();
        let der = key.signing_key.serialize_der();
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![CertificateDer::from(key.cert.der().to_vec())],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der)),
                )
                .unwrap();
        (Arc::new(config), pem)
    }

    fn client(trust: Trust, resumption: bool) -> TlsClient {
        TlsClient {
            config: client_config(&TlsOptions { trust, resumption }, ALPN_HTTP_1_1, 4).unwrap(),
            name: crate::tls::server_name("127.0.0.1:1").unwrap(),
        }
    }

    /// A window that holds every instant from now on.
    fn open_window() -> Arc<Window> {
        let w = Arc::new(Window::new());
        w.set(1, u64::MAX);
        w
    }

    /// Serves `conns` TLS connections: each gets three 100-byte messages (one write, one
    /// record each), then the server reads 50 bytes and closes with close_notify.
    async fn serve(conns: usize) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let (config, _) = server_config();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let acceptor = TlsAcceptor::from(config);
            for _ in 0..conns {
                let (tcp, _) = listener.accept().await.unwrap();
                let mut tls = acceptor.accept(tcp).await.unwrap();
                for _ in 0..3 {
                    tls.write_all(&[b'x'; 100]).await.unwrap();
                    tls.flush().await.unwrap();
                }
                let mut got = [0u8; 50];
                tls.read_exact(&mut got).await.unwrap();
                tls.shutdown().await.unwrap();
            }
        });
        (addr, task)
    }

    /// One connection through [`serve`]: its counts and what was negotiated.
    async fn exchange(addr: std::net::SocketAddr, tls: &TlsClient) -> (ByteCounts, Negotiated) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (mut io, negotiated) = ClientIo::tls_handshake(tls, tcp, open_window(), false)
            .await
            .unwrap();
        let mut got = [0u8; 300];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [b'x'; 300]);
        io.write_all(&[b'y'; 50]).await.unwrap();
        io.flush().await.unwrap();
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        io.shutdown().await.unwrap();
        (io.counts(), negotiated)
    }

    #[tokio::test]
    async fn records_split_into_application_data_and_handshake() {
        let (addr, server) = serve(2).await;
        let tls = client(Trust::Insecure, true);
        let (c, negotiated) = exchange(addr, &tls).await;
        assert_eq!(negotiated.tls_version, "TLSv1.3");
        assert!(negotiated.cipher_suite.contains("GCM"), "{negotiated:?}");
        assert!(!negotiated.resumed);
        let m = Phase::Measure as usize;
        let split = c.split(0, false);
        // Three records of 100 bytes down, one of 50 up: 22 bytes each with TLS 1.3 AES-GCM.
        assert_eq!(c.plain_down[m], 300);
        assert_eq!(split.down.framing, 300);
        assert_eq!(split.down.tls, 3 * 22);
        assert_eq!(c.plain_up[m], 50);
        assert_eq!(split.up.tls, 22);
        // Everything else is the handshake (tickets and close_notify included).
        assert_eq!(split.down.handshake, c.down[m] - 300 - 66);
        assert_eq!(split.up.handshake, c.up[m] - 50 - 22);
        assert_eq!(split.down.sum(), c.down[m]);
        assert_eq!(split.up.sum(), c.up[m]);
        assert!(
            split.down.handshake > 500,
            "a certificate crossed: {split:?}"
        );
        assert_eq!((c.handshakes[m], c.resumed[m]), (1, 0));
        assert_eq!((c.setup_up, c.setup_down), (0, 0));

        // The second connection resumes the first one's session: fewer handshake bytes.
        let (r, negotiated) = exchange(addr, &tls).await;
        server.await.unwrap();
        assert!(negotiated.resumed);
        let resumed = r.split(0, false);
        assert_eq!(resumed.down.tls, 66);
        assert_eq!(resumed.up.tls, 22);
        assert_eq!((r.handshakes[m], r.resumed[m]), (1, 1));
        assert!(
            resumed.down.handshake + resumed.up.handshake
                < split.down.handshake + split.up.handshake,
            "resumed {resumed:?} vs full {split:?}"
        );
    }

    #[tokio::test]
    async fn a_wrong_ca_and_a_plaintext_server_are_counted_kinds() {
        let (addr, _server) = serve(1).await;
        let dir = std::env::temp_dir().join(format!("fb-client-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let other_ca = dir.join("other.pem");
        std::fs::write(&other_ca, server_config().1).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = client(Trust::Ca(other_ca), true);
        let (kind, counts) = ClientIo::tls_handshake(&tls, tcp, open_window(), true)
            .await
            .unwrap_err();
        assert_eq!(kind, "tls_unknown_ca");
        assert!(counts.setup_down > 0 && counts.setup_up > 0, "{counts:?}");
        std::fs::remove_dir_all(&dir).unwrap();

        // A plaintext HTTP server answers the ClientHello with a 400 and closes.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let plain = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await.unwrap();
            tcp.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
        });
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = client(Trust::Insecure, true);
        let (kind, _) = ClientIo::tls_handshake(&tls, tcp, open_window(), true)
            .await
            .unwrap_err();
        assert_eq!(kind, "tls_not_tls");
        plain.await.unwrap();
    }
}
