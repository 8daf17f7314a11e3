//! Number formatting shared by charts, Markdown and HTML: one spelling for each unit.

pub use feedbench_results::units::{micros, sig3, thousands};

/// Formats a poll interval: `100 ms`, `1 s`, `2.5 s`.
pub fn interval_ms(ms: u64) -> String {
    if ms >= 1_000 {
        format!("{} s", sig3(ms as f64 / 1_000.0))
    } else {
        format!("{ms} ms")
    }
}

/// Formats a byte count with binary units: `512 B`, `1.5 KiB`, `24 MiB`; a negative count
/// (a shrinking figure) keeps its sign: `-2 KiB`.
pub fn bytes(b: f64) -> String {
    const KIB: f64 = 1024.0;
    if b < 0.0 {
        return format!("-{}", bytes(-b));
    }
    if b >= KIB * KIB * KIB {
        format!("{} GiB", sig3(b / (KIB * KIB * KIB)))
    } else if b >= KIB * KIB {
        format!("{} MiB", sig3(b / (KIB * KIB)))
    } else if b >= KIB {
        format!("{} KiB", sig3(b / KIB))
    } else {
        format!("{} B", sig3(b))
    }
}

/// Formats bits per second with decimal units: `800 bit/s`, `1.2 Mbit/s`.
pub fn bits_per_s(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{} Gbit/s", sig3(bps / 1e9))
    } else if bps >= 1e6 {
        format!("{} Mbit/s", sig3(bps / 1e6))
    } else if bps >= 1e3 {
        format!("{} kbit/s", sig3(bps / 1e3))
    } else {
        format!("{} bit/s", sig3(bps))
    }
}

/// Formats an event rate: `10 events/s`, `0.5 events/s`, `1 event/s`.
pub fn rate(hz: f64) -> String {
    if hz == 1.0 {
        "1 event/s".to_string()
    } else {
        format!("{} events/s", sig3(hz))
    }
}

/// Formats a relative change as a signed percentage: `+5.0%`, `-12%`.
pub fn change(rel: f64) -> String {
    if !rel.is_finite() {
        return "n/a".to_string();
    }
    let pct = rel * 100.0;
    let body = if pct.abs() < 10.0 {
        format!("{pct:+.1}%")
    } else {
        format!("{pct:+.0}%")
    };
    // `{:+.1}` prints "+0.0%" for tiny negative values too; keep the sign honest.
    if body == "-0.0%" {
        "+0.0%".to_string()
    } else {
        body
    }
}

/// Formats a share 0..1 as a percentage: `91%`, `4.5%`.
pub fn percent(share: f64) -> String {
    format!("{}%", sig3(share * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_pick_a_readable_scale() {
        assert_eq!(micros(850.0), "850 µs");
        assert_eq!(micros(1_200.0), "1.2 ms");
        assert_eq!(micros(1_500_000.0), "1.5 s");
        assert_eq!(interval_ms(100), "100 ms");
        assert_eq!(interval_ms(1_000), "1 s");
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(-2048.0), "-2 KiB");
        assert_eq!(bytes(-3.0), "-3 B");
        assert_eq!(bits_per_s(1.2e6), "1.2 Mbit/s");
        assert_eq!(rate(10.0), "10 events/s");
        assert_eq!(change(0.05), "+5.0%");
        assert_eq!(change(-0.25), "-25%");
        assert_eq!(percent(0.91), "91%");
    }
}
