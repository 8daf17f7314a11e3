//! The hub: the ring of recent events, the head sequence number every transport waits on,
//! and the live feed settings.
//!
//! Invariants:
//! - `seq` rises by exactly 1 per published event over the hub's lifetime; changing the
//!   feed never resets it, so every client's cursor stays valid.
//! - The ring holds the newest `retain` events in seq order; `read_after` reports how many
//!   events a cursor lost to the ring's end as `missed` rather than skipping them silently.
//! - Publishing never waits for a consumer: it takes the ring's write lock for the length
//!   of a `VecDeque` push and then bumps the head `watch`, which wakes every waiter.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, RwLock};

use tokio::sync::watch;

use crate::event::Event;

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

/// The in-memory hub shared by the publisher and every transport.
#[derive(Debug)]
pub struct Hub {
    ring: RwLock<VecDeque<Event>>,
    retain: usize,
    head_tx: watch::Sender<u64>,
    published: AtomicU64,
    feed: Mutex<FeedState>,
    feed_changed: Condvar,
}

impl Hub {
    /// A hub with an empty ring of `retain` events and the given initial feed.
    pub fn new(feed: FeedConfig, retain: usize) -> Hub {
        let (head_tx, _) = watch::channel(0);
        Hub {
            ring: RwLock::new(VecDeque::with_capacity(retain.min(1 << 16))),
            retain,
            head_tx,
            published: AtomicU64::new(0),
            feed: Mutex::new(FeedState {
                config: feed,
                generation: 0,
                stopping: false,
            }),
            feed_changed: Condvar::new(),
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

    /// A receiver that sees every change of the head seq.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.head_tx.subscribe()
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

    /// Asks the publisher to stop.
    pub fn stop_publishing(&self) {
        self.lock_feed().stopping = true;
        self.feed_changed.notify_all();
    }

    /// Publishes events stamped with the given scheduled times, in order, and returns the
    /// head seq afterwards. Encoding happens before the ring lock is taken.
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
                if ring.len() == self.retain {
                    ring.pop_front();
                }
                ring.push_back(ev);
            }
        }
        self.published
            .fetch_add(stamps_ns.len() as u64, Ordering::Relaxed);
        self.head_tx.send_replace(last);
        last
    }

    /// Retained events with seq > `after`, oldest first, at most `limit`.
    pub fn read_after(&self, after: u64, limit: usize) -> Batch {
        let ring = self.ring.read().unwrap_or_else(|e| e.into_inner());
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
    fn empty_hub_reads_nothing() {
        let b = hub(3).read_after(0, 10);
        assert_eq!((b.events.len(), b.missed, b.head), (0, 0, 0));
    }
}
