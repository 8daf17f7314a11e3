//! This process's resource use, read from the kernel's own accounting.
//!
//! CPU comes from `getrusage(RUSAGE_SELF)` (microsecond fields, user and system apart:
//! the one system call here that rustix does not offer); memory, threads and open
//! descriptors from `/proc/self`; read and write system calls from `/proc/self/io`
//! ([`crate::proc_counters`]) and allocations from [`crate::alloc_count`] when the binary
//! counts them. Nothing here estimates: a field the kernel does not
//! report is left out rather than guessed.

use serde::Serialize;

/// A snapshot of the process's resource use.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessSample {
    /// User CPU seconds since the process started.
    pub cpu_user_s: f64,
    /// System CPU seconds since the process started.
    pub cpu_sys_s: f64,
    /// Resident set size now (VmRSS), bytes.
    pub rss_bytes: u64,
    /// Peak resident set size (VmHWM), bytes.
    pub rss_peak_bytes: u64,
    /// Threads in the process.
    pub threads: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Voluntary context switches.
    pub ctx_switches_voluntary: u64,
    /// Involuntary context switches.
    pub ctx_switches_involuntary: u64,
    /// Read-family system calls (`/proc/self/io` `syscr`); absent where unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_syscalls: Option<u64>,
    /// Write-family system calls (`/proc/self/io` `syscw`); absent where unreadable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_syscalls: Option<u64>,
    /// Heap allocations since start; absent when the binary does not count them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<u64>,
    /// Bytes those allocations asked for; absent when the binary does not count them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<u64>,
}

/// Reads the current process's figures.
pub fn sample() -> ProcessSample {
    let mut out = ProcessSample::default();
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0).then_some(ru)
    };
    if let Some(ru) = usage {
        out.cpu_user_s = ru.ru_utime.tv_sec as f64 + ru.ru_utime.tv_usec as f64 / 1e6;
        out.cpu_sys_s = ru.ru_stime.tv_sec as f64 + ru.ru_stime.tv_usec as f64 / 1e6;
        out.ctx_switches_voluntary = ru.ru_nvcsw as u64;
        out.ctx_switches_involuntary = ru.ru_nivcsw as u64;
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        out.rss_bytes = status_kib(&status, "VmRSS:").unwrap_or(0) * 1024;
        out.rss_peak_bytes = status_kib(&status, "VmHWM:").unwrap_or(0) * 1024;
        out.threads = status_kib(&status, "Threads:").unwrap_or(0);
    }
    out.open_fds = open_fds().unwrap_or(0);
    if let Some(io) = crate::proc_counters::syscalls() {
        out.read_syscalls = Some(io.read_syscalls);
        out.write_syscalls = Some(io.write_syscalls);
    }
    if let Some(a) = crate::alloc_count::counts() {
        out.allocations = Some(a.allocations);
        out.allocated_bytes = Some(a.allocated_bytes);
    }
    out
}

/// Open descriptors. Since Linux 6.2 the size `stat` reports for `/proc/self/fd` is the
/// count, which costs nothing; listing the directory (the fallback) costs milliseconds at
/// 20,000 descriptors, on the thread serving `/stats`, in the middle of a measurement.
fn open_fds() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd").map(|m| m.len()) {
        Ok(n) if n > 0 => Some(n),
        _ => std::fs::read_dir("/proc/self/fd")
            .ok()
            // One of the entries is the descriptor read_dir itself holds open.
            .map(|dir| (dir.count() as u64).saturating_sub(1)),
    }
}

/// The number after `key` on its line of /proc/self/status (kB for memory lines).
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Raises the soft open-file limit to the hard limit and returns the new soft limit.
pub fn raise_nofile_limit() -> std::io::Result<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    // `None` is "unlimited".
    let value = |v: Option<u64>| v.unwrap_or(u64::MAX);
    if value(lim.current) < value(lim.maximum) {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        setrlimit(Resource::Nofile, raised)?;
        return Ok(value(raised.current));
    }
    Ok(value(lim.current))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_lines() {
        let s = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t3\n";
        assert_eq!(status_kib(s, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(s, "VmHWM:"), Some(2048));
        assert_eq!(status_kib(s, "Threads:"), Some(3));
        assert_eq!(status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn sample_reads_real_figures() {
        let s = sample();
        assert!(s.rss_bytes > 0 && s.rss_peak_bytes >= s.rss_bytes);
        assert!(s.threads >= 1);
        assert!(s.open_fds >= 3);
    }

    fn listed_fds() -> u64 {
        let dir = std::fs::read_dir("/proc/self/fd").unwrap();
        (dir.count() as u64) - 1
    }

    #[test]
    fn open_fds_counts_descriptors_exactly() {
        let files: Vec<_> = (0..50)
            .map(|_| std::fs::File::open("/proc/self/status").unwrap())
            .collect();
        // Other tests in this process open and close descriptors too: the stat figure and
        // the listing must agree at some instant, and 50 more are open.
        let agree = (0..100).any(|_| {
            let (a, b) = (open_fds().unwrap(), listed_fds());
            a == b && open_fds() == Some(a)
        });
        assert!(agree, "stat size and listing never agreed");
        assert!(open_fds().unwrap() > 50);
        drop(files);
    }
}
