//! Pre-flight checks: will this many clients fit in the open-file limit and the ephemeral
//! port range? Checked before a scenario, after raising the soft open-file limit to the
//! hard one, so a run fails with a clear message instead of a storm of `EMFILE` errors.
//! Ports are counted per source address (see [`crate::source`]), minus the ones already
//! taken towards the same server, so a step right after a big one is judged correctly.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// Descriptors the load generator needs besides one per client (runtime, stats, files).
const SPARE_FDS: u64 = 64;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns `(soft, hard)` afterwards.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let mut lim = getrlimit(Resource::Nofile);
    // `None` is "unlimited".
    let value = |v: Option<u64>| v.unwrap_or(u64::MAX);
    if value(lim.current) < value(lim.maximum) {
        let raised = Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            lim = raised;
        }
    }
    Ok((value(lim.current), value(lim.maximum)))
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

/// Checks that `n_clients` connections to `target`, spread over `sources` (empty: the
/// kernel's choice of one address), fit; `Err` says what is short and how to fix it.
pub fn check_capacity(
    n_clients: u64,
    sources: &[IpAddr],
    target: SocketAddr,
) -> Result<(), String> {
    let (soft, hard) =
        raise_nofile_limit().map_err(|e| format!("cannot read the open-file limit: {e}"))?;
    check_descriptors(n_clients, soft, hard)?;
    let Some(range) = ephemeral_port_range() else {
        return Ok(());
    };
    let in_use = ports_in_use(target);
    let busiest = busiest_source(sources, &in_use);
    check_ports(n_clients, sources.len().max(1) as u64, range, busiest)
}

fn check_descriptors(n_clients: u64, soft: u64, hard: u64) -> Result<(), String> {
    let needed = n_clients + SPARE_FDS;
    if needed > soft {
        return Err(format!(
            "{n_clients} clients need about {needed} file descriptors but the open-file limit is {soft} \
             (hard limit {hard}); raise it (ulimit -n) or use fewer clients"
        ));
    }
    Ok(())
}

/// `busiest`: the source address with the most ports already taken towards the target,
/// and how many (sockets still open or in a TIME_WAIT the kernel will not reuse).
fn check_ports(
    n_clients: u64,
    n_sources: u64,
    (lo, hi): (u32, u32),
    busiest: (String, u64),
) -> Result<(), String> {
    let range = u64::from(hi - lo) + 1;
    let per_source = n_clients.div_ceil(n_sources);
    let (addr, taken) = busiest;
    let free = range.saturating_sub(taken);
    if per_source > free {
        return Err(format!(
            "{n_clients} clients over {n_sources} source address(es) need {per_source} local ports \
             from {addr} but net.ipv4.ip_local_port_range ({lo}-{hi}) has {range}, of which {taken} \
             are taken towards this server (open or TIME_WAIT); spread the clients over more source \
             addresses (--source-addrs 127.0.0.1-127.0.0.16), wait for TIME_WAIT to clear, or use fewer clients"
        ));
    }
    Ok(())
}

fn busiest_source(sources: &[IpAddr], in_use: &BTreeMap<IpAddr, u64>) -> (String, u64) {
    if sources.is_empty() {
        // The kernel may pick any local address; count them all against one.
        return ("the default source address".into(), in_use.values().sum());
    }
    sources
        .iter()
        .map(|a| (a.to_string(), in_use.get(a).copied().unwrap_or(0)))
        .max_by_key(|(_, n)| *n)
        .unwrap_or_default()
}

/// Local ports taken towards `target`, per local address, from `/proc/net/tcp`: every
/// socket with that remote end, except TIME_WAIT ones the kernel may reuse for a new
/// connection (`tcp_tw_reuse` 1, or 2 on loopback). IPv4 only; empty when unreadable.
fn ports_in_use(target: SocketAddr) -> BTreeMap<IpAddr, u64> {
    let SocketAddr::V4(t) = target else {
        return BTreeMap::new();
    };
    let tw_reuse = std::fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let reuse_tw = tw_reuse == 1 || (tw_reuse == 2 && t.ip().is_loopback());
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    count_ports_in_use(&text, t, reuse_tw)
}

fn count_ports_in_use(text: &str, target: SocketAddrV4, reuse_tw: bool) -> BTreeMap<IpAddr, u64> {
    /// The state column's value for TIME_WAIT.
    const TIME_WAIT: &str = "06";
    let want = format!(
        "{:08X}:{:04X}",
        u32::from(*target.ip()).swap_bytes(),
        target.port()
    );
    let mut in_use = BTreeMap::new();
    for line in text.lines().skip(1) {
        let mut cols = line.split_whitespace().skip(1);
        let (Some(local), Some(remote), Some(state)) = (cols.next(), cols.next(), cols.next())
        else {
            continue;
        };
        if remote != want || (reuse_tw && state == TIME_WAIT) {
            continue;
        }
        let Some(ip) = local
            .split_once(':')
            .and_then(|(hex, _)| u32::from_str_radix(hex, 16).ok())
        else {
            continue;
        };
        *in_use
            .entry(IpAddr::V4(Ipv4Addr::from(ip.swap_bytes())))
            .or_insert(0) += 1;
    }
    in_use
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_descriptors_and_ports() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some((32768, 60999)));
        assert_eq!(parse_port_range("x"), None);
        assert!(check_descriptors(100, 1024, 4096).is_ok());
        let e = check_descriptors(5000, 1024, 4096).unwrap_err();
        assert!(
            e.contains("open-file limit is 1024") && e.contains("hard limit 4096"),
            "{e}"
        );
        let range = (32768, 60999);
        assert!(check_ports(19_000, 1, range, ("a".into(), 0)).is_ok());
        // 19,000 right after 15,000 on one address does not fit; over 8 it does.
        let e = check_ports(19_000, 1, range, ("127.0.0.1".into(), 15_000)).unwrap_err();
        assert!(
            e.contains("need 19000 local ports from 127.0.0.1") && e.contains("15000 are taken"),
            "{e}"
        );
        assert!(check_ports(19_000, 8, range, ("127.0.0.1".into(), 15_000)).is_ok());
        let e = check_ports(5000, 1, (60000, 60999), ("a".into(), 0)).unwrap_err();
        assert!(e.contains("(60000-60999) has 1000"), "{e}");
        let (soft, hard) = raise_nofile_limit().unwrap();
        assert!(soft <= hard && soft > 0);
    }

    #[test]
    fn counts_ports_taken_towards_the_server() {
        // 127.0.0.1:40000 -> 127.0.0.1:8080 established; 127.0.0.2 -> 8080 in TIME_WAIT;
        // one to another port.
        let text = "  sl  local_address rem_address   st\n\
            0: 0100007F:9C40 0100007F:1F90 01 0\n\
            1: 0200007F:9C41 0100007F:1F90 06 0\n\
            2: 0100007F:9C42 0100007F:0050 01 0\n";
        let target: SocketAddrV4 = "127.0.0.1:8080".parse().unwrap();
        let one: IpAddr = "127.0.0.1".parse().unwrap();
        let two: IpAddr = "127.0.0.2".parse().unwrap();
        let all = count_ports_in_use(text, target, false);
        assert_eq!((all.get(&one), all.get(&two)), (Some(&1), Some(&1)));
        let reusing = count_ports_in_use(text, target, true);
        assert_eq!((reusing.get(&one), reusing.get(&two)), (Some(&1), None));
        assert_eq!(busiest_source(&[one, two], &all).1, 1);
        assert_eq!(busiest_source(&[], &all).1, 2);
    }
}
