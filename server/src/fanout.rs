//! Publish-time writes: the publisher writes each new event straight to the sockets of
//! plain push streams (direct WebSocket and SSE over TCP) that are caught up with the head,
//! so a delivery costs one `send` and no task wake-up.
//!
//! Why: with a task per stream, every event wakes every subscriber's task, and at 10,000
//! streams each wake-up touches a task, its future, its socket's readiness and the head's
//! waiter list, cold in cache: the server spent 14.5–15.1 µs per delivery against the C
//! floor writer's 10.1 (`scripts/floor-compare.sh`; README, "Which side the distance is
//! on"). A measurement-only prototype of this design took it to 9.96 µs and the latency to
//! the floor's (1.00 p50, 0.99 p99 at 10,000 × 1/s).
//!
//! How: a stream whose cursor equals the head, with nothing of its own left to write,
//! registers its socket ([`Fanout::register`]) and then waits only for its client, for
//! shutdown, or to be handed back. After the hub moves the head, the publisher writes the
//! new events (frames encoded once per pass) to every registered socket with one
//! non-blocking `send` each ([`Fanout::write`]). A socket that does not take the whole
//! write, or fails, is handed back: its entry keeps the unwritten rest and the error, and
//! its task is woken to write the rest itself and go on as before (lag, then 1013 or the
//! end of the stream). A task that needs its socket (its client sent something, shutdown)
//! takes its entry back first ([`Fanout::take`]).
//!
//! A parked long-poll registers the same way ([`Kind::LongPoll`]): the publisher writes
//! its whole answer (head and body, as `crate::poll_direct` writes them, encoded once per
//! pass per number of events) and does not wake its task. It then reads the client's next
//! request itself, as the floor's writer does: in the next pass, just before answering it,
//! or in a sweep between passes ([`Fanout::sweep`], [`SWEEP_DELAYS`]), and parks a plain
//! long-poll from the answer's cursor in place; anything else goes back to the task with
//! the bytes read. So a client that keeps long-polling costs the server a `send` and a
//! `recv` per delivery on the publisher's thread and no wake-up at all: its socket's
//! receive low-water mark keeps the arriving request from waking the task
//! ([`lend_socket`]), which still wakes for the client's FIN or RST. Measured:
//! - on the task path, a delivery cost two wake-ups (the publish, then the next request)
//!   and a body encoded per client; the server spent 1.9–2.2× the C floor writer's CPU per
//!   delivery (`scripts/floor-compare.sh`);
//! - with the publisher answering and the task reading each next request, one wake-up:
//!   1.43× at 10,000 clients, and the worker ran inside the publisher's pass on the same
//!   CPU (a fifth of the 10,000-client p99);
//! - with the publisher reading the requests too: 1.09–1.22× at 10,000 clients, and the
//!   worker asleep (README);
//! - with a pass reading them with a plain `recv` and no clock (`Arrival::Now`): 1.02×
//!   at 10,000 clients and 1.15× at 100 × 10/s (medians of 3 and 7 rounds).
//!
//! Invariants:
//! - While registered, a socket is written only by the publisher, and only under the
//!   registry's lock; its task writes nothing to it until it has taken its entry back
//!   (under the same lock), and what the publisher left unwritten goes out first. So
//!   frames never interleave and the bytes are the task path's, byte for byte.
//! - An entry gets a contiguous run of events: registration happens under the lock and only
//!   while the stream's cursor is the head; the hub moves the head before the pass takes the
//!   lock, so an event published around a registration is either before the cursor or
//!   written by the pass. An entry that would get a gap (two publishers racing) is handed
//!   back with nothing written, and its task catches up from the ring.
//! - A socket leaves the registry before it is closed: the task's [`Registered`] guard
//!   takes the entry back when dropped, so no descriptor the publisher can reach is ever
//!   closed or reused under it.
//! - Bytes and writes are counted as `Counted` counts them: each `send` that takes bytes is
//!   one socket write, its bytes go out under the stream's class.
//! - A long-poll counts as parked (`Stats::parked`) from registration, or from the
//!   publisher's read of its request, until the publisher writes its answer or its task
//!   takes it back unanswered, exactly once either way; once its server's shutdown has
//!   begun it is handed back unwritten, since an answer must then say `connection: close`,
//!   and no request is read.
//! - A request the publisher reads counts as the task's path counts it (a socket read, its
//!   bytes in, the request by endpoint and path), and its timeout counts from its arrival
//!   (the kernel's receive timestamp). The task's timer is never later than a parked
//!   request's deadline: the publisher wakes the task when a request it parks is due
//!   sooner ([`Fanout::rearm`]).
//! - Every answered long-poll leaves the publisher's hands within the last sweep round: its
//!   next request parked, or the entry handed back (the task then waits for the request as
//!   before, and its header timeout counts from the answer). Until then it counts in
//!   [`Fanout::awaiting`] (`/stats` `long_poll_answered`), exactly once: from the answer
//!   until its next request is read or the entry handed back or taken.
//! - Bounded: a pass holds the lock for at most [`CHUNK`] sends at a time, writes each
//!   socket once, and writes at most [`MAX_PASS_BYTES`] (a larger batch is handed back
//!   to the tasks, which write it in their own bounded chunks).

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::app::App;
use crate::event::Event;
use crate::stats::{Class, Endpoint, Path, Stats};

/// Sockets written per hold of the registry's lock: a task taking its entry back waits
/// for at most this many sends (about 0.3 ms at 5 µs each).
pub const CHUNK: usize = 64;

/// Most bytes of frames one pass writes to a socket; a larger batch (events published
/// together while the publisher was behind) is handed back to the tasks. The same bound
/// as the tasks' own largest write (`WRITE_CHUNK` in `ws_direct` and `sse_direct`).
pub const MAX_PASS_BYTES: usize = 64 * 1024;

/// When the publisher reads the next requests of the long-polls a pass answered, counted
/// from the end of that pass ([`Fanout::sweep`]): each round reads those that have
/// arrived since the last; what has not arrived by the last round is handed back to its
/// task, which waits for it as before. A feed faster than the first round (about 7 events
/// a second and up) has its next pass read them instead, each just before its answer, as
/// the floor's writer does: at 100 clients × 10/s that took the publisher's CPU per
/// delivery from 17 µs (a first round at 5 ms, reading each request in a sweep of its own)
/// to 11–12 µs, against the floor writer's 10 (`/tmp/sw.sh`, 3 pairs; README). A
/// request's timeout counts from its arrival (the kernel's receive timestamp), however
/// late it is read.
pub const SWEEP_DELAYS: [Duration; 3] = [
    Duration::from_millis(150),
    Duration::from_millis(300),
    Duration::from_millis(600),
];

/// How long after an answer a long-poll's task leaves its client's next request to the
/// sweeps: their last round is a pass plus 600 ms after it. Only a publisher that does
/// not sweep (no publisher thread) leaves one for this long.
pub const UNREAD_GRACE: Duration = Duration::from_secs(2);

/// Which framing a registered socket takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// WebSocket text frames ([`Event::ws`]).
    Ws,
    /// SSE events, each one HTTP chunk as hyper frames it.
    Sse,
    /// A parked long-poll: answered once, with at most `limit` events, as
    /// `crate::poll_direct` answers (head with `date` and `content-length`, then the body).
    LongPoll {
        /// The request's `limit`.
        limit: u32,
    },
}

/// What a task gets when it takes its entry back.
#[derive(Debug)]
pub struct Handback {
    /// Seq of the last event written to the socket or included in `rest`.
    pub seq: u64,
    /// Frame bytes the socket did not take (the tail of the publisher's last write); the
    /// task writes them before anything else.
    pub rest: Bytes,
    /// Why the socket failed, if a write did.
    pub error: Option<io::Error>,
    /// A long-poll the publisher answered: when (the next request's header timeout counts
    /// from then). What is left of the answer is in `rest`.
    pub answered: Option<Instant>,
    /// A long-poll: bytes of the client's next request the publisher read and left to the
    /// task (counted as read); the task decides on them before reading more.
    pub read: Bytes,
    /// A long-poll not answered: the `limit` and deadline of the request now parked (the
    /// publisher may have read it in place of the one the task registered).
    pub limit: u32,
    /// See `limit`.
    pub due: Option<Instant>,
}

/// What the publisher left for a task when it stopped writing to its socket.
#[derive(Debug, Default)]
struct Left {
    /// Frame bytes the socket did not take.
    rest: Bytes,
    /// Why the socket failed, if it did.
    error: Option<io::Error>,
    /// Bytes of a long-poll's next request the publisher read but did not take.
    read: Bytes,
}

