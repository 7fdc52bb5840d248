//! RTP and RTCP wire formats (RFC 3550) for the SIP leg: the fixed RTP header, and the few RTCP
//! packets the gateway sends (SR or RR with SDES CNAME, BYE) and reads (the far end's SR, for
//! the LSR/DLSR fields of our reports).
//!
//! Hand-written because it is a 12-byte header and three small RTCP packets; the RTP crates on
//! crates.io either belong to a whole WebRTC stack (webrtc-rs `rtp`/`rtcp` pull in its
//! utility crates) or keep their parsers private (str0m handles the browser leg's RTP itself).

use std::ops::Range;

/// The fixed part of an RTP header (no CSRC list, no extension: the gateway never sends them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// The marker bit (the first packet of a talkspurt, or of a telephone event).
    pub marker: bool,
    /// Payload type, 0–127.
    pub payload_type: u8,
    /// Sequence number.
    pub seq: u16,
    /// Timestamp (8000 Hz for everything the gateway relays).
    pub timestamp: u32,
    /// Synchronisation source.
    pub ssrc: u32,
}

/// Why a datagram is not an RTP or RTCP packet the gateway can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than its headers say.
    #[error("truncated packet")]
    Truncated,
    /// Not RTP/RTCP version 2.
    #[error("not RTP version 2")]
    Version,
    /// Padding longer than the payload.
    #[error("bad padding")]
    Padding,
    /// An RTCP packet whose first part is neither SR nor RR (RFC 3550 §6.1).
    #[error("RTCP compound packet does not start with SR or RR")]
    NotReport,
}

/// Length of the fixed RTP header.
pub const RTP_HEADER_LEN: usize = 12;

/// Parses an RTP packet: the header and where the payload is (after the CSRC list and any
/// header extension, before any padding).
///
/// ```
/// use siptoken_gateway::media::packet::{parse_rtp, write_rtp, RtpHeader};
/// let h = RtpHeader { marker: true, payload_type: 0, seq: 7, timestamp: 160, ssrc: 42 };
/// let mut buf = Vec::new();
/// write_rtp(&mut buf, &h, &[0xff; 160]);
/// let (parsed, payload) = parse_rtp(&buf).unwrap();
/// assert_eq!((parsed, payload.len()), (h, 160));
/// ```
pub fn parse_rtp(buf: &[u8]) -> Result<(RtpHeader, Range<usize>), PacketError> {
    if buf.len() < RTP_HEADER_LEN {
        return Err(PacketError::Truncated);
    }
    if buf[0] >> 6 != 2 {
        return Err(PacketError::Version);
    }
    let padding = buf[0] & 0x20 != 0;
    let extension = buf[0] & 0x10 != 0;
    let csrc_count = usize::from(buf[0] & 0x0f);
    let mut start = RTP_HEADER_LEN + 4 * csrc_count;
    if extension {
        let words = buf
            .get(start + 2..start + 4)
            .ok_or(PacketError::Truncated)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    let mut end = buf.len();
    if start > end {
        return Err(PacketError::Truncated);
    }
    if padding {
        let pad = usize::from(buf[end - 1]);
        if pad == 0 || pad > end - start {
            return Err(PacketError::Padding);
        }
        end -= pad;
    }
    let header = RtpHeader {
        marker: buf[1] & 0x80 != 0,
        payload_type: buf[1] & 0x7f,
        seq: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
    };
    Ok((header, start..end))
}

/// Writes an RTP packet (fixed header, then `payload`) into `out`, which is cleared first.
pub fn write_rtp(out: &mut Vec<u8>, h: &RtpHeader, payload: &[u8]) {
    out.clear();
    out.reserve(RTP_HEADER_LEN + payload.len());
    out.push(0x80);
    out.push(u8::from(h.marker) << 7 | (h.payload_type & 0x7f));
    out.extend_from_slice(&h.seq.to_be_bytes());
    out.extend_from_slice(&h.timestamp.to_be_bytes());
    out.extend_from_slice(&h.ssrc.to_be_bytes());
    out.extend_from_slice(payload);
}

/// Whether a datagram looks like RTCP rather than RTP (RFC 5761 §4: packet types 192–223 in the
/// second byte), for a port that should carry only one of them.
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

/// The sender-info part of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderInfo {
    /// NTP timestamp (64-bit fixed point, seconds since 1900).
    pub ntp: u64,
    /// The RTP timestamp that corresponds to `ntp`.
    pub rtp_timestamp: u32,
    /// Packets sent since the stream started.
    pub packets: u32,
    /// Payload octets sent since the stream started.
    pub octets: u32,
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source reported on.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Packets lost since the start (24-bit signed, clamped).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from that source (0: none yet).
    pub last_sr: u32,
    /// Delay since that SR, 1/65536 s.
    pub delay_since_last_sr: u32,
}

