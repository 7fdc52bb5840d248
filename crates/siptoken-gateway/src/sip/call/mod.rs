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
//!
//! Where the machine lives: this module holds its state, the commands and the input entry
//! points; `responses` handles what the far end answers, `requests` what the far end asks
//! inside the call, `sending` every request and response the call puts on the wire.

mod auth;
#[cfg(any(test, feature = "fuzzing"))]
mod drive;
pub mod dtmf;
mod end;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
mod requests;
mod responses;
mod sdp;
mod sending;
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
use super::incoming::{self, Check};
use super::invite_client::{self, InviteClient};
use super::invite_server::InviteServer;
use super::message::{self, Message};
use super::non_invite_client::NonInviteClient;
use super::non_invite_server::NonInviteServer;
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
    /// The registration's route `R` (carried in every Via branch, see [`routing`](crate::sip::routing)).
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
}
