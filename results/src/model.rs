//! The analytic model of each transport over an emulated link (`MODEL.md` derives it), and
//! the check of a measured scenario against it.
//!
//! [`predict`] is a pure function of a [`ModelInput`] (transport, feed, short-poll interval,
//! link, base latency): delivery latency (mean, p50, a p99 bound), requests per event, and
//! socket and IP bytes and packets per event in each direction. The framing functions
//! ([`event_json_bytes`], [`ws_frame_bytes`], [`sse_chunk_bytes`], [`poll_body_bytes`],
//! [`poll_response_head_bytes`], [`poll_request_bytes`], [`longpoll_request_bytes`]) spell
//! PROTOCOL.md's exact byte counts as functions of payload and seq digits.
//!
//! [`deviation`] compares a scenario's measured latency with the model for its parameters
//! and single-class link, [`ip_bytes_deviation`] its IP bytes per event; a check outside its
//! tolerance means the emulator, the server or the model is wrong, and its sentence is a
//! warning the load generator can put into the scenario's `warnings`.
//!
//! Invariant: everything here is arithmetic on figures already in a file or given by the
//! caller; no clock, no I/O. Loss is not modelled beyond saying that p99 is then unbounded.

use crate::scenario::ScenarioResult;
use crate::transport::Transport;
use crate::units::{micros, sig3};

/// IPv4 (20) + TCP (20) + TCP timestamps option (12) bytes on every segment.
pub const IP_TCP_HEADER_BYTES: u64 = 52;

/// TCP payload per segment on a 1500-byte MTU with timestamps.
pub const MSS_BYTES: u64 = 1448;

/// Linux's minimum delayed-ACK timeout, ms: a lone segment is acknowledged this late.
pub const DELAYED_ACK_MS: f64 = 40.0;

/// Digits of an event's `ts` (Unix ns, 2001 to 2286).
pub const TS_DIGITS: u64 = 19;

/// Length of `host:port` in the load generator's `Host` header when the caller does not
/// know it: `127.0.0.1:8080`.
pub const DEFAULT_HOST_LEN: u64 = 14;

/// Digits of the seqs on the wire when the caller does not know them.
pub const DEFAULT_SEQ_DIGITS: u64 = 6;

/// Tolerance of push transports' p50 and short-poll's mean, as a share of the model.
pub const TOLERANCE_TIGHT: f64 = 0.05;

/// Tolerance of long-poll's p50, as a share of the model (its knee is sensitive to
/// processing time and jitter).
pub const TOLERANCE_LONG_POLL: f64 = 0.10;

/// Tolerance of IP bytes per event, as a share of the model (the ACK model is coarse).
pub const TOLERANCE_IP_BYTES: f64 = 0.10;

/// Absolute slack added to every latency tolerance, ms, so that tiny RTTs (where the
/// unmodelled loopback base latency dominates) do not raise false alarms.
pub const LATENCY_FLOOR_MS: f64 = 2.0;

/// What the model needs to know about one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    /// The transport.
    pub transport: Transport,
    /// Feed rate, events per second (interval T = 1 / rate); must be positive.
    pub rate_hz: f64,
    /// Event `data` length.
    pub payload_bytes: u64,
    /// Short-poll interval P, ms; ignored for the other transports.
    pub poll_interval_ms: Option<f64>,
    /// Clients sharing the server-side bottleneck (only used with `shared_bps`).
    pub clients: u64,
    /// Round trip the link adds, ms (one-way delay d = rtt / 2).
    pub rtt_ms: f64,
    /// Jitter J, ms: each packet's delay varies uniformly within ± J.
    pub jitter_ms: f64,
    /// Access bandwidth towards the client, bit/s (serialisation); `None` unlimited.
    pub down_bps: Option<u64>,
    /// Access bandwidth from the client, bit/s; `None` unlimited.
    pub up_bps: Option<u64>,
    /// Bottleneck shared by all clients on the server's side, bit/s; `None` none.
    pub shared_bps: Option<u64>,
    /// Random loss per packet, 0..=1.
    pub loss: f64,
    /// L0: the loopback delivery latency of the server and client themselves, ms (measured
    /// on loopback, or 0).
    pub base_latency_ms: f64,
    /// Digits of the seqs on the wire.
    pub seq_digits: u64,
    /// Length of the `Host` header's value in the load generator's requests.
    pub host_len: u64,
}

