//! Deterministic synthetic results files with real HdrHistograms, for tests and the
//! committed fixtures under `tests/fixtures/`.
//!
//! The numbers follow each transport's mechanics (the byte counts of its framing, one
//! request per poll, short-poll latency uniform over the interval) so charts and findings
//! look like a real run's; repeats differ by seeded noise in the noisy metrics only.

use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::{json, Value};

/// splitmix64: a tiny, seedable generator, so fixtures are identical on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Exponential with the given mean.
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * (1.0 - self.unit()).ln()
    }

    /// 1 ± `amount`, uniform.
    pub fn jitter(&mut self, amount: f64) -> f64 {
        1.0 + amount * (2.0 * self.unit() - 1.0)
    }
}

/// A transport variant in the synthetic matrix.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub transport: &'static str,
    pub poll_interval_ms: Option<u64>,
}

/// The synthetic suite's matrix.
pub struct Matrix {
    pub variants: Vec<Variant>,
    pub clients: Vec<u64>,
    pub rates_hz: Vec<f64>,
    pub payload_bytes: u64,
    pub repeats: u64,
    pub duration_s: f64,
}

impl Matrix {
    /// Five variants × clients 10/100 × rate 1/10 × 3 repeats.
    pub fn standard() -> Matrix {
        Matrix {
            variants: vec![
                Variant {
                    transport: "short-poll",
                    poll_interval_ms: Some(1_000),
                },
                Variant {
                    transport: "short-poll",
                    poll_interval_ms: Some(100),
                },
                Variant {
                    transport: "long-poll",
                    poll_interval_ms: None,
                },
                Variant {
                    transport: "ws",
                    poll_interval_ms: None,
                },
                Variant {
                    transport: "sse",
                    poll_interval_ms: None,
                },
            ],
            clients: vec![10, 100],
            rates_hz: vec![1.0, 10.0],
            payload_bytes: 64,
            repeats: 3,
            duration_s: 10.0,
        }
    }
}

/// Length of the event JSON for a payload (`{"seq":…,"ts":…,"data":"…"}`).
fn event_len(payload_bytes: u64) -> u64 {
    payload_bytes + 44
}

