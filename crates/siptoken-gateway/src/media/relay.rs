//! The relay between a call's two legs, sans-IO: RTP packets in (already decrypted, already
//! checked for their source), RTP packets out, time given by the caller.
//!
//! Each direction is a [`Path`]. The payload passes through untouched; the packet around it is
//! rebuilt: the outgoing stream has its own SSRC (the sending leg's), and sequence numbers and
//! timestamps are the incoming ones plus an offset per direction, so gaps and reordering survive.
//! The offsets are chosen afresh ("rebase") when the incoming SSRC changes, when the sequence
//! jumps (RFC 3550 A.1 limits), after injected DTMF, and when sending resumes after a hold:
//! the outgoing numbers then continue from the last packet sent — the timestamp advanced by the
//! wall-clock time since — and the first packet carries the marker bit, so the receiver's jitter
//! buffer sees one continuous stream with a new talkspurt.
//!
//! A packet older than the one a rebase started from has no number left to map to (those before
//! it were already sent) and is dropped. At the very start of a direction, though, nothing has
//! been sent yet: there the first packet is numbered [`START_HEADROOM`] above the start, so
//! packets reordered behind it (seen at call set-up under load) still find a place in front.
//!
//! Payload types: PCMU (0) and PCMA (8) pass when the receiving leg accepts the law; otherwise
//! (an outgoing call whose far end answered with the other law only) the payload is re-encoded
//! byte by byte (see `g711`). RFC 4733 telephone events pass with the payload type each leg
//! negotiated (e.g. 126 from Chrome, 101 towards a PBX). Anything else (comfort noise, a codec
//! the leg did not negotiate) is dropped and counted.

use std::time::Instant;

use super::dtmf::{self, DtmfError, DtmfSender};
use super::g711::{self, Law};
use super::packet::RtpHeader;

/// RFC 3550 A.1: a sequence number this far ahead of the newest is a restart, not loss.
const MAX_DROPOUT: u64 = 3000;
/// RFC 3550 A.1: this far behind the newest is a restart, not reordering.
const MAX_MISORDER: u64 = 100;
/// How many packets reordered behind a direction's very first one are still relayed
/// (320 ms of 20 ms packets). The receiver has seen nothing before the first packet, so the
/// numbers skipped are not a gap to it.
pub const START_HEADROOM: u64 = 16;

/// The two legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leg {
    /// The WebRTC leg to the browser.
    Browser,
    /// The RTP leg to the SIP far end.
    Sip,
}

/// An RTP packet entering the relay.
#[derive(Debug, Clone, Copy)]
pub struct Inbound<'a> {
    /// Its SSRC.
    pub ssrc: u32,
    /// Its extended sequence number (rollovers counted).
    pub seq: u64,
    /// Its timestamp.
    pub timestamp: u32,
    /// Its marker bit.
    pub marker: bool,
    /// Its payload type.
    pub payload_type: u8,
    /// Its payload.
    pub payload: &'a [u8],
}

/// An RTP packet to send on the other leg (with that leg's SSRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outbound<'a> {
    /// Extended sequence number (the low 16 bits go on the wire; starts below 32768, so a
    /// new SRTP receiver's rollover counter is right without signalling).
    pub seq: u64,
    /// Timestamp.
    pub timestamp: u32,
    /// Marker bit.
    pub marker: bool,
    /// Payload type, in the receiving leg's numbering.
    pub payload_type: u8,
    /// Payload.
    pub payload: &'a [u8],
}

impl Outbound<'_> {
    /// Its RTP header, sent with the sending leg's `ssrc`.
    pub fn header(&self, ssrc: u32) -> RtpHeader {
        RtpHeader {
            marker: self.marker,
            payload_type: self.payload_type,
            seq: self.seq as u16,
            timestamp: self.timestamp,
            ssrc,
        }
    }
}

