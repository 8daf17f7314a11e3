//! The link specification, [`NetSpec`]: what a user writes after `--net` and its canonical
//! spelling.
//!
//! Grammar (whitespace around items is ignored, names are case-insensitive):
//!
//! ```text
//! spec   := (class | mix) ("," top)*
//! mix    := "mix(" weight ":" class ("|" weight ":" class)* ")"   weights in whole %, sum 100
//! class  := (profile | key "=" value) ("," key "=" value)*        a profile may only come first
//! key    := rtt | jitter | down | up | loss | queue
//! top    := shared "=" rate | shared_queue "=" size
//! ```
//!
//! Units: durations `ns`, `us`, `ms`, `s`; rates `bit`, `kbit`, `mbit`, `gbit` (decimal;
//! `bps`, `kbps`, `mbps`, `gbps` are the same bits per second); sizes `b`, `kb` (1000),
//! `kib` (1024), `mb`, `mib`; loss `N%` or a fraction (`0.01`). Keys after a profile
//! override it (`4g,loss=1%`); a key may appear once per class.
//!
//! Validation, each message naming the bad part: unknown keys and profiles (listing the
//! valid ones), malformed numbers and units, `rtt` above 10 s, `jitter` above `rtt/2` (so
//! the one-way delay is never clamped at zero and its mean stays `rtt/2`), `loss` above
//! 50%, a zero rate, a queue below one MTU (1500 B), a queue with no rate to queue behind,
//! mix weights not summing to 100%, `shared*` inside a mix class.
//!
//! `Display` writes the canonical form, which parses back to an equal spec: the profile
//! first, then keys in the order `rtt, jitter, down, up, loss, queue`, each in the largest
//! unit that represents it exactly.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::error::NetError;
use crate::profiles::Profile;

/// One MTU, the smallest queue allowed.
pub const MTU_BYTES: u64 = 1500;
/// The largest RTT a spec may ask for.
pub const MAX_RTT: Duration = Duration::from_secs(10);
/// The largest loss, in parts per million (50%).
pub const MAX_LOSS_PPM: u32 = 500_000;
/// The smallest default queue (64 KB), used when `rate × 100 ms` is smaller.
pub const MIN_DEFAULT_QUEUE_BYTES: u64 = 64_000;

const CLASS_KEYS: &str = "rtt, jitter, down, up, loss, queue";
const TOP_KEYS: &str = "shared, shared_queue";

/// A whole network spec: one link class for every client, or a weighted mix of classes,
/// plus an optional shared bottleneck in front of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetSpec {
    /// The per-client link classes.
    pub classes: Classes,
    /// The bottleneck all clients share, if any.
    pub shared: Option<SharedLink>,
}

/// One class for all clients, or a weighted mix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classes {
    /// Every client gets this class.
    Single(ClassSpec),
    /// Each client gets one of these by index; weights are whole percents summing to 100.
    Mix(Vec<(u8, ClassSpec)>),
}

/// One class as written: an optional profile and the keys that override it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClassSpec {
    /// The profile written first, if any.
    pub profile: Option<Profile>,
    /// `rtt=`, if given.
    pub rtt: Option<Duration>,
    /// `jitter=`, if given.
    pub jitter: Option<Duration>,
    /// `down=` in bit/s, if given.
    pub down_bps: Option<u64>,
    /// `up=` in bit/s, if given.
    pub up_bps: Option<u64>,
    /// `loss=` in parts per million, if given.
    pub loss_ppm: Option<u32>,
    /// `queue=` in bytes, if given.
    pub queue_bytes: Option<u64>,
}

/// A class resolved into the figures the link model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkParams {
    /// Two-way propagation delay; each direction gets half.
    pub rtt: Duration,
    /// Half-width of the uniform one-way delay spread; at most `rtt / 2`.
    pub jitter: Duration,
    /// Host → client rate in bit/s; `None` is unlimited.
    pub down_bps: Option<u64>,
    /// Client → host rate in bit/s; `None` is unlimited.
    pub up_bps: Option<u64>,
    /// Independent per-packet loss in each direction, parts per million.
    pub loss_ppm: u32,
    /// Drop-tail limit on bytes waiting for serialization; `None` is the default
    /// (`max(64 KB, rate × 100 ms)`, per direction).
    pub queue_bytes: Option<u64>,
}

