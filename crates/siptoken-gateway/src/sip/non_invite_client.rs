//! The non-INVITE client transaction (RFC 3261 §17.1.2) for the requests a call sends besides
//! INVITE and ACK: BYE, CANCEL, INFO and REFER. Sans-IO, like [`super::invite_client`].
//!
//! ```text
//!   request sent, Timer E (UDP) and F
//!        |
//!      Trying ── Timer E: resend, E = min(2E, T2) ── Timer F → Terminated (timeout to the TU)
//!        | 1xx → TU
//!    Proceeding ── Timer E: resend, E = T2 ── Timer F → Terminated (timeout)
//!        | 200-699 → TU (from Trying too)
//!    Completed (absorbs retransmitted finals) ── Timer K (T4 UDP, 0 reliable) → Terminated
//! ```
//!
//! The REGISTER client in [`super::register`] runs the same rules inside its async task; this
//! machine is separate so the call can run several transactions at once without a task each.

use std::time::Instant;

use super::compose::Request;
use super::message::Message;
use super::timers::Timers;
use super::transaction::{transaction_impl, Backoff, Transmitter};

/// Where the transaction is.
pub use super::transaction::NonInviteState as State;

/// What a response means to the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// 1xx.
    Provisional,
    /// The final response (only the first one is passed up).
    Final,
}

/// One non-INVITE client transaction.
#[derive(Debug)]
pub struct NonInviteClient {
    request: Request,
    branch: String,
    state: State,
    /// The request, resent by Timer E; Timer F (Trying, Proceeding) or K (Completed).
    wire: Transmitter,
}

transaction_impl!(NonInviteClient);

impl NonInviteClient {
    /// Starts the transaction: the request is queued, Timers E (unreliable transports) and F set.
    pub fn new(request: Request, reliable: bool, timers: Timers, now: Instant) -> NonInviteClient {
        NonInviteClient {
            wire: Transmitter::request(
                request.encode(),
                reliable,
                timers,
                now,
                Backoff::DoubleUpToT2,
            ),
            branch: request.branch().unwrap_or_default().to_owned(),
            request,
            state: State::Trying,
        }
    }

    /// The request.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The method of the request.
    pub fn method(&self) -> &str {
        &self.request.method
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether `response` belongs to this transaction (top Via branch and CSeq method).
    pub fn matches(&self, response: &Message) -> bool {
        response.code().is_some()
            && response.top_via_branch() == Some(self.branch.as_str())
            && response.cseq().is_some_and(|(n, m)| {
                m.eq_ignore_ascii_case(&self.request.method) && n == self.request.cseq()
            })
    }

    /// Handles a response (the caller checked [`NonInviteClient::matches`]). `None`: absorbed.
    pub fn handle_response(&mut self, response: &Message, now: Instant) -> Option<Received> {
        let code = response.code()?;
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                // Further retransmissions at T2.
                self.state = State::Proceeding;
                self.wire.set_backoff(Backoff::T2);
                Some(Received::Provisional)
            }
            (State::Trying | State::Proceeding, 200..) => {
                // Timer K.
                self.state = self.wire.absorb_retransmissions_for_t4(
                    now,
                    State::Completed,
                    State::Terminated,
                );
                Some(Received::Final)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;
    use crate::sip::transaction::testing::{self, count, run_to_failure};
    use crate::sip::transaction::Transaction;
    use std::time::Duration;

    fn bye() -> Request {
        testing::request("BYE", 3, "z9hG4bK-r-2")
    }

    fn response(code: u16) -> Message {
        testing::response(&bye(), code)
    }

    /// A transaction that sent its BYE (once) at the returned instant.
    fn started(reliable: bool) -> (NonInviteClient, Instant) {
        let t0 = Instant::now();
        let mut tx = NonInviteClient::new(bye(), reliable, Timers::default(), t0);
        assert_eq!(count(&mut tx), 1);
        (tx, t0)
    }

    #[test]
    fn timer_e_backs_off_to_t2_until_timer_f() {
        let (mut tx, t0) = started(false);
        let (at, end) = run_to_failure(&mut tx, t0);
        assert_eq!(
            &at[..6],
            [500, 1500, 3500, 7500, 11500, 15500],
            "T1 doubling, capped at T2"
        );
        assert_eq!(*at.last().unwrap(), 31500);
        assert_eq!(end - t0, Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn provisional_moves_retransmissions_to_t2() {
        let (mut tx, t0) = started(false);
        assert!(tx.matches(&response(100)));
        assert_eq!(
            tx.handle_response(&response(100), t0),
            Some(Received::Provisional)
        );
        assert_eq!(tx.state(), State::Proceeding);
        let (at, _) = run_to_failure(&mut tx, t0);
        assert_eq!(&at[..3], [500, 4500, 8500]);
    }

    #[test]
    fn final_completes_then_timer_k() {
        let (mut tx, t0) = started(false);
        assert_eq!(
            tx.handle_response(&response(200), t0),
            Some(Received::Final)
        );
        assert_eq!(tx.handle_response(&response(200), t0), None, "absorbed");
        assert_eq!(tx.handle_response(&response(180), t0), None);
        assert_eq!(count(&mut tx), 0);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(5)));
        assert!(!tx.handle_timeout(t0 + Duration::from_secs(5)));
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_transport_no_retransmission_no_timer_k() {
        let (mut tx, t0) = started(true);
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert_eq!(
            tx.handle_response(&response(481), t0),
            Some(Received::Final)
        );
        assert!(tx.is_terminated());
    }

    #[test]
    fn other_methods_and_branches_do_not_match() {
        let tx = NonInviteClient::new(bye(), false, Timers::default(), Instant::now());
        let text =
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK-r-2\r\nCSeq: 3 INFO\r\n\r\n";
        assert!(!tx.matches(&message::parse(text.as_bytes(), false).unwrap().0));
        let text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK-r-9\r\nCSeq: 3 BYE\r\n\r\n";
        assert!(!tx.matches(&message::parse(text.as_bytes(), false).unwrap().0));
    }
}
