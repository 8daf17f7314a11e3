//! Shards: one scenario's clients split over several processes or hosts.
//!
//! Shard `I/N` runs the contiguous block of client indices `[n·I/N, n·(I+1)/N)` of a
//! scenario of `n` clients. A client's seed, poll phase, ramp slot and source address depend
//! only on its index and the scenario, so N shards together run exactly the schedule one
//! process would. [`StartAt`] lines their phases up: every shard begins connecting at the
//! same wall-clock instant and opens its measure window at the same later one.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    /// This shard, `0..count`.
    pub index: u32,
    /// How many shards the scenario is split into.
    pub count: u32,
}

/// Most shards one scenario may be split into.
pub const MAX_SHARDS: u32 = 10_000;

impl Shard {
    /// The client indices this shard runs out of `n_clients`.
    pub fn clients(&self, n_clients: usize) -> Range<usize> {
        let at = |i: u32| (n_clients as u128 * i as u128 / self.count as u128) as usize;
        at(self.index)..at(self.index + 1)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("shard {s:?} is not I/N with 0 <= I < N <= {MAX_SHARDS}");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count || count > MAX_SHARDS {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// A wall-clock instant every shard starts at: Unix seconds (`1764500000` or
/// `1764500000.25`) or RFC 3339 (`2026-11-30T18:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartAt(pub SystemTime);

impl StartAt {
    /// Unix nanoseconds.
    pub fn unix_ns(&self) -> u64 {
        self.0
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    }
}

impl FromStr for StartAt {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(secs) = s.parse::<f64>() {
            if !(0.0..4e9).contains(&secs) {
                return Err(format!("start time {s:?} is not a Unix time in seconds"));
            }
            return Ok(StartAt(UNIX_EPOCH + Duration::from_secs_f64(secs)));
        }
        humantime::parse_rfc3339_weak(s)
            .map(StartAt)
            .map_err(|e| format!("start time {s:?} is neither Unix seconds nor RFC 3339: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_the_clients() {
        for n in [0usize, 1, 7, 100, 19_999] {
            for count in [1u32, 2, 3, 4, 7] {
                let blocks: Vec<Range<usize>> = (0..count)
                    .map(|index| Shard { index, count }.clients(n))
                    .collect();
                assert_eq!(blocks[0].start, 0);
                assert_eq!(blocks.last().unwrap().end, n);
                for w in blocks.windows(2) {
                    assert_eq!(w[0].end, w[1].start);
                }
                let (min, max) = blocks
                    .iter()
                    .map(|b| b.len())
                    .fold((usize::MAX, 0), |a, l| (a.0.min(l), a.1.max(l)));
                assert!(max - min <= 1, "n {n} count {count}: {blocks:?}");
            }
        }
        assert_eq!(Shard { index: 1, count: 4 }.clients(10), 2..5);
    }

    #[test]
    fn parses_shards_and_start_times() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(Shard { index: 2, count: 4 }.to_string(), "2/4");
        for bad in ["4/4", "1/0", "x/2", "1", "-1/2", "1/10001"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let t: StartAt = "1764500000.5".parse().unwrap();
        assert_eq!(t.unix_ns(), 1_764_500_000_500_000_000);
        let r: StartAt = "2025-11-30T11:33:20Z".parse().unwrap();
        assert_eq!(r.unix_ns(), 1_764_502_400_000_000_000);
        assert!("yesterday".parse::<StartAt>().is_err());
        assert!("-5".parse::<StartAt>().is_err());
    }
}
