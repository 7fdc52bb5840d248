//! A simulated browser for tests and the load tool: a str0m WebRTC client (full ICE as the
//! controlling agent, DTLS-SRTP, rtcp-mux, RTP mode) that offers what Chrome offers for audio
//! (Opus first, then G.711 and telephone-event), sends a 20 ms G.711 frame every 20 ms once
//! connected, and records what it receives. Include with
//! `#[path = "gateway/sim_browser.rs"] mod sim_browser;`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;

/// A received RTP packet.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: Instant,
    pub ssrc: u32,
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub payload_type: u8,
    pub payload: Vec<u8>,
}

/// What to send each 20 ms: a payload type and a frame maker.
pub type Source = Box<dyn FnMut() -> (u8, Vec<u8>) + Send>;

/// Where received RTP packets go instead of [`SimBrowser::received`] (the load tool counts them:
/// keeping every packet of hundreds of calls would take gigabytes).
pub type Sink = Box<dyn FnMut(Instant, &str0m::rtp::RtpPacket) + Send>;

/// The simulated browser.
pub struct SimBrowser {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    mid: Mid,
    pending: Option<SdpPendingOffer>,
    pub connected_at: Option<Instant>,
    pub received: Vec<Received>,
    /// When set, received packets go here, not into `received`.
    pub sink: Option<Sink>,
    /// The SSRC it sends with.
    pub ssrc: Option<u32>,
    /// How many frames it sent.
    pub sent: u64,
    seq: u64,
    timestamp: u32,
}

impl SimBrowser {
    /// Binds a socket on 127.0.0.1 and makes the offer.
    pub async fn offer() -> (SimBrowser, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        let now = Instant::now();
        let mut config = RtcConfig::new()
            .set_rtp_mode(true)
            .set_crypto_provider(Arc::new(siptoken_gateway::media::dtls::crypto_provider()))
            .clear_codecs();
        let codecs = config.codec_config();
        codecs.enable_opus(true, false);
        codecs.enable_pcmu(true, false);
        codecs.enable_pcma(true, false);
        siptoken_gateway::media::webrtc::add_telephone_event(codecs, 126, "0-15");
        let mut rtc = config.build(now);
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let mut change = rtc.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let b = SimBrowser {
            rtc,
            socket,
            local,
            mid,
            pending: Some(pending),
            connected_at: None,
            received: Vec::new(),
            sink: None,
            ssrc: None,
            sent: 0,
            seq: 1,
            timestamp: rand_u32(),
        };
        (b, offer.to_sdp_string())
    }

    /// Applies the gateway's answer.
    pub fn accept_answer(&mut self, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).unwrap();
        let pending = self.pending.take().expect("an offer is pending");
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
    }

    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output().expect("the simulated browser works") {
                Output::Timeout(t) => return t,
                Output::Transmit(t) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Output::Event(Event::Connected) => {
                    self.connected_at.get_or_insert(Instant::now());
                }
                Output::Event(Event::RtpPacket(p)) if self.sink.is_some() => {
                    if let Some(sink) = &mut self.sink {
                        sink(Instant::now(), &p);
                    }
                }
                Output::Event(Event::RtpPacket(p)) => self.received.push(Received {
                    at: Instant::now(),
                    ssrc: *p.header.ssrc,
                    seq: *p.seq_no,
                    timestamp: p.header.timestamp,
                    marker: p.header.marker,
                    payload_type: *p.header.payload_type,
                    payload: p.payload.to_vec(),
                }),
                Output::Event(_) => {}
            }
        }
    }

    /// Runs for `duration`: once connected, sends what `source` makes every 20 ms (nothing
    /// while it returns an empty payload).
    pub async fn run(&mut self, duration: Duration, source: &mut Source) {
        let end = Instant::now() + duration;
        self.run_while(|now| now < end, end, source).await
    }

    /// Like [`SimBrowser::run`], for as long as `go_on(now)` holds (asked at least every 20 ms
    /// once connected, and at `end`).
    pub async fn run_while(
        &mut self,
        mut go_on: impl FnMut(Instant) -> bool,
        end: Instant,
        source: &mut Source,
    ) {
        let mut next_frame = Instant::now();
        let mut buf = vec![0u8; 2048];
        loop {
            let timeout = self.drain();
            let now = Instant::now();
            if !go_on(now) {
                return;
            }
            if self.connected_at.is_some() && now >= next_frame {
                next_frame += Duration::from_millis(20);
                let (pt, payload) = source();
                if !payload.is_empty() {
                    self.write(now, pt, false, &payload);
                }
                continue;
            }
            let mut wake = timeout.min(end);
            if self.connected_at.is_some() {
                wake = wake.min(next_frame);
            }
            let input = tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, source)) => Some((n, source)),
                    Err(_) => None,
                },
                _ = tokio::time::sleep_until(wake.into()) => None,
            };
            let now = Instant::now();
            match input {
                Some((n, source)) => {
                    if let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &buf[..n]) {
                        let _ = self.rtc.handle_input(Input::Receive(now, r));
                    }
                }
                None => {
                    let _ = self.rtc.handle_input(Input::Timeout(now));
                }
            }
        }
    }

    /// Sends one RTP packet (after the connection is up).
    pub fn write(&mut self, now: Instant, pt: u8, marker: bool, payload: &[u8]) {
        let mut api = self.rtc.direct_api();
        let ssrc = api
            .stream_tx_by_mid(self.mid, None)
            .expect("a send stream")
            .ssrc();
        self.ssrc = Some(*ssrc);
        api.stream_tx(&ssrc).unwrap().write_rtp(
            RtpWrite::new(
                pt.into(),
                self.seq.into(),
                self.timestamp,
                now,
                payload.to_vec(),
            )
            .marker(marker),
        );
        self.seq += 1;
        if pt == 0 || pt == 8 {
            self.timestamp = self.timestamp.wrapping_add(160);
        }
        self.sent += 1;
        self.drain();
        let _ = self.rtc.handle_input(Input::Timeout(now));
    }

    /// The received packets with payload type `pt`.
    pub fn received_with(&self, pt: u8) -> Vec<&Received> {
        self.received
            .iter()
            .filter(|r| r.payload_type == pt)
            .collect()
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos().wrapping_mul(2_654_435_761)
}
