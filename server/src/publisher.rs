//! The publisher: an OS thread that publishes the feed on an open-loop schedule.
//!
//! Event *i* of a schedule is due at `t0 + i / rate` and is stamped with that scheduled
//! time, never with the time it actually went out. If the thread falls behind, every overdue
//! event is published at once, still carrying its scheduled stamp, so the lateness shows up
//! in the clients' measured latency instead of being hidden (no coordinated omission on the
//! publishing side). A change of feed starts a new schedule at the moment of the change.
//!
//! A batch is bounded by count and by bytes, so a publisher that fell behind on a feed of
//! large events never holds more than a few MiB of events outside the ring.
//!
//! If the thread dies (a panic), the hub records why ([`Hub::publisher_failure`]):
//! `/healthz` then answers 503 and `feedbench serve` exits non-zero, rather than serving a
//! feed that silently stopped.
//!
//! A dedicated thread sleeping on a condition variable with a 1 µs timer slack wakes within
//! tens of microseconds of the due time, where tokio's millisecond timer wheel would add up
//! to a millisecond to every event's latency.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::event_cost;
use crate::hub::Hub;

/// Most events published in one wake-up, so a huge backlog still lets feed changes and
/// shutdown through between batches.
const MAX_BATCH: u64 = 4_096;

/// Most bytes of events (by `event_cost`) encoded in one wake-up.
const MAX_BATCH_BYTES: usize = 4 << 20;

/// Starts the publisher thread; it ends after `Hub::stop_publishing`.
pub fn spawn(hub: Arc<Hub>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("feedbench-publisher".into())
        .spawn(move || supervise(&hub, run))
}

/// Runs `body` and records in the hub why it ended if it panicked.
fn supervise(hub: &Hub, body: fn(&Hub)) {
    // Nothing observes the hub's state half-updated after a panic: the ring and the feed
    // are behind locks whose poisoning every reader ignores, and each is left consistent.
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(hub))) {
        let why = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        tracing::error!("the publisher thread died: {why}");
        hub.fail_publisher(format!("the publisher thread died: {why}"));
    }
}

/// The realtime clock in Unix nanoseconds: what every schedule's stamps start from, and
/// what `GET /time` answers, so a client's offset estimate is to the clock of `ts`.
pub(crate) fn unix_now_ns() -> u64 {
    // A clock before 1970 is a broken host; stamping 0 keeps the feed going and makes the
    // resulting latencies obviously wrong rather than crashing the server.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn set_fine_timer_slack() {
    // SAFETY: PR_SET_TIMERSLACK only changes this thread's timer slack; it takes plain
    // integers and touches no memory of ours.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

/// One schedule: where it started and how far it has got.
struct Schedule {
    t0: Instant,
    t0_unix_ns: u64,
    rate_hz: f64,
    payload_bytes: usize,
    generation: u64,
    /// Index of the next event to publish.
    next: u64,
}

impl Schedule {
    /// When event `i` is due, from `t0`. Validation keeps the rate at or above
    /// `MIN_RATE_HZ`, so this is far from `Duration`'s limits; it saturates rather than
    /// panics all the same.
    fn offset(&self, i: u64) -> Duration {
        Duration::try_from_secs_f64(i as f64 / self.rate_hz).unwrap_or(Duration::MAX)
    }

    /// The scheduled stamp of event `i`, Unix nanoseconds.
    fn stamp(&self, i: u64) -> u64 {
        let offset_ns = u64::try_from(self.offset(i).as_nanos()).unwrap_or(u64::MAX);
        self.t0_unix_ns.saturating_add(offset_ns)
    }

    /// Number of events due by `now` (indices `0..due`).
    fn due(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.t0).as_secs_f64();
        // `as` saturates a float too large for u64.
        ((elapsed * self.rate_hz).floor() as u64).saturating_add(1)
    }
}

