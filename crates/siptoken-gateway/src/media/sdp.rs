//! The SIP leg's SDP (RFC 3264 offer/answer, RFC 8866 syntax): our offers and answers (PCMU 0,
//! PCMA 8, telephone-event/8000; `sendrecv`, `sendonly` or `inactive` for hold), the far end's
//! offers and answers as far as the relay needs them (where to send RTP and RTCP, which G.711
//! laws it takes, its telephone-event payload type, its direction, `c=0.0.0.0` hold), and the
//! negotiation between the two.
//!
//! The far end's SDP is parsed with `ezk-sdp-types` (a maintained RFC 8866 parser that handled
//! every PBX, sipp and baresip sample tried, hold offers included). Ours is written from a
//! fixed template: it has one shape, and a template is easier to read than building the
//! parser's structures field by field (the tests parse it back). The browser leg's SDP is
//! str0m's business (see `webrtc`).
//!
//! Only the static payload types 0 and 8 are taken as G.711 (RFC 3551); an offer that maps
//! PCMU or PCMA to a dynamic payload type is treated as offering no G.711.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytesstr::BytesStr;
use ezk_sdp_types::{
    MediaDescription, MediaType, ParseSessionDescriptionError, SessionDescription, TaggedAddress,
    TransportProtocol,
};

pub use super::g711::Law;

/// The payload type the gateway offers telephone-event/8000 on (the usual choice).
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// The most `m=` lines a far end's SDP may have. Each is mirrored (rejected) in our answer, so
/// without a bound an offer could make the answer as large as itself; real offers have one to
/// three (audio, video, perhaps T.38 or a BFCP stream).
pub const MAX_MEDIA_LINES: usize = 16;

/// The most formats (payload types) one `m=` line may list: there are only 128 RTP payload
/// types, and real offers list a dozen at most.
pub const MAX_FORMATS: usize = 128;

/// Whether the gateway may send media to `ip` when an SDP names it: a unicast address, not
/// multicast and not the IPv4 limited broadcast (`0.0.0.0`/`::` mean hold and are handled
/// before). Anything else would let one SDP make the gateway flood a network segment.
pub fn is_media_destination(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => !(v4.is_multicast() || v4.is_broadcast() || v4.is_unspecified()),
        IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
    }
}

/// A media direction (`a=sendrecv` …), always from the point of view of the side whose SDP
/// states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaDirection {
    /// Sends and receives.
    SendRecv,
    /// Sends only (e.g. the side that put the call on hold).
    SendOnly,
    /// Receives only (e.g. the side that was put on hold).
    RecvOnly,
    /// Neither.
    Inactive,
}

impl MediaDirection {
    /// The direction from its send and receive halves.
    pub const fn from_halves(sends: bool, receives: bool) -> MediaDirection {
        match (sends, receives) {
            (true, true) => MediaDirection::SendRecv,
            (true, false) => MediaDirection::SendOnly,
            (false, true) => MediaDirection::RecvOnly,
            (false, false) => MediaDirection::Inactive,
        }
    }

    /// Whether the side sends media.
    pub const fn sends(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::SendOnly)
    }

    /// Whether the side receives media.
    pub const fn receives(self) -> bool {
        matches!(self, MediaDirection::SendRecv | MediaDirection::RecvOnly)
    }

    /// The same stream seen from the other side (`sendonly` ↔ `recvonly`).
    pub const fn reversed(self) -> MediaDirection {
        MediaDirection::from_halves(self.receives(), self.sends())
    }

    /// The SDP attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaDirection::SendRecv => "sendrecv",
            MediaDirection::SendOnly => "sendonly",
            MediaDirection::RecvOnly => "recvonly",
            MediaDirection::Inactive => "inactive",
        }
    }
}

