//! The load generator's TLS: the client configuration every connection of a run shares,
//! and stable names for what goes wrong.
//!
//! rustls with the *ring* provider (see the workspace manifest). Trust is explicit: the
//! certificates of a `--ca` PEM file, or, only with `--insecure`, a verifier that accepts
//! any certificate (signatures are still checked with the certificate's key, so the
//! handshake costs what a verifying one does). Session resumption is one client-side store
//! sized for every client of the run, or disabled. ALPN offers exactly the HTTP version the
//! scenario speaks. With `SSLKEYLOGFILE` set, the session secrets are written there.
//!
//! Errors while connecting are data like any other failed request: [`tls_error_kind`]
//! names them (`tls_unknown_ca`, `tls_bad_certificate`, `tls_not_tls`, ...) for the
//! results' error counts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, InvalidMessage, RootCertStore,
};

/// Where trust in the server's certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The certificates in this PEM file (`--ca FILE`).
    Ca(PathBuf),
    /// Any certificate (`--insecure`).
    Insecure,
}

/// What a TLS run's clients are configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Trust.
    pub trust: Trust,
    /// Session resumption on (one store for all clients) or off.
    pub resumption: bool,
}

impl Default for TlsOptions {
    /// Insecure with resumption on: what tests use; the CLI never defaults to insecure.
    fn default() -> Self {
        Self {
            trust: Trust::Insecure,
            resumption: true,
        }
    }
}

/// Why the TLS client cannot be set up (a setup error: exit 2 at the CLI).
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    /// The CA file cannot be read or holds no certificate.
    #[error("--ca {path}: {reason}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An `https` target without `--ca` or `--insecure`.
    #[error("an https target needs --ca FILE (the server's certificate or its CA, PEM) or --insecure (accept any certificate)")]
    NoTrust,
    /// The target's host cannot be checked against a certificate.
    #[error("{0}")]
    Name(String),
    /// rustls refused the configuration.
    #[error("tls configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// ALPN protocol id of HTTP/1.1.
pub const ALPN_HTTP_1_1: &[u8] = b"http/1.1";
/// ALPN protocol id of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";

/// The ring provider every configuration uses.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the trust anchors of a PEM file; errors name the file.
pub fn load_ca(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let error = |reason: String| TlsSetupError::Ca {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(format!("cannot read it: {e}")))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| error(format!("not a PEM certificate file: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| error(format!("a certificate it holds is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(error("holds no PEM certificate".into()));
    }
    Ok(roots)
}

/// The client configuration for a run: `opts`' trust and resumption, ALPN `alpn`, a
/// session store for `n_clients` clients.
pub fn client_config(
    opts: &TlsOptions,
    alpn: &[u8],
    n_clients: usize,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match &opts.trust {
        Trust::Ca(path) => builder
            .with_root_certificates(load_ca(path)?)
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    // Writes the session secrets to the file `SSLKEYLOGFILE` names (the NSS key log format
    // curl and browsers write), and nothing without it: a packet capture can then be
    // decrypted (`scripts/verify-tls-pcap.sh`, Wireshark).
    config.key_log = Arc::new(rustls::KeyLogFile::new());
    config.resumption = if opts.resumption {
        // One store for the whole run, sized so that no client's session is evicted by
        // another's.
        Resumption::in_memory_sessions(n_clients.max(256))
    } else {
        Resumption::disabled()
    };
    Ok(Arc::new(config))
}

/// The name the certificate is checked against: the target's host (an IP address or a DNS
/// name, without the port).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let bare = match host.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => host,
    };
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| format!("{bare:?} is not a name TLS can check a certificate against: {e}"))
}

/// A short stable name for a TLS error, for the results' error counts.
pub fn tls_error_kind(e: &rustls::Error) -> &'static str {
    use rustls::Error as E;
    match e {
        // A certificate whose issuer is not trusted, or whose issuer's name matches a trusted
        // certificate that did not sign it (two self-signed certificates with the same
        // name, as generated ones often have): either way no trusted CA vouches for it.
        E::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
            "tls_unknown_ca"
        }
        E::InvalidCertificate(_) => "tls_bad_certificate",
        E::InvalidMessage(InvalidMessage::InvalidContentType)
        | E::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => "tls_not_tls",
        E::NoApplicationProtocol => "tls_no_alpn",
        E::AlertReceived(_) => "tls_alert",
        E::DecryptError => "tls_decrypt",
        _ => "tls_handshake",
    }
}

/// The TLS error inside an I/O error, if it carries one (tokio-rustls wraps them).
pub fn inner_tls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref()?.downcast_ref::<rustls::Error>()
}

/// A verifier that accepts every certificate: `--insecure` only. Handshake signatures are
/// still verified against the certificate's key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_drop_the_port() {
        assert_eq!(
            server_name("127.0.0.1:8443").unwrap(),
            ServerName::try_from("127.0.0.1").unwrap()
        );
        assert_eq!(
            server_name("localhost:1").unwrap(),
            ServerName::try_from("localhost").unwrap()
        );
        assert_eq!(
            server_name("[::1]:443").unwrap(),
            ServerName::try_from("::1").unwrap()
        );
    }

    #[test]
    fn ca_errors_name_the_file() {
        let missing = Path::new("/nonexistent/ca.pem");
        let e = load_ca(missing).unwrap_err().to_string();
        assert!(
            e.starts_with("--ca /nonexistent/ca.pem: cannot read it:"),
            "{e}"
        );
        let dir = std::env::temp_dir().join(format!("fb-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = load_ca(&empty).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("--ca {}: holds no PEM certificate", empty.display())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn error_kinds() {
        use rustls::Error as E;
        assert_eq!(
            tls_error_kind(&E::InvalidCertificate(CertificateError::UnknownIssuer)),
            "tls_unknown_ca"
        );
        assert_eq!(
            tls_error_kind(&E::InvalidCertificate(CertificateError::NotValidForName)),
            "tls_bad_certificate"
        );
        assert_eq!(
            tls_error_kind(&E::InvalidMessage(InvalidMessage::InvalidContentType)),
            "tls_not_tls"
        );
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, E::DecryptError);
        assert_eq!(
            inner_tls_error(&io).map(tls_error_kind),
            Some("tls_decrypt")
        );
    }
}
