//! Sequence accounting: which events each client received, and what that adds up to.
//!
//! Every client remembers the seqs it received whose `ts` falls in the measure window, in a
//! [`SeqSet`]. After the run the window's seq range `[lo, hi]` is known (read from the
//! server's feed, see `feed.rs`; the union of what the clients saw only when the feed could
//! not be read), and for every client `delivered` is the number of its seqs in that range
//! and `missed` the rest of the range: gaps, events the server reported as `missed`, events
//! no client received, and everything after a client died all count as missed, nothing is
//! guessed. Duplicates and out-of-order arrivals are counted as they happen.

/// A growable bitset of sequence numbers.
#[derive(Debug, Default, Clone)]
pub struct SeqSet {
    /// Seq of bit 0 of `words[0]`, a multiple of 64.
    base: u64,
    words: Vec<u64>,
}

/// Largest span of seqs one set covers (2^26 bits = 8 MiB); a seq further away is rejected
/// rather than letting one garbage value allocate without bound.
const MAX_SPAN_BITS: u64 = 1 << 26;

impl SeqSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts `seq`; returns `Some(true)` if it was new, `Some(false)` if already present,
    /// `None` if it is too far from the others to track.
    pub fn insert(&mut self, seq: u64) -> Option<bool> {
        let aligned = seq & !63;
        if self.words.is_empty() {
            self.base = aligned;
        } else if aligned < self.base {
            let extra = ((self.base - aligned) / 64) as usize;
            if (self.words.len() + extra) as u64 * 64 > MAX_SPAN_BITS {
                return None;
            }
            self.words.splice(0..0, std::iter::repeat_n(0, extra));
            self.base = aligned;
        }
        let offset = seq - self.base;
        if offset >= MAX_SPAN_BITS {
            return None;
        }
        let word = (offset / 64) as usize;
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let bit = 1u64 << (offset % 64);
        let was = self.words[word] & bit != 0;
        self.words[word] |= bit;
        Some(!was)
    }

    /// Whether `seq` is in the set.
    pub fn contains(&self, seq: u64) -> bool {
        if seq < self.base {
            return false;
        }
        let offset = seq - self.base;
        let word = (offset / 64) as usize;
        word < self.words.len() && self.words[word] & (1u64 << (offset % 64)) != 0
    }

    /// The smallest and largest seq in the set.
    pub fn bounds(&self) -> Option<(u64, u64)> {
        let first = self.words.iter().position(|&w| w != 0)?;
        let last = self.words.iter().rposition(|&w| w != 0)?;
        let lo = self.base + first as u64 * 64 + self.words[first].trailing_zeros() as u64;
        let hi = self.base + last as u64 * 64 + 63 - self.words[last].leading_zeros() as u64;
        Some((lo, hi))
    }

    /// The set's words covering `[lo, hi]`, realigned so that bit 0 of the first is the
    /// multiple of 64 at or below `lo`; bits outside the range may be set.
    fn words_from(&self, lo: u64, hi: u64) -> impl Iterator<Item = (usize, u64)> + '_ {
        let first = lo & !63;
        let n_words = ((hi - first) / 64 + 1) as usize;
        (0..n_words).filter_map(move |i| {
            let seq = first + i as u64 * 64;
            // `base` is a multiple of 64 too, so whole words line up.
            let w = seq.checked_sub(self.base).map(|o| (o / 64) as usize)?;
            self.words.get(w).map(|&bits| (i, bits))
        })
    }

    /// How many seqs in `[lo, hi]` are in the set.
    pub fn count_in(&self, lo: u64, hi: u64) -> u64 {
        if self.words.is_empty() || hi < lo {
            return 0;
        }
        let end = self.base + self.words.len() as u64 * 64;
        let lo = lo.max(self.base);
        let hi = hi.min(end - 1);
        if hi < lo {
            return 0;
        }
        let (first, last) = (
            ((lo - self.base) / 64) as usize,
            ((hi - self.base) / 64) as usize,
        );
        let mut n = 0u64;
        for (i, &w) in self.words[first..=last].iter().enumerate() {
            let word = first + i;
            let mut mask = u64::MAX;
            if word == first {
                mask &= u64::MAX << ((lo - self.base) % 64);
            }
            if word == last {
                mask &= u64::MAX >> (63 - (hi - self.base) % 64);
            }
            n += (w & mask).count_ones() as u64;
        }
        n
    }
}

/// Event totals for a scenario.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventTotals {
    /// Events whose `ts` falls in the window: `hi - lo + 1`.
    pub published: u64,
    /// `published` × clients.
    pub expected: u64,
    /// Distinct in-window events received, summed over clients.
    pub delivered: u64,
    /// `expected - delivered`.
    pub missed: u64,
}

/// Adds up the per-client sets over the window range `[lo, hi]`.
pub fn totals(range: Option<(u64, u64)>, n_clients: u64, sets: &[SeqSet]) -> EventTotals {
    let Some((lo, hi)) = range else {
        return EventTotals::default();
    };
    let published = hi - lo + 1;
    let expected = published * n_clients;
    let delivered: u64 = sets.iter().map(|s| s.count_in(lo, hi)).sum();
    EventTotals {
        published,
        expected,
        delivered,
        missed: expected.saturating_sub(delivered),
    }
}