/// Why the far end's SDP cannot be used. Every variant is answered with SIP 488 (Not
/// Acceptable Here) and ends a call with `unsupported_media`; see [`SdpError::sip_status`].
#[derive(Debug, thiserror::Error)]
pub enum SdpError {
    /// Not SDP, or a line the parser rejects (including media types other than audio, video,
    /// text and application, such as T.38's `m=image`).
    #[error("malformed SDP: {0}")]
    Malformed(#[source] ParseSessionDescriptionError),
    /// No `m=audio` line with a non-zero port.
    #[error("no audio stream")]
    NoAudio,
    /// The audio stream is not plain RTP (`RTP/AVP` or `RTP/AVPF`): SRTP or something else.
    #[error("audio transport is not RTP/AVP")]
    UnsupportedTransport,
    /// Neither PCMU (0) nor PCMA (8) is offered, or the answer picked none of ours.
    #[error("no common codec (PCMU or PCMA)")]
    NoCommonCodec,
    /// The answer rejected our audio stream (port 0).
    #[error("audio stream rejected")]
    AudioRejected,
    /// The connection address is a host name (the gateway does not resolve names in SDP).
    #[error("connection address is a host name")]
    HostName,
    /// No `c=` line applies to the audio stream.
    #[error("no connection address")]
    NoConnection,
    /// An answer with a different number of media lines than the offer.
    #[error("answer does not match the offer's media lines")]
    AnswerMismatch,
    /// A connection address the gateway never sends media to: multicast or broadcast.
    #[error("connection address is not a unicast address")]
    NotUnicast,
    /// More than [`MAX_MEDIA_LINES`] `m=` lines, or more than [`MAX_FORMATS`] formats on one.
    #[error("too many media lines or formats")]
    TooLarge,
}

impl SdpError {
    /// The SIP status to answer an offer with: always 488.
    pub const fn sip_status(&self) -> u16 {
        488
    }
}

/// One `m=` line of the far end's SDP, kept to mirror it (rejected) in our answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MLine {
    media: String,
    proto: String,
    first_format: String,
}

/// The far end's audio stream, as far as the gateway uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    /// Where to send RTP; `None` when the far end does not want media (`c=0.0.0.0`, the
    /// RFC 2543 way of holding).
    pub rtp: Option<SocketAddr>,
    /// Where to send RTCP: `a=rtcp` or the RTP port plus one; `None` without RTP, or when
    /// that is port 0.
    pub rtcp: Option<SocketAddr>,
    /// Its direction, from its point of view; `c=0.0.0.0` takes away "receives".
    pub direction: MediaDirection,
    /// The G.711 laws on its `m=` line, in its order of preference.
    pub laws: Vec<Law>,
    /// Its telephone-event/8000 payload type, if it has one.
    pub telephone_event: Option<u8>,
    /// Its `a=ptime`, milliseconds.
    pub ptime: Option<u32>,
    /// The transport token of its audio line (`RTP/AVP` or `RTP/AVPF`), echoed in an answer.
    proto: String,
    pub(super) m_lines: Vec<MLine>,
    audio_index: usize,
}

impl RemoteMedia {
    /// Whether this SDP puts the gateway on hold: the far end will not receive
    /// (`sendonly`, `inactive`, or `c=0.0.0.0`).
    pub fn is_hold(&self) -> bool {
        !self.direction.receives()
    }
}

fn connection_ip(conn: &ezk_sdp_types::Connection) -> Result<IpAddr, SdpError> {
    match &conn.address {
        TaggedAddress::IP4(ip) => Ok(IpAddr::V4(*ip)),
        TaggedAddress::IP6(ip) => Ok(IpAddr::V6(*ip)),
        TaggedAddress::IP4FQDN(_) | TaggedAddress::IP6FQDN(_) => Err(SdpError::HostName),
    }
}

fn is_plain_rtp(proto: &TransportProtocol) -> bool {
    matches!(
        proto,
        TransportProtocol::RtpAvp | TransportProtocol::RtpAvpf
    )
}

fn telephone_event_pt(m: &MediaDescription) -> Option<u8> {
    m.rtpmap
        .iter()
        .find(|r| {
            m.media.fmts.contains(&r.payload)
                && r.encoding.eq_ignore_ascii_case("telephone-event")
                && r.clock_rate == 8000
        })
        .map(|r| r.payload)
}

fn ptime(m: &MediaDescription) -> Option<u32> {
    m.attributes
        .iter()
        .find(|a| a.name.as_str() == "ptime")
        .and_then(|a| a.value.as_ref()?.trim().parse().ok())
}

