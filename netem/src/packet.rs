//! IPv4/TCP header reading and the TCP retransmission detector.
//!
//! The detector keeps, per flow and direction (source and destination address and port),
//! the highest end sequence number (`seq + payload + SYN + FIN`) seen. A segment whose end
//! is not beyond it, in 32-bit serial arithmetic, is a retransmission. A SYN whose end
//! differs from the stored one starts a new connection on a reused 4-tuple. Pure ACKs
//! (no payload, SYN or FIN) are not segments here. The table is bounded: at
//! [`MAX_FLOWS`] it is cleared (and the caller counts that), after which flows start
//! afresh and their first segment is never called a retransmission.

use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The flow table's bound.
pub const MAX_FLOWS: usize = 200_000;

const TCP: u8 = 6;
const SYN: u8 = 0x02;
const FIN: u8 = 0x01;

/// What the emulator needs from an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Info {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// IP total length (header included).
    pub total_len: usize,
    /// The TCP header's figures, for an unfragmented (first-fragment) TCP packet.
    pub tcp: Option<TcpInfo>,
}

/// What the detector needs from a TCP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Flags byte (FIN 0x01, SYN 0x02, ...).
    pub flags: u8,
    /// Payload bytes.
    pub payload_len: u32,
}

impl TcpInfo {
    /// Sequence space the segment occupies: payload plus one each for SYN and FIN.
    pub fn seg_len(&self) -> u32 {
        self.payload_len + u32::from(self.flags & SYN != 0) + u32::from(self.flags & FIN != 0)
    }
}

/// Reads an IPv4 header (and TCP's, if present); `None` if `buf` is not IPv4 or is cut
/// short.
pub fn parse_ipv4(buf: &[u8]) -> Option<Ipv4Info> {
    if buf.len() < 20 || buf[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    let total_len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if ihl < 20 || total_len < ihl || buf.len() < total_len {
        return None;
    }
    let src = Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]);
    let dst = Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]);
    let frag_offset = u16::from_be_bytes([buf[6], buf[7]]) & 0x1fff;
    let tcp = if buf[9] == TCP && frag_offset == 0 {
        parse_tcp(&buf[ihl..total_len])
    } else {
        None
    };
    Some(Ipv4Info {
        src,
        dst,
        total_len,
        tcp,
    })
}

fn parse_tcp(seg: &[u8]) -> Option<TcpInfo> {
    if seg.len() < 20 {
        return None;
    }
    let doff = usize::from(seg[12] >> 4) * 4;
    if doff < 20 || doff > seg.len() {
        return None;
    }
    Some(TcpInfo {
        sport: u16::from_be_bytes([seg[0], seg[1]]),
        dport: u16::from_be_bytes([seg[2], seg[3]]),
        seq: u32::from_be_bytes([seg[4], seg[5], seg[6], seg[7]]),
        flags: seg[13],
        payload_len: (seg.len() - doff) as u32,
    })
}

/// A flow and direction: (source, destination) address and port.
type FlowKey = (Ipv4Addr, Ipv4Addr, u16, u16);

/// What the detector made of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentKind {
    /// Not a TCP segment with payload, SYN or FIN.
    NotCounted,
    /// New sequence space.
    New,
    /// A retransmission.
    Retransmit,
}

/// Per-flow highest end sequence numbers, bounded by [`MAX_FLOWS`].
#[derive(Debug, Default)]
pub struct RetxDetector {
    /// Highest end sequence per flow and direction.
    flows: HashMap<FlowKey, u32>,
}