impl ModelInput {
    /// An input for a feed on a perfect link (no delay, jitter, bandwidth limit or loss),
    /// with the default seq digits and host length; set the rest by field.
    pub fn new(transport: Transport, rate_hz: f64, payload_bytes: u64) -> ModelInput {
        ModelInput {
            transport,
            rate_hz,
            payload_bytes,
            poll_interval_ms: None,
            clients: 1,
            rtt_ms: 0.0,
            jitter_ms: 0.0,
            down_bps: None,
            up_bps: None,
            shared_bps: None,
            loss: 0.0,
            base_latency_ms: 0.0,
            seq_digits: DEFAULT_SEQ_DIGITS,
            host_len: DEFAULT_HOST_LEN,
        }
    }

    /// The input for a scenario: its parameters and its link's only class, with the seq
    /// digits of its window; `None` without a link block, for a mixed link, for polling
    /// without keep-alive (a connection per poll is not modelled), for a paused feed, or
    /// for short-poll without an interval.
    pub fn of(result: &ScenarioResult, base_latency_ms: f64) -> Option<ModelInput> {
        let net = result.net.as_ref()?;
        let class = net.single_class()?;
        let p = &result.params;
        if p.rate_hz <= 0.0 || (result.transport.is_polling() && !p.keepalive) {
            return None;
        }
        if result.transport == Transport::ShortPoll && p.poll_interval_ms.is_none() {
            return None;
        }
        let seq_digits = result
            .events
            .last_seq
            .or(result.events.first_seq)
            .map_or(DEFAULT_SEQ_DIGITS, digits);
        Some(ModelInput {
            transport: result.transport,
            rate_hz: p.rate_hz,
            payload_bytes: p.payload_bytes,
            poll_interval_ms: p.poll_interval_ms.map(|ms| ms as f64),
            clients: p.clients,
            rtt_ms: class.rtt_ms,
            jitter_ms: class.jitter_ms,
            down_bps: class.down_bps,
            up_bps: class.up_bps,
            shared_bps: net.shared_bps,
            loss: class.loss,
            base_latency_ms,
            seq_digits,
            host_len: DEFAULT_HOST_LEN,
        })
    }
}

/// What the model predicts for one scenario; latencies in ms, the rest per delivered event.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Mean delivery latency (without loss's stalls).
    pub mean_ms: f64,
    /// Median delivery latency.
    pub p50_ms: f64,
    /// An upper bound of the 99th percentile; `None` under loss, where one lost segment
    /// stalls the stream for at least a retransmission timeout (≥ 200 ms).
    pub p99_bound_ms: Option<f64>,
    /// Requests per event (0 for push transports).
    pub requests_per_event: f64,
    /// Socket bytes client → server.
    pub socket_bytes_up: f64,
    /// Socket bytes server → client.
    pub socket_bytes_down: f64,
    /// IP packets client → server (data segments and pure ACKs).
    pub ip_packets_up: f64,
    /// IP packets server → client.
    pub ip_packets_down: f64,
    /// IP bytes client → server: socket bytes plus 52 bytes per packet.
    pub ip_bytes_up: f64,
    /// IP bytes server → client.
    pub ip_bytes_down: f64,
}

/// Decimal digits of `n`.
pub fn digits(n: u64) -> u64 {
    n.checked_ilog10().map_or(1, |d| u64::from(d) + 1)
}

/// Hexadecimal digits of `n` (an HTTP chunk-size line).
fn hex_digits(n: u64) -> u64 {
    n.checked_ilog(16).map_or(1, |d| u64::from(d) + 1)
}

/// `{"seq":N,"ts":T,"data":"..."}`: 43 bytes of keys and punctuation with a 19-digit `ts`,
/// plus the seq's digits and the payload (PROTOCOL.md 1.1; 52 bytes for seq 2, payload 8).
pub fn event_json_bytes(payload_bytes: u64, seq_digits: u64) -> u64 {
    24 + TS_DIGITS + seq_digits + payload_bytes
}

