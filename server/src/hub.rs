//! The hub: the ring of recent events, the head sequence number every transport waits on,
//! and the live feed settings.
//!
//! Invariants:
//! - `seq` rises by exactly 1 per published event over the hub's lifetime; changing the
//!   feed never resets it, so every client's cursor stays valid.
//! - The ring holds the newest events in seq order, at most `retain` of them and at most
//!   `retain_bytes` by [`Event::cost`] (always at least the newest one); `read_after` reports how many
//!   events a cursor lost to the ring's end as `missed` rather than skipping them silently.
//! - Publishing never waits for a consumer: it takes the ring's write lock for the length
//!   of a `VecDeque` push and then bumps the head `watch`, which wakes every waiter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock};

use tokio::sync::watch;

use crate::event::Event;
use crate::fanout::Fanout;

/// The feed's live settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct FeedConfig {
    /// Events per second; 0 pauses the feed.
    pub rate_hz: f64,
    /// Length of each event's `data` filler in bytes.
    pub payload_bytes: usize,
}

/// Feed settings plus a generation number that the publisher watches for changes.
#[derive(Debug)]
pub(crate) struct FeedState {
    pub(crate) config: FeedConfig,
    pub(crate) generation: u64,
    pub(crate) stopping: bool,
}

/// What `Hub::read_after` found after a cursor.
#[derive(Debug, Default)]
pub struct Batch {
    /// Retained events with seq > cursor, oldest first, at most the limit asked for.
    pub events: Vec<Event>,
    /// Events after the cursor that had already left the ring.
    pub missed: u64,
    /// The head seq when the batch was read.
    pub head: u64,
}

/// The retained events and what they cost.
#[derive(Debug, Default)]
struct Ring {
    events: VecDeque<Event>,
    /// Sum of `Event::cost` over `events`.
    bytes: usize,
}

/// The in-memory hub shared by the publisher and every transport.
#[derive(Debug)]
pub struct Hub {
    ring: RwLock<Ring>,
    retain: usize,
    retain_bytes: usize,
    head_tx: watch::Sender<u64>,
    published: AtomicU64,
    feed: Mutex<FeedState>,
    feed_changed: Condvar,
    /// Why the publisher died, once it has (`None` while it runs or after a clean stop).
    failure: watch::Sender<Option<String>>,
    /// Caught-up push sockets the publisher writes new events to.
    fanout: Fanout,
}

impl Hub {
    /// A hub with an empty ring of `retain` events (and no byte bound) and the given
    /// initial feed.
    pub fn new(feed: FeedConfig, retain: usize) -> Hub {
        Hub::bounded(feed, retain, usize::MAX)
    }

    /// A hub whose ring keeps at most `retain` events and `retain_bytes` bytes of them.
    pub fn bounded(feed: FeedConfig, retain: usize, retain_bytes: usize) -> Hub {
        let (head_tx, _) = watch::channel(0);
        Hub {
            ring: RwLock::new(Ring {
                events: VecDeque::with_capacity(retain.min(1 << 16)),
                bytes: 0,
            }),
            retain,
            retain_bytes,
            head_tx,
            published: AtomicU64::new(0),
            feed: Mutex::new(FeedState {
                config: feed,
                generation: 0,
                stopping: false,
            }),
            feed_changed: Condvar::new(),
            failure: watch::channel(None).0,
            fanout: Fanout::default(),
        }
    }

    /// The seq of the newest published event (0 before the first).
    pub fn head(&self) -> u64 {
        *self.head_tx.borrow()
    }

