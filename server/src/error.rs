//! The server library's error type: what can stop a server from starting.

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A configuration value or combination is impossible.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Binding the listening socket failed.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address that was asked for.
        addr: std::net::SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Any other I/O failure during start-up.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}