/// A server's unmasked WebSocket text frame: 2 header bytes below 126 bytes of payload, 4
/// below 65,536, else 10.
pub fn ws_frame_bytes(json_bytes: u64) -> u64 {
    let header = match json_bytes {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    json_bytes + header
}

/// One SSE event as an HTTP chunk: `hex(L)\r\n` + `id: SEQ\ndata: JSON\n\n` (L bytes) +
/// `\r\n`.
pub fn sse_chunk_bytes(json_bytes: u64, seq_digits: u64) -> u64 {
    let data = 13 + seq_digits + json_bytes;
    hex_digits(data) + 2 + data + 2
}

/// `{"events":[...],"next":N,"missed":0}` holding `events` events (may be fractional: an
/// average batch) of `json_bytes` each, separated by commas.
pub fn poll_body_bytes(events: f64, json_bytes: u64, seq_digits: u64) -> f64 {
    let commas = (events - 1.0).max(0.0);
    32.0 + seq_digits as f64 + events * json_bytes as f64 + commas
}

/// The head of a `/poll` or `/longpoll` answer: status line, `content-type`,
/// `cache-control`, `content-length`, a 29-character `date`, blank line: 131 bytes plus
/// the content length's digits.
pub fn poll_response_head_bytes(body_bytes: u64) -> u64 {
    131 + digits(body_bytes)
}

/// The load generator's short-poll request: `GET /poll?after=SEQ HTTP/1.1`, `Host`, blank.
pub fn poll_request_bytes(seq_digits: u64, host_len: u64) -> u64 {
    37 + seq_digits + host_len
}

/// The load generator's long-poll request:
/// `GET /longpoll?after=SEQ&timeout_ms=30000 HTTP/1.1`, `Host`, blank.
pub fn longpoll_request_bytes(seq_digits: u64, host_len: u64) -> u64 {
    58 + seq_digits + host_len
}

/// A whole poll answer (head and body) carrying `events` events on average.
fn poll_response_bytes(events: f64, json_bytes: u64, seq_digits: u64) -> f64 {
    let body = poll_body_bytes(events, json_bytes, seq_digits);
    poll_response_head_bytes(body.round() as u64) as f64 + body
}

/// TCP segments of one write of `bytes`.
fn segments(bytes: f64) -> f64 {
    (bytes / MSS_BYTES as f64).ceil().max(1.0)
}

/// Time to put `bytes` of IP on a link of `bps`, ms (0 when unlimited).
fn serialisation_ms(bytes: f64, bps: Option<u64>) -> f64 {
    bps.filter(|b| *b > 0)
        .map_or(0.0, |b| bytes * 8.0 / b as f64 * 1_000.0)
}

/// One direction's traffic per event: socket bytes, data segments, pure ACKs.
#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    socket: f64,
    segments: f64,
    acks: f64,
}

impl Flow {
    fn packets(self) -> f64 {
        self.segments + self.acks
    }

    fn ip_bytes(self) -> f64 {
        self.socket + self.packets() * IP_TCP_HEADER_BYTES as f64
    }
}

/// Latency terms shared by every transport, ms.
struct Terms {
    /// L0 + d: the floor of any delivery.
    floor: f64,
    /// Serialisation of what carries the event down the access link, plus the mean wait
    /// behind the other clients' copies on a shared bottleneck.
    ser_mean: f64,
    /// The same with the last client's wait on the shared bottleneck.
    ser_max: f64,
}

fn terms(input: &ModelInput, down_ip_bytes_per_write: f64) -> Terms {
    let access = serialisation_ms(down_ip_bytes_per_write, input.down_bps);
    let shared_one = serialisation_ms(down_ip_bytes_per_write, input.shared_bps);
    let n = input.clients.max(1) as f64;
    Terms {
        floor: input.base_latency_ms + input.rtt_ms / 2.0,
        ser_mean: access + shared_one * (n + 1.0) / 2.0,
        ser_max: access + shared_one * n,
    }
}

/// Predicts latency, requests and bytes per event for one scenario; see `MODEL.md` for the
/// derivations and where each breaks down.
pub fn predict(input: &ModelInput) -> Prediction {
    let interval_ms = 1_000.0 / input.rate_hz;
    let json = event_json_bytes(input.payload_bytes, input.seq_digits);
    let jitter = input.jitter_ms;
    let (mut p, down, up) = match input.transport {
        Transport::Ws | Transport::Sse => {
            let write = if input.transport == Transport::Ws {
                ws_frame_bytes(json)
            } else {
                sse_chunk_bytes(json, input.seq_digits)
            } as f64;
            let down = Flow {
                socket: write,
                segments: segments(write),
                acks: 0.0,
            };
            let up = Flow {
                socket: 0.0,
                segments: 0.0,
                acks: acks_for(down.segments, interval_ms),
            };
            let t = terms(input, down.ip_bytes());
            let mean = t.floor + t.ser_mean;
            let p = Prediction {
                mean_ms: mean,
                p50_ms: mean,
                p99_bound_ms: Some(t.floor + jitter + t.ser_max),
                ..Prediction::default()
            };
            (p, down, up)
        }
        Transport::ShortPoll => short_poll(input, interval_ms, json),
        Transport::LongPoll => long_poll(input, interval_ms, json),
    };
    if input.loss > 0.0 {
        p.p99_bound_ms = None;
    }
    p.socket_bytes_up = up.socket;
    p.socket_bytes_down = down.socket;
    p.ip_packets_up = up.packets();
    p.ip_packets_down = down.packets();
    p.ip_bytes_up = up.ip_bytes();
    p.ip_bytes_down = down.ip_bytes();
    p
}

