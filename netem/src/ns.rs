//! The client network namespace and its plumbing: the machine-wide lock, the `ip`
//! commands that set addresses and routes, entering the namespace, and cleanup.
//!
//! Names carry the owning pid (`fbnet-<pid>`, `fbh<pid>`, `fbc<pid>`), so a leftover of a
//! killed process is recognisable: [`cleanup_stale`] removes those whose pid is dead.
//! Addresses come only from 198.19.0.0/16 (inside the RFC 2544 benchmarking range; other
//! tools on this machine use 198.18.0.x).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::NetError;

/// The lock file: one emulated link per machine.
pub const LOCK_PATH: &str = "/run/feedbench-net.lock";
/// Host-side address, on `fbh<pid>`.
pub const HOST_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
/// The client namespace's own address, on `fbc<pid>` (the source of unbound sockets).
pub const CLIENT_NS_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 2);
/// First address of the client pool 198.19.128.0/17 (.0 is skipped).
pub const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(198, 19, 128, 1);
/// Addresses in the pool: 198.19.128.1 ..= 198.19.255.254.
pub const POOL_SIZE: usize = 32_766;

const NS_PREFIX: &str = "fbnet-";
const HOST_LINK_PREFIX: &str = "fbh";

/// The names one process uses.
#[derive(Debug, Clone)]
pub struct Names {
    /// The namespace, `fbnet-<pid>`.
    pub ns: String,
    /// The host-side TUN device, `fbh<pid>`.
    pub host_link: String,
    /// The client-side TUN device, `fbc<pid>`.
    pub client_link: String,
}

impl Names {
    /// The names for process `pid`.
    pub fn for_pid(pid: u32) -> Names {
        Names {
            ns: format!("{NS_PREFIX}{pid}"),
            host_link: format!("{HOST_LINK_PREFIX}{pid}"),
            client_link: format!("fbc{pid}"),
        }
    }
}

/// How long [`take_lock`] waits when the lock's recorded holder is dead (or has not yet
/// written its pid) before it reports the lock as held.
pub const LOCK_SETTLE: Duration = Duration::from_secs(2);

/// Takes the machine-wide lock and writes our pid into it; the lock lasts as long as the
/// returned file.
///
/// A run killed outright can leave its lock held for a few milliseconds after it has been
/// reaped: a child it was starting (an `ip` between fork and exec) still holds a copy of
/// the descriptor. Measured: with the CPU busy, a new run started right after the reap met
/// the lock 14 times in 60, and every time it was free 5 ms later. So a lock whose recorded
/// holder is dead is waited for, up to [`LOCK_SETTLE`]; one held by a live process is
/// refused at once.
pub fn take_lock() -> Result<File, NetError> {
    take_lock_at(Path::new(LOCK_PATH), LOCK_SETTLE)
}

/// [`take_lock`] on `path`, waiting at most `settle` for a dead holder's lock to go.
pub fn take_lock_at(path: &Path, settle: Duration) -> Result<File, NetError> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| match e.kind() {
            io::ErrorKind::PermissionDenied => NetError::NotRoot,
            _ => NetError::io(format!("open {}", path.display()), e),
        })?;
    let deadline = Instant::now() + settle;
    loop {
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(NetError::io(format!("lock {}", path.display()), err));
        }
        // A holder that has not yet written its pid reads as 0.
        let pid = read_pid(&mut file);
        if (pid != 0 && pid_alive(pid)) || Instant::now() >= deadline {
            return Err(NetError::LockHeld {
                path: path.display().to_string(),
                pid,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let write = |f: &mut File| -> io::Result<()> {
        f.set_len(0)?;
        f.rewind()?;
        writeln!(f, "{}", std::process::id())
    };
    write(&mut file).map_err(|e| NetError::io(format!("write {}", path.display()), e))?;
    Ok(file)
}

/// The pid the lock file records, 0 if none can be read.
fn read_pid(file: &mut File) -> u32 {
    let mut text = String::new();
    let read = file.rewind().and_then(|()| file.read_to_string(&mut text));
    match read {
        Ok(_) => text.trim().parse().unwrap_or(0),
        Err(_) => 0,
    }
}

/// Runs `ip` with `args`, or `ip [-n ns] -batch -` with `lines` on stdin if `args` is
/// empty; stderr becomes the error.
pub fn ip(netns: Option<&str>, args: &[&str], lines: &[String]) -> Result<(), NetError> {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["-n", ns]);
    }
    if args.is_empty() {
        cmd.args(["-batch", "-"]);
    } else {
        cmd.args(args);
    }
    let shown = format!("{cmd:?}").replace('"', "");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NetError::IpMissing)?;
    if let Some(mut stdin) = child.stdin.take() {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| NetError::io("write to ip -batch", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetError::io(format!("wait for {shown}"), e))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if stderr.contains("Operation not permitted") {
        return Err(NetError::NotRoot);
    }
    let command = match lines.is_empty() {
        true => shown,
        false => format!("{shown} <<< {}", lines.join("; ")),
    };
    Err(NetError::IpFailed { command, stderr })
}

