//! The INVITE client transaction (RFC 3261 §17.1.1, with the "Accepted" state of RFC 6026 §7.2),
//! sans-IO: the request goes in, responses and time go in, datagrams to send and what the
//! transaction user (the call) must know come out.
//!
//! ```text
//!            INVITE sent, Timer A (UDP) and B
//!                 |
//!   Timer A: resend, A doubled ── Calling ── Timer B → Terminated (timeout to the TU)
//!                 | 1xx → TU       | 2xx → TU        | 300-699 → ACK, TU
//!                 v                |                 |
//!            Proceeding ──2xx──────+                 |
//!                 |                v                 v
//!                 +─300-699───► Completed ◄──────────+   (resend ACK on each retransmitted
//!                                   | Timer D (32 s UDP, 0 reliable)    final response)
//!                              Accepted (2xx retransmissions → TU, which ACKs them)
//!                                   | Timer M (64·T1)
//!                              Terminated
//! ```
//!
//! The ACK of a 2xx is not part of the transaction: the call sends it (RFC 3261 §13.2.2.4).

use std::time::Instant;

use super::compose::{self, Request};
use super::message::Message;
use super::timers::{Timers, TIMER_D};
use super::transaction::{transaction_impl, Backoff, Expiry, Transmitter};

/// Where the transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Sent; no response yet.
    Calling,
    /// A provisional response arrived.
    Proceeding,
    /// A failure arrived and was acknowledged; absorbing retransmissions (Timer D).
    Completed,
    /// A 2xx arrived; passing its retransmissions to the call (Timer M).
    Accepted,
    /// Done.
    Terminated,
}

/// What a response means to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// 1xx.
    Provisional,
    /// 2xx; `retransmission` when one was already passed up (the call resends its ACK).
    Success {
        /// Not the first 2xx seen.
        retransmission: bool,
    },
    /// 300–699, first time (the ACK is already queued).
    Failure,
}

/// One INVITE client transaction.
#[derive(Debug)]
pub struct InviteClient {
    request: Request,
    branch: String,
    state: State,
    /// The request, resent by Timer A, then the ACK of a failure; Timer B (Calling), D
    /// (Completed) or M (Accepted).
    wire: Transmitter,
}

transaction_impl!(InviteClient);

impl InviteClient {
    /// Starts the transaction: the request is queued for sending, Timers A (unreliable
    /// transports only) and B are set. The request must have a Via with a branch.
    pub fn new(request: Request, reliable: bool, timers: Timers, now: Instant) -> InviteClient {
        InviteClient {
            wire: Transmitter::request(request.encode(), reliable, timers, now, Backoff::Double),
            branch: request.branch().unwrap_or_default().to_owned(),
            request,
            state: State::Calling,
        }
    }

