//! Media counters for `/metrics` (Prometheus text format), shared by every call.
//!
//! Calls count into their own state per packet and add their increments here about once a
//! second and when they end, so the hot path touches no shared cache line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::delay::{Delays, SharedDelays};
use super::relay::PathStats;
use super::rtp::SipLegStats;

/// Process-wide media counters.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// Media sessions open.
    pub sessions: AtomicI64,
    /// RTP packets relayed browser → SIP far end (injected DTMF included).
    pub packets_to_sip: AtomicU64,
    /// RTP packets relayed SIP far end → browser.
    pub packets_to_browser: AtomicU64,
    /// Packets whose G.711 law was converted.
    pub packets_converted: AtomicU64,
    /// Telephone-event packets generated for `dtmf` messages.
    pub dtmf_packets_sent: AtomicU64,
    /// RTP packets dropped by the relay, by [`DropReason`] (index: `reason as usize`).
    pub packets_dropped: [AtomicU64; DropReason::ALL.len()],
    /// Datagrams on a SIP leg's ports from an address the SDP did not name.
    pub unexpected_source: AtomicU64,
    /// Datagrams on the WebRTC socket that belonged to no call.
    pub webrtc_unrouted: AtomicU64,
    /// Calls whose far end sent no RTP for `media_timeout_seconds`.
    pub media_timeouts: AtomicU64,
    /// Browser legs that failed (DTLS, ICE consent lost, no connection in time).
    pub browser_failures: AtomicU64,
    /// How long relayed packets were held, browser → SIP.
    pub delay_to_sip: SharedDelays,
    /// How long relayed packets were held, SIP → browser.
    pub delay_to_browser: SharedDelays,
}

/// What one call has counted so far (what it already added is subtracted when it adds more).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTotals {
    /// Browser → SIP.
    pub to_sip: PathStats,
    /// SIP → browser.
    pub to_browser: PathStats,
    /// The SIP leg.
    pub sip: SipLegStats,
    /// How long relayed packets were held, browser → SIP.
    pub delay_to_sip: Delays,
    /// How long relayed packets were held, SIP → browser.
    pub delay_to_browser: Delays,
}

/// Why the relay dropped a packet: the `reason` label of
/// `siptoken_gateway_media_rtp_packets_dropped_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The direction is not sending (hold, or the far end has sent no SDP yet).
    NotSending = 0,
    /// A payload type the receiving leg did not negotiate (comfort noise, another codec).
    Codec = 1,
    /// The browser's audio while generated DTMF plays.
    Dtmf = 2,
    /// Reordered beyond what can be renumbered, or from a source just replaced.
    Late = 3,
}

impl DropReason {
    /// Every reason, in label order.
    pub const ALL: [DropReason; 4] = [
        DropReason::NotSending,
        DropReason::Codec,
        DropReason::Dtmf,
        DropReason::Late,
    ];

    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            DropReason::NotSending => "not_sending",
            DropReason::Codec => "codec",
            DropReason::Dtmf => "dtmf",
            DropReason::Late => "late",
        }
    }

    /// This reason's count in `p`.
    fn count(self, p: &PathStats) -> u64 {
        match self {
            DropReason::NotSending => p.dropped_not_sending,
            DropReason::Codec => p.dropped_codec,
            DropReason::Dtmf => p.dropped_dtmf,
            DropReason::Late => p.dropped_late,
        }
    }
}

impl MediaCounters {
    /// Adds what a call counted since `before` (its totals at the previous call).
    pub fn add(&self, before: &CallTotals, now: &CallTotals) {
        let add = |c: &AtomicU64, a: u64, b: u64| {
            if b > a {
                c.fetch_add(b - a, Ordering::Relaxed);
            }
        };
        add(
            &self.packets_to_sip,
            before.to_sip.packets,
            now.to_sip.packets,
        );
        add(
            &self.packets_to_browser,
            before.to_browser.packets,
            now.to_browser.packets,
        );
        add(
            &self.packets_converted,
            before.to_sip.converted + before.to_browser.converted,
            now.to_sip.converted + now.to_browser.converted,
        );
        add(
            &self.dtmf_packets_sent,
            before.to_sip.events_injected,
            now.to_sip.events_injected,
        );
        for reason in DropReason::ALL {
            add(
                &self.packets_dropped[reason as usize],
                reason.count(&before.to_sip) + reason.count(&before.to_browser),
                reason.count(&now.to_sip) + reason.count(&now.to_browser),
            );
        }
        add(
            &self.unexpected_source,
            before.sip.unexpected_source,
            now.sip.unexpected_source,
        );
        self.delay_to_sip
            .add(&before.delay_to_sip, &now.delay_to_sip);
        self.delay_to_browser
            .add(&before.delay_to_browser, &now.delay_to_browser);
    }

