//! One feed event and its wire encodings, made once at publish time.
//!
//! Invariant: an event's JSON is `{"seq":N,"ts":T,"data":"..."}` with no whitespace, keys in
//! that order, and `data` exactly `payload_bytes` printable-ASCII characters that JSON never
//! escapes. Every transport and every subscriber shares the same bytes (`Utf8Bytes` and
//! `Bytes` are reference-counted), so fan-out copies nothing but the pointer.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// The filler alphabet: letters and digits only, so `data` never needs escaping in JSON,
/// in an SSE `data:` line, or in a URL. Written twice so any rotation is one slice.
const FILLER2: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const FILLER_LEN: usize = FILLER2.len() / 2;

/// The most an event's JSON and SSE frame add to twice its payload: 64 bytes of JSON
/// framing (`{"seq":`, `,"ts":`, `,"data":"`, `"}` and two 20-digit numbers) plus 97 for
/// the SSE frame (the JSON's 64, `id: `, a 20-digit seq, `\ndata: ` and `\n\n`).
pub const MAX_FRAMING_BYTES: usize = 64 + 97;

/// What an event's struct and its two allocations' bookkeeping take beyond the encoded
/// bytes, counted generously: the struct itself is 80 bytes, and the room for the
/// WebSocket frame's header (10 bytes) shares the JSON's allocation.
pub const STRUCT_BYTES: usize = 128;

/// A published event with its encodings.
#[derive(Debug, Clone)]
pub struct Event {
    /// Sequence number: 1, 2, 3, … over the server's lifetime.
    pub seq: u64,
    /// Scheduled publish time, Unix epoch nanoseconds.
    pub ts_ns: u64,
    /// The event as a WebSocket text message from the server: one final, unmasked frame
    /// (RFC 6455 section 5.2), encoded once and written as is to every subscriber. The
    /// JSON (polling bodies, hyper's WebSocket path) is the part after the frame header,
    /// [`Event::json`]: not a field of its own, because every push delivery copies the
    /// struct into a batch, and 32 more bytes there showed as +6 to +31% allocated bytes
    /// per delivered event in `scripts/ci-regression.sh`.
    pub ws: Bytes,
    /// The SSE framing of the event: `id: SEQ\ndata: JSON\n\n`.
    pub sse: Bytes,
}

impl Event {
    /// Encodes event `seq` scheduled at `ts_ns` with `payload_bytes` of filler.
    pub fn new(seq: u64, ts_ns: u64, payload_bytes: usize) -> Event {
        // The JSON is written after room for the largest frame header, and the header
        // right before it: one allocation holds the frame and (sliced) the JSON.
        let mut buf = Vec::with_capacity(MAX_WS_HEADER + 48 + payload_bytes);
        buf.resize(MAX_WS_HEADER, 0);
        encode_json_into(&mut buf, seq, ts_ns, payload_bytes);
        let header = ws_text_header(buf.len() - MAX_WS_HEADER);
        let start = MAX_WS_HEADER - header.len();
        buf[start..MAX_WS_HEADER].copy_from_slice(&header);
        let ws = Bytes::from(buf).slice(start..);
        let json = std::str::from_utf8(&ws[header.len()..]).expect("the event JSON is ASCII");
        let sse = encode_sse(seq, json);
        Event {
            seq,
            ts_ns,
            ws,
            sse,
        }
    }