    /// The request (to derive its CANCEL).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The branch that identifies the transaction.
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether `response` belongs to this transaction (RFC 3261 §17.1.3: the top Via branch and
    /// the CSeq method).
    pub fn matches(&self, response: &Message) -> bool {
        response.code().is_some()
            && response.top_via_branch() == Some(self.branch.as_str())
            && response
                .cseq()
                .is_some_and(|(n, m)| m == "INVITE" && n == self.request.cseq())
    }

    /// Handles a response (the caller checked [`InviteClient::matches`]). `None`: absorbed.
    pub fn handle_response(&mut self, response: &Message, now: Instant) -> Option<Received> {
        let code = response.code()?;
        match (self.state, code) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.wire.stop();
                Some(Received::Provisional)
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.wire.stop_resend();
                self.wire.set_transaction_timeout(now, Expiry::End);
                Some(Received::Success {
                    retransmission: false,
                })
            }
            (State::Accepted, 200..=299) => Some(Received::Success {
                retransmission: true,
            }),
            (State::Calling | State::Proceeding, 300..) => {
                let ack = compose::ack_for_failure(&self.request, response);
                self.wire.send(ack.encode());
                self.state = self.wire.absorb_retransmissions(
                    now,
                    TIMER_D,
                    State::Completed,
                    State::Terminated,
                );
                Some(Received::Failure)
            }
            (State::Completed, 300..) => {
                // The failure again: its ACK again.
                self.wire.resend();
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;
    use crate::sip::transaction::testing::{self, drain, run_to_failure};
    use crate::sip::transaction::Transaction;
    use std::time::Duration;

    fn invite() -> Request {
        testing::request("INVITE", 1, "z9hG4bK-r-1")
    }

    /// The response `code` of the transaction on `branch`.
    fn response(code: u16, branch: &str) -> Message {
        testing::response(&testing::request("INVITE", 1, branch), code)
    }

    fn sent(tx: &mut InviteClient) -> Vec<Message> {
        drain(tx)
            .iter()
            .map(|b| message::parse(b, true).unwrap().0)
            .collect()
    }

    /// A transaction that sent its INVITE (once) at the returned instant.
    fn started(reliable: bool) -> (InviteClient, Instant) {
        let t0 = Instant::now();
        let mut tx = InviteClient::new(invite(), reliable, Timers::default(), t0);
        assert_eq!(sent(&mut tx).len(), 1);
        (tx, t0)
    }

    #[test]
    fn timer_a_doubles_until_timer_b() {
        let (mut tx, t0) = started(false);
        let (at, now) = run_to_failure(&mut tx, t0);
        // A: 0.5, 1, 2, 4, 8, 16 s after the previous; B at 32 s.
        assert_eq!(at, [500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!((now - t0).as_secs(), 32);
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
    }

    #[test]
    fn reliable_transports_do_not_retransmit() {
        let (mut tx, t0) = started(true);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(tx.handle_timeout(t0 + Duration::from_secs(32)));
    }

    #[test]
    fn provisional_stops_retransmission_and_timer_b() {
        let (mut tx, t0) = started(false);
        let r = response(180, "z9hG4bK-r-1");
        assert!(tx.matches(&r));
        assert_eq!(tx.handle_response(&r, t0), Some(Received::Provisional));
        assert_eq!(tx.state(), State::Proceeding);
        assert_eq!(tx.poll_timeout(), None, "no timeout while proceeding");
        assert_eq!(
            tx.handle_response(&response(183, "z9hG4bK-r-1"), t0),
            Some(Received::Provisional)
        );
    }

    #[test]
    fn failure_is_acknowledged_and_retransmissions_reacknowledged() {
        let (mut tx, t0) = started(false);
        let busy = response(486, "z9hG4bK-r-1");
        assert_eq!(tx.handle_response(&busy, t0), Some(Received::Failure));
        let acks = sent(&mut tx);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].method(), Some("ACK"));
        assert_eq!(acks[0].header("to"), Some("<sip:bob@example.org>;tag=t"));
        assert_eq!(acks[0].top_via_branch(), Some("z9hG4bK-r-1"));
        assert_eq!(tx.state(), State::Completed);
        // A retransmitted 486 is acknowledged again, not passed up.
        assert_eq!(tx.handle_response(&busy, t0 + Duration::from_secs(1)), None);
        assert_eq!(sent(&mut tx).len(), 1);
        // Timer D.
        assert_eq!(tx.poll_timeout(), Some(t0 + TIMER_D));
        assert!(!tx.handle_timeout(t0 + TIMER_D));
        assert!(tx.is_terminated());
    }

    #[test]
    fn failure_over_a_reliable_transport_terminates_at_once() {
        let (mut tx, t0) = started(true);
        assert_eq!(
            tx.handle_response(&response(603, "z9hG4bK-r-1"), t0),
            Some(Received::Failure)
        );
        assert_eq!(sent(&mut tx).len(), 1);
        assert!(tx.is_terminated());
    }

    #[test]
    fn success_enters_accepted_and_passes_retransmissions_up() {
        let (mut tx, t0) = started(false);
        let ok = response(200, "z9hG4bK-r-1");
        assert_eq!(
            tx.handle_response(&ok, t0),
            Some(Received::Success {
                retransmission: false
            })
        );
        assert!(sent(&mut tx).is_empty(), "the 2xx ACK is the call's job");
        assert_eq!(
            tx.handle_response(&ok, t0),
            Some(Received::Success {
                retransmission: true
            })
        );
        // A late failure after a 2xx is ignored.
        assert_eq!(tx.handle_response(&response(500, "z9hG4bK-r-1"), t0), None);
        // Timer M.
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(!tx.handle_timeout(t0 + Duration::from_secs(32)));
        assert!(tx.is_terminated());
    }

    #[test]
    fn responses_of_other_transactions_do_not_match() {
        let tx = InviteClient::new(invite(), false, Timers::default(), Instant::now());
        assert!(!tx.matches(&response(200, "z9hG4bK-other")));
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-r-1\r\n\
                    CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n";
        let cancel_ok = message::parse(text.as_bytes(), true).unwrap().0;
        assert!(!tx.matches(&cancel_ok), "the CANCEL shares the branch");
    }
}