/// The seqs in `[lo, hi]` that any of `sets` holds.
fn union_in(lo: u64, hi: u64, sets: &[SeqSet]) -> SeqSet {
    // OR the sets word by word: clients × range/64 word operations, not clients × range.
    let mut union = SeqSet {
        base: lo & !63,
        words: vec![0; ((hi - (lo & !63)) / 64 + 1) as usize],
    };
    for set in sets.iter().filter(|s| !s.words.is_empty()) {
        for (i, bits) in set.words_from(lo, hi) {
            union.words[i] |= bits;
        }
    }
    union
}

/// How many seqs in `[lo, hi]` are in none of `sets`: events of the window that no client
/// received.
pub fn unreceived(range: Option<(u64, u64)>, sets: &[SeqSet]) -> u64 {
    let Some((lo, hi)) = range else {
        return 0;
    };
    (hi - lo + 1) - union_in(lo, hi, sets).count_in(lo, hi)
}

/// The first `max` seqs in `[lo, hi]` that are in none of `sets`, in order.
pub fn unreceived_seqs(range: Option<(u64, u64)>, sets: &[SeqSet], max: usize) -> Vec<u64> {
    let Some((lo, hi)) = range else {
        return Vec::new();
    };
    let union = union_in(lo, hi, sets);
    (lo..=hi)
        .filter(|&s| !union.contains(s))
        .take(max)
        .collect()
}

/// The window's seq range: the union of what any client saw in the window.
pub fn window_range(sets: &[SeqSet]) -> Option<(u64, u64)> {
    sets.iter()
        .filter_map(SeqSet::bounds)
        .reduce(|a, b| (a.0.min(b.0), a.1.max(b.1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_counts_ranges() {
        let mut s = SeqSet::new();
        assert_eq!(s.bounds(), None);
        for seq in [100, 101, 103, 200, 63] {
            assert_eq!(s.insert(seq), Some(true));
        }
        assert_eq!(s.insert(101), Some(false));
        assert!(s.contains(63) && s.contains(200) && !s.contains(102) && !s.contains(5));
        assert_eq!(s.bounds(), Some((63, 200)));
        assert_eq!(s.count_in(0, 1000), 5);
        assert_eq!(s.count_in(100, 103), 3);
        assert_eq!(s.count_in(101, 101), 1);
        assert_eq!(s.count_in(102, 102), 0);
        assert_eq!(s.count_in(64, 199), 3);
        assert_eq!(s.count_in(201, 300), 0);
        assert_eq!(s.insert(u64::MAX), None);
    }

    #[test]
    fn totals_count_gaps_as_missed() {
        let mut a = SeqSet::new();
        let mut b = SeqSet::new();
        for seq in 10..=20 {
            a.insert(seq);
            if seq != 15 && seq != 16 {
                b.insert(seq);
            }
        }
        let sets = [a, b, SeqSet::new()];
        let range = window_range(&sets);
        assert_eq!(range, Some((10, 20)));
        let t = totals(range, 3, &sets);
        assert_eq!(
            t,
            EventTotals {
                published: 11,
                expected: 33,
                delivered: 20,
                missed: 13
            }
        );
        assert_eq!(totals(None, 3, &sets), EventTotals::default());
        assert_eq!(unreceived(range, &sets), 0);
    }

    #[test]
    fn events_no_client_received_are_counted_once() {
        let mut a = SeqSet::new();
        let mut b = SeqSet::new();
        for seq in 100..=300 {
            // 150 reaches nobody; 151 and 250 reach only one client each.
            if seq != 150 && seq != 151 {
                a.insert(seq);
            }
            if seq != 150 && seq != 250 {
                b.insert(seq);
            }
        }
        let sets = [a, b, SeqSet::new()];
        assert_eq!(unreceived(Some((100, 300)), &sets), 1);
        // A range wider than what anyone saw: the outside seqs reached nobody either.
        assert_eq!(unreceived(Some((90, 310)), &sets), 1 + 10 + 10);
        assert_eq!(unreceived(Some((150, 150)), &sets), 1);
        assert_eq!(unreceived(Some((151, 151)), &sets), 0);
        assert_eq!(unreceived(None, &sets), 0);
        assert_eq!(unreceived(Some((5, 6)), &[]), 2);
        assert_eq!(unreceived_seqs(Some((100, 300)), &sets, 10), vec![150]);
        assert_eq!(
            unreceived_seqs(Some((90, 310)), &sets, 12),
            vec![90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 150, 301]
        );
        assert_eq!(unreceived_seqs(None, &sets, 10), Vec::<u64>::new());
        let t = totals(Some((100, 300)), 3, &sets);
        // Client c received nothing; 150 is missed by all three.
        assert_eq!(t.missed, 201 + 2 + 2);
    }
}