/// Parses the far end's SDP (an offer or an answer) and picks its audio stream: the first
/// `m=audio` line with a non-zero port. Refused besides what the parser rejects: more than
/// [`MAX_MEDIA_LINES`] `m=` lines or [`MAX_FORMATS`] formats on one ([`SdpError::TooLarge`]),
/// and a multicast or broadcast connection address ([`SdpError::NotUnicast`]): the gateway
/// sends media only where [`is_media_destination`] allows.
///
/// ```
/// use siptoken_gateway::media::sdp::{parse, Law, MediaDirection};
/// let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
///            m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n";
/// let far = parse(sdp).unwrap();
/// assert_eq!(far.rtp, Some("192.0.2.1:4000".parse().unwrap()));
/// assert_eq!(far.laws, [Law::Pcma, Law::Pcmu]);
/// assert_eq!(far.telephone_event, Some(101));
/// assert_eq!(far.direction, MediaDirection::SendOnly);
/// assert!(far.is_hold());
/// ```
pub fn parse(sdp: &str) -> Result<RemoteMedia, SdpError> {
    let sd = SessionDescription::parse(&BytesStr::from(sdp)).map_err(SdpError::Malformed)?;
    if sd.media_descriptions.len() > MAX_MEDIA_LINES
        || sd
            .media_descriptions
            .iter()
            .any(|m| m.media.fmts.len() > MAX_FORMATS)
    {
        return Err(SdpError::TooLarge);
    }
    let m_lines = sd
        .media_descriptions
        .iter()
        .map(|m| MLine {
            media: m.media.media_type.to_string(),
            proto: m.media.proto.to_string(),
            first_format: m.media.fmts.first().map_or("0".into(), u8::to_string),
        })
        .collect();
    let (audio_index, m) = sd
        .media_descriptions
        .iter()
        .enumerate()
        .find(|(_, m)| m.media.media_type == MediaType::Audio && m.media.port != 0)
        .ok_or(SdpError::NoAudio)?;
    if !is_plain_rtp(&m.media.proto) {
        return Err(SdpError::UnsupportedTransport);
    }
    let conn = m
        .connection
        .as_ref()
        .or(sd.connection.as_ref())
        .ok_or(SdpError::NoConnection)?;
    let ip = connection_ip(conn)?;
    let mut direction = m.direction;
    let held_by_address = ip.is_unspecified();
    if !held_by_address && !is_media_destination(ip) {
        return Err(SdpError::NotUnicast);
    }
    if held_by_address {
        direction = match direction {
            ezk_sdp_types::Direction::SendRecv | ezk_sdp_types::Direction::SendOnly => {
                ezk_sdp_types::Direction::SendOnly
            }
            _ => ezk_sdp_types::Direction::Inactive,
        };
    }
    let direction = match direction {
        ezk_sdp_types::Direction::SendRecv => MediaDirection::SendRecv,
        ezk_sdp_types::Direction::SendOnly => MediaDirection::SendOnly,
        ezk_sdp_types::Direction::RecvOnly => MediaDirection::RecvOnly,
        ezk_sdp_types::Direction::Inactive => MediaDirection::Inactive,
    };
    let rtp = (!held_by_address).then(|| SocketAddr::new(ip, m.media.port));
    // RTCP goes where `a=rtcp` says (its address, if a unicast IP, else the RTP one), or to the
    // RTP port plus one; nowhere when that is port 0 (`a=rtcp:0`, or RTP on port 65535).
    let rtcp = rtp.and_then(|rtp| {
        let (ip, port) = match &m.rtcp {
            Some(r) => {
                let ip = r
                    .address
                    .as_ref()
                    .and_then(|a| match a {
                        TaggedAddress::IP4(ip) => Some(IpAddr::V4(*ip)),
                        TaggedAddress::IP6(ip) => Some(IpAddr::V6(*ip)),
                        _ => None,
                    })
                    .filter(|ip| is_media_destination(*ip))
                    .unwrap_or(rtp.ip());
                (ip, r.port)
            }
            None => (rtp.ip(), rtp.port().checked_add(1)?),
        };
        (port != 0).then(|| SocketAddr::new(ip, port))
    });
    let mut laws = Vec::new();
    for &pt in &m.media.fmts {
        if let Some(law) = Law::from_payload_type(pt) {
            if !laws.contains(&law) {
                laws.push(law);
            }
        }
    }
    Ok(RemoteMedia {
        rtp,
        rtcp,
        direction,
        laws,
        telephone_event: telephone_event_pt(m),
        ptime: ptime(m),
        proto: m.media.proto.to_string(),
        m_lines,
        audio_index,
    })
}

/// What the gateway states in its SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// The address RTP is received on (the `c=` line).
    pub address: IpAddr,
    /// The RTP port (RTCP is on the next one).
    pub port: u16,
    /// The G.711 laws, in order of preference (at least one).
    pub laws: Vec<Law>,
    /// The telephone-event/8000 payload type, if offered or accepted.
    pub telephone_event: Option<u8>,
    /// Our direction.
    pub direction: MediaDirection,
}

/// The result of an offer/answer exchange on the SIP leg: what the relay needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The far end's side.
    pub remote: RemoteMedia,
    /// Our side, as stated in our offer or answer.
    pub local: LocalMedia,
    /// The laws the far end accepts (listed in its SDP and ours), its preferred first.
    pub laws: Vec<Law>,
    /// The telephone-event payload types, when both sides have telephone-event.
    pub telephone_event: Option<TelephoneEventPts>,
    /// Our effective direction: what our SDP says, narrowed by the far end's (we do not send to
    /// a side that does not receive, nor expect media from a side that does not send).
    pub direction: MediaDirection,
}

/// Telephone-event payload types on the SIP leg (each side receives on the type its own SDP
/// names; answers usually repeat the offer's, but need not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEventPts {
    /// The type we send events with (the far end's).
    pub send: u8,
    /// The type we expect events on (ours).
    pub receive: u8,
}