/// A registered socket.
#[derive(Debug)]
struct Entry {
    fd: RawFd,
    kind: Kind,
    /// Seq of the last event written (or handed back in `left`).
    seq: u64,
    /// Set once the publisher has stopped writing: the unwritten rest, any error, and a
    /// long-poll's request bytes read but not taken.
    left: Option<Box<Left>>,
    /// The task to wake when the entry is handed back.
    waker: Option<Waker>,
    stats: Arc<Stats>,
    /// A long-poll: when the publisher answered it (it is then written to no more), as a
    /// [`Stamp`]: 4 bytes beside `fd` rather than 16 of an `Instant`, keeping the entry in
    /// 64 bytes.
    answered: Option<Stamp>,
    /// A long-poll: its server, whose rules the publisher reads the next request by. Once
    /// its shutdown has begun an answer must say `connection: close`, so the publisher
    /// hands the entry back for its task to answer.
    app: Option<Arc<App>>,
    /// A long-poll not answered: when its request's timeout runs out (rounded up to the
    /// millisecond).
    due: Option<Stamp>,
    /// A long-poll: when its task next looks at the entry (its timer). The publisher parks
    /// a request it reads only if the request's deadline is not before this.
    check: Option<Stamp>,
}

impl Entry {
    /// Whether the publisher still writes to this entry.
    fn is_live(&self) -> bool {
        self.left.is_none() && self.answered.is_none()
    }

    /// Whether this is an answered long-poll whose next request the publisher reads.
    fn awaits_request(&self) -> bool {
        self.left.is_none() && self.answered.is_some()
    }

