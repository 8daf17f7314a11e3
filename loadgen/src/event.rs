//! Decoding feed events and poll answers.
//!
//! Only `seq` and `ts` matter to the load generator; `data` is skipped without copying.
//! Payload bytes are the event's JSON text exactly as it arrived, so the poll body keeps
//! each event as a raw JSON slice.

use serde::Deserialize;
use serde_json::value::RawValue;

/// The fields of an event the load generator uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct EventHead {
    /// Sequence number, 1, 2, 3, … over the server's lifetime.
    pub seq: u64,
    /// Scheduled publish time, Unix ns.
    pub ts: u64,
}

/// Decodes one event's JSON text.
pub fn parse_event(json: &[u8]) -> Result<EventHead, serde_json::Error> {
    serde_json::from_slice(json)
}

/// A `/poll` or `/longpoll` answer, borrowing the event texts from the body.
#[derive(Debug, Deserialize)]
pub struct PollBody<'a> {
    /// The events, oldest first, as raw JSON.
    #[serde(borrow)]
    pub events: Vec<&'a RawValue>,
    /// Seq of the last event returned, or `after` if none.
    pub next: u64,
    /// Events after `after` that had already left the server's ring.
    #[serde(default)]
    pub missed: u64,
}

/// Decodes a poll answer.
pub fn parse_poll_body(body: &[u8]) -> Result<PollBody<'_>, serde_json::Error> {
    serde_json::from_slice(body)
}

/// What a poll answer held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The server's `next` cursor.
    pub next: u64,
    /// Events in the answer.
    pub n_events: usize,
    /// The server's `missed` count.
    pub missed: u64,
}

/// Reads a `200` poll answer's `body`, giving each event (and its JSON length) to
/// `on_event` in order; the error kind (`bad_body`, `bad_event`) if it is not a poll answer.
/// Events before a bad one have been given.
pub fn read_answer(
    body: &[u8],
    mut on_event: impl FnMut(EventHead, usize),
) -> Result<Answer, &'static str> {
    let body = parse_poll_body(body).map_err(|_| "bad_body")?;
    for raw in &body.events {
        let json = raw.get().as_bytes();
        let ev = parse_event(json).map_err(|_| "bad_event")?;
        on_event(ev, json.len());
    }
    Ok(Answer {
        next: body.next,
        n_events: body.events.len(),
        missed: body.missed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_and_poll_bodies() {
        let ev = br#"{"seq":12,"ts":1700000000000000000,"data":"abcd"}"#;
        assert_eq!(
            parse_event(ev).unwrap(),
            EventHead {
                seq: 12,
                ts: 1_700_000_000_000_000_000
            }
        );
        let body = format!(
            r#"{{"events":[{},{}],"next":13,"missed":2}}"#,
            std::str::from_utf8(ev).unwrap(),
            r#"{"seq":13,"ts":1700000000100000000,"data":"abcd"}"#
        );
        let p = parse_poll_body(body.as_bytes()).unwrap();
        assert_eq!((p.next, p.missed, p.events.len()), (13, 2, 2));
        assert_eq!(p.events[0].get().as_bytes(), ev);
        assert!(parse_poll_body(br#"{"events":[],"next":"x"}"#).is_err());
        assert!(parse_event(br#"{"seq":-1,"ts":0}"#).is_err());
    }
}