fn rtcp_header(out: &mut Vec<u8>, count: u8, packet_type: u8, words_after: usize) {
    out.push(0x80 | (count & 0x1f));
    out.push(packet_type);
    out.extend_from_slice(&(words_after as u16).to_be_bytes());
}

fn push_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
) {
    let blocks = usize::from(block.is_some());
    let (pt, words) = match sender {
        Some(_) => (200, 6 + 6 * blocks),
        None => (201, 1 + 6 * blocks),
    };
    rtcp_header(out, blocks as u8, pt, words);
    out.extend_from_slice(&ssrc.to_be_bytes());
    if let Some(s) = sender {
        out.extend_from_slice(&s.ntp.to_be_bytes());
        out.extend_from_slice(&s.rtp_timestamp.to_be_bytes());
        out.extend_from_slice(&s.packets.to_be_bytes());
        out.extend_from_slice(&s.octets.to_be_bytes());
    }
    if let Some(b) = block {
        out.extend_from_slice(&b.ssrc.to_be_bytes());
        let lost = b.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.extend_from_slice(&(u32::from(b.fraction_lost) << 24 | lost).to_be_bytes());
        out.extend_from_slice(&b.highest_seq.to_be_bytes());
        out.extend_from_slice(&b.jitter.to_be_bytes());
        out.extend_from_slice(&b.last_sr.to_be_bytes());
        out.extend_from_slice(&b.delay_since_last_sr.to_be_bytes());
    }
}

fn push_sdes(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC, CNAME item (type, length, text), end-of-list, padded to a 32-bit boundary.
    let chunk = 4 + 2 + cname.len() + 1;
    let padded = chunk.div_ceil(4) * 4;
    rtcp_header(out, 1, 202, padded / 4);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1);
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk + 1, 0);
}

/// Writes a compound RTCP report into `out` (cleared first): an SR when `sender` is given
/// (we sent RTP since the last report), else an RR; then SDES with our CNAME (every compound
/// packet carries one, RFC 3550 §6.1).
pub fn write_report(
    out: &mut Vec<u8>,
    ssrc: u32,
    sender: Option<&SenderInfo>,
    block: Option<&ReportBlock>,
    cname: &str,
) {
    out.clear();
    push_report(out, ssrc, sender, block);
    push_sdes(out, ssrc, cname);
}

/// Writes a compound RTCP BYE into `out` (cleared first): an empty RR, SDES CNAME, BYE.
pub fn write_bye(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    out.clear();
    push_report(out, ssrc, None, None);
    push_sdes(out, ssrc, cname);
    rtcp_header(out, 1, 203, 1);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// What the gateway reads from a received compound RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpSummary {
    /// The SSRC of the first SR or RR (the sender of the compound packet).
    pub sender_ssrc: u32,
    /// The middle 32 bits of the NTP timestamp when the first packet is an SR.
    pub sr_ntp_middle: Option<u32>,
    /// Whether the compound packet contains a BYE.
    pub bye: bool,
}

