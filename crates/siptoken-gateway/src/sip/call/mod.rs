//! One call's signalling (issue 13), both directions, as a sans-IO state machine: commands from
//! the client, SIP messages and time go in; messages to send and events for the client come out
//! ([`Call::poll_output`], [`Call::poll_timeout`]). SDP is an opaque body here: the media layer
//! makes offers and answers and reads the far end's.
//!
//! ```text
//!  outbound:  outgoing() ─INVITE─► Inviting ─1xx─► (Ringing / EarlyMedia events)
//!               │ 401/407: INVITE again with credentials     │ 2xx: ACK → Confirmed (Answered)
//!               │ 3xx–6xx, Timer B: Ended(status → reason)    │ hangup before: CANCEL (after a
//!               │ ring timeout: CANCEL, Ended(no_answer)      │ 1xx); 2xx crossing it: ACK, BYE
//!  inbound:   incoming() ─100, 180─► Ringing ─answer()─200 (resent until ACK)─► Answered
//!               │ reject(): 486/603   CANCEL: 200, 487 → Ended(cancelled)     │ ACK
//!               │ ring timeout: 480 → Ended(no_answer)                         ▼
//!  both:      Confirmed ── hold/unhold: re-INVITE (491: retry after the §14.1 delay)
//!               │  re-INVITE in: RemoteOffer → accept_offer()/reject_offer()
//!               │  transfer(): REFER, NOTIFY sipfrag followed; send_dtmf(): INFO
//!               │  BYE in: 200 → Ended(remote_hangup); hangup(): BYE → Ended(hangup)
//!               ▼
//!             Closed (transactions finish; then `is_done`)
//! ```
//!
//! `Ended` is emitted exactly once per call; the machine then keeps running until its
//! transactions are over (a BYE still answers a digest challenge, retransmissions are still
//! absorbed) and [`Call::is_done`] says it can be dropped.

mod auth;
#[cfg(any(test, feature = "fuzzing"))]
mod drive;
pub mod dtmf;
mod end;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod sdp;
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use sdp::offers_hold as sdp_offers_hold;
pub mod target;
mod transfer;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use self::auth::{Attempt, Auth};
pub use self::end::EndReason;
pub use self::target::is_safe_uri;
use super::compose::{self, Request, Response};
use super::dialog::Dialog;
use super::incoming::{self, Check, ACCEPT, ALLOW};
use super::invite_client::{self, InviteClient};
use super::invite_server::{InviteServer, Matched};
use super::message::{self, Message};
use super::non_invite_client::{self, NonInviteClient};
use super::non_invite_server::NonInviteServer;
use super::routing;
use super::timers::Timers;
use super::transaction::Transaction;
use super::transport::Kind;
use super::uas_answer::AnswerRetransmit;

/// Who the calls of one registration are made as; shared by its calls.
pub struct Local {
    /// The address of record, `sip:login@domain` (user part escaped).
    pub aor: String,
    /// Display name for From.
    pub display_name: Option<String>,
    /// The registration's Contact URI (`sip:st-R@ip:port[;transport=…]`): in-dialog requests
    /// come back to the registration's route through it.
    pub contact: String,
    /// `ip:port` of the socket, for Via.
    pub sent_by: String,
    /// The transport (Via, and whether to retransmit).
    pub transport: Kind,
    /// The registration's route `R` (carried in every Via branch, see [`routing`]).
    pub route: String,
    /// Digest username.
    pub auth_name: String,
    /// The SIP password.
    pub password: Zeroizing<String>,
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local")
            .field("aor", &self.aor)
            .field("contact", &self.contact)
            .field("route", &self.route)
            .finish_non_exhaustive()
    }
}

/// Timing and identity settings for calls.
#[derive(Debug, Clone)]
pub struct CallSettings {
    /// T1, T2, T4.
    pub timers: Timers,
    /// How long a call may ring (either direction) before it ends as `no_answer`
    /// (`ring_timeout_seconds`, 60 s).
    pub ring_timeout: Duration,
    /// User-Agent header value.
    pub user_agent: String,
}

impl Default for CallSettings {
    fn default() -> CallSettings {
        CallSettings {
            timers: Timers::default(),
            ring_timeout: Duration::from_secs(60),
            user_agent: crate::sip::user_agent(),
        }
    }
}

/// Which side placed the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client called out.
    Outbound,
    /// Someone called the client's account.
    Inbound,
}

/// Who changed the hold state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// This client (`hold` / `unhold`).
    Local,
    /// The far end (a re-INVITE).
    Remote,
}

/// What the call tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    /// An inbound call arrived (always the first event of one).
    Incoming {
        /// The caller's URI (From).
        from: String,
        /// The caller's display name, if any.
        display_name: Option<String>,
        /// The caller's SDP offer; `None` for an INVITE without one (our answer then carries
        /// an offer and the ACK the answer).
        offer: Option<Vec<u8>>,
    },
    /// 180, or 183 without SDP (once).
    Ringing,
    /// A 1xx with SDP: the far end's early media answer.
    EarlyMedia {
        /// The SDP.
        sdp: Vec<u8>,
    },
    /// The call is established: outbound on the 2xx (with its SDP answer), inbound on the ACK
    /// (with the SDP answer when our 200 carried the offer).
    Answered {
        /// The far end's SDP, if this message carried one.
        sdp: Option<Vec<u8>>,
    },
    /// The far end sent a re-INVITE with an offer: answer it with [`Call::accept_offer`] or
    /// refuse it with [`Call::reject_offer`].
    RemoteOffer {
        /// The offer.
        sdp: Vec<u8>,
        /// Whether it holds the call (`sendonly`, `inactive` or `0.0.0.0`).
        hold: bool,
    },
    /// An SDP answer outside call setup: the 2xx to our re-INVITE, or the ACK to our 200 when a
    /// re-INVITE without SDP made us offer.
    RemoteAnswer {
        /// The answer.
        sdp: Vec<u8>,
    },
    /// The call went on hold.
    Held {
        /// Who held it.
        by: Party,
    },
    /// The call came off hold.
    Resumed {
        /// Who resumed it.
        by: Party,
    },
    /// Our re-INVITE (hold/unhold) was refused; the session is unchanged.
    ReinviteFailed {
        /// The final status.
        sip_status: Option<u16>,
    },
    /// The REFER was accepted; `Ended(transferred)` follows when the transfer succeeds.
    Transferring,
    /// The transfer failed; the call goes on.
    TransferFailed {
        /// The status of the REFER's final response or of the NOTIFY's sipfrag, if any.
        sip_status: Option<u16>,
    },
    /// An INFO carrying DTMF was refused; the digits not yet sent are dropped.
    DtmfFailed {
        /// The final status.
        sip_status: Option<u16>,
    },
    /// The far end sent a DTMF digit by INFO.
    DtmfReceived {
        /// The digit.
        digit: char,
        /// Its duration, ms, when given.
        duration_ms: Option<u32>,
    },
    /// The call is over (exactly once).
    Ended {
        /// Why.
        reason: EndReason,
        /// The SIP status that decided it, if one did.
        sip_status: Option<u16>,
    },
}

/// One output of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this message to the registration's next hop (the registrar/proxy the socket is
    /// connected to).
    Transmit(Vec<u8>),
    /// Tell the owner.
    Event(CallEvent),
}

/// A command that does not fit the call's state or arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallError {
    /// Not possible now (e.g. `answer` on an outbound call, `hold` before the answer, anything
    /// after the end).
    WrongState,
    /// The target is not a usable URI, user or number.
    InvalidTarget,
    /// Not 1–32 of `0-9 * # A-D`.
    InvalidDigits,
    /// A rejection status outside 400–699.
    InvalidStatus,
    /// [`Call::accept_offer`] / [`Call::reject_offer`] with no re-INVITE waiting.
    NoOffer,
    /// A transfer is already under way.
    TransferInProgress,
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CallError::WrongState => "not possible in the call's state",
            CallError::InvalidTarget => "invalid target",
            CallError::InvalidDigits => "invalid DTMF digits",
            CallError::InvalidStatus => "invalid rejection status",
            CallError::NoOffer => "no offer to answer",
            CallError::TransferInProgress => "a transfer is already in progress",
        })
    }
}

impl std::error::Error for CallError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Outbound: INVITE sent, no final response.
    Inviting,
    /// Inbound: INVITE received, not answered.
    Ringing,
    /// Inbound: 200 sent, no ACK yet.
    Answered,
    /// The dialog is established.
    Confirmed,
    /// No dialog any more (or none was made): only transactions finishing.
    Closed,
}

