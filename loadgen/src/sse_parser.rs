//! An incremental parser for the `text/event-stream` format.
//!
//! Bytes go in as they arrive, in pieces of any size; complete events come out. It follows
//! the WHATWG rules that matter for a data feed: lines end in LF, CRLF or CR; `id` and
//! `data` fields (several `data` lines join with LF); comments and unknown fields are
//! skipped; an event is dispatched at an empty line and only if it has data.

/// One dispatched event, borrowed from the parser until the callback returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The last `id` field so far (it persists across events), if there was one.
    pub id: Option<&'a [u8]>,
    /// The `event` field, if the event had one.
    pub event: Option<&'a [u8]>,
    /// The data lines joined with LF.
    pub data: &'a [u8],
}

/// Parser state across `feed` calls. Lines are parsed where they lie in the bytes fed;
/// only a line that a feed does not end is copied (into `pending`), and the buffers are
/// reused from event to event, so an event costs no allocation. (The first version split
/// lines off a `BytesMut` and returned owned events, allocating for each: `cargo bench
/// --bench hot_paths -- client_parse/sse` took 232 ns per event with it and 113–128 ns
/// with this one, run one after the other.)
#[derive(Debug, Default)]
pub struct SseParser {
    /// The start of a line that the bytes so far did not end.
    pending: Vec<u8>,
    /// A CR ended the previous line; a following LF belongs to it.
    after_cr: bool,
    id: Vec<u8>,
    has_id: bool,
    event: Vec<u8>,
    has_event: bool,
    data: Vec<u8>,
    has_data: bool,
    /// Longest line accepted, to bound memory against a broken stream.
    max_line: usize,
}

/// The stream broke a limit.
#[derive(Debug, thiserror::Error)]
#[error("sse line longer than {0} bytes")]
pub struct LineTooLong(pub usize);