impl Default for Prediction {
    fn default() -> Self {
        Prediction {
            mean_ms: 0.0,
            p50_ms: 0.0,
            p99_bound_ms: None,
            requests_per_event: 0.0,
            socket_bytes_up: 0.0,
            socket_bytes_down: 0.0,
            ip_packets_up: 0.0,
            ip_packets_down: 0.0,
            ip_bytes_up: 0.0,
            ip_bytes_down: 0.0,
        }
    }
}

/// Pure ACKs a write of `segments` draws when nothing goes the other way soon: every second
/// segment is acknowledged at once, and an odd last one after the delayed-ACK timeout when
/// the next write is further away than that; when writes come faster, the next write's
/// segments complete the pair.
fn acks_for(segments: f64, gap_ms: f64) -> f64 {
    if gap_ms >= DELAYED_ACK_MS {
        (segments / 2.0).ceil()
    } else {
        segments / 2.0
    }
}

/// Short-poll: events wait for the next poll to reach the server, uniform over the
/// effective interval.
fn short_poll(input: &ModelInput, interval_ms: f64, json: u64) -> (Prediction, Flow, Flow) {
    let poll_ms = input
        .poll_interval_ms
        .unwrap_or(interval_ms)
        .max(f64::MIN_POSITIVE);
    let request = poll_request_bytes(input.seq_digits, input.host_len) as f64;
    // A tick that comes before the previous answer is skipped, so the client polls every
    // whole number of intervals that covers the round trip.
    let cycle_ms = input.rtt_ms
        + input.base_latency_ms
        + serialisation_ms(request + IP_TCP_HEADER_BYTES as f64, input.up_bps);
    let effective_ms = poll_ms * (cycle_ms / poll_ms).ceil().max(1.0);
    // Events per poll, on average: below 1, some polls come back empty.
    let k = effective_ms / interval_ms;
    // The client acknowledges each answer on its own (the next request comes an interval
    // later): every second segment at once, the last after the delayed-ACK timeout.
    let per_answer = |bytes: f64| (segments(bytes), acks_for(segments(bytes), effective_ms));
    let polls_per_event = 1.0 / k;
    let (down_socket, down_segments, up_acks, answer_ip) = if k <= 1.0 {
        let empty = poll_response_bytes(0.0, json, input.seq_digits);
        let full = poll_response_bytes(1.0, json, input.seq_digits);
        let ((empty_segments, empty_acks), (full_segments, full_acks)) =
            (per_answer(empty), per_answer(full));
        let empties = polls_per_event - 1.0;
        (
            empties * empty + full,
            empties * empty_segments + full_segments,
            empties * empty_acks + full_acks,
            full + full_segments * IP_TCP_HEADER_BYTES as f64,
        )
    } else {
        let answer = poll_response_bytes(k, json, input.seq_digits);
        let (answer_segments, answer_acks) = per_answer(answer);
        (
            answer / k,
            answer_segments / k,
            answer_acks / k,
            answer + answer_segments * IP_TCP_HEADER_BYTES as f64,
        )
    };
    let down = Flow {
        socket: down_socket,
        segments: down_segments,
        // The server answers at once, so its answer carries the ACK of the request.
        acks: 0.0,
    };
    let up = Flow {
        socket: request * polls_per_event,
        segments: segments(request) * polls_per_event,
        acks: up_acks,
    };
    let t = terms(input, answer_ip);
    let mean = effective_ms / 2.0 + t.floor + t.ser_mean;
    let p = Prediction {
        mean_ms: mean,
        p50_ms: mean,
        // The request's jitter moves the poll's arrival, the answer's its delivery.
        p99_bound_ms: Some(0.99 * effective_ms + t.floor + 2.0 * input.jitter_ms + t.ser_max),
        requests_per_event: polls_per_event,
        ..Prediction::default()
    };
    (p, down, up)
}

