//! The protocol stack a scenario's clients speak: TLS or not, HTTP/1.1 or HTTP/2, how
//! many clients share an HTTP/2 connection, TLS session resumption.
//!
//! One spelling everywhere (CLI, suites, results): `tls` `off`|`on`, `http` `1.1`|`2`.

use std::fmt;
use std::str::FromStr;

use feedbench_results::{HTTP_1_1, HTTP_2};

use crate::tls::{ALPN_H2, ALPN_HTTP_1_1};

/// Whether the load generator speaks WebSocket over HTTP/2 (RFC 8441 extended CONNECT,
/// `h2::ws`). Were it not, `--http 2 --transport ws` would be a usage error and suite cells
/// of ws over HTTP/2 would be dropped with a note.
pub const WS_OVER_H2: bool = true;

/// The HTTP version of the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HttpVersion {
    /// HTTP/1.1 (and the WebSocket upgrade from it).
    #[default]
    Http1,
    /// HTTP/2: by ALPN over TLS, with prior knowledge (h2c) in plaintext.
    Http2,
}

impl HttpVersion {
    /// `1.1` or `2`, as the CLI, suites and results spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpVersion::Http1 => HTTP_1_1,
            HttpVersion::Http2 => HTTP_2,
        }
    }

    /// The ALPN protocol id TLS offers for it.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            HttpVersion::Http1 => ALPN_HTTP_1_1,
            HttpVersion::Http2 => ALPN_H2,
        }
    }
}

impl fmt::Display for HttpVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for HttpVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "1.1" => Ok(HttpVersion::Http1),
            "2" => Ok(HttpVersion::Http2),
            other => Err(format!("http {other:?} is not 1.1 or 2")),
        }
    }
}

/// The stack of one scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackSpec {
    /// TLS (`https`/`wss`) or plaintext.
    pub tls: bool,
    /// HTTP version.
    pub http: HttpVersion,
    /// Clients multiplexed on one HTTP/2 connection (client `i` on connection `i / N`);
    /// 1 over HTTP/1.1.
    pub streams_per_connection: u32,
    /// TLS session resumption (one store for all clients); ignored in plaintext.
    pub tls_resumption: bool,
}

impl Default for StackSpec {
    /// Plaintext HTTP/1.1, one connection per client, resumption on (when TLS is).
    fn default() -> Self {
        Self {
            tls: false,
            http: HttpVersion::Http1,
            streams_per_connection: 1,
            tls_resumption: true,
        }
    }
}

impl StackSpec {
    /// The scenario name's suffix: empty for plaintext HTTP/1.1, else `-tls`, `-h2`,
    /// `-spc4`, `-nores` as they apply (in that order).
    pub fn name_suffix(&self) -> String {
        let mut s = String::new();
        if self.tls {
            s.push_str("-tls");
        }
        if self.http == HttpVersion::Http2 {
            s.push_str("-h2");
        }
        if self.streams_per_connection > 1 {
            s.push_str(&format!("-spc{}", self.streams_per_connection));
        }
        if self.tls && !self.tls_resumption {
            s.push_str("-nores");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!("1.1".parse::<HttpVersion>(), Ok(HttpVersion::Http1));
        assert_eq!("2".parse::<HttpVersion>(), Ok(HttpVersion::Http2));
        assert!("3".parse::<HttpVersion>().is_err());
        assert_eq!(HttpVersion::Http2.to_string(), "2");
        assert_eq!(StackSpec::default().name_suffix(), "");
        let s = StackSpec {
            tls: true,
            http: HttpVersion::Http2,
            streams_per_connection: 4,
            tls_resumption: false,
        };
        assert_eq!(s.name_suffix(), "-tls-h2-spc4-nores");
    }
}