impl RetxDetector {
    /// Classifies a packet; the second value is true if the table was just cleared.
    pub fn observe(&mut self, ip: &Ipv4Info) -> (SegmentKind, bool) {
        let Some(tcp) = ip.tcp else {
            return (SegmentKind::NotCounted, false);
        };
        let len = tcp.seg_len();
        if len == 0 {
            return (SegmentKind::NotCounted, false);
        }
        let end = tcp.seq.wrapping_add(len);
        let key = (ip.src, ip.dst, tcp.sport, tcp.dport);
        let is_syn = tcp.flags & SYN != 0;
        if let Some(highest) = self.flows.get_mut(&key) {
            let beyond = (end.wrapping_sub(*highest) as i32) > 0;
            if beyond || (is_syn && end != *highest) {
                *highest = end;
                return (SegmentKind::New, false);
            }
            return (SegmentKind::Retransmit, false);
        }
        let cleared = self.flows.len() >= MAX_FLOWS;
        if cleared {
            self.flows.clear();
        }
        self.flows.insert(key, end);
        (SegmentKind::New, cleared)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds an IPv4/TCP packet with a 20-byte TCP header (no options).
    pub(crate) fn tcp_packet(
        src: [u8; 4],
        sport: u16,
        seq: u32,
        flags: u8,
        payload: usize,
    ) -> Vec<u8> {
        let total = 40 + payload;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64;
        p[9] = TCP;
        p[12..16].copy_from_slice(&src);
        p[16..20].copy_from_slice(&[198, 19, 0, 1]);
        p[20..22].copy_from_slice(&sport.to_be_bytes());
        p[22..24].copy_from_slice(&80u16.to_be_bytes());
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[32] = 5 << 4;
        p[33] = flags;
        p
    }

    fn kind(d: &mut RetxDetector, pkt: &[u8]) -> SegmentKind {
        d.observe(&parse_ipv4(pkt).unwrap()).0
    }

    const ACK: u8 = 0x10;
    const CLIENT: [u8; 4] = [198, 19, 128, 1];

    #[test]
    fn parses_lengths_and_ports() {
        let info = parse_ipv4(&tcp_packet(CLIENT, 40000, 5, SYN, 0)).unwrap();
        assert_eq!(info.total_len, 40);
        assert_eq!(info.src, Ipv4Addr::new(198, 19, 128, 1));
        let tcp = info.tcp.unwrap();
        assert_eq!(
            (tcp.sport, tcp.dport, tcp.seq, tcp.seg_len()),
            (40000, 80, 5, 1)
        );
        assert_eq!(parse_ipv4(&[0x60; 40]), None, "IPv6 is not IPv4");
        assert_eq!(
            parse_ipv4(&tcp_packet(CLIENT, 1, 1, 0, 10)[..45]),
            None,
            "cut short"
        );
    }

    #[test]
    fn detects_retransmissions_in_serial_arithmetic() {
        let mut d = RetxDetector::default();
        let isn = u32::MAX - 1500; // the flow wraps past 2^32 below
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, isn, SYN, 0)),
            SegmentKind::New
        );
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, isn, SYN, 0)),
            SegmentKind::Retransmit
        );
        let data = isn.wrapping_add(1);
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, data, ACK, 1000)),
            SegmentKind::New
        );
        let next = data.wrapping_add(1000);
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, next, ACK, 1000)),
            SegmentKind::New
        );
        // The segment that crossed 2^32 sent again, then a pure ACK (not counted).
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, next, ACK, 1000)),
            SegmentKind::Retransmit
        );
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, 0, ACK, 0)),
            SegmentKind::NotCounted
        );
        // The other port is another flow; a partial overlap that ends beyond is new data.
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 2, data, ACK, 1000)),
            SegmentKind::New
        );
        let overlap = next.wrapping_add(500);
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, overlap, ACK, 1000)),
            SegmentKind::New
        );
        // A new SYN with another ISN on the same 4-tuple is a new connection.
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, 7, SYN, 0)),
            SegmentKind::New
        );
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, 8, FIN | ACK, 0)),
            SegmentKind::New
        );
        assert_eq!(
            kind(&mut d, &tcp_packet(CLIENT, 1, 8, FIN | ACK, 0)),
            SegmentKind::Retransmit
        );
    }

    #[test]
    fn flow_table_is_bounded() {
        let mut d = RetxDetector::default();
        let mut cleared = 0;
        for i in 0..=MAX_FLOWS as u32 {
            let src = (0xc613_8000u32 + i / 60_000).to_be_bytes();
            let pkt = tcp_packet(src, (i % 60_000) as u16, 1, SYN, 0);
            cleared += u32::from(d.observe(&parse_ipv4(&pkt).unwrap()).1);
        }
        assert_eq!(cleared, 1);
        assert_eq!(d.flows.len(), 1);
    }
}
