//! feedbench-netem: a packet-level network emulator for feedbench, in the style of
//! mahimahi (the kernel here has no `tc netem`).
//!
//! [`NetEnv::create`] makes a client network namespace `fbnet-<pid>` joined to the
//! current ("host") namespace by two TUN devices, `fbh<pid>` (host side, 198.19.0.1) and
//! `fbc<pid>` (moved into the namespace, 198.19.0.2), and starts a forwarder thread that
//! carries every packet between them through the link model. Clients live in the
//! namespace and bind their own source address from the pool 198.19.128.1 ..=
//! 198.19.255.254 ([`NetEnv::client_ip`]; the whole /17 is made local with an AnyIP
//! route, so no addresses are added one by one). The server stays in the host namespace
//! and listens on 198.19.0.1 (or any address).
//!
//! Link semantics ([`spec`] for the grammar, [`link`] for the model, `PROFILES.md` for
//! the named profiles and their sources):
//! - `rtt`: two-way propagation delay; each direction gets `rtt / 2`.
//! - `jitter=J`: each packet's one-way delay is uniform in `[rtt/2 - J, rtt/2 + J]`
//!   (`J ≤ rtt/2`), and a packet never overtakes one sent before it on the same client
//!   link (one serial path): dense traffic therefore sees delays near `rtt/2 + J`.
//! - `down`/`up`: IP-level rate of the client's access link, host → client and client
//!   → host; serialization takes `size × 8 / rate`, FIFO.
//! - `queue`: bytes waiting for serialization beyond which packets are dropped
//!   (drop-tail); default `max(64 KB, rate × 100 ms)` per direction.
//! - `loss`: independent Bernoulli drop per packet, each direction, from a seeded RNG.
//! - `mix(30%:…|50%:…|20%:…)`: client `i` gets a class by smooth weighted round-robin
//!   over its index, so every 10 consecutive clients of that mix hold 3, 5 and 2.
//! - `shared=R`: one bottleneck at the server for all clients; down packets cross it
//!   before their access link, up packets after.
//!
//! Counting caveat: the counters see every packet routed between the host and
//! 198.19.0.0/16, including strays of connections from an earlier env (a host-side socket
//! in TIME_WAIT or LAST_ACK answering into the new namespace, which resets it). Take exact
//! windows after the previous run's connections are gone, or close them with a reset
//! (`SO_LINGER` 0) as `tests/netem.rs` does.
//!
//! Code map: [`spec`] and [`profiles`] parse what users write; [`link`] is the pure model
//! (time passed in); [`packet`] reads headers and detects TCP retransmissions;
//! [`counters`] holds the figures; `tun`, `ns` and `emulator` are the system side.
//!
//! Architecture invariant: the model never reads a clock and the forwarder thread is the
//! only writer of the model and the counters, so every figure is reproducible from the
//! seed and the packet order.
//!
//! Measured on the 2-core development machine (`cargo run --release -p feedbench-netem
//! --example measure`): see `PROFILES.md`, section "Emulator accuracy and capacity".

pub mod counters;
mod emulator;
pub mod error;
pub mod link;
mod ns;
pub mod packet;
pub mod profiles;
pub mod spec;
mod tun;

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use counters::{DirCounters, NetCounters};
pub use error::NetError;
pub use ns::{HOST_IP, LOCK_PATH, POOL_SIZE};
pub use spec::NetSpec;

use emulator::Forwarder;
use link::LinkModel;
use ns::Names;

/// What [`NetEnv::create`] needs.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// The link specification.
    pub spec: NetSpec,
    /// Seed for loss and jitter; the same seed and packet order give the same drops.
    pub seed: u64,
}

/// A live client namespace, its link and the forwarder thread. Dropping it tears
/// everything down (best effort); [`NetEnv::close`] does the same and reports errors.
pub struct NetEnv {
    /// The names of the namespace and devices.
    names: Names,
    /// The forwarder; `None` once closed.
    forwarder: Option<Forwarder>,
    /// The client namespace, for `setns` (shared with spawned commands' `pre_exec`).
    ns_fd: Arc<OwnedFd>,
    /// The lock on [`LOCK_PATH`], held for the env's life.
    lock: Option<File>,
}

