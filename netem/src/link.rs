//! The link model: pure functions of (packet length, arrival time) that say when a packet
//! leaves or why it is dropped. No clock reads: times are nanoseconds on the caller's
//! clock, so every figure here is unit-tested exactly.
//!
//! A [`Pipe`] is one direction of one link, applied in this order:
//! 1. loss: an independent Bernoulli drop with probability `loss` (before the queue, so a
//!    lost packet takes no queue space);
//! 2. rate: FIFO serialization at `rate` (a packet of `len` bytes occupies the link for
//!    `len × 8 / rate`); drop-tail when the bytes not yet serialized (including the unsent
//!    rest of the packet on the wire) plus this packet would exceed `queue`;
//! 3. delay: propagation `rtt / 2`, plus a uniform offset in `[-jitter, +jitter]`;
//! 4. order: a packet never leaves before the one offered before it on the same pipe (one
//!    serial path), so jitter delays a packet behind a later-drawn predecessor instead of
//!    reordering; this raises the mean one-way delay slightly above `rtt / 2`.
//!
//! A [`LinkModel`] holds a [`ClientLink`] (down and up pipes) per client address plus
//! one default link, and the optional shared bottleneck (rate and queue only, no delay or
//! loss). The bottleneck sits at the server: down packets cross it first and then the
//! client's access link; up packets cross the access link (including its delay) and then
//! the bottleneck. The bottleneck serves packets in the order they are offered; an up
//! packet from a short-delay client can be offered after one from a long-delay client
//! that arrives later, and then waits behind it, an error bounded by the difference of
//! the two clients' one-way delays and only while the bottleneck is busy.

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use crate::spec::{default_queue, LinkParams, NetSpec};

/// Nanoseconds on the emulator's clock.
pub type Nanos = u64;

/// The way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host (server) side → client side.
    Down,
    /// Client side → host (server) side.
    Up,
}

/// What a pipe does with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write the packet out at this instant.
    Deliver(Nanos),
    /// Dropped by the random loss.
    DropLoss,
    /// Dropped because the queue was full (drop-tail).
    DropQueue,
}

/// One direction of one link: loss, rate with a drop-tail queue, delay with jitter.
#[derive(Debug, Clone)]
pub struct Pipe {
    /// Serialization rate in bit/s; `None` is infinitely fast.
    rate_bps: Option<u64>,
    /// Drop-tail limit on bytes not yet serialized.
    queue_bytes: u64,
    /// One-way propagation delay.
    delay_ns: Nanos,
    /// Half-width of the uniform delay spread; at most `delay_ns`.
    jitter_ns: Nanos,
    /// Loss probability in parts per million.
    loss_ppm: u32,
    /// When the last accepted packet finishes serializing.
    busy_until: Nanos,
    /// When the last accepted packet leaves; later packets never leave earlier.
    last_departure: Nanos,
}

impl Pipe {
    /// A pipe with the given figures; `queue_bytes` matters only with a rate.
    pub fn new(
        rate_bps: Option<u64>,
        queue_bytes: u64,
        delay_ns: Nanos,
        jitter_ns: Nanos,
        loss_ppm: u32,
    ) -> Pipe {
        Pipe {
            rate_bps,
            queue_bytes,
            delay_ns,
            jitter_ns: jitter_ns.min(delay_ns),
            loss_ppm,
            busy_until: 0,
            last_departure: 0,
        }
    }

    /// A shared bottleneck: rate and queue only.
    pub fn bottleneck(rate_bps: u64, queue_bytes: u64) -> Pipe {
        Pipe::new(Some(rate_bps), queue_bytes, 0, 0, 0)
    }

