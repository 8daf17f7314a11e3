//! A latency histogram's summary, with the histogram itself embedded.
//!
//! Values are whole µs, as the HdrHistogram records them; `hdr` carries the histogram so a
//! report can draw its whole spectrum and merge repeats exactly.

use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A histogram summary in µs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Largest sample.
    pub max: u64,
    /// HdrHistogram V2 + deflate, standard base64 with padding.
    pub hdr: String,
}

/// Why a summary's `hdr` does not decode.
#[derive(Debug, thiserror::Error)]
pub enum HdrError {
    /// `hdr` is not standard base64.
    #[error("hdr is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not an HdrHistogram V2 (+ deflate) serialization.
    #[error("hdr is not an HdrHistogram: {0:?}")]
    Histogram(hdrhistogram::serialization::DeserializeError),
}

impl Summary {
    /// Summarizes `h`.
    pub fn of(h: &Histogram<u64>) -> Self {
        let mut raw = Vec::new();
        // Serializing into a Vec only fails on counts the V2 format cannot hold (more
        // than i64::MAX samples); an empty `hdr` would then be the honest result.
        let _ = V2DeflateSerializer::new().serialize(h, &mut raw);
        let hdr = base64::engine::general_purpose::STANDARD.encode(&raw);
        if h.is_empty() {
            return Self {
                count: 0,
                min: 0,
                mean: 0.0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
                hdr,
            };
        }
        Self {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            hdr,
        }
    }

    /// Decodes `hdr` back into a histogram.
    pub fn histogram(&self) -> Result<Histogram<u64>, HdrError> {
        decode_hdr(&self.hdr)
    }
}

/// Decodes an `hdr` string (HdrHistogram V2 + deflate, standard base64) into a histogram;
/// surrounding whitespace is ignored.
pub fn decode_hdr(hdr: &str) -> Result<Histogram<u64>, HdrError> {
    let raw = base64::engine::general_purpose::STANDARD.decode(hdr.trim())?;
    Deserializer::new()
        .deserialize(&mut raw.as_slice())
        .map_err(HdrError::Histogram)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram() -> Histogram<u64> {
        Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()
    }

    #[test]
    fn summary_round_trips_the_histogram() {
        let mut h = histogram();
        for v in [1u64, 10, 100, 1000, 10_000, 100_000] {
            h.record_n(v, 3).unwrap();
        }
        let s = Summary::of(&h);
        assert_eq!((s.count, s.min, s.max), (18, 1, h.max()));
        assert_eq!(s.p50, h.value_at_quantile(0.5));
        assert_eq!(s.hdr.len() % 4, 0, "padded base64");
        assert_eq!(s.histogram().unwrap(), h);
        let empty = Summary::of(&histogram());
        assert_eq!((empty.count, empty.max), (0, 0));
        assert!(empty.histogram().unwrap().is_empty());
    }

    #[test]
    fn a_broken_hdr_is_an_error() {
        assert!(matches!(
            decode_hdr("not base64!"),
            Err(HdrError::Base64(_))
        ));
        assert!(matches!(decode_hdr("AAAA"), Err(HdrError::Histogram(_))));
    }
}
