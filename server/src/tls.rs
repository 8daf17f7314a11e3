//! TLS for `serve --tls`: the certificate (generated at start, or read from PEM files),
//! the rustls configuration, and the accept step of a TLS connection.
//!
//! Choices, and why:
//! - rustls with the ring provider (see the workspace `Cargo.toml`); TLS 1.3 and 1.2, the
//!   provider's default suites; ALPN `h2` then `http/1.1`.
//! - Resumption with stateless TLS 1.3 tickets (ring's `Ticketer`: the session state is
//!   encrypted into the ticket, key rotated every 6 hours), so resuming thousands of clients
//!   costs the server no memory per client; rustls' stateful default would keep 256
//!   sessions, far fewer than a benchmark's clients. One ticket per handshake (rustls'
//!   default sends two): a client uses one per resumption and gets a fresh one each time,
//!   so the second would only add bytes to every handshake. The TLS 1.2 session cache stays
//!   rustls' small default.
//! - Every connection's first byte is looked at before the handshake: a client that speaks
//!   plain HTTP gets a `400` with a JSON body saying to use https (as nginx does), counted
//!   as `not_tls`.
//! - The handshake is bounded by `tls_handshake_timeout`; failures are counted by kind
//!   ([`ConnError`]), never logged above debug.
//!
//! Invariant: bytes stay counted at the socket (ciphertext) by the `Counted` below rustls;
//! the handshake's wire bytes are every byte moved before `accept` resolves (with TLS 1.3
//! the session ticket, which rustls sends with its last flight, included). During the
//! handshake the socket is read one TLS record at a time, so the client's first
//! application record, sent right behind its `Finished`, is never read (or counted) as
//! handshake.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{AlertDescription, HandshakeKind, ServerConfig as RustlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::stats::{ConnError, ConnTag, Counted, Stats};

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// What a client that speaks plain HTTP on the TLS port is told.
const NOT_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 73\r\nconnection: close\r\n\r\n{\"error\":\"this port speaks TLS: use https:// (a plain request was sent)\"}";

/// The TLS settings a server starts with: the rustls configuration and the certificate
/// clients should trust.
#[derive(Clone)]
pub struct TlsSettings {
    /// The rustls server configuration (certificate, ALPN, tickets).
    pub config: Arc<RustlsConfig>,
    /// The certificate in PEM (the file's whole chain when read from a file).
    pub cert_pem: String,
    /// SHA-256 of the leaf certificate's DER, as colon-separated upper-case hex.
    pub fingerprint: String,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// Why TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },
    /// A file held no PEM item of the kind wanted, or a broken one.
    #[error("{}: {what}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// The key does not belong to the certificate, or rustls refused the pair.
    #[error("{} and {}: {what}", cert.display(), key.display())]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        what: String,
    },
    /// Generating the self-signed certificate failed.
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(String),
    /// rustls refused the configuration (no ticketer, no protocol versions).
    #[error("cannot configure TLS: {0}")]
    Config(String),
}

impl TlsSettings {
    /// A self-signed certificate for `localhost`, `127.0.0.1`, `::1` and the bind address
    /// if it is a specific IP, made now with a fresh ECDSA P-256 key.
    pub fn self_signed(bind: SocketAddr) -> Result<TlsSettings, TlsError> {
        let mut names = vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ];
        let ip = bind.ip();
        if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
            names.push(ip.to_string());
        }
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let cert_der = made.cert.der().clone();
        let key_der = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let config = rustls_config(vec![cert_der.clone()], key_der)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(TlsSettings {
            config,
            cert_pem: made.cert.pem(),
            fingerprint: fingerprint(&cert_der),
        })
    }

    /// The certificate chain in `cert` and the private key in `key` (PEM files).
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsSettings, TlsError> {
        let cert_text = read(cert)?;
        let key_text = read(key)?;
        let parse = |path: &Path, what: String| TlsError::Parse {
            path: path.to_path_buf(),
            what,
        };
        let chain = CertificateDer::pem_slice_iter(&cert_text)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| parse(cert, format!("not a valid PEM certificate file: {e}")))?;
        let Some(leaf) = chain.first().cloned() else {
            return Err(parse(cert, "holds no PEM CERTIFICATE".into()));
        };
        // A DER that does not parse as a certificate is caught here rather than at the
        // first client's handshake.
        if let Err(e) = rustls::server::ParsedCertificate::try_from(&leaf) {
            return Err(parse(cert, format!("not a valid X.509 certificate: {e}")));
        }
        let key_der = PrivateKeyDer::from_pem_slice(&key_text)
            .map_err(|e| parse(key, format!("holds no valid PEM private key: {e}")))?;
        let config = rustls_config(chain, key_der).map_err(|e| TlsError::Pair {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            what: match e {
                rustls::Error::InconsistentKeys(_) => {
                    "the private key does not match the certificate".into()
                }
                other => other.to_string(),
            },
        })?;
        Ok(TlsSettings {
            config,
            cert_pem: String::from_utf8_lossy(&cert_text).into_owned(),
            fingerprint: fingerprint(&leaf),
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The rustls configuration for a chain and key: ALPN `h2`, `http/1.1`; stateless
/// tickets, one per handshake (see the module docs). `with_single_cert` checks that the
/// key matches the certificate.
fn rustls_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<RustlsConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = RustlsConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    config.send_tls13_tickets = 1;
    Ok(Arc::new(config))
}

/// SHA-256 of `der` as colon-separated upper-case hex (as `openssl x509 -fingerprint`).
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The TLS stream of an accepted connection, above its counted socket.
pub type Tls = TlsStream<Counted<TcpStream>>;

/// Takes a new connection through the TLS handshake, within `timeout`. A connection
/// whose first byte is not a TLS handshake record is answered with a `400` and closed;
/// every failure is counted by kind and gives `None`.
pub async fn accept(
    settings: &TlsSettings,
    stats: &Stats,
    mut stream: Counted<TcpStream>,
    tag: &ConnTag,
    timeout: Duration,
) -> Option<Tls> {
    let handshake = async {
        let mut first = [0u8; 1];
        match stream.get_ref().peek(&mut first).await {
            Ok(0) | Err(_) => return Err(ConnError::HandshakeEof),
            Ok(_) => {}
        }
        if first[0] != HANDSHAKE_RECORD {
            refuse_plaintext(&mut stream).await;
            return Err(ConnError::NotTls);
        }
        stream.cut_records(true);
        let mut tls = TlsAcceptor::from(settings.config.clone())
            .accept(stream)
            .await
            .map_err(|e| classify(&e))?;
        let app_in = application_record_read(&mut tls);
        tls.get_mut().0.cut_records(false);
        Ok((tls, app_in))
    };
    let result = match tokio::time::timeout(timeout, handshake).await {
        Ok(res) => res,
        Err(_) => Err(ConnError::HandshakeTimeout),
    };
    match result {
        Ok((tls, app_in)) => {
            let resumed = tls.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed);
            tag.handshake_done(resumed, app_in);
            Some(tls)
        }
        Err(kind) => {
            stats.count_error(kind);
            tracing::debug!("tls connection failed: {}", kind.key());
            None
        }
    }
}

