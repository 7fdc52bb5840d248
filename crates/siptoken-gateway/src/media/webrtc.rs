//! The browser leg: one str0m `Rtc` per call, sans-IO (datagrams and time in; datagrams, RTP
//! packets and events out).
//!
//! The gateway answers the browser's offer as an ICE-lite endpoint (RFC 8445 §2.5: it only
//! answers connectivity checks; its one host candidate is the shared WebRTC socket's advertised
//! address), DTLS-SRTP (passive: `a=setup:passive`), rtcp-mux, audio only, with PCMU and/or
//! PCMA plus telephone-event/8000. str0m runs in RTP mode: packets come out and go in as RTP
//! (the relay rewrites their numbering, str0m encrypts and reports on them).
//!
//! str0m contract: after every change (input, write, timeout) `poll` must be called until it
//! returns [`BrowserOutput::Timeout`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::change::SdpOffer;
use str0m::config::DtlsCert;
use str0m::crypto::CryptoProvider;
use str0m::format::{Codec, CodecConfig, FormatParams};
use str0m::media::{Frequency, Mid};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::{Extension, ExtensionMap, RtpWrite, Ssrc};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig, RtcError};

use super::demux::IceKey;
use super::g711::Law;
use super::relay::{Inbound, LegCodecs, Outbound};

pub mod loopback;

/// The telephone-event/8000 payload type the gateway proposes to str0m (the browser's own
/// number wins in the answer: Chrome uses 126).
const TELEPHONE_EVENT_PT: u8 = 126;

/// Why a browser offer cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    /// The offer is not SDP str0m can read.
    #[error("invalid offer: {0}")]
    InvalidOffer(#[source] str0m::error::SdpError),
    /// str0m refused the offer (no DTLS fingerprint, no ICE credentials, …).
    #[error("offer refused: {0}")]
    Refused(#[source] RtcError),
    /// The offer has no audio the gateway can take.
    #[error("no audio stream")]
    NoAudio,
    /// More `m=` lines than [`super::sdp::MAX_MEDIA_LINES`]: str0m would build (and answer) a
    /// media section for each.
    #[error("too many media lines")]
    TooLarge,
    /// The browser offered neither PCMU nor PCMA (or not the law the call needs).
    #[error("no common codec (PCMU or PCMA)")]
    NoCommonCodec,
    /// The advertised address is not a usable host candidate.
    #[error("bad WebRTC address: {0}")]
    Candidate(#[source] RtcError),
    /// The crypto provider could not make the DTLS certificate.
    #[error("cannot generate the DTLS certificate")]
    Certificate,
}

/// Something that happened on the browser leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserEvent {
    /// ICE nominated a pair and DTLS-SRTP is up: media can flow.
    Connected,
    /// The browser stopped its connectivity checks (consent lost, RFC 7675): it is gone.
    Disconnected,
    /// The browser closed DTLS.
    Closed,
    /// DTLS failed (handshake or fingerprint): no media can flow.
    DtlsFailed,
    /// str0m reported another unrecoverable error; the leg is dead.
    Failed,
}

/// One step of [`BrowserLeg::poll`]. Returned by value and consumed at once in the drain loop
/// (as str0m's own `Output`), so the size difference between variants costs nothing.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum BrowserOutput {
    /// Nothing more until this time (or new input).
    Timeout(Instant),
    /// A datagram for the shared socket.
    Transmit(Transmit),
    /// An RTP packet from the browser, decrypted.
    Rtp(str0m::rtp::RtpPacket),
    /// An event.
    Event(BrowserEvent),
}

/// The browser's side of the negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserCodecs {
    /// The G.711 laws in the answer, in its order: the browser sends the first.
    pub laws: Vec<Law>,
    /// The telephone-event/8000 payload type, if negotiated.
    pub telephone_event: Option<u8>,
}

impl BrowserCodecs {
    /// What the relay needs of the browser leg.
    pub fn leg_codecs(&self) -> LegCodecs {
        LegCodecs {
            laws: self.laws.clone(),
            telephone_event_send: self.telephone_event,
            telephone_event_receive: self.telephone_event.into_iter().collect(),
        }
    }
}

/// Shared by every browser leg: crypto and the DTLS certificate (one per gateway process: its
/// fingerprint goes in each answer, and DTLS uses fresh ECDHE keys per call anyway), and the
/// address advertised as the host candidate.
#[derive(Clone)]
pub struct WebRtcContext {
    /// The host candidate's address (the shared socket's port, `webrtc_public_ip` or the
    /// listen address).
    pub advertised: SocketAddr,
    provider: Arc<CryptoProvider>,
    cert: DtlsCert,
}

