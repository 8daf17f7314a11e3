//! The forwarder: one OS thread (`feedbench-netem`) that owns both TUN descriptors, reads
//! packets, runs them through the [`LinkModel`] and writes each out at its departure time.
//!
//! Loop: `ppoll` on the two TUN fds and a wake-up eventfd, with a nanosecond timeout up to
//! the next departure (timer slack set to 1 ns, and at most 100 ms so a stop is never
//! missed); read at most [`READ_BATCH`] packets per fd per turn; hold accepted packets in a
//! binary heap keyed by (departure, arrival sequence); write the due ones.
//!
//! Classification: a down packet belongs to the client its destination address names, an
//! up packet to the client its source names; addresses outside the pool (such as the
//! namespace's own 198.19.0.2) share one default link with the class of index 0.
//!
//! Bounds: at most [`MAX_HELD_PACKETS`] packets or [`MAX_HELD_BYTES`] of buffers held;
//! beyond that a packet is dropped and counted in `drops_overflow` (the link model has
//! already counted it as sent, so its queue state is slightly pessimistic afterwards).
//! [`Forwarder::set_spec`] hands the thread a new model, which it swaps in between
//! packets; packets already held keep their departure times.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::counters::{bump, AtomicDir, Counters, NetCounters};
use crate::error::NetError;
use crate::link::{Direction, LinkModel, Nanos, Verdict};
use crate::ns::{POOL_FIRST, POOL_SIZE};
use crate::packet::{parse_ipv4, RetxDetector, SegmentKind};
use crate::tun::{read_packet, write_packet};

/// Packets read from one fd before the thread looks at the other and at due packets.
pub const READ_BATCH: usize = 64;
/// The most packets held at once.
pub const MAX_HELD_PACKETS: usize = 100_000;
/// The most buffer bytes held at once.
pub const MAX_HELD_BYTES: usize = 256 << 20;
/// A packet written later than this after its departure time is late.
pub const LATE_NS: Nanos = 1_000_000;
/// Each packet buffer's size: an MTU-1500 packet and room to spare.
const BUF_BYTES: usize = 2048;
/// Free buffers kept for reuse.
const MAX_FREE_BUFFERS: usize = 4096;
/// The longest `ppoll` wait, so the stop flag is seen even if a wake-up were lost.
const MAX_WAIT: Duration = Duration::from_millis(100);
/// How long `set_spec` waits for the thread to take the new model.
const SET_SPEC_TIMEOUT: Duration = Duration::from_secs(2);

/// A packet waiting for its departure.
struct Held {
    /// Departure time.
    depart: Nanos,
    /// Arrival order, so equal departures leave in arrival order.
    seq: u64,
    /// Which way it goes.
    dir: Direction,
    /// The packet; `len` bytes of it are valid.
    buf: Vec<u8>,
    /// Packet length.
    len: usize,
}

impl PartialEq for Held {
    fn eq(&self, o: &Self) -> bool {
        (self.depart, self.seq) == (o.depart, o.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Held {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.depart, self.seq).cmp(&(o.depart, o.seq))
    }
}

/// A model change handed to the thread.
#[derive(Default)]
struct Control {
    /// The next model, if one is waiting.
    pending: Option<LinkModel>,
    /// Models requested so far.
    requested: u64,
    /// Models the thread has taken.
    applied: u64,
}

/// State shared by the thread and its owner.
struct Shared {
    counters: Counters,
    control: Mutex<Control>,
    /// Signalled when the thread takes a model.
    applied: Condvar,
    /// Set when a model is pending, so the thread need not lock every turn.
    pending: AtomicBool,
    stop: AtomicBool,
}

/// The running forwarder thread.
pub struct Forwarder {
    thread: Option<JoinHandle<()>>,
    /// An eventfd that wakes the thread from `ppoll`.
    wake: Arc<OwnedFd>,
    shared: Arc<Shared>,
    started: Instant,
    /// The thread's CPU-time clock.
    cpu_clock: Option<libc::clockid_t>,
}

impl Forwarder {
    /// Starts the thread with both TUN fds (host side, client side) and a first model.
    pub fn start(host: OwnedFd, client: OwnedFd, model: LinkModel) -> Result<Forwarder, NetError> {
        // SAFETY: eventfd takes an initial value and flags; the result is checked.
        let wake = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if wake < 0 {
            return Err(NetError::io("eventfd", io::Error::last_os_error()));
        }
        // SAFETY: `wake` was just created and is owned by nobody else.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            control: Mutex::new(Control::default()),
            applied: Condvar::new(),
            pending: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let mut worker = Worker {
            host,
            client,
            wake: Arc::clone(&wake),
            shared: Arc::clone(&shared),
            model,
            epoch: Instant::now(),
            heap: BinaryHeap::new(),
            free: Vec::new(),
            held_bytes: 0,
            seq: 0,
            retx: RetxDetector::default(),
        };
        let thread = std::thread::Builder::new()
            .name("feedbench-netem".into())
            .spawn(move || worker.run())
            .map_err(|e| NetError::io("spawn the forwarder thread", e))?;
        let cpu_clock = thread_cpu_clock(&thread);
        Ok(Forwarder {
            thread: Some(thread),
            wake,
            shared,
            started: Instant::now(),
            cpu_clock,
        })
    }

