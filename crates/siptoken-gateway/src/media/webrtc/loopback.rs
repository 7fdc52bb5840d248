//! A browser in memory: a str0m client connected to a [`BrowserLeg`] with no sockets, for
//! the unit tests of the browser leg and the `media_relay` benchmark (and anyone testing code
//! built on [`BrowserLeg`]). Sans-IO like the leg itself: the caller moves time and datagrams
//! with [`Loopback::advance`] and [`Loopback::exchange`], so a test is fast and repeatable.
//!
//! ```
//! use siptoken_gateway::media::g711::Law;
//! use siptoken_gateway::media::webrtc::loopback::Loopback;
//!
//! // A client offering PCMU (and transport-cc, as str0m does by default).
//! let config = str0m::RtcConfig::new().enable_pcmu(true, false);
//! let browser = Loopback::connect(config, &[Law::Pcmu]).unwrap();
//! assert!(browser.leg.is_connected());
//! assert!(browser.offer.contains("transport-wide-cc"));
//! assert!(browser.answer.contains("a=rtpmap:0 PCMU/8000"));
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpPacket;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig, RtcError};

use super::{BrowserLeg, BrowserOutput, WebRtcContext, WebRtcError};
use crate::media::g711::Law;

/// Simulated time the handshake may take before [`Loopback::connect`] gives up.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);

/// Why [`Loopback::connect`] failed.
#[derive(Debug, thiserror::Error)]
pub enum LoopbackError {
    /// The client could not make its offer or take the answer.
    #[error("the str0m client: {0}")]
    Client(#[from] RtcError),
    /// The client made no offer (str0m had no change to apply).
    #[error("the str0m client made no offer")]
    NoOffer,
    /// The browser leg refused the offer.
    #[error("the browser leg refused the offer: {0}")]
    Answer(#[from] WebRtcError),
    /// ICE and DTLS did not complete within the simulated time.
    #[error("not connected after {0:?} of simulated time")]
    NotConnected(Duration),
}

/// A str0m client (the "browser") and the gateway's [`BrowserLeg`] for it, wired together in
/// memory. Fields are public: a test drives either end directly.
pub struct Loopback {
    /// The client.
    pub client: Rtc,
    /// The client's audio media line.
    pub mid: Mid,
    /// The gateway's leg.
    pub leg: BrowserLeg,
    /// The client's SDP offer.
    pub offer: String,
    /// The leg's SDP answer.
    pub answer: String,
    /// The client's address, as the leg sees it.
    pub client_addr: SocketAddr,
    /// The gateway's address, as the client sees it.
    pub gateway_addr: SocketAddr,
    /// The simulated clock both ends are at.
    pub now: Instant,
    /// RTP packets the client received (str0m RTP mode), in order.
    pub received: Vec<RtpPacket>,
    /// Errors the client returned for the leg's datagrams.
    pub client_errors: Vec<RtcError>,
    client_connected: bool,
    /// The client's datagrams not yet delivered to the leg.
    to_leg: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Loopback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loopback")
            .field("client_addr", &self.client_addr)
            .field("gateway_addr", &self.gateway_addr)
            .field("received", &self.received.len())
            .finish_non_exhaustive()
    }
}

impl Loopback {
    /// Builds the client from `config` (in RTP mode, with the gateway's crypto provider),
    /// offers one send-receive audio line, has a [`BrowserLeg`] answer it with `laws`, and runs
    /// ICE and DTLS until both ends are connected.
    pub fn connect(config: RtcConfig, laws: &[Law]) -> Result<Loopback, LoopbackError> {
        let client_addr: SocketAddr = "10.0.0.1:5000".parse().expect("a socket address");
        let gateway_addr: SocketAddr = "10.0.0.2:30000".parse().expect("a socket address");
        let start = Instant::now();
        let mut client = config
            .set_rtp_mode(true)
            .set_crypto_provider(Arc::new(crate::media::dtls::crypto_provider()))
            .build(start);
        client.add_local_candidate(Candidate::host(client_addr, "udp").map_err(RtcError::from)?);
        let mut change = client.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().ok_or(LoopbackError::NoOffer)?;
        let offer = offer.to_sdp_string();
        let ctx = WebRtcContext::new(gateway_addr)?;
        let (leg, answer) = BrowserLeg::answer(start, &ctx, &offer, laws)?;
        client.sdp_api().accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer).map_err(RtcError::from)?,
        )?;
        let mut pair = Loopback {
            client,
            mid,
            leg,
            offer,
            answer,
            client_addr,
            gateway_addr,
            now: start,
            received: Vec::new(),
            client_errors: Vec::new(),
            client_connected: false,
            to_leg: Vec::new(),
        };
        while pair.now < start + CONNECT_WITHIN {
            pair.exchange();
            if pair.client_connected && pair.leg.is_connected() {
                return Ok(pair);
            }
            pair.advance(Duration::from_millis(1));
        }
        Err(LoopbackError::NotConnected(CONNECT_WITHIN))
    }

    /// Moves the clock of both ends forward by `by`.
    pub fn advance(&mut self, by: Duration) {
        self.now += by;
        if let Err(e) = self.client.handle_input(Input::Timeout(self.now)) {
            self.client_errors.push(e);
        }
        self.leg.handle_timeout(self.now);
    }

    /// Polls the client until its timeout (str0m's contract after every input), keeping its
    /// datagrams for the leg and the RTP packets it received.
    pub fn poll_client(&mut self) {
        while let Ok(o) = self.client.poll_output() {
            match o {
                Output::Timeout(_) => break,
                Output::Transmit(t) => self.to_leg.push(t.contents.to_vec()),
                Output::Event(Event::RtpPacket(p)) => self.received.push(p),
                Output::Event(Event::Connected) => self.client_connected = true,
                Output::Event(_) => {}
            }
        }
    }

    /// Delivers the client's pending datagrams to the leg; how many there were.
    pub fn client_to_leg(&mut self) -> usize {
        self.poll_client();
        let datagrams = std::mem::take(&mut self.to_leg);
        for d in &datagrams {
            self.leg.receive(self.now, self.client_addr, d);
        }
        datagrams.len()
    }

    /// Delivers the leg's pending datagrams to the client; how many there were. (The leg's
    /// other outputs — RTP from the client, events — are dropped: poll the leg first to see
    /// them.)
    pub fn leg_to_client(&mut self) -> usize {
        let mut n = 0;
        loop {
            match self.leg.poll() {
                BrowserOutput::Timeout(_) => return n,
                BrowserOutput::Transmit(t) => {
                    let received = Receive::new(
                        Protocol::Udp,
                        self.gateway_addr,
                        self.client_addr,
                        &t.contents,
                    );
                    match received {
                        Ok(r) => {
                            if let Err(e) = self.client.handle_input(Input::Receive(self.now, r)) {
                                self.client_errors.push(e);
                            }
                        }
                        Err(e) => self.client_errors.push(RtcError::from(e)),
                    }
                    self.poll_client();
                    n += 1;
                }
                _ => {}
            }
        }
    }

    /// Moves datagrams both ways until neither end has any left (bounded: ten rounds).
    pub fn exchange(&mut self) {
        for _ in 0..10 {
            let sent = self.client_to_leg();
            if self.leg_to_client() == 0 && sent == 0 {
                break;
            }
        }
    }
}
