//! A push subscriber's cursor into the ring, shared by WebSocket and SSE.
//!
//! A push connection has no queue of its own: its "queue" is the stretch of the shared
//! ring between its cursor and the head. Falling more than `queue` events behind makes it a
//! slow consumer, which the transport closes and counts. This keeps an idle subscriber's
//! memory at a few words and makes fan-out one ring push plus one wake-up per subscriber.
//!
//! A subscriber that resumes (`?after=`, `Last-Event-ID`) further back than its queue
//! allows starts half a queue behind the head instead: it would otherwise be closed before
//! its first event, and a reconnecting browser would loop forever on the same cursor. The
//! events it skips are missed, which the client sees as the gap in `seq` between its
//! cursor and the first event it receives, exactly as for events that left the ring.

use crate::event::Event;
use crate::hub::Hub;

/// Most events handed to the socket in one batch.
pub const BATCH: usize = 256;

/// Where a push subscriber is in the feed.
#[derive(Debug)]
pub struct Follower {
    /// Seq of the last event handed to the transport.
    pub cursor: u64,
    /// How far behind the head the subscriber may fall.
    pub queue: u64,
}

/// What the follower should do next.
#[derive(Debug)]
pub enum Next {
    /// Send these events (oldest first).
    Send(Vec<Event>),
    /// Nothing new: wait for the head to move.
    Wait,
    /// The subscriber is further behind than its queue allows.
    TooSlow {
        /// How many events it was behind.
        behind: u64,
    },
}

impl Follower {
    /// A follower starting after `after`, or at the head when `after` is `None`; a cursor
    /// more than `queue` behind the head starts `queue / 2` behind it (see the module doc).
    pub fn new(hub: &Hub, after: Option<u64>, queue: usize) -> Follower {
        let head = hub.head();
        let queue = queue as u64;
        let cursor = match after {
            None => head,
            Some(a) if head.saturating_sub(a) > queue => {
                let start = head - queue / 2;
                tracing::debug!(after = a, start, "push replay starts closer to the head");
                start
            }
            Some(a) => a,
        };
        Follower { cursor, queue }
    }

    /// How many published events the subscriber has not been handed yet.
    pub fn behind(&self, hub: &Hub) -> u64 {
        hub.head().saturating_sub(self.cursor)
    }

    /// Reads the next batch, or says to wait, or that the subscriber is too slow.
    pub fn next(&mut self, hub: &Hub) -> Next {
        let behind = self.behind(hub);
        if behind > self.queue {
            return Next::TooSlow { behind };
        }
        // Caught up (every wake-up ends here after its batch): no need to take the ring's
        // lock to find nothing.
        if behind == 0 {
            return Next::Wait;
        }
        let batch = hub.read_after(self.cursor, BATCH);
        if batch.missed > 0 {
            // Only possible with a replay cursor older than the ring: report it as the gap
            // the client will see, by jumping past it.
            tracing::debug!(missed = batch.missed, "push replay starts after a gap");
        }
        match batch.events.last() {
            Some(last) => {
                self.cursor = last.seq;
                Next::Send(batch.events)
            }
            None => Next::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::FeedConfig;

    #[test]
    fn follows_in_batches_and_detects_slow() {
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 1,
            },
            10_000,
        );
        let mut f = Follower::new(&hub, None, 300);
        assert!(matches!(f.next(&hub), Next::Wait));
        hub.publish(&vec![1; 300], 1);
        let Next::Send(evs) = f.next(&hub) else {
            panic!("expected events")
        };
        assert_eq!((evs.len(), evs[0].seq, f.cursor), (BATCH, 1, BATCH as u64));
        let Next::Send(evs) = f.next(&hub) else {
            panic!("expected events")
        };
        assert_eq!((evs.len(), f.cursor), (300 - BATCH, 300));
        hub.publish(&vec![1; 301], 1);
        assert!(matches!(f.next(&hub), Next::TooSlow { behind: 301 }));
    }

    #[test]
    fn a_cursor_too_far_back_starts_half_a_queue_behind_the_head() {
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 1,
            },
            1_000,
        );
        hub.publish(&[1; 100], 1);
        // 100 behind with a queue of 10: starts after 95, so the first event is 96.
        let mut f = Follower::new(&hub, Some(0), 10);
        assert_eq!(f.cursor, 95);
        let Next::Send(evs) = f.next(&hub) else {
            panic!("expected events")
        };
        assert_eq!(
            evs.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (96..=100).collect::<Vec<_>>()
        );
        // Exactly a queue behind is still replayed in full.
        assert_eq!(Follower::new(&hub, Some(90), 10).cursor, 90);
        assert_eq!(Follower::new(&hub, Some(89), 10).cursor, 95);
    }

    #[test]
    fn replays_from_cursor() {
        let hub = Hub::new(
            FeedConfig {
                rate_hz: 0.0,
                payload_bytes: 1,
            },
            100,
        );
        hub.publish(&[1, 2, 3, 4], 1);
        let mut f = Follower::new(&hub, Some(2), 10);
        let Next::Send(evs) = f.next(&hub) else {
            panic!("expected events")
        };
        assert_eq!(evs.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4]);
    }
}