impl std::fmt::Debug for WebRtcContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebRtcContext")
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl WebRtcContext {
    /// Creates the crypto provider (aws-lc-rs, DTLS configured once: see [`super::dtls`]) and a
    /// DTLS certificate.
    pub fn new(advertised: SocketAddr) -> Result<WebRtcContext, WebRtcError> {
        let provider = super::dtls::crypto_provider();
        let cert = provider
            .dtls_provider
            .generate_certificate()
            .ok_or(WebRtcError::Certificate)?;
        Ok(WebRtcContext {
            advertised,
            provider: Arc::new(provider),
            cert,
        })
    }
}

/// One call's browser leg.
pub struct BrowserLeg {
    rtc: Rtc,
    mid: Mid,
    codecs: BrowserCodecs,
    ufrag: String,
    ice_key: IceKey,
    tx: Option<Ssrc>,
    local: SocketAddr,
    connected: bool,
    /// A DTLS error seen in an input, reported by the next `poll`.
    failed: bool,
    /// After an unrecoverable error: `poll` only returns timeouts.
    dead: bool,
    last_now: Instant,
}

impl std::fmt::Debug for BrowserLeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserLeg")
            .field("mid", &self.mid)
            .field("codecs", &self.codecs)
            .field("connected", &self.connected)
            .finish_non_exhaustive()
    }
}

fn law_of(codec: Codec) -> Option<Law> {
    match codec {
        Codec::PCMU => Some(Law::Pcmu),
        Codec::PCMA => Some(Law::Pcma),
        _ => None,
    }
}

/// The RTP header extensions the gateway answers: the MID (the BUNDLE transport's own) and the
/// audio level (a few bytes Chrome adds to audio anyway). Not transport-wide congestion control
/// (`transport-cc`) nor `abs-send-time`: they serve bandwidth estimation, which a G.711 relay
/// has no use for (str0m's is off), and with them str0m numbers every packet it sends, logs
/// every one it receives and sends feedback every 100 ms — CPU per packet for nothing.
fn answered_extensions() -> ExtensionMap {
    let mut exts = ExtensionMap::empty();
    exts.set(1, Extension::AudioLevel);
    exts.set(4, Extension::RtpMid);
    exts
}

/// Clears the transport-wide congestion control feedback (`a=rtcp-fb:PT transport-cc`) that str0m
/// gives every payload type: it would answer it to Firefox, which offers it on G.711 too (Chrome
/// only on Opus), while the extension it needs is not answered (see [`answered_extensions`]).
fn without_transport_cc(codecs: &mut CodecConfig) {
    let params = codecs
        .params()
        .iter()
        .map(|p| {
            let mut p = *p;
            p.set_fb_transport_cc(false);
            p
        })
        .collect();
    *codecs = CodecConfig::new_from_payload_params(params);
}

/// Adds telephone-event/8000 (RFC 4733) on payload type `pt` with the `events` it carries
/// (its fmtp, e.g. `0-16`) to a str0m codec configuration.
pub fn add_telephone_event(codecs: &mut CodecConfig, pt: u8, events: &str) {
    codecs.add_config(
        pt.into(),
        None,
        Codec::Tele,
        Frequency::EIGHT_KHZ,
        None,
        FormatParams::parse_line(events),
    );
}

