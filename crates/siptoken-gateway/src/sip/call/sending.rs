//! What a [`Call`] sends and the bookkeeping around it: transactions started and drained,
//! responses built, events emitted, digest credentials added, and the INVITE, CANCEL, BYE,
//! INFO, REFER and re-INVITE requests themselves.

use std::time::Instant;

use super::auth::Attempt;
use super::{
    dtmf, Call, CallError, CallEvent, Cancel, Client, ClientTx, EndReason, Output, Party, Phase,
    Purpose, Server, ServerKind, ServerTx, Transfer, MAX_SERVER_TRANSACTIONS,
};
use crate::sip::compose::{self, Request, Response};
use crate::sip::incoming::ALLOW;
use crate::sip::invite_client::{self, InviteClient};
use crate::sip::invite_server::InviteServer;
use crate::sip::message::Message;
use crate::sip::non_invite_client::NonInviteClient;
use crate::sip::non_invite_server::NonInviteServer;
use crate::sip::routing;
use crate::sip::uas_answer::AnswerRetransmit;

impl Call {
    pub(super) fn reliable(&self) -> bool {
        self.local.transport.is_stream()
    }

    pub(super) fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};rport;branch={}",
            self.local.transport.via_name(),
            self.local.sent_by,
            routing::branch(&self.local.route)
        )
    }

    pub(super) fn transmit(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.out.push_back(Output::Transmit(bytes));
        }
    }

    pub(super) fn emit(&mut self, e: CallEvent) {
        self.out.push_back(Output::Event(e));
    }

    pub(super) fn end(&mut self, reason: EndReason, sip_status: Option<u16>) {
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
    pub(super) fn dialog_failed(&mut self, status: Option<u16>, now: Instant) {
        if self.phase == Phase::Confirmed && status != Some(481) {
            self.send_bye(Attempt::default(), now);
        }
        self.phase = Phase::Closed;
        self.end(EndReason::Failed, status);
    }

    pub(super) fn drain_client(&mut self, i: usize) {
        while let Some(b) = self.clients[i].tx.get_mut().poll_transmit() {
            self.out.push_back(Output::Transmit(b));
        }
    }

    pub(super) fn drain_server(&mut self, i: usize) {
        while let Some(b) = self.servers[i].get_mut().poll_transmit() {
            self.out.push_back(Output::Transmit(b));
        }
    }

    /// Sends what the transactions queued and forgets the finished ones.
    pub(super) fn flush(&mut self) {
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

    pub(super) fn respond(&mut self, idx: usize, r: Response, now: Instant) {
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
    pub(super) fn reply(&mut self, m: &Message, r: Response, now: Instant) {
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
    pub(super) fn invite_response(&self, request: &Message, code: u16) -> Response {
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

    pub(super) fn initial_server(&self) -> Option<usize> {
        self.servers
            .iter()
            .position(|s| matches!(s.kind, ServerKind::Initial))
    }

    /// Takes the far end's re-INVITE waiting for our answer ([`CallEvent::RemoteOffer`]), with
    /// the index of its server transaction.
    pub(super) fn take_reoffer(&mut self) -> Result<(usize, Box<Message>), CallError> {
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
    pub(super) fn refuse_initial(&mut self, status: u16, now: Instant) {
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
    pub(super) fn abort_reinvites(&mut self, now: Instant) {
        for idx in 0..self.servers.len() {
            if let ServerKind::Reinvite { request } = &mut self.servers[idx].kind {
                if let Some(req) = request.take() {
                    let r = Response::to(&req, 487, Some(&self.local_tag));
                    self.respond(idx, r, now);
                }
            }
        }
    }

    pub(super) fn copy_credentials(&self, from: &Request, to: &mut Request) {
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

    pub(super) fn start_non_invite(
        &mut self,
        r: Request,
        purpose: Purpose,
        attempt: Attempt,
        now: Instant,
    ) {
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

    pub(super) fn send_invite(&mut self, attempt: Attempt, now: Instant) {
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

    pub(super) fn cancel_invite(&mut self, now: Instant) {
        if self.provisional_seen {
            self.send_cancel(now);
        } else {
            self.cancel = Cancel::Pending;
        }
    }

    pub(super) fn send_cancel(&mut self, now: Instant) {
        let Some(invite) = self.invite.clone() else {
            return;
        };
        let cancel = compose::cancel_for(&invite);
        self.start_non_invite(cancel, Purpose::Cancel, Attempt::default(), now);
        self.cancel = Cancel::Sent {
            give_up: now + self.settings.timers.transaction_timeout(),
        };
    }

    pub(super) fn send_bye(&mut self, attempt: Attempt, now: Instant) {
        let via = self.via();
        let Some(d) = &mut self.dialog else { return };
        let mut r = d.request("BYE", &via);
        r.push("User-Agent", self.settings.user_agent.clone());
        self.add_credentials(&mut r);
        self.phase = Phase::Closed;
        self.start_non_invite(r, Purpose::Bye, attempt, now);
    }

    pub(super) fn send_info(&mut self, digit: char, attempt: Attempt, now: Instant) {
        let via = self.via();
        let Some(d) = &mut self.dialog else { return };
        let mut r = d.request("INFO", &via);
        r.push("User-Agent", self.settings.user_agent.clone());
        r.set_body("application/dtmf-relay", dtmf::info_body(digit));
        self.add_credentials(&mut r);
        self.start_non_invite(r, Purpose::Info { digit }, attempt, now);
    }

    pub(super) fn send_refer(&mut self, target: String, attempt: Attempt, now: Instant) {
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

    pub(super) fn pump_dtmf(&mut self, now: Instant) {
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

    pub(super) fn want_reinvite(
        &mut self,
        hold: bool,
        sdp: Vec<u8>,
        now: Instant,
    ) -> Result<(), CallError> {
        if self.ended || self.phase != Phase::Confirmed {
            return Err(CallError::WrongState);
        }
        self.hold_wanted = Some((hold, sdp));
        self.try_reinvite(now);
        Ok(())
    }

    /// Sends the wanted hold/unhold re-INVITE when no INVITE transaction is in progress in
    /// either direction (RFC 3261 §14.1) and no 491 back-off is running.
    pub(super) fn try_reinvite(&mut self, now: Instant) {
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

    pub(super) fn send_reinvite(
        &mut self,
        hold: bool,
        sdp: Vec<u8>,
        attempt: Attempt,
        now: Instant,
    ) {
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
    pub(super) fn set_hold(&mut self, by: Party, hold: bool) {
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

    pub(super) fn on_ring_timeout(&mut self, now: Instant) {
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
    pub(super) fn on_no_ack(&mut self, now: Instant) {
        if matches!(self.phase, Phase::Answered | Phase::Confirmed) {
            self.phase = Phase::Confirmed;
            self.bye_after_ack = false;
            self.send_bye(Attempt::default(), now);
            self.end(EndReason::Failed, None);
        }
    }
}
