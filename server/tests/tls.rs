//! TLS, HTTP/2 and h2c against a live server: the TLS 1.3 handshake and exact byte
//! accounting below and above TLS, resumption, ALPN h2 for /poll and /sse, h2c prior
//! knowledge, WebSocket over HTTP/2 (RFC 8441), and the bad cases (plaintext on the TLS
//! port, a client that does not trust the certificate, a silent client, an HTTP/2 GET of
//! /ws, a broken HTTP/2 preface), each counted by kind and never a hang.

mod util;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use feedbench_server::{ServerHandle, TlsSettings};
use http::{Method, Request, StatusCode};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use util::{eventually, stat, CountingStream, BOUND};

async fn start_tls(tweak: impl FnOnce(&mut feedbench_server::ServerConfig)) -> ServerHandle {
    util::start(|c| {
        c.tls = Some(TlsSettings::self_signed(c.addr).expect("self-signed certificate"));
        tweak(c);
    })
    .await
}

/// A client configuration trusting `cert_pem`, offering `alpn`.
fn client_config(cert_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Connects over TLS through a counting socket.
async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<CountingStream>> {
    let tcp = CountingStream::connect(addr).await;
    let name = ServerName::try_from("localhost").unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

/// Reads one HTTP/1.1 response with a content-length; returns the status line, the whole
/// response's bytes and the body.
async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> (String, usize, Vec<u8>) {
    let mut buf = Vec::new();
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .expect("content-length")
                .parse()
                .unwrap();
            while buf.len() < end + 4 + len {
                let mut chunk = [0u8; 4096];
                let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
                    .await
                    .unwrap()
                    .unwrap();
                assert!(n > 0, "closed inside a body");
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head.lines().next().unwrap().to_string();
            return (status, buf.len(), buf[end + 4..].to_vec());
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(BOUND, s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed before a response head");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[tokio::test]
async fn tls13_poll_counts_wire_and_plaintext_bytes_exactly_and_resumes() {
    let settings = TlsSettings::self_signed("127.0.0.1:0".parse().unwrap()).unwrap();
    let pem = settings.cert_pem.clone();
    let server = util::start(|c| c.tls = Some(settings)).await;
    let addr = server.local_addr();
    server.hub().publish(&[1_000], 16);
    let config = client_config(&pem, &[b"http/1.1"]);
    let mut written = 0;
    let mut read = 0;
    for round in 0..2u64 {
        let mut tls = connect(addr, config.clone()).await.expect("handshake");
        let (_, conn) = tls.get_ref();
        assert_eq!(
            conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        assert_eq!(conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        let request = b"GET /poll?after=0 HTTP/1.1\r\nhost: localhost\r\n\r\n";
        tls.write_all(request).await.unwrap();
        tls.flush().await.unwrap();
        let (status, response_len, body) = read_response(&mut tls).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["events"][0]["seq"], 1);
        // close_notify, then wait for the server to close too.
        tls.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(BOUND, tls.read_to_end(&mut rest)).await;
        let counts = tls.get_ref().0.counts.clone();
        drop(tls);
        written += counts.written.load(std::sync::atomic::Ordering::Relaxed);
        read += counts.read.load(std::sync::atomic::Ordering::Relaxed);
        eventually("the server to close the connection", || async {
            stat(&server, "/connections/closed") == round + 1
        })
        .await;
        // Every wire byte, handshake included, is counted under the transport.
        assert_eq!(stat(&server, "/bytes/short_poll/in"), written);
        assert_eq!(stat(&server, "/bytes/short_poll/out"), read);
        // Above TLS: exactly the request and the response.
        let plain_in = stat(&server, "/tls/by_class/short_poll/plain_in");
        let plain_out = stat(&server, "/tls/by_class/short_poll/plain_out");
        assert_eq!(plain_in, (round + 1) * request.len() as u64);
        assert_eq!(plain_out % response_len as u64, 0);
        assert_eq!(
            stat(&server, "/tls/by_class/short_poll/handshakes"),
            round + 1
        );
    }
    // The second connection resumed with the ticket from the first.
    assert_eq!(stat(&server, "/tls/by_class/short_poll/resumed"), 1);
    assert_eq!(stat(&server, "/tls/resumed"), 1);
    let hs_in = stat(&server, "/tls/by_class/short_poll/handshake_in");
    let hs_out = stat(&server, "/tls/by_class/short_poll/handshake_out");
    assert!(hs_in > 0 && hs_out > 0 && hs_in < written && hs_out < read);
    // The rest is application records, 22 bytes each over their plaintext (TLS 1.3
    // AES-GCM: 5 header + 1 content type + 16 tag): per connection one request and one
    // answer, and the client's close_notify (2 bytes of alert in a 24-byte record).
    let plain_in = stat(&server, "/tls/by_class/short_poll/plain_in");
    let plain_out = stat(&server, "/tls/by_class/short_poll/plain_out");
    assert_eq!(written - hs_in, plain_in + 2 * (22 + 24));
    assert_eq!(read - hs_out, plain_out + 2 * 22);
    assert_eq!(stat(&server, "/connection_errors/handshake"), 0);
}

/// A TLS server and the PEM of the certificate it serves.
async fn start_tls_keeping_pem(
    tweak: impl FnOnce(&mut feedbench_server::ServerConfig),
) -> (ServerHandle, String) {
    let settings = TlsSettings::self_signed("127.0.0.1:0".parse().unwrap()).unwrap();
    let pem = settings.cert_pem.clone();
    let server = util::start(|c| {
        c.tls = Some(settings);
        tweak(c);
    })
    .await;
    (server, pem)
}

/// An HTTP/2 client connection over `io`.
async fn h2_client<T>(io: T) -> h2::client::SendRequest<Bytes>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, conn) = h2::client::handshake(io).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = conn.await;
    });
    send
}

async fn h2_get(send: &mut h2::client::SendRequest<Bytes>, path: &str) -> h2::RecvStream {
    let req = Request::get(format!("https://localhost{path}"))
        .body(())
        .unwrap();
    let mut ready = send.clone().ready().await.unwrap();
    let (resp, _) = ready.send_request(req, true).unwrap();
    let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.into_body()
}

async fn h2_body(mut body: h2::RecvStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = tokio::time::timeout(BOUND, body.data()).await.unwrap() {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    out
}

#[tokio::test]
async fn alpn_h2_serves_poll_and_sse() {
    let (server, pem) = start_tls_keeping_pem(|_| {}).await;
    let addr = server.local_addr();
    server.hub().publish(&[1_000], 16);
    let tls = connect(addr, client_config(&pem, &[b"h2", b"http/1.1"]))
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let mut send = h2_client(tls).await;
    let poll = h2_body(h2_get(&mut send, "/poll?after=0").await).await;
    let json: serde_json::Value = serde_json::from_slice(&poll).unwrap();
    assert_eq!(json["events"][0]["seq"], 1);
    // A second stream on the same connection: the SSE stream replays seq 1, then gets 2.
    let mut sse = h2_get(&mut send, "/sse?after=0").await;
    let first = tokio::time::timeout(BOUND, sse.data()).await.unwrap();
    let first = String::from_utf8(first.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.starts_with("id: 1\ndata: {\"seq\":1,"), "{first:?}");
    server.hub().publish(&[2_000], 16);
    let second = tokio::time::timeout(BOUND, sse.data()).await.unwrap();
    let second = String::from_utf8(second.unwrap().unwrap().to_vec()).unwrap();
    assert!(second.starts_with("id: 2\n"), "{second:?}");
    assert_eq!(stat(&server, "/http2/connections"), 1);
    assert_eq!(stat(&server, "/requests/sse"), 1);
    assert_eq!(stat(&server, "/requests/poll"), 1);
    assert_eq!(stat(&server, "/tls/handshakes"), 1);
}

#[tokio::test]
async fn h2c_prior_knowledge_works_on_the_plaintext_port() {
    let server = util::start(|_| {}).await;
    server.hub().publish(&[1_000], 16);
    let tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut send = h2_client(tcp).await;
    let body = h2_body(h2_get(&mut send, "/poll?after=0").await).await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["events"][0]["seq"], 1);
    let stats = h2_body(h2_get(&mut send, "/stats").await).await;
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert_eq!(stats["http2"]["h2c_connections"], 1);
    assert_eq!(stats["tls"]["enabled"], false);
}

#[tokio::test]
async fn h2_get_of_ws_is_a_json_400_and_extended_connect_streams_events() {
    let (server, pem) = start_tls_keeping_pem(|_| {}).await;
    let tls = connect(server.local_addr(), client_config(&pem, &[b"h2"]))
        .await
        .unwrap();
    let send = h2_client(tls).await;
    // A plain GET: the problem is named in a JSON body.
    let mut ready = send.clone().ready().await.unwrap();
    let (resp, _) = ready
        .send_request(Request::get("https://localhost/ws").body(()).unwrap(), true)
        .unwrap();
    let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let body = h2_body(resp.into_body()).await;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(
        json["error"].as_str().unwrap().contains("extended CONNECT"),
        "{json}"
    );
    // RFC 8441: the server offers extended CONNECT, and a CONNECT with :protocol websocket
    // gets a 200 and then WebSocket frames on the stream.
    let mut ready = send.clone().ready().await.unwrap();
    assert!(ready.is_extended_connect_protocol_enabled());
    let mut req = Request::builder()
        .method(Method::CONNECT)
        .uri("https://localhost/ws")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap();
    req.extensions_mut()
        .insert(h2::ext::Protocol::from_static("websocket"));
    let (resp, _tx) = ready.send_request(req, false).unwrap();
    let resp = tokio::time::timeout(BOUND, resp).await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut rx = resp.into_body();
    eventually("the websocket to open", || async {
        stat(&server, "/connections/open/ws") == 1
    })
    .await;
    server.hub().publish(&[1_000], 16);
    let mut frame = Vec::new();
    while frame.len() < 2 || frame.len() < 2 + usize::from(frame[1] & 0x7f) {
        let chunk = tokio::time::timeout(BOUND, rx.data()).await.unwrap();
        frame.extend_from_slice(&chunk.unwrap().unwrap());
    }
    // One unmasked text frame (FIN, opcode 1) holding the event JSON.
    assert_eq!(frame[0], 0x81);
    let payload = &frame[2..];
    assert_eq!(usize::from(frame[1]), payload.len());
    let json: serde_json::Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(json["seq"], 1);
}

#[tokio::test]
async fn plaintext_on_the_tls_port_gets_a_json_400() {
    let server = start_tls(|_| {}).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    tcp.write_all(b"GET /poll HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    let mut all = Vec::new();
    tokio::time::timeout(BOUND, tcp.read_to_end(&mut all))
        .await
        .expect("the server closes")
        .unwrap();
    let text = String::from_utf8(all).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(head.contains(&format!("content-length: {}", body.len())));
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert!(json["error"].as_str().unwrap().contains("https"));
    assert_eq!(stat(&server, "/connection_errors/not_tls"), 1);
    assert_eq!(stat(&server, "/tls/handshakes"), 0);
}

#[tokio::test]
async fn a_client_with_the_wrong_ca_is_counted_by_its_alert() {
    let server = start_tls(|_| {}).await;
    // A CA with another name, so the client finds no issuer for the server's certificate.
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "another ca");
    let other = params
        .self_signed(&rcgen::KeyPair::generate().unwrap())
        .unwrap()
        .pem();
    let Err(err) = connect(server.local_addr(), client_config(&other, &[])).await else {
        panic!("the client accepted a certificate it does not trust");
    };
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
    eventually("the alert to be counted", || async {
        stat(&server, "/connection_errors/unknown_ca") == 1
    })
    .await;
    assert_eq!(stat(&server, "/tls/handshakes"), 0);
    eventually("the connection to close", || async {
        stat(&server, "/connections/closed") == 1
    })
    .await;
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let server = start_tls(|c| c.tls_handshake_timeout = Duration::from_millis(200)).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(BOUND, tcp.read(&mut buf))
        .await
        .expect("closed, not left hanging")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(stat(&server, "/connection_errors/handshake_timeout"), 1);
}

#[tokio::test]
async fn a_broken_h2_connection_is_counted_as_a_protocol_error() {
    let server = util::start(|_| {}).await;
    let mut tcp = TcpStream::connect(server.local_addr()).await.unwrap();
    // The preface, then a DATA frame where a SETTINGS frame must come first.
    let mut bytes = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    bytes.extend_from_slice(&[0, 0, 4, 0, 0, 0, 0, 0, 1, b'x', b'x', b'x', b'x']);
    tcp.write_all(&bytes).await.unwrap();
    let mut all = Vec::new();
    let _ = tokio::time::timeout(BOUND, tcp.read_to_end(&mut all))
        .await
        .expect("the server closes");
    eventually("the protocol error to be counted", || async {
        stat(&server, "/connection_errors/h2_protocol") == 1
    })
    .await;
    assert_eq!(stat(&server, "/http2/h2c_connections"), 1);
}