/// Long-poll: an event finds a parked request when the request cycle is shorter than the
/// event interval; otherwise requests arrive once per cycle and events wait for them.
fn long_poll(input: &ModelInput, interval_ms: f64, json: u64) -> (Prediction, Flow, Flow) {
    let request = longpoll_request_bytes(input.seq_digits, input.host_len) as f64;
    let one = poll_response_bytes(1.0, json, input.seq_digits);
    let request_ser = serialisation_ms(request + IP_TCP_HEADER_BYTES as f64, input.up_bps);
    let answer_ser = serialisation_ms(one + IP_TCP_HEADER_BYTES as f64, input.down_bps);
    // Answer out, next request back: the round trip, processing, and both serialisations.
    let cycle_ms = input.rtt_ms + input.base_latency_ms + request_ser + answer_ser;
    let parked = interval_ms >= cycle_ms;
    // Events per answer, on average.
    let k = if parked { 1.0 } else { cycle_ms / interval_ms };
    let answer = poll_response_bytes(k, json, input.seq_digits);
    let answer_segments = segments(answer);
    let down = Flow {
        socket: answer / k,
        segments: answer_segments / k,
        // A request parked longer than the delayed-ACK timeout is acknowledged on its own.
        acks: if parked && interval_ms - cycle_ms >= DELAYED_ACK_MS {
            1.0
        } else {
            0.0
        },
    };
    // The next request carries the ACK of the answer; only the pairs before its last
    // segment are acknowledged apart.
    let up = Flow {
        socket: request / k,
        segments: segments(request) / k,
        acks: ((answer_segments - 1.0) / 2.0).floor() / k,
    };
    let t = terms(input, answer + answer_segments * IP_TCP_HEADER_BYTES as f64);
    let (wait_mean, wait_p99) = if parked {
        (0.0, 0.0)
    } else {
        // Requests arrive every cycle; the feed's phase against them is uniform.
        (cycle_ms / 2.0, 0.99 * cycle_ms + 2.0 * input.jitter_ms)
    };
    let mean = wait_mean + t.floor + t.ser_mean;
    let p = Prediction {
        mean_ms: mean,
        p50_ms: mean,
        p99_bound_ms: Some(wait_p99 + t.floor + input.jitter_ms + t.ser_max),
        requests_per_event: 1.0 / k,
        ..Prediction::default()
    };
    (p, down, up)
}

/// A measured figure against the model's.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCheck {
    /// What was compared: `p50 latency`, `mean latency`, `IP bytes/event`.
    pub metric: &'static str,
    /// The model's value (ms for latency, bytes for bytes).
    pub model: f64,
    /// The measured value, same unit.
    pub measured: f64,
    /// `measured / model − 1`: +0.2 is 20% above the model.
    pub deviation_ratio: f64,
    /// Whether the measurement is within the metric's tolerance.
    pub within: bool,
    /// One sentence for a reader; when not `within`, a warning (lowercase, no final period).
    pub sentence: String,
}

/// The measured latency (p50 for push and long-poll, mean for short-poll) against the
/// model, taking the base latency L0 as 0 (see [`deviation_with`]).
pub fn deviation(result: &ScenarioResult) -> Option<ModelCheck> {
    deviation_with(result, 0.0)
}

/// The measured latency against the model with a base latency L0 of `base_latency_ms`
/// (e.g. the same transport's loopback p50). `None` when the scenario has no single-class
/// link block or nothing was delivered (see [`ModelInput::of`]).
///
/// Tolerances: ws, sse and short-poll within [`TOLERANCE_TIGHT`], long-poll within
/// [`TOLERANCE_LONG_POLL`], each plus [`LATENCY_FLOOR_MS`]. Short-poll is judged on its
/// mean (its median depends on how the clients' phases fall), except under loss, where a
/// retransmission's stall moves the mean and p50 is judged instead.
pub fn deviation_with(result: &ScenarioResult, base_latency_ms: f64) -> Option<ModelCheck> {
    if result.latency_us.count == 0 {
        return None;
    }
    let input = ModelInput::of(result, base_latency_ms)?;
    let prediction = predict(&input);
    let use_mean = input.transport == Transport::ShortPoll && input.loss == 0.0;
    let (metric, model, measured) = if use_mean {
        (
            "mean latency",
            prediction.mean_ms,
            result.latency_us.mean / 1e3,
        )
    } else {
        (
            "p50 latency",
            prediction.p50_ms,
            result.latency_us.p50 as f64 / 1e3,
        )
    };
    let share = if input.transport == Transport::LongPoll {
        TOLERANCE_LONG_POLL
    } else {
        TOLERANCE_TIGHT
    };
    let within = (measured - model).abs() <= share * model + LATENCY_FLOOR_MS;
    let describe = |v: f64| micros(v * 1e3);
    let tolerance = format!("{}% + {}", sig3(share * 100.0), describe(LATENCY_FLOOR_MS));
    Some(check(
        result, metric, model, measured, within, &describe, &tolerance,
    ))
}

/// The measured IP bytes per event (both directions) against the model, within
/// [`TOLERANCE_IP_BYTES`]; `None` as for [`deviation`] or without events.
pub fn ip_bytes_deviation(result: &ScenarioResult) -> Option<ModelCheck> {
    let measured = result.ip_bytes_per_event()?;
    let input = ModelInput::of(result, 0.0)?;
    let prediction = predict(&input);
    let model = prediction.ip_bytes_up + prediction.ip_bytes_down;
    let within = (measured - model).abs() <= TOLERANCE_IP_BYTES * model;
    let describe = |v: f64| format!("{} B", sig3(v));
    let tolerance = format!("{}%", sig3(TOLERANCE_IP_BYTES * 100.0));
    Some(check(
        result,
        "IP bytes/event",
        model,
        measured,
        within,
        &describe,
        &tolerance,
    ))
}