    /// Hands the thread a new model and waits until it has taken it.
    pub fn set_model(&self, model: LinkModel) -> Result<(), NetError> {
        let lock_err = || NetError::Forwarder("lock was poisoned".into());
        let mut control = self.shared.control.lock().map_err(|_| lock_err())?;
        control.pending = Some(model);
        control.requested += 1;
        let want = control.requested;
        self.shared.pending.store(true, Ordering::Release);
        wake(self.wake.as_fd());
        let (control, timeout) = self
            .shared
            .applied
            .wait_timeout_while(control, SET_SPEC_TIMEOUT, |c| c.applied < want)
            .map_err(|_| lock_err())?;
        if timeout.timed_out() && control.applied < want {
            return Err(NetError::Forwarder(
                "did not take the new spec within 2s".into(),
            ));
        }
        Ok(())
    }

    /// A snapshot of the counters with the thread's CPU and wall time.
    pub fn counters(&self) -> NetCounters {
        let mut c = self.shared.counters.snapshot();
        c.wall_ns = self.started.elapsed().as_nanos() as u64;
        c.thread_cpu_ns = self.cpu_clock.map_or(0, clock_ns);
        c
    }

    /// The largest lateness (µs) since the last call, and starts a new maximum: the
    /// counters' `late_max_us` runs over the link's whole life, this over a window.
    pub fn take_late_max_us(&self) -> u64 {
        self.shared.counters.late_max_us.swap(0, Ordering::Relaxed)
    }

    /// Stops the thread and waits for it; its TUN descriptors close with it.
    pub fn stop(&mut self) -> Result<(), NetError> {
        self.shared.stop.store(true, Ordering::Release);
        wake(self.wake.as_fd());
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        thread
            .join()
            .map_err(|_| NetError::Forwarder("panicked".into()))
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        // Best effort: a panic in the thread was already reported by its hook.
        let _ = self.stop();
    }
}

fn thread_cpu_clock(thread: &JoinHandle<()>) -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: the pthread_t belongs to a thread that is not joined while `Forwarder`
    // lives; the out-pointer is valid.
    let rc = unsafe { libc::pthread_getcpuclockid(thread.as_pthread_t(), &mut clock) };
    (rc == 0).then_some(clock)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: the out-pointer is valid; a failure leaves zero.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn wake(fd: BorrowedFd<'_>) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a live u64; a full counter (EAGAIN) still wakes.
    unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
}

/// The thread's state.
struct Worker {
    host: OwnedFd,
    client: OwnedFd,
    wake: Arc<OwnedFd>,
    shared: Arc<Shared>,
    model: LinkModel,
    epoch: Instant,
    /// Held packets, earliest departure on top.
    heap: BinaryHeap<Reverse<Held>>,
    /// Buffers for reuse.
    free: Vec<Vec<u8>>,
    /// Buffer bytes held in `heap`.
    held_bytes: usize,
    /// Arrivals so far.
    seq: u64,
    retx: RetxDetector,
}

impl Worker {
    fn run(&mut self) {
        // SAFETY: PR_SET_TIMERSLACK takes a plain integer: 1 ns of slack on our timers.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
        while !self.shared.stop.load(Ordering::Acquire) {
            self.take_pending_model();
            self.flush_due();
            let readable = self.wait();
            if readable[0] {
                self.ingest(Direction::Down);
            }
            if readable[1] {
                self.ingest(Direction::Up);
            }
            if readable[2] {
                drain_eventfd(self.wake.as_fd());
            }
        }
    }

    fn now(&self) -> Nanos {
        self.epoch.elapsed().as_nanos() as Nanos
    }

    fn take_pending_model(&mut self) {
        if !self.shared.pending.swap(false, Ordering::AcqRel) {
            return;
        }
        // A poisoned lock means the owner panicked mid-update; keep the current model.
        let Ok(mut control) = self.shared.control.lock() else {
            return;
        };
        if let Some(model) = control.pending.take() {
            self.model = model;
        }
        control.applied = control.requested;
        self.shared.applied.notify_all();
    }