/// The bottleneck shared by all clients, on the server side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedLink {
    /// Its rate in bit/s, each direction.
    pub rate_bps: u64,
    /// Its drop-tail limit in bytes; `None` is the default queue for the rate.
    pub queue_bytes: Option<u64>,
}

impl LinkParams {
    /// The queue limit for a direction of the given rate.
    pub fn queue_for(&self, rate_bps: u64) -> u64 {
        self.queue_bytes.unwrap_or_else(|| default_queue(rate_bps))
    }
}

/// The default drop-tail limit for a rate: `max(64 KB, rate × 100 ms)`.
pub fn default_queue(rate_bps: u64) -> u64 {
    (rate_bps / 80).max(MIN_DEFAULT_QUEUE_BYTES)
}

impl ClassSpec {
    /// The figures this class stands for: the profile's, overridden by the keys.
    pub fn resolve(&self) -> LinkParams {
        let mut p = LinkParams::default();
        if let Some(profile) = self.profile {
            let f = profile.figures();
            p.rtt = f.rtt;
            p.down_bps = Some(f.down_bps);
            p.up_bps = Some(f.up_bps);
        }
        p.rtt = self.rtt.unwrap_or(p.rtt);
        p.jitter = self.jitter.unwrap_or(p.jitter);
        p.down_bps = self.down_bps.or(p.down_bps);
        p.up_bps = self.up_bps.or(p.up_bps);
        p.loss_ppm = self.loss_ppm.unwrap_or(p.loss_ppm);
        p.queue_bytes = self.queue_bytes.or(p.queue_bytes);
        p
    }

    fn validate(&self) -> Result<(), NetError> {
        let p = self.resolve();
        if p.rtt > MAX_RTT {
            return spec_err(format!("rtt={} exceeds the 10s limit", fmt_duration(p.rtt)));
        }
        if p.jitter > p.rtt / 2 {
            return spec_err(format!(
                "jitter={} exceeds rtt/2 ({}): the one-way delay would be clamped at zero",
                fmt_duration(p.jitter),
                fmt_duration(p.rtt / 2)
            ));
        }
        if p.loss_ppm > MAX_LOSS_PPM {
            return spec_err(format!("loss={} exceeds 50%", fmt_loss(p.loss_ppm)));
        }
        let Some(queue) = p.queue_bytes else {
            return Ok(());
        };
        if queue < MTU_BYTES {
            return spec_err(format!(
                "queue={} is below one MTU (1500b)",
                fmt_size(queue)
            ));
        }
        if p.down_bps.is_none() && p.up_bps.is_none() {
            return spec_err(format!(
                "queue={} needs down= or up=: a queue only fills behind a rate limit",
                fmt_size(queue)
            ));
        }
        Ok(())
    }
}

impl NetSpec {
    /// The number of classes (1 unless a mix).
    pub fn class_count(&self) -> usize {
        match &self.classes {
            Classes::Single(_) => 1,
            Classes::Mix(v) => v.len(),
        }
    }

    /// The resolved figures of class `class` (`0..class_count()`).
    pub fn class_params(&self, class: usize) -> LinkParams {
        match &self.classes {
            Classes::Single(c) => c.resolve(),
            Classes::Mix(v) => v[class.min(v.len() - 1)].1.resolve(),
        }
    }

    /// The class of each index over one period of the assignment: client `i` gets
    /// `table[i % table.len()]`.
    ///
    /// Smooth weighted round-robin (as in nginx) over the weights divided by their gcd, so
    /// every run of `sum/gcd` consecutive clients holds each class exactly in proportion
    /// (10 clients of `30%|50%|20%` get 3, 5 and 2) and the classes are interleaved.
    pub fn class_table(&self) -> Vec<usize> {
        let Classes::Mix(v) = &self.classes else {
            return vec![0];
        };
        let g = v
            .iter()
            .fold(0u32, |g, (w, _)| gcd(g, u32::from(*w)))
            .max(1);
        let weights: Vec<i64> = v
            .iter()
            .map(|(w, _)| i64::from(u32::from(*w) / g))
            .collect();
        let total: i64 = weights.iter().sum();
        let mut current = vec![0i64; weights.len()];
        let mut table = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, w) in current.iter_mut().zip(&weights) {
                *c += w;
            }
            let best = (0..current.len())
                .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
                .unwrap_or(0);
            current[best] -= total;
            table.push(best);
        }
        table
    }
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn spec_err<T>(msg: String) -> Result<T, NetError> {
    Err(NetError::Spec(msg))
}

