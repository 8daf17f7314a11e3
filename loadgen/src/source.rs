//! Source addresses: which local addresses the clients connect from.
//!
//! A TCP connection is one local port on one (source address, server address) pair, and the
//! ephemeral range here (32768–60999) holds 28,232 ports, while a step of 19,000 clients
//! right after one of 15,000 (whose ports linger in TIME_WAIT for 60 s) needs more than
//! that. Loopback answers on every 127.x.y.z, so for a loopback target the clients spread
//! over several source addresses: client *i* binds to address `i mod k`. The socket is
//! bound with `IP_BIND_ADDRESS_NO_PORT`, so the kernel still picks the port at `connect`
//! (per 4-tuple) instead of reserving one per address at `bind`.
//!
//! Invariant: an explicit list is used as given; `auto` spreads only for a loopback IPv4
//! target ([`AUTO_LOOPBACK_SOURCES`] addresses from 127.0.0.1) and otherwise lets the
//! kernel choose, exactly as before this option existed.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use tokio::net::{TcpSocket, TcpStream};

/// Source addresses `auto` uses for a loopback IPv4 target: 127.0.0.1 to 127.0.0.8.
pub const AUTO_LOOPBACK_SOURCES: u8 = 8;
/// Longest explicit list (or range) accepted.
const MAX_SOURCES: usize = 1024;

/// The `--source-addrs` setting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SourceAddrs {
    /// Spread over 127.0.0.1–127.0.0.8 for a loopback IPv4 target, else the kernel's choice.
    #[default]
    Auto,
    /// These addresses, round-robin over the clients.
    List(Vec<IpAddr>),
}

impl SourceAddrs {
    /// The addresses the clients of a run against `target` bind to; empty means "let the
    /// kernel choose".
    pub fn resolve(&self, target: SocketAddr) -> Vec<IpAddr> {
        match self {
            SourceAddrs::List(list) => list.clone(),
            SourceAddrs::Auto => match target.ip() {
                IpAddr::V4(ip) if ip.is_loopback() => (1..=AUTO_LOOPBACK_SOURCES)
                    .map(|d| IpAddr::V4(Ipv4Addr::new(127, 0, 0, d)))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }

    /// Checks the list against the target's address family.
    pub fn check(&self, target: SocketAddr) -> Result<(), String> {
        if let SourceAddrs::List(list) = self {
            if let Some(bad) = list.iter().find(|a| a.is_ipv4() != target.is_ipv4()) {
                return Err(format!(
                    "source address {bad} is not of the target's address family ({})",
                    target.ip()
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for SourceAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceAddrs::Auto => f.write_str("auto"),
            SourceAddrs::List(list) => {
                let text: Vec<String> = list.iter().map(IpAddr::to_string).collect();
                f.write_str(&text.join(","))
            }
        }
    }
}

impl FromStr for SourceAddrs {
    type Err = String;

    /// `auto`, or a comma-separated list of addresses and IPv4 ranges
    /// (`127.0.0.1-127.0.0.8`).
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(SourceAddrs::Auto);
        }
        let mut list = Vec::new();
        for part in s.split(',').map(str::trim) {
            match part.split_once('-') {
                Some((lo, hi)) => list.extend(parse_range(lo, hi)?),
                None => list.push(parse_ip(part)?),
            }
            if list.len() > MAX_SOURCES {
                return Err(format!("more than {MAX_SOURCES} source addresses"));
            }
        }
        if list.is_empty() {
            return Err("no source addresses given".into());
        }
        Ok(SourceAddrs::List(list))
    }
}

fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an IP address"))
}

fn parse_range(lo: &str, hi: &str) -> Result<Vec<IpAddr>, String> {
    let (IpAddr::V4(a), IpAddr::V4(b)) = (parse_ip(lo)?, parse_ip(hi)?) else {
        return Err(format!("range {lo}-{hi}: only IPv4 ranges are supported"));
    };
    let (a, b) = (u32::from(a), u32::from(b));
    if a > b || (b - a) as usize >= MAX_SOURCES {
        return Err(format!(
            "range {lo}-{hi} must go upwards and hold at most {MAX_SOURCES} addresses"
        ));
    }
    Ok((a..=b).map(|n| IpAddr::V4(Ipv4Addr::from(n))).collect())
}

/// Connects to `target` from `source` (any port), or from the kernel's choice when `None`.
pub async fn connect_from(
    source: Option<IpAddr>,
    target: SocketAddr,
) -> std::io::Result<TcpStream> {
    let Some(ip) = source else {
        return TcpStream::connect(target).await;
    };
    let socket = match target {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    bind_address_no_port(&socket);
    socket.bind(SocketAddr::new(ip, 0))?;
    socket.connect(target).await
}

/// Defers the port choice from `bind` to `connect`, so a port is unique per 4-tuple rather
/// than per source address. Best effort: without it (an old kernel) bind picks the port.
pub(crate) fn bind_address_no_port(socket: &TcpSocket) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a c_int that outlives the call.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_ranges() {
        assert_eq!("auto".parse::<SourceAddrs>(), Ok(SourceAddrs::Auto));
        let SourceAddrs::List(l) = "127.0.0.1-127.0.0.3,127.0.1.9".parse().unwrap() else {
            panic!("not a list")
        };
        assert_eq!(l.len(), 4);
        assert_eq!(l[2], "127.0.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(l[3], "127.0.1.9".parse::<IpAddr>().unwrap());
        assert!("127.0.0.9-127.0.0.1"
            .parse::<SourceAddrs>()
            .unwrap_err()
            .contains("upwards"));
        assert!("localhost"
            .parse::<SourceAddrs>()
            .unwrap_err()
            .contains("not an IP"));
        let target: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(SourceAddrs::Auto.resolve(target).len(), 8);
        assert!(SourceAddrs::Auto
            .resolve("10.0.0.1:80".parse().unwrap())
            .is_empty());
        let v6: SourceAddrs = "::1".parse().unwrap();
        assert!(v6.check(target).is_err());
        assert_eq!(v6.to_string(), "::1");
    }

    #[tokio::test]
    async fn connects_from_another_loopback_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let source: IpAddr = "127.0.0.7".parse().unwrap();
        let client = connect_from(Some(source), target).await.unwrap();
        let (_server_side, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), source);
        assert_eq!(client.local_addr().unwrap().ip(), source);
    }
}
