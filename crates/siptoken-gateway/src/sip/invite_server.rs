//! The INVITE server transaction (RFC 3261 §17.2.1, with the "Accepted" state of RFC 6026
//! §7.1), sans-IO.
//!
//! ```text
//!   INVITE received
//!        |
//!   Proceeding ── INVITE again: resend the last provisional ── 1xx from the call: send
//!        | 2xx from the call: send                | 300-699 from the call: send, Timers G, H
//!        v                                        v
//!    Accepted (INVITE again: absorbed;       Completed ── Timer G: resend, G = min(2G, T2)
//!    the call retransmits the 2xx itself)        | INVITE again: resend   | Timer H → Terminated
//!        | Timer L (64·T1)                        | ACK                      (no ACK: told)
//!    Terminated                              Confirmed ── Timer I (T4 UDP, 0 reliable)
//!                                                 → Terminated
//! ```
//!
//! The 2xx itself is retransmitted by the call core until the ACK ([`super::uas_answer`]).

use std::time::Instant;

use super::message::Message;
use super::timers::Timers;
use super::transaction::{transaction_impl, Backoff, Expiry, ServerKey, Transmitter};

/// Where the transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No final response yet.
    Proceeding,
    /// A failure was sent; retransmitting it until the ACK (Timers G and H).
    Completed,
    /// The ACK of the failure arrived; absorbing retransmissions (Timer I).
    Confirmed,
    /// A 2xx was sent; absorbing INVITE retransmissions (Timer L).
    Accepted,
    /// Done.
    Terminated,
}

/// What a request the transaction matched means to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matched {
    /// A retransmission, handled here (the last response resent if due).
    Absorbed,
    /// The ACK of the failure response (the transaction is now Confirmed).
    FailureAcked,
    /// An ACK arriving after a 2xx with the INVITE's branch (a peer that reuses the branch for
    /// the 2xx ACK): the call treats it as the ACK of its 2xx.
    AckForSuccess,
}

/// One INVITE server transaction.
#[derive(Debug)]
pub struct InviteServer {
    key: ServerKey,
    state: State,
    /// The last response, resent by Timer G; Timer H (Completed), I (Confirmed) or L
    /// (Accepted).
    wire: Transmitter,
}

transaction_impl!(InviteServer);