#[derive(Debug)]
enum Purpose {
    Invite,
    Reinvite {
        hold: bool,
        sdp: Vec<u8>,
    },
    Bye,
    Cancel,
    Info {
        digit: char,
    },
    Refer {
        target: String,
    },
    /// A request whose outcome does not matter (the BYE of a forked 2xx we do not keep).
    Cleanup,
}

#[derive(Debug)]
enum ClientTx {
    Invite(InviteClient),
    NonInvite(NonInviteClient),
}

impl ClientTx {
    fn matches(&self, m: &Message) -> bool {
        match self {
            ClientTx::Invite(t) => t.matches(m),
            ClientTx::NonInvite(t) => t.matches(m),
        }
    }

    /// The transaction, whichever its kind, for the timers and the send queue.
    fn get(&self) -> &dyn Transaction {
        match self {
            ClientTx::Invite(t) => t,
            ClientTx::NonInvite(t) => t,
        }
    }

    /// See [`ClientTx::get`]; its `handle_timeout` says `true` on Timer B or F.
    fn get_mut(&mut self) -> &mut dyn Transaction {
        match self {
            ClientTx::Invite(t) => t,
            ClientTx::NonInvite(t) => t,
        }
    }
}

#[derive(Debug)]
struct Client {
    tx: ClientTx,
    purpose: Purpose,
    attempt: Attempt,
    /// Dropped before its end (a CANCELled INVITE that never got a final response).
    abandoned: bool,
}

#[derive(Debug)]
enum ServerTx {
    Invite(InviteServer),
    NonInvite(NonInviteServer),
}

#[derive(Debug)]
enum ServerKind {
    /// The INVITE of an inbound call.
    Initial,
    /// A re-INVITE; the request is kept until it is answered.
    Reinvite {
        request: Option<Box<Message>>,
    },
    Other,
}

#[derive(Debug)]
struct Server {
    tx: ServerTx,
    kind: ServerKind,
}

impl Server {
    /// The transaction, whichever its kind, for the timers and the send queue.
    fn get(&self) -> &dyn Transaction {
        match &self.tx {
            ServerTx::Invite(t) => t,
            ServerTx::NonInvite(t) => t,
        }
    }

    /// See [`Server::get`].
    fn get_mut(&mut self) -> &mut dyn Transaction {
        match &mut self.tx {
            ServerTx::Invite(t) => t,
            ServerTx::NonInvite(t) => t,
        }
    }

