//! The non-INVITE server transaction (RFC 3261 §17.2.2), sans-IO: it absorbs retransmissions of
//! a request the call already answered (resending the answer) until Timer J.
//!
//! ```text
//!   request received
//!        |
//!     Trying ── request again: absorbed
//!        | 1xx from the call: send           | 200-699 from the call: send
//!    Proceeding ── request again: resend 1xx |
//!        | 200-699 from the call: send        v
//!    Completed ── request again: resend the final ── Timer J (64·T1 UDP, 0 reliable)
//!        → Terminated
//! ```

use std::time::Instant;

use super::message::Message;
use super::timers::Timers;
use super::transaction::{transaction_impl, Backoff, ServerKey, Transmitter};

/// Where the transaction is.
pub use super::transaction::NonInviteState as State;

/// One non-INVITE server transaction.
#[derive(Debug)]
pub struct NonInviteServer {
    method: String,
    key: ServerKey,
    state: State,
    /// The last response; Timer J.
    wire: Transmitter,
}

transaction_impl!(NonInviteServer);

impl NonInviteServer {
    /// Starts the transaction for `request`; `None` without a Via branch, Call-ID or CSeq.
    pub fn new(request: &Message, reliable: bool, timers: Timers) -> Option<NonInviteServer> {
        Some(NonInviteServer {
            method: request.method()?.to_owned(),
            key: ServerKey::of(request)?,
            state: State::Trying,
            // No retransmission timer runs here, only Timer J.
            wire: Transmitter::new(reliable, timers, Backoff::DoubleUpToT2),
        })
    }

    /// The method of the request.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether `request` is a retransmission of this transaction's request.
    pub fn matches(&self, request: &Message) -> bool {
        request.method() == Some(self.method.as_str()) && self.key.matches(request)
    }

    /// Sends a response built by the call; `false` (nothing sent) after the final one.
    pub fn respond(&mut self, code: u16, bytes: Vec<u8>, now: Instant) -> bool {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return false;
        }
        self.wire.send(bytes);
        let timer_j = self.wire.timers().transaction_timeout();
        self.state = if code < 200 {
            State::Proceeding
        } else {
            self.wire
                .absorb_retransmissions(now, timer_j, State::Completed, State::Terminated)
        };
        true
    }

    /// A retransmission arrived ([`NonInviteServer::matches`]): the last response is resent.
    pub fn handle_retransmission(&mut self) {
        if matches!(self.state, State::Proceeding | State::Completed) {
            self.wire.resend();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;
    use crate::sip::transaction::Transaction;
    use std::time::Duration;

    fn bye(branch: &str) -> Message {
        let text = format!(
            "BYE sip:st-r@10.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch={branch}\r\n\
             Call-ID: c9\r\nCSeq: 5 BYE\r\nContent-Length: 0\r\n\r\n"
        );
        message::parse(text.as_bytes(), true).unwrap().0
    }

    #[test]
    fn absorbs_retransmissions_and_resends_the_answer_until_timer_j() {
        let t0 = Instant::now();
        let mut tx = NonInviteServer::new(&bye("z9hG4bKb"), false, Timers::default()).unwrap();
        assert!(tx.matches(&bye("z9hG4bKb")));
        assert!(!tx.matches(&bye("z9hG4bKc")));
        tx.handle_retransmission();
        assert_eq!(tx.poll_transmit(), None, "nothing to resend while trying");
        assert!(tx.respond(100, b"100".to_vec(), t0));
        assert_eq!(tx.state(), State::Proceeding);
        tx.handle_retransmission();
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"100"[..]));
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"100"[..]));
        assert!(tx.respond(200, b"200".to_vec(), t0));
        assert!(!tx.respond(500, b"500".to_vec(), t0));
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"200"[..]));
        tx.handle_retransmission();
        assert_eq!(tx.poll_transmit().as_deref(), Some(&b"200"[..]));
        assert_eq!(tx.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.handle_timeout(t0 + Duration::from_secs(31));
        assert_eq!(tx.state(), State::Completed);
        tx.handle_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn reliable_transport_terminates_on_the_final_response() {
        let mut tx = NonInviteServer::new(&bye("z9hG4bKb"), true, Timers::default()).unwrap();
        assert!(tx.respond(200, b"200".to_vec(), Instant::now()));
        assert!(tx.is_terminated());
        assert_eq!(tx.poll_timeout(), None);
        assert_eq!(tx.method(), "BYE");
    }
}
