//! The far end's requests inside a [`Call`]: ACK, CANCEL, BYE, re-INVITE (hold and resume in
//! either direction), INFO (DTMF) and the NOTIFYs that follow a REFER this call sent.

use std::time::Instant;

use super::auth::Attempt;
use super::{
    dtmf, sdp, transfer, Call, CallEvent, ClientTx, Direction, EndReason, Phase, Server,
    ServerKind, ServerTx, Transfer, MAX_REINVITES, REINVITE_WINDOW,
};
use crate::sip::compose::{self, Response};
use crate::sip::incoming::{self, Check, ACCEPT, ALLOW};
use crate::sip::invite_client;
use crate::sip::invite_server::{InviteServer, Matched};
use crate::sip::message::Message;

impl Call {
    pub(super) fn on_request(&mut self, m: &Message, now: Instant) {
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

    pub(super) fn accept_transfer(&mut self, now: Instant) {
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
}