impl NetEnv {
    /// Creates the namespace, devices, addresses and routes and starts the forwarder.
    ///
    /// Takes the machine-wide lock first and removes stale leftovers; on any error after
    /// that, whatever was made is removed again.
    pub fn create(opts: NetOptions) -> Result<NetEnv, NetError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(NetError::NotRoot);
        }
        let lock = ns::take_lock()?;
        let pid = std::process::id();
        // With the lock held, any name of ours is a leftover of an earlier env.
        ns::cleanup(Some(pid))?;
        let names = Names::for_pid(pid);
        match Self::build(&names, &opts) {
            Ok((forwarder, ns_fd)) => Ok(NetEnv {
                names,
                forwarder: Some(forwarder),
                ns_fd: Arc::new(ns_fd),
                lock: Some(lock),
            }),
            Err(e) => {
                // The TUN devices went with their descriptors; the namespace may remain.
                let _ = ns::remove(&names);
                Err(e)
            }
        }
    }

    fn build(names: &Names, opts: &NetOptions) -> Result<(Forwarder, OwnedFd), NetError> {
        let host = tun::open_tun(&names.host_link)?;
        let client = tun::open_tun(&names.client_link)?;
        ns::configure(names)?;
        let ns_fd = ns::open_ns(&format!("/run/netns/{}", names.ns))?;
        let model = LinkModel::new(&opts.spec, POOL_SIZE, opts.seed);
        let forwarder = Forwarder::start(host, client, model)?;
        Ok((forwarder, ns_fd))
    }

    /// The server's address in the host namespace, 198.19.0.1.
    pub fn host_ip(&self) -> Ipv4Addr {
        HOST_IP
    }

    /// Client `index`'s source address: 198.19.128.1 + `index`. Its link class follows
    /// from the index. Panics if `index >= POOL_SIZE` (32,766), a caller's bug.
    pub fn client_ip(&self, index: usize) -> Ipv4Addr {
        assert!(
            index < POOL_SIZE,
            "client index {index} beyond the pool of {POOL_SIZE}"
        );
        Ipv4Addr::from(u32::from(ns::POOL_FIRST) + index as u32)
    }

    /// The namespace's name, `fbnet-<pid>` (for `ip netns exec`).
    pub fn ns_name(&self) -> &str {
        &self.names.ns
    }

    /// Replaces the link parameters (new per-client pipes, empty queues, a new RNG) and
    /// returns once the forwarder has taken them. Packets already held keep their times.
    pub fn set_spec(&self, spec: NetSpec, seed: u64) -> Result<(), NetError> {
        let model = LinkModel::new(&spec, POOL_SIZE, seed);
        self.forwarder()?.set_model(model)
    }

    /// A snapshot of the counters. Packets a TUN device dropped before the forwarder could
    /// read them (its ring full) count as `drops_overflow` of their direction: the host
    /// side's device carries the down direction, the client side's the up direction.
    pub fn counters(&self) -> NetCounters {
        let mut c = self
            .forwarder
            .as_ref()
            .map_or_else(NetCounters::default, Forwarder::counters);
        c.down.drops_overflow += ns::device_drops(&self.names.host_link);
        c.up.drops_overflow += self.client_device_drops();
        c
    }

    /// The client-side device's drops, read from inside the namespace (its statistics are
    /// only visible there): enter, read, return, as [`NetEnv::tcp_socket_v4`] does.
    fn client_device_drops(&self) -> u64 {
        let Ok(home) = File::open("/proc/thread-self/ns/net") else {
            return 0;
        };
        if ns::enter(self.ns_fd.as_fd()).is_err() {
            return 0;
        }
        let drops = ns::device_drops(&self.names.client_link);
        if let Err(e) = ns::enter(home.as_fd()) {
            panic!("cannot return to the thread's network namespace: {e}");
        }
        drops
    }

    /// The largest lateness of a delivered packet (µs past its departure time) since the
    /// last call, starting a new maximum: call it when a window opens and again when it
    /// closes for the window's own maximum. ([`NetCounters::late_max_us`] is the maximum
    /// since the last call as well.)
    pub fn take_late_max_us(&self) -> u64 {
        self.forwarder
            .as_ref()
            .map_or(0, Forwarder::take_late_max_us)
    }

    fn forwarder(&self) -> Result<&Forwarder, NetError> {
        self.forwarder
            .as_ref()
            .ok_or_else(|| NetError::Forwarder("has stopped".into()))
    }

    /// A nonblocking IPv4 TCP socket created in the client namespace.
    ///
    /// The calling thread enters the namespace, creates the socket and returns to the
    /// namespace it was in (three `setns`-related system calls and an `open`; see
    /// `PROFILES.md` for the measured cost). Panics if the thread cannot return to its
    /// namespace, since it would otherwise go on silently in the client's.
    pub fn tcp_socket_v4(&self) -> io::Result<OwnedFd> {
        let home = File::open("/proc/thread-self/ns/net")?;
        ns::enter(self.ns_fd.as_fd())?;
        // SAFETY: socket takes plain flags; the result is checked below.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        let made = io::Error::last_os_error();
        if let Err(e) = ns::enter(home.as_fd()) {
            panic!("cannot return to the thread's network namespace: {e}");
        }
        if fd < 0 {
            return Err(made);
        }
        // SAFETY: `fd` was just returned by socket and is owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// A blocking TCP connection from client `index`'s address to `dst`, made in the
    /// client namespace, waiting at most `timeout` for the handshake.
    pub fn connect_tcp(
        &self,
        index: usize,
        dst: SocketAddrV4,
        timeout: Duration,
    ) -> io::Result<TcpStream> {
        let fd = self.tcp_socket_v4()?;
        sock::bind(&fd, SocketAddrV4::new(self.client_ip(index), 0))?;
        sock::connect(&fd, dst, timeout)?;
        let stream = TcpStream::from(fd);
        stream.set_nonblocking(false)?;
        Ok(stream)
    }

    /// A command that runs in the client namespace (it enters it between fork and exec),
    /// with `FEEDBENCH_NET_HOST=198.19.0.1` and `FEEDBENCH_NET_CLIENT_ADDRS` set to the
    /// pool as a range, `198.19.128.1-198.19.255.254`.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        let last = Ipv4Addr::from(u32::from(ns::POOL_FIRST) + POOL_SIZE as u32 - 1);
        cmd.env("FEEDBENCH_NET_HOST", HOST_IP.to_string());
        cmd.env(
            "FEEDBENCH_NET_CLIENT_ADDRS",
            format!("{}-{last}", ns::POOL_FIRST),
        );
        let ns_fd = Arc::clone(&self.ns_fd);
        // SAFETY: the closure only calls setns, which is async-signal-safe, on a
        // descriptor the Arc keeps open for the command's life.
        unsafe {
            cmd.pre_exec(move || ns::enter(ns_fd.as_fd()));
        }
        cmd
    }

    /// Stops the forwarder (its TUN devices, addresses and routes vanish), deletes the
    /// namespace and releases the lock.
    pub fn close(mut self) -> Result<(), NetError> {
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), NetError> {
        let stopped = match self.forwarder.take() {
            Some(mut f) => f.stop(),
            None => Ok(()),
        };
        let removed = ns::remove(&self.names);
        self.lock = None;
        stopped.and(removed)
    }
}