    /// Where the JSON starts in `ws`: after a 2-, 4- or 10-byte header (RFC 6455 5.2; a
    /// server's frame has no mask).
    fn json_start(&self) -> usize {
        match self.ws[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    /// The event JSON.
    pub fn json(&self) -> &[u8] {
        &self.ws[self.json_start()..]
    }

    /// The event JSON as text.
    pub fn json_str(&self) -> &str {
        std::str::from_utf8(self.json()).expect("the event JSON is ASCII")
    }

    /// The event JSON as plain bytes (a reference-count increment, not a copy).
    pub fn json_bytes(&self) -> Bytes {
        self.ws.slice(self.json_start()..)
    }

    /// The event JSON as a WebSocket text payload for tungstenite (hyper's WebSocket
    /// path): shared bytes, checked as UTF-8 (about 20 ns for 100 bytes).
    pub fn json_text(&self) -> Utf8Bytes {
        Utf8Bytes::try_from(self.json_bytes()).expect("the event JSON is ASCII")
    }

    /// The memory the event takes while retained: both encodings and [`STRUCT_BYTES`].
    /// Never more than `config::event_cost` of its payload (equal with 20-digit numbers).
    pub fn cost(&self) -> usize {
        self.json().len() + self.sse.len() + STRUCT_BYTES
    }
}

/// The longest header of a server's WebSocket frame (64-bit length, no mask).
const MAX_WS_HEADER: usize = 10;

/// Encodes the event JSON.
pub fn encode_json(seq: u64, ts_ns: u64, payload_bytes: usize) -> String {
    let mut out = Vec::with_capacity(48 + payload_bytes);
    encode_json_into(&mut out, seq, ts_ns, payload_bytes);
    String::from_utf8(out).expect("the event JSON is ASCII")
}

/// Appends the event JSON to `out`.
fn encode_json_into(out: &mut Vec<u8>, seq: u64, ts_ns: u64, payload_bytes: usize) {
    use std::io::Write as _;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{{\"seq\":{seq},\"ts\":{ts_ns},\"data\":\"");
    // The filler rotates with seq so consecutive events differ, which keeps any compression
    // on the path honest.
    let mut start = (seq % FILLER_LEN as u64) as usize;
    let mut left = payload_bytes;
    while left > 0 {
        let take = left.min(FILLER_LEN);
        out.extend_from_slice(&FILLER2.as_bytes()[start..start + take]);
        left -= take;
        start = (start + take) % FILLER_LEN;
    }
    out.extend_from_slice(b"\"}");
}

/// The header of a WebSocket text frame from a server (final, unmasked) carrying `len`
/// bytes, exactly as tungstenite frames a `Message::Text` (its own header encoder).
fn ws_text_header(len: usize) -> Vec<u8> {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let mut out = Vec::with_capacity(MAX_WS_HEADER);
    header
        .format(len as u64, &mut out)
        .expect("writing a frame header to a Vec cannot fail");
    out
}

/// Frames an event for Server-Sent Events.
pub fn encode_sse(seq: u64, json: &str) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 32);
    out.extend_from_slice(b"id: ");
    out.extend_from_slice(seq.to_string().as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(json.as_bytes());
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_frame_is_tungstenites_text_frame_around_the_json() {
        use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
        use tokio_tungstenite::tungstenite::protocol::frame::Frame;
        // Each length form: 7-bit, 16-bit (126..=65535) and 64-bit.
        for payload in [0usize, 60, 61, 62, 65_400, 65_536, 70_000] {
            let ev = Event::new(3, 9, payload);
            let text = encode_json(3, 9, payload);
            let mut want = Vec::new();
            Frame::message(text.clone().into_bytes(), OpCode::Data(Data::Text), true)
                .format(&mut want)
                .unwrap();
            assert_eq!(&ev.ws[..], &want[..], "payload {payload}");
            assert_eq!(ev.json_str(), text);
            assert_eq!(ev.json_text().as_str(), text);
            let header = ev.ws.len() - text.len();
            let expect = match text.len() {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(header, expect, "payload {payload}");
            assert!(std::mem::size_of::<Event>() + MAX_WS_HEADER <= STRUCT_BYTES);
        }
    }

    #[test]
    fn json_shape_is_exact() {
        let json = encode_json(7, 1_700_000_000_000_000_000, 5);
        assert_eq!(json, r#"{"seq":7,"ts":1700000000000000000,"data":"HIJKL"}"#);
    }

    #[test]
    fn data_length_is_payload_bytes_and_never_escaped() {
        for payload in [0usize, 1, 61, 62, 63, 1024] {
            let json = encode_json(123, 1, payload);
            let v: serde_json::Value = serde_json::from_str(&json).unwrap();
            let data = v["data"].as_str().unwrap();
            assert_eq!(data.len(), payload);
            // The filler is the alphabet rotated by seq, wrapping every 62 characters.
            let want: String = (0..payload)
                .map(|i| FILLER2.as_bytes()[(123 + i) % FILLER_LEN] as char)
                .collect();
            assert_eq!(data, want);
            // Overhead is fixed by the digits of seq and ts.
            assert_eq!(
                json.len(),
                r#"{"seq":123,"ts":1,"data":""}"#.len() + payload
            );
        }
    }

    #[test]
    fn cost_never_exceeds_the_configured_worst_case() {
        for payload in [0usize, 1, 64, 1 << 20] {
            let worst = Event::new(u64::MAX, u64::MAX, payload);
            assert_eq!(worst.cost(), crate::config::event_cost(payload));
            assert!(Event::new(1, 1, payload).cost() < worst.cost());
        }
    }

    #[test]
    fn sse_framing_is_exact() {
        let ev = Event::new(42, 9, 3);
        let want = format!("id: 42\ndata: {}\n\n", ev.json_str());
        assert_eq!(ev.sse.as_ref(), want.as_bytes());
        assert_eq!(ev.json_bytes().as_ref(), ev.json_str().as_bytes());
    }
}