/// The wire length of the application record tokio-rustls read after the client's
/// `Finished` (its handshake loop reads while rustls wants to, and rustls still wants to
/// once the handshake is done), or 0. Reads are cut at record boundaries, so that record
/// is exactly the last one read, and rustls holds its plaintext.
fn application_record_read(tls: &mut Tls) -> u64 {
    let (io, conn) = tls.get_mut();
    // Processing again only reports what is buffered: there is nothing new to process.
    match conn.process_new_packets() {
        Ok(state) if state.plaintext_bytes_to_read() > 0 => io.last_record_len() as u64,
        _ => 0,
    }
}

/// Answers a plain HTTP request on the TLS port with a `400` and closes. What the client
/// already sent is read first (one read), so that closing does not reset the connection
/// under the answer.
async fn refuse_plaintext(stream: &mut Counted<TcpStream>) {
    let mut sink = [0u8; 4096];
    let _ = stream.read(&mut sink).await;
    let _ = stream.write_all(NOT_TLS).await;
    let _ = stream.shutdown().await;
}

/// The kind of a failed handshake, from the error tokio-rustls returns.
fn classify(e: &io::Error) -> ConnError {
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::AlertReceived(alert)) => match alert {
            AlertDescription::UnknownCA => ConnError::UnknownCa,
            AlertDescription::BadCertificate
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateUnknown => ConnError::BadCertificate,
            _ => ConnError::Alert,
        },
        Some(_) => ConnError::Handshake,
        None => match e.kind() {
            io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => ConnError::HandshakeEof,
            _ => ConnError::Handshake,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_in_colon_hex() {
        // SHA-256 of the empty input.
        assert!(fingerprint(b"").starts_with("E3:B0:C4:42:98:FC:1C:14"));
        assert_eq!(fingerprint(b"x").len(), 32 * 3 - 1);
    }

    #[test]
    fn pem_round_trips() {
        let s = TlsSettings::self_signed("127.0.0.1:0".parse().unwrap()).unwrap();
        let der = CertificateDer::from_pem_slice(s.cert_pem.as_bytes()).unwrap();
        assert_eq!(fingerprint(&der), s.fingerprint);
    }

    #[test]
    fn alerts_are_classified() {
        let err = |e: rustls::Error| io::Error::new(io::ErrorKind::InvalidData, e);
        assert_eq!(
            classify(&err(rustls::Error::AlertReceived(
                AlertDescription::UnknownCA
            ))),
            ConnError::UnknownCa
        );
        assert_eq!(
            classify(&err(rustls::Error::AlertReceived(
                AlertDescription::BadCertificate
            ))),
            ConnError::BadCertificate
        );
        assert_eq!(
            classify(&err(rustls::Error::AlertReceived(
                AlertDescription::ProtocolVersion
            ))),
            ConnError::Alert
        );
        assert_eq!(
            classify(&io::Error::from(io::ErrorKind::UnexpectedEof)),
            ConnError::HandshakeEof
        );
    }
}