impl FromStr for NetSpec {
    type Err = NetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let items = split_top(s)?;
        let (classes, rest) = match items.first() {
            Some(first) if first.to_ascii_lowercase().starts_with("mix(") => {
                (Classes::Mix(parse_mix(first)?), &items[1..])
            }
            _ => {
                let n_class = items.iter().take_while(|i| !is_top_key(i)).count();
                let class = parse_class(&items[..n_class])?;
                (Classes::Single(class), &items[n_class..])
            }
        };
        let shared = parse_top(rest)?;
        Ok(NetSpec { classes, shared })
    }
}

fn key_of(item: &str) -> String {
    item.split('=')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn is_top_key(item: &str) -> bool {
    matches!(key_of(item).as_str(), "shared" | "shared_queue")
}

/// Splits at commas outside parentheses.
fn split_top(s: &str) -> Result<Vec<&str>, NetError> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in s.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return spec_err(format!("unbalanced `)` in `{s}`"));
        }
    }
    if depth != 0 {
        return spec_err(format!("unbalanced `(` in `{s}`"));
    }
    items.push(s[start..].trim());
    if items.iter().any(|i| i.is_empty()) {
        return spec_err(format!("empty item in `{s}`"));
    }
    Ok(items)
}

fn parse_mix(item: &str) -> Result<Vec<(u8, ClassSpec)>, NetError> {
    let Some(inner) = item.get(4..).and_then(|r| r.strip_suffix(')')) else {
        return spec_err(format!(
            "malformed mix `{item}` (expected mix(W%:class|...))"
        ));
    };
    let mut classes = Vec::new();
    for part in inner.split('|') {
        let Some((w, class)) = part.split_once(':') else {
            return spec_err(format!("mix class `{part}` has no `W%:` weight"));
        };
        let weight = w
            .trim()
            .strip_suffix('%')
            .and_then(|n| n.trim().parse::<u8>().ok())
            .filter(|n| (1..=100).contains(n));
        let Some(weight) = weight else {
            return spec_err(format!("mix weight `{w}` is not a whole percent 1%..100%"));
        };
        let items: Vec<&str> = class.split(',').map(str::trim).collect();
        if items.iter().any(|i| is_top_key(i)) {
            return spec_err(format!(
                "`{part}`: shared= applies to all clients: put it after the mix, not inside a class"
            ));
        }
        classes.push((weight, parse_class(&items)?));
    }
    let sum: u32 = classes.iter().map(|(w, _)| u32::from(*w)).sum();
    if sum != 100 {
        return spec_err(format!("mix weights sum to {sum}%, not 100%"));
    }
    Ok(classes)
}

fn parse_class(items: &[&str]) -> Result<ClassSpec, NetError> {
    let mut class = ClassSpec::default();
    if items.is_empty() || items.iter().all(|i| i.is_empty()) {
        return spec_err("empty link class (give a profile or keys such as rtt=100ms)".into());
    }
    for (n, item) in items.iter().enumerate() {
        let Some((key, value)) = item.split_once('=') else {
            class.profile = Some(parse_profile(item, n)?);
            continue;
        };
        set_key(&mut class, key.trim(), value.trim(), item)?;
    }
    class.validate()?;
    Ok(class)
}

fn parse_profile(item: &str, position: usize) -> Result<Profile, NetError> {
    let Some(profile) = Profile::from_name(item) else {
        return spec_err(format!(
            "unknown profile `{item}` (valid profiles: {}; or keys: {CLASS_KEYS})",
            Profile::valid_names()
        ));
    };
    if position != 0 {
        return spec_err(format!("profile `{item}` must come first in its class"));
    }
    Ok(profile)
}

fn set_key(class: &mut ClassSpec, key: &str, value: &str, item: &str) -> Result<(), NetError> {
    let dup = || NetError::Spec(format!("key `{key}` given twice (at `{item}`)"));
    match key.to_ascii_lowercase().as_str() {
        "rtt" => put(&mut class.rtt, parse_duration(value, item)?).ok_or_else(dup),
        "jitter" => put(&mut class.jitter, parse_duration(value, item)?).ok_or_else(dup),
        "down" => put(&mut class.down_bps, parse_rate(value, item)?).ok_or_else(dup),
        "up" => put(&mut class.up_bps, parse_rate(value, item)?).ok_or_else(dup),
        "loss" => put(&mut class.loss_ppm, parse_loss(value, item)?).ok_or_else(dup),
        "queue" => put(&mut class.queue_bytes, parse_size(value, item)?).ok_or_else(dup),
        _ => spec_err(format!(
            "unknown key `{key}` in `{item}` (valid keys: {CLASS_KEYS}; at top level: {TOP_KEYS})"
        )),
    }
}