    /// Waits for a readable fd or the next departure; returns [host, client, wake].
    fn wait(&self) -> [bool; 3] {
        let timeout = match self.heap.peek() {
            Some(Reverse(h)) => Duration::from_nanos(h.depart.saturating_sub(self.now())),
            None => MAX_WAIT,
        }
        .min(MAX_WAIT);
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
        };
        let mut fds = [
            self.host.as_raw_fd(),
            self.client.as_raw_fd(),
            self.wake.as_raw_fd(),
        ]
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `fds` and `ts` outlive the call; no signal mask is passed.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 3, &ts, std::ptr::null()) };
        if n <= 0 {
            return [false; 3];
        }
        fds.map(|p| p.revents & libc::POLLIN != 0)
    }

    /// Reads up to a batch of packets from the side `dir` starts on.
    fn ingest(&mut self, dir: Direction) {
        let now = self.now();
        let shared = Arc::clone(&self.shared);
        for _ in 0..READ_BATCH {
            let mut buf = self.free.pop().unwrap_or_else(|| vec![0; BUF_BYTES]);
            let fd = match dir {
                Direction::Down => self.host.as_fd(),
                Direction::Up => self.client.as_fd(),
            };
            match read_packet(fd, &mut buf) {
                Ok(Some(len)) => self.accept(&shared.counters, dir, buf, len, now),
                // Nothing waiting, or a read error (the device is going away): stop here.
                Ok(None) | Err(_) => {
                    self.recycle(buf);
                    return;
                }
            }
        }
    }

    /// Counts a packet, runs it through the model and holds it if it survives.
    fn accept(&mut self, c: &Counters, dir: Direction, buf: Vec<u8>, len: usize, now: Nanos) {
        let Some(ip) = parse_ipv4(&buf[..len]) else {
            bump(&c.non_ipv4_drops, 1);
            return self.recycle(buf);
        };
        let d = dir_counters(c, dir);
        bump(&d.packets, 1);
        bump(&d.bytes, ip.total_len as u64);
        let (kind, cleared) = self.retx.observe(&ip);
        bump(&c.flow_table_resets, u64::from(cleared));
        bump(&d.tcp_segments, u64::from(kind != SegmentKind::NotCounted));
        bump(
            &d.tcp_retransmits,
            u64::from(kind == SegmentKind::Retransmit),
        );
        let client = match dir {
            Direction::Down => ip.dst,
            Direction::Up => ip.src,
        };
        let index = (u32::from(client).wrapping_sub(u32::from(POOL_FIRST))) as usize;
        let index = if index < POOL_SIZE { index } else { usize::MAX };
        let depart = match self.model.offer(dir, index, len, now) {
            Verdict::Deliver(at) => at,
            Verdict::DropLoss => return self.drop_counted(&d.drops_loss, buf),
            Verdict::DropQueue => return self.drop_counted(&d.drops_queue, buf),
        };
        if self.heap.len() >= MAX_HELD_PACKETS || self.held_bytes >= MAX_HELD_BYTES {
            return self.drop_counted(&d.drops_overflow, buf);
        }
        self.held_bytes += buf.capacity();
        self.seq += 1;
        let held = Held {
            depart,
            seq: self.seq,
            dir,
            buf,
            len,
        };
        self.heap.push(Reverse(held));
    }

    fn drop_counted(&mut self, counter: &std::sync::atomic::AtomicU64, buf: Vec<u8>) {
        bump(counter, 1);
        self.recycle(buf);
    }

    fn recycle(&mut self, buf: Vec<u8>) {
        if self.free.len() < MAX_FREE_BUFFERS {
            self.free.push(buf);
        }
    }

    /// Writes every packet whose departure has come.
    fn flush_due(&mut self) {
        let mut now = self.now();
        let mut written = 0u32;
        while self.heap.peek().is_some_and(|Reverse(h)| h.depart <= now) {
            let Some(Reverse(held)) = self.heap.pop() else {
                break;
            };
            self.held_bytes -= held.buf.capacity();
            self.deliver(&held, now);
            self.recycle(held.buf);
            written += 1;
            // Writes take time: re-read the clock now and then so lateness stays honest.
            if written % 32 == 0 {
                now = self.now();
            }
        }
    }

    fn deliver(&self, held: &Held, now: Nanos) {
        let c = &self.shared.counters;
        let fd = match held.dir {
            Direction::Down => self.client.as_fd(),
            Direction::Up => self.host.as_fd(),
        };
        // Count before writing: the kernel may hand the packet to its reader before
        // `write` returns, and a reader that then looks at the counters must see it.
        let d = dir_counters(c, held.dir);
        bump(&d.delivered_packets, 1);
        bump(&d.delivered_bytes, held.len as u64);
        if write_packet(fd, &held.buf[..held.len]).is_err() {
            d.delivered_packets.fetch_sub(1, Ordering::Relaxed);
            d.delivered_bytes
                .fetch_sub(held.len as u64, Ordering::Relaxed);
            bump(&c.write_errors, 1);
            return;
        }
        let late = now.saturating_sub(held.depart);
        if late > LATE_NS {
            bump(&c.late_packets, 1);
            c.late_max_us.fetch_max(late / 1000, Ordering::Relaxed);
        }
    }
}

fn dir_counters(c: &Counters, dir: Direction) -> &AtomicDir {
    match dir {
        Direction::Down => &c.down,
        Direction::Up => &c.up,
    }
}

fn drain_eventfd(fd: BorrowedFd<'_>) {
    let mut value: u64 = 0;
    // SAFETY: reads 8 bytes into a live u64; EAGAIN when already drained is fine.
    unsafe { libc::read(fd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
}