fn run(hub: &Hub) {
    set_fine_timer_slack();
    let mut stamps: Vec<u64> = Vec::with_capacity(MAX_BATCH as usize);
    let mut state = hub.lock_feed();
    let mut sched: Option<Schedule> = None;
    loop {
        if state.stopping {
            return;
        }
        // Answered long-polls' next requests ([`crate::fanout`]), between passes.
        let sweep = match hub.fanout().sweep_due() {
            Some(at) if at <= Instant::now() => {
                drop(state);
                let next = hub.sweep_requests();
                state = hub.lock_feed();
                next
            }
            other => other,
        };
        let cfg = state.config;
        if sched
            .as_ref()
            .is_none_or(|s| s.generation != state.generation)
        {
            sched = (cfg.rate_hz > 0.0).then(|| Schedule {
                t0: Instant::now(),
                t0_unix_ns: unix_now_ns(),
                rate_hz: cfg.rate_hz,
                payload_bytes: cfg.payload_bytes,
                generation: state.generation,
                next: 0,
            });
        }
        let Some(s) = sched.as_mut() else {
            // Paused: sleep until the feed changes or a sweep is due.
            sched = None;
            let generation = state.generation;
            let unchanged = |st: &mut crate::hub::FeedState| {
                st.generation == generation && !st.stopping && hub.fanout().sweep_due().is_none()
            };
            state = match sweep {
                Some(at) => {
                    let wait = at.saturating_duration_since(Instant::now());
                    hub.feed_changed()
                        .wait_timeout(state, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
                None => hub
                    .feed_changed()
                    .wait_while(state, unchanged)
                    .unwrap_or_else(|e| e.into_inner()),
            };
            continue;
        };
        let max_batch =
            (MAX_BATCH_BYTES / event_cost(s.payload_bytes)).clamp(1, MAX_BATCH as usize);
        let due = s.due(Instant::now()).min(s.next + max_batch as u64);
        if due > s.next {
            stamps.clear();
            stamps.extend((s.next..due).map(|i| s.stamp(i)));
            // The `inject` feature's latency regression: stamps earlier than scheduled.
            #[cfg(feature = "inject")]
            {
                let early = crate::inject::get().stamp_early.as_nanos() as u64;
                stamps.iter_mut().for_each(|t| *t = t.saturating_sub(early));
            }
            s.next = due;
            let payload = s.payload_bytes;
            // Publish without holding the feed lock so control requests never wait on it.
            drop(state);
            hub.publish(&stamps, payload);
            state = hub.lock_feed();
            continue;
        }
        // A wake-up too far away for `Instant` is re-checked hourly.
        let next_event = s.t0.checked_add(s.offset(s.next));
        let wait = next_event
            .map_or(Duration::from_secs(3_600), |at| {
                at.saturating_duration_since(Instant::now())
            })
            .min(sweep.map_or(Duration::MAX, |at| {
                at.saturating_duration_since(Instant::now())
            }));
        if wait.is_zero() {
            continue;
        }
        state = hub
            .feed_changed()
            .wait_timeout(state, wait)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::FeedConfig;

    #[test]
    fn publishes_at_rate_with_scheduled_stamps() {
        let hub = Arc::new(Hub::new(
            FeedConfig {
                rate_hz: 200.0,
                payload_bytes: 8,
            },
            10_000,
        ));
        let mut rx = hub.subscribe();
        let handle = spawn(hub.clone()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Wait (bounded) for 40 events: 200 ms of schedule.
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| *h >= 40))
                .await
                .expect("publisher too slow")
                .unwrap();
        });
        hub.stop_publishing();
        handle.join().unwrap();
        let b = hub.read_after(0, 40);
        assert_eq!(b.events.len(), 40);
        // Stamps are exactly 5 ms apart (the schedule), whatever the actual send times were.
        for w in b.events.windows(2) {
            assert_eq!(w[1].seq, w[0].seq + 1);
            let gap = w[1].ts_ns - w[0].ts_ns;
            assert!((4_999_999..=5_000_001).contains(&gap), "gap {gap}");
        }
    }

    #[test]
    fn schedule_arithmetic_saturates_instead_of_panicking() {
        let t0 = Instant::now();
        for rate_hz in [1e-300, 5e-324, 1e-19, crate::config::MIN_RATE_HZ] {
            let s = Schedule {
                t0,
                t0_unix_ns: 1,
                rate_hz,
                payload_bytes: 0,
                generation: 0,
                next: 0,
            };
            assert_eq!(s.stamp(0), 1);
            assert!(s.stamp(1) > 1, "rate {rate_hz}");
            assert!(s.offset(u64::MAX) >= s.offset(1));
            assert_eq!(s.due(t0 + Duration::from_millis(1)), 1);
        }
    }

    #[test]
    fn a_panicking_publisher_is_recorded_in_the_hub() {
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 8,
            },
            10,
        );
        assert_eq!(hub.publisher_failure(), None);
        supervise(&hub, |_| panic!("boom"));
        assert_eq!(
            hub.publisher_failure().as_deref(),
            Some("the publisher thread died: boom")
        );
        // A publisher that stops because it was asked to is no failure.
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 8,
            },
            10,
        );
        hub.stop_publishing();
        supervise(&hub, run);
        assert_eq!(hub.publisher_failure(), None);
    }

    #[test]
    fn rate_zero_pauses_and_change_resumes_without_resetting_seq() {
        let hub = Arc::new(Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 8,
            },
            1_000,
        ));
        hub.publish(&[1, 2], 8);
        let mut rx = hub.subscribe();
        let handle = spawn(hub.clone()).unwrap();
        assert_eq!(hub.head(), 2);
        hub.set_feed(FeedConfig {
            rate_hz: 1_000.0,
            payload_bytes: 3,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|h| *h >= 12))
                .await
                .expect("publisher did not resume")
                .unwrap();
        });
        hub.stop_publishing();
        handle.join().unwrap();
        let b = hub.read_after(2, 1);
        assert_eq!(b.events[0].seq, 3);
        assert!(
            b.events[0].json_str().ends_with(r#""data":"DEF"}"#),
            "{}",
            b.events[0].json_str()
        );
    }
}
