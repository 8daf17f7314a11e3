//! Pre-flight checks: will this many clients fit in the open-file limit and the ephemeral
//! port range? Checked before a scenario, after raising the soft open-file limit to the
//! hard one, so a run fails with a clear message instead of a storm of `EMFILE` errors.

/// Descriptors the load generator needs besides one per client (runtime, stats, files).
const SPARE_FDS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns `(soft, hard)` afterwards.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    // SAFETY: get/setrlimit read and write the struct we own.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
        Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
    }
}

/// The local port range from `/proc/sys/net/ipv4/ip_local_port_range`.
pub fn ephemeral_port_range() -> Option<(u32, u32)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_port_range(&text)
}

fn parse_port_range(text: &str) -> Option<(u32, u32)> {
    let mut it = text.split_whitespace().map(str::parse::<u32>);
    match (it.next(), it.next()) {
        (Some(Ok(lo)), Some(Ok(hi))) if lo <= hi => Some((lo, hi)),
        _ => None,
    }
}

/// Checks that `n_clients` connections fit; `Err` says what is short and how to fix it.
pub fn check_capacity(n_clients: u64) -> Result<(), String> {
    let (soft, hard) =
        raise_nofile_limit().map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    check_against(n_clients, soft, hard, ephemeral_port_range())
}

fn check_against(
    n_clients: u64,
    soft: u64,
    hard: u64,
    ports: Option<(u32, u32)>,
) -> Result<(), String> {
    let needed = n_clients + SPARE_FDS;
    if needed > soft {
        return Err(format!(
            "{n_clients} clients need about {needed} file descriptors but the open-file limit is {soft} \
             (hard limit {hard}); raise it (ulimit -n) or use fewer clients"
        ));
    }
    if let Some((lo, hi)) = ports {
        let available = u64::from(hi - lo) + 1;
        if n_clients > available {
            return Err(format!(
                "{n_clients} clients need {n_clients} local ports to one server address but \
                 net.ipv4.ip_local_port_range ({lo}-{hi}) has only {available}; widen it or use fewer clients"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_descriptors_and_ports() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("x"), None);
        assert!(check_against(100, 1024, 4096, Some((32768, 60999))).is_ok());
        let e = check_against(5000, 1024, 4096, None).unwrap_err();
        assert!(
            e.contains("open-file limit is 1024") && e.contains("hard limit 4096"),
            "{e}"
        );
        let e = check_against(5000, 100_000, 100_000, Some((60000, 60999))).unwrap_err();
        assert!(
            e.contains("ip_local_port_range (60000-60999) has only 1000"),
            "{e}"
        );
        let (soft, hard) = raise_nofile_limit().unwrap();
        assert!(soft <= hard && soft > 0);
    }
}
