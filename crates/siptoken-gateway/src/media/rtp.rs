//! The SIP leg's RTP and RTCP, sans-IO: which datagrams are accepted, reception statistics, our
//! RTCP reports, and the media timeout. The session owns the sockets (a port pair from
//! `rtp_ports`, see `ports`) and feeds this state machine.
//!
//! **Symmetric RTP, strictly.** RTP is sent only to the address the far end's SDP names, and
//! accepted only from that same address (RFC 4961): a datagram from anywhere else is dropped and
//! counted, never relayed, and never changes where the gateway sends. The first packet from the
//! signalled address "latches" the leg (reported once as media started). A new SDP (re-INVITE)
//! re-arms the latch with its own address. Far ends that send from another port than the one
//! they signal are not supported: PBXes and SBCs send symmetric RTP, and learning the address
//! from traffic would let anyone who can guess the port pair redirect a call's audio.
//!
//! **RTCP.** The gateway terminates RTCP on this leg rather than passing it through: sequence
//! numbers, timestamps and SSRCs are rewritten by the relay, so the browser's reports would
//! describe a stream the far end never saw (and the browser's RTCP is SRTCP inside str0m). It
//! sends its own compound reports (RFC 3550 §6: SR when it sent RTP since the last report, else
//! RR; one report block about the far end's stream; SDES CNAME) every 5 s on average (randomised
//! 0.5–1.5×, the first after half that), and an RTCP BYE when the call ends. From the far end's
//! RTCP it reads the SR timestamp (for the LSR/DLSR fields) and BYE.
//!
//! **Media timeout.** Once armed (the call layer arms it when the call is established), no RTP
//! from the far end for `media_timeout_seconds` while the far end is expected to send (its
//! direction lets it send and ours lets us receive, i.e. not during a hold) is reported once.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::packet::{self, ReportBlock, RtpHeader, SenderInfo};
use super::relay::Inbound;

/// Average RTCP report interval (RFC 3550 §6.2 minimum).
const REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Counters of one SIP leg.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SipLegStats {
    /// RTP packets accepted.
    pub rtp_received: u64,
    /// RTCP packets accepted.
    pub rtcp_received: u64,
    /// Datagrams dropped because they came from an address the SDP did not name.
    pub unexpected_source: u64,
    /// Datagrams dropped because they were not RTP/RTCP.
    pub malformed: u64,
    /// RTCP reports sent.
    pub reports_sent: u64,
}

/// Why an RTP datagram was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// From an address the far end's SDP did not name (or no address is known yet).
    UnexpectedSource,
    /// Not an RTP packet.
    Malformed,
}

/// An accepted RTP packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its header.
    pub header: RtpHeader,
    /// Its sequence number extended with the rollovers seen.
    pub seq: u64,
    /// Where its payload is in the datagram.
    pub payload: Range<usize>,
    /// Whether it is the first packet from the far end (the leg just latched).
    pub first: bool,
}

impl Accepted {
    /// The packet for the relay, its payload in `datagram` (the one it was accepted from).
    pub fn inbound<'a>(&self, datagram: &'a [u8]) -> Inbound<'a> {
        Inbound {
            ssrc: self.header.ssrc,
            seq: self.seq,
            timestamp: self.header.timestamp,
            marker: self.header.marker,
            payload_type: self.header.payload_type,
            payload: &datagram[self.payload.clone()],
        }
    }
}

/// Reception state of the far end's current stream (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Clone)]
struct Reception {
    ssrc: u32,
    /// Extended highest sequence number; counting starts at 65536 so early reordering cannot
    /// go below zero.
    max: u64,
    base: u64,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Interarrival jitter, timestamp units, scaled by 16.
    jitter16: u64,
    transit: Option<i64>,
}

impl Reception {
    fn new(ssrc: u32, seq: u16) -> Reception {
        let ext = 65_536 + u64::from(seq);
        Reception {
            ssrc,
            max: ext,
            base: ext,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            jitter16: 0,
            transit: None,
        }
    }