    /// Events published since the hub was made.
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }

    /// How many events the ring keeps.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// How many bytes of events the ring keeps (`usize::MAX`: no byte bound).
    pub fn retain_bytes(&self) -> usize {
        self.retain_bytes
    }

    /// How many events the ring holds now, and what they cost in bytes.
    pub fn ring_usage(&self) -> (usize, usize) {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
        (ring.events.len(), ring.bytes)
    }

    /// A receiver that sees every change of the head seq.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
    }

    /// The registry of push sockets the publisher writes to.
    pub fn fanout(&self) -> &Fanout {
        &self.fanout
    }

    /// The current feed settings.
    pub fn feed(&self) -> FeedConfig {
        self.lock_feed().config
    }

    /// Changes the feed; the publisher starts a new schedule from now.
    pub fn set_feed(&self, config: FeedConfig) {
        let mut state = self.lock_feed();
        state.config = config;
        state.generation += 1;
        self.feed_changed.notify_all();
    }

    /// Records that the publisher died and why; health checks fail from now on. Public so
    /// that tests can check what clients and the CLI see of a dead publisher.
    pub fn fail_publisher(&self, why: String) {
        self.failure.send_replace(Some(why));
    }

    /// Why the publisher died, if it has.
    pub fn publisher_failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Resolves, with the reason, once the publisher has died.
    pub async fn publisher_failed(&self) -> String {
        let mut rx = self.failure.subscribe();
        let why = match rx.wait_for(Option::is_some).await {
            Ok(why) => why.clone().unwrap_or_default(),
            // The sender lives in the hub, which outlives this borrow.
            Err(_) => return std::future::pending().await,
        };
        why
    }

    /// Asks the publisher to stop.
    pub fn stop_publishing(&self) {
        self.lock_feed().stopping = true;
        self.feed_changed.notify_all();
    }

    /// Publishes events stamped with the given scheduled times, in order, and returns the
    /// head seq afterwards. Encoding happens before the ring lock is taken. After the head
    /// moves, the events are written to the caught-up push sockets ([`Fanout::write`]),
    /// on the caller's thread.
    pub fn publish(&self, stamps_ns: &[u64], payload_bytes: usize) -> u64 {
        if stamps_ns.is_empty() {
            return self.head();
        }
        let first = self.head() + 1;
        let events: Vec<Event> = stamps_ns
            .iter()
            .enumerate()
            .map(|(i, &ts)| Event::new(first + i as u64, ts, payload_bytes))
            .collect();
        let last = first + events.len() as u64 - 1;
        {
            let mut ring = self.ring.write().unwrap_or_else(|e| e.into_inner());
            for ev in events {
                ring.bytes += ev.cost();
                ring.events.push_back(ev);
                while ring.events.len() > 1
                    && (ring.events.len() > self.retain || ring.bytes > self.retain_bytes)
                {
                    if let Some(old) = ring.events.pop_front() {
                        ring.bytes -= old.cost();
                    }
                }
            }
        }
        self.published
            .fetch_add(stamps_ns.len() as u64, Ordering::Relaxed);
        self.head_tx.send_replace(last);
        let count = stamps_ns.len();
        self.fanout
            .write_with(|| self.read_after(first - 1, count).events);
        if self.fanout.take_new_sweep() {
            // The publisher's thread sweeps; it may be asleep (a paused feed, or this
            // publish came from elsewhere). Under the feed lock, so it cannot miss this.
            let _feed = self.lock_feed();
            self.feed_changed.notify_all();
        }
        last
    }

    /// Reads the next requests of the long-polls the fan-out answered, if a sweep is due
    /// ([`Fanout::sweep`]); returns when the next is due. The publisher's thread calls it.
    pub fn sweep_requests(&self) -> Option<std::time::Instant> {
        self.fanout.sweep(|| self.head())
    }

    /// Retained events with seq > `after`, oldest first, at most `limit`.
    pub fn read_after(&self, after: u64, limit: usize) -> Batch {
        let guard = self.ring.read().unwrap_or_else(|e| e.into_inner());
        let ring = &guard.events;
        let head = ring.back().map_or(self.head(), |e| e.seq);
        let Some(oldest) = ring.front().map(|e| e.seq) else {
            return Batch {
                events: Vec::new(),
                missed: 0,
                head,
            };
        };
        let missed = oldest.saturating_sub(after.saturating_add(1));
        // The ring is contiguous in seq, so the first wanted event's index is arithmetic.
        let start = after.saturating_add(1).max(oldest) - oldest;
        let events = ring
            .range(usize::try_from(start).unwrap_or(usize::MAX).min(ring.len())..)
            .take(limit)
            .cloned()
            .collect();
        Batch {
            events,
            missed,
            head,
        }
    }

    pub(crate) fn lock_feed(&self) -> MutexGuard<'_, FeedState> {
        self.feed.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn feed_changed(&self) -> &Condvar {
        &self.feed_changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub(retain: usize) -> Hub {
        Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 4,
            },
            retain,
        )
    }

    fn seqs(b: &Batch) -> Vec<u64> {
        b.events.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn seq_is_contiguous_across_publishes() {
        let h = hub(100);
        assert_eq!(h.publish(&[1, 2, 3], 4), 3);
        h.set_feed(FeedConfig {
            rate_hz: 5.0,
            payload_bytes: 8,
        });
        assert_eq!(h.publish(&[4], 8), 4);
        assert_eq!(seqs(&h.read_after(0, 100)), vec![1, 2, 3, 4]);
        assert_eq!(h.published(), 4);
        assert_eq!(h.head(), 4);
    }

    #[test]
    fn read_after_honours_cursor_limit_and_missed() {
        let h = hub(3);
        h.publish(&[10, 20, 30, 40, 50], 4); // ring keeps 3, 4, 5
        let b = h.read_after(0, 10);
        assert_eq!((seqs(&b), b.missed, b.head), (vec![3, 4, 5], 2, 5));
        let b = h.read_after(1, 10);
        assert_eq!((seqs(&b), b.missed), (vec![3, 4, 5], 1));
        let b = h.read_after(2, 10);
        assert_eq!((seqs(&b), b.missed), (vec![3, 4, 5], 0));
        let b = h.read_after(3, 1);
        assert_eq!((seqs(&b), b.missed), (vec![4], 0));
        let b = h.read_after(5, 10);
        assert_eq!((seqs(&b), b.missed), (vec![], 0));
        let b = h.read_after(u64::MAX, 10);
        assert_eq!((seqs(&b), b.missed), (vec![], 0));
    }

    #[test]
    fn ring_is_bounded_by_bytes_too_and_keeps_the_newest() {
        let feed = FeedConfig {
            rate_hz: 0.0,
            payload_bytes: 100,
        };
        let cost = |seq: u64, payload| Event::new(seq, seq, payload).cost();
        // Room for exactly three events of 100 bytes, though `retain` allows 100.
        let bound = cost(3, 100) + cost(4, 100) + cost(5, 100);
        let h = Hub::bounded(feed, 100, bound);
        h.publish(&[1, 2, 3, 4, 5], 100);
        assert_eq!(h.ring_usage(), (3, bound));
        let b = h.read_after(0, 10);
        assert_eq!((seqs(&b), b.missed), (vec![3, 4, 5], 2));
        // A bigger event pushes out as many old ones as it needs (here two).
        h.publish(&[6], 200);
        assert_eq!(h.ring_usage(), (2, cost(5, 100) + cost(6, 200)));
        // One event over the bound on its own is still kept: a publish never leaves the
        // ring empty.
        h.publish(&[7], 10_000);
        assert_eq!(h.ring_usage(), (1, cost(7, 10_000)));
        assert_eq!(seqs(&h.read_after(6, 10)), vec![7]);
    }

    #[test]
    fn empty_hub_reads_nothing() {
        let b = hub(3).read_after(0, 10);
        assert_eq!((b.events.len(), b.missed, b.head), (0, 0, 0));
    }
}