    /// An INVITE transaction still waiting for its final response.
    fn is_pending_invite(&self) -> bool {
        matches!(&self.tx, ServerTx::Invite(t) if !t.is_answered())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cancel {
    None,
    /// Hung up before any provisional response: CANCEL when one arrives (RFC 3261 §9.1).
    Pending,
    /// CANCEL sent; the INVITE is dropped if no final response comes by `give_up`.
    Sent {
        give_up: Instant,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Idle,
    /// REFER sent, no final response yet.
    Requested,
    /// REFER accepted (or a NOTIFY came first); waiting for the final sipfrag.
    Accepted {
        deadline: Instant,
    },
}

/// One call. See the module documentation.
#[derive(Debug)]
pub struct Call {
    local: Arc<Local>,
    settings: CallSettings,
    direction: Direction,
    phase: Phase,
    call_id: String,
    local_tag: String,
    /// Outbound: the Request-URI and To; inbound: the caller's URI.
    target: String,
    /// Outbound: our SDP offer (for retries with credentials).
    offer: Vec<u8>,
    /// Outbound: CSeq of the next INVITE before the dialog exists.
    cseq: u32,
    /// Outbound: the current initial INVITE.
    invite: Option<Request>,
    /// Inbound: the INVITE.
    initial: Option<Box<Message>>,
    /// Inbound: the caller's offer.
    remote_offer: Option<Vec<u8>>,
    provisional_seen: bool,
    ringing_sent: bool,
    early_sdp: Option<Vec<u8>>,
    dialog: Option<Dialog>,
    auth: Auth,
    clients: Vec<Client>,
    servers: Vec<Server>,
    /// Our 2xx waiting for its ACK (initial answer or re-INVITE answer).
    answer: Option<AnswerRetransmit>,
    /// That 2xx carried an offer: the ACK must carry the answer.
    answer_offered: bool,
    /// Our ACK of a 2xx: (CSeq, remote tag, bytes), resent on retransmitted 2xx.
    ack: Option<(u32, String, Vec<u8>)>,
    local_sdp: Option<Vec<u8>>,
    local_hold: bool,
    remote_hold: bool,
    /// A hold/unhold waiting for its turn: (hold, SDP).
    hold_wanted: Option<(bool, Vec<u8>)>,
    reinvite_retry_at: Option<Instant>,
    /// When the far end's last re-INVITEs were taken (at most [`MAX_REINVITES`] within
    /// [`REINVITE_WINDOW`]).
    their_reinvites: VecDeque<Instant>,
    transfer: Transfer,
    transferring_announced: bool,
    /// The far end hung up during an accepted transfer: wait this long for the final NOTIFY.
    bye_grace: Option<Instant>,
    dtmf: VecDeque<char>,
    ring_deadline: Option<Instant>,
    cancel: Cancel,
    /// Inbound: hung up after the 200 but before its ACK: BYE when the ACK comes.
    bye_after_ack: bool,
    ended: bool,
    out: VecDeque<Output>,
}

/// Server transactions a call keeps at most: beyond, requests are answered statelessly (a peer
/// flooding a dialog with requests cannot grow the call without bound).
const MAX_SERVER_TRANSACTIONS: usize = 32;

/// The far end's re-INVITEs a call takes at most within [`REINVITE_WINDOW`]; beyond, they get
/// `500` with a `Retry-After` of the time until one is allowed again. Each one taken costs an
/// SDP negotiation, a change of the media session and an update to the client (hold, resume):
/// with this bound a dialog costs at most that ten times per ten seconds, whatever the far
/// end sends. Hold, resume, transfers and session refreshes need far fewer.
const MAX_REINVITES: usize = 10;

/// See [`MAX_REINVITES`].
const REINVITE_WINDOW: Duration = Duration::from_secs(10);

/// Client transactions a call keeps at most for requests whose outcome does not matter (the BYEs
/// of forked 2xx).
const MAX_CLEANUP_TRANSACTIONS: usize = 8;

/// The delay before retrying a re-INVITE refused with 491 (RFC 3261 §14.1): 2.1–4 s for the
/// owner of the Call-ID (the dialog's caller), 0–2 s otherwise, in units of 10 ms.
pub fn glare_delay(caller: bool) -> Duration {
    let units: u64 = if caller {
        rand::random_range(210..=400)
    } else {
        rand::random_range(0..=200)
    };
    Duration::from_millis(units * 10)
}

impl Call {
    fn new(
        local: Arc<Local>,
        settings: CallSettings,
        direction: Direction,
        call_id: String,
        target: String,
        now: Instant,
    ) -> Call {
        let ring = now + settings.ring_timeout;
        Call {
            local,
            settings,
            direction,
            phase: match direction {
                Direction::Outbound => Phase::Inviting,
                Direction::Inbound => Phase::Ringing,
            },
            call_id,
            local_tag: compose::random_hex(8),
            target,
            offer: Vec::new(),
            cseq: 1,
            invite: None,
            initial: None,
            remote_offer: None,
            provisional_seen: false,
            ringing_sent: false,
            early_sdp: None,
            dialog: None,
            auth: Auth::default(),
            clients: Vec::new(),
            servers: Vec::new(),
            answer: None,
            answer_offered: false,
            ack: None,
            local_sdp: None,
            local_hold: false,
            remote_hold: false,
            hold_wanted: None,
            reinvite_retry_at: None,
            their_reinvites: VecDeque::new(),
            transfer: Transfer::Idle,
            transferring_announced: false,
            bye_grace: None,
            dtmf: VecDeque::new(),
            ring_deadline: Some(ring),
            cancel: Cancel::None,
            bye_after_ack: false,
            ended: false,
            out: VecDeque::new(),
        }
    }

    /// Places a call to `target` (a URI: see [`target::target_uri`]) with the SDP `offer`; the INVITE is
    /// the first output.
    pub fn outgoing(
        local: Arc<Local>,
        settings: CallSettings,
        target: &str,
        offer: Vec<u8>,
        now: Instant,
    ) -> Result<Call, CallError> {
        if !is_safe_uri(target) {
            return Err(CallError::InvalidTarget);
        }
        let call_id = format!("{}@siptoken-call", compose::random_hex(16));
        let mut call = Call::new(
            local,
            settings,
            Direction::Outbound,
            call_id,
            target.to_owned(),
            now,
        );
        call.offer = offer;
        call.send_invite(Attempt::default(), now);
        Ok(call)
    }

    /// Takes an INVITE that [`incoming::out_of_dialog`] classified as a new call: 100 Trying and
    /// 180 Ringing go out and [`CallEvent::Incoming`] is the first event. `Err` carries the
    /// response refusing it (400 for an INVITE a dialog cannot be made from, 415 for a body
    /// other than SDP) to send as is.
    pub fn incoming(
        local: Arc<Local>,
        settings: CallSettings,
        invite: &Message,
        now: Instant,
    ) -> Result<Call, Vec<u8>> {
        match incoming::check_request(invite) {
            Check::Valid => {}
            Check::Reply(b) => return Err(b),
            Check::Drop => return Err(Vec::new()),
        }
        if invite.method() != Some("INVITE") {
            return Err(incoming::reply(invite, 400).encode());
        }
        if !invite.body.is_empty() && !invite.header("content-type").is_some_and(sdp::is_sdp_type) {
            let mut r = incoming::reply(invite, 415);
            r.push("Accept", "application/sdp");
            return Err(r.encode());
        }
        let from_header = invite.header("from").unwrap_or_default();
        let from = message::addr_uri(from_header).to_owned();
        let call_id = invite.header("call-id").unwrap_or_default().to_owned();
        let mut call = Call::new(local, settings, Direction::Inbound, call_id, from, now);
        let dialog = Dialog::as_uas(invite, &call.local_tag)
            .map_err(|_| incoming::reply(invite, 400).encode())?;
        let reliable = call.reliable();
        let tx = InviteServer::new(invite, reliable, call.settings.timers)
            .ok_or_else(|| incoming::reply(invite, 400).encode())?;
        call.dialog = Some(dialog);
        call.remote_offer = sdp::body(invite);
        call.initial = Some(Box::new(invite.clone()));
        call.servers.push(Server {
            tx: ServerTx::Invite(tx),
            kind: ServerKind::Initial,
        });
        let trying = Response::to(invite, 100, None);
        call.respond(0, trying, now);
        let ringing = call.invite_response(invite, 180);
        call.respond(0, ringing, now);
        call.emit(CallEvent::Incoming {
            from: call.target.clone(),
            display_name: compose::display_name(from_header),
            offer: call.remote_offer.clone(),
        });
        Ok(call)
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Which side placed the call.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Whether [`CallEvent::Ended`] was emitted.
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Whether the call is over and nothing is left to send or absorb: drop it.
    pub fn is_done(&self) -> bool {
        self.ended
            && self.clients.is_empty()
            && self.servers.is_empty()
            && self.answer.as_ref().is_none_or(AnswerRetransmit::is_acked)
            && self.out.is_empty()
    }

    /// Whether a message arriving on the registration's route belongs to this call: the same
    /// Call-ID, and our tag in From (responses) or To (requests); a request without a To tag
    /// (a retransmitted INVITE, a CANCEL) by the caller's From tag.
    pub fn matches(&self, m: &Message) -> bool {
        if m.header("call-id").map(str::trim) != Some(self.call_id.as_str()) {
            return false;
        }
        let from_tag = m.header("from").and_then(compose::tag_of);
        if m.code().is_some() {
            return from_tag == Some(self.local_tag.as_str());
        }
        match m.header("to").and_then(compose::tag_of) {
            Some(t) => t == self.local_tag,
            None => {
                self.direction == Direction::Inbound
                    && from_tag.is_some()
                    && from_tag == self.dialog.as_ref().map(Dialog::remote_tag)
            }
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Call::handle_timeout`] has work next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        for c in &self.clients {
            add(c.tx.get().poll_timeout());
        }
        for s in &self.servers {
            add(s.get().poll_timeout());
        }
        add(self
            .answer
            .as_ref()
            .and_then(AnswerRetransmit::poll_timeout));
        add(self.ring_deadline);
        add(self.reinvite_retry_at);
        add(self.bye_grace);
        if let Cancel::Sent { give_up } = self.cancel {
            add(Some(give_up));
        }
        if let Transfer::Accepted { deadline } = self.transfer {
            add(Some(deadline));
        }
        t
    }

    // ---- commands -------------------------------------------------------------------------

    /// Answers an inbound call with `sdp` (an answer to the caller's offer, or an offer when the
    /// INVITE had none): 200 OK, retransmitted until the ACK.
    pub fn answer(&mut self, sdp: Vec<u8>, now: Instant) -> Result<(), CallError> {
        if self.ended || self.phase != Phase::Ringing {
            return Err(CallError::WrongState);
        }
        let Some(invite) = self.initial.clone() else {
            return Err(CallError::WrongState);
        };
        let Some(idx) = self.initial_server() else {
            return Err(CallError::WrongState);
        };
        self.answer_invite(idx, &invite, sdp.clone(), now);
        self.answer_offered = self.remote_offer.is_none();
        self.local_sdp = Some(sdp);
        self.ring_deadline = None;
        self.phase = Phase::Answered;
        Ok(())
    }

    /// Refuses an inbound call with `status` (486 Busy Here or 603 Decline for the client's
    /// `reject`; any 400–699): ends as `hangup` with that status.
    pub fn reject(&mut self, status: u16, now: Instant) -> Result<(), CallError> {
        if !(400..=699).contains(&status) {
            return Err(CallError::InvalidStatus);
        }
        if self.ended || self.phase != Phase::Ringing {
            return Err(CallError::WrongState);
        }
        self.refuse_initial(status, now);
        self.end(EndReason::Hangup, Some(status));
        Ok(())
    }

    /// The client hangs up: CANCEL before the answer (outbound), 486 (inbound, unanswered),
    /// BYE after. Ends as `hangup`.
    pub fn hangup(&mut self, now: Instant) -> Result<(), CallError> {
        self.terminate(EndReason::Hangup, now)
    }

    /// Ends the call for `reason` (`logged_out`, `media_timeout`, `unsupported_media`, …) the
    /// proper way: CANCEL or BYE, or 480 (486 for `hangup`) to an unanswered inbound call.
    pub fn terminate(&mut self, reason: EndReason, now: Instant) -> Result<(), CallError> {
        if self.ended {
            return Err(CallError::WrongState);
        }
        match self.phase {
            Phase::Inviting => {
                self.ring_deadline = None;
                self.cancel_invite(now);
            }
            Phase::Ringing => {
                let status = match reason {
                    EndReason::Hangup => 486,
                    EndReason::UnsupportedMedia => 488,
                    _ => 480,
                };
                self.refuse_initial(status, now);
            }
            Phase::Answered => self.bye_after_ack = true,
            Phase::Confirmed => self.send_bye(Attempt::default(), now),
            Phase::Closed => {}
        }
        self.end(reason, None);
        Ok(())
    }

    /// The socket under the call failed (unreachable, connection closed): nothing more can be
    /// sent. Ends as `failed` (if not ended) and drops every transaction.
    pub fn transport_failed(&mut self) {
        self.end(EndReason::Failed, None);
        self.clients.clear();
        self.servers.clear();
        self.answer = None;
        self.out.retain(|o| matches!(o, Output::Event(_)));
        self.phase = Phase::Closed;
    }

    /// Puts the call on hold with `sdp` (the media layer's `sendonly` or `inactive` offer).
    pub fn hold(&mut self, sdp: Vec<u8>, now: Instant) -> Result<(), CallError> {
        self.want_reinvite(true, sdp, now)
    }

    /// Takes the call off hold with `sdp` (a `sendrecv` offer).
    pub fn unhold(&mut self, sdp: Vec<u8>, now: Instant) -> Result<(), CallError> {
        self.want_reinvite(false, sdp, now)
    }

    /// Answers the far end's re-INVITE ([`CallEvent::RemoteOffer`]) with `sdp`.
    pub fn accept_offer(&mut self, sdp: Vec<u8>, now: Instant) -> Result<(), CallError> {
        let (idx, request) = self.take_reoffer()?;
        self.answer_invite(idx, &request, sdp.clone(), now);
        self.answer_offered = false;
        self.local_sdp = Some(sdp);
        if let Some(d) = &mut self.dialog {
            d.refresh_target(&request);
        }
        let hold = sdp::body(&request).is_some_and(|b| sdp::offers_hold(&b));
        self.set_hold(Party::Remote, hold);
        Ok(())
    }

    /// Sends the 200 with `sdp` to `invite` through server transaction `idx`, and retransmits
    /// it until the ACK (RFC 3261 §13.3.1.4).
    fn answer_invite(&mut self, idx: usize, invite: &Message, sdp: Vec<u8>, now: Instant) {
        let mut r = self.invite_response(invite, 200);
        r.set_body("application/sdp", sdp);
        let bytes = r.encode();
        self.respond(idx, r, now);
        self.answer = Some(AnswerRetransmit::new(
            bytes,
            invite.cseq().map_or(0, |c| c.0),
            self.reliable(),
            self.settings.timers,
            now,
        ));
    }

    /// Refuses the far end's re-INVITE with `status` (488 when its offer is unacceptable); the
    /// session stays as it was.
    pub fn reject_offer(&mut self, status: u16, now: Instant) -> Result<(), CallError> {
        if !(400..=699).contains(&status) {
            return Err(CallError::InvalidStatus);
        }
        let (idx, request) = self.take_reoffer()?;
        let r = Response::to(&request, status, Some(&self.local_tag));
        self.respond(idx, r, now);
        self.try_reinvite(now);
        Ok(())
    }

    /// Sends DTMF `digits` (1–32 of `0-9 * # A-D`) as INFO requests, one at a time, in order.
    pub fn send_dtmf(&mut self, digits: &str, now: Instant) -> Result<(), CallError> {
        if !dtmf::valid_digits(digits) {
            return Err(CallError::InvalidDigits);
        }
        if self.ended || self.phase != Phase::Confirmed {
            return Err(CallError::WrongState);
        }
        self.dtmf.extend(digits.chars());
        self.pump_dtmf(now);
        Ok(())
    }

    /// Blind transfer to `target` (a URI, see [`target::target_uri`]): REFER, then the NOTIFYs are
    /// followed; a `SIP/2.0 2xx` sipfrag ends the call as `transferred`.
    pub fn transfer(&mut self, target: &str, now: Instant) -> Result<(), CallError> {
        if !is_safe_uri(target) {
            return Err(CallError::InvalidTarget);
        }
        if self.ended || self.phase != Phase::Confirmed {
            return Err(CallError::WrongState);
        }
        if self.transfer != Transfer::Idle {
            return Err(CallError::TransferInProgress);
        }
        self.transfer = Transfer::Requested;
        self.transferring_announced = false;
        self.send_refer(target.to_owned(), Attempt::default(), now);
        Ok(())
    }

    // ---- input ----------------------------------------------------------------------------

    /// Handles a message for this call ([`Call::matches`]). Never panics on bad input: broken
    /// requests get 400 (or nothing when no response can be built), stray responses are
    /// dropped.
    pub fn handle_message(&mut self, m: &Message, now: Instant) {
        if m.code().is_some() {
            self.on_response(m, now);
        } else {
            self.on_request(m, now);
        }
        self.flush();
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let n = self.clients.len();
        for i in 0..n {
            let timed_out = self.clients[i].tx.get_mut().handle_timeout(now);
            self.drain_client(i);
            if timed_out {
                self.on_client_timeout(i, now);
            }
        }
        for i in 0..self.servers.len() {
            // Timer H: a failure never acknowledged; nothing more to do about it.
            let _ = self.servers[i].get_mut().handle_timeout(now);
            self.drain_server(i);
        }
        let timers = self.settings.timers;
        if let Some(a) = &mut self.answer {
            let gave_up = a.handle_timeout(now, timers);
            if let Some(b) = a.poll_transmit() {
                self.transmit(b);
            }
            if gave_up {
                self.on_no_ack(now);
            }
        }
        if self.ring_deadline.is_some_and(|d| now >= d) {
            self.ring_deadline = None;
            self.on_ring_timeout(now);
        }
        if self.reinvite_retry_at.is_some_and(|d| now >= d) {
            self.reinvite_retry_at = None;
            self.try_reinvite(now);
        }
        if let Cancel::Sent { give_up } = self.cancel {
            if now >= give_up {
                // RFC 3261 §9.1: no final response 64·T1 after the CANCEL: the INVITE is over.
                self.cancel = Cancel::None;
                for c in &mut self.clients {
                    if matches!(c.purpose, Purpose::Invite)
                        && matches!(&c.tx, ClientTx::Invite(t) if matches!(t.state(), invite_client::State::Calling | invite_client::State::Proceeding))
                    {
                        c.abandoned = true;
                    }
                }
                if self.phase == Phase::Inviting {
                    self.phase = Phase::Closed;
                }
            }
        }
        if let Transfer::Accepted { deadline } = self.transfer {
            if now >= deadline {
                self.transfer = Transfer::Idle;
                self.emit(CallEvent::TransferFailed { sip_status: None });
            }
        }
        if self.bye_grace.is_some_and(|d| now >= d) {
            self.bye_grace = None;
            self.transfer = Transfer::Idle;
            self.end(EndReason::RemoteHangup, None);
        }
        self.flush();
    }

    // ---- responses ------------------------------------------------------------------------

    fn on_response(&mut self, m: &Message, now: Instant) {
        let Some(i) = self.clients.iter().position(|c| c.tx.matches(m)) else {
            self.on_stray_response(m, now);
            return;
        };
        match &mut self.clients[i].tx {
            ClientTx::Invite(t) => {
                let r = t.handle_response(m, now);
                self.drain_client(i);
                if let Some(r) = r {
                    self.on_invite_client_response(i, r, m, now);
                }
            }
            ClientTx::NonInvite(t) => {
                let r = t.handle_response(m, now);
                self.drain_client(i);
                if r == Some(non_invite_client::Received::Final) {
                    self.on_non_invite_final(i, m, now);
                }
            }
        }
    }

    /// A response no transaction claims: a 2xx retransmission after Timer M, or a 2xx from
    /// another fork. Everything else is dropped.
    fn on_stray_response(&mut self, m: &Message, now: Instant) {
        let is_invite_2xx = m.code().is_some_and(|c| (200..300).contains(&c))
            && m.cseq().is_some_and(|(_, meth)| meth == "INVITE");
        if is_invite_2xx {
            self.on_extra_2xx(m, now);
        }
    }

    /// A 2xx to an INVITE already answered by a 2xx: ACK it again if it is the same dialog's,
    /// else ACK and BYE the other fork's dialog (RFC 3261 §13.2.2.4).
    fn on_extra_2xx(&mut self, m: &Message, now: Instant) {
        let cseq = m.cseq().map_or(0, |c| c.0);
        let to_tag = m.header("to").and_then(compose::tag_of).unwrap_or("");
        if let Some((ack_cseq, tag, bytes)) = &self.ack {
            if *ack_cseq == cseq && tag == to_tag {
                let b = bytes.clone();
                self.transmit(b);
                return;
            }
        }
        if self.direction != Direction::Outbound
            || self
                .dialog
                .as_ref()
                .is_some_and(|d| d.remote_tag() == to_tag)
        {
            return;
        }
        let Some(invite) = self.invite.clone() else {
            return;
        };
        if invite.cseq() != cseq {
            return;
        }
        let Ok(mut fork) = Dialog::as_uac(&invite, m) else {
            return;
        };
        let cleanups = self
            .clients
            .iter()
            .filter(|c| matches!(c.purpose, Purpose::Cleanup))
            .count();
        let via = self.via();
        let mut ack = fork.ack(cseq, &via);
        self.copy_credentials(&invite, &mut ack);
        self.transmit(ack.encode());
        if cleanups >= MAX_CLEANUP_TRANSACTIONS {
            return;
        }
        let via = self.via();
        let mut bye = fork.request("BYE", &via);
        bye.push("User-Agent", self.settings.user_agent.clone());
        self.start_non_invite(bye, Purpose::Cleanup, Attempt::default(), now);
    }

    /// A response to one of our INVITEs. A retransmitted 2xx is only ACKed again, whatever the
    /// INVITE was for; the rest goes to the call's set-up or to the re-INVITE's handling.
    fn on_invite_client_response(
        &mut self,
        i: usize,
        r: invite_client::Received,
        m: &Message,
        now: Instant,
    ) {
        let code = m.code().unwrap_or(0);
        match (r, &self.clients[i].purpose) {
            (
                invite_client::Received::Success {
                    retransmission: true,
                },
                _,
            ) => self.on_extra_2xx(m, now),
            (r, Purpose::Invite) => self.on_invite_response(i, r, code, m, now),
            (r, Purpose::Reinvite { hold, sdp }) => {
                let wish = (*hold, sdp.clone());
                self.on_reinvite_response(i, r, code, wish, m, now);
            }
            _ => {}
        }
    }

    fn on_invite_response(
        &mut self,
        i: usize,
        r: invite_client::Received,
        code: u16,
        m: &Message,
        now: Instant,
    ) {
        match r {
            invite_client::Received::Provisional => {
                self.provisional_seen = true;
                if self.cancel == Cancel::Pending {
                    self.send_cancel(now);
                }
                if self.ended {
                    return;
                }
                if let Some(sdp) = sdp::body(m) {
                    if self.early_sdp.as_ref() != Some(&sdp) {
                        self.early_sdp = Some(sdp.clone());
                        self.emit(CallEvent::EarlyMedia { sdp });
                    }
                } else if matches!(code, 180 | 183) && !self.ringing_sent {
                    self.ringing_sent = true;
                    self.emit(CallEvent::Ringing);
                }
            }
            invite_client::Received::Success { .. } => self.on_invite_success(i, m, now),
            invite_client::Received::Failure => {
                if !self.ended && matches!(code, 401 | 407) {
                    let mut attempt = self.clients[i].attempt;
                    if self.auth.challenge(m, &mut attempt, true).is_ok() {
                        self.send_invite(attempt, now);
                        return;
                    }
                }
                self.phase = Phase::Closed;
                self.ring_deadline = None;
                self.cancel = Cancel::None;
                self.end(EndReason::for_status(code), Some(code));
            }
        }
    }

    fn on_invite_success(&mut self, i: usize, m: &Message, now: Instant) {
        self.ring_deadline = None;
        let invite = match &self.clients[i].tx {
            ClientTx::Invite(t) => t.request().clone(),
            ClientTx::NonInvite(_) => return,
        };
        let dialog = match Dialog::as_uac(&invite, m) {
            Ok(d) => d,
            Err(e) => {
                tracing::info!(call_id = %self.call_id, "unusable 2xx to INVITE: {e}");
                self.phase = Phase::Closed;
                self.end(EndReason::Failed, m.code());
                return;
            }
        };
        let cseq = invite.cseq();
        let via = self.via();
        let mut ack = dialog.ack(cseq, &via);
        self.copy_credentials(&invite, &mut ack);
        let bytes = ack.encode();
        self.transmit(bytes.clone());
        self.ack = Some((cseq, dialog.remote_tag().to_owned(), bytes));
        self.dialog = Some(dialog);
        self.phase = Phase::Confirmed;
        self.cancel = Cancel::None;
        if self.ended {
            // Hung up (CANCEL) while the 2xx was on its way.
            self.send_bye(Attempt::default(), now);
            return;
        }
        let Some(sdp) = sdp::body(m) else {
            tracing::info!(call_id = %self.call_id, "2xx to INVITE without an SDP answer");
            self.send_bye(Attempt::default(), now);
            self.end(EndReason::Failed, None);
            return;
        };
        self.local_sdp = Some(self.offer.clone());
        self.emit(CallEvent::Answered { sdp: Some(sdp) });
        self.try_reinvite(now);
    }

    /// `(hold, sdp)`: what the re-INVITE asked for (its hold state and SDP offer).
    fn on_reinvite_response(
        &mut self,
        i: usize,
        r: invite_client::Received,
        code: u16,
        (hold, sdp): (bool, Vec<u8>),
        m: &Message,
        now: Instant,
    ) {
        match r {
            invite_client::Received::Provisional => {}
            invite_client::Received::Success { .. } => {
                let Some(d) = &mut self.dialog else { return };
                if !d.matches_response(m) {
                    return;
                }
                d.refresh_target(m);
                let cseq = m.cseq().map_or(0, |c| c.0);
                let via = self.via();
                let Some(d) = &self.dialog else { return };
                let mut ack = d.ack(cseq, &via);
                let remote_tag = d.remote_tag().to_owned();
                if let ClientTx::Invite(t) = &self.clients[i].tx {
                    let req = t.request().clone();
                    self.copy_credentials(&req, &mut ack);
                }
                let bytes = ack.encode();
                self.transmit(bytes.clone());
                self.ack = Some((cseq, remote_tag, bytes));
                if self.ended || self.phase != Phase::Confirmed {
                    return;
                }
                self.local_sdp = Some(sdp);
                if let Some(answer) = sdp::body(m) {
                    self.emit(CallEvent::RemoteAnswer { sdp: answer });
                }
                self.set_hold(Party::Local, hold);
                self.try_reinvite(now);
            }
            invite_client::Received::Failure => {
                if self.ended || self.phase != Phase::Confirmed {
                    return;
                }
                match code {
                    401 | 407 => {
                        let mut attempt = self.clients[i].attempt;
                        if self.auth.challenge(m, &mut attempt, true).is_ok() {
                            self.send_reinvite(hold, sdp, attempt, now);
                        } else {
                            self.emit(CallEvent::ReinviteFailed {
                                sip_status: Some(code),
                            });
                            self.try_reinvite(now);
                        }
                    }
                    491 => {
                        // Glare: ours and theirs crossed. Keep the newest wish and retry later.
                        if self.hold_wanted.is_none() {
                            self.hold_wanted = Some((hold, sdp));
                        }
                        let caller = self.dialog.as_ref().is_some_and(Dialog::is_caller);
                        self.reinvite_retry_at = Some(now + glare_delay(caller));
                    }
                    408 | 481 => self.dialog_failed(Some(code), now),
                    _ => {
                        self.emit(CallEvent::ReinviteFailed {
                            sip_status: Some(code),
                        });
                        self.try_reinvite(now);
                    }
                }
            }
        }
    }

    fn on_non_invite_final(&mut self, i: usize, m: &Message, now: Instant) {
        let code = m.code().unwrap_or(500);
        let purpose = std::mem::replace(&mut self.clients[i].purpose, Purpose::Cleanup);
        let mut attempt = self.clients[i].attempt;
        if matches!(code, 401 | 407)
            && matches!(
                purpose,
                Purpose::Bye | Purpose::Info { .. } | Purpose::Refer { .. }
            )
        {
            let has_body = matches!(purpose, Purpose::Info { .. });
            if self.auth.challenge(m, &mut attempt, has_body).is_ok() {
                match purpose {
                    Purpose::Bye => self.send_bye(attempt, now),
                    Purpose::Info { digit } => self.send_info(digit, attempt, now),
                    Purpose::Refer { target } => self.send_refer(target, attempt, now),
                    _ => {}
                }
                return;
            }
        }
        let ok = (200..300).contains(&code);
        match purpose {
            Purpose::Info { .. } => {
                if ok {
                    self.pump_dtmf(now);
                } else {
                    self.dtmf.clear();
                    if matches!(code, 408 | 481) {
                        self.dialog_failed(Some(code), now);
                    } else if !self.ended {
                        self.emit(CallEvent::DtmfFailed {
                            sip_status: Some(code),
                        });
                    }
                }
            }
            Purpose::Refer { .. } => {
                if ok {
                    self.accept_transfer(now);
                } else if matches!(code, 408 | 481) {
                    self.transfer = Transfer::Idle;
                    self.dialog_failed(Some(code), now);
                } else if self.transfer != Transfer::Idle {
                    self.transfer = Transfer::Idle;
                    if !self.ended {
                        self.emit(CallEvent::TransferFailed {
                            sip_status: Some(code),
                        });
                    }
                }
            }
            Purpose::Bye | Purpose::Cancel | Purpose::Cleanup => {}
            Purpose::Invite | Purpose::Reinvite { .. } => {}
        }
    }

    fn on_client_timeout(&mut self, i: usize, now: Instant) {
        let purpose = std::mem::replace(&mut self.clients[i].purpose, Purpose::Cleanup);
        match purpose {
            Purpose::Invite => {
                self.cancel = Cancel::None;
                self.ring_deadline = None;
                if self.phase == Phase::Inviting {
                    self.phase = Phase::Closed;
                }
                self.end(EndReason::Failed, None);
            }
            Purpose::Reinvite { .. } | Purpose::Info { .. } => self.dialog_failed(None, now),
            Purpose::Refer { .. } => {
                self.transfer = Transfer::Idle;
                self.dialog_failed(None, now);
            }
            Purpose::Bye | Purpose::Cancel | Purpose::Cleanup => {}
        }
    }

    // ---- requests -------------------------------------------------------------------------

    fn on_request(&mut self, m: &Message, now: Instant) {
        match incoming::check_request(m) {
            Check::Valid => {}
            Check::Reply(b) => {
                self.transmit(b);
                return;
            }
            Check::Drop => return,
        }
        // Retransmissions of requests we have a transaction for.
        for i in 0..self.servers.len() {
            match &mut self.servers[i].tx {
                ServerTx::Invite(t) if t.matches(m) => {
                    let r = t.handle_request(m, now);
                    self.drain_server(i);
                    if r == Matched::AckForSuccess {
                        self.on_ack(m, now);
                    }
                    return;
                }
                ServerTx::NonInvite(t) if t.matches(m) => {
                    t.handle_retransmission();
                    self.drain_server(i);
                    return;
                }
                _ => {}
            }
        }
        let method = m.method().unwrap_or_default();
        match method {
            "ACK" => return self.on_ack(m, now),
            "CANCEL" => return self.on_cancel(m, now),
            _ => {}
        }
        let in_dialog = self.dialog.as_ref().is_some_and(|d| d.matches_request(m));
        if !in_dialog {
            // An INVITE with our Call-ID and the caller's tag but another branch: the same
            // request reached us twice through a forking proxy (RFC 3261 §8.2.2.2).
            let merged = method == "INVITE"
                && m.header("to").and_then(compose::tag_of).is_none()
                && self.direction == Direction::Inbound;
            let code = if merged { 482 } else { 481 };
            self.reply(m, Response::to(m, code, Some(&self.local_tag)), now);
            return;
        }
        if let Some(d) = &mut self.dialog {
            if let Err(e) = d.check_cseq(m) {
                tracing::debug!(call_id = %self.call_id, got = e.got, last = e.last, "out-of-order request");
                self.reply(m, Response::to(m, 500, Some(&self.local_tag)), now);
                return;
            }
        }
        match method {
            "BYE" => self.on_bye(m, now),
            "INVITE" => self.on_reinvite(m, now),
            "INFO" => self.on_info(m, now),
            "NOTIFY" => self.on_notify(m, now),
            "OPTIONS" => {
                let mut r = Response::to(m, 200, Some(&self.local_tag));
                r.push("Allow", ALLOW).push("Accept", ACCEPT);
                self.reply(m, r, now);
            }
            _ => {
                let mut r = Response::to(m, 405, Some(&self.local_tag));
                r.push("Allow", ALLOW);
                self.reply(m, r, now);
            }
        }
    }

    fn on_ack(&mut self, m: &Message, now: Instant) {
        if !self.dialog.as_ref().is_some_and(|d| d.matches_request(m)) {
            return;
        }
        let cseq = m.cseq().map_or(0, |c| c.0);
        let Some(a) = &mut self.answer else { return };
        if a.is_acked() || a.cseq() != cseq {
            return;
        }
        a.acked();
        let body = sdp::body(m);
        match self.phase {
            Phase::Answered => {
                self.phase = Phase::Confirmed;
                if self.ended || self.bye_after_ack {
                    self.bye_after_ack = false;
                    self.send_bye(Attempt::default(), now);
                } else if self.answer_offered && body.is_none() {
                    tracing::info!(call_id = %self.call_id, "ACK without the SDP answer to our offer");
                    self.send_bye(Attempt::default(), now);
                    self.end(EndReason::Failed, None);
                } else {
                    self.emit(CallEvent::Answered { sdp: body });
                    self.try_reinvite(now);
                }
            }
            Phase::Confirmed => {
                if let (true, Some(sdp)) = (self.answer_offered, body) {
                    self.emit(CallEvent::RemoteAnswer { sdp });
                }
                self.try_reinvite(now);
            }
            _ => {}
        }
    }

    fn on_cancel(&mut self, m: &Message, now: Instant) {
        let Some(idx) = self.servers.iter().position(|s| match &s.tx {
            ServerTx::Invite(t) => t.matches_cancel(m),
            ServerTx::NonInvite(_) => false,
        }) else {
            self.reply(m, Response::to(m, 481, Some(&self.local_tag)), now);
            return;
        };
        self.reply(m, Response::to(m, 200, Some(&self.local_tag)), now);
        if !self.servers[idx].is_pending_invite() {
            return;
        }
        match self.servers[idx].kind {
            ServerKind::Initial => {
                self.refuse_initial(487, now);
                self.end(EndReason::Cancelled, None);
            }
            _ => {
                if let ServerKind::Reinvite { request } = &mut self.servers[idx].kind {
                    if let Some(req) = request.take() {
                        let r = Response::to(&req, 487, Some(&self.local_tag));
                        self.respond(idx, r, now);
                    }
                }
                self.try_reinvite(now);
            }
        }
    }

    fn on_bye(&mut self, m: &Message, now: Instant) {
        self.reply(m, Response::to(m, 200, Some(&self.local_tag)), now);
        let phase = self.phase;
        self.phase = Phase::Closed;
        self.dtmf.clear();
        self.hold_wanted = None;
        self.reinvite_retry_at = None;
        self.bye_after_ack = false;
        if let Some(a) = &mut self.answer {
            a.acked();
        }
        self.abort_reinvites(now);
        match phase {
            Phase::Ringing => {
                // The caller gave up on the early dialog (RFC 3261 §15.1.2).
                self.refuse_initial(487, now);
                self.end(EndReason::Cancelled, None);
            }
            Phase::Answered | Phase::Confirmed => {
                if matches!(self.transfer, Transfer::Accepted { .. }) && !self.ended {
                    // The transferee may hang up before its final NOTIFY: wait a little for it.
                    self.bye_grace = Some(now + self.settings.timers.t4);
                } else {
                    self.end(EndReason::RemoteHangup, None);
                }
            }
            Phase::Inviting | Phase::Closed => self.end(EndReason::RemoteHangup, None),
        }
    }

    fn on_reinvite(&mut self, m: &Message, now: Instant) {
        let retry_after = |call: &Call, code: u16| {
            let mut r = Response::to(m, code, Some(&call.local_tag));
            if code == 500 {
                r.push("Retry-After", rand::random_range(0..=10u32).to_string());
            }
            r
        };
        if self.ended || self.phase != Phase::Confirmed {
            // After our BYE the dialog is gone; before the ACK of our 200, try again later.
            let code = if self.phase == Phase::Answered {
                491
            } else {
                481
            };
            let r = retry_after(self, code);
            self.reply(m, r, now);
            return;
        }
        if self.servers.iter().any(Server::is_pending_invite) {
            // RFC 3261 §14.2: an INVITE while another is unanswered.
            let r = retry_after(self, 500);
            self.reply(m, r, now);
            return;
        }
        let ours_pending = self.clients.iter().any(|c| {
            matches!(&c.tx, ClientTx::Invite(t) if matches!(t.state(), invite_client::State::Calling | invite_client::State::Proceeding))
        });
        let offer_pending = self.answer.as_ref().is_some_and(|a| !a.is_acked());
        if ours_pending || offer_pending {
            let r = retry_after(self, 491);
            self.reply(m, r, now);
            return;
        }
        while self
            .their_reinvites
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= REINVITE_WINDOW)
        {
            self.their_reinvites.pop_front();
        }
        if let Some(oldest) = self
            .their_reinvites
            .front()
            .filter(|_| self.their_reinvites.len() >= MAX_REINVITES)
        {
            let wait = REINVITE_WINDOW.saturating_sub(now.saturating_duration_since(*oldest));
            tracing::debug!(call_id = %self.call_id, "re-INVITE flood: refused");
            let mut r = Response::to(m, 500, Some(&self.local_tag));
            r.push("Retry-After", (wait.as_secs() + 1).to_string());
            self.reply(m, r, now);
            return;
        }
        self.their_reinvites.push_back(now);
        if !m.body.is_empty() && !m.header("content-type").is_some_and(sdp::is_sdp_type) {
            let mut r = Response::to(m, 415, Some(&self.local_tag));
            r.push("Accept", "application/sdp");
            self.reply(m, r, now);
            return;
        }
        let Some(tx) = InviteServer::new(m, self.reliable(), self.settings.timers) else {
            return;
        };
        let offer = sdp::body(m);
        self.servers.push(Server {
            tx: ServerTx::Invite(tx),
            kind: ServerKind::Reinvite {
                request: Some(Box::new(m.clone())),
            },
        });
        let idx = self.servers.len() - 1;
        match offer {
            Some(sdp) => {
                self.respond(idx, Response::to(m, 100, None), now);
                let hold = sdp::offers_hold(&sdp);
                self.emit(CallEvent::RemoteOffer { sdp, hold });
            }
            None => {
                // No offer: ours goes in the 200 (our current SDP) and the answer in the ACK.
                let Some(local) = self.local_sdp.clone() else {
                    let r = Response::to(m, 488, Some(&self.local_tag));
                    self.servers[idx].kind = ServerKind::Other;
                    self.respond(idx, r, now);
                    return;
                };
                self.servers[idx].kind = ServerKind::Other;
                self.answer_invite(idx, m, local, now);
                self.answer_offered = true;
                if let Some(d) = &mut self.dialog {
                    d.refresh_target(m);
                }
            }
        }
    }

    fn on_info(&mut self, m: &Message, now: Instant) {
        if m.body.is_empty() {
            self.reply(m, Response::to(m, 200, Some(&self.local_tag)), now);
            return;
        }
        let ty = m.header("content-type").unwrap_or_default();
        match dtmf::parse_info(ty, &m.body) {
            Some((digit, duration_ms)) => {
                self.reply(m, Response::to(m, 200, Some(&self.local_tag)), now);
                if !self.ended {
                    self.emit(CallEvent::DtmfReceived { digit, duration_ms });
                }
            }
            None => {
                let mut r = Response::to(m, 415, Some(&self.local_tag));
                r.push("Accept", "application/dtmf-relay, application/dtmf");
                self.reply(m, r, now);
            }
        }
    }

    fn on_notify(&mut self, m: &Message, now: Instant) {
        if !m.header("event").is_some_and(transfer::is_refer_event) {
            self.reply(m, Response::to(m, 489, Some(&self.local_tag)), now);
            return;
        }
        if self.transfer == Transfer::Idle {
            self.reply(m, Response::to(m, 481, Some(&self.local_tag)), now);
            return;
        }
        self.reply(m, Response::to(m, 200, Some(&self.local_tag)), now);
        let status = transfer::sipfrag_status(&m.body);
        let terminated = transfer::subscription_terminated(m);
        match status {
            Some(100..=199) => {
                if terminated {
                    self.transfer_failed(None);
                } else {
                    self.accept_transfer(now);
                }
            }
            Some(200..=299) => {
                self.transfer = Transfer::Idle;
                if self.bye_grace.take().is_none() && self.phase == Phase::Confirmed {
                    self.send_bye(Attempt::default(), now);
                }
                self.end(EndReason::Transferred, None);
            }
            Some(code) => self.transfer_failed(Some(code)),
            None if terminated => self.transfer_failed(None),
            None => {}
        }
    }

    fn accept_transfer(&mut self, now: Instant) {
        if self.transfer == Transfer::Requested {
            self.transfer = Transfer::Accepted {
                deadline: now
                    + self.settings.ring_timeout
                    + self.settings.timers.transaction_timeout(),
            };
        }
        self.announce_transferring();
    }

    fn announce_transferring(&mut self) {
        if !self.transferring_announced && !self.ended {
            self.transferring_announced = true;
            self.emit(CallEvent::Transferring);
        }
    }

    fn transfer_failed(&mut self, sip_status: Option<u16>) {
        self.transfer = Transfer::Idle;
        if self.bye_grace.take().is_some() {
            self.end(EndReason::RemoteHangup, None);
        } else if !self.ended {
            self.emit(CallEvent::TransferFailed { sip_status });
        }
    }

    // ---- sending --------------------------------------------------------------------------

    fn reliable(&self) -> bool {
        self.local.transport.is_stream()
    }

    fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};rport;branch={}",
            self.local.transport.via_name(),
            self.local.sent_by,
            routing::branch(&self.local.route)
        )
    }

    fn transmit(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.out.push_back(Output::Transmit(bytes));
        }
    }

    fn emit(&mut self, e: CallEvent) {
        self.out.push_back(Output::Event(e));
    }

    fn end(&mut self, reason: EndReason, sip_status: Option<u16>) {
        if self.ended {
            return;
        }
        self.ended = true;
        self.ring_deadline = None;
        self.dtmf.clear();
        self.hold_wanted = None;
        self.reinvite_retry_at = None;
        self.bye_grace = None;
        self.transfer = Transfer::Idle;
        self.emit(CallEvent::Ended { reason, sip_status });
    }

    /// Ends the dialog after a 408/481/timeout to a request in it (RFC 3261 §12.2.1.2): BYE
    /// unless the far end said the dialog does not exist.
    fn dialog_failed(&mut self, status: Option<u16>, now: Instant) {
        if self.phase == Phase::Confirmed && status != Some(481) {
            self.send_bye(Attempt::default(), now);
        }
        self.phase = Phase::Closed;
        self.end(EndReason::Failed, status);
    }

    fn drain_client(&mut self, i: usize) {
        while let Some(b) = self.clients[i].tx.get_mut().poll_transmit() {
            self.out.push_back(Output::Transmit(b));
        }
    }

    fn drain_server(&mut self, i: usize) {
        while let Some(b) = self.servers[i].get_mut().poll_transmit() {
            self.out.push_back(Output::Transmit(b));
        }
    }

    /// Sends what the transactions queued and forgets the finished ones.
    fn flush(&mut self) {
        for i in 0..self.clients.len() {
            self.drain_client(i);
        }
        for i in 0..self.servers.len() {
            self.drain_server(i);
        }
        self.clients
            .retain(|c| !c.tx.get().is_terminated() && !c.abandoned);
        self.servers.retain(|s| !s.get().is_terminated());
        if self.answer.as_ref().is_some_and(AnswerRetransmit::is_acked) {
            self.answer = None;
        }
    }

    fn respond(&mut self, idx: usize, r: Response, now: Instant) {
        let code = r.code;
        let bytes = r.encode();
        match &mut self.servers[idx].tx {
            ServerTx::Invite(t) => {
                t.respond(code, bytes, now);
            }
            ServerTx::NonInvite(t) => {
                t.respond(code, bytes, now);
            }
        }
        self.drain_server(idx);
    }

    /// Answers a request through a server transaction of its own (so its retransmissions get
    /// the same answer; an INVITE's failure is retransmitted until its ACK). Past
    /// `MAX_SERVER_TRANSACTIONS` the answer goes out once, statelessly.
    fn reply(&mut self, m: &Message, r: Response, now: Instant) {
        let (reliable, timers) = (self.reliable(), self.settings.timers);
        let tx = if self.servers.len() >= MAX_SERVER_TRANSACTIONS {
            None
        } else if m.method() == Some("INVITE") {
            InviteServer::new(m, reliable, timers).map(ServerTx::Invite)
        } else {
            NonInviteServer::new(m, reliable, timers).map(ServerTx::NonInvite)
        };
        match tx {
            Some(tx) => {
                self.servers.push(Server {
                    tx,
                    kind: ServerKind::Other,
                });
                let idx = self.servers.len() - 1;
                self.respond(idx, r, now);
            }
            None => self.transmit(r.encode()),
        }
    }

    /// A response to an INVITE of ours to answer (initial or re-INVITE): 1xx/2xx carry the
    /// Record-Route (RFC 3261 §12.1.1), Contact and Allow.
    fn invite_response(&self, request: &Message, code: u16) -> Response {
        let mut r = Response::to(request, code, Some(&self.local_tag));
        if (101..300).contains(&code) {
            for rr in request.headers_named("record-route") {
                r.push("Record-Route", rr);
            }
            r.push("Contact", format!("<{}>", self.local.contact));
            r.push("Allow", ALLOW);
        }
        r
    }

    fn initial_server(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| matches!(s.kind, ServerKind::Initial))
    }