/// Parses a compound RTCP packet far enough for [`RtcpSummary`], checking every part's length.
pub fn parse_rtcp(buf: &[u8]) -> Result<RtcpSummary, PacketError> {
    let mut at = 0;
    let mut summary: Option<RtcpSummary> = None;
    while at < buf.len() {
        let part = buf.get(at..at + 4).ok_or(PacketError::Truncated)?;
        if part[0] >> 6 != 2 {
            return Err(PacketError::Version);
        }
        let len = 4 * (usize::from(u16::from_be_bytes([part[2], part[3]])) + 1);
        let body = buf.get(at..at + len).ok_or(PacketError::Truncated)?;
        let packet_type = part[1];
        match &mut summary {
            None => {
                if !matches!(packet_type, 200 | 201) || body.len() < 8 {
                    return Err(PacketError::NotReport);
                }
                let ssrc = u32::from_be_bytes([body[4], body[5], body[6], body[7]]);
                let sr_ntp_middle = if packet_type == 200 {
                    let ntp = body.get(8..16).ok_or(PacketError::Truncated)?;
                    Some(u32::from_be_bytes([ntp[2], ntp[3], ntp[4], ntp[5]]))
                } else {
                    None
                };
                summary = Some(RtcpSummary {
                    sender_ssrc: ssrc,
                    sr_ntp_middle,
                    bye: false,
                });
            }
            Some(s) => s.bye |= packet_type == 203,
        }
        at += len;
    }
    summary.ok_or(PacketError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_round_trip_and_marker() {
        let h = RtpHeader {
            marker: true,
            payload_type: 101,
            seq: 0xfffe,
            timestamp: 0xdead_beef,
            ssrc: 0x0102_0304,
        };
        let mut buf = Vec::new();
        write_rtp(&mut buf, &h, &[1, 2, 3, 4]);
        assert_eq!(&buf[..2], &[0x80, 0x80 | 101]);
        let (p, range) = parse_rtp(&buf).unwrap();
        assert_eq!(p, h);
        assert_eq!(&buf[range], &[1, 2, 3, 4]);
    }

    #[test]
    fn rtp_with_csrc_extension_and_padding() {
        // V=2 P=1 X=1 CC=1, PT 0; one CSRC; extension of one word; payload 2 bytes; 2 of padding.
        let mut buf = vec![0xb1, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 9];
        buf.extend_from_slice(&[0, 0, 0, 5]); // CSRC
        buf.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xaa, 0, 0]); // extension
        buf.extend_from_slice(&[0x55, 0x66, 0, 2]); // payload + padding
        let (h, range) = parse_rtp(&buf).unwrap();
        assert_eq!((h.seq, h.timestamp, h.ssrc), (1, 160, 9));
        assert_eq!(&buf[range], &[0x55, 0x66]);
    }

    #[test]
    fn bad_rtp_is_an_error_not_a_panic() {
        assert_eq!(parse_rtp(&[0x80; 11]), Err(PacketError::Truncated));
        assert_eq!(parse_rtp(&[0x40; 12]), Err(PacketError::Version));
        let mut csrc = vec![0x8f; 12];
        csrc[1] = 0;
        assert_eq!(parse_rtp(&csrc), Err(PacketError::Truncated));
        let mut ext = vec![
            0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0xff, 0xff,
        ];
        assert_eq!(parse_rtp(&ext), Err(PacketError::Truncated));
        ext.truncate(13);
        assert_eq!(parse_rtp(&ext), Err(PacketError::Truncated));
        let mut pad = vec![0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert_eq!(parse_rtp(&pad), Err(PacketError::Padding));
        *pad.last_mut().unwrap() = 0;
        assert_eq!(parse_rtp(&pad), Err(PacketError::Padding));
        // Arbitrary bytes never panic.
        for len in 0..40 {
            for seed in 0..=255u8 {
                let b: Vec<u8> = (0..len)
                    .map(|i| {
                        seed.wrapping_mul(31)
                            .wrapping_add((i as u8).wrapping_mul(7))
                    })
                    .collect();
                let _ = parse_rtp(&b);
                let _ = parse_rtcp(&b);
            }
        }
    }

    #[test]
    fn report_and_bye_parse_back() {
        let sender = SenderInfo {
            ntp: 0x1122_3344_5566_7788,
            rtp_timestamp: 8000,
            packets: 50,
            octets: 8000,
        };
        let block = ReportBlock {
            ssrc: 77,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 5,
            last_sr: 0x3344_5566,
            delay_since_last_sr: 65536,
        };
        let mut buf = Vec::new();
        write_report(&mut buf, 9, Some(&sender), Some(&block), "siptoken@gw");
        assert_eq!(buf.len() % 4, 0);
        assert_eq!(buf[1], 200);
        // SR: header + SSRC + 20 bytes sender info + 24 bytes block = 52 bytes.
        assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), 12);
        assert_eq!(&buf[32..36], &[12, 0xff, 0xff, 0xfd]);
        let s = parse_rtcp(&buf).unwrap();
        assert_eq!(s.sender_ssrc, 9);
        assert_eq!(s.sr_ntp_middle, Some(0x3344_5566));
        assert!(!s.bye);

        write_report(&mut buf, 9, None, None, "x");
        assert_eq!((buf[0], buf[1]), (0x80, 201));
        assert!(is_rtcp(&buf));
        assert_eq!(parse_rtcp(&buf).unwrap().sr_ntp_middle, None);

        write_bye(&mut buf, 9, "siptoken");
        assert!(parse_rtcp(&buf).unwrap().bye);
        let rtp = [0x80, 0, 0, 0];
        assert!(!is_rtcp(&rtp));
        // A compound packet must start with a report.
        assert_eq!(parse_rtcp(&buf[8..]), Err(PacketError::NotReport));
    }
}
