//! Firefox's offers, as Firefox 153 ESR makes them for the softphone page (captured from
//! tests/softphone_browser.rs in headless Firefox): Opus on 109, G.722, G.711, one
//! telephone-event on 101, `a=mid:0`, `a=extmap-allow-mixed`, the session-level
//! `a=sendrecv`/`a=ice-options:trickle`, and UDP and TCP (`tcptype active`, port 9) host
//! candidates, IPv4 and IPv6; without a microphone permission Firefox hides host addresses
//! behind mDNS names (`….local`). The end-to-end tests (tests/softphone_gateway.rs) prove the
//! calls; these pin the answers.

use super::*;

const FIREFOX_OFFER: &str = "v=0
o=mozilla...THIS_IS_SDPARTA-99.0 6300297529848213364 0 IN IP4 0.0.0.0
s=-
t=0 0
a=sendrecv
a=fingerprint:sha-256 77:3D:DB:D3:67:36:5C:0C:57:3E:22:0A:D4:74:09:4A:00:36:C9:A3:9B:3F:F3:BF:82:04:D5:09:74:EC:BA:57
a=group:BUNDLE 0
a=ice-options:trickle
a=msid-semantic:WMS *
m=audio 41592 UDP/TLS/RTP/SAVPF 109 9 0 8 101
c=IN IP4 127.0.0.1
a=candidate:0 1 UDP 2122187007 127.0.0.1 41592 typ host
a=candidate:1 1 UDP 2122252543 ::1 39198 typ host
a=candidate:2 1 TCP 2105458943 127.0.0.1 9 typ host tcptype active
a=candidate:3 1 TCP 2105524479 ::1 9 typ host tcptype active
a=sendrecv
a=end-of-candidates
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2/recvonly urn:ietf:params:rtp-hdrext:csrc-audio-level
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid
a=extmap:7 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap-allow-mixed
a=fmtp:109 maxplaybackrate=48000;stereo=1;useinbandfec=1
a=fmtp:101 0-15
a=ice-pwd:1213113dec4c7b3db2a2f45be7081e6e
a=ice-ufrag:4eebfc0d
a=mid:0
a=msid:{e8315c3a-db80-48f6-a076-4eeddd4b978e} {ae092146-f73f-4d1e-b68e-dad86ea886d4}
a=rtcp-fb:109 transport-cc
a=rtcp-fb:9 transport-cc
a=rtcp-fb:0 transport-cc
a=rtcp-fb:8 transport-cc
a=rtcp-mux
a=rtpmap:109 opus/48000/2
a=rtpmap:9 G722/8000/1
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=setup:actpass
a=ssrc:2692384566 cname:{f6a38640-0359-44d8-8332-138c3d57fea1}
";

#[test]
fn answers_a_firefox_offer_with_g711_and_its_telephone_event() {
    let ctx = WebRtcContext::new("192.0.2.5:30000".parse().unwrap()).unwrap();
    let now = Instant::now();
    let (leg, answer) =
        BrowserLeg::answer(now, &ctx, &crlf(FIREFOX_OFFER), &[Law::Pcmu, Law::Pcma]).unwrap();
    assert_eq!(audio_line(&answer), "m=audio 9 UDP/TLS/RTP/SAVPF 0 8 101");
    for needed in [
        "a=ice-lite",
        "a=setup:passive",
        "a=rtcp-mux",
        "a=mid:0",
        "a=rtpmap:101 telephone-event/8000",
        " 192.0.2.5 30000 typ host",
    ] {
        assert!(answer.contains(needed), "{needed} missing from {answer}");
    }
    assert!(!answer.contains("transport-cc"), "{answer}");
    assert_eq!(
        leg.codecs(),
        &BrowserCodecs {
            laws: vec![Law::Pcmu, Law::Pcma],
            telephone_event: Some(101),
        }
    );
}

#[test]
fn answers_a_firefox_offer_whose_host_candidates_are_mdns_names() {
    let ctx = WebRtcContext::new("192.0.2.5:30000".parse().unwrap()).unwrap();
    let hidden = crlf(FIREFOX_OFFER)
        .replace(
            "127.0.0.1 41592 typ host",
            "737f0558-7d8c-4a73-bda4-b447830b3b4d.local 41592 typ host",
        )
        .replace(
            "::1 39198 typ host",
            "0992590c-a319-4191-ba44-217da167da81.local 39198 typ host",
        );
    assert!(hidden.contains(".local 41592"));
    let (leg, answer) = BrowserLeg::answer(Instant::now(), &ctx, &hidden, &[Law::Pcma]).unwrap();
    assert_eq!(audio_line(&answer), "m=audio 9 UDP/TLS/RTP/SAVPF 8 101");
    assert_eq!(leg.codecs().telephone_event, Some(101));
}