impl Drop for NetEnv {
    fn drop(&mut self) {
        if self.forwarder.is_some() || self.lock.is_some() {
            // Best effort: Drop cannot report; `close` is the checked path.
            let _ = self.teardown();
        }
    }
}

/// Removes leftovers of dead processes (`fbnet-<pid>` namespaces, `fbh<pid>` links);
/// returns what it removed. [`NetEnv::create`] calls it.
pub fn cleanup_stale() -> Result<Vec<String>, NetError> {
    ns::cleanup_stale()
}

/// TCP connect times from client 0's address in the namespace to `host_ip:port`, `n`
/// times in sequence (each about one RTT). The listener need not call `accept`.
pub fn probe_rtt(env: &NetEnv, port: u16, n: usize) -> io::Result<Vec<Duration>> {
    let dst = SocketAddrV4::new(env.host_ip(), port);
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let stream = env.connect_tcp(0, dst, Duration::from_secs(15))?;
        times.push(start.elapsed());
        drop(stream);
    }
    Ok(times)
}

/// Raw socket calls std does not offer for an unconnected socket.
mod sock {
    use super::*;

    fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }

    const LEN: libc::socklen_t = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;

    /// Binds to `addr`.
    pub fn bind(fd: &OwnedFd, addr: SocketAddrV4) -> io::Result<()> {
        let sa = sockaddr(addr);
        // SAFETY: `sa` is a valid sockaddr_in of LEN bytes for the call's duration.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                LEN,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Connects a nonblocking socket, waiting up to `timeout`.
    pub fn connect(fd: &OwnedFd, addr: SocketAddrV4, timeout: Duration) -> io::Result<()> {
        let sa = sockaddr(addr);
        // SAFETY: as in `bind`.
        let rc = unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_in).cast(),
                LEN,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(err);
        }
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one live pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut so_error: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: out-pointers to a live c_int and its length.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut so_error as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        if so_error != 0 {
            return Err(io::Error::from_raw_os_error(so_error));
        }
        Ok(())
    }
}