    /// Decides the fate of a `len`-byte packet arriving at `now`.
    pub fn offer(&mut self, len: usize, now: Nanos, rng: &mut Xoshiro256PlusPlus) -> Verdict {
        if self.loss_ppm > 0 && rng.random_range(0..1_000_000u32) < self.loss_ppm {
            return Verdict::DropLoss;
        }
        let sent = match self.rate_bps {
            None => now,
            Some(rate) => match self.serialize(len as u64, now, rate) {
                Some(done) => done,
                None => return Verdict::DropQueue,
            },
        };
        let mut depart = sent + self.delay_ns;
        if self.jitter_ns > 0 {
            depart = depart - self.jitter_ns + rng.random_range(0..=2 * self.jitter_ns);
        }
        depart = depart.max(self.last_departure);
        self.last_departure = depart;
        Verdict::Deliver(depart)
    }

    /// Queues `len` bytes behind the backlog; `None` if the queue would overflow.
    fn serialize(&mut self, len: u64, now: Nanos, rate: u64) -> Option<Nanos> {
        let backlog_ns = self.busy_until.saturating_sub(now);
        let backlog_bytes = (u128::from(backlog_ns) * u128::from(rate)).div_ceil(8_000_000_000);
        if backlog_bytes + u128::from(len) > u128::from(self.queue_bytes) {
            return None;
        }
        let start = now.max(self.busy_until);
        self.busy_until = start + serialization_ns(len, rate);
        Some(self.busy_until)
    }
}

/// How long `len` bytes occupy a link of `rate` bit/s, in nanoseconds (rounded down).
pub fn serialization_ns(len: u64, rate_bps: u64) -> Nanos {
    (u128::from(len) * 8_000_000_000 / u128::from(rate_bps.max(1))) as Nanos
}

/// One client's access link.
#[derive(Debug, Clone)]
pub struct ClientLink {
    /// Host → client.
    pub down: Pipe,
    /// Client → host.
    pub up: Pipe,
}

impl ClientLink {
    /// Both directions of a link with these figures.
    pub fn new(p: &LinkParams) -> ClientLink {
        let delay_ns = (p.rtt / 2).as_nanos() as Nanos;
        let jitter_ns = p.jitter.as_nanos() as Nanos;
        let pipe = |rate: Option<u64>| {
            let queue = rate.map_or(0, |r| p.queue_for(r));
            Pipe::new(rate, queue, delay_ns, jitter_ns, p.loss_ppm)
        };
        ClientLink {
            down: pipe(p.down_bps),
            up: pipe(p.up_bps),
        }
    }
}

/// Every client's link, the default link and the shared bottleneck, with the seeded RNG.
#[derive(Debug, Clone)]
pub struct LinkModel {
    /// One per client index, then the default link for addresses outside the pool.
    links: Vec<ClientLink>,
    /// The bottleneck's down pipe, if any.
    shared_down: Option<Pipe>,
    /// The bottleneck's up pipe, if any.
    shared_up: Option<Pipe>,
    /// The one random source, so a run is reproducible from its seed and packet order.
    rng: Xoshiro256PlusPlus,
}

impl LinkModel {
    /// Links for `n_clients` indices (class by the spec's assignment) plus a default link
    /// with the class of index 0. Xoshiro256++ is named, not `SmallRng`, because its
    /// output is fixed across rand versions.
    pub fn new(spec: &NetSpec, n_clients: usize, seed: u64) -> LinkModel {
        let table = spec.class_table();
        let classes: Vec<ClientLink> = (0..spec.class_count())
            .map(|c| ClientLink::new(&spec.class_params(c)))
            .collect();
        let mut links: Vec<ClientLink> = (0..n_clients)
            .map(|i| classes[table[i % table.len()]].clone())
            .collect();
        links.push(classes[table[0]].clone());
        let shared = |s: &crate::spec::SharedLink| {
            Pipe::bottleneck(
                s.rate_bps,
                s.queue_bytes.unwrap_or(default_queue(s.rate_bps)),
            )
        };
        LinkModel {
            links,
            shared_down: spec.shared.as_ref().map(shared),
            shared_up: spec.shared.as_ref().map(shared),
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        }
    }