    /// Appends the Prometheus text exposition of these counters to `out`.
    pub fn render(&self, out: &mut String) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP siptoken_gateway_media_sessions Media sessions (calls with media) open.\n\
             # TYPE siptoken_gateway_media_sessions gauge\n\
             siptoken_gateway_media_sessions {}",
            self.sessions.load(Ordering::Relaxed)
        );
        let counters: [(&str, &str, u64); 8] = [
            ("rtp_packets_to_sip_total", "RTP packets relayed from browsers to SIP far ends (generated DTMF included).", get(&self.packets_to_sip)),
            ("rtp_packets_to_browser_total", "RTP packets relayed from SIP far ends to browsers.", get(&self.packets_to_browser)),
            ("rtp_packets_converted_total", "Relayed packets whose G.711 law was converted (PCMU <-> PCMA).", get(&self.packets_converted)),
            ("dtmf_packets_sent_total", "RFC 4733 telephone-event packets generated for dtmf messages.", get(&self.dtmf_packets_sent)),
            ("rtp_unexpected_source_total", "Datagrams on SIP-leg RTP/RTCP ports from an address the far end's SDP did not name (dropped).", get(&self.unexpected_source)),
            ("webrtc_unrouted_total", "Datagrams on the WebRTC socket that belonged to no call (dropped).", get(&self.webrtc_unrouted)),
            ("media_timeouts_total", "Calls whose far end sent no RTP for media_timeout_seconds.", get(&self.media_timeouts)),
            ("browser_leg_failures_total", "Browser legs that failed: DTLS error, ICE consent lost, or not connected in time.", get(&self.browser_failures)),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP siptoken_gateway_media_{name} {help}\n\
                 # TYPE siptoken_gateway_media_{name} counter\n\
                 siptoken_gateway_media_{name} {v}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP siptoken_gateway_media_rtp_packets_dropped_total RTP packets the relay dropped, by reason: not_sending (hold, no SDP yet), codec (not negotiated), dtmf (during generated DTMF), late (reordered beyond renumbering).\n\
             # TYPE siptoken_gateway_media_rtp_packets_dropped_total counter"
        );
        for reason in DropReason::ALL {
            let _ = writeln!(
                out,
                "siptoken_gateway_media_rtp_packets_dropped_total{{reason=\"{}\"}} {}",
                reason.label(),
                get(&self.packets_dropped[reason as usize])
            );
        }
        let name = "siptoken_gateway_media_relay_delay_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} How long the gateway held a relayed RTP packet: from the kernel's receive timestamp of its datagram to the send of the relayed copy, by direction.\n\
             # TYPE {name} histogram"
        );
        self.delay_to_sip.render(out, name, "to_sip");
        self.delay_to_browser.render(out, name, "to_browser");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_increments_and_renders() {
        let c = MediaCounters::default();
        let mut a = CallTotals::default();
        a.to_sip.packets = 10;
        a.to_browser.dropped_codec = 2;
        a.to_sip.dropped_late = 3;
        a.sip.unexpected_source = 1;
        a.delay_to_browser
            .record(std::time::Duration::from_micros(300));
        c.add(&CallTotals::default(), &a);
        let mut b = a;
        b.to_sip.packets = 15;
        c.add(&a, &b);
        c.sessions.fetch_add(1, Ordering::Relaxed);
        let mut text = String::new();
        c.render(&mut text);
        assert!(
            text.contains("siptoken_gateway_media_rtp_packets_to_sip_total 15\n"),
            "{text}"
        );
        for (reason, n) in [("not_sending", 0), ("codec", 2), ("dtmf", 0), ("late", 3)] {
            let line = format!(
                "siptoken_gateway_media_rtp_packets_dropped_total{{reason=\"{reason}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line}{text}");
        }
        assert!(text.contains("siptoken_gateway_media_rtp_unexpected_source_total 1\n"));
        assert!(text.contains("siptoken_gateway_media_sessions 1\n"));
        assert!(text.contains("# TYPE siptoken_gateway_media_relay_delay_seconds histogram\n"));
        assert!(text.contains(
            "siptoken_gateway_media_relay_delay_seconds_count{direction=\"to_browser\"} 1\n"
        ));
        assert!(text.contains(
            "siptoken_gateway_media_relay_delay_seconds_count{direction=\"to_sip\"} 0\n"
        ));
        assert!(text.contains("# TYPE siptoken_gateway_media_media_timeouts_total counter"));
    }
}
