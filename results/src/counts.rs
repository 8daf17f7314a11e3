//! Counts of a process's work over a scenario's window: socket calls, context switches and
//! heap allocations.
//!
//! Unlike CPU time and latency these do not depend on how busy the machine is, so the
//! regression gate can judge them almost exactly (`compare`'s `count` class). Every field is
//! optional: a server we did not write reports none of them, and the load generator reports
//! only its context switches (its sockets are counted in bytes, not calls, and its
//! allocations are not counted).

use serde::{Deserialize, Serialize};

/// Work a process did during the window (differences of its counters at the window's
/// edges). Absent fields were not reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessCounts {
    /// Reads from client sockets that completed (one `recvfrom` each), every transport
    /// class of the server, including the load generator's own `/stats` samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_reads: Option<u64>,
    /// Writes to client sockets that completed (one `sendto`/`writev` each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket_writes: Option<u64>,
    /// Voluntary plus involuntary context switches of every thread (`getrusage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_switches: Option<u64>,
    /// Heap allocations (`alloc`, `alloc_zeroed`, `realloc` calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocations: Option<u64>,
    /// Bytes those allocations asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocated_bytes: Option<u64>,
}

impl ProcessCounts {
    /// Whether no field is reported (then the block is left out of the file).
    pub fn is_empty(&self) -> bool {
        *self == ProcessCounts::default()
    }

    /// The window's counts from the totals at its edges, field by field
    /// ([`counter_delta`]); `None` when no field is reported on both sides.
    pub fn delta(start: &ProcessCounts, end: &ProcessCounts) -> Option<ProcessCounts> {
        let d = ProcessCounts {
            socket_reads: counter_delta(start.socket_reads, end.socket_reads),
            socket_writes: counter_delta(start.socket_writes, end.socket_writes),
            context_switches: counter_delta(start.context_switches, end.context_switches),
            allocations: counter_delta(start.allocations, end.allocations),
            allocated_bytes: counter_delta(start.allocated_bytes, end.allocated_bytes),
        };
        (!d.is_empty()).then_some(d)
    }
}

/// `end − start` of a counter both samples report; `None` when either lacks it. A counter
/// that went backwards (a restarted server) gives `None` rather than a wrapped difference.
pub fn counter_delta(start: Option<u64>, end: Option<u64>) -> Option<u64> {
    end?.checked_sub(start?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_need_both_sides_and_never_wrap() {
        assert_eq!(counter_delta(Some(10), Some(25)), Some(15));
        assert_eq!(counter_delta(None, Some(25)), None);
        assert_eq!(counter_delta(Some(10), None), None);
        assert_eq!(counter_delta(Some(30), Some(25)), None);
    }

    #[test]
    fn window_counts_are_edge_differences() {
        let start = ProcessCounts {
            socket_writes: Some(100),
            allocations: Some(1_000),
            context_switches: Some(5),
            ..ProcessCounts::default()
        };
        let end = ProcessCounts {
            socket_writes: Some(160),
            allocations: Some(1_900),
            allocated_bytes: Some(4_096),
            ..ProcessCounts::default()
        };
        assert_eq!(
            ProcessCounts::delta(&start, &end),
            Some(ProcessCounts {
                socket_writes: Some(60),
                allocations: Some(900),
                ..ProcessCounts::default()
            })
        );
        assert_eq!(ProcessCounts::delta(&ProcessCounts::default(), &end), None);
    }

    #[test]
    fn absent_fields_are_left_out_of_the_json() {
        let c = ProcessCounts {
            allocations: Some(7),
            ..ProcessCounts::default()
        };
        assert_eq!(serde_json::to_string(&c).unwrap(), r#"{"allocations":7}"#);
        let back: ProcessCounts = serde_json::from_str("{}").unwrap();
        assert!(back.is_empty());
    }
}