/// Sets an unset option; `None` if it was already set.
fn put<T>(slot: &mut Option<T>, value: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(value);
    Some(())
}

fn parse_top(items: &[&str]) -> Result<Option<SharedLink>, NetError> {
    let (mut rate, mut queue) = (None, None);
    for item in items {
        let Some((key, value)) = item.split_once('=') else {
            return spec_err(format!(
                "`{item}` after the link class: only {TOP_KEYS} may follow a mix or class keys"
            ));
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "shared" => rate = Some(parse_rate(value.trim(), item)?),
            "shared_queue" => queue = Some(parse_size(value.trim(), item)?),
            _ => {
                return spec_err(format!(
                    "`{item}`: only {TOP_KEYS} may follow a mix (class keys go inside it)"
                ))
            }
        }
    }
    match (rate, queue) {
        (None, None) => Ok(None),
        (None, Some(_)) => spec_err("shared_queue= needs shared=".into()),
        (Some(rate_bps), queue_bytes) => {
            if queue_bytes.is_some_and(|q| q < MTU_BYTES) {
                return spec_err("shared_queue is below one MTU (1500b)".into());
            }
            Ok(Some(SharedLink {
                rate_bps,
                queue_bytes,
            }))
        }
    }
}

/// Splits `12.5ms` into (12.5, "ms").
fn split_number<'a>(value: &'a str, what: &str, item: &str) -> Result<(f64, &'a str), NetError> {
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (num, unit) = value.split_at(end);
    match num.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok((n, unit.trim())),
        _ => spec_err(format!("malformed {what} `{value}` in `{item}`")),
    }
}

fn parse_duration(value: &str, item: &str) -> Result<Duration, NetError> {
    let (n, unit) = split_number(value, "duration", item)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => {
            return spec_err(format!(
                "malformed duration `{value}` in `{item}` (units: ns, us, ms, s)"
            ))
        }
    };
    let nanos = (n * scale).round();
    if nanos > 1e15 {
        return spec_err(format!("duration `{value}` in `{item}` is too large"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

fn parse_rate(value: &str, item: &str) -> Result<u64, NetError> {
    let (n, unit) = split_number(value, "rate", item)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "bit" | "bps" => 1.0,
        "kbit" | "kbps" => 1e3,
        "mbit" | "mbps" => 1e6,
        "gbit" | "gbps" => 1e9,
        _ => {
            return spec_err(format!(
                "malformed rate `{value}` in `{item}` (units: bit, kbit, mbit, gbit; kbps = kbit)"
            ))
        }
    };
    let bps = (n * scale).round();
    if bps < 1.0 {
        return spec_err(format!(
            "`{item}`: a rate must be positive (leave the key out for an unlimited link)"
        ));
    }
    if bps > 1e12 {
        return spec_err(format!("rate `{value}` in `{item}` is too large"));
    }
    Ok(bps as u64)
}

fn parse_size(value: &str, item: &str) -> Result<u64, NetError> {
    let (n, unit) = split_number(value, "size", item)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "b" => 1.0,
        "kb" => 1e3,
        "kib" => 1024.0,
        "mb" => 1e6,
        "mib" => 1_048_576.0,
        _ => {
            return spec_err(format!(
                "malformed size `{value}` in `{item}` (units: b, kb, kib, mb, mib)"
            ))
        }
    };
    let bytes = (n * scale).round();
    if bytes > 1e12 {
        return spec_err(format!("size `{value}` in `{item}` is too large"));
    }
    Ok(bytes as u64)
}

fn parse_loss(value: &str, item: &str) -> Result<u32, NetError> {
    let (n, unit) = split_number(value, "loss", item)?;
    let fraction = match unit {
        "%" => n / 100.0,
        "" => n,
        _ => {
            return spec_err(format!(
                "malformed loss `{value}` in `{item}` (write 1% or 0.01)"
            ))
        }
    };
    if fraction > 1.0 {
        return spec_err(format!("loss `{value}` in `{item}` exceeds 100%"));
    }
    Ok((fraction * 1e6).round() as u32)
}

/// Writes a duration in the largest unit that represents it exactly.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0 => "0ms".into(),
        _ if ns % 1_000_000_000 == 0 => format!("{}s", ns / 1_000_000_000),
        _ if ns % 1_000_000 == 0 => format!("{}ms", ns / 1_000_000),
        _ if ns % 1_000 == 0 => format!("{}us", ns / 1_000),
        _ => format!("{ns}ns"),
    }
}

