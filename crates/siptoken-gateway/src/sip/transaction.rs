//! What the call's transactions (RFC 3261 §17) and the UAS core's 2xx retransmission share: the
//! two timers each of them runs ([`Clock`]), the sending side with its queue of messages
//! waiting to be sent ([`Transmitter`]) and the identity of a server transaction
//! ([`ServerKey`]).
//!
//! Every transaction has at most one retransmission timer (A, E or G) and one deadline (B, D, F,
//! H, I, J, K, L or M) running at a time; what differs is only when each is set and how the
//! retransmission interval grows, which the transactions pass in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::compose;
use super::message::Message;
use super::timers::Timers;

/// The retransmission timer and the deadline of one transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Clock {
    /// When to resend next, and the wait that led up to it.
    resend: Option<(Instant, Duration)>,
    deadline: Option<Instant>,
}

/// What [`Clock::fire`] found due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fired {
    /// Nothing is due yet.
    Nothing,
    /// The deadline passed: both timers are now stopped.
    Deadline,
    /// The message must be sent again; the next retransmission is scheduled.
    Resend,
}

impl Clock {
    /// A clock with the deadline at `deadline` and no retransmission timer.
    pub fn until(deadline: Instant) -> Clock {
        Clock {
            resend: None,
            deadline: Some(deadline),
        }
    }

    /// The clock of a message first sent at `now` and resent until answered: retransmissions
    /// from T1 on unreliable transports, the deadline 64·T1 later. A client transaction's Timers
    /// A or E and B or F; the UAS core's 2xx retransmission and its wait for the ACK.
    pub fn retransmitting(now: Instant, reliable: bool, timers: Timers) -> Clock {
        let mut clock = Clock::until(now + timers.transaction_timeout());
        if !reliable {
            clock.start_resend(now, timers.t1);
        }
        clock
    }

    /// Starts the retransmission timer: the first resend `first` after `now`.
    pub fn start_resend(&mut self, now: Instant, first: Duration) {
        self.resend = Some((now + first, first));
    }

    /// Stops the retransmission timer.
    pub fn stop_resend(&mut self) {
        self.resend = None;
    }

    /// Sets the deadline (replacing the running one); `None` stops it.
    pub fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    /// Stops both timers.
    pub fn stop(&mut self) {
        *self = Clock::default();
    }

    /// After a final response: stops retransmitting and, on an unreliable transport, sets the
    /// deadline `wait` after `now` during which retransmissions are absorbed (Timers D, I, J,
    /// K). Returns `false` on a reliable transport, where RFC 3261 sets that wait to zero: the
    /// transaction ends at once.
    pub fn absorb_retransmissions(&mut self, reliable: bool, now: Instant, wait: Duration) -> bool {
        self.resend = None;
        self.deadline = (!reliable).then(|| now + wait);
        !reliable
    }

    /// The earlier of the two timers.
    pub fn next(&self) -> Option<Instant> {
        match (self.resend, self.deadline) {
            (Some((a, _)), Some(d)) => Some(a.min(d)),
            (Some((a, _)), None) => Some(a),
            (None, d) => d,
        }
    }

    /// Fires what is due at `now`: the deadline first (it stops both timers), else the
    /// retransmission timer, scheduled again after `grow(last wait)`.
    pub fn fire(&mut self, now: Instant, grow: impl FnOnce(Duration) -> Duration) -> Fired {
        if self.deadline.is_some_and(|d| now >= d) {
            self.stop();
            return Fired::Deadline;
        }
        match self.resend {
            Some((at, wait)) if now >= at => {
                let next = grow(wait);
                self.resend = Some((now + next, next));
                Fired::Resend
            }
            _ => Fired::Nothing,
        }
    }
}

/// Where a non-INVITE transaction is: RFC 3261 names the same four states for the client
/// (§17.1.2.2) and the server (§17.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonInviteState {
    /// Client: sent, no response yet. Server: no response sent yet.
    Trying,
    /// A provisional response arrived (client) or was sent (server).
    Proceeding,
    /// The final response arrived (client, Timer K) or was sent (server, Timer J); absorbing
    /// retransmissions.
    Completed,
    /// Done.
    Terminated,
}

