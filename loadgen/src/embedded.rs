//! The embedded server: `feedbench serve` started as a child process for `feedbench run`.
//!
//! The child gets its own process group (a terminal's Ctrl-C reaches only `feedbench run`,
//! which then stops the server itself after saving results), dies with its parent
//! (`PR_SET_PDEATHSIG`), and is optionally pinned to a CPU set. Its first stdout line is
//! exactly `feedbench listening on http://ADDR` (`https://` when started with `--tls
//! --cert-out FILE`, the certificate its clients then trust); the rest of its stdout is drained so it
//! never blocks on a full pipe. Stopping sends SIGTERM and, after a bounded wait, SIGKILL.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The prefix of the server's first stdout line.
pub const LISTENING_PREFIX: &str = "feedbench listening on ";
/// How long the server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the server may take to exit after SIGTERM (it promises 2 s).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// Spawning failed.
    #[error("cannot start the server {exe}: {source}")]
    Spawn {
        /// The executable.
        exe: String,
        /// Why.
        source: std::io::Error,
    },
    /// The first line was not the expected one.
    #[error("the server did not announce its address (first line: {0:?})")]
    Announce(String),
    /// The server exited or went silent before announcing.
    #[error("the server did not start within {0:?}")]
    Timeout(Duration),
}

/// Where the embedded server listens and what protects its control endpoint.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// CPUs to pin the server to (and then as many worker threads); `None`: no pinning.
    pub cpus: Option<Vec<usize>>,
    /// The listen address: `127.0.0.1:0` normally, the host side of an emulated link
    /// (`198.19.0.1:0`) when the run emulates a network.
    pub addr: std::net::SocketAddr,
    /// Bearer token for `PUT /control/feed`, handed to the child in its environment (never on
    /// its command line); needed when `addr` is not a loopback address.
    pub control_token: Option<String>,
    /// Serve TLS with a self-signed certificate written to this file (`serve --tls
    /// --cert-out FILE`), which the clients trust; `None`: plaintext.
    pub tls_cert_out: Option<std::path::PathBuf>,
}

impl EmbeddedOptions {
    /// On a free loopback port, optionally pinned.
    pub fn loopback(cpus: Option<Vec<usize>>) -> Self {
        Self {
            cpus,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            control_token: None,
            tls_cert_out: None,
        }
    }
}

/// A running embedded server.
#[derive(Debug)]
pub struct EmbeddedServer {
    /// `http://ADDR` or `https://ADDR` as announced.
    pub url: String,
    /// The child's pid.
    pub pid: u32,
    /// Cancelled when the child has exited, for whatever reason.
    pub exited: CancellationToken,
    status: Arc<Mutex<Option<ExitStatus>>>,
    stop_tx: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl EmbeddedServer {
    /// Starts `exe serve --addr ADDR [--worker-threads K] [--tls --cert-out FILE]`, pinned
    /// to `opts.cpus` if given (and then with K = the number of those CPUs).
    pub async fn start(exe: &Path, opts: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        let cpus = opts.cpus;
        let mut cmd = Command::new(exe);
        cmd.args(["serve", "--addr", &opts.addr.to_string()]);
        if let Some(c) = &cpus {
            cmd.args(["--worker-threads", &c.len().to_string()]);
        }
        if let Some(cert) = &opts.tls_cert_out {
            cmd.arg("--tls").arg("--cert-out").arg(cert);
        }
        match &opts.control_token {
            Some(token) => cmd.env("FEEDBENCH_CONTROL_TOKEN", token),
            None => cmd.env_remove("FEEDBENCH_CONTROL_TOKEN"),
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let pin = cpus.clone();
        let pin = pin.map(|cpus| crate::sysinfo::cpu_set(&cpus));
        // SAFETY: the closure runs in the forked child before exec; it makes only raw
        // system calls (setpgid, prctl, sched_setaffinity, through rustix: no allocation, no
        // locks) on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::setpgid(None, None)?;
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))?;
                if let Some(set) = &pin {
                    rustix::thread::sched_setaffinity(None, set)?;
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| EmbeddedError::Spawn {
            exe: exe.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let Some(stdout) = child.stdout.take() else {
            return Err(EmbeddedError::Announce(String::new()));
        };
        let mut lines = BufReader::new(stdout).lines();
        let first = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(_) => return Err(EmbeddedError::Announce(String::new())),
            Err(_) => return Err(EmbeddedError::Timeout(START_TIMEOUT)),
        };
        let url = first
            .strip_prefix(LISTENING_PREFIX)
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .ok_or_else(|| EmbeddedError::Announce(first.clone()))?
            .trim()
            .to_string();
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let exited = CancellationToken::new();
        let status = Arc::new(Mutex::new(None));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(supervise(
            child,
            pid,
            stop_rx,
            exited.clone(),
            status.clone(),
        ));
        Ok(Self {
            url,
            pid,
            exited,
            status,
            stop_tx: Some(stop_tx),
            task,
        })
    }

    /// The exit status, once the child has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A shared handle to the exit status (filled in when the child exits).
    pub fn status_handle(&self) -> Arc<Mutex<Option<ExitStatus>>> {
        self.status.clone()
    }

    /// Stops the server: SIGTERM, then SIGKILL after a bounded wait. Returns its exit status.
    pub async fn stop(mut self) -> Option<ExitStatus> {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        self.exit_status()
    }
}

async fn supervise(
    mut child: Child,
    pid: u32,
    stop_rx: oneshot::Receiver<()>,
    exited: CancellationToken,
    status: Arc<Mutex<Option<ExitStatus>>>,
) {
    let result = tokio::select! {
        r = child.wait() => r.ok(),
        _ = stop_rx => {
            // Our own child's pid: it has not been reaped yet, because only this task
            // waits for it.
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
            }
            match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                Ok(r) => r.ok(),
                Err(_) => {
                    let _ = child.kill().await;
                    child.wait().await.ok()
                }
            }
        }
    };
    *status.lock().unwrap_or_else(|p| p.into_inner()) = result;
    exited.cancel();
}