    /// Stops writing to the entry and wakes its task.
    fn hand_back(&mut self, left: Left) {
        self.left = Some(Box::new(left));
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

#[derive(Debug, Default)]
struct Slots {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    /// Entries being written to (registered, not handed back).
    live: usize,
    /// Answered long-polls whose next request the publisher reads
    /// ([`Entry::awaits_request`]).
    awaiting: usize,
    /// The next sweep for answered long-polls' requests, if one is due.
    sweep: Option<Sweep>,
    /// Set when a pass schedules a sweep where none was; cleared by
    /// [`Fanout::take_new_sweep`].
    new_sweep: bool,
    /// What the publisher reads a request into (the registry's lock is held meanwhile).
    buf: Vec<u8>,
}

/// A scheduled sweep: when, and which of [`SWEEP_DELAYS`] it is.
#[derive(Debug, Clone, Copy)]
struct Sweep {
    /// The end of the pass that answered.
    from: Instant,
    round: usize,
}

impl Sweep {
    fn at(&self) -> Instant {
        self.from + SWEEP_DELAYS[self.round]
    }
}

/// The registry of sockets the publisher writes to.
#[derive(Debug)]
pub struct Fanout {
    slots: Mutex<Slots>,
    /// What [`Stamp`]s count from.
    epoch: Instant,
}

impl Default for Fanout {
    fn default() -> Self {
        Fanout {
            slots: Mutex::default(),
            epoch: Instant::now(),
        }
    }
}

/// An instant as 1 + milliseconds since the registry's epoch, modulo 2^32 (never zero). It is
/// read back within a header timeout or so of being taken (a long-poll's task reads it
/// when its client sends the next request, or at the latest a header timeout after the
/// answer, when it closes a silent client), far inside the 49 days it takes to wrap.
#[derive(Debug, Clone, Copy)]
struct Stamp(std::num::NonZeroU32);

/// Whether `a` is not before `b` (both taken within 24 days of each other).
fn not_before(a: Stamp, b: Stamp) -> bool {
    a.0.get().wrapping_sub(b.0.get()) as i32 >= 0
}

/// How many milliseconds before `now_ms` (milliseconds since the epoch, modulo 2^32)
/// `stamp` was taken; negative for a stamp ahead of it (a deadline). Stamps are read back
/// within 24 days of being taken.
fn ms_since(now_ms: u32, stamp: Stamp) -> i64 {
    // Where ms + 1 wraps to zero the stamp says 1: one millisecond late, once in 49 days.
    i64::from(now_ms.wrapping_add(1).wrapping_sub(stamp.0.get()) as i32)
}

impl Fanout {
    fn stamp(&self, at: Instant) -> Stamp {
        let ms = at.saturating_duration_since(self.epoch).as_millis() as u32;
        Stamp(std::num::NonZeroU32::new(ms.wrapping_add(1)).unwrap_or(std::num::NonZeroU32::MIN))
    }

    /// `at` rounded up to the millisecond: a deadline read back is never early.
    fn stamp_up(&self, at: Instant) -> Stamp {
        self.stamp(at + Duration::from_nanos(999_999))
    }

    /// The instant of `stamp`, to the millisecond (within 24 days of now, either way): the
    /// same instant however often it is read.
    fn instant(&self, stamp: Stamp) -> Instant {
        let now_ms = Instant::now()
            .saturating_duration_since(self.epoch)
            .as_millis();
        let now_ms = u64::try_from(now_ms).unwrap_or(u64::MAX);
        let ms = now_ms.saturating_add_signed(-ms_since(now_ms as u32, stamp));
        self.epoch + Duration::from_millis(ms)
    }
}

impl Fanout {
    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many sockets the publisher writes to now.
    pub fn live(&self) -> usize {
        self.lock().live
    }

    /// How many answered long-polls have their next request read by the publisher, not
    /// read yet (a request sent meanwhile waits in the socket's buffer).
    pub fn awaiting(&self) -> usize {
        self.lock().awaiting
    }

    /// Registers `fd` as caught up at `seq`, if `head()` (read under the registry's lock)
    /// is still `seq`; returns the entry's index, or `None` when the head has moved (the
    /// task catches up itself and tries again).
    ///
    /// A long-poll ([`Kind::LongPoll`]) counts as parked (`Stats::parked`) from here until
    /// the publisher answers it or it is taken back unanswered; `poll` is its server and
    /// its request's deadline (for the other kinds, `None`).
    pub fn register(
        &self,
        fd: RawFd,
        kind: Kind,
        seq: u64,
        head: impl FnOnce() -> u64,
        stats: &Arc<Stats>,
        poll: Option<(&Arc<App>, Instant)>,
    ) -> Option<u32> {
        let mut slots = self.lock();
        if head() != seq {
            return None;
        }
        if let Kind::LongPoll { .. } = kind {
            stats.parked.fetch_add(1, Relaxed);
        }
        let entry = Entry {
            fd,
            kind,
            seq,
            left: None,
            waker: None,
            stats: Arc::clone(stats),
            answered: None,
            app: poll.map(|(app, _)| Arc::clone(app)),
            due: poll.map(|(_, due)| self.stamp_up(due)),
            check: None,
        };
        let idx = match slots.free.pop() {
            Some(i) => {
                slots.entries[i as usize] = Some(entry);
                i
            }
            None => {
                slots.entries.push(Some(entry));
                u32::try_from(slots.entries.len() - 1).ok()?
            }
        };
        slots.live += 1;
        Some(idx)
    }

    /// `Ready` once the publisher has handed entry `idx` back (the socket did not take a
    /// write, or failed), or, for a long-poll, has parked a request due before the task's
    /// timer ([`Fanout::rearm`] then says which); otherwise remembers the task to wake.
    pub fn poll_handed_back(&self, idx: u32, cx: &mut Context<'_>) -> Poll<()> {
        let mut slots = self.lock();
        let Some(entry) = slots.entries.get_mut(idx as usize).and_then(Option::as_mut) else {
            return Poll::Ready(());
        };
        let ready = match entry.kind {
            Kind::LongPoll { .. } => entry.left.is_some() || entry.check.is_none(),
            Kind::Ws | Kind::Sse => !entry.is_live(),
        };
        if ready {
            return Poll::Ready(());
        }
        match &mut entry.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Takes entry `idx` out of the registry: from now on only the task writes to the
    /// socket. Idempotent per registration (a second take finds nothing).
    pub fn take(&self, idx: u32) -> Option<Handback> {
        let mut slots = self.lock();
        let entry = slots.entries.get_mut(idx as usize)?.take()?;
        slots.free.push(idx);
        if entry.is_live() {
            slots.live -= 1;
        }
        if entry.awaits_request() {
            slots.awaiting -= 1;
        }
        drop(slots);
        let limit = match entry.kind {
            Kind::LongPoll { limit } => {
                if entry.answered.is_none() {
                    // Parked until now; its task answers it.
                    entry.stats.parked.fetch_sub(1, Relaxed);
                }
                limit
            }
            Kind::Ws | Kind::Sse => 0,
        };
        let left = entry.left.map(|left| *left).unwrap_or_default();
        Some(Handback {
            seq: entry.seq,
            rest: left.rest,
            error: left.error,
            answered: entry.answered.map(|at| self.instant(at)),
            read: left.read,
            limit,
            due: entry.due.map(|at| self.instant(at)),
        })
    }

    /// A long-poll's task timer: when the task next looks at entry `idx`, recorded in the
    /// entry, or `None` when that is now: the entry is gone or handed back, its timeout has
    /// run out, or it has waited [`UNREAD_GRACE`] (at most `header`) after an answer with
    /// its next request unread (no sweep read it: the task reads it, or times the client
    /// out). The task looks at least once per `header`, since the publisher answers, and
    /// parks the next request, without waking it.
    pub fn rearm(&self, idx: u32, header: Duration) -> Option<Instant> {
        let now = Instant::now();
        let mut slots = self.lock();
        let entry = slots.entries.get_mut(idx as usize)?.as_mut()?;
        let wake = match (entry.answered, entry.due) {
            (Some(at), _) => self.instant(at) + UNREAD_GRACE.min(header),
            (None, Some(due)) => self.instant(due).min(now + header),
            (None, None) => now + header,
        };
        if wake <= now || entry.left.is_some() {
            return None;
        }
        entry.check = Some(self.stamp_up(wake));
        Some(wake)
    }

    /// When the publisher answered long-poll `idx`, if it has.
    #[cfg(test)]
    pub fn answered(&self, idx: u32) -> Option<Instant> {
        let stamp = self.lock().entries.get(idx as usize)?.as_ref()?.answered?;
        Some(self.instant(stamp))
    }

    /// After the head has moved: if any socket is registered, writes the events `events()`
    /// returns (the ones just published, read back from the ring) with [`Fanout::write`].
    ///
    /// The check is made under the lock: a registration whose lock came first is seen
    /// here; one whose lock comes after this read the moved head and needs nothing.
    pub fn write_with(&self, events: impl FnOnce() -> Vec<Event>) {
        {
            let slots = self.lock();
            if slots.live == 0 && slots.awaiting == 0 {
                return;
            }
        }
        self.write(&events());
    }

    /// Writes `events` (oldest first, seq contiguous) to every registered socket: one
    /// `send` per socket. Sockets that do not take it all are handed back. A long-poll is
    /// answered with the first `limit` of them and then written to no more; its task is
    /// not woken. The next request of an answered long-poll is read first, if it has
    /// arrived, and answered in the same pass ([`Fanout::sweep`] reads the others); one
    /// that has not arrived is handed back, so that its task answers it when it does.
    pub fn write(&self, events: &[Event]) {
        let (Some(first), Some(last)) = (events.first(), events.last()) else {
            return;
        };
        let (first, last) = (first.seq, last.seq);
        let mut frames = Frames::new(events);
        let now = Instant::now();
        let stamp = self.stamp(now);
        let mut answered_any = false;
        let mut closing = Closing::default();
        self.each_chunk(|chunk| {
            let Chunk {
                entries,
                live,
                awaiting,
                buf: req_buf,
            } = chunk;
            for entry in entries.iter_mut().flatten() {
                if entry.awaits_request() {
                    *awaiting -= 1;
                    match read_next(
                        self,
                        entry,
                        req_buf,
                        first - 1,
                        now,
                        Arrival::Now,
                        &mut closing,
                    ) {
                        Step::Parked => *live += 1,
                        Step::Back => continue,
                        Step::NotYet => {
                            // Events it has not asked for yet: its task answers the
                            // request when it comes.
                            entry.hand_back(Left::default());
                            continue;
                        }
                    }
                }
                if !entry.is_live() || entry.seq >= last {
                    continue;
                }
                let shutting = entry.app.as_deref().is_some_and(|app| closing.of(app));
                let buf = if entry.seq + 1 != first {
                    // A gap: this pass cannot write what the socket needs first.
                    None
                } else if shutting {
                    // Its answer must now say `connection: close`: the task's to write.
                    None
                } else {
                    frames.get(entry.kind)
                };
                let outcome = match buf {
                    Some(buf) => send_counted(entry, buf),
                    None => Outcome::HandBack(Bytes::new(), None),
                };
                // The seq of the last event written (or left in the rest).
                let upto = match entry.kind {
                    Kind::LongPoll { limit } => last.min(entry.seq + u64::from(limit)),
                    Kind::Ws | Kind::Sse => last,
                };
                let poll = matches!(entry.kind, Kind::LongPoll { .. });
                let wrote = match &outcome {
                    Outcome::All => true,
                    Outcome::HandBack(rest, error) => error.is_none() && !rest.is_empty(),
                };
                if wrote {
                    entry.seq = upto;
                    if poll {
                        entry.answered = Some(stamp);
                        entry.due = None;
                        entry.stats.parked.fetch_sub(1, Relaxed);
                    }
                }
                *live -= 1;
                match outcome {
                    Outcome::All if poll => {
                        // Answered whole: its next request is the publisher's to read.
                        *awaiting += 1;
                        answered_any = true;
                    }
                    Outcome::All => *live += 1,
                    Outcome::HandBack(rest, error) => entry.hand_back(Left {
                        rest,
                        error,
                        read: Bytes::new(),
                    }),
                }
            }
        });
        if answered_any {
            let mut slots = self.lock();
            if slots.sweep.is_none() {
                slots.new_sweep = true;
            }
            slots.sweep = Some(Sweep {
                from: Instant::now(),
                round: 0,
            });
        }
    }

    /// Reads the next requests of answered long-polls, if a sweep is due (see
    /// [`SWEEP_DELAYS`]): each request that is a plain long-poll from its answer's cursor,
    /// caught up with `head()`, is parked in place (counted as the task would count it),
    /// and the task is not woken; anything else is handed back with the bytes read. Returns
    /// when the next sweep is due, if one is.
    ///
    /// The publisher's thread calls this between passes, so a client's next request costs
    /// one `recv` in a batch rather than a wake-up of its task; the head is read under the
    /// lock, as [`Fanout::register`] reads it.
    pub fn sweep(&self, head: impl Fn() -> u64) -> Option<Instant> {
        let now = Instant::now();
        let sweep = {
            let slots = self.lock();
            match slots.sweep {
                Some(s) if s.at() <= now => s,
                other => return other.map(|s| s.at()),
            }
        };
        let last_round = sweep.round + 1 == SWEEP_DELAYS.len();
        let mut not_yet = 0;
        let mut closing = Closing::default();
        self.each_chunk(|chunk| {
            let Chunk {
                entries,
                live,
                awaiting,
                buf,
            } = chunk;
            let head = head();
            for entry in entries.iter_mut().flatten() {
                if !entry.awaits_request() {
                    continue;
                }
                match read_next(self, entry, buf, head, now, Arrival::Stamped, &mut closing) {
                    Step::Parked => {
                        *awaiting -= 1;
                        *live += 1;
                    }
                    Step::Back => *awaiting -= 1,
                    Step::NotYet if last_round => {
                        *awaiting -= 1;
                        entry.hand_back(Left::default());
                    }
                    Step::NotYet => not_yet += 1,
                }
            }
        });
        let mut slots = self.lock();
        // A pass meanwhile scheduled a sweep of its own: that one stands.
        if slots
            .sweep
            .is_some_and(|s| s.from == sweep.from && s.round == sweep.round)
        {
            slots.sweep = (not_yet > 0 && !last_round).then_some(Sweep {
                from: sweep.from,
                round: sweep.round + 1,
            });
        }
        slots.sweep.map(|s| s.at())
    }

    /// Runs `f` over every entry, [`CHUNK`] of them per hold of the lock, so that a task
    /// taking its entry back waits for at most a chunk.
    fn each_chunk(&self, mut f: impl FnMut(Chunk<'_>)) {
        let mut at = 0;
        loop {
            let mut guard = self.lock();
            let slots = &mut *guard;
            let end = (at + CHUNK).min(slots.entries.len());
            if at >= end {
                return;
            }
            f(Chunk {
                entries: &mut slots.entries[at..end],
                live: &mut slots.live,
                awaiting: &mut slots.awaiting,
                buf: &mut slots.buf,
            });
            at = end;
        }
    }

    /// When the next sweep is due, if one is.
    pub fn sweep_due(&self) -> Option<Instant> {
        self.lock().sweep.map(|s| s.at())
    }

    /// Whether a pass has scheduled a sweep where none was, since the last call: the
    /// publisher's thread, if asleep, must then be woken for it.
    pub fn take_new_sweep(&self) -> bool {
        std::mem::take(&mut self.lock().new_sweep)
    }
}

/// A chunk of the registry's entries, with its counters and read buffer, under the lock.
struct Chunk<'a> {
    entries: &'a mut [Option<Entry>],
    live: &'a mut usize,
    awaiting: &'a mut usize,
    buf: &'a mut Vec<u8>,
}

/// How [`read_next`] reads a request's arrival time, which its timeout counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// From the socket's receive timestamp (`recvmsg`): a sweep, whose requests may have
    /// waited up to [`SWEEP_DELAYS`] unread.
    Stamped,
    /// As the pass's start (`recv`): a pass, which answers at once a request it parks,
    /// so that its timeout never runs. With [`Closing`], this took the publisher's CPU at
    /// 100 long-polls × 10 events/s from 50.9 to 46.6 ms per 4 s (12.7 to 11.7 µs per
    /// delivery; medians of 5 alternated pairs, bare C clients), where `recvmsg`, its
    /// control message and two clock reads per request had been.
    Now,
}

/// Whether each server's shutdown has begun, read once per pass or sweep (a
/// `CancellationToken`'s check takes a lock, and every entry has the same server but in
/// tests): an entry met after a shutdown began within the pass is written as one met just
/// before it would have been.
#[derive(Default)]
struct Closing {
    last: Option<(*const App, bool)>,
}

impl Closing {
    /// Whether `app`'s shutdown had begun when this pass first looked.
    fn of(&mut self, app: &App) -> bool {
        let ptr: *const App = app;
        match self.last {
            Some((seen, cancelled)) if std::ptr::eq(seen, ptr) => cancelled,
            _ => {
                let cancelled = app.shutdown.is_cancelled();
                self.last = Some((ptr, cancelled));
                cancelled
            }
        }
    }
}

/// What reading an answered long-poll's next request did.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// The request was taken: the entry is parked again, at its cursor.
    Parked,
    /// Nothing has arrived yet.
    NotYet,
    /// The entry was handed back, with what was read or the error.
    Back,
}

/// Reads the next request of answered long-poll `entry` (under the registry's lock) and
/// parks it in place if it is a plain long-poll (as [`crate::direct`] decides) from the
/// entry's cursor, which must be `head`, with a timeout; anything else (another request,
/// a head in pieces, `Connection: close`, shutdown, the client gone) is handed back to
/// the task with the bytes read. Reads and bytes are counted as `Counted` counts them,
/// and a parked request as the task's path counts it.
fn read_next(
    fanout: &Fanout,
    entry: &mut Entry,
    buf: &mut Vec<u8>,
    head: u64,
    now: Instant,
    mode: Arrival,
    closing: &mut Closing,
) -> Step {
    let Some(app) = entry.app.as_deref() else {
        entry.hand_back(Left::default());
        return Step::Back;
    };
    if closing.of(app) {
        entry.hand_back(Left::default());
        return Step::Back;
    }
    // At most what the task's read takes (`direct::next_request`).
    let limit = app.config.max_header_bytes;
    if buf.len() < limit {
        buf.resize(limit, 0);
    }
    let got = match mode {
        Arrival::Stamped => recv_stamped(entry.fd, &mut buf[..limit]),
        Arrival::Now => recv_plain(entry.fd, &mut buf[..limit]).map(|n| (n, None)),
    };
    let (n, arrived) = match got {
        Ok(got) => got,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::NotYet,
        Err(e) => {
            entry.hand_back(Left {
                error: Some(e),
                ..Left::default()
            });
            return Step::Back;
        }
    };
    let stats = &app.stats;
    stats.socket_reads.fetch_add(1, Relaxed);
    stats.publisher_reads.fetch_add(1, Relaxed);
    if n == 0 {
        entry.hand_back(Left {
            error: Some(io::ErrorKind::UnexpectedEof.into()),
            ..Left::default()
        });
        return Step::Back;
    }
    stats.bytes[Class::LongPoll as usize]
        .bytes_in
        .fetch_add(n as u64, Relaxed);
    let bytes = &buf[..n];
    let params = match crate::direct::decide_for(app, bytes, false) {
        crate::direct::Next::Poll {
            long: true,
            params,
            close: false,
        } if params.after == Some(entry.seq) && head == entry.seq && !params.timeout.is_zero() => {
            params
        }
        _ => {
            entry.hand_back(Left {
                read: Bytes::copy_from_slice(bytes),
                ..Left::default()
            });
            return Step::Back;
        }
    };
    stats.count_request(Endpoint::LongPoll);
    stats.count_path(Path::Direct);
    stats.parked.fetch_add(1, Relaxed);
    // Its timeout counts from its arrival: after the answer, and not after now.
    let answered = entry.answered.map_or(now, |at| fanout.instant(at));
    let arrived = arrived.map_or(now, |at| at.clamp(answered.min(now), now));
    let due = fanout.stamp_up(arrived + params.timeout);
    entry.kind = Kind::LongPoll {
        limit: u32::try_from(params.limit).unwrap_or(u32::MAX),
    };
    entry.answered = None;
    entry.due = Some(due);
    if entry.check.is_some_and(|check| !not_before(due, check)) {
        // Due before its task's timer: wake the task to set it sooner.
        entry.check = None;
        if let Some(w) = entry.waker.take() {
            w.wake();
        }
    }
    Step::Parked
}

/// Readies a long-poll's socket `fd` for the registry: its receive low-water mark above
/// any request head (`max_head` bytes), so that the kernel signals it readable only for
/// the client's FIN or RST or more bytes than a head may hold, and a request arriving
/// wakes nobody (the publisher reads it); and receive timestamps (`SO_TIMESTAMPNS`), so
/// that a request's timeout counts from its arrival however late the publisher reads it
/// ([`SWEEP_DELAYS`]). A failure only costs wake-ups (the task then finds nothing to do)
/// or a timeout counted from the read, so it is not an error.
///
/// Timestamps only on these sockets, so that no other socket's reads carry them. Set on
/// the listener instead (every accepted socket), short-poll throughput measured 3% lower
/// than without (wrk, 64 connections, 6 alternated pairs: medians 105.6k against 109.3k
/// requests/s), and set here 4.5% higher (105.3k against 100.7k): both within the runs'
/// ±10%.
pub fn lend_socket(fd: RawFd, max_head: usize) {
    let lowat = i32::try_from(max_head.saturating_add(1)).unwrap_or(i32::MAX);
    set_int(fd, libc::SO_RCVLOWAT, lowat);
    set_int(fd, libc::SO_TIMESTAMPNS, 1);
}

/// A socket that keeps the kernel stamping received packets for as long as it is held:
/// the kernel stamps only while some socket asks, and turns stamping on a little after the
/// first one does, so without it a long-poll lent first after a quiet spell could have its
/// next request unstamped (its timeout then counts from the read). The server holds one
/// for its life; `None` if the kernel will not give one.
pub fn keep_stamping() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: `socket` takes plain integers; a non-negative result is a new descriptor we
    // own from here on.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` is a fresh descriptor owned by nothing else.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    set_int(fd, libc::SO_TIMESTAMPNS, 1);
    Some(owned)
}

