//! A driver for fuzzing the gateway's SDP handling (the `sdp` fuzz target): one input is read
//! as each kind of SDP the gateway takes from outside.
//!
//! - The SIP far end's offer ([`sdp::answer_offer`]) and answer ([`sdp::accept_answer`]), and
//!   the signalling's own hold check (`sip::call::sdp::offers_hold`).
//! - The browser's WebRTC offer ([`BrowserLeg::answer`], str0m's parser and negotiation).
//!
//! Invariants checked: no panic; a usable far-end SDP names no RTCP address without an RTP one,
//! and no address or port we must not send to ([`sdp::is_media_destination`], port 0); the
//! laws negotiated are among those it listed; the answer we write back parses, states our
//! address, port and laws, and mirrors every media line; the signalling and the media layer
//! agree on whether an offer holds the call; a browser answer carries only the laws asked for.

use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Instant;

use super::g711::Law;
use super::sdp::{self, LocalMedia, MediaDirection, SdpWriter, TELEPHONE_EVENT_PT};
use super::webrtc::{BrowserLeg, WebRtcContext};

fn context() -> &'static WebRtcContext {
    static CTX: OnceLock<WebRtcContext> = OnceLock::new();
    CTX.get_or_init(|| {
        WebRtcContext::new("192.0.2.5:30000".parse().expect("an address"))
            .expect("a DTLS certificate")
    })
}

/// Runs one input through every SDP reader.
pub fn sdp(data: &[u8]) {
    let hold = crate::sip::call::sdp_offers_hold(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    far_end(text, hold);
    browser(text);
}

fn far_end(text: &str, signalling_hold: bool) {
    let ours: IpAddr = [192, 0, 2, 9].into();
    for (preferred, wanted) in [
        (None, MediaDirection::SendRecv),
        (Some(Law::Pcma), MediaDirection::SendOnly),
    ] {
        let Ok(n) = sdp::answer_offer(text, ours, 20000, preferred, wanted) else {
            continue;
        };
        let far = &n.remote;
        assert!(far.rtp.is_some() || far.rtcp.is_none());
        for to in far.rtp.iter().chain(&far.rtcp) {
            assert!(sdp::is_media_destination(to.ip()) && to.port() != 0, "{to}");
        }
        assert_eq!(far.is_hold(), signalling_hold);
        assert!(!n.laws.is_empty() && n.laws.iter().all(|l| far.laws.contains(l)));
        let answer = SdpWriter::new().answer(&n);
        let back = sdp::parse(&answer).expect("our answer parses");
        assert_eq!(back.rtp, Some((ours, 20000).into()));
        assert_eq!(back.laws, n.laws);
        assert_eq!(back.m_lines.len(), far.m_lines.len(), "{answer}");
    }
    let offer = LocalMedia {
        address: ours,
        port: 20000,
        laws: vec![Law::Pcmu, Law::Pcma],
        telephone_event: Some(TELEPHONE_EVENT_PT),
        direction: MediaDirection::SendRecv,
    };
    if let Ok(n) = sdp::accept_answer(&offer, text) {
        assert!(!n.laws.is_empty());
        if let Some(rtp) = n.remote.rtp {
            assert!(sdp::is_media_destination(rtp.ip()), "{rtp}");
        }
    }
}

fn browser(text: &str) {
    // str0m's SDP parser on every input; a whole answer (which builds a str0m `Rtc`, the slow
    // part of this target) only for offers that parse and carry the DTLS fingerprint str0m
    // insists on (`refuses_offers_without_g711_or_audio` covers that refusal).
    if str0m::change::SdpOffer::from_sdp_string(text).is_err() || !text.contains("a=fingerprint:") {
        return;
    }
    let laws = [Law::Pcmu, Law::Pcma];
    if let Ok((leg, answer)) = BrowserLeg::answer(Instant::now(), context(), text, &laws) {
        let got = &leg.codecs().laws;
        assert!(!got.is_empty() && got.iter().all(|l| laws.contains(l)));
        assert!(answer.contains("a=fingerprint:"));
    }
}

#[cfg(test)]
mod tests {
    /// The named seeds of the committed corpus (real SDPs from the repository's fixtures; the
    /// fuzzer's own finds are named by their SHA-1) run through the driver in the ordinary
    /// test suite too.
    #[test]
    fn named_seeds_pass() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/sdp");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("fuzz/corpus/sdp") {
            let path = entry.expect("an entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            super::sdp(&std::fs::read(&path).expect("a file"));
            n += 1;
        }
        assert!(n >= 10, "{n} seeds");
    }
}