impl BrowserLeg {
    /// Answers the browser's `offer`, accepting only `laws` (in that preference; both for an
    /// outgoing call, the SIP side's law for an incoming one). Returns the leg and the answer.
    pub fn answer(
        now: Instant,
        ctx: &WebRtcContext,
        offer: &str,
        laws: &[Law],
    ) -> Result<(BrowserLeg, String), WebRtcError> {
        let offer_text = offer;
        if offer.lines().filter(|l| l.starts_with("m=")).count() > super::sdp::MAX_MEDIA_LINES {
            return Err(WebRtcError::TooLarge);
        }
        let offer = SdpOffer::from_sdp_string(offer).map_err(WebRtcError::InvalidOffer)?;
        let mut config = RtcConfig::new()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .set_crypto_provider(ctx.provider.clone())
            .set_dtls_cert(ctx.cert.clone())
            .clear_codecs()
            .set_extension_map(answered_extensions());
        let codecs = config.codec_config();
        for law in laws {
            match law {
                Law::Pcmu => codecs.enable_pcmu(true, false),
                Law::Pcma => codecs.enable_pcma(true, false),
            }
        }
        add_telephone_event(codecs, TELEPHONE_EVENT_PT, "0-16");
        without_transport_cc(codecs);
        let mut rtc = config.build(now);
        let candidate =
            Candidate::host(ctx.advertised, "udp").map_err(|e| WebRtcError::Candidate(e.into()))?;
        rtc.add_local_candidate(candidate);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(WebRtcError::Refused)?;
        // Drain after the change (str0m's contract).
        let _ = rtc.handle_input(Input::Timeout(now));
        while let Ok(o) = rtc.poll_output() {
            if matches!(o, Output::Timeout(_)) {
                break;
            }
        }
        let answer = answer.to_sdp_string();
        let mid = audio_mid(&answer);
        let mid = mid.ok_or(WebRtcError::NoAudio)?;
        let media = rtc.media(mid).ok_or(WebRtcError::NoAudio)?;
        let mut negotiated = BrowserCodecs {
            laws: Vec::new(),
            telephone_event: None,
        };
        // str0m also answers static payload types that have an rtpmap but are not on the
        // offer's m= line; only what the browser listed counts.
        let offered = offered_formats(offer_text, mid);
        for pt in media
            .remote_pts()
            .iter()
            .filter(|pt| offered.contains(&**pt))
        {
            let Some(p) = rtc.codec_config().find(|p| p.pt() == *pt) else {
                continue;
            };
            let spec = p.spec();
            if let Some(law) = law_of(spec.codec) {
                if !negotiated.laws.contains(&law) {
                    negotiated.laws.push(law);
                }
            } else if spec.codec == Codec::Tele && spec.clock_rate == Frequency::EIGHT_KHZ {
                negotiated.telephone_event.get_or_insert(**pt);
            }
        }
        if negotiated.laws.is_empty() {
            return Err(WebRtcError::NoCommonCodec);
        }
        let creds = rtc.direct_api().local_ice_credentials();
        let leg = BrowserLeg {
            rtc,
            mid,
            codecs: negotiated,
            ufrag: creds.ufrag,
            ice_key: IceKey {
                password: creds.pass,
                hmac: ctx.provider.sha1_hmac_provider,
            },
            tx: None,
            local: ctx.advertised,
            connected: false,
            failed: false,
            dead: false,
            last_now: now,
        };
        Ok((leg, answer))
    }

    /// The negotiated codecs.
    pub fn codecs(&self) -> &BrowserCodecs {
        &self.codecs
    }

    /// Our ICE username fragment: STUN checks from the browser carry it (`OURS:THEIRS`).
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// What the demultiplexer checks this leg's STUN binding requests with.
    pub fn ice_key(&self) -> IceKey {
        self.ice_key.clone()
    }

    /// Whether ICE and DTLS are up.
    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// Takes a datagram from `source` that the demultiplexer routed here. Returns `false`
    /// when it is not for this leg after all (str0m's `accepts`) or not a WebRTC datagram.
    pub fn receive(&mut self, now: Instant, source: SocketAddr, datagram: &[u8]) -> bool {
        let Ok(r) = Receive::new(Protocol::Udp, source, self.local, datagram) else {
            return false;
        };
        self.last_now = self.last_now.max(now);
        let input = Input::Receive(now, r);
        if !self.rtc.accepts(&input) {
            return false;
        }
        if let Err(e) = self.rtc.handle_input(input) {
            self.note_error(&e);
        }
        true
    }