    /// Takes the far end's re-INVITE waiting for our answer ([`CallEvent::RemoteOffer`]), with
    /// the index of its server transaction.
    fn take_reoffer(&mut self) -> Result<(usize, Box<Message>), CallError> {
        let idx = self.pending_reoffer().ok_or(CallError::NoOffer)?;
        match &mut self.servers[idx].kind {
            ServerKind::Reinvite { request } => {
                request.take().map(|r| (idx, r)).ok_or(CallError::NoOffer)
            }
            _ => Err(CallError::NoOffer),
        }
    }

    fn pending_reoffer(&self) -> Option<usize> {
        self.servers.iter().position(|s| {
            matches!(&s.kind, ServerKind::Reinvite { request: Some(_) }) && s.is_pending_invite()
        })
    }

    /// Sends a failure to the inbound INVITE (it is then retransmitted until its ACK).
    fn refuse_initial(&mut self, status: u16, now: Instant) {
        self.ring_deadline = None;
        self.phase = Phase::Closed;
        if let (Some(idx), Some(invite)) = (self.initial_server(), self.initial.clone()) {
            if self.servers[idx].is_pending_invite() {
                let r = Response::to(&invite, status, Some(&self.local_tag));
                self.respond(idx, r, now);
            }
        }
    }

    /// 487 to re-INVITEs still waiting for the media layer (the dialog is ending).
    fn abort_reinvites(&mut self, now: Instant) {
        for idx in 0..self.servers.len() {
            if let ServerKind::Reinvite { request } = &mut self.servers[idx].kind {
                if let Some(req) = request.take() {
                    let r = Response::to(&req, 487, Some(&self.local_tag));
                    self.respond(idx, r, now);
                }
            }
        }
    }