/// How the retransmission interval grows after each resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// Doubled without a cap (Timer A).
    Double,
    /// Doubled, at most T2 (Timers E and G).
    DoubleUpToT2,
    /// T2 from now on (Timer E once a provisional response arrived).
    T2,
}

/// What the passing of a transaction's deadline means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// A failure the transaction user must hear of: no response (Timers B and F) or no ACK of a
    /// failure response (Timer H).
    Failure,
    /// The transaction simply ends (Timers D, I, J, K, L and M).
    End,
}

/// What [`Transmitter::fire`] found due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// The deadline has not passed (a due retransmission may have been queued).
    No,
    /// The deadline passed; what it means.
    Yes(Expiry),
}

/// The sending side of one transaction: the messages queued for the transport, the message a
/// retransmission sends again (the request, or the last response), the [`Clock`] that says
/// when, how retransmissions back off and what the running deadline means.
#[derive(Debug)]
pub struct Transmitter {
    reliable: bool,
    timers: Timers,
    clock: Clock,
    backoff: Backoff,
    expiry: Expiry,
    last: Option<Vec<u8>>,
    out: VecDeque<Vec<u8>>,
}

impl Transmitter {
    /// Nothing sent yet, no timer running; retransmissions, once started, back off by
    /// `backoff`.
    pub fn new(reliable: bool, timers: Timers, backoff: Backoff) -> Transmitter {
        Transmitter {
            reliable,
            timers,
            clock: Clock::default(),
            backoff,
            expiry: Expiry::End,
            last: None,
            out: VecDeque::new(),
        }
    }

    /// A client transaction's start: `request` is sent at `now` and resent (backing off by
    /// `backoff`) until answered (see [`Clock::retransmitting`]); the deadline is a failure
    /// (Timer B or F).
    pub fn request(
        request: Vec<u8>,
        reliable: bool,
        timers: Timers,
        now: Instant,
        backoff: Backoff,
    ) -> Transmitter {
        let mut tx = Transmitter::new(reliable, timers, backoff);
        tx.clock = Clock::retransmitting(now, reliable, timers);
        tx.expiry = Expiry::Failure;
        tx.send(request);
        tx
    }

    /// From now on retransmissions back off by `backoff`.
    pub fn set_backoff(&mut self, backoff: Backoff) {
        self.backoff = backoff;
    }

    /// The timer values.
    pub fn timers(&self) -> Timers {
        self.timers
    }

    /// Queues `bytes`; they are what [`Transmitter::resend`] and retransmissions send from now
    /// on.
    pub fn send(&mut self, bytes: Vec<u8>) {
        self.out.push_back(bytes.clone());
        self.last = Some(bytes);
    }

    /// Queues the last message sent again, if there is one.
    pub fn resend(&mut self) {
        if let Some(last) = &self.last {
            self.out.push_back(last.clone());
        }
    }

    /// Starts retransmitting the last message (unreliable transports only), first T1 after
    /// `now`.
    pub fn start_resend(&mut self, now: Instant) {
        if !self.reliable {
            self.clock.start_resend(now, self.timers.t1);
        }
    }

    /// Stops retransmitting.
    pub fn stop_resend(&mut self) {
        self.clock.stop_resend();
    }

    /// Sets the deadline 64·T1 after `now` (Timers H, L and M), meaning `expiry`.
    pub fn set_transaction_timeout(&mut self, now: Instant, expiry: Expiry) {
        self.clock
            .set_deadline(Some(now + self.timers.transaction_timeout()));
        self.expiry = expiry;
    }

    /// Stops both timers.
    pub fn stop(&mut self) {
        self.clock.stop();
    }

    /// After the final response (see [`Clock::absorb_retransmissions`]): the state to enter,
    /// `absorbing` while retransmissions are absorbed for `wait`, or `ended` at once on a
    /// reliable transport. The deadline then simply ends the transaction.
    pub fn absorb_retransmissions<S>(
        &mut self,
        now: Instant,
        wait: Duration,
        absorbing: S,
        ended: S,
    ) -> S {
        self.expiry = Expiry::End;
        if self.clock.absorb_retransmissions(self.reliable, now, wait) {
            absorbing
        } else {
            ended
        }
    }

