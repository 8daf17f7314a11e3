//! Samples a latency histogram's percentile spectrum for the latency-spectrum chart.
//!
//! The histograms come from the results' `hdr` fields, decoded by
//! `feedbench_results::Summary::histogram`; values are µs. The spectrum is sampled at
//! percentiles spaced evenly on the chart's x axis, which is `1 / (1 − q)` on a log scale,
//! so the tail gets as many points as the body.

use hdrhistogram::Histogram;

/// The highest percentile the spectrum reaches: 99.99.
pub const MAX_QUANTILE: f64 = 0.9999;

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
