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
/// bytes, counted generously: the struct itself is 112 bytes, and the WebSocket frame's
/// header (at most 10 bytes) shares the JSON's allocation.
pub const STRUCT_BYTES: usize = 128;

/// A published event with its encodings.
#[derive(Debug, Clone)]
pub struct Event {
    /// Sequence number: 1, 2, 3, … over the server's lifetime.
    pub seq: u64,
    /// Scheduled publish time, Unix epoch nanoseconds.
    pub ts_ns: u64,
    /// The event JSON, shared by polling bodies and WebSocket text messages: a slice of
    /// `ws`, after the frame header.
    pub json: Utf8Bytes,
    /// The event as a WebSocket text message from the server: one final, unmasked frame
    /// (RFC 6455 section 5.2), encoded once and written as is to every subscriber.
    pub ws: Bytes,
    /// The SSE framing of the event: `id: SEQ\ndata: JSON\n\n`.
    pub sse: Bytes,
}

impl Event {
    /// Encodes event `seq` scheduled at `ts_ns` with `payload_bytes` of filler.
    pub fn new(seq: u64, ts_ns: u64, payload_bytes: usize) -> Event {
        let json = encode_json(seq, ts_ns, payload_bytes);
        let sse = encode_sse(seq, &json);
        let (ws, header) = encode_ws_text(&json);
        let json = Utf8Bytes::try_from(ws.slice(header..))
            .expect("the slice after the frame header is the JSON, which is UTF-8");
        Event {
            seq,
            ts_ns,
            json,
            ws,
            sse,
        }
    }

    /// The memory the event takes while retained: both encodings and [`STRUCT_BYTES`].
    /// Never more than `config::event_cost` of its payload (equal with 20-digit numbers).
    pub fn cost(&self) -> usize {
        self.json.len() + self.sse.len() + STRUCT_BYTES
    }

    /// The event JSON as plain bytes (a reference-count increment, not a copy).
    pub fn json_bytes(&self) -> Bytes {
        Bytes::from(self.json.clone())
    }
}

/// Encodes the event JSON.
pub fn encode_json(seq: u64, ts_ns: u64, payload_bytes: usize) -> String {
    let mut out = String::with_capacity(48 + payload_bytes);
    out.push_str("{\"seq\":");
    out.push_str(&seq.to_string());
    out.push_str(",\"ts\":");
    out.push_str(&ts_ns.to_string());
    out.push_str(",\"data\":\"");
    // The filler rotates with seq so consecutive events differ, which keeps any compression
    // on the path honest.
    let mut start = (seq % FILLER_LEN as u64) as usize;
    let mut left = payload_bytes;
    while left > 0 {
        let take = left.min(FILLER_LEN);
        out.push_str(&FILLER2[start..start + take]);
        left -= take;
        start = (start + take) % FILLER_LEN;
    }
    out.push_str("\"}");
    out
}

/// `text` as one WebSocket text frame from a server (final, unmasked), exactly as
/// tungstenite frames a `Message::Text`; returns the frame and its header's length.
pub fn encode_ws_text(text: &str) -> (Bytes, usize) {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    let header = FrameHeader {
        opcode: OpCode::Data(Data::Text),
        ..FrameHeader::default()
    };
    let len = text.len() as u64;
    let header_len = header.len(len);
    let mut out = Vec::with_capacity(header_len + text.len());
    header
        .format(len, &mut out)
        .expect("writing a frame header to a Vec cannot fail");
    out.extend_from_slice(text.as_bytes());
    (Bytes::from(out), header_len)
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
            assert_eq!(ev.json.as_str(), text);
            let header = ev.ws.len() - text.len();
            let expect = match text.len() {
                0..=125 => 2,
                126..=65_535 => 4,
                _ => 10,
            };
            assert_eq!(header, expect, "payload {payload}");
            assert!(header + 112 <= STRUCT_BYTES);
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
        let want = format!("id: 42\ndata: {}\n\n", ev.json.as_str());
        assert_eq!(ev.sse.as_ref(), want.as_bytes());
        assert_eq!(ev.json_bytes().as_ref(), ev.json.as_str().as_bytes());
    }
}