impl Negotiated {
    /// The law we send to the far end when the browser's law is not among [`Self::laws`].
    pub fn send_law(&self) -> Law {
        self.laws[0]
    }

    /// Whether the far end put us on hold (it does not want to receive).
    pub fn remote_hold(&self) -> bool {
        self.remote.is_hold()
    }
}

fn common_direction(ours: MediaDirection, theirs: MediaDirection) -> MediaDirection {
    MediaDirection::from_halves(
        ours.sends() && theirs.receives(),
        ours.receives() && theirs.sends(),
    )
}

/// Completes an exchange where we offered `offer` and the far end answered `answer`.
///
/// Fails when the answer rejects the audio stream or names none of the offered laws.
pub fn accept_answer(offer: &LocalMedia, answer: &str) -> Result<Negotiated, SdpError> {
    let remote = match parse(answer) {
        Ok(r) => r,
        // An answer that rejects our only stream has no usable audio line.
        Err(SdpError::NoAudio) => return Err(SdpError::AudioRejected),
        Err(e) => return Err(e),
    };
    if remote.m_lines.len() != 1 || remote.audio_index != 0 {
        return Err(SdpError::AnswerMismatch);
    }
    let laws: Vec<Law> = remote
        .laws
        .iter()
        .copied()
        .filter(|l| offer.laws.contains(l))
        .collect();
    if laws.is_empty() {
        return Err(SdpError::NoCommonCodec);
    }
    let telephone_event = match (offer.telephone_event, remote.telephone_event) {
        (Some(receive), Some(send)) => Some(TelephoneEventPts { send, receive }),
        _ => None,
    };
    Ok(Negotiated {
        direction: common_direction(offer.direction, remote.direction),
        local: offer.clone(),
        laws,
        telephone_event,
        remote,
    })
}

/// Answers the far end's `offer`: one law (`preferred` when the offer has it, else the offer's
/// first G.711 law), its telephone-event type echoed when it has one, and `wanted` narrowed to
/// what the offer allows (RFC 3264 §6.1: `sendonly` is answered `recvonly`, and so on).
pub fn answer_offer(
    offer: &str,
    address: IpAddr,
    port: u16,
    preferred: Option<Law>,
    wanted: MediaDirection,
) -> Result<Negotiated, SdpError> {
    let remote = parse(offer)?;
    let law = preferred
        .filter(|l| remote.laws.contains(l))
        .or_else(|| remote.laws.first().copied())
        .ok_or(SdpError::NoCommonCodec)?;
    let direction = common_direction(wanted, remote.direction);
    let telephone_event = remote.telephone_event.map(|pt| TelephoneEventPts {
        send: pt,
        receive: pt,
    });
    Ok(Negotiated {
        local: LocalMedia {
            address,
            port,
            laws: vec![law],
            telephone_event: remote.telephone_event,
            direction,
        },
        laws: vec![law],
        telephone_event,
        direction,
        remote,
    })
}

/// Our SDP session: the `o=` line's identifiers, and the version, which goes up by one each
/// time what we state changes (RFC 3264 §8) and stays when we repeat ourselves (a session
/// refresh).
#[derive(Debug, Clone)]
pub struct SdpWriter {
    session_id: u64,
    version: u64,
    last: Option<(LocalMedia, Option<Vec<MLine>>)>,
}

impl SdpWriter {
    /// A new session with a random identifier.
    pub fn new() -> SdpWriter {
        let session_id = rand::random::<u64>() >> 2;
        SdpWriter {
            session_id,
            version: session_id,
            last: None,
        }
    }

    /// Our offer.
    pub fn offer(&mut self, local: &LocalMedia) -> String {
        self.write(local, None)
    }

    /// Our answer to `negotiated` (from [`answer_offer`]): the offer's other media lines come
    /// back rejected (port 0), in their places.
    pub fn answer(&mut self, negotiated: &Negotiated) -> String {
        self.write(&negotiated.local, Some(&negotiated.remote))
    }

