//! What the clock comparison means for delivery latency: when it applies, and when its
//! uncertainty is too large to ignore.
//!
//! Delivery latency is a receive time on the load generator's clock, corrected by the
//! estimated offset to the server's ([`ClockFigures`](crate::ClockFigures)), minus an event
//! `ts` on the server's clock, so it is only as exact as that estimate: ± its
//! `uncertainty_ns`. Except on one host: when the target is a loopback address both read
//! the same clock and the difference is exact, whatever the estimate says. The load
//! generator (for each scenario it writes) and the report (for each repeat group) apply the
//! same rule, from here.

use std::net::IpAddr;

use crate::units::micros;

/// The share of the p50 delivery latency above which the clock uncertainty earns a warning.
pub const CLOCK_UNCERTAINTY_WARN_SHARE: f64 = 0.10;

/// How every clock-uncertainty warning begins, so a reader can tell one apart (the report
/// replaces the load generator's per-repeat ones with one per repeat group).
const WARNING_LEAD: &str = "delivery latency is only known to ± ";

/// Whether a target URL's host is a loopback address (`127.0.0.0/8`, `::1`, an IPv4-mapped
/// `::ffff:127.x.y.z`) or `localhost`: then the load generator and the server share one
/// host's clock. Any scheme, user info, port and path are ignored; a URL without a host
/// (or one that does not parse) is not loopback.
pub fn is_loopback_target(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(bracketed) = host_port.strip_prefix('[') {
        // `[::1]:8080`: the IPv6 literal is inside the brackets.
        bracketed.split(']').next().unwrap_or("")
    } else if host_port.matches(':').count() > 1 {
        // A bare IPv6 literal, which a URL would bracket, but a user may not.
        host_port
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

/// The warning for a clock uncertainty of `uncertainty_us` next to a p50 delivery latency
/// of `p50_us`, both µs: `Some` when the uncertainty exceeds
/// [`CLOCK_UNCERTAINTY_WARN_SHARE`] of the p50. `None` for a p50 of 0 (nothing delivered,
/// which other warnings cover). Lowercase and without a final period, like the load
/// generator's other warnings.
pub fn clock_uncertainty_warning(uncertainty_us: f64, p50_us: f64) -> Option<String> {
    if p50_us <= 0.0 || uncertainty_us <= CLOCK_UNCERTAINTY_WARN_SHARE * p50_us {
        return None;
    }
    Some(format!(
        "{WARNING_LEAD}{} ({:.0}% of its p50 of {}), because the load generator's and the \
         server's clocks could only be compared that well (half the fastest GET /time round \
         trip)",
        micros(uncertainty_us),
        uncertainty_us / p50_us * 100.0,
        micros(p50_us)
    ))
}

/// Whether a warning (possibly prefixed, e.g. `shard 1: …` in a merged file) is one that
/// [`clock_uncertainty_warning`] wrote.
pub fn is_clock_uncertainty_warning(warning: &str) -> bool {
    warning.contains(WARNING_LEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for url in [
            "http://127.0.0.1:38465",
            "http://127.0.0.1",
            "http://127.4.5.6:80/",
            "http://localhost:8080",
            "http://LOCALHOST.:8080/feed",
            "http://[::1]:8080",
            "http://[::ffff:127.0.0.1]:8080",
            "http://user@127.0.0.1:1",
            "127.0.0.1:8080",
            "localhost",
            "::1",
        ] {
            assert!(is_loopback_target(url), "{url}");
        }
    }

    #[test]
    fn other_hosts_are_not_loopback() {
        for url in [
            "http://10.0.0.5:8080",
            "http://192.168.1.2",
            "http://0.0.0.0:8080",
            "http://feed.example.com:8080",
            "http://localhost.example.com",
            "http://128.0.0.1",
            "http://[::2]:8080",
            "http://[fe80::1]:8080",
            "http://127.0.0.1.example.com",
            "",
            "http://",
        ] {
            assert!(!is_loopback_target(url), "{url}");
        }
    }

    #[test]
    fn warns_above_a_tenth_of_the_p50() {
        assert_eq!(clock_uncertainty_warning(30.0, 2_000.0), None);
        assert_eq!(
            clock_uncertainty_warning(200.0, 2_000.0),
            None,
            "10% exactly"
        );
        assert_eq!(
            clock_uncertainty_warning(500.0, 2_000.0).as_deref(),
            Some(
                "delivery latency is only known to ± 500 µs (25% of its p50 of 2 ms), because \
                 the load generator's and the server's clocks could only be compared that well \
                 (half the fastest GET /time round trip)"
            )
        );
        let w = clock_uncertainty_warning(1_234.0, 2_450.0).expect("50%");
        assert!(
            w.starts_with(
                "delivery latency is only known to ± 1.23 ms (50% of its p50 of 2.45 ms)"
            ),
            "{w}"
        );
        assert!(is_clock_uncertainty_warning(&w));
        assert!(is_clock_uncertainty_warning(&format!("shard 1: {w}")));
        assert!(!is_clock_uncertainty_warning(
            "the server closed 3 slow consumers"
        ));
        assert_eq!(
            clock_uncertainty_warning(10.0, 0.0),
            None,
            "nothing delivered"
        );
    }
}
