//! Clock-offset estimation against a server's `GET /time` (PROTOCOL.md section 8.1):
//! NTP-style exchanges, filtered by minimum round trip.
//!
//! One exchange: `t0` is the local clock just before the request is written, `N` the
//! server's clock in the answer, `t1` the local clock once the whole answer has been read.
//! The server read its clock somewhere inside `[t0, t1]`, so the offset
//! `θ = server clock − local clock` lies in `[N − t1, N − t0]`, and the midpoint estimate
//! `N − (t0 + t1) / 2` is within half the round trip of it, whatever the asymmetry of the
//! two directions. Queueing and scheduling only lengthen an exchange, so the exchange with
//! the smallest round trip gives the tightest bound: that is the one kept ([`best`]).
//!
//! Invariants:
//! - Sign: `offset_ns = server − local`, so *server time = local time + offset_ns*
//!   ([`ClockOffset::to_server_ns`]). A local clock 25 ms ahead gives −25 ms.
//! - `uncertainty_ns = ⌈min_rtt_ns / 2⌉` exactly, a bound, not a statistical spread.
//! - The first exchange on the connection is a warm-up and is never selected.
//! - Bounded: at most [`MAX_SAMPLES`] timed exchanges, each (its connect included) within
//!   the exchange timeout; any failure ends the estimate with a [`ClockError`].
//! - The round trip is measured on the monotonic clock and `t1 = t0 + round trip`, so a
//!   step of the realtime clock during an exchange cannot shorten or invert it.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::client::Target;
use crate::client_io::ClientIo;
use crate::clock::LocalClock;
use crate::http::{HttpConn, HttpError};

/// Most timed exchanges one estimate makes (the warm-up is one more).
pub const MAX_SAMPLES: usize = 64;

/// Timed exchanges per estimate unless told otherwise.
pub const DEFAULT_SAMPLES: usize = 16;

/// How long one exchange (a connect included) may take unless told otherwise.
pub const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The path the server answers its clock on.
const TIME_PATH: &str = "/time";

/// An estimate of the server's clock relative to the local one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockOffset {
    /// Server clock minus local clock, in nanoseconds: add it to a local timestamp to get
    /// the server's clock at the same instant. Negative when the local clock is ahead.
    pub offset_ns: i64,
    /// The true offset is within `offset_ns ± uncertainty_ns`: half the smallest round
    /// trip, rounded up.
    pub uncertainty_ns: u64,
    /// Round trip of the exchange the estimate comes from, in nanoseconds.
    pub min_rtt_ns: u64,
    /// Timed exchanges the smallest round trip was picked from (the warm-up excluded).
    pub samples: u32,
}

impl ClockOffset {
    /// The server's clock at the instant the local clock read `local_ns` (both Unix ns);
    /// saturates at 0 and `u64::MAX`.
    pub fn to_server_ns(&self, local_ns: u64) -> u64 {
        local_ns.saturating_add_signed(self.offset_ns)
    }
}

/// One exchange's three clock readings, in Unix nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Local clock just before the request was written.
    pub t0_ns: u64,
    /// The server's clock from its answer.
    pub server_ns: u64,
    /// Local clock once the whole answer had been read.
    pub t1_ns: u64,
}

/// How to estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncOptions {
    /// Timed exchanges after the warm-up; clamped to `1..=MAX_SAMPLES`.
    pub samples: usize,
    /// Longest one exchange (a connect included) may take.
    pub exchange_timeout: Duration,
    /// The local clock the exchanges are timed with (skewed in tests).
    pub clock: LocalClock,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            samples: DEFAULT_SAMPLES,
            exchange_timeout: EXCHANGE_TIMEOUT,
            clock: LocalClock::default(),
        }
    }
}