    /// The index of the default link (for addresses outside the pool).
    pub fn default_link(&self) -> usize {
        self.links.len() - 1
    }

    /// Runs a packet through client `link`'s pipe for `dir` and the bottleneck; an index
    /// beyond the pool uses the default link.
    pub fn offer(&mut self, dir: Direction, link: usize, len: usize, now: Nanos) -> Verdict {
        let link = link.min(self.default_link());
        let access = &mut self.links[link];
        match dir {
            Direction::Down => {
                let at = match self.shared_down.as_mut() {
                    None => now,
                    Some(b) => match b.offer(len, now, &mut self.rng) {
                        Verdict::Deliver(at) => at,
                        drop => return drop,
                    },
                };
                access.down.offer(len, at, &mut self.rng)
            }
            Direction::Up => {
                let verdict = access.up.offer(len, now, &mut self.rng);
                match (verdict, self.shared_up.as_mut()) {
                    (Verdict::Deliver(at), Some(b)) => b.offer(len, at, &mut self.rng),
                    (v, _) => v,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Nanos = 1_000_000;

    fn rng() -> Xoshiro256PlusPlus {
        Xoshiro256PlusPlus::seed_from_u64(7)
    }

    fn spec(s: &str) -> NetSpec {
        s.parse().unwrap()
    }

    #[test]
    fn serialization_of_1500_bytes_at_12_mbit_is_1_ms() {
        assert_eq!(serialization_ns(1500, 12_000_000), MS);
        let mut pipe = Pipe::new(Some(12_000_000), 1_000_000, 0, 0, 0);
        let mut r = rng();
        assert_eq!(pipe.offer(1500, 0, &mut r), Verdict::Deliver(MS));
        assert_eq!(pipe.offer(1500, 0, &mut r), Verdict::Deliver(2 * MS));
        // An idle link starts serializing at the arrival.
        assert_eq!(pipe.offer(1500, 10 * MS, &mut r), Verdict::Deliver(11 * MS));
    }

    #[test]
    fn delay_is_half_the_rtt_after_serialization() {
        let p = spec("rtt=100ms,down=12mbit").class_params(0);
        let mut link = ClientLink::new(&p);
        let mut r = rng();
        assert_eq!(link.down.offer(1500, 0, &mut r), Verdict::Deliver(51 * MS));
        assert_eq!(
            link.up.offer(1500, 5, &mut r),
            Verdict::Deliver(50 * MS + 5)
        );
    }

    #[test]
    fn queue_drops_tail_at_the_configured_bytes() {
        let mut pipe = Pipe::new(Some(12_000_000), 15_000, 0, 0, 0);
        let mut r = rng();
        for k in 1..=10 {
            assert_eq!(
                pipe.offer(1500, 0, &mut r),
                Verdict::Deliver(k * MS),
                "packet {k}"
            );
        }
        assert_eq!(pipe.offer(1500, 0, &mut r), Verdict::DropQueue);
        assert_eq!(pipe.offer(1, 0, &mut r), Verdict::DropQueue);
        // After one packet's time, one packet's room is free again.
        assert_eq!(pipe.offer(1500, MS, &mut r), Verdict::Deliver(11 * MS));
        assert_eq!(pipe.offer(1500, MS, &mut r), Verdict::DropQueue);
    }

    #[test]
    fn default_queue_is_100_ms_of_rate_but_at_least_64_kb() {
        assert_eq!(default_queue(10_000_000), 125_000);
        assert_eq!(default_queue(1_000_000), 64_000);
    }

    #[test]
    fn jitter_spreads_sparse_packets_uniformly_within_bounds() {
        // Packets 25 ms apart never catch up with each other under +-10 ms of jitter, so
        // each one's delay is its own uniform draw in [40 ms, 60 ms].
        let mut pipe = Pipe::new(None, 0, 50 * MS, 10 * MS, 0);
        let mut r = rng();
        let (mut below, mut above) = (0, 0);
        for i in 0..10_000u64 {
            let now = i * 25 * MS;
            let Verdict::Deliver(at) = pipe.offer(100, now, &mut r) else {
                panic!("no loss configured");
            };
            assert!((now + 40 * MS..=now + 60 * MS).contains(&at), "packet {i}");
            below += u32::from(at < now + 45 * MS);
            above += u32::from(at > now + 55 * MS);
        }
        // A quarter of the draws fall in each outer quarter: 2,500 +- 5 sigma (217).
        assert!((2_283..=2_717).contains(&below), "below {below}");
        assert!((2_283..=2_717).contains(&above), "above {above}");
    }

    #[test]
    fn jitter_never_reorders_dense_packets() {
        // Packets 0.1 ms apart under +-10 ms of jitter: each waits for its predecessor, so
        // the delay climbs towards delay + jitter (the documented cost of keeping order).
        let mut pipe = Pipe::new(None, 0, 50 * MS, 10 * MS, 0);
        let mut r = rng();
        let mut last = 0;
        for i in 0..10_000u64 {
            let now = i * 100_000;
            let Verdict::Deliver(at) = pipe.offer(100, now, &mut r) else {
                panic!("no loss configured");
            };
            assert!(at >= last, "packet {i} overtook its predecessor");
            assert!((now + 40 * MS..=now + 60 * MS).contains(&at), "packet {i}");
            last = at;
        }
    }

    #[test]
    fn loss_rate_is_within_binomial_bounds() {
        let mut pipe = Pipe::new(None, 0, 0, 0, 200_000);
        let mut r = Xoshiro256PlusPlus::seed_from_u64(42);
        let n = 100_000;
        let lost = (0..n)
            .filter(|_| pipe.offer(100, 0, &mut r) == Verdict::DropLoss)
            .count();
        // Mean 20,000, standard deviation sqrt(n p (1-p)) = 126.5; allow 5 sigma.
        assert!((20_000 - 633..=20_000 + 633).contains(&lost), "lost {lost}");
        let mut again = Pipe::new(None, 0, 0, 0, 200_000);
        let mut r = Xoshiro256PlusPlus::seed_from_u64(42);
        let lost_again = (0..n)
            .filter(|_| again.offer(100, 0, &mut r) == Verdict::DropLoss)
            .count();
        assert_eq!(lost, lost_again, "same seed, same drops");
    }

    #[test]
    fn mix_assigns_classes_by_index_3_5_2() {
        let model = LinkModel::new(&spec("mix(30%:rtt=20ms|50%:rtt=40ms|20%:rtt=60ms)"), 10, 1);
        let mut counts = [0; 3];
        for link in &model.links[..10] {
            counts[(link.down.delay_ns / (10 * MS)) as usize - 1] += 1;
        }
        assert_eq!(counts, [3, 5, 2]);
        // The default link has index 0's class (the 50% one comes first).
        assert_eq!(model.links[10].down.delay_ns, 20 * MS);
    }

    #[test]
    fn shared_bottleneck_comes_first_down_and_last_up() {
        let mut model = LinkModel::new(&spec("rtt=100ms,down=12mbit,shared=6mbit"), 2, 1);
        // Down: 2 ms on the bottleneck, then 1 ms on the access link, then 50 ms.
        assert_eq!(
            model.offer(Direction::Down, 0, 1500, 0),
            Verdict::Deliver(53 * MS)
        );
        // Another client's packet waits behind the first on the bottleneck only.
        assert_eq!(
            model.offer(Direction::Down, 1, 1500, 0),
            Verdict::Deliver(55 * MS)
        );
        // Up: the access link has no rate, so 50 ms, then 2 ms on the bottleneck.
        assert_eq!(
            model.offer(Direction::Up, 0, 1500, 0),
            Verdict::Deliver(52 * MS)
        );
        // An unknown index uses the default link.
        assert_eq!(
            model.offer(Direction::Up, 99, 1500, 0),
            Verdict::Deliver(54 * MS)
        );
    }
}
