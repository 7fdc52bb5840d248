//! The calls of one registration, with their media: the glue between the WebSocket session's
//! call commands, the sans-IO call state machines ([`super::call`]) and the media sessions
//! ([`crate::media`]). It lives inside the registration task ([`super::register`]), which owns
//! the SIP flow: every call of an account goes out through, and comes back to, the flow (and
//! the Contact) it registered with.
//!
//! Sans-IO like the machines it drives: commands, SIP messages, media events and time in;
//! datagrams to send and updates for the client out. The only I/O it starts is the media
//! session's own task (created by [`MediaEngine::create_for_browser_offer`]).

use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::call::target::target_uri;
use super::call::{
    Call, CallError, CallEvent, CallSettings, Direction, EndReason, Local, Output, Party,
};
use super::message::Message;
use crate::media::dtmf::DtmfError;
use crate::media::{sdp, MediaEngine, MediaError, MediaEvent, MediaSession, SessionOptions};

/// What a registration needs to carry calls: the gateway's media engine and the call timers.
#[derive(Clone)]
pub struct CallContext {
    /// The shared WebRTC socket and RTP ports.
    pub media: MediaEngine,
    /// Timers, ring timeout, User-Agent.
    pub settings: CallSettings,
}

/// A call command from the WebSocket session (ids and limits already checked there).
#[derive(Debug)]
pub enum CallCommand {
    /// Place a call to `target` (as the client wrote it) with the browser's WebRTC offer.
    Call {
        /// The client's id for the call.
        call: String,
        /// `sip:`/`sips:`/`tel:` URI, or a user part or number.
        target: String,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Take an incoming call with the browser's WebRTC offer.
    Answer {
        /// The gateway's id of the incoming call.
        call: String,
        /// The browser's SDP offer.
        sdp: String,
    },
    /// Decline an incoming call with 486 or 603.
    Reject {
        /// The call.
        call: String,
        /// 486 or 603.
        status: u16,
    },
    /// CANCEL before the answer, BYE after.
    Hangup {
        /// The call.
        call: String,
    },
    /// re-INVITE sendonly (`true`) or sendrecv (`false`).
    Hold {
        /// The call.
        call: String,
        /// Hold or resume.
        on: bool,
    },
    /// Send DTMF digits (RFC 4733 when negotiated, else SIP INFO).
    Dtmf {
        /// The call.
        call: String,
        /// `0-9 * # A-D`, at most 32.
        digits: String,
    },
    /// Blind transfer (REFER).
    Transfer {
        /// The call.
        call: String,
        /// Where to.
        target: String,
    },
}

impl CallCommand {
    /// The call the command is about.
    pub fn call(&self) -> &str {
        match self {
            CallCommand::Call { call, .. }
            | CallCommand::Answer { call, .. }
            | CallCommand::Reject { call, .. }
            | CallCommand::Hangup { call }
            | CallCommand::Hold { call, .. }
            | CallCommand::Dtmf { call, .. }
            | CallCommand::Transfer { call, .. } => call,
        }
    }
}

/// Why a command was refused (the WebSocket `error` code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No live call of that id.
    UnknownCall,
    /// The target is not a usable URI, user or number.
    InvalidTarget,
    /// The browser's SDP cannot be answered.
    InvalidSdp,
    /// Not possible in the call's state, or bad arguments (digits, status).
    BadRequest,
    /// No RTP port could be had, or another local failure.
    Failed,
}

/// Something the client hears about one of its calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallUpdate {
    /// An INVITE reached the account.
    Incoming {
        /// The caller's URI.
        from: String,
        /// The caller's display name, if any.
        display_name: Option<String>,
    },
    /// The gateway's SDP answer to the browser's offer.
    Media {
        /// The answer.
        sdp: String,
    },
    /// 180, or 183 without SDP.
    Ringing,
    /// 183 with SDP: the far end's audio plays.
    EarlyMedia,
    /// The call is established.
    Answered,
    /// Hold state changed.
    Held {
        /// Who.
        by: Party,
    },
    /// Hold state changed back.
    Resumed {
        /// Who.
        by: Party,
    },
    /// The REFER was accepted.
    Transferring,
    /// The call is over (exactly once per call).
    Ended {
        /// Why.
        reason: EndReason,
        /// The SIP status that decided it.
        sip_status: Option<u16>,
    },
    /// A command about this call was refused.
    Refused {
        /// Why.
        refusal: Refusal,
        /// For the client (never an address or a secret).
        message: String,
    },
}