    /// [`Transmitter::absorb_retransmissions`] for T4 (Timers I and K).
    pub fn absorb_retransmissions_for_t4<S>(&mut self, now: Instant, absorbing: S, ended: S) -> S {
        let t4 = self.timers.t4;
        self.absorb_retransmissions(now, t4, absorbing, ended)
    }

    /// The next time [`Transmitter::fire`] has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clock.next()
    }

    /// Fires what is due at `now` (see [`Clock::fire`]): a due retransmission is queued and the
    /// next one scheduled by the backoff; says whether the deadline passed and what that means.
    pub fn fire(&mut self, now: Instant) -> Expired {
        let (timers, backoff) = (self.timers, self.backoff);
        match self.clock.fire(now, |wait| match backoff {
            Backoff::Double => wait * 2,
            Backoff::DoubleUpToT2 => timers.backoff(wait),
            Backoff::T2 => timers.t2,
        }) {
            Fired::Nothing => Expired::No,
            Fired::Resend => {
                self.resend();
                Expired::No
            }
            Fired::Deadline => Expired::Yes(self.expiry),
        }
    }

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.out.pop_front()
    }
}

/// What the call asks of each of its transactions (INVITE and non-INVITE, client and server):
/// the timers and the send queue live in the transaction's [`Transmitter`], which also knows
/// how retransmissions back off and what the deadline means; the transaction only ends.
/// [`transaction_impl`] implements it for a struct with `wire` and `state` fields.
pub trait Transaction {
    /// The sending side.
    fn wire(&self) -> &Transmitter;

    /// The sending side, to fire timers and take what is queued.
    fn wire_mut(&mut self) -> &mut Transmitter;

    /// Whether the transaction has ended.
    fn is_terminated(&self) -> bool;

    /// Enters the Terminated state.
    fn terminate(&mut self);

    /// The next time [`Transaction::handle_timeout`] has work.
    fn poll_timeout(&self) -> Option<Instant> {
        self.wire().poll_timeout()
    }

    /// Fires the due timers. Returns `true` when a deadline that is a failure passed (Timer B
    /// or F: no response, treated as 408 by the call, RFC 3261 §8.1.3.1; Timer H: no ACK).
    fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.wire_mut().fire(now) {
            Expired::No => false,
            Expired::Yes(expiry) => {
                self.terminate();
                expiry == Expiry::Failure
            }
        }
    }

    /// The next datagram (or stream message) to send.
    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.wire_mut().poll_transmit()
    }
}

/// Implements [`Transaction`] for a transaction struct with a `wire` field (its
/// [`Transmitter`]) and a `state` field with a `State::Terminated` variant.
macro_rules! transaction_impl {
    ($transaction:ty) => {
        impl $crate::sip::transaction::Transaction for $transaction {
            fn wire(&self) -> &$crate::sip::transaction::Transmitter {
                &self.wire
            }

            fn wire_mut(&mut self) -> &mut $crate::sip::transaction::Transmitter {
                &mut self.wire
            }

            fn is_terminated(&self) -> bool {
                self.state == State::Terminated
            }

            fn terminate(&mut self) {
                self.state = State::Terminated;
            }
        }
    };
}
pub(crate) use transaction_impl;

/// The identity of a server transaction (RFC 3261 §17.2.3): top Via branch and sent-by, and the
/// Call-ID and CSeq number as a guard against branch collisions from sloppy peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKey {
    branch: String,
    sent_by: String,
    call_id: String,
    cseq: u32,
}

/// The parts of `request` that make its [`ServerKey`].
fn key_of(request: &Message) -> Option<(&str, &str, &str, u32)> {
    let via = *request.list("via").first()?;
    Some((
        compose::via_branch(via)?,
        compose::via_sent_by(via)?,
        request.header("call-id")?,
        request.cseq()?.0,
    ))
}

impl ServerKey {
    /// The key of `request`; `None` without a Via branch and sent-by, Call-ID or CSeq.
    pub fn of(request: &Message) -> Option<ServerKey> {
        let (branch, sent_by, call_id, cseq) = key_of(request)?;
        Some(ServerKey {
            branch: branch.to_owned(),
            sent_by: sent_by.to_owned(),
            call_id: call_id.to_owned(),
            cseq,
        })
    }