/// Why no estimate could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    /// The server has no `GET /time` (it answered 404).
    #[error("the server has no GET /time (404)")]
    Unsupported,
    /// The server could not be reached.
    #[error("cannot connect for GET /time: {0}")]
    Connect(std::io::Error),
    /// An exchange broke.
    #[error("GET /time failed: {0}")]
    Http(#[from] HttpError),
    /// An exchange took too long.
    #[error("GET /time got no answer within {0:?}")]
    Timeout(Duration),
    /// The server answered with a status other than 200 or 404.
    #[error("GET /time answered status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The body, truncated.
        body: String,
    },
    /// The answer is not `{"unix_ns":N}`.
    #[error("GET /time answered an unexpected body: {0}")]
    Body(#[from] serde_json::Error),
    /// No timed exchange had a round trip (cannot happen with a monotonic clock).
    #[error("no GET /time exchange could be timed")]
    NoSample,
}

/// The body of a `GET /time` answer.
#[derive(Deserialize)]
struct TimeAnswer {
    unix_ns: u64,
}

/// Estimates the offset of `target`'s clock to `opts.clock`: a warm-up exchange then
/// `opts.samples` timed ones on one kept-alive connection, back to back, and the one with
/// the smallest round trip ([`best`]).
///
/// A server that closes the connection after an answer gets a new one for the next
/// exchange; the connect is never inside a round trip.
pub async fn estimate(target: &Target, opts: &SyncOptions) -> Result<ClockOffset, ClockError> {
    let timed = opts.samples.clamp(1, MAX_SAMPLES);
    let mut samples = Vec::with_capacity(timed + 1);
    let mut conn = None;
    for _ in 0..=timed {
        let sample = tokio::time::timeout(
            opts.exchange_timeout,
            exchange(target, &mut conn, opts.clock),
        )
        .await
        .map_err(|_| ClockError::Timeout(opts.exchange_timeout))??;
        samples.push(sample);
    }
    best(&samples).ok_or(ClockError::NoSample)
}

/// The estimate from `samples` in the order they were taken, the first being the
/// connection's warm-up: among the others, the one with the smallest round trip
/// `t1 − t0` (the earliest of equals) gives `offset_ns = server − (t0 + ⌊rtt / 2⌋)` and
/// `uncertainty_ns = ⌈rtt / 2⌉`, which bound the true offset exactly. A sample with
/// `t1 < t0` is skipped. `None` if no sample is left.
pub fn best(samples: &[Sample]) -> Option<ClockOffset> {
    let timed = samples.get(1..)?;
    let (rtt, s) = timed
        .iter()
        .filter_map(|s| Some((s.t1_ns.checked_sub(s.t0_ns)?, s)))
        .min_by_key(|&(rtt, _)| rtt)?;
    let midpoint = i128::from(s.t0_ns) + i128::from(rtt / 2);
    let offset = i128::from(s.server_ns) - midpoint;
    // Both clocks are u64 Unix ns, so only clocks centuries apart fall outside i64.
    let offset_ns = i64::try_from(offset).unwrap_or(if offset < 0 { i64::MIN } else { i64::MAX });
    Some(ClockOffset {
        offset_ns,
        uncertainty_ns: rtt.div_ceil(2),
        min_rtt_ns: rtt,
        samples: u32::try_from(timed.len()).unwrap_or(u32::MAX),
    })
}

/// One `GET /time` on `conn` (connected first if need be), timed with `clock`.
async fn exchange(
    target: &Target,
    conn: &mut Option<HttpConn<ClientIo>>,
    clock: LocalClock,
) -> Result<Sample, ClockError> {
    let http = match conn {
        Some(http) => http,
        None => conn.insert(connect(target).await?),
    };
    let start = Instant::now();
    let t0_ns = clock.now_ns();
    http.send("GET", TIME_PATH, "", &[]).await?;
    let resp = http.read_response().await?;
    let rtt_ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
    if !resp.head.keep_alive {
        *conn = None;
    }
    match resp.head.status {
        200 => {}
        404 => return Err(ClockError::Unsupported),
        status => {
            let body = String::from_utf8_lossy(&resp.body)
                .chars()
                .take(200)
                .collect();
            return Err(ClockError::Status { status, body });
        }
    }
    let answer: TimeAnswer = serde_json::from_slice(&resp.body)?;
    Ok(Sample {
        t0_ns,
        server_ns: answer.unix_ns,
        t1_ns: t0_ns.saturating_add(rtt_ns),
    })
}