/// A histogram summary object with its serialised `hdr`.
fn latency_object(hist: &Histogram<u64>) -> Value {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(hist, &mut buf)
        .expect("serialising into a Vec cannot fail");
    let q = |q: f64| hist.value_at_quantile(q);
    json!({
        "count": hist.len(),
        "min": hist.min(),
        "mean": (hist.mean() * 10.0).round() / 10.0,
        "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999),
        "max": hist.max(),
        "hdr": base64::engine::general_purpose::STANDARD.encode(buf),
    })
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// One scenario repeat as results JSON.
fn scenario(
    m: &Matrix,
    v: Variant,
    clients: u64,
    rate_hz: f64,
    repeat: u64,
    rng: &mut Rng,
) -> Value {
    let ev = event_len(m.payload_bytes) as f64;
    let published = (rate_hz * m.duration_s).round() as u64;
    let delivered = published * clients;
    // Latency model, µs: push transports a fraction of a ms growing with clients (fan-out),
    // long-poll a round trip more, short-poll uniform over the interval.
    let drift = rng.jitter(0.04);
    let fan_out_us = clients as f64 * 2.0;
    let mut hist = new_hist();
    let sample = |rng: &mut Rng| -> u64 {
        let us = match (v.transport, v.poll_interval_ms) {
            ("short-poll", Some(p)) => 300.0 + rng.unit() * p as f64 * 1_000.0,
            ("long-poll", _) => 600.0 + fan_out_us + rng.exp(350.0),
            ("ws", _) => 180.0 + fan_out_us + rng.exp(120.0),
            _ => 220.0 + fan_out_us + rng.exp(140.0),
        };
        (us * drift).round().max(1.0) as u64
    };
    // Cap the recorded samples: the shape is what matters and fixtures stay small.
    let n_samples = delivered.min(4_000);
    for _ in 0..n_samples {
        let value = sample(rng);
        hist.record(value).expect("value within bounds");
    }
    // Per-poll HTTP overhead: request 92 B up; response head 118 B + body wrapper 24 B.
    let (requests, empty, up, down, setup_up, setup_down): (u64, u64, f64, f64, u64, u64) =
        match (v.transport, v.poll_interval_ms) {
            ("short-poll", Some(p)) => {
                let polls = (m.duration_s * 1_000.0 / p as f64).round() as u64 * clients;
                let per_poll = rate_hz * p as f64 / 1_000.0;
                let empty = (polls as f64 * (-per_poll).exp()).round() as u64;
                let down = polls as f64 * 142.0 + delivered as f64 * (ev + 1.0);
                (
                    polls,
                    empty,
                    polls as f64 * 92.0,
                    down,
                    92 * clients,
                    150 * clients,
                )
            }
            ("long-poll", _) => {
                let polls = delivered;
                (
                    polls,
                    0,
                    polls as f64 * 95.0,
                    polls as f64 * 142.0 + delivered as f64 * ev,
                    95 * clients,
                    150 * clients,
                )
            }
            ("ws", _) => (
                0,
                0,
                0.0,
                delivered as f64 * (ev + 2.0),
                180 * clients,
                129 * clients,
            ),
            _ => (
                0,
                0,
                0.0,
                delivered as f64 * (ev + 18.0),
                84 * clients,
                132 * clients,
            ),
        };
    let (up, down) = (up.round() as u64, down.round() as u64);
    let per = |b: f64| (b / delivered as f64 * 1_000.0).round() / 1_000.0;
    let payload = delivered * event_len(m.payload_bytes);
    let cpu_per_delivery_us = match v.transport {
        "short-poll" => 2.0,
        "long-poll" => 9.0,
        "ws" => 3.0,
        _ => 3.5,
    };
    let cpu_per_request_us = 18.0;
    let cpu_s = (delivered as f64 * cpu_per_delivery_us + requests as f64 * cpu_per_request_us)
        / 1e6
        * rng.jitter(0.08);
    let per_conn_kib = match v.transport {
        "short-poll" => 12.0,
        "long-poll" => 20.0,
        "ws" => 40.0,
        _ => 30.0,
    };
    // One jitter for the whole process: the 8 MiB base and what the connections add.
    let jitter = rng.jitter(0.03);
    let rss = ((8.0 * 1024.0 + per_conn_kib * clients as f64) * 1024.0 * jitter) as u64;
    let rss_start = rss - rss / 20;
    // Before the clients connect the server holds its base only, scaled like the start.
    let base = (8.0 * 1024.0 * 1024.0 * jitter) as u64;
    let rss_before_connect = base - base / 20;
    let rss_per_connection = (rss_start as f64 - rss_before_connect as f64) / clients as f64;
    let mut connect = new_hist();
    for _ in 0..clients {
        connect
            .record(120 + (rng.exp(60.0) as u64))
            .expect("value within bounds");
    }
    let request_latency = if v.transport.ends_with("poll") {
        let mut h = new_hist();
        for _ in 0..requests.min(2_000) {
            h.record(150 + rng.exp(90.0) as u64)
                .expect("value within bounds");
        }
        latency_object(&h)
    } else {
        Value::Null
    };
    let name = match v.poll_interval_ms {
        Some(p) => format!(
            "{}-c{clients}-r{rate_hz}-s{}-i{p}",
            v.transport, m.payload_bytes
        ),
        None => format!("{}-c{clients}-r{rate_hz}-s{}", v.transport, m.payload_bytes),
    };
    let mut warnings = Vec::<String>::new();
    let mut cpu_util = 0.05 + clients as f64 * rate_hz / 10_000.0;
    if v.poll_interval_ms == Some(100) && clients == 100 && rate_hz == 10.0 && repeat == 1 {
        cpu_util = 0.88;
        warnings.push(
            "load generator used 88% of its cores: figures are load-generator bound and understate the server"
                .to_string(),
        );
    }
    json!({
        "name": name,
        "transport": v.transport,
        "repeat": repeat,
        "status": "complete",
        "started_at": "2025-01-01T00:00:00Z",
        "params": {
            "clients": clients, "rate_hz": rate_hz, "payload_bytes": m.payload_bytes,
            "poll_interval_ms": v.poll_interval_ms, "duration_s": m.duration_s, "warmup_s": 2.0,
            "keepalive": true, "ramp_s": 1.0, "seed": 42
        },
        "latency_us": latency_object(&hist),
        "request_latency_us": request_latency,
        "events": {
            "published": published, "expected": delivered, "delivered": delivered,
            "missed": 0, "duplicates": 0, "out_of_order": 0
        },
        "bytes": {
            "up": up, "down": down, "setup_up": setup_up, "setup_down": setup_down,
            "payload": payload,
            "per_event": per((up + down) as f64),
            "per_event_up": per(up as f64),
            "per_event_down": per(down as f64),
            "overhead_ratio": ((up + down) as f64 - payload as f64) / payload as f64
        },
        "requests": {
            "sent": requests, "empty": empty,
            "per_event": per(requests as f64),
            "missed_ticks": 0
        },
        "connections": {
            "target": clients, "opened": clients, "peak_open": clients, "failed": 0,
            "connect_us": latency_object(&connect)
        },
        "server": {
            "cpu_s": (cpu_s * 1e6).round() / 1e6,
            "rss_start_bytes": rss_start, "rss_end_bytes": rss - rss / 40, "rss_peak_bytes": rss,
            "rss_before_connect_bytes": rss_before_connect,
            "rss_per_connection_bytes": rss_per_connection,
            "bytes_in": up, "bytes_out": down,
            "samples": [{"t_s": 0.0, "cpu_s": 0.0, "rss_bytes": rss_start, "open_connections": clients}]
        },
        "loadgen": { "cpu_s": cpu_util * 2.0 * m.duration_s, "cpu_util": cpu_util, "cores": 1 },
        "errors": {},
        "warnings": warnings,
        "some_future_field": {"ignored": true}
    })
}

/// A whole results file for the matrix, repeats interleaved as the suite runner does.
pub fn results(m: &Matrix, seed: u64) -> Value {
    let mut rng = Rng::new(seed);
    let mut scenarios = Vec::new();
    for repeat in 0..m.repeats {
        for &clients in &m.clients {
            for &rate in &m.rates_hz {
                for &v in &m.variants {
                    scenarios.push(scenario(m, v, clients, rate, repeat, &mut rng));
                }
            }
        }
    }
    json!({
        "schema_version": 1,
        "status": "complete",
        "status_message": null,
        "tool": {"name": "feedbench", "version": "0.1.0", "git_sha": "0000000000000000000000000000000000000000"},
        "host": {"os": "linux", "kernel": "6.1.0", "cpu_model": "synthetic fixture", "cores": 2, "memory_bytes": 25_769_803_776u64},
        "suite": "fixture",
        "started_at": "2025-01-01T00:00:00Z",
        "finished_at": "2025-01-01T00:05:00Z",
        "target": "http://127.0.0.1:40000",
        "embedded_server": true,
        "cpu_sets": {"server": "0", "loadgen": "1"},
        "scenarios": scenarios,
    })
}

/// The committed baseline fixture.
pub fn baseline() -> Value {
    results(&Matrix::standard(), 1)
}

/// The committed candidate fixture: same matrix, new noise, and sse a little slower.
pub fn candidate() -> Value {
    let mut v = results(&Matrix::standard(), 2);
    for s in scenarios_mut(&mut v) {
        if s["transport"] == "sse" {
            scale_latency(s, 1.06);
        }
    }
    v
}

/// The scenarios array of a results document.
pub fn scenarios_mut(results: &mut Value) -> impl Iterator<Item = &mut Value> {
    results["scenarios"]
        .as_array_mut()
        .expect("results have a scenarios array")
        .iter_mut()
}

/// Multiplies a scenario's latency summary (not its histogram) by `factor`, rounding the
/// percentiles to whole µs as a histogram records them.
pub fn scale_latency(scenario: &mut Value, factor: f64) {
    let mean = scenario["latency_us"]["mean"]
        .as_f64()
        .expect("numeric mean");
    scenario["latency_us"]["mean"] = json!(mean * factor);
    for k in ["min", "p50", "p90", "p99", "p999", "max"] {
        let x = scenario["latency_us"][k]
            .as_u64()
            .expect("whole µs latency field");
        scenario["latency_us"][k] = json!((x as f64 * factor).round() as u64);
    }
}

/// Multiplies a scenario's bytes received, and the per-event figures that follow, by `factor`.
pub fn scale_bytes_down(scenario: &mut Value, factor: f64) {
    let b = &mut scenario["bytes"];
    let down = (b["down"].as_f64().expect("numeric") * factor).round() as u64;
    let up = b["up"].as_u64().expect("numeric");
    let delivered = scenario["events"]["delivered"].as_f64().expect("numeric");
    let b = &mut scenario["bytes"];
    b["down"] = json!(down);
    b["per_event_down"] = json!(down as f64 / delivered);
    b["per_event"] = json!((down + up) as f64 / delivered);
}

/// Makes a fixture a schema-2 file: the scenario fields schema 2 requires beyond schema 1,
/// with what a load generator writes when nothing special happened.
pub fn to_schema_2(results: &mut Value) {
    results["schema_version"] = json!(2);
    for s in scenarios_mut(results) {
        s["status_message"] = Value::Null;
        s["measured_s"] = s["params"]["duration_s"].clone();
        s["notes"] = json!([]);
        s["events"]["window_source"] = json!("feed");
        s["events"]["unreceived"] = json!(0);
        s["server"]["requests_by_path"] = Value::Null;
    }
}

/// A scenario's clock estimate (`GET /time`) as the load generator records it: exact within
/// ± `uncertainty_ns`, half the best round trip, and applied.
pub fn clock(uncertainty_ns: u64) -> Value {
    json!({
        "offset_ns": 3_250_000,
        "uncertainty_ns": uncertainty_ns,
        "min_rtt_ns": 2 * uncertainty_ns,
        "samples": 16,
        "applied": true,
    })
}