/// The base latency L0 a loopback run of a scenario gives the model, ms: what the scenario
/// costs with no network at all (the server's fan-out, the clients' parsing). That is the
/// loopback run's own latency less what the model itself predicts at zero delay: for
/// short-poll its mean less half the poll interval (the wait for the next poll, which is
/// not overhead), clamped at 0; for the other transports its p50. `None` for a run that
/// delivered nothing or went over a link.
pub fn base_latency_ms(loopback: &ScenarioResult) -> Option<f64> {
    if loopback.net.is_some() || loopback.latency_us.count == 0 {
        return None;
    }
    Some(
        match (loopback.transport, loopback.params.poll_interval_ms) {
            (Transport::ShortPoll, Some(p_ms)) => {
                (loopback.latency_us.mean / 1e3 - p_ms as f64 / 2.0).max(0.0)
            }
            _ => loopback.latency_us.p50 as f64 / 1e3,
        },
    )
}

/// Every check that applies to a scenario: latency, then IP bytes.
pub fn checks(result: &ScenarioResult, base_latency_ms: f64) -> Vec<ModelCheck> {
    deviation_with(result, base_latency_ms)
        .into_iter()
        .chain(ip_bytes_deviation(result))
        .collect()
}

/// Builds a check and its sentence.
fn check(
    result: &ScenarioResult,
    metric: &'static str,
    model: f64,
    measured: f64,
    within: bool,
    describe: &dyn Fn(f64) -> String,
    tolerance: &str,
) -> ModelCheck {
    let deviation_ratio = if model > 0.0 {
        measured / model - 1.0
    } else {
        0.0
    };
    let link = result
        .net
        .as_ref()
        .map_or_else(String::new, |n| format!(" over {}", n.spec));
    let how = if deviation_ratio >= 0.0 {
        "above"
    } else {
        "below"
    };
    let sentence = if within {
        format!(
            "{} {metric} {} is within {tolerance} of the model's {}{link}",
            result.transport,
            describe(measured),
            describe(model)
        )
    } else {
        format!(
            "{} {metric} {} is {}% {how} the model's {}{link} (tolerance {tolerance}): the \
             emulator, the server or the model is wrong",
            result.transport,
            describe(measured),
            sig3(deviation_ratio.abs() * 100.0),
            describe(model)
        )
    };
    ModelCheck {
        metric,
        model,
        measured,
        deviation_ratio,
        within,
        sentence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::tests::block;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn framing_is_protocol_md_byte_for_byte() {
        let e2 = r#"{"seq":2,"ts":1795312099346019349,"data":"CDEFGHIJ"}"#;
        let e3 = r#"{"seq":3,"ts":1795312099347019349,"data":"DEFGHIJK"}"#;
        assert_eq!(event_json_bytes(8, 1), 52);
        assert_eq!(event_json_bytes(8, 1), e2.len() as u64);
        assert_eq!(ws_frame_bytes(52), 54);
        assert_eq!((ws_frame_bytes(126), ws_frame_bytes(70_000)), (130, 70_010));
        let chunk = format!("42\r\nid: 2\ndata: {e2}\n\n\r\n");
        assert_eq!(sse_chunk_bytes(52, 1), chunk.len() as u64);
        assert_eq!(sse_chunk_bytes(52, 1), 72);
        let body = format!(r#"{{"events":[{e2},{e3}],"next":3,"missed":0}}"#);
        assert_eq!(poll_body_bytes(2.0, 52, 1), body.len() as f64);
        assert_eq!(poll_body_bytes(2.0, 52, 1), 138.0);
        assert_eq!(
            poll_body_bytes(0.0, 52, 1),
            r#"{"events":[],"next":3,"missed":0}"#.len() as f64
        );
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: 138\r\ndate: Sun, 22 Nov 2026 01:48:19 GMT\r\n\r\n";
        assert_eq!(poll_response_head_bytes(138), head.len() as u64);
        assert_eq!(poll_response_head_bytes(138), 134);
        let request = "GET /poll?after=1 HTTP/1.1\r\nHost: h:1\r\n\r\n";
        assert_eq!(poll_request_bytes(1, 3), request.len() as u64);
        let request = "GET /longpoll?after=1&timeout_ms=30000 HTTP/1.1\r\nHost: h:1\r\n\r\n";
        assert_eq!(longpoll_request_bytes(1, 3), request.len() as u64);
        assert_eq!(
            (digits(0), digits(9), digits(10), digits(262)),
            (1, 1, 2, 3)
        );
    }

    fn ws(rtt_ms: f64) -> ModelInput {
        let mut i = ModelInput::new(Transport::Ws, 10.0, 64);
        i.rtt_ms = rtt_ms;
        i
    }

    #[test]
    fn push_is_one_transit() {
        let p = predict(&ws(100.0));
        assert_eq!(
            (p.mean_ms, p.p50_ms, p.p99_bound_ms),
            (50.0, 50.0, Some(50.0))
        );
        assert_eq!(p.requests_per_event, 0.0);
        // 113 bytes of JSON (6-digit seq, 64 B payload) in a 115-byte frame, one segment;
        // events 100 ms apart each draw one delayed ACK of 52 bytes.
        assert_eq!((p.socket_bytes_down, p.socket_bytes_up), (115.0, 0.0));
        assert_eq!((p.ip_bytes_down, p.ip_bytes_up), (167.0, 52.0));
        assert_eq!((p.ip_packets_down, p.ip_packets_up), (1.0, 1.0));

        let mut i = ws(100.0);
        i.jitter_ms = 5.0;
        i.down_bps = Some(1_000_000);
        i.base_latency_ms = 0.5;
        let p = predict(&i);
        // 167 IP bytes at 1 Mbit/s take 1.336 ms.
        assert!(close(p.p50_ms, 0.5 + 50.0 + 1.336), "{}", p.p50_ms);
        assert!(close(p.p99_bound_ms.unwrap(), 0.5 + 50.0 + 5.0 + 1.336));
        i.loss = 0.01;
        assert_eq!(predict(&i).p99_bound_ms, None, "p99 not bounded under loss");

        // 100 clients behind a shared 10 Mbit/s: each copy 0.1336 ms, the mean client waits
        // for half of them, the last for all.
        let mut i = ws(0.0);
        i.clients = 100;
        i.shared_bps = Some(10_000_000);
        let p = predict(&i);
        assert!(close(p.mean_ms, 0.1336 * 101.0 / 2.0), "{}", p.mean_ms);
        assert!(close(p.p99_bound_ms.unwrap(), 0.1336 * 100.0));

        // Events 25 ms apart: one ACK per two events.
        let mut i = ws(0.0);
        i.rate_hz = 40.0;
        assert_eq!(predict(&i).ip_bytes_up, 26.0);

        let mut i = ws(20.0);
        i.transport = Transport::Sse;
        let p = predict(&i);
        // 6-digit seq: 13 + 6 + 113 = 132 = 0x84 bytes of chunk data, 2 hex digits.
        assert_eq!(p.socket_bytes_down, 2.0 + 2.0 + 132.0 + 2.0);
        assert_eq!(p.p50_ms, 10.0);
    }

    #[test]
    fn short_poll_waits_half_an_interval() {
        let mut i = ModelInput::new(Transport::ShortPoll, 10.0, 64);
        i.poll_interval_ms = Some(500.0);
        i.rtt_ms = 100.0;
        let p = predict(&i);
        assert_eq!((p.mean_ms, p.p50_ms), (250.0 + 50.0, 300.0));
        assert!(close(p.p99_bound_ms.unwrap(), 495.0 + 50.0));
        assert_eq!(p.requests_per_event, 0.2);
        // 5 events per answer: a 607-byte body (3-digit content-length) under a 134-byte
        // head, one segment; a 57-byte request and a delayed ACK per poll.
        assert!(close(p.socket_bytes_down, 741.0 / 5.0));
        assert!(close(p.socket_bytes_up, 57.0 / 5.0));
        assert!(close(p.ip_bytes_down, (741.0 + 52.0) / 5.0));
        assert!(close(p.ip_bytes_up, (57.0 + 52.0 + 52.0) / 5.0));
        i.jitter_ms = 3.0;
        assert!(close(predict(&i).p99_bound_ms.unwrap(), 495.0 + 50.0 + 6.0));

        // Polls faster than events: 4 polls per event, 3 of them empty.
        let mut i = ModelInput::new(Transport::ShortPoll, 1.0, 64);
        i.poll_interval_ms = Some(250.0);
        let p = predict(&i);
        assert_eq!((p.mean_ms, p.requests_per_event), (125.0, 4.0));
        // Empty: 38-byte body + 133-byte head; full: 151 + 134.
        assert_eq!(p.socket_bytes_down, 3.0 * 171.0 + 285.0);

        // A round trip longer than the interval skips ticks: polls every 2 × 300 ms.
        let mut i = ModelInput::new(Transport::ShortPoll, 10.0, 64);
        i.poll_interval_ms = Some(300.0);
        i.rtt_ms = 400.0;
        let p = predict(&i);
        assert_eq!(p.mean_ms, 300.0 + 200.0);
        assert_eq!(p.requests_per_event, 100.0 / 600.0);
    }

    #[test]
    fn long_poll_has_a_knee_where_the_round_trip_meets_the_event_interval() {
        // 4 Hz: T = 250 ms. Up to RTT = 250 ms every event finds a parked request (50% of
        // the RTT); beyond, requests arrive once per RTT and events wait half of one.
        let at = |rtt_ms: f64| {
            let mut i = ModelInput::new(Transport::LongPoll, 4.0, 64);
            i.rtt_ms = rtt_ms;
            predict(&i)
        };
        for rtt in [0.0, 50.0, 100.0, 200.0, 250.0] {
            let p = at(rtt);
            assert_eq!((p.p50_ms, p.requests_per_event), (rtt / 2.0, 1.0), "{rtt}");
        }
        assert_eq!(at(300.0).p50_ms, 150.0 + 150.0);
        assert_eq!(at(400.0).p50_ms, 200.0 + 200.0);
        assert_eq!(at(400.0).requests_per_event, 250.0 / 400.0);
        assert!(close(at(400.0).p99_bound_ms.unwrap(), 0.99 * 400.0 + 200.0));
        // Parked 150 ms (> 40 ms): the request draws its own ACK; the answer's is carried
        // by the next request. 78-byte request, 151 + 134-byte answer.
        let p = at(100.0);
        assert_eq!((p.socket_bytes_up, p.socket_bytes_down), (78.0, 285.0));
        assert_eq!((p.ip_bytes_up, p.ip_bytes_down), (130.0, 285.0 + 104.0));
        // A base latency lengthens the cycle: the knee moves to RTT = 240 ms.
        let mut i = ModelInput::new(Transport::LongPoll, 4.0, 64);
        i.rtt_ms = 245.0;
        i.base_latency_ms = 10.0;
        assert_eq!(predict(&i).p50_ms, 10.0 + 122.5 + 127.5);
    }

    /// The committed ws scenario (20 events/s, 64 B, seqs up to 262) over `block()`'s link
    /// (100 ms, 1% loss), delivered with a p50 of `p50_us`.
    fn measured(p50_us: u64) -> ScenarioResult {
        let mut s: ScenarioResult =
            serde_json::from_str(include_str!("../tests/data/scenario-v1.json")).unwrap();
        s.latency_us.p50 = p50_us;
        s.net = Some(block());
        s
    }

    #[test]
    fn the_check_passes_within_its_tolerance_and_warns_outside() {
        let ok = deviation(&measured(51_000)).unwrap();
        assert_eq!(
            (ok.metric, ok.model, ok.measured),
            ("p50 latency", 50.0, 51.0)
        );
        assert!(ok.within);
        assert!(close(ok.deviation_ratio, 0.02));
        assert_eq!(
            ok.sentence,
            "ws p50 latency 51 ms is within 5% + 2 ms of the model's 50 ms over rtt=100ms,loss=1%"
        );
        // 5% of 50 ms + 2 ms = 4.5 ms either side.
        assert!(deviation(&measured(54_500)).unwrap().within);
        assert!(!deviation(&measured(54_600)).unwrap().within);
        let bad = deviation(&measured(80_000)).unwrap();
        assert!(!bad.within);
        assert_eq!(
            bad.sentence,
            "ws p50 latency 80 ms is 60% above the model's 50 ms over rtt=100ms,loss=1% \
             (tolerance 5% + 2 ms): the emulator, the server or the model is wrong"
        );
        // L0 given: the model moves up by it.
        assert_eq!(deviation_with(&measured(51_000), 0.7).unwrap().model, 50.7);

        // A mixed link or no link: nothing to check.
        let mut mix = measured(51_000);
        let class = mix.net.as_ref().unwrap().classes[0].clone();
        mix.net.as_mut().unwrap().classes.push(class);
        assert_eq!(deviation(&mix), None);
        let mut plain = measured(51_000);
        plain.net = None;
        assert_eq!(deviation(&plain), None);
    }

    #[test]
    fn ip_bytes_are_checked_against_the_model() {
        // 20 events/s (50 ms apart, past the delayed-ACK timeout), 3-digit seqs: a 112-byte
        // frame, 164 IP bytes down and one 52-byte ACK up per event.
        let mut s = measured(51_000);
        s.bytes.events = 600;
        let c = ip_bytes_deviation(&s).unwrap();
        assert_eq!(c.model, 216.0);
        // block(): 161 + 52 per event.
        assert_eq!(c.measured, 213.0);
        assert!(c.within, "{}", c.sentence);
        s.net.as_mut().unwrap().down.bytes *= 2;
        let c = ip_bytes_deviation(&s).unwrap();
        assert!(!c.within);
        assert!(
            c.sentence
                .starts_with("ws IP bytes/event 374 B is 73.1% above the model's 216 B"),
            "{}",
            c.sentence
        );
        assert_eq!(checks(&s, 0.0).len(), 2);
    }
}
