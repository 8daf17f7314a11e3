//! The crate's error type, [`NetError`]: one variant per thing a caller (the CLI) reports
//! differently. Every variant maps to the CLI's setup-failure exit code 2.

use std::io;

/// Why an emulated network could not be created, reconfigured or torn down.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The process lacks the privilege to create namespaces and TUN devices.
    #[error("needs root (CAP_NET_ADMIN) to create network namespaces and TUN devices")]
    NotRoot,
    /// `/dev/net/tun` does not exist (no TUN support in this kernel or container).
    #[error("/dev/net/tun is missing: the kernel or container offers no TUN devices")]
    TunMissing,
    /// The `ip` program (iproute2) could not be run.
    #[error("cannot run `ip` (iproute2): {0}")]
    IpMissing(#[source] io::Error),
    /// An `ip` command exited unsuccessfully.
    #[error("`{command}` failed: {stderr}")]
    IpFailed {
        /// The command line, as run.
        command: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// Another process holds the one-emulated-link-per-machine lock.
    #[error("another emulated network is live: {path} is locked by pid {pid}")]
    LockHeld {
        /// The lock file.
        path: String,
        /// The pid written into the lock file by its holder (0 if unreadable).
        pid: u32,
    },
    /// A link specification did not parse or failed validation.
    #[error("bad network spec: {0}")]
    Spec(String),
    /// A system call failed; `what` names the step.
    #[error("{what}: {source}")]
    Io {
        /// The step that failed, e.g. "open /dev/net/tun".
        what: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The forwarder thread did not answer in time or has stopped.
    #[error("the forwarder thread {0}")]
    Forwarder(String),
}

impl NetError {
    /// Wraps an I/O error with the step it happened in.
    pub(crate) fn io(what: impl Into<String>, source: io::Error) -> Self {
        NetError::Io {
            what: what.into(),
            source,
        }
    }
}
