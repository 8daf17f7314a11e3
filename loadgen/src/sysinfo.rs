//! Facts about the machine and this process: host description, git sha, CPU time and CPU
//! affinity.

use std::process::Command;

use crate::results::{Host, Tool};

/// The tool description, with `git rev-parse HEAD` run now (null if git or the repository
/// is not there).
pub fn tool() -> Tool {
    let git_sha = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| s.len() >= 7);
    Tool {
        name: "feedbench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        git_sha,
    }
}

/// The host description from `/proc`, `/etc/os-release` and `uname`.
pub fn host() -> Host {
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string());
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let memory_bytes = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024);
    // SAFETY: sysconf has no preconditions.
    let cores = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
    Host {
        os,
        kernel: kernel_release(),
        cpu_model,
        cores,
        memory_bytes,
    }
}

fn kernel_release() -> String {
    // SAFETY: `uname` fills the zeroed struct we own; the release field is NUL-terminated.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return "unknown".into();
        }
        std::ffi::CStr::from_ptr(u.release.as_ptr())
            .to_string_lossy()
            .into_owned()
    }
}

/// User plus system CPU seconds of this process so far.
pub fn process_cpu_s() -> f64 {
    // SAFETY: getrusage fills the zeroed struct we own.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: sched_getaffinity fills the zeroed set we own; CPU_ISSET reads it in bounds.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            return (0..n).collect();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restricts the calling thread (and the threads and processes it creates later) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    // SAFETY: the set is ours and CPU_SET indexes within CPU_SETSIZE (checked).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus.iter().filter(|&&c| c < libc::CPU_SETSIZE as usize) {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Formats a CPU list the way the kernel does: `0-3,6`.
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        while i + 1 < sorted.len() && sorted[i + 1] == sorted[i] + 1 {
            i += 1;
        }
        parts.push(if sorted[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", sorted[i])
        });
        i += 1;
    }
    parts.join(",")
}

/// Splits the allowed CPUs between server and load generator: the server gets the first
/// half (rounded down, at least one), the load generator the rest. `None` with fewer than
/// two CPUs, where pinning would only make both share one core.
pub fn split_cpus(allowed: &[usize]) -> Option<(Vec<usize>, Vec<usize>)> {
    if allowed.len() < 2 {
        return None;
    }
    let n_server = (allowed.len() / 2).max(1);
    Some((allowed[..n_server].to_vec(), allowed[n_server..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_host() {
        let h = host();
        assert!(h.cores >= 1 && h.memory_bytes > 0 && !h.kernel.is_empty());
        assert!(process_cpu_s() >= 0.0);
        assert!(!allowed_cpus().is_empty());
        assert_eq!(tool().name, "feedbench");
    }

    #[test]
    fn formats_and_splits_cpu_lists() {
        assert_eq!(format_cpu_list(&[3, 0, 1, 2, 6]), "0-3,6");
        assert_eq!(format_cpu_list(&[1]), "1");
        assert_eq!(split_cpus(&[0, 1]), Some((vec![0], vec![1])));
        assert_eq!(
            split_cpus(&[0, 1, 2, 3, 4]),
            Some((vec![0, 1], vec![2, 3, 4]))
        );
        assert_eq!(split_cpus(&[5]), None);
    }
}