/// Packets each TUN device holds for the forwarder to read (its `txqueuelen`, which also
/// sizes the device's ring). The default of 500 dropped packets before the emulator saw
/// them: one event to 1,000 clients is 1,000 packets written at once, and with the
/// forwarder sharing a CPU with the load generator the burst overflowed the ring, which
/// cost the unlucky clients a 200 ms retransmission timeout (ws at 1,000 clients over `lan`:
/// p99 212 ms). 32,768 holds one packet for every client the pool can have; what still
/// overflows is counted ([`device_drops`]).
pub const DEVICE_QUEUE: u32 = 32_768;

/// Packets a TUN device dropped on the way to the forwarder (its ring was full): the
/// `tx_dropped` of `/proc/thread-self/net/dev` in the namespace the calling thread is in.
pub fn device_drops(link: &str) -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/thread-self/net/dev") else {
        return 0;
    };
    text.lines()
        .find_map(|line| {
            let (name, stats) = line.split_once(':')?;
            if name.trim() != link {
                return None;
            }
            // Receive: bytes packets errs drop fifo frame compressed multicast; transmit:
            // bytes packets errs drop ...: the transmit drops are the 12th figure.
            stats.split_whitespace().nth(11)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Creates the namespace, moves the client TUN device into it, and sets addresses and
/// routes on both sides. The TUN devices must already exist.
pub fn configure(names: &Names) -> Result<(), NetError> {
    let Names {
        ns,
        host_link: h,
        client_link: c,
    } = names;
    ip(None, &["netns", "add", ns], &[])?;
    let host = [
        format!("link set {c} netns {ns}"),
        format!("link set {h} mtu 1500 txqueuelen {DEVICE_QUEUE} up"),
        format!("addr add {HOST_IP}/32 dev {h}"),
        format!("route add 198.19.0.0/16 dev {h}"),
    ];
    ip(None, &[], &host)?;
    let client = [
        "link set lo up".to_string(),
        format!("link set {c} mtu 1500 txqueuelen {DEVICE_QUEUE} up"),
        format!("addr add {CLIENT_NS_IP}/32 dev {c}"),
        format!("route add {HOST_IP} dev {c}"),
        format!("route add default dev {c} src {CLIENT_NS_IP}"),
        // AnyIP: the whole pool is local, so each client binds its own source address.
        "route add local 198.19.128.0/17 dev lo".to_string(),
    ];
    ip(Some(ns), &[], &client)
}

/// Deletes our namespace if it exists; the TUN devices go with their descriptors.
pub fn remove(names: &Names) -> Result<(), NetError> {
    if ns_exists(&names.ns) {
        ip(None, &["netns", "del", &names.ns], &[])?;
    }
    Ok(())
}

fn ns_exists(name: &str) -> bool {
    fs::metadata(format!("/run/netns/{name}")).is_ok()
}

fn pid_alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks for the process; nothing is sent.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Names in `dir` of the form `<prefix><pid>` whose pid is dead (or is `also`).
fn stale_in(dir: &str, prefix: &str, also: Option<u32>) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for entry in entries.flatten().take(100_000) {
        let name = entry.file_name().to_string_lossy().to_string();
        let pid = name
            .strip_prefix(prefix)
            .and_then(|p| p.parse::<u32>().ok());
        match pid {
            Some(pid) if Some(pid) == also || !pid_alive(pid) => stale.push(name),
            _ => {}
        }
    }
    stale
}

/// Removes leftovers of dead processes: `fbnet-<pid>` namespaces and `fbh<pid>` links
/// whose pid is not alive. Returns what it removed (`netns X`, `link Y`). Idempotent.
pub fn cleanup_stale() -> Result<Vec<String>, NetError> {
    cleanup(None)
}

/// [`cleanup_stale`], also removing this process's own names (`own` = our pid), which
/// only a lock holder may do: with the lock held nothing of ours can be live.
pub fn cleanup(own: Option<u32>) -> Result<Vec<String>, NetError> {
    let mut removed = Vec::new();
    for ns in stale_in("/run/netns", NS_PREFIX, own) {
        let path = format!("/run/netns/{ns}");
        gone_or(ip(None, &["netns", "del", &ns], &[]), &path)?;
        removed.push(format!("netns {ns}"));
    }
    for link in stale_in("/sys/class/net", HOST_LINK_PREFIX, own) {
        // A link of a dead process normally vanishes with its descriptor, but the kernel
        // unregisters it a moment after the process is reaped: it may go between the
        // listing and the `ip link del`, which is then no failure.
        let path = format!("/sys/class/net/{link}");
        gone_or(ip(None, &["link", "del", &link], &[]), &path)?;
        removed.push(format!("link {link}"));
    }
    Ok(removed)
}

/// A removal's result, where a failure counts only if `path` still exists (the thing went
/// by itself meanwhile otherwise).
fn gone_or(result: Result<(), NetError>, path: &str) -> Result<(), NetError> {
    match result {
        Err(_) if !std::path::Path::new(path).exists() => Ok(()),
        other => other,
    }
}

/// Opens a namespace file (`/run/netns/X` or `/proc/thread-self/ns/net`) for `setns`.
pub fn open_ns(path: &str) -> Result<OwnedFd, NetError> {
    File::open(path)
        .map(OwnedFd::from)
        .map_err(|e| NetError::io(format!("open {path}"), e))
}

/// Moves the calling thread into the network namespace `ns`.
pub fn enter(ns: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: setns takes a descriptor and a flag; it affects only the calling thread's
    // network namespace.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pid no process can have (above the largest `pid_max`, 2^22).
    const DEAD_PID: u32 = 4_194_305;

    fn lock_file(name: &str, pid: u32) -> (std::path::PathBuf, File) {
        let path = std::env::temp_dir().join(format!("fb-lock-{}-{name}", std::process::id()));
        fs::write(&path, format!("{pid}\n")).unwrap();
        let held = File::open(&path).unwrap();
        // SAFETY: flock on a descriptor the test owns.
        let rc = unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        assert_eq!(rc, 0);
        (path, held)
    }

    #[test]
    fn a_live_holder_is_refused_at_once_with_its_pid() {
        let me = std::process::id();
        let (path, _held) = lock_file("live", me);
        let start = Instant::now();
        let settle = Duration::from_secs(30);
        match take_lock_at(&path, settle) {
            Err(NetError::LockHeld { pid, .. }) => assert_eq!(pid, me),
            other => panic!("expected LockHeld, got {other:?}"),
        }
        assert!(start.elapsed() < settle, "waited for a live holder");
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn a_dead_holders_lock_is_waited_for_and_then_ours() {
        let (path, held) = lock_file("dead", DEAD_PID);
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(held);
        });
        let mut file = take_lock_at(&path, Duration::from_secs(30)).unwrap();
        release.join().unwrap();
        assert_eq!(read_pid(&mut file), std::process::id());
        let _ = fs::remove_file(&path);
    }

    #[test]
    fn a_dead_holders_lock_still_held_after_the_wait_is_refused() {
        let (path, _held) = lock_file("stuck", DEAD_PID);
        match take_lock_at(&path, Duration::from_millis(50)) {
            Err(NetError::LockHeld { pid, .. }) => assert_eq!(pid, DEAD_PID),
            other => panic!("expected LockHeld, got {other:?}"),
        }
        let _ = fs::remove_file(&path);
    }
}