    /// The extended number of `seq`: the candidate (this cycle, the next, the previous)
    /// closest to the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let cycle = self.max & !0xffff;
        let here = cycle | u64::from(seq);
        [here, here + 65_536, here.saturating_sub(65_536)]
            .into_iter()
            .min_by_key(|&c| c.abs_diff(self.max))
            .unwrap_or(here)
    }

    fn update(&mut self, seq: u16, timestamp: u32, arrival: u32) -> u64 {
        let ext = self.extend(seq);
        self.max = self.max.max(ext);
        self.base = self.base.min(ext);
        self.received += 1;
        // Jitter: transit time difference, in timestamp units (RFC 3550 A.8).
        let transit = i64::from(arrival.wrapping_sub(timestamp) as i32);
        if let Some(prev) = self.transit {
            let d = (transit - prev).unsigned_abs();
            self.jitter16 = self.jitter16 + d - ((self.jitter16 + 8) >> 4);
        }
        self.transit = Some(transit);
        ext
    }

    fn block(&mut self, last_sr: Option<(u32, Instant)>, now: Instant) -> ReportBlock {
        let expected = self.max - self.base + 1;
        let lost = expected as i64 - self.received as i64;
        let expected_interval = expected - self.expected_prior;
        let received_interval = self.received - self.received_prior;
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = (lost_interval << 8)
            .checked_div(expected_interval)
            .unwrap_or(0)
            .min(255) as u8;
        let (lsr, dlsr) = match last_sr {
            Some((middle, at)) => {
                let d = now.saturating_duration_since(at);
                (middle, (d.as_micros() * 65_536 / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: lost.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            highest_seq: (self.max - 65_536) as u32,
            jitter: (self.jitter16 >> 4) as u32,
            last_sr: lsr,
            delay_since_last_sr: dlsr,
        }
    }
}

/// The NTP timestamp (RFC 5905, 32.32 fixed point since 1900) of a wall-clock time.
pub fn ntp_timestamp(t: SystemTime) -> u64 {
    const EPOCH_DELTA: u64 = 2_208_988_800;
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    ((d.as_secs() + EPOCH_DELTA) << 32) | frac
}

/// The SIP leg.
#[derive(Debug)]
pub struct SipLeg {
    ssrc: u32,
    cname: String,
    started: Instant,
    remote_rtp: Option<SocketAddr>,
    remote_rtcp: Option<SocketAddr>,
    latched: bool,
    rx: Option<Reception>,
    last_sr: Option<(u32, Instant)>,
    // What we sent: for SR sender info.
    packets_sent: u32,
    octets_sent: u32,
    last_sent: Option<(u32, Instant)>,
    sent_since_report: bool,
    next_report: Instant,
    timeout: Option<Duration>,
    armed: bool,
    expect_media: bool,
    last_rtp: Instant,
    timed_out: bool,
    stats: SipLegStats,
}

fn jittered(base: Duration) -> Duration {
    base.mul_f64(0.5 + rand::random::<f64>())
}

impl SipLeg {
    /// A leg sending with `ssrc` and `cname`; `timeout` is the media timeout (`None`: never).
    pub fn new(now: Instant, ssrc: u32, cname: String, timeout: Option<Duration>) -> SipLeg {
        SipLeg {
            ssrc,
            cname,
            started: now,
            remote_rtp: None,
            remote_rtcp: None,
            latched: false,
            rx: None,
            last_sr: None,
            packets_sent: 0,
            octets_sent: 0,
            last_sent: None,
            sent_since_report: false,
            next_report: now + jittered(REPORT_INTERVAL / 2),
            timeout,
            armed: false,
            expect_media: false,
            last_rtp: now,
            timed_out: false,
            stats: SipLegStats::default(),
        }
    }

    /// Our SSRC on this leg.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Sets the far end's addresses from its SDP (`None`: it wants no media). A different RTP
    /// address re-arms the latch.
    pub fn set_remote(&mut self, rtp: Option<SocketAddr>, rtcp: Option<SocketAddr>) {
        if rtp != self.remote_rtp {
            self.latched = false;
        }
        self.remote_rtp = rtp;
        self.remote_rtcp = rtcp;
    }

    /// Where RTP goes, if anywhere.
    pub fn rtp_destination(&self) -> Option<SocketAddr> {
        self.remote_rtp
    }

    /// Whether the far end is expected to send (the negotiated direction); while it is not,
    /// the media timeout waits. Becoming expected again restarts the wait.
    pub fn set_expect_media(&mut self, now: Instant, expect: bool) {
        if expect && !self.expect_media {
            self.last_rtp = now;
        }
        self.expect_media = expect;
    }

    /// Arms the media timeout (the call is established): from now, a silent far end is reported.
    pub fn arm_timeout(&mut self, now: Instant) {
        if !self.armed {
            self.armed = true;
            self.last_rtp = now;
        }
    }

    /// Takes an RTP datagram from `source`.
    pub fn on_rtp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        buf: &[u8],
    ) -> Result<Accepted, Rejected> {
        if Some(source) != self.remote_rtp {
            self.stats.unexpected_source += 1;
            return Err(Rejected::UnexpectedSource);
        }
        let (header, payload) = match packet::parse_rtp(buf) {
            Ok(p) if !packet::is_rtcp(buf) => p,
            _ => {
                self.stats.malformed += 1;
                return Err(Rejected::Malformed);
            }
        };
        let arrival = (now.saturating_duration_since(self.started).as_micros() * 8 / 1000) as u32;
        let rx = match &mut self.rx {
            Some(rx) if rx.ssrc == header.ssrc => rx,
            slot => slot.insert(Reception::new(header.ssrc, header.seq)),
        };
        let seq = rx.update(header.seq, header.timestamp, arrival);
        self.stats.rtp_received += 1;
        self.last_rtp = now;
        let first = !self.latched;
        self.latched = true;
        Ok(Accepted {
            header,
            seq,
            payload,
            first,
        })
    }

    /// Takes an RTCP datagram from `source` (accepted from the signalled RTCP address or the
    /// far end's RTP address's host).
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        source: SocketAddr,
        buf: &[u8],
    ) -> Result<(), Rejected> {
        let from_far_end = Some(source) == self.remote_rtcp
            || self.remote_rtp.is_some_and(|r| r.ip() == source.ip());
        if !from_far_end {
            self.stats.unexpected_source += 1;
            return Err(Rejected::UnexpectedSource);
        }
        match packet::parse_rtcp(buf) {
            Ok(s) => {
                self.stats.rtcp_received += 1;
                if let Some(middle) = s.sr_ntp_middle {
                    self.last_sr = Some((middle, now));
                }
                Ok(())
            }
            Err(_) => {
                self.stats.malformed += 1;
                Err(Rejected::Malformed)
            }
        }
    }

    /// Records an RTP packet we sent (for the SR's sender info).
    pub fn on_sent(&mut self, now: Instant, timestamp: u32, payload_len: usize) {
        self.packets_sent = self.packets_sent.wrapping_add(1);
        self.octets_sent = self.octets_sent.wrapping_add(payload_len as u32);
        self.last_sent = Some((timestamp, now));
        self.sent_since_report = true;
    }

    /// The RTCP report due at `now` (`wall` is the wall-clock time for the SR's NTP
    /// timestamp), written into `out`; returns where to send it.
    pub fn poll_report(
        &mut self,
        now: Instant,
        wall: SystemTime,
        out: &mut Vec<u8>,
    ) -> Option<SocketAddr> {
        if now < self.next_report {
            return None;
        }
        self.next_report = now + jittered(REPORT_INTERVAL);
        let to = self.remote_rtcp?;
        let sender = match self.last_sent.filter(|_| self.sent_since_report) {
            Some((ts, at)) => Some(SenderInfo {
                ntp: ntp_timestamp(wall),
                rtp_timestamp: ts.wrapping_add(
                    (now.saturating_duration_since(at).as_micros() * 8 / 1000) as u32,
                ),
                packets: self.packets_sent,
                octets: self.octets_sent,
            }),
            None => None,
        };
        self.sent_since_report = false;
        let last_sr = self.last_sr;
        let block = self.rx.as_mut().map(|rx| rx.block(last_sr, now));
        packet::write_report(out, self.ssrc, sender.as_ref(), block.as_ref(), &self.cname);
        self.stats.reports_sent += 1;
        Some(to)
    }

    /// An RTCP BYE for the end of the call, written into `out`; returns where to send it.
    pub fn bye(&self, out: &mut Vec<u8>) -> Option<SocketAddr> {
        let to = self.remote_rtcp?;
        packet::write_bye(out, self.ssrc, &self.cname);
        Some(to)
    }

    /// Whether the media timeout has just expired (reported once).
    pub fn poll_timeout(&mut self, now: Instant) -> bool {
        match self.timeout_deadline() {
            Some(at) if now >= at => {
                self.timed_out = true;
                true
            }
            _ => false,
        }
    }

    fn timeout_deadline(&self) -> Option<Instant> {
        let timeout = self.timeout?;
        (self.armed && self.expect_media && !self.timed_out).then(|| self.last_rtp + timeout)
    }

    /// The next time [`SipLeg::poll_report`] or [`SipLeg::poll_timeout`] has something.
    pub fn next_deadline(&self) -> Instant {
        match self.timeout_deadline() {
            Some(t) => t.min(self.next_report),
            None => self.next_report,
        }
    }

    /// This leg's counters.
    pub fn stats(&self) -> SipLegStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::packet::{parse_rtcp, write_rtp};

    fn rtp(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut b = Vec::new();
        let h = RtpHeader {
            marker: false,
            payload_type: 0,
            seq,
            timestamp: ts,
            ssrc,
        };
        write_rtp(&mut b, &h, &[0xff; 160]);
        b
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn accepts_only_the_signalled_address_and_latches_once() {
        let t0 = Instant::now();
        let mut leg = SipLeg::new(t0, 1, "gw".into(), None);
        let far = addr("192.0.2.7:4000");
        // Nothing is known yet: everything is unexpected.
        assert_eq!(
            leg.on_rtp(t0, far, &rtp(1, 0, 5)),
            Err(Rejected::UnexpectedSource)
        );
        leg.set_remote(Some(far), Some(addr("192.0.2.7:4001")));
        assert_eq!(leg.rtp_destination(), Some(far));
        for wrong in ["192.0.2.8:4000", "192.0.2.7:4002", "[::1]:4000"] {
            assert_eq!(
                leg.on_rtp(t0, addr(wrong), &rtp(1, 0, 5)),
                Err(Rejected::UnexpectedSource)
            );
        }
        let a = leg.on_rtp(t0, far, &rtp(1, 0, 5)).unwrap();
        assert!(a.first);
        assert_eq!(a.payload.len(), 160);
        assert!(!leg.on_rtp(t0, far, &rtp(2, 160, 5)).unwrap().first);
        // The unexpected address never became the destination.
        assert_eq!(leg.rtp_destination(), Some(far));
        assert_eq!(leg.on_rtp(t0, far, &[0x80, 0, 1]), Err(Rejected::Malformed));
        let mut rr = Vec::new();
        packet::write_report(&mut rr, 5, None, None, "x");
        assert_eq!(leg.on_rtp(t0, far, &rr), Err(Rejected::Malformed));
        assert_eq!(leg.stats().unexpected_source, 4);
        assert_eq!(leg.stats().rtp_received, 2);
        // A re-INVITE naming another address re-arms the latch.
        let moved = addr("192.0.2.9:5000");
        leg.set_remote(Some(moved), None);
        assert_eq!(
            leg.on_rtp(t0, far, &rtp(3, 320, 5)),
            Err(Rejected::UnexpectedSource)
        );
        assert!(leg.on_rtp(t0, moved, &rtp(3, 320, 5)).unwrap().first);
        // Hold by c=0.0.0.0: nothing accepted, nothing sent.
        leg.set_remote(None, None);
        assert_eq!(leg.rtp_destination(), None);
        assert!(leg.on_rtp(t0, moved, &rtp(4, 480, 5)).is_err());
    }

    #[test]
    fn sequence_numbers_are_extended_across_rollover() {
        let t0 = Instant::now();
        let mut leg = SipLeg::new(t0, 1, "gw".into(), None);
        let far = addr("192.0.2.7:4000");
        leg.set_remote(Some(far), None);
        let seqs: Vec<u64> = [65_534u16, 65_535, 0, 65_533, 1, 2]
            .iter()
            .map(|&s| leg.on_rtp(t0, far, &rtp(s, 0, 5)).unwrap().seq)
            .collect();
        let base = seqs[0];
        let rel: Vec<i64> = seqs.iter().map(|&s| s as i64 - base as i64).collect();
        assert_eq!(rel, [0, 1, 2, -1, 3, 4]);
    }

    #[test]
    fn reports_describe_reception_and_sending() {
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let mut leg = SipLeg::new(t0, 0xabc, "siptoken".into(), None);
        let far = addr("192.0.2.7:4000");
        let far_rtcp = addr("192.0.2.7:4001");
        leg.set_remote(Some(far), Some(far_rtcp));
        let mut out = Vec::new();
        assert_eq!(leg.poll_report(t0, wall, &mut out), None, "not due yet");
        // 10 packets expected (100..=109), 8 received, 20 ms apart.
        for (i, s) in [100u16, 101, 102, 104, 105, 106, 108, 109]
            .iter()
            .enumerate()
        {
            let at = t0 + Duration::from_millis(20 * i as u64);
            leg.on_rtp(at, far, &rtp(*s, u32::from(*s) * 160, 9))
                .unwrap();
        }
        // Their SR arrives.
        let mut sr = Vec::new();
        let info = SenderInfo {
            ntp: 0x0000_1234_5678_0000,
            rtp_timestamp: 0,
            packets: 1,
            octets: 1,
        };
        packet::write_report(&mut sr, 9, Some(&info), None, "far");
        leg.on_rtcp(t0, far_rtcp, &sr).unwrap();
        assert_eq!(
            leg.on_rtcp(t0, addr("198.51.100.1:4001"), &sr),
            Err(Rejected::UnexpectedSource)
        );
        leg.on_sent(t0, 1000, 160);
        let due = leg.next_deadline();
        assert!(due <= t0 + Duration::from_millis(3750) && due >= t0 + Duration::from_millis(1250));
        assert_eq!(leg.poll_report(due, wall, &mut out), Some(far_rtcp));
        // An SR (we sent) with one report block.
        assert_eq!(out[1], 200);
        assert_eq!(parse_rtcp(&out).unwrap().sender_ssrc, 0xabc);
        let block = &out[28..52];
        assert_eq!(u32::from_be_bytes(block[0..4].try_into().unwrap()), 9);
        assert_eq!(u32::from(block[4]), 2 * 256 / 10, "fraction lost");
        assert_eq!(&block[5..8], &[0, 0, 2], "cumulative lost");
        assert_eq!(u32::from_be_bytes(block[8..12].try_into().unwrap()), 109);
        assert_eq!(
            u32::from_be_bytes(block[16..20].try_into().unwrap()),
            0x1234_5678,
            "LSR"
        );
        assert!(
            u32::from_be_bytes(block[20..24].try_into().unwrap()) > 0,
            "DLSR"
        );
        // Next report: nothing sent since, so an RR.
        let due = leg.next_deadline();
        assert!(due >= t0 + Duration::from_millis(3750));
        leg.poll_report(due, wall, &mut out).unwrap();
        assert_eq!(out[1], 201);
        assert_eq!(leg.stats().reports_sent, 2);
        assert_eq!(leg.bye(&mut out), Some(far_rtcp));
        assert!(parse_rtcp(&out).unwrap().bye);
    }

    #[test]
    fn media_timeout_only_when_armed_and_expected() {
        let t0 = Instant::now();
        let secs = Duration::from_secs;
        let mut leg = SipLeg::new(t0, 1, "gw".into(), Some(secs(30)));
        let far = addr("192.0.2.7:4000");
        leg.set_remote(Some(far), None);
        leg.set_expect_media(t0, true);
        // Not armed (ringing): no timeout however long.
        assert!(!leg.poll_timeout(t0 + secs(100)));
        leg.arm_timeout(t0 + secs(100));
        assert!(!leg.poll_timeout(t0 + secs(129)));
        leg.on_rtp(t0 + secs(125), far, &rtp(1, 0, 5)).unwrap();
        assert!(!leg.poll_timeout(t0 + secs(154)));
        assert!(leg.next_deadline() <= t0 + secs(155));
        // On hold nobody expects media.
        leg.set_expect_media(t0 + secs(150), false);
        assert!(!leg.poll_timeout(t0 + secs(1000)));
        // Resumed: a full timeout from the resume.
        leg.set_expect_media(t0 + secs(1000), true);
        assert!(!leg.poll_timeout(t0 + secs(1029)));
        assert!(leg.poll_timeout(t0 + secs(1030)));
        assert!(!leg.poll_timeout(t0 + secs(1031)), "reported once");
        // No timeout configured.
        let mut never = SipLeg::new(t0, 1, "gw".into(), None);
        never.set_expect_media(t0, true);
        never.arm_timeout(t0);
        assert!(!never.poll_timeout(t0 + secs(100_000)));
    }

    #[test]
    fn ntp_of_the_unix_epoch() {
        assert_eq!(ntp_timestamp(UNIX_EPOCH), 2_208_988_800 << 32);
        let half = UNIX_EPOCH + Duration::from_millis(500);
        assert_eq!(ntp_timestamp(half) & 0xffff_ffff, 1 << 31);
    }
}