/// A fresh connection to `target`, Nagle off so a request leaves at once.
async fn connect(target: &Target) -> Result<HttpConn<ClientIo>, ClockError> {
    // Nagle is off on it: without that the request may still go out at once (nothing is
    // unacknowledged); the setting only removes a doubt.
    let io = target
        .connect_harness()
        .await
        .map_err(ClockError::Connect)?;
    Ok(HttpConn::new(io, &target.host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(t0_ns: u64, server_ns: u64, t1_ns: u64) -> Sample {
        Sample {
            t0_ns,
            server_ns,
            t1_ns,
        }
    }

    #[test]
    fn picks_the_smallest_round_trip_after_the_warm_up() {
        let samples = [
            // The warm-up has the smallest round trip of all and must not be picked.
            s(1_000, 9_999, 1_001),
            s(2_000, 50_000, 2_400),
            s(3_000, 60_000, 3_100),
            s(4_000, 70_000, 4_300),
        ];
        assert_eq!(
            best(&samples),
            Some(ClockOffset {
                offset_ns: 60_000 - 3_050,
                uncertainty_ns: 50,
                min_rtt_ns: 100,
                samples: 3,
            })
        );
    }

    #[test]
    fn ties_pick_the_earliest() {
        let samples = [
            s(0, 0, 5_000),
            s(1_000, 500, 1_200),
            s(2_000, 900, 2_200),
            s(3_000, 1_900, 3_200),
        ];
        let b = best(&samples).unwrap();
        assert_eq!(
            (b.offset_ns, b.min_rtt_ns, b.samples),
            (500 - 1_100, 200, 3)
        );
    }

    #[test]
    fn an_odd_round_trip_rounds_the_uncertainty_up() {
        // The true offset lies in [server − t1, server − t0] = [3_997, 4_000]; the midpoint
        // 1_001 is rounded down, so the estimate is 3_999 and only ± 2 (not ± 1) covers it.
        let b = best(&[s(0, 0, 0), s(1_000, 5_000, 1_003)]).unwrap();
        assert_eq!(
            b,
            ClockOffset {
                offset_ns: 3_999,
                uncertainty_ns: 2,
                min_rtt_ns: 3,
                samples: 1,
            }
        );
        assert!(b.offset_ns - 2 <= 3_997 && 4_000 <= b.offset_ns + 2);
    }

    #[test]
    fn a_server_behind_gives_a_negative_offset_and_a_corrected_time() {
        // Local clock 25 ms ahead of the server's.
        let ahead: u64 = 25_000_000;
        let b = best(&[s(0, 0, 0), s(ahead + 10_000, 10_050, ahead + 10_100)]).unwrap();
        assert_eq!((b.offset_ns, b.uncertainty_ns), (-25_000_000, 50));
        assert_eq!(b.to_server_ns(ahead + 20_000), 20_000);
        assert_eq!(b.to_server_ns(5), 0);
    }

    #[test]
    fn nothing_to_pick_without_a_timed_sample() {
        assert_eq!(best(&[]), None);
        assert_eq!(best(&[s(1, 1, 2)]), None);
        // A round trip that runs backwards is skipped.
        assert_eq!(best(&[s(1, 1, 2), s(10, 10, 9)]), None);
        let b = best(&[s(1, 1, 2), s(10, 10, 9), s(20, 30, 24)]).unwrap();
        assert_eq!((b.offset_ns, b.min_rtt_ns, b.samples), (8, 4, 2));
    }

    #[test]
    fn serializes_with_the_documented_field_names() {
        let b = ClockOffset {
            offset_ns: -25_000_123,
            uncertainty_ns: 40_500,
            min_rtt_ns: 81_000,
            samples: 16,
        };
        let json = serde_json::to_string(&b).unwrap();
        assert_eq!(
            json,
            r#"{"offset_ns":-25000123,"uncertainty_ns":40500,"min_rtt_ns":81000,"samples":16}"#
        );
        assert_eq!(serde_json::from_str::<ClockOffset>(&json).unwrap(), b);
    }
}