    fn write(&mut self, local: &LocalMedia, mirror: Option<&RemoteMedia>) -> String {
        let shape = (local.clone(), mirror.map(|m| m.m_lines.clone()));
        if self.last.as_ref() != Some(&shape) {
            if self.last.is_some() {
                self.version += 1;
            }
            self.last = Some(shape);
        }
        let family = if local.address.is_ipv4() {
            "IP4"
        } else {
            "IP6"
        };
        let mut s = String::with_capacity(400);
        let _ = write!(
            s,
            "v=0\r\no=siptoken {} {} IN {family} {addr}\r\ns=siptoken\r\nc=IN {family} {addr}\r\nt=0 0\r\n",
            self.session_id,
            self.version,
            addr = local.address
        );
        let audio = |s: &mut String, proto: &str| {
            let _ = write!(s, "m=audio {} {proto}", local.port);
            for law in &local.laws {
                let _ = write!(s, " {}", law.payload_type());
            }
            if let Some(pt) = local.telephone_event {
                let _ = write!(s, " {pt}");
            }
            s.push_str("\r\n");
            for law in &local.laws {
                let _ = write!(
                    s,
                    "a=rtpmap:{} {}/8000\r\n",
                    law.payload_type(),
                    law.encoding_name()
                );
            }
            if let Some(pt) = local.telephone_event {
                let _ = write!(
                    s,
                    "a=rtpmap:{pt} telephone-event/8000\r\na=fmtp:{pt} 0-16\r\n"
                );
            }
            let _ = write!(s, "a=ptime:20\r\na={}\r\n", local.direction.as_str());
        };
        match mirror {
            None => audio(&mut s, "RTP/AVP"),
            Some(remote) => {
                for (i, m) in remote.m_lines.iter().enumerate() {
                    if i == remote.audio_index {
                        audio(&mut s, &remote.proto);
                    } else {
                        let _ = write!(s, "m={} 0 {} {}\r\n", m.media, m.proto, m.first_format);
                    }
                }
            }
        }
        s
    }
}