    fn copy_credentials(&self, from: &Request, to: &mut Request) {
        for v in from.all("Authorization") {
            to.push("Authorization", v);
        }
        for v in from.all("Proxy-Authorization") {
            to.push("Proxy-Authorization", v);
        }
    }

    fn add_credentials(&mut self, r: &mut Request) {
        let has_body = r.body.is_some();
        let local = self.local.clone();
        for (name, value) in self.auth.headers(
            &local.auth_name,
            &local.password,
            &r.method,
            &r.uri,
            has_body,
        ) {
            r.push(name, value);
        }
    }

    fn start_non_invite(&mut self, r: Request, purpose: Purpose, attempt: Attempt, now: Instant) {
        let tx = NonInviteClient::new(r, self.reliable(), self.settings.timers, now);
        self.clients.push(Client {
            tx: ClientTx::NonInvite(tx),
            purpose,
            attempt,
            abandoned: false,
        });
        let i = self.clients.len() - 1;
        self.drain_client(i);
    }

    fn send_invite(&mut self, attempt: Attempt, now: Instant) {
        let cseq = self.cseq;
        self.cseq += 1;
        let from = format!(
            "{};tag={}",
            compose::name_addr(self.local.display_name.as_deref(), &self.local.aor),
            self.local_tag
        );
        let mut r = Request::new("INVITE", &self.target);
        r.push("Via", self.via())
            .push("Max-Forwards", "70")
            .push("From", from)
            .push("To", format!("<{}>", self.target))
            .push("Call-ID", self.call_id.clone())
            .push("CSeq", format!("{cseq} INVITE"))
            .push("Contact", format!("<{}>", self.local.contact))
            .push("Allow", ALLOW)
            .push("User-Agent", self.settings.user_agent.clone());
        r.set_body("application/sdp", self.offer.clone());
        self.add_credentials(&mut r);
        self.invite = Some(r.clone());
        self.provisional_seen = false;
        let tx = InviteClient::new(r, self.reliable(), self.settings.timers, now);
        self.clients.push(Client {
            tx: ClientTx::Invite(tx),
            purpose: Purpose::Invite,
            attempt,
            abandoned: false,
        });
        let i = self.clients.len() - 1;
        self.drain_client(i);
    }