/// The longest caller URI and display name passed to the client (they come from the network).
const MAX_FROM: usize = 512;
const MAX_DISPLAY_NAME: usize = 128;

struct Entry {
    id: String,
    call: Call,
    media: Option<MediaSession>,
    /// The SIP offer of an incoming call, until it is answered.
    sip_offer: Option<String>,
    /// The media session's task ended (its event stream is closed).
    media_closed: bool,
}

/// The calls of one registration.
pub struct Agent {
    ctx: CallContext,
    local: Arc<Local>,
    /// The account's domain (`sip:TO@domain` for bare numbers).
    domain: String,
    /// The local address of the SIP flow (the SIP leg's SDP when `rtp_address` is a wildcard).
    sip_address: IpAddr,
    calls: Vec<Entry>,
    transmits: VecDeque<Vec<u8>>,
    updates: VecDeque<(String, CallUpdate)>,
}

fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Calls one registration keeps at most, ended ones still absorbing retransmissions included.
/// An INVITE beyond is answered `486 Busy Here` statelessly and creates nothing: the client's
/// limits (`max_calls_per_session`, `max_calls`) refuse such calls anyway, but each refused
/// call would otherwise stay for its final response's retransmission time (Timer H, 32 s over
/// UDP), so a flood of INVITEs through the registrar could grow the list, and the linear
/// search every message makes through it, without bound.
pub const MAX_CALLS_PER_REGISTRATION: usize = 32;

fn incoming_id() -> String {
    format!("in-{}", super::compose::random_hex(12))
}

impl Agent {
    /// The calls of the registration `local`, whose account's domain is `domain` and whose SIP
    /// flow's local address is `sip_address`.
    pub fn new(ctx: CallContext, local: Local, domain: String, sip_address: IpAddr) -> Agent {
        Agent {
            ctx,
            local: Arc::new(local),
            domain,
            sip_address,
            calls: Vec::new(),
            transmits: VecDeque::new(),
            updates: VecDeque::new(),
        }
    }

    /// The next datagram to send on the registration's flow.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next update for the client.
    pub fn poll_update(&mut self) -> Option<(String, CallUpdate)> {
        self.updates.pop_front()
    }

