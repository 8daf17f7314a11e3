//! An incremental parser for the `text/event-stream` format.
//!
//! Bytes go in as they arrive, in pieces of any size; complete events come out. It follows
//! the WHATWG rules that matter for a data feed: lines end in LF, CRLF or CR; `id` and
//! `data` fields (several `data` lines join with LF); comments and unknown fields are
//! skipped; an event is dispatched at an empty line and only if it has data.

use bytes::{Buf, BytesMut};

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id` field, if the event had one.
    pub id: Option<String>,
    /// The `event` field, if any.
    pub event: Option<String>,
    /// The data lines joined with LF.
    pub data: Vec<u8>,
}

/// Parser state across `feed` calls.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: BytesMut,
    /// A CR ended the previous line; a following LF belongs to it.
    after_cr: bool,
    id: Option<String>,
    event: Option<String>,
    data: Vec<u8>,
    has_data: bool,
    /// Longest line accepted, to bound memory against a broken stream.
    max_line: usize,
}

/// The stream broke a limit.
#[derive(Debug, thiserror::Error)]
#[error("sse line longer than {0} bytes")]
pub struct LineTooLong(pub usize);

impl SseParser {
    /// A parser accepting lines up to `max_line` bytes.
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            ..Self::default()
        }
    }

    /// Feeds `bytes` and calls `on_event` for every event completed by them.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        mut on_event: impl FnMut(SseEvent),
    ) -> Result<(), LineTooLong> {
        self.pending.extend_from_slice(bytes);
        loop {
            if self.after_cr && !self.pending.is_empty() {
                if self.pending[0] == b'\n' {
                    self.pending.advance(1);
                }
                self.after_cr = false;
            }
            let Some(end) = self.pending.iter().position(|&b| b == b'\n' || b == b'\r') else {
                if self.pending.len() > self.max_line {
                    return Err(LineTooLong(self.max_line));
                }
                return Ok(());
            };
            self.after_cr = self.pending[end] == b'\r';
            let line = self.pending.split_to(end);
            self.pending.advance(1);
            if let Some(ev) = self.line(&line) {
                on_event(ev);
            }
        }
    }

    /// Processes one line; returns an event when the line is empty and one is complete.
    fn line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let id = self.id.clone();
            let event = self.event.take();
            if !self.has_data {
                return None;
            }
            self.has_data = false;
            return Some(SseEvent {
                id,
                event,
                data: std::mem::take(&mut self.data),
            });
        }
        if line[0] == b':' {
            return None;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"id" => self.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, |e| out.push(e)).unwrap();
        }
        out
    }

    #[test]
    fn parses_feed_events_split_anywhere() {
        let wire = b"id: 7\ndata: {\"seq\":7}\n\nid: 8\ndata: {\"seq\":8}\n\n";
        let whole = parse_all(&[wire]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].id.as_deref(), Some("7"));
        assert_eq!(whole[1].data, b"{\"seq\":8}");
        for split in 0..wire.len() {
            assert_eq!(
                parse_all(&[&wire[..split], &wire[split..]]),
                whole,
                "split at {split}"
            );
        }
        let bytewise: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(parse_all(&bytewise), whole);
    }

    #[test]
    fn follows_the_line_rules() {
        let evs = parse_all(&[
            b": comment\r\nretry: 10\r\nevent: x\r\ndata:a\r\ndata: b\r",
            b"\n\r\rdata\n\n",
        ]);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, b"a\nb");
        assert_eq!(evs[0].event.as_deref(), Some("x"));
        // The id persists across events, as the spec says (last event id).
        assert_eq!(evs[1].data, b"");
        assert_eq!(evs[1].event, None);
        // An empty line without data dispatches nothing.
        assert!(parse_all(&[b"id: 1\n\n"]).is_empty());
    }

    #[test]
    fn bounds_lines() {
        let mut p = SseParser::new(8);
        assert!(p.feed(b"data: 0123456789", |_| {}).is_err());
    }
}