    /// Advances time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        if let Err(e) = self.rtc.handle_input(Input::Timeout(now)) {
            self.note_error(&e);
        }
    }

    fn note_error(&mut self, e: &RtcError) {
        match e {
            RtcError::Dtls(_) => self.failed = true,
            _ => tracing::debug!("browser leg: {e}"),
        }
    }

    /// The next output; call until it returns [`BrowserOutput::Timeout`].
    pub fn poll(&mut self) -> BrowserOutput {
        if self.dead {
            return BrowserOutput::Timeout(self.last_now + std::time::Duration::from_secs(3600));
        }
        if std::mem::take(&mut self.failed) {
            self.dead = true;
            return BrowserOutput::Event(BrowserEvent::DtlsFailed);
        }
        loop {
            let out = match self.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!("browser leg failed: {e}");
                    self.dead = true;
                    return BrowserOutput::Event(match e {
                        // While running, str0m reports the DTLS peer certificate check (no
                        // fingerprint, unsupported hash, mismatch) as a remote-SDP error.
                        RtcError::Dtls(_) | RtcError::RemoteSdp(_) => BrowserEvent::DtlsFailed,
                        _ => BrowserEvent::Failed,
                    });
                }
            };
            return match out {
                Output::Timeout(t) => BrowserOutput::Timeout(t),
                Output::Transmit(t) => BrowserOutput::Transmit(t),
                Output::Event(Event::RtpPacket(p)) => BrowserOutput::Rtp(p),
                Output::Event(Event::Connected) => {
                    self.connected = true;
                    BrowserOutput::Event(BrowserEvent::Connected)
                }
                Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => BrowserOutput::Event(BrowserEvent::Disconnected),
                Output::Event(Event::Closed) => BrowserOutput::Event(BrowserEvent::Closed),
                Output::Event(_) => continue,
            };
        }
    }

    /// Queues an RTP packet for the browser (encrypted by str0m); `false` when the leg cannot
    /// send (not connected yet, or dead). str0m sends queued packets only once time is handled:
    /// after one or more writes, call [`Self::handle_timeout`] and then [`Self::poll`] (no poll
    /// is needed in between: a write only makes the timeout due).
    pub fn write(&mut self, now: Instant, p: &Outbound<'_>) -> bool {
        self.last_now = self.last_now.max(now);
        if !self.connected || self.dead {
            return false;
        }
        let ssrc = match self.tx {
            Some(s) => s,
            None => {
                let Some(s) = self
                    .rtc
                    .direct_api()
                    .stream_tx_by_mid(self.mid, None)
                    .map(|s| s.ssrc())
                else {
                    return false;
                };
                *self.tx.insert(s)
            }
        };
        let mut api = self.rtc.direct_api();
        let Some(stream) = api.stream_tx(&ssrc) else {
            return false;
        };
        stream.write_rtp(
            RtpWrite::new(
                p.payload_type.into(),
                p.seq.into(),
                p.timestamp,
                now,
                p.payload,
            )
            .marker(p.marker),
        );
        true
    }

    /// Closes the leg (RTCP BYE, DTLS close_notify); keep polling until the timeout to send
    /// them.
    pub fn close(&mut self) {
        if let Err(e) = self.rtc.close() {
            tracing::debug!("closing browser leg: {e}");
        }
    }
}

/// The `a=mid` of the first accepted (non-zero port) audio section of an SDP answer. (str0m
/// emits no `MediaAdded` event for media the remote offered in RTP mode, so the answer says.)
fn audio_mid(answer: &str) -> Option<Mid> {
    let mut in_audio = false;
    for line in answer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            in_audio = m.starts_with("audio ") && !m.starts_with("audio 0 ");
        } else if let Some(mid) = line.strip_prefix("a=mid:").filter(|_| in_audio) {
            return Some(Mid::from(mid.trim()));
        }
    }
    None
}

/// The payload types on the `m=` line of the offer's section with `a=mid:MID`.
fn offered_formats(offer: &str, mid: Mid) -> Vec<u8> {
    let mut formats = Vec::new();
    for line in offer.lines() {
        if let Some(m) = line.strip_prefix("m=") {
            formats = m
                .split(' ')
                .skip(3)
                .filter_map(|f| f.trim().parse().ok())
                .collect();
        } else if let Some(m) = line.strip_prefix("a=mid:") {
            if Mid::from(m.trim()) == mid {
                return formats;
            }
        }
    }
    Vec::new()
}

