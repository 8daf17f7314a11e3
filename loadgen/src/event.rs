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
///
/// A body in exactly the server's own layout is read by [`scan_answer`]; any other goes
/// through serde. Both give the same events and figures for every body the scan takes.
pub fn read_answer(
    body: &[u8],
    mut on_event: impl FnMut(EventHead, usize),
) -> Result<Answer, &'static str> {
    // Checked whole first, so that a body the scan gives up on midway has given nothing.
    if let Some(answer) = scan_answer(body, &mut |_, _| {}) {
        scan_answer(body, &mut on_event);
        return Ok(answer);
    }
    serde_answer(body, &mut on_event)
}

/// [`read_answer`] through serde: any valid JSON layout.
fn serde_answer(
    body: &[u8],
    on_event: &mut dyn FnMut(EventHead, usize),
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

/// Reads a poll body laid out exactly as the server writes it
/// (`{"events":[{"seq":N,"ts":N,"data":"..."},...],"next":N,"missed":N}`, no whitespace,
/// numbers without sign or leading zero, data of ASCII without control characters or
/// escapes), giving each event to `on_event` as it goes; `None` at the first byte that
/// departs from that layout (the body may still be valid JSON: serde then reads it).
///
/// Why: serde read the body twice (the events as raw slices into a `Vec`, then each
/// event), 476 ns of a one-event answer with its head (`cargo bench --bench hot_paths --
/// client_parse/long_poll_answer_1`), about a fifth of the load generator's user time per
/// long-poll delivery at 10,000 clients.
fn scan_answer(body: &[u8], on_event: &mut dyn FnMut(EventHead, usize)) -> Option<Answer> {
    let mut c = Scan { b: body, at: 0 };
    c.lit(b"{\"events\":[")?;
    let mut n_events = 0;
    if !c.peek(b']') {
        loop {
            let start = c.at;
            c.lit(b"{\"seq\":")?;
            let seq = c.uint()?;
            c.lit(b",\"ts\":")?;
            let ts = c.uint()?;
            c.lit(b",\"data\":\"")?;
            c.plain_string()?;
            c.lit(b"}")?;
            on_event(EventHead { seq, ts }, c.at - start);
            n_events += 1;
            if !c.peek(b',') {
                break;
            }
            c.at += 1;
        }
    }
    c.lit(b"],\"next\":")?;
    let next = c.uint()?;
    c.lit(b",\"missed\":")?;
    let missed = c.uint()?;
    c.lit(b"}")?;
    (c.at == body.len()).then_some(Answer {
        next,
        n_events,
        missed,
    })
}

/// A position in a body being scanned.
struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn peek(&self, byte: u8) -> bool {
        self.b.get(self.at) == Some(&byte)
    }

    /// Takes `lit` if the bytes here are it.
    fn lit(&mut self, lit: &[u8]) -> Option<()> {
        self.b[self.at..]
            .starts_with(lit)
            .then(|| self.at += lit.len())
    }

    /// A JSON number that is a `u64`: `0`, or digits not starting with `0`.
    fn uint(&mut self) -> Option<u64> {
        let rest = &self.b[self.at..];
        let mut n: u64 = 0;
        let mut digits = 0;
        while let Some(d) = rest.get(digits).filter(|d| d.is_ascii_digit()) {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            digits += 1;
        }
        if digits == 0 || (digits > 1 && rest[0] == b'0') {
            return None;
        }
        self.at += digits;
        // A fraction or exponent makes it no `u64`.
        (!matches!(self.b.get(self.at), Some(b'.' | b'e' | b'E'))).then_some(n)
    }

    /// The rest of a string of ASCII without control characters or escapes, and its
    /// closing quote.
    fn plain_string(&mut self) -> Option<()> {
        let rest = &self.b[self.at..];
        let len = memchr::memchr(b'"', rest)?;
        // A fold without an early exit, so that it runs over whole vectors.
        let plain = rest[..len].iter().fold(true, |plain, &b| {
            plain & (0x20..=0x7f).contains(&b) & (b != b'\\')
        });
        plain.then(|| self.at += len + 1)
    }
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

    /// Every event and figure a reader gives for `body`: `(events, answer)`.
    type Read = (Vec<(EventHead, usize)>, Result<Answer, &'static str>);

    fn by_scan(body: &[u8]) -> Option<Read> {
        let mut events = Vec::new();
        let answer = scan_answer(body, &mut |ev, len| events.push((ev, len)))?;
        Some((events, Ok(answer)))
    }

    fn by_serde(body: &[u8]) -> Read {
        let mut events = Vec::new();
        let answer = serde_answer(body, &mut |ev, len| events.push((ev, len)));
        (events, answer)
    }

    fn by_read_answer(body: &[u8]) -> Read {
        let mut events = Vec::new();
        let answer = read_answer(body, |ev, len| events.push((ev, len)));
        (events, answer)
    }

    fn server_body(n: u64, payload: usize, missed: u64) -> Vec<u8> {
        let events: Vec<_> = (0..n)
            .map(|i| {
                feedbench_server::event::Event::new(41 + i, 1_795_312_099_346_019_349 + i, payload)
            })
            .collect();
        feedbench_server::poll::encode_events(&events, missed, 40).to_vec()
    }

    #[test]
    fn the_scan_reads_the_servers_bodies_as_serde_does() {
        for (n, payload, missed) in [(0, 64, 0), (1, 64, 0), (1, 0, 7), (3, 1, 0), (50, 200, 3)] {
            let body = server_body(n, payload, missed);
            let scanned = by_scan(&body).expect("the server's layout is scanned");
            assert_eq!(scanned, by_serde(&body));
            assert_eq!(scanned.0.len() as u64, n);
            assert_eq!(scanned.1.unwrap().next, if n == 0 { 40 } else { 40 + n });
            assert_eq!(scanned.1.unwrap().missed, missed);
            // Each event's length is its JSON text's, as the bytes accounting needs.
            let json_len =
                feedbench_server::event::Event::new(41, 1_795_312_099_346_019_349, payload)
                    .json()
                    .len();
            assert!(scanned.0.iter().all(|&(_, len)| len == json_len));
        }
    }

    #[test]
    fn what_the_scan_declines_serde_reads_or_refuses() {
        let max = format!(
            r#"{{"events":[{{"seq":{m},"ts":{m},"data":""}}],"next":{m},"missed":0}}"#,
            m = u64::MAX
        );
        assert_eq!(
            by_scan(max.as_bytes()).expect("u64::MAX is a u64").0[0]
                .0
                .seq,
            u64::MAX
        );
        for body in [
            // Not the server's layout, but valid: serde reads it, and so does `read_answer`.
            r#"{"events": [], "next": 3, "missed": 0}"#,
            r#"{"events":[{"seq":1,"ts":2,"data":"a\"b"}],"next":1,"missed":0}"#,
            r#"{"events":[{"seq":1,"ts":2,"data":"é"}],"next":1,"missed":0}"#,
            r#"{"events":[],"next":3}"#,
            r#"{"next":3,"events":[],"missed":0}"#,
            // Invalid: both refuse.
            r#"{"events":[],"next":03,"missed":0}"#,
            r#"{"events":[],"next":18446744073709551616,"missed":0}"#,
            r#"{"events":[],"next":1.0,"missed":0}"#,
            r#"{"events":[],"next":-1,"missed":0}"#,
            r#"{"events":[{"seq":1,"ts":2,"data":"a"}],"next":1,"missed":0}x"#,
            r#"{"events":[{"seq":1,"ts":2,"data":"a"},],"next":1,"missed":0}"#,
            r#"{"events":[{"seq":1,"ts":2,"data":"a}],"next":1,"missed":0}"#,
        ] {
            assert_eq!(by_scan(body.as_bytes()), None, "{body}");
            assert_eq!(
                by_read_answer(body.as_bytes()),
                by_serde(body.as_bytes()),
                "{body}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever the bytes, a body the scan takes is one serde reads alike.
        #[test]
        fn a_scanned_body_reads_as_serde_reads_it(
            n in 0u64..4,
            payload in 0usize..40,
            missed in 0u64..3,
            edits in proptest::collection::vec((0usize..400, 0u8..=255, 0u8..3), 0..3),
        ) {
            let mut body = server_body(n, payload, missed);
            for (at, byte, how) in edits {
                let at = at % (body.len() + 1);
                match how {
                    0 if at < body.len() => body[at] = byte,
                    1 => body.insert(at, byte),
                    _ if at < body.len() => { body.remove(at); }
                    _ => {}
                }
            }
            if let Some(scanned) = by_scan(&body) {
                proptest::prop_assert_eq!(scanned, by_serde(&body));
            }
            proptest::prop_assert_eq!(by_read_answer(&body), by_serde(&body));
        }

        /// Events whose data needs escapes or is not ASCII, written by serde itself.
        #[test]
        fn any_event_text_reads_as_serde_reads_it(
            events in proptest::collection::vec((proptest::num::u64::ANY, proptest::num::u64::ANY, ".{0,12}"), 0..4),
            next in proptest::num::u64::ANY,
        ) {
            let events: Vec<_> = events
                .iter()
                .map(|(seq, ts, data)| serde_json::json!({"seq": seq, "ts": ts, "data": data}).to_string())
                .collect();
            let body = format!(r#"{{"events":[{}],"next":{next},"missed":0}}"#, events.join(","));
            let plain = events.iter().all(|e| !e.contains('\\') && e.is_ascii());
            proptest::prop_assert_eq!(by_scan(body.as_bytes()).is_some(), plain);
            proptest::prop_assert_eq!(by_read_answer(body.as_bytes()), by_serde(body.as_bytes()));
            proptest::prop_assert_eq!(by_serde(body.as_bytes()).0.len(), events.len());
        }
    }
}
