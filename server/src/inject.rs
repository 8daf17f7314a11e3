//! Deliberate regressions, compiled only with the `inject` feature, for proving that the
//! regression gate catches them (`tests/gate_counts.rs`, `scripts/gate-power.sh`).
//!
//! A normal build has none of this: the feature is off by default, and `cargo build` of
//! the `feedbench` binary never turns it on (the root package enables it only as a
//! dev-dependency, i.e. for its tests, and `scripts/gate-power.sh` builds a separate
//! binary with `--features feedbench-server/inject`). With the feature, the environment
//! variable `FEEDBENCH_INJECT` (read once, at the first event) chooses what to inject, as a
//! comma-separated list of `key=value`:
//!
//! - `alloc=N`: N extra heap allocations (64 bytes each, freed at once) per SSE event
//!   delivered to a subscriber;
//! - `write=1`: each SSE event delivered is written in two socket writes instead of one;
//! - `spin_us=N`: N µs of busy CPU per SSE event delivered;
//! - `pad=N`: N more bytes per SSE event (an SSE comment line before the event, which
//!   clients ignore);
//! - `stamp_us=N`: every event's stamp is N µs earlier than its schedule, so every
//!   delivery's measured latency is N µs longer, on every transport.
//!
//! An unknown key or a bad value panics at the first event, naming it: the injection is a
//! test fixture, and a typo must not pass as "no regression found".

use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What to inject; all zero without `FEEDBENCH_INJECT`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inject {
    /// Extra allocations per delivered SSE event.
    pub alloc: u32,
    /// Split each delivered SSE event's write in two.
    pub split_write: bool,
    /// Busy CPU per delivered SSE event.
    pub spin: Duration,
    /// Extra bytes per SSE event.
    pub pad: usize,
    /// How much earlier than scheduled events are stamped.
    pub stamp_early: Duration,
}

/// Parses a `FEEDBENCH_INJECT` value.
pub fn parse(text: &str) -> Result<Inject, String> {
    let mut out = Inject::default();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (key, value) = item
            .split_once('=')
            .ok_or_else(|| format!("FEEDBENCH_INJECT item {item:?} is not key=value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("FEEDBENCH_INJECT {key}={value:?} is not a whole number"))?;
        match key {
            "alloc" => out.alloc = n as u32,
            "write" => out.split_write = n != 0,
            "spin_us" => out.spin = Duration::from_micros(n),
            "pad" => out.pad = n as usize,
            "stamp_us" => out.stamp_early = Duration::from_micros(n),
            _ => return Err(format!("FEEDBENCH_INJECT has an unknown key {key:?}")),
        }
    }
    Ok(out)
}

/// The injection of this process, from `FEEDBENCH_INJECT` (read once).
pub fn get() -> &'static Inject {
    static INJECT: OnceLock<Inject> = OnceLock::new();
    INJECT.get_or_init(|| {
        let text = std::env::var("FEEDBENCH_INJECT").unwrap_or_default();
        // A fixture with a typo must fail loudly, not measure nothing (see the module doc).
        parse(&text).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Whether `FEEDBENCH_INJECT` is set at all (even empty): then every SSE event is written
/// by its stream's task, where the injections act, in the baseline runs as well, so that a
/// gate run compares like with like. Without it the publisher writes to caught-up sockets
/// as in a normal build (`crate::fanout`).
pub fn in_use() -> bool {
    static SET: OnceLock<bool> = OnceLock::new();
    *SET.get_or_init(|| std::env::var_os("FEEDBENCH_INJECT").is_some())
}

/// The work injected per delivered SSE event: allocations and busy CPU.
pub fn per_event(inject: &Inject) {
    for _ in 0..inject.alloc {
        std::hint::black_box(Vec::<u8>::with_capacity(64));
    }
    if !inject.spin.is_zero() {
        let until = Instant::now() + inject.spin;
        while Instant::now() < until {
            std::hint::spin_loop();
        }
    }
}

/// The SSE comment line that pads an event by `n` bytes (`:`, dots, a newline); empty
/// below 2 bytes, the shortest comment line.
pub fn pad_line(n: usize) -> Vec<u8> {
    if n < 2 {
        return Vec::new();
    }
    let mut line = vec![b'.'; n];
    line[0] = b':';
    line[n - 1] = b'\n';
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_refuses_typos() {
        assert_eq!(parse(""), Ok(Inject::default()));
        assert_eq!(
            parse("alloc=2, write=1,spin_us=30,pad=10,stamp_us=50"),
            Ok(Inject {
                alloc: 2,
                split_write: true,
                spin: Duration::from_micros(30),
                pad: 10,
                stamp_early: Duration::from_micros(50),
            })
        );
        assert!(parse("allocs=1")
            .unwrap_err()
            .contains("unknown key \"allocs\""));
        assert!(parse("alloc=x").unwrap_err().contains("not a whole number"));
        assert!(parse("alloc").unwrap_err().contains("not key=value"));
    }

    #[test]
    fn pad_lines_are_sse_comments_of_the_asked_length() {
        assert_eq!(pad_line(5), b":...\n");
        assert_eq!(pad_line(0), b"");
    }
}