    /// When [`Agent::handle_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.calls
            .iter()
            .filter_map(|e| e.call.poll_timeout())
            .min()
    }

    /// Time passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        for i in 0..self.calls.len() {
            if self.calls[i].call.poll_timeout().is_some_and(|t| t <= now) {
                self.calls[i].call.handle_timeout(now);
            }
        }
        self.pump(now);
    }

    /// Offers a message that arrived on the flow to the calls: `true` when one of them took it.
    pub fn handle_message(&mut self, now: Instant, m: &Message) -> bool {
        let Some(i) = self.calls.iter().position(|e| e.call.matches(m)) else {
            tracing::debug!(method = ?m.method(), status = ?m.code(), cseq = ?m.header("cseq"), "a SIP message no call claims");
            return false;
        };
        tracing::debug!(call = %self.calls[i].id, method = ?m.method(), status = ?m.code(), cseq = ?m.header("cseq"), "SIP message for a call");
        self.calls[i].call.handle_message(m, now);
        self.pump(now);
        true
    }

    /// An INVITE that starts a call to this account (see `incoming::out_of_dialog`).
    pub fn incoming(&mut self, now: Instant, invite: &Message) {
        if self.calls.len() >= MAX_CALLS_PER_REGISTRATION {
            tracing::debug!("incoming INVITE refused: the registration has too many calls");
            self.transmits
                .push_back(super::incoming::reply(invite, 486).encode());
            return;
        }
        match Call::incoming(self.local.clone(), self.ctx.settings.clone(), invite, now) {
            Ok(call) => {
                let sip_offer = call_offer(invite);
                self.calls.push(Entry {
                    id: incoming_id(),
                    call,
                    media: None,
                    sip_offer,
                    media_closed: false,
                });
            }
            Err(reply) => {
                if !reply.is_empty() {
                    self.transmits.push_back(reply);
                }
            }
        }
        self.pump(now);
    }

    /// Ends every call (`logged_out`): the client logged out, its socket closed, the
    /// registration was lost or the gateway shuts down. Each is hung up properly (CANCEL, BYE
    /// or a final response).
    pub fn hang_up_all(&mut self, now: Instant) {
        for e in &mut self.calls {
            if !e.call.is_ended() {
                let _ = e.call.terminate(EndReason::LoggedOut, now);
            }
        }
        self.pump(now);
    }

    /// A command from the client.
    pub fn command(&mut self, now: Instant, cmd: CallCommand) {
        let id = cmd.call().to_owned();
        if let Err((refusal, message)) = self.try_command(now, cmd) {
            self.updates
                .push_back((id, CallUpdate::Refused { refusal, message }));
        }
        self.pump(now);
    }

    fn try_command(&mut self, now: Instant, cmd: CallCommand) -> Result<(), (Refusal, String)> {
        let refuse = |r: Refusal, m: &str| (r, m.to_owned());
        let call_error = |e: CallError| {
            let r = match e {
                CallError::InvalidTarget => Refusal::InvalidTarget,
                _ => Refusal::BadRequest,
            };
            (r, e.to_string())
        };
        if let CallCommand::Call { call, target, sdp } = cmd {
            let uri = target_uri(&target, &self.domain).map_err(|_| {
                refuse(
                    Refusal::InvalidTarget,
                    "not a SIP or tel URI, user or number",
                )
            })?;
            let options = SessionOptions {
                sip_address: self.sip_address,
                law: None,
            };
            let (answer, mut media) = self
                .ctx
                .media
                .create_for_browser_offer(&sdp, options)
                .map_err(media_refusal)?;
            let offer = media.sip_offer();
            let c = Call::outgoing(
                self.local.clone(),
                self.ctx.settings.clone(),
                &uri,
                offer.into_bytes(),
                now,
            )
            .map_err(call_error)?;
            self.updates
                .push_back((call.clone(), CallUpdate::Media { sdp: answer }));
            self.calls.push(Entry {
                id: call,
                call: c,
                media: Some(media),
                sip_offer: None,
                media_closed: false,
            });
            return Ok(());
        }
        let i = self
            .calls
            .iter()
            .position(|e| e.id == cmd.call() && !e.call.is_ended())
            .ok_or_else(|| refuse(Refusal::UnknownCall, "no such call"))?;
        let e = &mut self.calls[i];
        match cmd {
            CallCommand::Call { .. } => unreachable!("handled above"),
            CallCommand::Answer { sdp, .. } => {
                if e.call.direction() != Direction::Inbound || e.media.is_some() {
                    return Err(refuse(
                        Refusal::BadRequest,
                        "not an incoming call waiting for an answer",
                    ));
                }
                let law = match &e.sip_offer {
                    Some(offer) => match sdp::parse(offer) {
                        Ok(remote) if !remote.laws.is_empty() => remote.laws.first().copied(),
                        _ => {
                            // The caller offers no G.711: 488, and the call ends as such.
                            let _ = e.call.terminate(EndReason::UnsupportedMedia, now);
                            return Ok(());
                        }
                    },
                    None => None,
                };
                let options = SessionOptions {
                    sip_address: self.sip_address,
                    law,
                };
                let (answer, mut media) = self
                    .ctx
                    .media
                    .create_for_browser_offer(&sdp, options)
                    .map_err(media_refusal)?;
                let local_sdp = match &e.sip_offer {
                    Some(offer) => match media.answer_sip_offer(offer) {
                        Ok(a) => a,
                        Err(_) => {
                            let _ = e.call.terminate(EndReason::UnsupportedMedia, now);
                            return Ok(());
                        }
                    },
                    // A delayed offer: our 200 offers, the ACK answers.
                    None => media.sip_offer(),
                };
                e.call
                    .answer(local_sdp.into_bytes(), now)
                    .map_err(call_error)?;
                e.media = Some(media);
                self.updates
                    .push_back((e.id.clone(), CallUpdate::Media { sdp: answer }));
                Ok(())
            }
            CallCommand::Reject { status, .. } => e.call.reject(status, now).map_err(call_error),
            CallCommand::Hangup { .. } => e.call.hangup(now).map_err(call_error),
            CallCommand::Hold { on, .. } => {
                let media = e
                    .media
                    .as_mut()
                    .ok_or_else(|| refuse(Refusal::BadRequest, "the call is not established"))?;
                let offer = if on { media.hold() } else { media.unhold() };
                let result = if on {
                    e.call.hold(offer.into_bytes(), now)
                } else {
                    e.call.unhold(offer.into_bytes(), now)
                };
                if result.is_err() {
                    media.rollback_offer();
                }
                result.map_err(call_error)
            }
            CallCommand::Dtmf { digits, .. } => {
                let in_band = match &e.media {
                    Some(m) => m.send_dtmf(&digits),
                    None => return Err(refuse(Refusal::BadRequest, "the call is not established")),
                };
                match in_band {
                    Ok(()) => Ok(()),
                    // The far end offered no telephone-event: SIP INFO (application/dtmf-relay).
                    Err(MediaError::Dtmf(DtmfError::NotNegotiated)) => {
                        e.call.send_dtmf(&digits, now).map_err(call_error)
                    }
                    Err(err) => Err((Refusal::BadRequest, err.to_string())),
                }
            }
            CallCommand::Transfer { target, .. } => {
                let uri = target_uri(&target, &self.domain).map_err(|_| {
                    refuse(
                        Refusal::InvalidTarget,
                        "not a SIP or tel URI, user or number",
                    )
                })?;
                e.call.transfer(&uri, now).map_err(call_error)
            }
        }
    }

    /// A media event of the call `id`.
    pub fn handle_media(&mut self, now: Instant, id: &str, event: Option<MediaEvent>) {
        let Some(e) = self.calls.iter_mut().find(|e| e.id == id) else {
            return;
        };
        match event {
            None => e.media_closed = true,
            Some(MediaEvent::MediaTimeout) => {
                tracing::info!(call = %e.id, "no RTP from the far end: ending the call");
                let _ = e.call.terminate(EndReason::MediaTimeout, now);
            }
            Some(MediaEvent::BrowserFailed(why)) => {
                tracing::info!(call = %e.id, ?why, "the browser's media leg failed: ending the call");
                let _ = e.call.terminate(EndReason::Failed, now);
            }
            Some(MediaEvent::BrowserConnected | MediaEvent::SipMediaStarted) => {}
        }
        self.pump(now);
    }

    /// The next media event of any call (pending for ever while there is none). Only the media
    /// sessions are borrowed, so this can wait beside the flow's receive in one `select!`.
    pub fn next_media_event(&mut self) -> impl Future<Output = (String, Option<MediaEvent>)> + '_ {
        let waiting: Vec<_> = self
            .calls
            .iter_mut()
            .filter(|e| !e.media_closed)
            .filter_map(|e| {
                let id = e.id.clone();
                e.media.as_mut().map(|m| {
                    Box::pin(async move { (id, m.next_event().await) })
                        as std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>>
                })
            })
            .collect();
        async move {
            if waiting.is_empty() {
                std::future::pending::<()>().await;
            }
            futures_util::future::select_all(waiting).await.0
        }
    }

    /// Runs every call's outputs to completion: datagrams queued, events turned into media
    /// operations and client updates; ended calls dropped once done.
    fn pump(&mut self, now: Instant) {
        for i in 0..self.calls.len() {
            while let Some(out) = self.calls[i].call.poll_output() {
                match out {
                    Output::Transmit(bytes) => self.transmits.push_back(bytes),
                    Output::Event(ev) => self.on_event(i, ev, now),
                }
            }
        }
        self.calls.retain(|e| !e.call.is_done());
    }

    fn on_event(&mut self, i: usize, ev: CallEvent, now: Instant) {
        let e = &mut self.calls[i];
        let update = match ev {
            CallEvent::Incoming {
                from, display_name, ..
            } => Some(CallUpdate::Incoming {
                from: truncate(&from, MAX_FROM),
                display_name: display_name.map(|d| truncate(&d, MAX_DISPLAY_NAME)),
            }),
            CallEvent::Ringing => Some(CallUpdate::Ringing),
            CallEvent::EarlyMedia { sdp } => {
                if let Some(m) = &mut e.media {
                    if let Err(err) = m.apply_sip_answer(&String::from_utf8_lossy(&sdp)) {
                        tracing::info!(call = %e.id, "early media SDP refused: {err}");
                    }
                }
                Some(CallUpdate::EarlyMedia)
            }
            CallEvent::Answered { sdp } => {
                let ok = match (&mut e.media, sdp) {
                    (Some(m), Some(sdp)) => {
                        m.apply_sip_answer(&String::from_utf8_lossy(&sdp)).is_ok()
                    }
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                if ok {
                    if let Some(m) = &e.media {
                        m.call_established();
                    }
                    Some(CallUpdate::Answered)
                } else {
                    tracing::info!(call = %e.id, "the far end's answer has no usable G.711 audio");
                    let _ = e.call.terminate(EndReason::UnsupportedMedia, now);
                    None
                }
            }
            CallEvent::RemoteOffer { sdp, .. } => {
                let answer = e
                    .media
                    .as_mut()
                    .map(|m| m.answer_sip_offer(&String::from_utf8_lossy(&sdp)));
                match answer {
                    Some(Ok(a)) => {
                        let _ = e.call.accept_offer(a.into_bytes(), now);
                    }
                    _ => {
                        let _ = e.call.reject_offer(488, now);
                    }
                }
                None
            }
            CallEvent::RemoteAnswer { sdp } => {
                if let Some(m) = &mut e.media {
                    if let Err(err) = m.apply_sip_answer(&String::from_utf8_lossy(&sdp)) {
                        tracing::info!(call = %e.id, "re-INVITE answer refused: {err}");
                    }
                }
                None
            }
            CallEvent::Held { by } => Some(CallUpdate::Held { by }),
            CallEvent::Resumed { by } => Some(CallUpdate::Resumed { by }),
            CallEvent::ReinviteFailed { sip_status } => {
                if let Some(m) = &mut e.media {
                    m.rollback_offer();
                }
                Some(CallUpdate::Refused {
                    refusal: Refusal::Failed,
                    message: match sip_status {
                        Some(s) => format!("the far end refused the re-INVITE ({s})"),
                        None => "the re-INVITE got no answer".into(),
                    },
                })
            }
            CallEvent::Transferring => Some(CallUpdate::Transferring),
            CallEvent::TransferFailed { sip_status } => Some(CallUpdate::Refused {
                refusal: Refusal::Failed,
                message: match sip_status {
                    Some(s) => format!("the transfer failed ({s})"),
                    None => "the transfer failed".into(),
                },
            }),
            CallEvent::DtmfFailed { sip_status } => Some(CallUpdate::Refused {
                refusal: Refusal::Failed,
                message: match sip_status {
                    Some(s) => format!("the far end refused the DTMF INFO ({s})"),
                    None => "the DTMF INFO got no answer".into(),
                },
            }),
            CallEvent::DtmfReceived { digit, .. } => {
                tracing::debug!(call = %e.id, %digit, "DTMF from the far end (INFO)");
                None
            }
            CallEvent::Ended { reason, sip_status } => {
                // Dropping the session ends its task and frees its RTP ports.
                e.media = None;
                e.media_closed = true;
                Some(CallUpdate::Ended { reason, sip_status })
            }
        };
        if let Some(u) = update {
            let id = self.calls[i].id.clone();
            tracing::debug!(call = %id, update = ?u, "call update");
            self.updates.push_back((id, u));
        }
    }
}