    fn cancel_invite(&mut self, now: Instant) {
        if self.provisional_seen {
            self.send_cancel(now);
        } else {
            self.cancel = Cancel::Pending;
        }
    }

    fn send_cancel(&mut self, now: Instant) {
        let Some(invite) = self.invite.clone() else {
            return;
        };
        let cancel = compose::cancel_for(&invite);
        self.start_non_invite(cancel, Purpose::Cancel, Attempt::default(), now);
        self.cancel = Cancel::Sent {
            give_up: now + self.settings.timers.transaction_timeout(),
        };
    }

    fn send_bye(&mut self, attempt: Attempt, now: Instant) {
        let via = self.via();
        let Some(d) = &mut self.dialog else { return };
        let mut r = d.request("BYE", &via);
        r.push("User-Agent", self.settings.user_agent.clone());
        self.add_credentials(&mut r);
        self.phase = Phase::Closed;
        self.start_non_invite(r, Purpose::Bye, attempt, now);
    }

    fn send_info(&mut self, digit: char, attempt: Attempt, now: Instant) {
        let via = self.via();
        let Some(d) = &mut self.dialog else { return };
        let mut r = d.request("INFO", &via);
        r.push("User-Agent", self.settings.user_agent.clone());
        r.set_body("application/dtmf-relay", dtmf::info_body(digit));
        self.add_credentials(&mut r);
        self.start_non_invite(r, Purpose::Info { digit }, attempt, now);
    }

