//! The measure window's events, read from the server's own feed.
//!
//! Which events belong to a window is a fact about the feed, not about what the clients
//! happened to receive and not about a `/stats` head read at one instant: an event belongs
//! to the window when its `ts` falls in `[start, end)`. Just before the window opens,
//! [`FeedReader::head`] asks the feed for its head seq (`GET /poll` without `after`); every
//! event up to that seq was published before the window opened. After the window,
//! [`FeedReader::window_seqs`] pages through the feed from a little before that head and
//! keeps exactly the seqs whose `ts` is in the window. It stops at the first event stamped
//! at or after the window's end: seqs are published in order, so once that event exists
//! every event of the window exists too, however late a sluggish publisher put it out. A
//! feed that publishes nothing past the end within a bounded wait (paused, or slower than
//! the load generator was told) ends the read with what was published by then, and says
//! so.
//!
//! The reader uses its own connection, and the endpoint of a transport *other* than the one
//! measured (`/longpoll?timeout_ms=0` for a short-poll scenario, `/poll` otherwise; both
//! answer at once and are in every implementation), so the server's byte counters for the
//! measured transport never include its requests.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::Target;
use crate::counting::Window;
use crate::event::{parse_event, parse_poll_body};
use crate::scenario::Transport;
use crate::stats::{StatsClient, StatsError};

/// Events asked for per page: at most this many, and at most [`PAGE_BYTES`] of them.
const PAGE_EVENTS: u64 = 1_000;
/// A bound on one page's body, so large payloads do not make pages huge.
const PAGE_BYTES: u64 = 4 << 20;
/// Most pages one read may take (2 million events), whatever the feed does.
const MAX_PAGES: u32 = 2_000;
/// How long to wait between reads while the feed has nothing new.
const IDLE_RETRY: Duration = Duration::from_millis(20);
/// Seqs before the head read at the window's start that are read again, in case a server
/// stamps events a little later than it publishes them.
const BACKSTEP_MIN: u64 = 64;

/// Why the feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The exchange failed.
    #[error("{0}")]
    Stats(#[from] StatsError),
    /// The answer is not a poll body.
    #[error("the poll answer is not a poll body: {0}")]
    Body(#[from] serde_json::Error),
}

/// The window's events as the feed has them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedWindow {
    /// First and last seq stamped in the window; `None` if the feed has none.
    pub range: Option<(u64, u64)>,
    /// Whether the read saw an event stamped at or after the window's end (so no event of
    /// the window can still be unpublished).
    pub end_confirmed: bool,
    /// Whether the first event read was stamped before the window (so no earlier event can
    /// be in it), or the read started at the feed's first seq.
    pub start_confirmed: bool,
    /// Events the server said had left its ring before they could be read.
    pub ring_missed: u64,
}

/// Reads the feed over a connection of its own.
#[derive(Debug)]
pub struct FeedReader {
    client: StatsClient,
    /// The measured transport, whose endpoint the reader avoids.
    measured: Transport,
    /// Events per page.
    page_events: u64,
}

impl FeedReader {
    /// A reader for a scenario of `measured` with events of about `payload_bytes`.
    pub fn new(target: &Target, measured: Transport, payload_bytes: usize) -> Self {
        // An event's JSON is its payload plus about 60 bytes of seq, ts and keys.
        let per_event = payload_bytes as u64 + 64;
        Self {
            client: StatsClient::new(target),
            measured,
            page_events: (PAGE_BYTES / per_event).clamp(1, PAGE_EVENTS),
        }
    }

    fn path(&self, after: Option<u64>) -> String {
        let endpoint = match self.measured {
            Transport::ShortPoll => "/longpoll?timeout_ms=0&",
            _ => "/poll?",
        };
        match after {
            Some(after) => format!("{endpoint}after={after}&limit={}", self.page_events),
            None => format!("{endpoint}limit={}", self.page_events),
        }
    }

    /// The feed's head seq now: every event up to it has been published.
    pub async fn head(&mut self) -> Result<u64, FeedError> {
        let body = self.client.get(&self.path(None)).await?;
        Ok(parse_poll_body(&body)?.next)
    }

    /// The seqs stamped inside `window`, reading from a little before `head_at_start` (the
    /// head read just before the window opened), until an event stamped at or after the
    /// window's end appears or `deadline` passes. `window` is on this host's clock; add
    /// `to_server_ns` to it to get the server's, on which `ts` is stamped.
    pub async fn window_seqs(
        &mut self,
        window: &Window,
        to_server_ns: i64,
        head_at_start: u64,
        rate_hz: f64,
        deadline: Instant,
    ) -> Result<FeedWindow, FeedError> {
        // A second of the feed, at least BACKSTEP_MIN events, at most the pages' bound.
        let backstep = (rate_hz.max(0.0) as u64).clamp(BACKSTEP_MIN, PAGE_EVENTS * 10);
        let mut after = head_at_start.saturating_sub(backstep);
        let mut out = FeedWindow {
            range: None,
            end_confirmed: false,
            start_confirmed: after == 0,
            ring_missed: 0,
        };
        let mut first_page = true;
        for _ in 0..MAX_PAGES {
            let body = self.client.get(&self.path(Some(after))).await?;
            let page = parse_poll_body(&body)?;
            out.ring_missed += page.missed;
            for raw in &page.events {
                let mut ev = parse_event(raw.get().as_bytes())?;
                ev.ts = ev.ts.saturating_add_signed(-to_server_ns);
                if first_page {
                    out.start_confirmed |= ev.ts < window.start_ns();
                    first_page = false;
                }
                if ev.ts >= window.end_ns() {
                    out.end_confirmed = true;
                    return Ok(out);
                }
                if window.contains(ev.ts) {
                    out.range = Some(match out.range {
                        None => (ev.seq, ev.seq),
                        Some((lo, _)) => (lo, ev.seq),
                    });
                }
            }
            if page.events.is_empty() {
                if Instant::now() >= deadline {
                    return Ok(out);
                }
                tokio::time::sleep(IDLE_RETRY).await;
            }
            after = page.next.max(after);
        }
        Ok(out)
    }
}