/// The SDP offer of an INVITE, as text, if it carries one.
fn call_offer(invite: &Message) -> Option<String> {
    (!invite.body.is_empty()).then(|| String::from_utf8_lossy(&invite.body).into_owned())
}

fn media_refusal(e: MediaError) -> (Refusal, String) {
    match e {
        MediaError::WebRtc(_) => (
            Refusal::InvalidSdp,
            "the WebRTC offer cannot be answered".into(),
        ),
        MediaError::Ports(_) => (Refusal::Failed, "no media port available".into()),
        other => (Refusal::Failed, other.to_string()),
    }
}

/// How long a call command may wait in the registration task's queue (it is bounded).
pub const COMMAND_QUEUE: usize = 64;

/// The ring timeout, from the configuration.
pub fn ring_timeout(seconds: u64) -> Duration {
    Duration::from_secs(seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaSettings;
    use crate::sip::message;
    use crate::sip::transport::Kind;
    use zeroize::Zeroizing;

    async fn agent() -> Agent {
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let media = MediaEngine::bind(&MediaSettings {
            webrtc_listen: (loopback, 0).into(),
            webrtc_public_ip: None,
            rtp_ports: "40000-40099".parse().expect("a port range"),
            rtp_address: loopback,
            media_timeout: None,
        })
        .await
        .expect("the media engine");
        let local = Local {
            aor: "sip:op@example.org".into(),
            display_name: None,
            contact: "sip:st-feed@127.0.0.1:5070".into(),
            sent_by: "127.0.0.1:5070".into(),
            transport: Kind::Udp,
            route: "feed".into(),
            auth_name: "op".into(),
            password: Zeroizing::new("secret".into()),
        };
        let ctx = CallContext {
            media,
            settings: CallSettings::default(),
        };
        Agent::new(ctx, local, "example.org".into(), loopback)
    }

    fn invite(n: usize) -> Message {
        let text = format!(
            "INVITE sip:st-feed@127.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKflood{n}\r\n\
             From: <sip:caller@example.org>;tag=f{n}\r\nTo: <sip:op@example.org>\r\n\
             Call-ID: flood-{n}@127.0.0.1\r\nCSeq: 1 INVITE\r\n\
             Contact: <sip:caller@127.0.0.1:5060>\r\nContent-Length: 0\r\n\r\n"
        );
        message::parse(text.as_bytes(), true).expect("an INVITE").0
    }

    #[tokio::test]
    async fn an_invite_flood_keeps_at_most_max_calls_per_registration() {
        let mut a = agent().await;
        let now = Instant::now();
        for n in 0..200 {
            a.incoming(now, &invite(n));
        }
        assert_eq!(a.calls.len(), MAX_CALLS_PER_REGISTRATION);
        let mut busy = 0;
        while let Some(b) = a.poll_transmit() {
            let (m, _) = message::parse(&b, true).expect("valid SIP");
            if m.code() == Some(486) {
                busy += 1;
            }
        }
        assert_eq!(busy, 200 - MAX_CALLS_PER_REGISTRATION);
        let mut incoming = 0;
        while let Some((_, u)) = a.poll_update() {
            incoming += usize::from(matches!(u, CallUpdate::Incoming { .. }));
        }
        assert_eq!(
            incoming, MAX_CALLS_PER_REGISTRATION,
            "the refused ones never ring"
        );
    }
}
