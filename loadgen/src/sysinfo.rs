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
    let cores = online_cpus();
    Host {
        os,
        kernel: kernel_release(),
        cpu_model,
        cores,
        memory_bytes,
    }
}

fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// CPUs online on the machine (`/sys/devices/system/cpu/online`), at least 1.
fn online_cpus() -> u64 {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|t| parse_cpu_list(t.trim()))
        .map_or(1, |cpus| cpus.len().max(1) as u64)
}

/// User plus system CPU seconds of this process so far (`CLOCK_PROCESS_CPUTIME_ID`: the
/// same total as `getrusage`, in nanoseconds).
pub fn process_cpu_s() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// This process's context switches so far, every thread (`getrusage`, which rustix does
/// not offer). Its allocations are not read here: the counting allocator lives in the
/// server crate, which this crate does not depend on.
pub fn own_counts() -> crate::results::ProcessCounts {
    // SAFETY: getrusage writes into the zeroed struct we pass and reads nothing else.
    let usage = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        (libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0).then_some(ru)
    };
    crate::results::ProcessCounts {
        context_switches: usage.map(|ru| (ru.ru_nvcsw + ru.ru_nivcsw) as u64),
        ..Default::default()
    }
}

/// The CPUs this thread may run on.
pub fn allowed_cpus() -> Vec<usize> {
    match rustix::thread::sched_getaffinity(None) {
        Ok(set) => (0..rustix::thread::CpuSet::MAX_CPU)
            .filter(|&c| set.is_set(c))
            .collect(),
        Err(_) => {
            let n = std::thread::available_parallelism().map_or(1, |n| n.get());
            (0..n).collect()
        }
    }
}

/// The affinity set of `cpus` (those beyond the kernel's set size are left out).
pub fn cpu_set(cpus: &[usize]) -> rustix::thread::CpuSet {
    let mut set = rustix::thread::CpuSet::new();
    for &c in cpus
        .iter()
        .filter(|&&c| c < rustix::thread::CpuSet::MAX_CPU)
    {
        set.set(c);
    }
    set
}

/// Restricts the calling thread (and the threads and processes it creates later) to `cpus`.
pub fn pin_current_thread(cpus: &[usize]) -> std::io::Result<()> {
    rustix::thread::sched_setaffinity(None, &cpu_set(cpus))?;
    Ok(())
}

/// Parses a CPU list the way the kernel writes it (`0-3,6`); `None` if malformed.
pub fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = part.split_once('-').unwrap_or((part, part));
        let (lo, hi) = (
            lo.trim().parse::<usize>().ok()?,
            hi.trim().parse::<usize>().ok()?,
        );
        // A bound on the list's length, whatever the text says.
        if hi < lo || hi - lo >= 1 << 16 {
            return None;
        }
        cpus.extend(lo..=hi);
    }
    Some(cpus)
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
        assert_eq!(parse_cpu_list("0-3,6"), Some(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("1"), Some(vec![1]));
        assert_eq!(
            parse_cpu_list(&format_cpu_list(&[0, 2, 3])),
            Some(vec![0, 2, 3])
        );
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert_eq!(parse_cpu_list("0-999999"), None);
    }

    #[test]
    fn process_cpu_time_counts_work() {
        let before = process_cpu_s();
        // Burn CPU until the clock moves: bounded by a wall-clock limit, so this asserts
        // only that the figure is a live CPU clock, not how fast the machine is.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while process_cpu_s() <= before && start.elapsed() < std::time::Duration::from_secs(5) {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        assert!(process_cpu_s() > before);
    }
}