/// What a leg accepts: the G.711 laws (the first is the one converted to when needed) and the
/// telephone-event payload types it receives events on and sends them with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegCodecs {
    /// Laws the leg receives, preferred first; empty until negotiated.
    pub laws: Vec<Law>,
    /// The payload type to send telephone events to this leg with.
    pub telephone_event_send: Option<u8>,
    /// Payload types this leg's events arrive with (its own, and the type it was told to
    /// send with, in case it uses that one).
    pub telephone_event_receive: Vec<u8>,
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Packets sent on (relayed and injected).
    pub packets: u64,
    /// Payload bytes sent on.
    pub bytes: u64,
    /// Packets whose G.711 payload was re-encoded in the other law.
    pub converted: u64,
    /// Telephone-event packets relayed.
    pub events_relayed: u64,
    /// Telephone-event packets generated (the `dtmf` message).
    pub events_injected: u64,
    /// Packets dropped because this direction is not sending (hold).
    pub dropped_not_sending: u64,
    /// Packets dropped because the receiving leg has no such codec (or no telephone-event).
    pub dropped_codec: u64,
    /// Packets dropped while injected DTMF plays (the generated events take their place).
    pub dropped_dtmf: u64,
    /// Packets dropped as late: older than the start of their stream (no number left to map
    /// them to), or from a source just replaced by another.
    pub dropped_late: u64,
}

/// Sequence number and timestamp mapping of one direction.
#[derive(Debug, Clone)]
struct StreamMap {
    source: Option<u32>,
    seq_offset: u64,
    ts_offset: u32,
    /// Inputs older than this (beyond reordering) are from before the last rebase.
    floor: u64,
    newest_in: u64,
    /// Highest sequence number sent.
    last_seq: u64,
    /// Timestamp of that packet, and when it was sent.
    last_ts: u32,
    last_at: Option<Instant>,
    rebase: bool,
    /// The source replaced by the last switch, and until when its late packets are dropped.
    retired: Option<(u32, Instant)>,
}

/// How long packets of a replaced source are taken as late ones and dropped.
const RETIRED_FOR: std::time::Duration = std::time::Duration::from_secs(1);

fn samples_between(from: Instant, to: Instant) -> u32 {
    // 8000 Hz; a packet's worth at least, so the new timestamp is later than the last.
    let us = to.saturating_duration_since(from).as_micros();
    ((us * 8 / 1000) as u32).max(160)
}

impl StreamMap {
    fn new() -> StreamMap {
        StreamMap {
            source: None,
            seq_offset: 0,
            ts_offset: 0,
            floor: 0,
            newest_in: 0,
            last_seq: u64::from(rand::random::<u16>() & 0x3fff),
            last_ts: rand::random(),
            last_at: None,
            rebase: true,
            retired: None,
        }
    }

    /// The timestamp the stream is at now.
    fn current_ts(&self, now: Instant) -> u32 {
        match self.last_at {
            Some(at) => self.last_ts.wrapping_add(samples_between(at, now)),
            None => self.last_ts,
        }
    }

    fn map(&mut self, now: Instant, p: &Inbound<'_>) -> Option<(u64, u32, bool)> {
        if let Some((old, until)) = self.retired {
            if p.ssrc == old && now < until {
                return None;
            }
        }
        let restart = p.seq > self.newest_in.saturating_add(MAX_DROPOUT)
            || p.seq.saturating_add(MAX_MISORDER) < self.floor;
        let mut marker = p.marker;
        if self.rebase || self.source != Some(p.ssrc) || restart {
            // Nothing sent yet in this direction (a relayed or injected packet sets `last_at`).
            let headroom = if self.last_at.is_none() {
                START_HEADROOM
            } else {
                0
            };
            let seq = self.last_seq + 1 + headroom;
            let ts = self.current_ts(now);
            if let Some(old) = self.source.filter(|&old| old != p.ssrc) {
                self.retired = Some((old, now + RETIRED_FOR));
            }
            self.seq_offset = seq.wrapping_sub(p.seq);
            self.ts_offset = ts.wrapping_sub(p.timestamp);
            self.source = Some(p.ssrc);
            self.floor = p.seq.saturating_sub(headroom);
            self.newest_in = p.seq;
            self.rebase = false;
            marker = true;
        } else if p.seq < self.floor {
            return None;
        }
        let seq = p.seq.wrapping_add(self.seq_offset);
        let ts = p.timestamp.wrapping_add(self.ts_offset);
        self.newest_in = self.newest_in.max(p.seq);
        if seq > self.last_seq {
            self.last_seq = seq;
            self.last_ts = ts;
            self.last_at = Some(now);
        }
        Some((seq, ts, marker))
    }