impl Default for SdpWriter {
    fn default() -> SdpWriter {
        SdpWriter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crlf(s: &str) -> String {
        s.lines().map(|l| format!("{}\r\n", l.trim())).collect()
    }

    /// An Asterisk (chan_pjsip) offer: PCMA first, telephone-event, `a=rtcp`-less.
    const ASTERISK: &str = "v=0
        o=- 1698062591 1698062591 IN IP4 203.0.113.5
        s=Asterisk
        c=IN IP4 203.0.113.5
        t=0 0
        m=audio 17250 RTP/AVP 8 0 3 101
        a=rtpmap:8 PCMA/8000
        a=rtpmap:0 PCMU/8000
        a=rtpmap:3 GSM/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=maxptime:150
        a=sendrecv";

    /// sipp's built-in UAC/UAS body.
    const SIPP: &str = "v=0
        o=user1 53655765 2353687637 IN IP4 127.0.0.1
        s=-
        c=IN IP4 127.0.0.1
        t=0 0
        m=audio 6000 RTP/AVP 0
        a=rtpmap:0 PCMU/8000";

    /// baresip 1.0 with opus, G.711 and telephone-event, ICE-less, `a=rtcp-rsize`, IPv6.
    const BARESIP: &str = "v=0
        o=- 1366498437 2119612049 IN IP6 2001:db8::7
        s=-
        c=IN IP6 2001:db8::7
        t=0 0
        m=audio 10770 RTP/AVP 96 0 8 101
        b=AS:96
        a=rtpmap:96 opus/48000/2
        a=fmtp:96 stereo=1;sprop-stereo=1
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=rtcp:10771
        a=rtcp-rsize
        a=sendrecv
        a=label:1
        a=ssrc:1263815370 cname:b3bbc6f3-2b10-4e1a-8ab8-7f7a0ed3eb5e
        a=mid:1";

    /// A FreeSWITCH hold re-INVITE: `a=sendonly`, media attributes at session level.
    const FREESWITCH_HOLD: &str = "v=0
        o=FreeSWITCH 1698000000 1698000001 IN IP4 198.51.100.20
        s=FreeSWITCH
        c=IN IP4 198.51.100.20
        t=0 0
        m=audio 23404 RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=sendonly
        a=rtcp:23405 IN IP4 198.51.100.20";

    /// An old (RFC 2543) hold: `c=0.0.0.0`.
    const ZERO_HOLD: &str = "v=0
        o=Cisco-SIPUA 1 2 IN IP4 192.0.2.44
        s=SIP Call
        c=IN IP4 0.0.0.0
        t=0 0
        m=audio 28000 RTP/AVP 0 8 101
        a=rtpmap:101 telephone-event/8000";

    #[test]
    fn asterisk_offer() {
        let r = parse(&crlf(ASTERISK)).unwrap();
        assert_eq!(r.rtp, Some("203.0.113.5:17250".parse().unwrap()));
        assert_eq!(r.rtcp, Some("203.0.113.5:17251".parse().unwrap()));
        assert_eq!(r.laws, [Law::Pcma, Law::Pcmu]);
        assert_eq!(r.telephone_event, Some(101));
        assert_eq!(r.ptime, Some(20));
        assert_eq!(r.direction, MediaDirection::SendRecv);
        assert!(!r.is_hold());
        // Answered with the offer's first law unless the browser's law is offered.
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let n = answer_offer(&crlf(ASTERISK), ip, 20000, None, MediaDirection::SendRecv).unwrap();
        assert_eq!(n.laws, [Law::Pcma]);
        let n = answer_offer(
            &crlf(ASTERISK),
            ip,
            20000,
            Some(Law::Pcmu),
            MediaDirection::SendRecv,
        )
        .unwrap();
        assert_eq!(
            (n.laws.as_slice(), n.send_law()),
            (&[Law::Pcmu][..], Law::Pcmu)
        );
        assert_eq!(
            n.telephone_event,
            Some(TelephoneEventPts {
                send: 101,
                receive: 101
            })
        );
        let answer = SdpWriter::new().answer(&n);
        assert!(
            answer.contains("m=audio 20000 RTP/AVP 0 101\r\n"),
            "{answer}"
        );
        assert!(answer.contains("a=rtpmap:101 telephone-event/8000\r\n"));
        assert!(answer.contains("a=sendrecv\r\n"));
        assert!(!answer.contains("GSM"));
    }

    #[test]
    fn sipp_offer_without_telephone_event() {
        let r = parse(&crlf(SIPP)).unwrap();
        assert_eq!(r.laws, [Law::Pcmu]);
        assert_eq!(r.telephone_event, None);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let n = answer_offer(
            &crlf(SIPP),
            ip,
            20002,
            Some(Law::Pcma),
            MediaDirection::SendRecv,
        )
        .unwrap();
        assert_eq!(n.laws, [Law::Pcmu]);
        assert_eq!(n.telephone_event, None);
        let answer = SdpWriter::new().answer(&n);
        assert!(answer.contains("m=audio 20002 RTP/AVP 0\r\n"), "{answer}");
        assert!(!answer.contains("telephone-event"));
    }

    #[test]
    fn baresip_ipv6_offer_with_rtcp_attribute() {
        let r = parse(&crlf(BARESIP)).unwrap();
        assert_eq!(r.rtp, Some("[2001:db8::7]:10770".parse().unwrap()));
        assert_eq!(r.rtcp, Some("[2001:db8::7]:10771".parse().unwrap()));
        assert_eq!(r.laws, [Law::Pcmu, Law::Pcma]);
        assert_eq!(r.telephone_event, Some(101));
    }

    #[test]
    fn hold_offers() {
        let r = parse(&crlf(FREESWITCH_HOLD)).unwrap();
        assert_eq!(r.direction, MediaDirection::SendOnly);
        assert!(r.is_hold());
        assert_eq!(r.rtcp, Some("198.51.100.20:23405".parse().unwrap()));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        let n = answer_offer(
            &crlf(FREESWITCH_HOLD),
            ip,
            20000,
            None,
            MediaDirection::SendRecv,
        )
        .unwrap();
        assert_eq!(n.direction, MediaDirection::RecvOnly);
        assert!(n.remote_hold());
        assert!(SdpWriter::new().answer(&n).contains("a=recvonly\r\n"));
        // Held on both sides: inactive.
        let n = answer_offer(
            &crlf(FREESWITCH_HOLD),
            ip,
            20000,
            None,
            MediaDirection::SendOnly,
        )
        .unwrap();
        assert_eq!(n.direction, MediaDirection::Inactive);

        let r = parse(&crlf(ZERO_HOLD)).unwrap();
        assert_eq!((r.rtp, r.rtcp), (None, None));
        assert_eq!(r.direction, MediaDirection::SendOnly);
        assert!(r.is_hold());
        let n = answer_offer(&crlf(ZERO_HOLD), ip, 20000, None, MediaDirection::SendRecv).unwrap();
        assert_eq!(n.direction, MediaDirection::RecvOnly);
        let inactive = crlf(ZERO_HOLD).replace("t=0 0\r\n", "t=0 0\r\na=recvonly\r\n");
        assert_eq!(
            parse(&inactive).unwrap().direction,
            MediaDirection::Inactive
        );
    }

    #[test]
    fn no_g711_srtp_and_other_refusals() {
        let opus_only = crlf(BARESIP).replace("RTP/AVP 96 0 8 101", "RTP/AVP 96 101");
        let e = answer_offer(
            &opus_only,
            [127, 0, 0, 1].into(),
            1,
            None,
            MediaDirection::SendRecv,
        );
        assert!(matches!(e, Err(SdpError::NoCommonCodec)), "{e:?}");
        assert_eq!(e.unwrap_err().sip_status(), 488);
        let srtp = crlf(SIPP).replace("RTP/AVP", "RTP/SAVP");
        assert!(matches!(parse(&srtp), Err(SdpError::UnsupportedTransport)));
        let video = crlf(SIPP).replace("m=audio", "m=video");
        assert!(matches!(parse(&video), Err(SdpError::NoAudio)));
        let zero = crlf(SIPP).replace("m=audio 6000", "m=audio 0");
        assert!(matches!(parse(&zero), Err(SdpError::NoAudio)));
        let fqdn = crlf(SIPP).replace("IN IP4 127.0.0.1\r\nt=", "IN IP4 media.example\r\nt=");
        assert!(
            matches!(parse(&fqdn), Err(SdpError::HostName)),
            "{:?}",
            parse(&fqdn)
        );
        let no_c = crlf(SIPP).replace("c=IN IP4 127.0.0.1\r\n", "");
        assert!(matches!(parse(&no_c), Err(SdpError::NoConnection)));
        assert!(matches!(parse("hello"), Err(SdpError::Malformed(_))));
        assert!(matches!(parse(""), Err(SdpError::Malformed(_))));
        let t38 = crlf(SIPP).replace("m=audio 6000 RTP/AVP 0", "m=image 6000 udptl t38");
        assert!(matches!(parse(&t38), Err(SdpError::Malformed(_))));
    }

    #[test]
    fn multicast_and_broadcast_addresses_are_refused() {
        for bad in ["224.0.0.1", "239.255.255.250", "255.255.255.255"] {
            let sdp = crlf(SIPP).replace("c=IN IP4 127.0.0.1", &format!("c=IN IP4 {bad}"));
            assert!(matches!(parse(&sdp), Err(SdpError::NotUnicast)), "{bad}");
        }
        let v6 = crlf(BARESIP).replace("c=IN IP6 2001:db8::7", "c=IN IP6 ff02::1");
        assert!(matches!(parse(&v6), Err(SdpError::NotUnicast)));
        // A multicast a=rtcp address falls back to the RTP one.
        let rtcp = crlf(BARESIP).replace("a=rtcp:10771", "a=rtcp:10771 IN IP6 ff02::1");
        let far = parse(&rtcp).unwrap();
        assert_eq!(far.rtcp, Some("[2001:db8::7]:10771".parse().unwrap()));
        // 0.0.0.0 is still hold, not an error.
        assert!(parse(&crlf(ZERO_HOLD)).unwrap().is_hold());
    }

    #[test]
    fn no_rtcp_to_port_zero() {
        let top = crlf(SIPP).replace("m=audio 6000", "m=audio 65535");
        let far = parse(&top).unwrap();
        assert_eq!(far.rtp, Some("127.0.0.1:65535".parse().unwrap()));
        assert_eq!(far.rtcp, None, "65535 + 1 is no port");
        let zero = crlf(BARESIP).replace("a=rtcp:10771", "a=rtcp:0");
        assert_eq!(parse(&zero).unwrap().rtcp, None);
    }

    #[test]
    fn absurd_numbers_of_media_lines_or_formats_are_refused() {
        let extra = "m=video 0 RTP/AVP 96\r\n".repeat(MAX_MEDIA_LINES - 1);
        let most = format!("{}{extra}", crlf(SIPP));
        assert!(parse(&most).is_ok(), "{MAX_MEDIA_LINES} lines are fine");
        let too_many = format!("{most}m=video 0 RTP/AVP 96\r\n");
        assert!(matches!(parse(&too_many), Err(SdpError::TooLarge)));
        let formats: String = (0..=MAX_FORMATS).map(|i| format!(" {}", i % 128)).collect();
        let wide = crlf(SIPP).replace("RTP/AVP 0", &format!("RTP/AVP{formats}"));
        assert!(matches!(parse(&wide), Err(SdpError::TooLarge)));
    }

    #[test]
    fn answer_mirrors_other_media_lines_rejected() {
        let offer = crlf(&format!(
            "{}\nm=video 6002 RTP/AVP 96\na=rtpmap:96 H264/90000",
            SIPP.replace("m=audio", "m=video 6004 RTP/AVP 97\nm=audio")
        ));
        let n = answer_offer(
            &offer,
            [10, 0, 0, 1].into(),
            30000,
            None,
            MediaDirection::SendRecv,
        )
        .unwrap();
        let answer = SdpWriter::new().answer(&n);
        let m: Vec<&str> = answer.lines().filter(|l| l.starts_with("m=")).collect();
        assert_eq!(
            m,
            [
                "m=video 0 RTP/AVP 97",
                "m=audio 30000 RTP/AVP 0",
                "m=video 0 RTP/AVP 96"
            ]
        );
    }

    fn offer(laws: Vec<Law>, direction: MediaDirection) -> LocalMedia {
        LocalMedia {
            address: "192.0.2.9".parse().unwrap(),
            port: 20000,
            laws,
            telephone_event: Some(TELEPHONE_EVENT_PT),
            direction,
        }
    }

    #[test]
    fn our_offer_parses_back_and_answers_are_accepted() {
        let mut w = SdpWriter::new();
        let ours = offer(vec![Law::Pcmu, Law::Pcma], MediaDirection::SendRecv);
        let text = w.offer(&ours);
        assert!(text.contains("m=audio 20000 RTP/AVP 0 8 101\r\n"), "{text}");
        assert!(text.starts_with("v=0\r\no=siptoken "));
        let back = parse(&text).unwrap();
        assert_eq!(back.rtp, Some("192.0.2.9:20000".parse().unwrap()));
        assert_eq!(back.laws, [Law::Pcmu, Law::Pcma]);
        assert_eq!(back.telephone_event, Some(101));
        assert_eq!(back.direction, MediaDirection::SendRecv);

        // sipp answers PCMU only, without telephone-event.
        let n = accept_answer(&ours, &crlf(SIPP)).unwrap();
        assert_eq!((n.laws.clone(), n.telephone_event), (vec![Law::Pcmu], None));
        // A PCMA-only far end: the browser's PCMU will be converted.
        let pcma = crlf(SIPP).replace(
            "RTP/AVP 0",
            "RTP/AVP 8 96\r\na=rtpmap:96 telephone-event/8000",
        );
        let n = accept_answer(&ours, &pcma).unwrap();
        assert_eq!(n.send_law(), Law::Pcma);
        assert_eq!(
            n.telephone_event,
            Some(TelephoneEventPts {
                send: 96,
                receive: 101
            })
        );
        // Answers that cannot work.
        let gsm = crlf(SIPP).replace("RTP/AVP 0", "RTP/AVP 3");
        assert!(matches!(
            accept_answer(&ours, &gsm),
            Err(SdpError::NoCommonCodec)
        ));
        let rejected = crlf(SIPP).replace("m=audio 6000", "m=audio 0");
        assert!(matches!(
            accept_answer(&ours, &rejected),
            Err(SdpError::AudioRejected)
        ));
        let two = format!("{}m=audio 7000 RTP/AVP 0\r\n", crlf(SIPP));
        assert!(matches!(
            accept_answer(&ours, &two),
            Err(SdpError::AnswerMismatch)
        ));
    }

    #[test]
    fn hold_offer_and_answer_directions() {
        let mut w = SdpWriter::new();
        let held = offer(vec![Law::Pcmu, Law::Pcma], MediaDirection::SendOnly);
        assert!(w.offer(&held).contains("a=sendonly\r\n"));
        let answer = crlf(SIPP) + "a=recvonly\r\n";
        let n = accept_answer(&held, &answer).unwrap();
        assert_eq!(n.direction, MediaDirection::SendOnly);
        assert!(!n.direction.receives());
        // A far end that answers our sendrecv offer with inactive.
        let n = accept_answer(
            &offer(vec![Law::Pcmu], MediaDirection::SendRecv),
            &(crlf(SIPP) + "a=inactive\r\n"),
        )
        .unwrap();
        assert_eq!(n.direction, MediaDirection::Inactive);
    }

    #[test]
    fn version_goes_up_only_when_the_sdp_changes() {
        let mut w = SdpWriter::new();
        let version = |s: &str| -> u64 {
            let o = s.lines().nth(1).unwrap();
            o.split(' ').nth(2).unwrap().parse().unwrap()
        };
        let a = offer(vec![Law::Pcmu], MediaDirection::SendRecv);
        let v1 = version(&w.offer(&a));
        assert_eq!(version(&w.offer(&a)), v1);
        let held = offer(vec![Law::Pcmu], MediaDirection::SendOnly);
        assert_eq!(version(&w.offer(&held)), v1 + 1);
        assert_eq!(version(&w.offer(&a)), v1 + 2);
    }

    #[test]
    fn directions() {
        use MediaDirection::*;
        for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
            assert_eq!(d.reversed().reversed(), d);
            assert_eq!(MediaDirection::from_halves(d.sends(), d.receives()), d);
        }
        assert_eq!(SendOnly.reversed(), RecvOnly);
        assert_eq!(common_direction(SendRecv, SendOnly), RecvOnly);
        assert_eq!(common_direction(SendOnly, SendOnly), Inactive);
    }

    proptest::proptest! {
        #[test]
        fn garbage_is_an_error_not_a_panic(s in "(v=0\r\n)?([a-z]=[ -~]{0,30}\r\n){0,12}") {
            let _ = parse(&s);
        }

        #[test]
        fn mutated_samples_never_panic(cut in 0usize..400, byte in 0u8..128) {
            let mut s = crlf(BARESIP).into_bytes();
            if cut < s.len() {
                s[cut] = byte;
            }
            if let Ok(s) = String::from_utf8(s) {
                let _ = parse(&s);
            }
        }
    }
}
