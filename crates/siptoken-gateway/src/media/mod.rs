//! Calls' media: an embedded relay between a browser's WebRTC audio leg and a SIP far end's
//! plain RTP leg, without transcoding (G.711 passes through; see `docs/gateway-protocol.md`,
//! "Media").
//!
//! One module per job:
//! - [`webrtc`]: the browser leg (str0m: ICE-lite, DTLS-SRTP, rtcp-mux, RTP mode), sans-IO;
//! - [`dtls`]: str0m's DTLS (dimpl) with one configuration per process instead of per call;
//! - [`demux`]: the one UDP socket shared by every browser leg, and which call a datagram is for;
//! - [`rtp`]: the SIP leg (symmetric RTP, RTCP reports, media timeout), sans-IO, on a port pair
//!   from [`ports`]; its wire formats in [`packet`];
//! - [`sdp`]: the SIP leg's SDP offer/answer;
//! - [`relay`]: payload passing between the legs (renumbering, PCMU/PCMA, telephone events, hold,
//!   DTMF generation from [`dtmf`], law conversion from [`g711`]), sans-IO;
//! - [`session`]: [`MediaEngine`] (one per gateway) and [`MediaSession`] (one per call, the API
//!   for the call layer), with the task that does a call's I/O;
//! - [`counters`]: figures for `/metrics`, with [`delay`], how long relayed packets were held,
//!   measured from the kernel's receive timestamps read by [`stamped`];
//! - [`buffers`]: kernel socket buffers for the media sockets;
//! - `fuzz`: the `sdp` fuzz target's driver (tests and the `fuzzing` feature only).

pub mod buffers;
pub mod counters;
pub mod delay;
pub mod demux;
pub mod dtls;
pub mod dtmf;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
pub mod g711;
pub mod packet;
pub mod ports;
pub mod relay;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod stamped;
pub mod webrtc;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use ports::PortRange;
pub use session::{MediaEngine, MediaSession, SessionOptions};

/// Media settings (from the configuration: `webrtc_listen`, `webrtc_public_ip`, `rtp_ports`,
/// `rtp_address`, `media_timeout_seconds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSettings {
    /// The shared WebRTC socket's address (port 0: any free port).
    pub webrtc_listen: SocketAddr,
    /// The address browsers are told to reach it at, when not the listen address.
    pub webrtc_public_ip: Option<IpAddr>,
    /// Ports for the SIP legs' RTP/RTCP pairs.
    pub rtp_ports: PortRange,
    /// The address the SIP legs' sockets bind to.
    pub rtp_address: IpAddr,
    /// A far end silent this long on an established call ends it (`None`: never).
    pub media_timeout: Option<Duration>,
}

/// Something the call layer hears about a call's media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEvent {
    /// The browser leg is connected (ICE and DTLS-SRTP up).
    BrowserConnected,
    /// The first RTP packet arrived from the far end (the SIP leg latched).
    SipMediaStarted,
    /// No RTP from the far end for `media_timeout_seconds` on an established call: end it
    /// (`media_timeout`, BYE).
    MediaTimeout,
    /// The browser leg failed: no audio can reach the browser any more; end the call.
    BrowserFailed(BrowserFailure),
}

/// How the browser leg failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrowserFailure {
    /// The DTLS handshake failed (or the fingerprint did not match).
    Dtls,
    /// The browser stopped its ICE consent checks (gone, or network lost).
    Disconnected,
    /// The browser closed DTLS.
    Closed,
    /// ICE and DTLS did not complete within the connect timeout.
    ConnectTimeout,
    /// str0m reported another unrecoverable error.
    Error,
}

/// Why a media operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The browser's offer cannot be answered (→ `invalid_sdp` for the client).
    #[error(transparent)]
    WebRtc(#[from] webrtc::WebRtcError),
    /// The far end's SDP cannot be used (→ 488, `unsupported_media`).
    #[error(transparent)]
    Sdp(#[from] sdp::SdpError),
    /// No RTP port pair could be bound.
    #[error("no RTP port available: {0}")]
    Ports(#[source] std::io::Error),
    /// An answer arrived but we made no offer.
    #[error("no offer to answer")]
    NoOffer,
    /// DTMF digits refused.
    #[error(transparent)]
    Dtmf(#[from] dtmf::DtmfError),
}