    /// A sequence number for a packet the relay makes itself.
    fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }
}

/// One direction of the relay.
#[derive(Debug)]
pub struct Path {
    map: StreamMap,
    from: LegCodecs,
    to: LegCodecs,
    sending: bool,
    dtmf: DtmfSender,
    /// Timestamp of the event playing.
    dtmf_ts: u32,
    scratch: Vec<u8>,
    event: [u8; 4],
    stats: PathStats,
}

impl Path {
    fn new() -> Path {
        Path {
            map: StreamMap::new(),
            from: LegCodecs::default(),
            to: LegCodecs::default(),
            sending: true,
            dtmf: DtmfSender::default(),
            dtmf_ts: 0,
            scratch: Vec::with_capacity(320),
            event: [0; 4],
            stats: PathStats::default(),
        }
    }

    /// Relays one packet: `None` when it is dropped (counted in [`PathStats`]).
    pub fn forward<'a>(&'a mut self, now: Instant, p: Inbound<'a>) -> Option<Outbound<'a>> {
        if !self.sending {
            self.stats.dropped_not_sending += 1;
            return None;
        }
        if self.dtmf.is_active() {
            self.stats.dropped_dtmf += 1;
            return None;
        }
        enum Kind {
            Pass(u8),
            Convert(Law),
            Event(u8),
        }
        let kind = if let Some(law) = Law::from_payload_type(p.payload_type) {
            if self.to.laws.contains(&law) {
                Kind::Pass(p.payload_type)
            } else if let Some(&target) = self.to.laws.first() {
                Kind::Convert(target)
            } else {
                self.stats.dropped_codec += 1;
                return None;
            }
        } else if self.from.telephone_event_receive.contains(&p.payload_type) {
            match self.to.telephone_event_send {
                Some(pt) => Kind::Event(pt),
                None => {
                    self.stats.dropped_codec += 1;
                    return None;
                }
            }
        } else {
            self.stats.dropped_codec += 1;
            return None;
        };
        let Some((seq, timestamp, marker)) = self.map.map(now, &p) else {
            self.stats.dropped_late += 1;
            return None;
        };
        self.stats.packets += 1;
        self.stats.bytes += p.payload.len() as u64;
        let (payload_type, payload) = match kind {
            Kind::Pass(pt) => (pt, p.payload),
            Kind::Event(pt) => {
                self.stats.events_relayed += 1;
                (pt, p.payload)
            }
            Kind::Convert(target) => {
                self.stats.converted += 1;
                g711::convert(target.other(), p.payload, &mut self.scratch);
                (target.payload_type(), &self.scratch[..])
            }
        };
        Some(Outbound {
            seq,
            timestamp,
            marker,
            payload_type,
            payload,
        })
    }

    /// Starts or stops sending on (the hold hook). Resuming rebases the stream.
    pub fn set_sending(&mut self, sending: bool) {
        if sending && !self.sending {
            self.map.rebase = true;
        }
        if !sending {
            self.dtmf.clear();
        }
        self.sending = sending;
    }

    /// Whether this direction sends.
    pub fn is_sending(&self) -> bool {
        self.sending
    }

    /// Sets what the sending leg sends and the receiving leg accepts.
    pub fn set_codecs(&mut self, from: LegCodecs, to: LegCodecs) {
        self.from = from;
        self.to = to;
    }

