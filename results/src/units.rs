//! One spelling for each unit, shared by the report and the results' own sentences (such
//! as the clock-uncertainty warning): thousands separators, three significant digits,
//! durations in µs, ms or s.

/// Formats an integer with thousands separators: `1000` → `1,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Formats a number with about three significant digits, trailing zeros dropped.
pub fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "n/a".to_string();
    }
    let a = x.abs();
    let decimals = if a == 0.0 || a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        // Enough decimals for three significant digits below 1, capped for tiny values.
        ((-a.log10()).floor() as usize + 3).min(9)
    };
    if a >= 1_000.0 && x.fract().abs() < 0.5 && a < 1e15 {
        let rounded = x.round();
        let sign = if rounded < 0.0 { "-" } else { "" };
        return format!("{sign}{}", thousands(rounded.abs() as u64));
    }
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Formats a duration in µs with a readable unit: `850 µs`, `1.2 ms`, `1.5 s`.
pub fn micros(us: f64) -> String {
    if us >= 1_000_000.0 {
        format!("{} s", sig3(us / 1_000_000.0))
    } else if us >= 1_000.0 {
        format!("{} ms", sig3(us / 1_000.0))
    } else {
        format!("{} µs", sig3(us))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn sig3_keeps_three_significant_digits() {
        assert_eq!(sig3(0.0), "0");
        assert_eq!(sig3(1.0), "1");
        assert_eq!(sig3(1.234), "1.23");
        assert_eq!(sig3(12.34), "12.3");
        assert_eq!(sig3(123.4), "123");
        assert_eq!(sig3(0.01234), "0.0123");
        assert_eq!(sig3(12_345.0), "12,345");
    }

    #[test]
    fn micros_picks_the_unit() {
        assert_eq!(micros(30.0), "30 µs");
        assert_eq!(micros(850.0), "850 µs");
        assert_eq!(micros(1_200.0), "1.2 ms");
        assert_eq!(micros(2_450.0), "2.45 ms");
        assert_eq!(micros(12_340.0), "12.3 ms");
        assert_eq!(micros(1_500_000.0), "1.5 s");
        assert_eq!(micros(0.5), "0.5 µs");
        assert_eq!(micros(0.01234), "0.0123 µs");
    }
}
