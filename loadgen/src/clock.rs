//! Wall-clock helpers: Unix-epoch nanoseconds, the load generator's [`LocalClock`] and
//! RFC 3339 timestamps.
//!
//! Delivery latency compares the server's scheduled publish time (`ts`, Unix ns) with the
//! client's receive time, so both sides must use the realtime clock; on one machine they
//! share it exactly. On two machines they differ by an offset that
//! [`crate::clock_sync`] estimates; [`LocalClock`] can inject a known error into the local
//! side so that tests can check the estimate and the correction against it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The current realtime clock as nanoseconds since the Unix epoch.
pub fn unix_nanos() -> u64 {
    // A clock before 1970 only happens on a badly broken host; 0 then makes every latency
    // huge and visible rather than panicking in the middle of a run.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The load generator's realtime clock, read with an injected error of `skew_ns`.
///
/// `LocalClock::default()` is the host's clock. A skewed clock stands in for a host whose
/// clock is off: every reading, and every raw [`unix_nanos`] timestamp passed through
/// [`LocalClock::at`] (such as a socket's receive time), is `skew_ns` later than the truth.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LocalClock {
    /// What this clock adds to the host's clock, in nanoseconds (positive: it reads ahead).
    pub skew_ns: i64,
}

impl LocalClock {
    /// A clock that reads `skew_ns` ahead of the host's (behind if negative).
    pub const fn skewed(skew_ns: i64) -> Self {
        LocalClock { skew_ns }
    }

    /// Now, on this clock, in Unix nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.at(unix_nanos())
    }

    /// The reading of this clock at the instant the host's clock read `unix_ns` (a raw
    /// [`unix_nanos`] value); saturates at 0 and `u64::MAX`.
    pub fn at(&self, unix_ns: u64) -> u64 {
        unix_ns.saturating_add_signed(self.skew_ns)
    }
}

/// Formats a `SystemTime` as RFC 3339 UTC with millisecond precision, e.g.
/// `2025-01-02T03:04:05.678Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let secs = d.as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Formats a `SystemTime` as a compact UTC timestamp for directory names, e.g.
/// `20250102T030405Z`.
pub fn compact_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// Howard Hinnant's `civil_from_days` algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.123Z");
        assert_eq!(compact_utc(t), "20231114T221320Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        // A leap day.
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_skewed_clock_shifts_every_reading_by_its_skew() {
        assert_eq!(LocalClock::default().at(1_000), 1_000);
        assert_eq!(LocalClock::skewed(25_000_000).at(1_000), 25_001_000);
        assert_eq!(LocalClock::skewed(-400).at(1_000), 600);
        assert_eq!(LocalClock::skewed(-2_000).at(1_000), 0);
        assert_eq!(LocalClock::skewed(5).at(u64::MAX - 1), u64::MAX);
    }
}