    /// Queues DTMF digits to play on this direction as telephone events; relayed audio is held
    /// back until they are done.
    pub fn send_dtmf(&mut self, now: Instant, digits: &str) -> Result<(), DtmfError> {
        let events = dtmf::parse_digits(digits)?;
        if self.to.telephone_event_send.is_none() || !self.sending {
            return Err(DtmfError::NotNegotiated);
        }
        self.dtmf.queue(now, &events);
        Ok(())
    }

    /// When [`Path::poll_dtmf`] has a packet due.
    pub fn next_dtmf_at(&self) -> Option<Instant> {
        self.dtmf.next_at()
    }

    /// The injected telephone-event packet due at `now`, if any.
    pub fn poll_dtmf(&mut self, now: Instant) -> Option<Outbound<'_>> {
        let pt = self.to.telephone_event_send?;
        let packet = self.dtmf.poll(now)?;
        if packet.first {
            self.dtmf_ts = self.map.current_ts(now);
            self.map.last_ts = self.dtmf_ts;
            self.map.last_at = Some(now);
        }
        if !self.dtmf.is_active() {
            // Audio resumes as a new talkspurt after the last event.
            self.map.rebase = true;
        }
        self.event = packet.payload;
        self.stats.packets += 1;
        self.stats.bytes += 4;
        self.stats.events_injected += 1;
        Some(Outbound {
            seq: self.map.next_seq(),
            timestamp: self.dtmf_ts,
            marker: packet.first,
            payload_type: pt,
            payload: &self.event,
        })
    }

    /// This direction's counters.
    pub fn stats(&self) -> PathStats {
        self.stats
    }
}

/// Both directions of one call.
#[derive(Debug)]
pub struct Relay {
    /// Browser → SIP far end.
    pub to_sip: Path,
    /// SIP far end → browser.
    pub to_browser: Path,
    browser: LegCodecs,
    sip: LegCodecs,
}

impl Relay {
    /// A relay with nothing negotiated yet (every packet is dropped until both legs are set).
    pub fn new() -> Relay {
        Relay {
            to_sip: Path::new(),
            to_browser: Path::new(),
            browser: LegCodecs::default(),
            sip: LegCodecs::default(),
        }
    }

    /// The direction towards `leg`.
    pub fn toward(&mut self, leg: Leg) -> &mut Path {
        match leg {
            Leg::Browser => &mut self.to_browser,
            Leg::Sip => &mut self.to_sip,
        }
    }

    /// Sets what the browser leg negotiated.
    pub fn set_browser_codecs(&mut self, codecs: LegCodecs) {
        self.browser = codecs;
        self.apply();
    }

    /// Sets what the SIP leg negotiated.
    pub fn set_sip_codecs(&mut self, codecs: LegCodecs) {
        self.sip = codecs;
        self.apply();
    }

    fn apply(&mut self) {
        self.to_sip
            .set_codecs(self.browser.clone(), self.sip.clone());
        self.to_browser
            .set_codecs(self.sip.clone(), self.browser.clone());
    }
}

impl Default for Relay {
    fn default() -> Relay {
        Relay::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const CHROME_TE: u8 = 126;
    const PBX_TE: u8 = 101;

    fn relay(sip_laws: &[Law], sip_te: Option<u8>) -> Relay {
        let mut r = Relay::new();
        r.set_browser_codecs(LegCodecs {
            laws: vec![Law::Pcmu, Law::Pcma],
            telephone_event_send: Some(CHROME_TE),
            telephone_event_receive: vec![CHROME_TE],
        });
        r.set_sip_codecs(LegCodecs {
            laws: sip_laws.to_vec(),
            telephone_event_send: sip_te,
            telephone_event_receive: sip_te.into_iter().collect(),
        });
        r
    }

    fn pkt(ssrc: u32, seq: u64, ts: u32, pt: u8, payload: &[u8]) -> Inbound<'_> {
        Inbound {
            ssrc,
            seq,
            timestamp: ts,
            marker: false,
            payload_type: pt,
            payload,
        }
    }

    fn owned(o: Option<Outbound<'_>>) -> Option<(u64, u32, bool, u8, Vec<u8>)> {
        o.map(|o| {
            (
                o.seq,
                o.timestamp,
                o.marker,
                o.payload_type,
                o.payload.to_vec(),
            )
        })
    }