/// Writes a rate in the largest decimal unit that represents it exactly.
pub fn fmt_rate(bps: u64) -> String {
    match bps {
        _ if bps % 1_000_000_000 == 0 => format!("{}gbit", bps / 1_000_000_000),
        _ if bps % 1_000_000 == 0 => format!("{}mbit", bps / 1_000_000),
        _ if bps % 1_000 == 0 => format!("{}kbit", bps / 1_000),
        _ => format!("{bps}bit"),
    }
}

/// Writes a size in the largest unit that represents it exactly (decimal first).
pub fn fmt_size(bytes: u64) -> String {
    match bytes {
        0 => "0b".into(),
        _ if bytes % 1_000_000 == 0 => format!("{}mb", bytes / 1_000_000),
        _ if bytes % 1_048_576 == 0 => format!("{}mib", bytes / 1_048_576),
        _ if bytes % 1_000 == 0 => format!("{}kb", bytes / 1_000),
        _ if bytes % 1_024 == 0 => format!("{}kib", bytes / 1_024),
        _ => format!("{bytes}b"),
    }
}

/// Writes a loss in percent with up to four decimals (exact for parts per million).
pub fn fmt_loss(ppm: u32) -> String {
    let frac = format!("{:04}", ppm % 10_000);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}%", ppm / 10_000)
    } else {
        format!("{}.{}%", ppm / 10_000, frac)
    }
}

impl fmt::Display for ClassSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(p) = self.profile {
            parts.push(p.name().into());
        }
        let keys = [
            ("rtt", self.rtt.map(fmt_duration)),
            ("jitter", self.jitter.map(fmt_duration)),
            ("down", self.down_bps.map(fmt_rate)),
            ("up", self.up_bps.map(fmt_rate)),
            ("loss", self.loss_ppm.map(fmt_loss)),
            ("queue", self.queue_bytes.map(fmt_size)),
        ];
        for (key, value) in keys {
            if let Some(v) = value {
                parts.push(format!("{key}={v}"));
            }
        }
        f.write_str(&parts.join(","))
    }
}

