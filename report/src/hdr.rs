//! Decodes the results' `hdr` fields and samples a histogram's percentile spectrum.
//!
//! The load generator serialises each latency histogram as HdrHistogram V2 with deflate,
//! standard base64 with padding; values are µs. The spectrum is sampled at percentiles
//! spaced evenly on the chart's x axis, which is `1 / (1 − q)` on a log scale, so the tail
//! gets as many points as the body.

use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

/// The highest percentile the spectrum reaches: 99.99.
pub const MAX_QUANTILE: f64 = 0.9999;

/// Decodes an `hdr` field into a histogram of µs values.
pub fn decode(hdr: &str) -> Result<Histogram<u64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(hdr.trim())
        .map_err(|e| format!("bad base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("bad HdrHistogram V2 data: {e:?}"))
}

/// The chart's x coordinate for quantile `q`: `1 / (1 − q)`, so 90% → 10, 99.99% → 10,000.
pub fn x_of_quantile(q: f64) -> f64 {
    1.0 / (1.0 - q.min(MAX_QUANTILE))
}

/// The quantile at chart x coordinate `x`.
pub fn quantile_of_x(x: f64) -> f64 {
    1.0 - 1.0 / x.max(1.0)
}

/// Labels an x coordinate as a percentile: `0%`, `90%`, `99.9%`.
pub fn percentile_label(x: f64) -> String {
    let pct = quantile_of_x(x) * 100.0;
    // Show as many decimals as the tail needs and no more: 99.99 needs two.
    for decimals in 0..=4 {
        let s = format!("{pct:.decimals$}");
        if (s.parse::<f64>().unwrap_or(pct) - pct).abs() < 1e-6 * pct.max(1.0) {
            return format!("{s}%");
        }
    }
    format!("{pct:.4}%")
}

/// Samples a histogram's spectrum at `points_per_decade` quantiles per decade of
/// `1 / (1 − q)` from 0% to [`MAX_QUANTILE`]: `(x, latency µs)` pairs.
pub fn spectrum(hist: &Histogram<u64>, points_per_decade: usize) -> Vec<(f64, f64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    let max_x = x_of_quantile(MAX_QUANTILE);
    let steps = (max_x.log10() * points_per_decade as f64).round() as usize;
    (0..=steps)
        .map(|i| {
            let x = 10f64.powf(i as f64 / points_per_decade as f64).min(max_x);
            let q = quantile_of_x(x);
            (x, hist.value_at_quantile(q) as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};

    fn encode(hist: &Histogram<u64>) -> String {
        let mut buf = Vec::new();
        V2DeflateSerializer::new()
            .serialize(hist, &mut buf)
            .expect("serialising to a Vec cannot fail");
        base64::engine::general_purpose::STANDARD.encode(buf)
    }

    #[test]
    fn decodes_what_the_load_generator_encodes() {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=10_000u64 {
            hist.record(v).unwrap();
        }
        let back = decode(&encode(&hist)).unwrap();
        assert_eq!(back.len(), 10_000);
        assert_eq!(back.value_at_quantile(0.5), hist.value_at_quantile(0.5));
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode("not base64!").is_err());
        assert!(decode("AAAA").is_err());
    }

    #[test]
    fn spectrum_spans_zero_to_four_nines() {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
        for v in 1..=100_000u64 {
            hist.record(v).unwrap();
        }
        let points = spectrum(&hist, 10);
        assert_eq!(points.first().unwrap().0, 1.0);
        assert!((points.last().unwrap().0 - 10_000.0).abs() < 1e-6);
        assert!(points.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(points.len(), 41);
    }

    #[test]
    fn percentile_labels_read_naturally() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1_000.0), "99.9%");
        assert_eq!(percentile_label(10_000.0), "99.99%");
    }
}