    #[test]
    fn payload_passes_untouched_with_offsets_kept() {
        let mut r = relay(&[Law::Pcmu], Some(PBX_TE));
        let t0 = Instant::now();
        let audio = [0x11u8; 160];
        let first = owned(r.to_sip.forward(t0, pkt(7, 1000, 50_000, 0, &audio))).unwrap();
        assert!(first.2, "the first packet starts a talkspurt");
        assert_eq!((first.3, first.4.as_slice()), (0, &audio[..]));
        assert!(first.0 < 32768);
        for i in 1..5u64 {
            let o = owned(
                r.to_sip
                    .forward(t0, pkt(7, 1000 + i, 50_000 + 160 * i as u32, 0, &audio)),
            )
            .unwrap();
            assert_eq!(o.0, first.0 + i);
            assert_eq!(o.1, first.1.wrapping_add(160 * i as u32));
            assert!(!o.2);
        }
        // Loss and reordering are kept: seq 1007 then 1006.
        let a = owned(r.to_sip.forward(t0, pkt(7, 1007, 51_120, 0, &audio))).unwrap();
        let b = owned(r.to_sip.forward(t0, pkt(7, 1006, 50_960, 0, &audio))).unwrap();
        assert_eq!((a.0 - first.0, b.0 - first.0), (7, 6));
        // The marker bit of the source passes.
        let mut m = pkt(7, 1008, 51_280, 0, &audio);
        m.marker = true;
        assert!(r.to_sip.forward(t0, m).unwrap().marker);
        assert_eq!(r.to_sip.stats().packets, 8);
    }