impl fmt::Display for NetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.classes {
            Classes::Single(c) => write!(f, "{c}")?,
            Classes::Mix(v) => {
                let parts: Vec<String> = v.iter().map(|(w, c)| format!("{w}%:{c}")).collect();
                write!(f, "mix({})", parts.join("|"))?;
            }
        }
        if let Some(s) = self.shared {
            write!(f, ",shared={}", fmt_rate(s.rate_bps))?;
            if let Some(q) = s.queue_bytes {
                write!(f, ",shared_queue={}", fmt_size(q))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> NetSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        match s.parse::<NetSpec>() {
            Ok(spec) => panic!("{s} parsed as {spec}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_profile_parses_and_round_trips() {
        for p in Profile::ALL {
            let spec = parse(p.name());
            assert_eq!(spec.to_string(), p.name());
            let params = spec.class_params(0);
            assert_eq!(params.rtt, p.figures().rtt);
            assert_eq!(params.down_bps, Some(p.figures().down_bps));
        }
        assert_eq!(parse("EDGE").to_string(), "2g");
    }

    #[test]
    fn keys_parse_with_units() {
        let spec = parse("rtt=100ms,jitter=10ms,down=2mbit,up=512kbit,loss=1%,queue=64kb");
        let p = spec.class_params(0);
        assert_eq!(p.rtt, Duration::from_millis(100));
        assert_eq!(p.jitter, Duration::from_millis(10));
        assert_eq!(p.down_bps, Some(2_000_000));
        assert_eq!(p.up_bps, Some(512_000));
        assert_eq!(p.loss_ppm, 10_000);
        assert_eq!(p.queue_bytes, Some(64_000));
        let p = parse("rtt=0.25s,down=1.5mbps,up=3kbps,loss=0.005,queue=2kib").class_params(0);
        assert_eq!(p.rtt, Duration::from_millis(250));
        assert_eq!(p.down_bps, Some(1_500_000));
        assert_eq!(p.up_bps, Some(3_000));
        assert_eq!(p.loss_ppm, 5_000);
        assert_eq!(p.queue_bytes, Some(2048));
        assert_eq!(parse("rtt=0ms").class_params(0), LinkParams::default());
    }

    #[test]
    fn profile_overrides_and_canonical_display() {
        let spec = parse(" 4g , loss=1% ");
        assert_eq!(spec.to_string(), "4g,loss=1%");
        let p = spec.class_params(0);
        assert_eq!(p.rtt, Duration::from_millis(170));
        assert_eq!(p.loss_ppm, 10_000);
        let spec = parse("queue=65536b,loss=0.0125,up=1500000bit,rtt=1500us,down=2000kbps");
        assert_eq!(
            spec.to_string(),
            "rtt=1500us,down=2mbit,up=1500kbit,loss=1.25%,queue=64kib"
        );
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "lan",
            "4g,loss=1%",
            "rtt=20ms,jitter=5ms,down=10mbit,up=1mbit,loss=0.0001%,queue=1500b",
            "mix(30%:rtt=20ms|50%:4g|20%:satellite)",
            "mix(50%:dsl,loss=2%|50%:cable),shared=50mbit,shared_queue=1mb",
            "rtt=100ms,shared=100mbit",
            "rtt=7ns,down=1001bit",
        ] {
            let spec = parse(s);
            assert_eq!(parse(&spec.to_string()), spec, "{s}");
            assert_eq!(spec.to_string(), s);
        }
    }

    #[test]
    fn mix_assignment_is_proportional_and_interleaved() {
        let spec = parse("mix(30%:rtt=20ms|50%:4g|20%:satellite)");
        let table = spec.class_table();
        assert_eq!(table.len(), 10);
        let count = |c| table.iter().filter(|&&t| t == c).count();
        assert_eq!((count(0), count(1), count(2)), (3, 5, 2));
        assert_eq!(table, vec![1, 0, 2, 1, 0, 1, 1, 2, 0, 1]);
        assert_eq!(spec.class_params(2).rtt, Duration::from_millis(600));
        assert_eq!(parse("lan").class_table(), vec![0]);
    }

    #[test]
    fn bad_inputs_name_the_bad_part() {
        let cases = [
            (
                "rtt=100ms,foo=1",
                "unknown key `foo` in `foo=1` (valid keys: rtt",
            ),
            ("5g", "unknown profile `5g` (valid profiles: lan, cable"),
            (
                "rtt=10 parsecs",
                "malformed duration `10 parsecs` in `rtt=10 parsecs`",
            ),
            ("down=fast", "malformed rate `fast` in `down=fast`"),
            ("down=2mb", "malformed rate `2mb`"),
            ("queue=2m", "malformed size `2m`"),
            ("rtt=11s", "rtt=11s exceeds the 10s limit"),
            ("rtt=100ms,jitter=60ms", "jitter=60ms exceeds rtt/2 (50ms)"),
            ("loss=51%", "loss=51% exceeds 50%"),
            ("down=0mbit", "`down=0mbit`: a rate must be positive"),
            ("down=1mbit,queue=1kb", "queue=1kb is below one MTU"),
            ("rtt=10ms,queue=10kb", "queue=10kb needs down= or up="),
            ("mix(30%:lan|60%:dsl)", "mix weights sum to 90%, not 100%"),
            ("mix(lan|dsl)", "mix class `lan` has no `W%:` weight"),
            (
                "mix(50%:lan,shared=1mbit|50%:dsl)",
                "shared= applies to all clients",
            ),
            ("rtt=1ms,rtt=2ms", "key `rtt` given twice"),
            ("rtt=1ms,4g", "profile `4g` must come first"),
            ("rtt=1ms,shared_queue=10kb", "shared_queue= needs shared="),
            ("shared=10mbit", "empty link class"),
            (
                "mix(100%:lan),rtt=1ms",
                "only shared, shared_queue may follow a mix",
            ),
            ("", "empty item"),
            ("mix(100%:lan", "unbalanced `(`"),
        ];
        for (input, want) in cases {
            let got = err(input);
            assert!(got.contains(want), "{input:?}: got {got:?}, want {want:?}");
        }
    }
}