impl InviteServer {
    /// Starts the transaction for `invite`; `None` when the INVITE lacks a Via branch, Call-ID
    /// or CSeq (it gets a 400 instead).
    pub fn new(invite: &Message, reliable: bool, timers: Timers) -> Option<InviteServer> {
        Some(InviteServer {
            key: ServerKey::of(invite)?,
            state: State::Proceeding,
            wire: Transmitter::new(reliable, timers, Backoff::DoubleUpToT2),
        })
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The INVITE's CSeq number.
    pub fn cseq(&self) -> u32 {
        self.key.cseq()
    }

    /// Whether a final response was sent.
    pub fn is_answered(&self) -> bool {
        self.state != State::Proceeding
    }

    /// Whether `request` is a retransmission of the INVITE or its ACK (same branch, sent-by,
    /// Call-ID and CSeq number).
    pub fn matches(&self, request: &Message) -> bool {
        matches!(request.method(), Some("INVITE" | "ACK")) && self.key.matches(request)
    }

    /// Whether `cancel` cancels this transaction (RFC 3261 §9.2: the same key, method CANCEL).
    pub fn matches_cancel(&self, cancel: &Message) -> bool {
        cancel.method() == Some("CANCEL") && self.key.matches(cancel)
    }

    /// Sends a response built by the call. Returns `false` (and sends nothing) when a final
    /// response was already sent.
    pub fn respond(&mut self, code: u16, bytes: Vec<u8>, now: Instant) -> bool {
        if self.state != State::Proceeding {
            return false;
        }
        self.wire.send(bytes);
        match code {
            100..=199 => {}
            200..=299 => {
                self.state = State::Accepted;
                self.wire.set_transaction_timeout(now, Expiry::End);
            }
            _ => {
                self.state = State::Completed;
                self.wire.start_resend(now);
                self.wire.set_transaction_timeout(now, Expiry::Failure);
            }
        }
        true
    }

    /// Handles a request [`InviteServer::matches`] accepted.
    pub fn handle_request(&mut self, request: &Message, now: Instant) -> Matched {
        let ack = request.method() == Some("ACK");
        match (self.state, ack) {
            (State::Proceeding | State::Completed, false) => {
                self.wire.resend();
                Matched::Absorbed
            }
            (State::Completed, true) => {
                // Timer I.
                self.state = self.wire.absorb_retransmissions_for_t4(
                    now,
                    State::Confirmed,
                    State::Terminated,
                );
                Matched::FailureAcked
            }
            (State::Accepted, true) => Matched::AckForSuccess,
            _ => Matched::Absorbed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;
    use crate::sip::transaction::testing::{count, run_to_failure};
    use crate::sip::transaction::Transaction;
    use std::time::Duration;

    fn request(method: &str, branch: &str) -> Message {
        let text = format!(
            "{method} sip:st-r@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch={branch}\r\n\
             From: <sip:a@x>;tag=f\r\nTo: <sip:b@x>\r\nCall-ID: c9\r\nCSeq: 4 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        message::parse(text.as_bytes(), true).unwrap().0
    }

    fn ack() -> Message {
        let text =
            "ACK sip:st-r@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKi\r\n\
             From: <sip:a@x>;tag=f\r\nTo: <sip:b@x>;tag=l\r\nCall-ID: c9\r\nCSeq: 4 ACK\r\n\r\n";
        message::parse(text.as_bytes(), false).unwrap().0
    }

    fn new(reliable: bool) -> InviteServer {
        InviteServer::new(&request("INVITE", "z9hG4bKi"), reliable, Timers::default()).unwrap()
    }

    /// A transaction that sent the failure `code` (once) at the returned instant.
    fn failed(reliable: bool, code: u16) -> (InviteServer, Instant) {
        let t0 = Instant::now();
        let mut tx = new(reliable);
        assert!(tx.respond(code, code.to_string().into_bytes(), t0));
        assert_eq!(count(&mut tx), 1);
        (tx, t0)
    }

    #[test]
    fn matching_by_branch_sent_by_and_method() {
        let tx = new(false);
        assert!(tx.matches(&request("INVITE", "z9hG4bKi")));
        assert!(tx.matches(&ack()));
        assert!(!tx.matches(&request("INVITE", "z9hG4bKother")));
        assert!(!tx.matches(&request("BYE", "z9hG4bKi")));
        assert!(tx.matches_cancel(&request("CANCEL", "z9hG4bKi")));
        assert!(!tx.matches_cancel(&request("CANCEL", "z9hG4bKx")));
        let other_host = message::parse(
            b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKi\r\nCall-ID: c9\r\nCSeq: 4 INVITE\r\n\r\n",
            false,
        )
        .unwrap()
        .0;
        assert!(!tx.matches(&other_host));
        assert!(InviteServer::new(&other_host, false, Timers::default()).is_some());
        let no_branch = message::parse(
            b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
            false,
        )
        .unwrap()
        .0;
        assert!(InviteServer::new(&no_branch, false, Timers::default()).is_none());
    }

    #[test]
    fn retransmitted_invite_gets_the_last_provisional() {
        let t0 = Instant::now();
        let mut tx = new(false);
        assert_eq!(
            tx.handle_request(&request("INVITE", "z9hG4bKi"), t0),
            Matched::Absorbed
        );
        assert_eq!(count(&mut tx), 0, "nothing sent yet: nothing to resend");
        assert!(tx.respond(100, b"100".to_vec(), t0));
        assert!(tx.respond(180, b"180".to_vec(), t0));
        assert_eq!(count(&mut tx), 2);
        tx.handle_request(&request("INVITE", "z9hG4bKi"), t0);
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"180"[..]));
        assert_eq!(tx.poll_timeout(), None, "no timer while proceeding");
    }

    #[test]
    fn failure_retransmitted_by_timer_g_until_ack_then_timer_i() {
        let (mut tx, t0) = failed(false, 486);
        assert!(!tx.respond(200, b"200".to_vec(), t0), "one final response");
        assert_eq!(count(&mut tx), 0);
        let mut at = Vec::new();
        for _ in 0..4 {
            let now = tx.poll_timeout().unwrap();
            assert!(!tx.handle_timeout(now));
            assert_eq!(count(&mut tx), 1);
            at.push((now - t0).as_millis());
        }
        assert_eq!(at, [500, 1500, 3500, 7500]);
        let now = t0 + Duration::from_secs(8);
        tx.handle_request(&request("INVITE", "z9hG4bKi"), now);
        assert_eq!(count(&mut tx), 1, "INVITE retransmission answered again");
        assert_eq!(tx.handle_request(&ack(), now), Matched::FailureAcked);
        assert_eq!(tx.state(), State::Confirmed);
        assert_eq!(tx.poll_timeout(), Some(now + Duration::from_secs(5)));
        assert_eq!(tx.handle_request(&ack(), now), Matched::Absorbed);
        assert!(!tx.handle_timeout(now + Duration::from_secs(5)));
        assert!(tx.is_terminated());
    }

    #[test]
    fn timer_h_reports_a_missing_ack() {
        let (mut tx, t0) = failed(false, 603);
        let (sends, now) = run_to_failure(&mut tx, t0);
        assert_eq!(now - t0, Duration::from_secs(32));
        assert_eq!(
            sends,
            [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500],
            "G at 0.5, 1.5, 3.5, 7.5, then every 4 s to 31.5"
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_failure_waits_for_ack_without_retransmitting() {
        let (mut tx, t0) = failed(true, 486);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(tx.handle_request(&ack(), t0), Matched::FailureAcked);
        assert!(tx.is_terminated(), "Timer I is zero");
    }

    #[test]
    fn success_enters_accepted_absorbs_retransmissions_until_timer_l() {
        let t0 = Instant::now();
        let mut tx = new(false);
        tx.respond(200, b"200".to_vec(), t0);
        assert_eq!(count(&mut tx), 1);
        assert_eq!(
            tx.handle_request(&request("INVITE", "z9hG4bKi"), t0),
            Matched::Absorbed
        );
        assert_eq!(count(&mut tx), 0, "the call retransmits the 2xx, not us");
        assert_eq!(tx.handle_request(&ack(), t0), Matched::AckForSuccess);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(!tx.handle_timeout(t0 + Duration::from_secs(32)));
        assert!(tx.is_terminated());
    }
}
