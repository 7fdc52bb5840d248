//! The far end's responses to the requests a [`Call`] sent: the INVITE's provisional and
//! final responses (digest retries, 2xx retransmissions and forked extra 2xx), re-INVITE
//! outcomes including 491 glare, and the final responses of BYE, INFO and REFER.

use std::time::Instant;

use super::auth::Attempt;
use super::{
    glare_delay, sdp, Call, CallEvent, Cancel, ClientTx, Direction, EndReason, Party, Phase,
    Purpose, Transfer, MAX_CLEANUP_TRANSACTIONS,
};
use crate::sip::compose;
use crate::sip::dialog::Dialog;
use crate::sip::invite_client;
use crate::sip::message::Message;
use crate::sip::non_invite_client;

impl Call {
    pub(super) fn on_response(&mut self, m: &Message, now: Instant) {
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

    pub(super) fn on_client_timeout(&mut self, i: usize, now: Instant) {
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
}