    fn send_refer(&mut self, target: String, attempt: Attempt, now: Instant) {
        let via = self.via();
        let Some(d) = &mut self.dialog else { return };
        let mut r = d.request("REFER", &via);
        r.push("Refer-To", format!("<{target}>"))
            .push("Referred-By", format!("<{}>", self.local.aor))
            .push("Contact", format!("<{}>", self.local.contact))
            .push("Allow", ALLOW)
            .push("User-Agent", self.settings.user_agent.clone());
        self.add_credentials(&mut r);
        self.start_non_invite(r, Purpose::Refer { target }, attempt, now);
    }

    fn pump_dtmf(&mut self, now: Instant) {
        if self.ended || self.phase != Phase::Confirmed {
            self.dtmf.clear();
            return;
        }
        let busy = self
            .clients
            .iter()
            .any(|c| matches!(c.purpose, Purpose::Info { .. }) && !c.tx.get().is_terminated());
        if busy {
            return;
        }
        if let Some(digit) = self.dtmf.pop_front() {
            self.send_info(digit, Attempt::default(), now);
        }
    }

    fn want_reinvite(&mut self, hold: bool, sdp: Vec<u8>, now: Instant) -> Result<(), CallError> {
        if self.ended || self.phase != Phase::Confirmed {
            return Err(CallError::WrongState);
        }
        self.hold_wanted = Some((hold, sdp));
        self.try_reinvite(now);
        Ok(())
    }