/// Converts str0m's RTP packet into the relay's input.
pub fn inbound(p: &str0m::rtp::RtpPacket) -> Inbound<'_> {
    Inbound {
        ssrc: *p.header.ssrc,
        seq: *p.seq_no,
        timestamp: p.header.timestamp,
        marker: p.header.marker,
        payload_type: *p.header.payload_type,
        payload: &p.payload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Firefox's offers (webrtc/tests/firefox.rs).
    mod firefox;

    /// An audio-only offer as Chrome makes it (Opus, RED, G.722, G.711, CN, two
    /// telephone-events), with one host candidate.
    const CHROME_OFFER: &str = "v=0
o=- 6410813413233323591 2 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0
a=extmap-allow-mixed
a=msid-semantic: WMS 9f5d2b7e-4c51-4d0c-9a43-3f0a6a1f1b2e
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126
c=IN IP4 0.0.0.0
a=rtcp:9 IN IP4 0.0.0.0
a=candidate:1467250027 1 udp 2122260223 127.0.0.1 46243 typ host generation 0 network-id 1
a=ice-ufrag:7ZSq
a=ice-pwd:7s/mWw5DR0IZnzN3cJxHg4zN
a=ice-options:trickle
a=fingerprint:sha-256 5B:6B:1E:8A:26:1A:6A:BC:7C:34:27:6E:21:04:16:AB:5E:FB:C8:66:2A:6D:11:9E:5C:87:6A:1E:8C:0E:C1:17
a=setup:actpass
a=mid:0
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level
a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01
a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid
a=sendrecv
a=msid:9f5d2b7e-4c51-4d0c-9a43-3f0a6a1f1b2e 0c4c1e52-1b9e-4f8e-bb8d-4a8a7f5ad8e1
a=rtcp-mux
a=rtcp-rsize
a=rtpmap:111 opus/48000/2
a=rtcp-fb:111 transport-cc
a=fmtp:111 minptime=10;useinbandfec=1
a=rtpmap:63 red/48000/2
a=fmtp:63 111/111
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:13 CN/8000
a=rtpmap:110 telephone-event/48000
a=rtpmap:126 telephone-event/8000
a=ssrc:3285416542 cname:dZsA2rJ0vGZ0k8Lh
a=ssrc:3285416542 msid:9f5d2b7e-4c51-4d0c-9a43-3f0a6a1f1b2e 0c4c1e52-1b9e-4f8e-bb8d-4a8a7f5ad8e1
";

    fn crlf(s: &str) -> String {
        s.lines().map(|l| format!("{l}\r\n")).collect()
    }

    fn audio_line(answer: &str) -> &str {
        answer.lines().find(|l| l.starts_with("m=audio")).unwrap()
    }

    #[test]
    fn answers_a_chrome_offer_with_g711_and_telephone_event() {
        let ctx = WebRtcContext::new("192.0.2.5:30000".parse().unwrap()).unwrap();
        let now = Instant::now();
        let (leg, answer) =
            BrowserLeg::answer(now, &ctx, &crlf(CHROME_OFFER), &[Law::Pcmu, Law::Pcma]).unwrap();
        assert_eq!(audio_line(&answer), "m=audio 9 UDP/TLS/RTP/SAVPF 0 8 126");
        for needed in [
            "a=ice-lite",
            "a=setup:passive",
            "a=rtcp-mux",
            "a=mid:0",
            "a=fingerprint:sha-256 ",
            " 192.0.2.5 30000 typ host",
            "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
        ] {
            assert!(answer.contains(needed), "{needed} missing from {answer}");
        }
        // No bandwidth estimation: the browser is not asked for transport-wide sequence
        // numbers or send times (the offer has both).
        for unwanted in ["transport-wide-cc", "transport-cc", "abs-send-time"] {
            assert!(!answer.contains(unwanted), "{unwanted} in {answer}");
        }
        assert_eq!(
            leg.codecs(),
            &BrowserCodecs {
                laws: vec![Law::Pcmu, Law::Pcma],
                telephone_event: Some(126),
            }
        );
        assert!(
            !leg.ufrag().is_empty() && answer.contains(&format!("a=ice-ufrag:{}", leg.ufrag()))
        );
        assert!(!leg.is_connected());
        // An incoming call on PCMA: the browser is answered PCMA only.
        let (leg, answer) =
            BrowserLeg::answer(now, &ctx, &crlf(CHROME_OFFER), &[Law::Pcma]).unwrap();
        assert_eq!(audio_line(&answer), "m=audio 9 UDP/TLS/RTP/SAVPF 8 126");
        assert_eq!(leg.codecs().leg_codecs().laws, [Law::Pcma]);
    }

    #[test]
    fn refuses_offers_without_g711_or_audio() {
        let ctx = WebRtcContext::new("192.0.2.5:30000".parse().unwrap()).unwrap();
        let now = Instant::now();
        let laws = [Law::Pcmu, Law::Pcma];
        let opus_only = crlf(CHROME_OFFER).replace(" 111 63 9 0 8 13 110 126", " 111 63 110");
        let e = BrowserLeg::answer(now, &ctx, &opus_only, &laws).unwrap_err();
        assert!(matches!(e, WebRtcError::NoCommonCodec), "{e}");
        let e = BrowserLeg::answer(now, &ctx, "v=0\r\n", &laws).unwrap_err();
        assert!(matches!(e, WebRtcError::InvalidOffer(_)), "{e}");
        let no_fingerprint: String = crlf(CHROME_OFFER)
            .lines()
            .filter(|l| !l.starts_with("a=fingerprint"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        assert!(BrowserLeg::answer(now, &ctx, &no_fingerprint, &laws).is_err());
    }

    /// A str0m client (default configuration: it offers transport-cc) connected in memory to
    /// a gateway browser leg.
    fn connected_pair() -> loopback::Loopback {
        let config = RtcConfig::new().enable_pcmu(true, false);
        let pair = loopback::Loopback::connect(config, &[Law::Pcmu]).unwrap();
        assert!(pair.offer.contains("transport-wide-cc"), "{}", pair.offer);
        assert!(
            pair.answer.contains("a=rtpmap:0 PCMU/8000"),
            "{}",
            pair.answer
        );
        pair
    }

    #[test]
    fn written_packets_go_out_together_once_time_is_handled() {
        let mut pair = connected_pair();
        pair.exchange();
        pair.received.clear();
        pair.now += std::time::Duration::from_millis(20);
        let now = pair.now;
        let payload = [0x55u8; 160];
        for i in 0..3u64 {
            let written = pair.leg.write(
                now,
                &Outbound {
                    seq: 100 + i,
                    timestamp: 160 * i as u32,
                    marker: i == 0,
                    payload_type: 0,
                    payload: &payload,
                },
            );
            assert!(written);
        }
        // str0m holds written packets until time is handled (the relay relies on this to
        // send a backlog with one timeout handling, and on nothing else).
        assert_eq!(pair.leg_to_client(), 0, "sent before handle_timeout");
        pair.leg.handle_timeout(now);
        assert_eq!(pair.leg_to_client(), 3);
        let got = std::mem::take(&mut pair.received);
        let seqs: Vec<u64> = got.iter().map(|p| *p.seq_no).collect();
        assert_eq!(seqs, [100, 101, 102]);
        for p in &got {
            assert_eq!(&p.payload[..], &payload[..]);
            // No transport-wide sequence numbers: TWCC was not negotiated.
            assert_eq!(p.header.ext_vals.transport_cc, None);
        }
    }

    #[test]
    fn offers_with_absurd_numbers_of_media_lines_are_refused() {
        let ctx = WebRtcContext::new("192.0.2.5:30000".parse().unwrap()).unwrap();
        let now = Instant::now();
        let laws = [Law::Pcmu, Law::Pcma];
        let offer = crlf(CHROME_OFFER);
        let section = &offer[offer.find("m=audio").unwrap()..];
        let many = format!(
            "{offer}{}",
            (1..=super::super::sdp::MAX_MEDIA_LINES)
                .map(|i| section.replace("a=mid:0", &format!("a=mid:{i}")))
                .collect::<String>()
        );
        let started = Instant::now();
        let e = BrowserLeg::answer(now, &ctx, &many, &laws).unwrap_err();
        assert!(matches!(e, WebRtcError::TooLarge), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
    }

    #[test]
    fn dtls_and_srtp_from_an_address_ice_did_not_confirm_are_refused() {
        let ctx = WebRtcContext::new("192.0.2.5:30000".parse().unwrap()).unwrap();
        let now = Instant::now();
        let (mut leg, _) =
            BrowserLeg::answer(now, &ctx, &crlf(CHROME_OFFER), &[Law::Pcmu, Law::Pcma]).unwrap();
        let stranger: SocketAddr = "203.0.113.9:4444".parse().unwrap();
        let mut dtls = vec![22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12];
        dtls.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let mut srtp = vec![0x80u8, 0, 0, 1, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
        srtp.extend_from_slice(&[0xd5; 170]);
        for datagram in [&dtls, &srtp] {
            assert!(!leg.receive(now, stranger, datagram), "{datagram:?}");
        }
        assert!(
            matches!(leg.poll(), BrowserOutput::Timeout(_)),
            "nothing came of them"
        );
    }

    #[test]
    fn sdp_helpers() {
        let offer = crlf(CHROME_OFFER);
        assert_eq!(
            offered_formats(&offer, Mid::from("0")),
            [111, 63, 9, 0, 8, 13, 110, 126]
        );
        assert!(offered_formats(&offer, Mid::from("1")).is_empty());
        let answer = "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:a\r\n";
        assert_eq!(audio_mid(answer), Some(Mid::from("a")));
        assert_eq!(
            audio_mid("m=audio 0 UDP/TLS/RTP/SAVPF 0\r\na=mid:a\r\n"),
            None
        );
    }
}