/// A buffer that grew past this while holding one long line or event is let go after it,
/// so a parser holds little between events.
const KEEP_CAPACITY: usize = 64 * 1024;

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
        mut on_event: impl FnMut(SseEvent<'_>),
    ) -> Result<(), LineTooLong> {
        let mut pos = 0;
        if self.after_cr && !bytes.is_empty() {
            if bytes[0] == b'\n' {
                pos = 1;
            }
            self.after_cr = false;
        }
        loop {
            let rest = &bytes[pos..];
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                self.pending.extend_from_slice(rest);
                if self.pending.len() > self.max_line {
                    return Err(LineTooLong(self.max_line));
                }
                return Ok(());
            };
            if self.pending.is_empty() {
                self.line(&rest[..end], &mut on_event);
            } else {
                let mut line = std::mem::take(&mut self.pending);
                line.extend_from_slice(&rest[..end]);
                self.line(&line, &mut on_event);
                line.clear();
                if line.capacity() <= KEEP_CAPACITY {
                    self.pending = line;
                }
            }
            pos += end + 1;
            if rest[end] == b'\r' {
                match bytes.get(pos) {
                    Some(b'\n') => pos += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
        }
    }

    /// Processes one line; dispatches the event when the line is empty and one is complete.
    fn line(&mut self, line: &[u8], on_event: &mut impl FnMut(SseEvent<'_>)) {
        if line.is_empty() {
            let has_event = std::mem::take(&mut self.has_event);
            if !std::mem::take(&mut self.has_data) {
                return;
            }
            on_event(SseEvent {
                id: self.has_id.then_some(&self.id[..]),
                event: has_event.then_some(&self.event[..]),
                data: &self.data,
            });
            self.data.clear();
            if self.data.capacity() > KEEP_CAPACITY {
                self.data = Vec::new();
            }
            return;
        }
        if line[0] == b':' {
            return;
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
            b"id" => {
                self.id.clear();
                self.id.extend_from_slice(value);
                self.has_id = true;
            }
            b"event" => {
                self.event.clear();
                self.event.extend_from_slice(value);
                self.has_event = true;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as owned values, to compare.
    #[derive(Debug, PartialEq, Eq)]
    struct Owned {
        id: Option<Vec<u8>>,
        event: Option<Vec<u8>>,
        data: Vec<u8>,
    }

    fn parse_all(chunks: &[&[u8]]) -> Vec<Owned> {
        let mut p = SseParser::new(1024);
        let mut out = Vec::new();
        for c in chunks {
            p.feed(c, |e| {
                out.push(Owned {
                    id: e.id.map(<[u8]>::to_vec),
                    event: e.event.map(<[u8]>::to_vec),
                    data: e.data.to_vec(),
                })
            })
            .unwrap();
        }
        out
    }

    /// `wire` cut in two at every position, and fed byte by byte, parses as `whole`.
    fn assert_split_anywhere_alike(wire: &[u8], whole: &[Owned]) {
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
    fn parses_feed_events_split_anywhere() {
        let wire = b"id: 7\ndata: {\"seq\":7}\n\nid: 8\ndata: {\"seq\":8}\n\n";
        let whole = parse_all(&[wire]);
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].id.as_deref(), Some(&b"7"[..]));
        assert_eq!(whole[1].data, b"{\"seq\":8}");
        assert_split_anywhere_alike(wire, &whole);
    }

    #[test]
    fn follows_the_line_rules() {
        let evs = parse_all(&[
            b": comment\r\nretry: 10\r\nevent: x\r\ndata:a\r\ndata: b\r",
            b"\n\r\rdata\n\n",
        ]);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, b"a\nb");
        assert_eq!(evs[0].event.as_deref(), Some(&b"x"[..]));
        // The id persists across events, as the spec says (last event id).
        assert_eq!(evs[1].data, b"");
        assert_eq!(evs[1].event, None);
        // An empty line without data dispatches nothing.
        assert!(parse_all(&[b"id: 1\n\n"]).is_empty());
    }

    #[test]
    fn crlf_and_cr_line_ends_split_anywhere_parse_alike() {
        let wire =
            b"id: 1\r\ndata: a\r\ndata: b\r\n\r\n: c\rid: 2\revent: e\rdata: x\r\rdata: y\n\n";
        let whole = parse_all(&[wire]);
        assert_eq!(
            whole,
            [
                Owned {
                    id: Some(b"1".to_vec()),
                    event: None,
                    data: b"a\nb".to_vec()
                },
                Owned {
                    id: Some(b"2".to_vec()),
                    event: Some(b"e".to_vec()),
                    data: b"x".to_vec()
                },
                // The id persists; the event name does not.
                Owned {
                    id: Some(b"2".to_vec()),
                    event: None,
                    data: b"y".to_vec()
                },
            ]
        );
        assert_split_anywhere_alike(wire, &whole);
        // Empty feeds change nothing, even right after a CR.
        let mut pieces: Vec<&[u8]> = Vec::new();
        for c in wire.chunks(3) {
            pieces.extend([c, &b""[..]]);
        }
        assert_eq!(parse_all(&pieces), whole);
    }

    #[test]
    fn a_long_line_is_carried_across_feeds_and_its_buffers_let_go() {
        let mut p = SseParser::new(1 << 20);
        let long = vec![b'z'; 100_000];
        let mut got = Vec::new();
        p.feed(b"data: ", |_| {}).unwrap();
        for piece in long.chunks(4096) {
            p.feed(piece, |_| {}).unwrap();
        }
        p.feed(b"\n\n", |e| got.push(e.data.len())).unwrap();
        assert_eq!(got, [100_000]);
        assert!(p.pending.capacity() <= KEEP_CAPACITY);
        assert!(p.data.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn bounds_lines() {
        let mut p = SseParser::new(8);
        assert!(p.feed(b"data: 0123456789", |_| {}).is_err());
    }
}