    /// Sends the wanted hold/unhold re-INVITE when no INVITE transaction is in progress in
    /// either direction (RFC 3261 §14.1) and no 491 back-off is running.
    fn try_reinvite(&mut self, now: Instant) {
        if self.ended || self.phase != Phase::Confirmed || self.reinvite_retry_at.is_some() {
            return;
        }
        let ours = self.clients.iter().any(|c| {
            matches!(&c.tx, ClientTx::Invite(t) if matches!(t.state(), invite_client::State::Calling | invite_client::State::Proceeding))
        });
        let theirs = self.servers.iter().any(Server::is_pending_invite);
        let unacked = self.answer.as_ref().is_some_and(|a| !a.is_acked());
        if ours || theirs || unacked {
            return;
        }
        let Some((hold, sdp)) = self.hold_wanted.take() else {
            return;
        };
        self.send_reinvite(hold, sdp, Attempt::default(), now);
    }

    fn send_reinvite(&mut self, hold: bool, sdp: Vec<u8>, attempt: Attempt, now: Instant) {
        let via = self.via();
        let Some(d) = &mut self.dialog else { return };
        let mut r = d.request("INVITE", &via);
        r.push("Contact", format!("<{}>", self.local.contact))
            .push("Allow", ALLOW)
            .push("User-Agent", self.settings.user_agent.clone());
        r.set_body("application/sdp", sdp.clone());
        self.add_credentials(&mut r);
        let tx = InviteClient::new(r, self.reliable(), self.settings.timers, now);
        self.clients.push(Client {
            tx: ClientTx::Invite(tx),
            purpose: Purpose::Reinvite { hold, sdp },
            attempt,
            abandoned: false,
        });
        let i = self.clients.len() - 1;
        self.drain_client(i);
    }

    /// Records that `by` put the call on hold (or resumed it); tells the client on a change.
    fn set_hold(&mut self, by: Party, hold: bool) {
        let held = match by {
            Party::Local => &mut self.local_hold,
            Party::Remote => &mut self.remote_hold,
        };
        if hold != *held {
            *held = hold;
            self.emit(if hold {
                CallEvent::Held { by }
            } else {
                CallEvent::Resumed { by }
            });
        }
    }

    fn on_ring_timeout(&mut self, now: Instant) {
        if self.ended {
            return;
        }
        match self.phase {
            Phase::Inviting => {
                self.cancel_invite(now);
                self.end(EndReason::NoAnswer, None);
            }
            Phase::Ringing => {
                self.refuse_initial(480, now);
                self.end(EndReason::NoAnswer, None);
            }
            _ => {}
        }
    }

    /// 64·T1 without the ACK of our 2xx (RFC 3261 §13.3.1.4): the session is confirmed, then
    /// ended with BYE.
    fn on_no_ack(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Answered | Phase::Confirmed) {
            self.phase = Phase::Confirmed;
            self.bye_after_ack = false;
            self.send_bye(Attempt::default(), now);
            self.end(EndReason::Failed, None);
        }
    }
}