    #[test]
    fn packets_reordered_behind_the_first_one_are_still_relayed() {
        let mut r = relay(&[Law::Pcmu], Some(PBX_TE));
        let t0 = Instant::now();
        let audio = [0x11u8; 160];
        let first = owned(r.to_sip.forward(t0, pkt(7, 70_000, 50_000, 0, &audio))).unwrap();
        assert!(first.0 < 32768);
        // Up to START_HEADROOM packets sent before the first one arrive after it: each keeps
        // its place in front of it, and its timestamp.
        let mut seen = vec![first.0];
        for back in 1..=START_HEADROOM {
            let ts = 50_000 - 160 * back as u32;
            let o = owned(r.to_sip.forward(t0, pkt(7, 70_000 - back, ts, 0, &audio))).unwrap();
            assert_eq!(
                (o.0, o.1),
                (first.0 - back, first.1.wrapping_sub(160 * back as u32))
            );
            seen.push(o.0);
        }
        // One more is older than the room left: dropped, not mapped onto a sent number.
        let too_old = pkt(7, 70_000 - START_HEADROOM - 1, 0, 0, &audio);
        assert!(r.to_sip.forward(t0, too_old).is_none());
        assert_eq!(r.to_sip.stats().dropped_late, 1);
        // The stream goes on after the first packet; no number was used twice.
        let next = owned(r.to_sip.forward(t0, pkt(7, 70_001, 50_160, 0, &audio))).unwrap();
        assert_eq!(next.0, first.0 + 1);
        seen.push(next.0);
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len() as u64, START_HEADROOM + 2);
        // Later rebases (a new source) leave no room: the receiver would see it as a gap.
        let b = owned(r.to_sip.forward(t0, pkt(8, 10, 0, 0, &audio))).unwrap();
        assert_eq!(b.0, next.0 + 1);
        assert!(r.to_sip.forward(t0, pkt(8, 9, 0, 0, &audio)).is_none());
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        let mut r = relay(&[Law::Pcmu], None);
        let t0 = Instant::now();
        let mut outs = Vec::new();
        // Extended input numbers across 16-bit rollover, timestamps across 32-bit rollover.
        for (i, seq) in (65_533u64..65_541).enumerate() {
            let ts = (u32::MAX - 320).wrapping_add(160 * i as u32);
            outs.push(owned(r.to_browser.forward(t0, pkt(9, seq, ts, 0, &[0xff; 160]))).unwrap());
        }
        for w in outs.windows(2) {
            assert_eq!(w[1].0, w[0].0 + 1);
            assert_eq!(w[1].1, w[0].1.wrapping_add(160));
        }
        // The relay's own output wraps too: the low 16 bits are what goes on the wire.
        let mut m = StreamMap::new();
        m.last_seq = 65_534;
        m.last_at = Some(t0);
        m.rebase = true;
        let o: Vec<u16> = (0..4)
            .map(|i| m.map(t0, &pkt(1, 10 + i, 0, 0, &[])).unwrap().0 as u16)
            .collect();
        assert_eq!(o, [65_535, 0, 1, 2]);
    }

    #[test]
    fn a_new_source_continues_the_stream_with_a_marker() {
        let mut r = relay(&[Law::Pcmu], None);
        let t0 = Instant::now();
        let a = owned(r.to_browser.forward(t0, pkt(1, 40_000, 1_000, 0, &[1]))).unwrap();
        // The far end switches streams (e.g. a PBX bridging another party) 100 ms later.
        let t1 = t0 + Duration::from_millis(100);
        let b = owned(r.to_browser.forward(t1, pkt(2, 5, 777, 0, &[2]))).unwrap();
        assert_eq!(b.0, a.0 + 1);
        assert_eq!(b.1, a.1.wrapping_add(800));
        assert!(b.2);
        let c = owned(r.to_browser.forward(t1, pkt(2, 6, 937, 0, &[3]))).unwrap();
        assert_eq!((c.0, c.1, c.2), (b.0 + 1, b.1 + 160, false));
        // A late packet of the old stream is dropped, not mapped onto the new one.
        assert!(r
            .to_browser
            .forward(t1, pkt(1, 40_001, 1_160, 0, &[1]))
            .is_none());
        // A big jump in the same stream (a restarted sender) rebases too.
        let d = owned(r.to_browser.forward(t1, pkt(2, 20_000, 99, 0, &[4]))).unwrap();
        assert_eq!((d.0, d.2), (c.0 + 1, true));
    }

    #[test]
    fn laws_pass_or_convert() {
        // The far end answered PCMA only; the browser sends PCMU.
        let mut r = relay(&[Law::Pcma], None);
        let t0 = Instant::now();
        let mu = [g711::linear_to_ulaw(1000); 160];
        let o = owned(r.to_sip.forward(t0, pkt(1, 1, 0, 0, &mu))).unwrap();
        assert_eq!(o.3, 8);
        assert!((g711::alaw_to_linear(o.4[0]) - 1000).abs() < 64);
        assert_eq!(r.to_sip.stats().converted, 1);
        // The far end's PCMA reaches the browser untouched (the browser takes both).
        let a = [0xd5u8; 160];
        let o = owned(r.to_browser.forward(t0, pkt(2, 1, 0, 8, &a))).unwrap();
        assert_eq!((o.3, o.4.as_slice()), (8, &a[..]));
        // Comfort noise and unknown types are dropped.
        assert!(r
            .to_browser
            .forward(t0, pkt(2, 2, 160, 13, &[0x40]))
            .is_none());
        assert!(r.to_sip.forward(t0, pkt(1, 2, 160, 96, &[1])).is_none());
        assert_eq!(r.to_sip.stats().dropped_codec, 1);
        // Nothing negotiated yet: dropped.
        let mut fresh = Relay::new();
        assert!(fresh.to_sip.forward(t0, pkt(1, 1, 0, 0, &mu)).is_none());
    }

    #[test]
    fn telephone_events_change_payload_type_per_leg() {
        let mut r = relay(&[Law::Pcmu], Some(PBX_TE));
        let t0 = Instant::now();
        let ev = dtmf::payload(5, false, 160);
        let mut start = pkt(1, 10, 8000, CHROME_TE, &ev);
        start.marker = true;
        let o = owned(r.to_sip.forward(t0, start)).unwrap();
        assert_eq!((o.3, o.2, o.4.as_slice()), (PBX_TE, true, &ev[..]));
        let back = owned(r.to_browser.forward(t0, pkt(2, 10, 8000, PBX_TE, &ev))).unwrap();
        assert_eq!(back.3, CHROME_TE);
        assert_eq!(r.to_sip.stats().events_relayed, 1);
        // A far end without telephone-event: browser events are dropped.
        let mut r = relay(&[Law::Pcmu], None);
        assert!(r
            .to_sip
            .forward(t0, pkt(1, 10, 8000, CHROME_TE, &ev))
            .is_none());
        assert_eq!(r.to_sip.send_dtmf(t0, "1"), Err(DtmfError::NotNegotiated));
    }

    #[test]
    fn injected_dtmf_holds_back_audio_and_the_stream_continues() {
        let mut r = relay(&[Law::Pcmu], Some(PBX_TE));
        let t0 = Instant::now();
        let audio = [0x22u8; 160];
        let a = owned(r.to_sip.forward(t0, pkt(1, 100, 0, 0, &audio))).unwrap();
        assert_eq!(r.to_sip.send_dtmf(t0, "1#"), Ok(()));
        assert_eq!(
            r.to_sip.send_dtmf(t0, "x"),
            Err(DtmfError::InvalidDigit('x'))
        );
        let mut events = Vec::new();
        let mut now = t0;
        while let Some(at) = r.to_sip.next_dtmf_at() {
            now = at;
            // Audio arriving meanwhile is not sent.
            assert!(r.to_sip.forward(now, pkt(1, 101, 160, 0, &audio)).is_none());
            events.push(owned(r.to_sip.poll_dtmf(now)).unwrap());
        }
        assert_eq!(events.len(), 14);
        for (i, e) in events.iter().enumerate() {
            assert_eq!(e.0, a.0 + 1 + i as u64, "consecutive sequence numbers");
            assert_eq!(e.3, PBX_TE);
            assert_eq!(e.2, i % 7 == 0, "marker on each event's first packet");
        }
        assert_eq!((events[0].4[0], events[7].4[0]), (1, 11));
        assert!(events[..7].iter().all(|e| e.1 == events[0].1));
        assert_ne!(events[7].1, events[0].1);
        assert_eq!(events[6].4[1] & 0x80, 0x80, "end bit");
        // Audio resumes after the events: next number, a later timestamp, the marker bit.
        let later = now + Duration::from_millis(20);
        let b = owned(r.to_sip.forward(later, pkt(1, 120, 3200, 0, &audio))).unwrap();
        assert_eq!(b.0, events[13].0 + 1);
        assert!(b.2);
        assert!(b.1.wrapping_sub(events[7].1) >= 160);
        assert_eq!(r.to_sip.stats().events_injected, 14);
    }

    #[test]
    fn hold_stops_sending_and_resume_rebases() {
        let mut r = relay(&[Law::Pcmu], Some(PBX_TE));
        let t0 = Instant::now();
        let a = owned(r.to_sip.forward(t0, pkt(1, 1, 0, 0, &[1]))).unwrap();
        r.to_sip.set_sending(false);
        assert!(!r.to_sip.is_sending());
        assert!(r.to_sip.forward(t0, pkt(1, 2, 160, 0, &[1])).is_none());
        assert_eq!(r.to_sip.send_dtmf(t0, "1"), Err(DtmfError::NotNegotiated));
        assert_eq!(r.to_sip.stats().dropped_not_sending, 1);
        r.to_sip.set_sending(true);
        let t1 = t0 + Duration::from_secs(2);
        let b = owned(r.to_sip.forward(t1, pkt(1, 102, 16_320, 0, &[1]))).unwrap();
        assert_eq!((b.0, b.2), (a.0 + 1, true));
        assert_eq!(b.1.wrapping_sub(a.1), 16_000);
        // The toward() accessor reaches the same paths.
        assert!(r.toward(Leg::Sip).is_sending());
        assert!(r.toward(Leg::Browser).is_sending());
    }
}
