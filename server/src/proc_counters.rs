//! System-call counts of this process, from `/proc/self/io`.
//!
//! `syscr` and `syscw` count the `read`/`readv`/`pread` and `write`/`writev`/`pwrite` system
//! calls of every thread of the process, and nothing else: std writes a socket with
//! `send` and reads it with `recv`, which the kernel does not count here. Measured: 5 to 8
//! `syscw` over a 5 s run answering about 50,000 /poll requests. So these two count file
//! I/O only (logs, `/stats` reading `/proc`); the server's socket calls are counted in
//! [`crate::stats::Stats`] (`socket_reads`, `socket_writes`), and the gate judges those.
//! Context switches come from `getrusage` in [`crate::process`], because
//! `/proc/self/status` reports only the main thread's.

/// Read and write system calls since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallCounts {
    /// `syscr`: read-family system calls.
    pub read_syscalls: u64,
    /// `syscw`: write-family system calls.
    pub write_syscalls: u64,
}

/// Reads this process's counts; `None` where `/proc/self/io` cannot be read (a kernel
/// without task I/O accounting).
pub fn syscalls() -> Option<SyscallCounts> {
    parse_io(&std::fs::read_to_string("/proc/self/io").ok()?)
}

/// Parses the text of `/proc/PID/io`.
fn parse_io(text: &str) -> Option<SyscallCounts> {
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.trim().parse().ok())
    };
    Some(SyscallCounts {
        read_syscalls: field("syscr:")?,
        write_syscalls: field("syscw:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_proc_io() {
        let text = "rchar: 1\nwchar: 2\nsyscr: 31\nsyscw: 47\nread_bytes: 0\n";
        assert_eq!(
            parse_io(text),
            Some(SyscallCounts {
                read_syscalls: 31,
                write_syscalls: 47
            })
        );
        assert_eq!(parse_io("rchar: 1\n"), None);
    }

    #[test]
    fn counts_this_process_writes() {
        let mut null = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .unwrap();
        let before = syscalls().unwrap();
        for _ in 0..100 {
            null.write_all(b"x").unwrap();
        }
        let after = syscalls().unwrap();
        // Other tests in this binary may write too (never fewer than these 100), and the
        // read of /proc/self/io itself is one or two reads.
        assert!(after.write_syscalls - before.write_syscalls >= 100);
        assert!(after.read_syscalls > before.read_syscalls);
    }
}