/// Undoes [`lend_socket`]'s low-water mark once the task has taken the socket back (the
/// kernel then signals it readable at once if a request is waiting).
pub fn return_socket(fd: RawFd) {
    set_int(fd, libc::SO_RCVLOWAT, 1);
}

/// Sets an integer `SOL_SOCKET` option, ignoring a failure (see the callers).
fn set_int(fd: RawFd, option: libc::c_int, val: libc::c_int) {
    // SAFETY: a plain integer option on a socket the caller keeps open.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            std::ptr::addr_of!(val).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// One non-blocking read from socket `fd` into `buf`.
fn recv_plain(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: `fd` is a connected socket its task keeps open while the entry is in the
        // registry (see `send_counted`); `buf` is valid for `buf.len()` bytes.
        let rc = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
        if rc >= 0 {
            return Ok(rc as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// One non-blocking read from socket `fd` into `buf`, with when the kernel received what
/// it read (`SO_TIMESTAMPNS`, set on the socket by its task), as an instant; `None` if
/// the socket gives no timestamp.
fn recv_stamped(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<Instant>)> {
    // Room for one control message holding a `timespec`, aligned as `cmsghdr` needs.
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: a zeroed `msghdr` is valid (no name, no control); the fields set below
    // point at `iov` and `control`, which outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control) as _;
    let n = loop {
        // SAFETY: `fd` is a connected socket its task keeps open while the entry is in the
        // registry (see `send_counted`); `msg` describes valid buffers.
        let rc = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut stamp = None;
    // SAFETY: `msg` was filled in by the kernel: the CMSG macros walk its control buffer
    // within `msg_controllen`, and a `SCM_TIMESTAMPNS` message carries a `timespec`.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(ts);
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    let arrived = stamp.and_then(|ts| {
        let wall = std::time::SystemTime::UNIX_EPOCH
            + Duration::new(
                u64::try_from(ts.tv_sec).ok()?,
                u32::try_from(ts.tv_nsec).ok()?,
            );
        let (now_wall, now) = (std::time::SystemTime::now(), Instant::now());
        // A clock that stepped back reads as "now"; the caller bounds it from below.
        let age = now_wall.duration_since(wall).unwrap_or_default();
        now.checked_sub(age)
    });
    Ok((n, arrived))
}

/// How one socket's write went.
enum Outcome {
    /// The socket took every byte.
    All,
    /// Hand the socket back with this unwritten rest (empty: nothing of the pass was
    /// written) and error.
    HandBack(Bytes, Option<io::Error>),
}

/// One non-blocking `send` of `buf` to the entry's socket, counted as `Counted` counts a
/// socket write.
fn send_counted(entry: &Entry, buf: &Bytes) -> Outcome {
    let n = loop {
        // SAFETY: `fd` is a connected socket its task keeps open while the entry is in the
        // registry (the entry is taken out, under the lock this pass holds, before the
        // socket can close); `buf` is valid for `buf.len()` bytes.
        let rc = unsafe {
            libc::send(
                entry.fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if rc >= 0 {
            break rc as usize;
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Outcome::HandBack(buf.clone(), None),
            _ => return Outcome::HandBack(Bytes::new(), Some(err)),
        }
    };
    if n > 0 {
        let stats = &entry.stats;
        let class = match entry.kind {
            Kind::Ws => Class::Ws,
            Kind::Sse => Class::Sse,
            Kind::LongPoll { .. } => Class::LongPoll,
        };
        stats.socket_writes.fetch_add(1, Relaxed);
        stats.bytes[class as usize]
            .bytes_out
            .fetch_add(n as u64, Relaxed);
        stats.publisher_writes.fetch_add(1, Relaxed);
    }
    if n == buf.len() {
        Outcome::All
    } else {
        Outcome::HandBack(buf.slice(n..), None)
    }
}

/// A pass's frames, encoded once per kind (and per number of events a long-poll takes)
/// when first needed.
struct Frames<'a> {
    events: &'a [Event],
    ws: Option<Option<Bytes>>,
    sse: Option<Option<Bytes>>,
    /// Long-poll answers by how many events they carry (a `limit` below the pass's size
    /// takes fewer; clients of one benchmark all ask for the same).
    polls: Vec<(usize, Option<Bytes>)>,
}

impl<'a> Frames<'a> {
    fn new(events: &'a [Event]) -> Self {
        Frames {
            events,
            ws: None,
            sse: None,
            polls: Vec::new(),
        }
    }

    /// The pass's bytes for `kind`; `None` if they exceed [`MAX_PASS_BYTES`] (more than
    /// one event).
    fn get(&mut self, kind: Kind) -> Option<&Bytes> {
        let events = self.events;
        match kind {
            Kind::Ws => self.ws.get_or_insert_with(|| ws_frames(events)).as_ref(),
            Kind::Sse => self.sse.get_or_insert_with(|| sse_chunks(events)).as_ref(),
            Kind::LongPoll { limit } => {
                let n = events.len().min(limit as usize);
                let i = match self.polls.iter().position(|(m, _)| *m == n) {
                    Some(i) => i,
                    None => {
                        self.polls.push((n, poll_answer(&events[..n])));
                        self.polls.len() - 1
                    }
                };
                self.polls[i].1.as_ref()
            }
        }
    }
}

/// The events' WebSocket frames back to back (one event: its shared frame, no copy), made
/// as the tasks make their batches ([`crate::ws_direct::batch`], at most 64 KiB); `None`
/// when they do not fit in one.
fn ws_frames(events: &[Event]) -> Option<Bytes> {
    let (frames, taken) = crate::ws_direct::batch(events);
    (taken == events.len()).then_some(frames)
}

/// The events as HTTP chunks, framed as hyper frames them (upper-case hex size).
fn sse_chunks(events: &[Event]) -> Option<Bytes> {
    let len: usize = events.iter().map(|e| e.sse.len() + 12).sum();
    if events.len() > 1 && len > MAX_PASS_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    for e in events {
        crate::sse_direct::push_chunk(&mut out, &e.sse);
    }
    Some(Bytes::from(out))
}

/// A caught-up long-poll's answer carrying `events` (the first of them is the one after
/// its cursor): head and body as `crate::poll_direct` writes them for a keep-alive
/// connection; `None` if it exceeds [`MAX_PASS_BYTES`] (more than one event).
fn poll_answer(events: &[Event]) -> Option<Bytes> {
    let after = events.first()?.seq - 1;
    let body = crate::poll::encode_events(events, 0, after);
    let head = crate::direct::json_head(body.len(), false);
    if events.len() > 1 && head.len() + body.len() > MAX_PASS_BYTES {
        return None;
    }
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(&body);
    Some(Bytes::from(out))
}

/// Hands the socket `tcp` to the publisher as caught up at `seq`, and waits for shutdown,
/// for the client (the socket turns readable) or for the publisher to hand it back; then
/// takes it back. Returns what the publisher handed back and whether shutdown began, or
/// `None` when the head had moved (nothing was handed over: catch up first). `slot` holds
/// the registration meanwhile; it must be dropped before the socket (see [`Registered`]).
pub async fn lend(
    app: &crate::app::App,
    slot: &mut Option<Registered>,
    tcp: &tokio::net::TcpStream,
    kind: Kind,
    seq: u64,
) -> Option<(Handback, bool)> {
    use std::os::fd::AsRawFd;
    let fd = tcp.as_raw_fd();
    let reg = &*slot.insert(Registered::new(app, fd, kind, seq)?);
    let shutdown = tokio::select! {
        biased;
        _ = app.shutdown.cancelled() => true,
        _ = std::future::poll_fn(|cx| tcp.poll_read_ready(cx)) => false,
        () = std::future::poll_fn(|cx| reg.poll_handed_back(cx)) => false,
    };
    Some((slot.take()?.take(), shutdown))
}

/// A task's registration: takes the entry back when dropped, so the socket (dropped after
/// it) is out of the registry before it closes.
#[derive(Debug)]
pub struct Registered {
    hub: Arc<crate::Hub>,
    idx: u32,
}

impl Registered {
    /// Registers `fd` in `app`'s fan-out as caught up at `seq` (see [`Fanout::register`]),
    /// a WebSocket or SSE stream.
    pub fn new(app: &crate::app::App, fd: RawFd, kind: Kind, seq: u64) -> Option<Registered> {
        let hub = &app.hub;
        let idx = hub
            .fanout()
            .register(fd, kind, seq, || hub.head(), &app.stats, None)?;
        Some(Registered {
            hub: Arc::clone(hub),
            idx,
        })
    }

    /// Registers a parked long-poll of `app` at `seq`, taking at most `limit` events, whose
    /// timeout runs out at `due`.
    pub fn long_poll(
        app: &Arc<App>,
        fd: RawFd,
        limit: u32,
        seq: u64,
        due: Instant,
    ) -> Option<Registered> {
        let hub = &app.hub;
        let kind = Kind::LongPoll { limit };
        let idx =
            hub.fanout()
                .register(fd, kind, seq, || hub.head(), &app.stats, Some((app, due)))?;
        Some(Registered {
            hub: Arc::clone(hub),
            idx,
        })
    }

    /// Sets the task's timer (see [`Fanout::rearm`]).
    pub fn rearm(&self, header: Duration) -> Option<Instant> {
        self.hub.fanout().rearm(self.idx, header)
    }

    /// `Ready` once the publisher has handed the socket back.
    pub fn poll_handed_back(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.hub.fanout().poll_handed_back(self.idx, cx)
    }

    /// Takes the entry back: the socket is the task's again.
    pub fn take(mut self) -> Handback {
        let idx = std::mem::replace(&mut self.idx, TAKEN);
        // Only `take` and `drop` remove the entry, and `drop` skips a taken one (its index
        // may already be another registration's).
        let back = self.hub.fanout().take(idx);
        // `_else`: the error is made (two allocations) only when it is one.
        back.unwrap_or_else(|| Handback {
            seq: 0,
            rest: Bytes::new(),
            error: Some(io::Error::other("fan-out entry missing")),
            answered: None,
            read: Bytes::new(),
            limit: 0,
            due: None,
        })
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if self.idx != TAKEN {
            let _ = self.hub.fanout().take(self.idx);
        }
    }
}

/// A [`Registered`] whose entry has been taken back.
const TAKEN: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::sync::atomic::AtomicU64;

    fn events(first: u64, n: usize, payload: usize) -> Vec<Event> {
        (0..n as u64)
            .map(|i| Event::new(first + i, 1, payload))
            .collect()
    }

    fn ws_bytes(events: &[Event]) -> Vec<u8> {
        events.iter().flat_map(|e| e.ws.iter().copied()).collect()
    }

    fn drain(s: &mut UnixStream) -> Vec<u8> {
        s.set_nonblocking(true).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return out,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn noop_cx() -> Context<'static> {
        Context::from_waker(Waker::noop())
    }

    /// A waker that records whether it was woken.
    struct Flag(std::sync::atomic::AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    impl Flag {
        fn new() -> Arc<Flag> {
            Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)))
        }

        fn woken(&self) -> bool {
            self.0.load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    #[test]
    fn caught_up_sockets_get_each_pass_whole_and_counted() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (ws_srv, mut ws_cli) = UnixStream::pair().unwrap();
        let (sse_srv, mut sse_cli) = UnixStream::pair().unwrap();
        let a = fanout
            .register(ws_srv.as_raw_fd(), Kind::Ws, 0, || 0, &stats, None)
            .unwrap();
        let b = fanout
            .register(sse_srv.as_raw_fd(), Kind::Sse, 0, || 0, &stats, None)
            .unwrap();
        assert_eq!(fanout.live(), 2);
        // One event, then two published together: two passes, one send per socket each.
        let one = events(1, 1, 16);
        let two = events(2, 2, 300);
        fanout.write(&one);
        fanout.write(&two);
        let all: Vec<Event> = one.iter().chain(&two).cloned().collect();
        assert_eq!(drain(&mut ws_cli), ws_bytes(&all));
        let mut sse_want = Vec::new();
        for e in &all {
            crate::sse_direct::push_chunk(&mut sse_want, &e.sse);
        }
        assert_eq!(drain(&mut sse_cli), sse_want);
        assert_eq!(stats.publisher_writes.load(Relaxed), 4);
        assert_eq!(stats.socket_writes.load(Relaxed), 4);
        let out = |c: Class| stats.bytes[c as usize].bytes_out.load(Relaxed);
        assert_eq!(out(Class::Ws), ws_bytes(&all).len() as u64);
        assert_eq!(out(Class::Sse), sse_want.len() as u64);
        // Nothing was handed back; taking the entries says how far each got.
        assert_eq!(fanout.poll_handed_back(a, &mut noop_cx()), Poll::Pending);
        let back = fanout.take(a).unwrap();
        assert_eq!(
            (back.seq, back.rest.len(), back.error.is_none()),
            (3, 0, true)
        );
        assert_eq!(fanout.take(b).unwrap().seq, 3);
        assert!(fanout.take(a).is_none(), "a second take finds nothing");
        assert_eq!(fanout.live(), 0);
        // With nobody registered, a pass writes nothing.
        fanout.write(&events(4, 1, 16));
        assert_eq!(stats.publisher_writes.load(Relaxed), 4);
    }

    #[test]
    fn a_registration_after_the_head_moved_is_refused() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, _cli) = UnixStream::pair().unwrap();
        assert!(fanout
            .register(srv.as_raw_fd(), Kind::Ws, 4, || 5, &stats, None)
            .is_none());
        assert_eq!(fanout.live(), 0);
    }

    #[test]
    fn a_full_socket_is_handed_back_with_the_rest_of_the_write() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, mut cli) = UnixStream::pair().unwrap();
        let idx = fanout
            .register(srv.as_raw_fd(), Kind::Ws, 0, || 0, &stats, None)
            .unwrap();
        // Events until the socket stops taking them whole; each pass writes one.
        let mut sent = Vec::new();
        let mut seq = 1;
        while fanout.poll_handed_back(idx, &mut noop_cx()).is_pending() {
            assert!(seq < 10_000, "the socket never filled");
            let ev = events(seq, 1, 4_000);
            fanout.write(&ev);
            sent.extend(ev);
            seq += 1;
        }
        assert_eq!(fanout.live(), 0, "a handed-back entry is not written to");
        let last = seq - 1;
        fanout.write(&events(seq, 1, 4_000));
        let back = fanout.take(idx).unwrap();
        // The rest is the tail of the last event's frame (or all of it), and the seq says
        // that event is the task's to finish.
        assert_eq!(back.seq, last);
        assert!(back.error.is_none());
        let want = ws_bytes(&sent);
        let got = drain(&mut cli);
        assert!(!back.rest.is_empty());
        assert_eq!(got.len() + back.rest.len(), want.len());
        let mut joined = got;
        joined.extend_from_slice(&back.rest);
        assert_eq!(joined, want);
        let out = stats.bytes[Class::Ws as usize].bytes_out.load(Relaxed);
        assert_eq!(out as usize, want.len() - back.rest.len());
    }

    #[test]
    fn a_failed_socket_is_handed_back_with_its_error_and_a_gap_with_nothing() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, cli) = UnixStream::pair().unwrap();
        drop(cli);
        let (srv2, mut cli2) = UnixStream::pair().unwrap();
        let failed = fanout
            .register(srv.as_raw_fd(), Kind::Ws, 2, || 2, &stats, None)
            .unwrap();
        // Registered at 0, but the pass starts at 3: it cannot write 1 and 2.
        let gap = fanout
            .register(srv2.as_raw_fd(), Kind::Sse, 0, || 0, &stats, None)
            .unwrap();
        fanout.write(&events(3, 1, 8));
        let waker_cx = &mut noop_cx();
        assert!(fanout.poll_handed_back(failed, waker_cx).is_ready());
        assert!(fanout.poll_handed_back(gap, waker_cx).is_ready());
        let back = fanout.take(failed).unwrap();
        assert!(back.error.is_some(), "EPIPE from a closed peer");
        assert_eq!((back.seq, back.rest.len()), (2, 0));
        let back = fanout.take(gap).unwrap();
        assert!(back.error.is_none());
        assert_eq!((back.seq, back.rest.len()), (0, 0));
        assert!(drain(&mut cli2).is_empty());
        assert_eq!(stats.socket_writes.load(Relaxed), 0);
    }

    #[test]
    fn a_handed_back_entry_wakes_its_task() {
        let fanout = Fanout::default();
        let stats = Arc::new(Stats::default());
        let (srv, cli) = UnixStream::pair().unwrap();
        let idx = fanout
            .register(srv.as_raw_fd(), Kind::Ws, 0, || 0, &stats, None)
            .unwrap();
        let flag = Flag::new();
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(fanout.poll_handed_back(idx, &mut cx).is_pending());
        fanout.write(&events(1, 1, 8));
        assert!(!flag.woken(), "a whole write wakes nobody");
        drop(cli);
        fanout.write(&events(2, 1, 8));
        assert!(flag.woken(), "a hand-back wakes the task");
    }

    /// Splits an answer at its `date` value, which changes by the second.
    fn undated(raw: &[u8]) -> String {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let at = text.find("\r\ndate: ").unwrap() + 8;
        format!("{}<date>{}", &text[..at], &text[at + 29..])
    }

    /// What `poll_direct` writes for a keep-alive long-poll answered with `events`.
    fn task_answer(events: &[Event], after: u64) -> String {
        let body = crate::poll::encode_events(events, 0, after);
        let head = crate::direct::json_head(body.len(), false);
        undated(&[head.as_bytes(), &body[..]].concat())
    }

    fn poll(limit: u32) -> Kind {
        Kind::LongPoll { limit }
    }

    /// A server's state over its own hub (feed at `rate_hz`, no publisher thread).
    fn test_app(rate_hz: f64) -> Arc<App> {
        let feed = crate::FeedConfig {
            rate_hz,
            payload_bytes: 8,
        };
        Arc::new(App::new(
            crate::config::ServerConfig::default(),
            Arc::new(crate::Hub::new(feed, 100)),
        ))
    }

    #[test]
    fn a_parked_long_poll_is_answered_once_without_a_wake() {
        let fanout = Fanout::default();
        let app = test_app(0.0);
        let stats = Arc::clone(&app.stats);
        let due = Instant::now() + Duration::from_secs(30);
        let (all_srv, mut all_cli) = UnixStream::pair().unwrap();
        let (one_srv, mut one_cli) = UnixStream::pair().unwrap();
        let (late_srv, mut late_cli) = UnixStream::pair().unwrap();
        let all = fanout
            .register(
                all_srv.as_raw_fd(),
                poll(100),
                4,
                || 4,
                &stats,
                Some((&app, due)),
            )
            .unwrap();
        let one = fanout
            .register(
                one_srv.as_raw_fd(),
                poll(1),
                4,
                || 4,
                &stats,
                Some((&app, due)),
            )
            .unwrap();
        assert_eq!(stats.parked.load(Relaxed), 2);
        let flag = Flag::new();
        let waker = Waker::from(flag.clone());
        // The task sets its timer before it waits (until then it is told to).
        assert!(fanout.poll_handed_back(all, &mut noop_cx()).is_ready());
        let header = Duration::from_secs(10);
        assert!(fanout.rearm(all, header).is_some());
        assert!(fanout
            .poll_handed_back(all, &mut Context::from_waker(&waker))
            .is_pending());
        let before = Instant::now();
        let evs = events(5, 3, 40);
        fanout.write(&evs);
        // Each gets the answer its limit asks for, whole, in one counted write; the task is
        // not woken, the gauge is down, and the entry is written to no more.
        let (got_all, got_one) = (drain(&mut all_cli), drain(&mut one_cli));
        assert_eq!(undated(&got_all), task_answer(&evs, 4));
        assert_eq!(undated(&got_one), task_answer(&evs[..1], 4));
        assert!(!flag.woken(), "an answer wakes nobody");
        assert_eq!(stats.parked.load(Relaxed), 0);
        assert_eq!(stats.publisher_writes.load(Relaxed), 2);
        assert_eq!(fanout.live(), 0);
        let unread = || fanout.awaiting();
        assert_eq!(unread(), 2, "both answered, their next requests unread");
        assert_eq!(fanout.take(one).unwrap().seq, 5, "limit 1: event 5 only");
        assert_eq!(unread(), 1, "a take counts it off");
        fanout.write(&events(8, 1, 40));
        assert!(drain(&mut all_cli).is_empty());
        assert_eq!(unread(), 0, "handed back: no request had come");
        // To the millisecond.
        let at = fanout.answered(all).unwrap();
        assert!(at + std::time::Duration::from_millis(2) >= before && at <= Instant::now());
        let back = fanout.take(all).unwrap();
        assert_eq!((back.seq, back.rest.len()), (7, 0));
        assert!(back.error.is_none() && back.answered.is_some());
        assert_eq!(
            stats.parked.load(Relaxed),
            0,
            "an answered take moves nothing"
        );
        let out = stats.bytes[Class::LongPoll as usize]
            .bytes_out
            .load(Relaxed);
        assert_eq!(out as usize, got_all.len() + got_one.len());
        // Once shutdown has begun the answer must say `connection: close`: handed back
        // unwritten, and the task (woken) answers.
        let late = fanout
            .register(
                late_srv.as_raw_fd(),
                poll(100),
                8,
                || 8,
                &stats,
                Some((&app, due)),
            )
            .unwrap();
        assert!(fanout.rearm(late, header).is_some());
        assert!(fanout
            .poll_handed_back(late, &mut Context::from_waker(&waker))
            .is_pending());
        app.shutdown.cancel();
        fanout.write(&events(9, 1, 40));
        assert!(flag.woken(), "the hand-back wakes the task");
        assert!(drain(&mut late_cli).is_empty());
        assert_eq!(
            stats.parked.load(Relaxed),
            1,
            "parked until its task takes it"
        );
        let back = fanout.take(late).unwrap();
        assert!(back.answered.is_none() && back.rest.is_empty() && back.error.is_none());
        assert_eq!(stats.parked.load(Relaxed), 0);
    }

    /// A long-poll request as the load generator sends it.
    fn lp_request(after: u64, extra: &str) -> String {
        format!("GET /longpoll?after={after}&timeout_ms=30000 HTTP/1.1\r\nhost: t\r\n{extra}\r\n")
    }

    /// Registers `srv` as a long-poll of `app` parked at `seq` (the head), its timer set as
    /// its task sets it.
    fn park(app: &Arc<App>, srv: &UnixStream, seq: u64) -> u32 {
        let fanout = app.hub.fanout();
        let due = Instant::now() + Duration::from_secs(30);
        let idx = fanout
            .register(
                srv.as_raw_fd(),
                poll(100),
                seq,
                || app.hub.head(),
                &app.stats,
                Some((app, due)),
            )
            .unwrap();
        assert!(fanout.rearm(idx, Duration::from_secs(10)).is_some());
        idx
    }

    /// Runs the sweeps due until none is, waiting for each; returns how many ran.
    fn sweep_all(app: &App) -> usize {
        let mut rounds = 0;
        while let Some(at) = app.hub.fanout().sweep_due() {
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            app.hub.sweep_requests();
            rounds += 1;
            assert!(rounds <= SWEEP_DELAYS.len(), "sweeps end");
        }
        rounds
    }

    #[test]
    fn the_publisher_reads_and_parks_the_next_request_without_a_wake() {
        let app = test_app(0.0);
        let (hub, stats) = (&app.hub, &app.stats);
        let fanout = hub.fanout();
        hub.publish(&[1, 2, 3, 4], 40);
        let (srv, mut cli) = UnixStream::pair().unwrap();
        let idx = park(&app, &srv, 4);
        let flag = Flag::new();
        let waker = Waker::from(flag.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(fanout.poll_handed_back(idx, &mut cx).is_pending());
        let count = |c: &AtomicU64| c.load(Relaxed);
        let (reqs, direct) = (
            || {
                count(
                    &stats.requests[Endpoint::ALL
                        .iter()
                        .position(|e| *e == Endpoint::LongPoll)
                        .unwrap()],
                )
            },
            || count(&stats.requests_by_path[Path::Direct as usize]),
        );
        // Event 5 answers it; a sweep is then due, 5 ms after the pass.
        let passed = Instant::now();
        hub.publish(&[5], 40);
        let ev5 = hub.read_after(4, 1).events;
        assert_eq!(undated(&drain(&mut cli)), task_answer(&ev5, 4));
        let unread = || fanout.awaiting();
        assert_eq!((stats.parked.load(Relaxed), unread()), (0, 1));
        let due = fanout.sweep_due().unwrap();
        assert!(due >= passed + SWEEP_DELAYS[0] && due <= Instant::now() + SWEEP_DELAYS[0]);
        assert_eq!(
            fanout.sweep(|| hub.head()),
            Some(due),
            "not yet due: nothing read"
        );
        // The client's next request: read by the sweep, parked in place, counted as the
        // task's path counts it; the task sleeps on.
        let req = lp_request(5, "");
        cli.write_all(req.as_bytes()).unwrap();
        assert_eq!(sweep_all(&app), 1, "everything read in the first round");
        assert!(!flag.woken());
        assert_eq!((stats.parked.load(Relaxed), unread()), (1, 0));
        assert_eq!(fanout.live(), 1);
        assert_eq!((reqs(), direct()), (1, 1));
        assert_eq!(count(&stats.socket_reads), 1);
        assert_eq!(count(&stats.publisher_reads), 1);
        let inb = || count(&stats.bytes[Class::LongPoll as usize].bytes_in);
        assert_eq!(inb(), req.len() as u64);
        // Event 6 answers the parked request.
        hub.publish(&[6], 40);
        let ev6 = hub.read_after(5, 1).events;
        assert_eq!(undated(&drain(&mut cli)), task_answer(&ev6, 5));
        // A request already there when the next event comes is read by the pass and
        // answered in it, as the floor's writer does.
        let req = lp_request(6, "connection: keep-alive\r\n");
        cli.write_all(req.as_bytes()).unwrap();
        hub.publish(&[7], 40);
        let ev7 = hub.read_after(6, 1).events;
        assert_eq!(undated(&drain(&mut cli)), task_answer(&ev7, 6));
        assert_eq!((reqs(), direct()), (2, 2));
        assert_eq!(count(&stats.publisher_reads), 2);
        assert_eq!(inb(), (lp_request(5, "").len() + req.len()) as u64);
        assert_eq!(count(&stats.publisher_writes), 3);
        assert!(!flag.woken(), "three answers and two requests, no wake");
        assert_eq!((stats.parked.load(Relaxed), unread()), (0, 1));
        // Nothing more arrives: the last round hands it back to its task, which waits for
        // the request itself.
        assert_eq!(sweep_all(&app), SWEEP_DELAYS.len());
        assert!(flag.woken());
        assert_eq!(unread(), 0, "its task's now");
        assert!(fanout.poll_handed_back(idx, &mut noop_cx()).is_ready());
        assert!(fanout.rearm(idx, Duration::from_secs(10)).is_none());
        let back = fanout.take(idx).unwrap();
        assert_eq!(back.seq, 7);
        assert!(back.answered.is_some() && back.error.is_none());
        assert!(back.read.is_empty() && back.rest.is_empty());
        assert_eq!(fanout.sweep_due(), None);
    }

    #[test]
    fn what_the_publisher_does_not_take_goes_back_with_the_bytes_read() {
        let app = test_app(0.0);
        let (hub, stats) = (&app.hub, &app.stats);
        let fanout = hub.fanout();
        hub.publish(&[1, 2, 3, 4], 40);
        // What each client sends after its answer (event 5), and what its task gets.
        let cases: [(&str, String); 6] = [
            ("connection: close", lp_request(5, "connection: close\r\n")),
            ("an older cursor", lp_request(3, "")),
            (
                "another path",
                "GET /stats HTTP/1.1\r\nhost: t\r\n\r\n".into(),
            ),
            (
                "a head in pieces",
                "GET /longpoll?after=5 HTTP/1.1\r\nho".into(),
            ),
            (
                "no timeout",
                "GET /longpoll?after=5&timeout_ms=0 HTTP/1.1\r\nhost: t\r\n\r\n".into(),
            ),
            ("two requests", lp_request(5, "").repeat(2)),
        ];
        let pairs: Vec<_> = cases.iter().map(|_| UnixStream::pair().unwrap()).collect();
        let idxs: Vec<u32> = pairs.iter().map(|(srv, _)| park(&app, srv, 4)).collect();
        let (gone_srv, mut gone_cli) = UnixStream::pair().unwrap();
        let gone = park(&app, &gone_srv, 4);
        hub.publish(&[5], 40);
        for ((_, cli), (_, req)) in pairs.iter().zip(&cases) {
            (&*cli).write_all(req.as_bytes()).unwrap();
        }
        // It reads its answer and closes (closing with the answer unread would reset).
        assert!(!drain(&mut gone_cli).is_empty());
        drop(gone_cli);
        assert_eq!(fanout.awaiting(), 7, "all answered, none read");
        sweep_all(&app);
        assert_eq!(stats.parked.load(Relaxed), 0, "none parked again");
        assert_eq!(fanout.awaiting(), 0, "all handed back");
        let mut sent = 0;
        for ((what, req), idx) in cases.iter().zip(&idxs) {
            assert!(
                fanout.poll_handed_back(*idx, &mut noop_cx()).is_ready(),
                "{what}"
            );
            let back = fanout.take(*idx).unwrap();
            assert_eq!(back.read, req.as_bytes(), "{what}: the bytes read");
            assert!(back.answered.is_some() && back.error.is_none(), "{what}");
            sent += req.len();
        }
        // The client that left: its EOF read is counted, as the task's would be.
        let back = fanout.take(gone).unwrap();
        assert_eq!(
            back.error.map(|e| e.kind()),
            Some(io::ErrorKind::UnexpectedEof)
        );
        assert_eq!(stats.socket_reads.load(Relaxed), cases.len() as u64 + 1);
        let inb = stats.bytes[Class::LongPoll as usize].bytes_in.load(Relaxed);
        assert_eq!(inb, sent as u64);
        // None was counted as a request: each goes to the task, which decides on it.
        assert_eq!(
            stats.requests_by_path[Path::Direct as usize].load(Relaxed),
            0
        );
        // Once shutdown has begun, nothing is read: the task answers with `close`.
        let (srv, cli) = UnixStream::pair().unwrap();
        let idx = park(&app, &srv, 5);
        hub.publish(&[6], 40);
        (&cli).write_all(lp_request(6, "").as_bytes()).unwrap();
        app.shutdown.cancel();
        sweep_all(&app);
        let back = fanout.take(idx).unwrap();
        assert!(back.read.is_empty() && back.error.is_none() && back.answered.is_some());
        assert_eq!(stats.socket_reads.load(Relaxed), cases.len() as u64 + 1);
    }

    #[test]
    fn a_request_due_before_the_task_s_timer_wakes_the_task() {
        let app = test_app(0.0);
        let hub = &app.hub;
        let fanout = hub.fanout();
        hub.publish(&[1], 40);
        let (srv, mut cli) = UnixStream::pair().unwrap();
        let idx = park(&app, &srv, 1);
        let flag = Flag::new();
        let waker = Waker::from(flag.clone());
        assert!(fanout
            .poll_handed_back(idx, &mut Context::from_waker(&waker))
            .is_pending());
        hub.publish(&[2], 40);
        drain(&mut cli);
        // The task's timer is 10 s out; this request's timeout is 150 ms, with limit 7.
        let sent = Instant::now();
        cli.write_all(b"GET /longpoll?after=2&limit=7&timeout_ms=150 HTTP/1.1\r\nhost: t\r\n\r\n")
            .unwrap();
        sweep_all(&app);
        assert!(flag.woken(), "woken to set its timer sooner");
        assert_eq!(app.stats.parked.load(Relaxed), 1);
        assert!(fanout.poll_handed_back(idx, &mut noop_cx()).is_ready());
        let wake = fanout.rearm(idx, Duration::from_secs(10)).unwrap();
        assert!(wake >= sent + Duration::from_millis(150), "never early");
        assert!(wake <= Instant::now() + Duration::from_millis(151));
        // Set: the task waits again.
        assert!(fanout.poll_handed_back(idx, &mut noop_cx()).is_pending());
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        assert!(
            fanout.rearm(idx, Duration::from_secs(10)).is_none(),
            "its timeout is up"
        );
        let back = fanout.take(idx).unwrap();
        assert_eq!((back.seq, back.limit), (2, 7));
        assert!(back.answered.is_none() && back.due.is_some_and(|d| d <= Instant::now()));
        assert_eq!(app.stats.parked.load(Relaxed), 0);
    }

    #[test]
    fn a_request_s_timeout_counts_from_its_arrival_not_its_read() {
        let app = test_app(0.0);
        let hub = &app.hub;
        let fanout = hub.fanout();
        hub.publish(&[1], 40);
        let _stamping = keep_stamping().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut cli = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        cli.set_nodelay(true).unwrap();
        let (srv, _) = listener.accept().unwrap();
        lend_socket(srv.as_raw_fd(), app.config.max_header_bytes);
        // The kernel starts stamping a little after the first socket asks: wait for it.
        let mut probe = [0u8; 8];
        let stamped = (0..200).any(|_| {
            cli.write_all(b"x").unwrap();
            std::thread::sleep(Duration::from_millis(5));
            let (n, at) = recv_stamped(srv.as_raw_fd(), &mut probe).unwrap();
            assert_eq!(n, 1);
            at.is_some()
        });
        assert!(stamped, "receive timestamps within 1 s");
        let due = Instant::now() + Duration::from_secs(30);
        let idx = fanout
            .register(
                srv.as_raw_fd(),
                poll(100),
                1,
                || hub.head(),
                &app.stats,
                Some((&app, due)),
            )
            .unwrap();
        assert!(fanout.rearm(idx, Duration::from_secs(10)).is_some());
        hub.publish(&[2], 40);
        let mut answer = [0u8; 4096];
        assert!(cli.read(&mut answer).unwrap() > 0);
        let sent = Instant::now();
        cli.write_all(b"GET /longpoll?after=2&timeout_ms=1000 HTTP/1.1\r\nhost: t\r\n\r\n")
            .unwrap();
        assert_eq!(sweep_all(&app), 1);
        let read = Instant::now();
        assert!(read >= sent + SWEEP_DELAYS[0], "read a round later");
        let wake = fanout.rearm(idx, Duration::from_secs(10)).unwrap();
        let early = Duration::from_millis(1);
        assert!(
            wake + early >= sent + Duration::from_secs(1),
            "{:?}",
            wake - sent
        );
        assert!(
            wake <= read + Duration::from_secs(1) - SWEEP_DELAYS[0] / 2,
            "{:?}",
            wake - sent
        );
        let back = fanout.take(idx).unwrap();
        assert_eq!(back.seq, 2);
        return_socket(srv.as_raw_fd());
    }

    #[test]
    fn stamps_read_back_to_the_millisecond_across_the_wrap() {
        let stamp = |ms: u32| Stamp(std::num::NonZeroU32::new(ms.wrapping_add(1)).unwrap());
        assert_eq!(ms_since(1_000, stamp(400)), 600);
        assert_eq!(
            ms_since(5, stamp(u32::MAX - 2)),
            8,
            "taken before the count wrapped"
        );
        assert_eq!(ms_since(7, stamp(7)), 0);
        assert_eq!(ms_since(400, stamp(1_000)), -600, "a deadline ahead");
        assert_eq!(
            ms_since(u32::MAX - 1, stamp(3)),
            -5,
            "ahead, across the wrap"
        );
        // Where ms + 1 wraps to zero the stamp says 1: a millisecond off.
        let wrapped = Stamp(std::num::NonZeroU32::MIN);
        assert_eq!(ms_since(u32::MAX, wrapped), -1);
        // Through the registry's clock.
        let mut fanout = Fanout::default();
        let now = Instant::now();
        fanout.epoch = now - std::time::Duration::from_secs(10);
        let at = now - std::time::Duration::from_secs(3);
        let back = fanout.instant(fanout.stamp(at));
        let err = back.max(at) - back.min(at);
        assert!(err <= std::time::Duration::from_millis(2), "{err:?}");
        // A deadline ahead reads back never early, within a millisecond, and the same
        // instant each time.
        let due = now + Duration::from_millis(30_000) + Duration::from_micros(300);
        let stamp = fanout.stamp_up(due);
        let back = fanout.instant(stamp);
        assert!(
            back >= due && back - due < Duration::from_millis(1),
            "{:?}",
            back - due
        );
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(fanout.instant(stamp), back);
    }

    #[test]
    fn large_batches_are_left_to_the_tasks() {
        let big = events(1, 3, MAX_PASS_BYTES / 2);
        assert!(ws_frames(&big).is_none());
        assert!(sse_chunks(&big).is_none());
        // One event is written whatever its size.
        let one = events(1, 1, MAX_PASS_BYTES * 2);
        assert_eq!(ws_frames(&one).unwrap(), one[0].ws);
        assert!(sse_chunks(&one).is_some());
        assert!(poll_answer(&big).is_none());
        assert!(poll_answer(&one).is_some());
    }
}
