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

use std::collections::VecDeque;
use std::time::Instant;

use super::compose;
use super::message::Message;
use super::timers::Timers;

/// Where the transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No response sent yet.
    Trying,
    /// A provisional response was sent.
    Proceeding,
    /// The final response was sent (Timer J running).
    Completed,
    /// Done.
    Terminated,
}

/// One non-INVITE server transaction.
#[derive(Debug)]
pub struct NonInviteServer {
    method: String,
    branch: String,
    sent_by: String,
    call_id: String,
    cseq: u32,
    reliable: bool,
    timers: Timers,
    state: State,
    last: Option<Vec<u8>>,
    deadline: Option<Instant>,
    out: VecDeque<Vec<u8>>,
}

impl NonInviteServer {
    /// Starts the transaction for `request`; `None` without a Via branch, Call-ID or CSeq.
    pub fn new(request: &Message, reliable: bool, timers: Timers) -> Option<NonInviteServer> {
        let via = *request.list("via").first()?;
        Some(NonInviteServer {
            method: request.method()?.to_owned(),
            branch: compose::via_branch(via)?.to_owned(),
            sent_by: compose::via_sent_by(via)?.to_owned(),
            call_id: request.header("call-id")?.to_owned(),
            cseq: request.cseq()?.0,
            reliable,
            timers,
            state: State::Trying,
            last: None,
            deadline: None,
            out: VecDeque::new(),
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

    /// Whether the transaction has ended.
    pub fn is_terminated(&self) -> bool {
        self.state == State::Terminated
    }

    /// Whether `request` is a retransmission of this transaction's request.
    pub fn matches(&self, request: &Message) -> bool {
        let Some(via) = request.list("via").first().copied() else {
            return false;
        };
        request.method() == Some(self.method.as_str())
            && compose::via_branch(via) == Some(self.branch.as_str())
            && compose::via_sent_by(via) == Some(self.sent_by.as_str())
            && request.header("call-id") == Some(self.call_id.as_str())
            && request.cseq().map(|c| c.0) == Some(self.cseq)
    }

    /// Sends a response built by the call; `false` (nothing sent) after the final one.
    pub fn respond(&mut self, code: u16, bytes: Vec<u8>, now: Instant) -> bool {
        if !matches!(self.state, State::Trying | State::Proceeding) {
            return false;
        }
        self.out.push_back(bytes.clone());
        self.last = Some(bytes);
        if code < 200 {
            self.state = State::Proceeding;
        } else if self.reliable {
            self.state = State::Terminated;
        } else {
            self.state = State::Completed;
            self.deadline = Some(now + self.timers.transaction_timeout());
        }
        true
    }

    /// A retransmission arrived ([`NonInviteServer::matches`]): the last response is resent.
    pub fn handle_retransmission(&mut self) {
        if let (State::Proceeding | State::Completed, Some(last)) = (self.state, &self.last) {
            self.out.push_back(last.clone());
        }
    }

    /// The next time [`NonInviteServer::handle_timeout`] has work (Timer J).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Fires Timer J when due.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) {
            self.deadline = None;
            self.state = State::Terminated;
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;
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