    /// The CSeq number.
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// Whether `request` carries this key (whatever its method).
    pub fn matches(&self, request: &Message) -> bool {
        key_of(request).is_some_and(|(b, s, c, n)| {
            b == self.branch && s == self.sent_by && c == self.call_id && n == self.cseq
        })
    }
}

/// What the transactions' unit tests share: emptying the send queue and running the timers out.
#[cfg(test)]
pub mod testing {
    use super::Transaction;
    use crate::sip::compose::{Request, Response};
    use crate::sip::message::{self, Message};
    use std::time::Instant;

    /// A client transaction's request `cseq method` from 10.0.0.1:5070 with `branch`, in the
    /// dialog-forming shape (From with a tag, To without).
    pub fn request(method: &str, cseq: u32, branch: &str) -> Request {
        let mut r = Request::new(method, "sip:bob@example.org");
        r.push(
            "Via",
            format!("SIP/2.0/UDP 10.0.0.1:5070;rport;branch={branch}"),
        )
        .push("From", "<sip:a@example.org>;tag=f")
        .push("To", "<sip:bob@example.org>")
        .push("Call-ID", "c1")
        .push("CSeq", format!("{cseq} {method}"));
        r
    }

    /// The far end's `code` response to `request`, To tagged `t`.
    pub fn response(request: &Request, code: u16) -> Message {
        let request = message::parse(&request.encode(), true).unwrap().0;
        let bytes = Response::to(&request, code, Some("t")).encode();
        message::parse(&bytes, true).unwrap().0
    }

    /// Takes every queued message.
    pub fn drain(tx: &mut dyn Transaction) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| tx.poll_transmit()).collect()
    }

    /// How many messages were queued (and takes them).
    pub fn count(tx: &mut dyn Transaction) -> usize {
        drain(tx).len()
    }

    /// Fires each timer as it falls due until one reports a failure; returns when each message
    /// sent meanwhile went out (ms after `t0`) and when the failure fired.
    pub fn run_to_failure(tx: &mut dyn Transaction, t0: Instant) -> (Vec<u128>, Instant) {
        let mut at = Vec::new();
        loop {
            let now = tx.poll_timeout().expect("a timer runs until the failure");
            if tx.handle_timeout(now) {
                return (at, now);
            }
            at.extend(drain(tx).iter().map(|_| (now - t0).as_millis()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_fires_before_a_due_resend_and_stops_both() {
        let t0 = Instant::now();
        let mut clock = Clock::until(t0 + Duration::from_secs(2));
        clock.start_resend(t0, Duration::from_secs(1));
        assert_eq!(clock.next(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(clock.fire(t0, |w| w * 2), Fired::Nothing);
        assert_eq!(
            clock.fire(t0 + Duration::from_secs(1), |w| w * 3),
            Fired::Resend
        );
        assert_eq!(clock.next(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(
            clock.fire(t0 + Duration::from_secs(4), |w| w),
            Fired::Deadline
        );
        assert_eq!(clock.next(), None);
    }

    #[test]
    fn absorbing_retransmissions_waits_only_on_unreliable_transports() {
        let t0 = Instant::now();
        let wait = Duration::from_secs(5);
        let mut clock = Clock::until(t0 + Duration::from_secs(32));
        clock.start_resend(t0, Duration::from_millis(500));
        assert!(clock.absorb_retransmissions(false, t0, wait));
        assert_eq!(clock.next(), Some(t0 + wait));
        assert!(!clock.absorb_retransmissions(true, t0, wait));
        assert_eq!(clock.next(), None);
    }

    #[test]
    fn retransmissions_send_the_last_message_again() {
        let t0 = Instant::now();
        let t = Timers::default();
        let mut tx = Transmitter::request(b"a".to_vec(), false, t, t0, Backoff::Double);
        tx.send(b"b".to_vec());
        assert_eq!(tx.fire(t0 + t.t1), Expired::No);
        let sent: Vec<_> = std::iter::from_fn(|| tx.poll_transmit()).collect();
        assert_eq!(sent, [b"a", b"b", b"b"]);
        assert_eq!(tx.poll_timeout(), Some(t0 + t.t1 * 3));
        assert_eq!(
            tx.fire(t0 + t.transaction_timeout()),
            Expired::Yes(Expiry::Failure)
        );
        assert_eq!(tx.poll_timeout(), None);
    }
}
