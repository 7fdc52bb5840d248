//! The UAS core's retransmission of a 2xx to an INVITE (RFC 3261 §13.3.1.4), sans-IO: once the
//! 2xx went out (through the INVITE server transaction), it goes out again after T1, 2·T1, … (at
//! most T2 apart) over UDP, until the ACK arrives;
//! without an ACK after 64·T1 the call is given up (the caller must then send BYE). Over TCP and
//! TLS nothing is retransmitted but the wait for the ACK is the same.

use std::time::Instant;

use super::timers::Timers;
use super::transaction::{Clock, Fired};

/// One 2xx waiting for its ACK.
#[derive(Debug)]
pub struct AnswerRetransmit {
    bytes: Vec<u8>,
    cseq: u32,
    /// Resending (UDP only) until 64·T1.
    clock: Clock,
    pending: Option<Vec<u8>>,
    acked: bool,
}

impl AnswerRetransmit {
    /// Starts with the 2xx to the INVITE with CSeq number `cseq`, just sent at `now`.
    pub fn new(bytes: Vec<u8>, cseq: u32, reliable: bool, timers: Timers, now: Instant) -> Self {
        AnswerRetransmit {
            pending: None,
            bytes,
            cseq,
            clock: Clock::retransmitting(now, reliable, timers),
            acked: false,
        }
    }

    /// The CSeq number an ACK must carry.
    pub fn cseq(&self) -> u32 {
        self.cseq
    }

    /// Whether the ACK arrived.
    pub fn is_acked(&self) -> bool {
        self.acked
    }

    /// The ACK arrived: stop.
    pub fn acked(&mut self) {
        self.acked = true;
        self.clock.stop();
        self.pending = None;
    }

    /// The next time [`AnswerRetransmit::handle_timeout`] has work (none once acknowledged).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clock.next()
    }

    /// Fires the due timers; `true` when 64·T1 passed without an ACK (then it stops).
    pub fn handle_timeout(&mut self, now: Instant, timers: Timers) -> bool {
        match self.clock.fire(now, |wait| timers.backoff(wait)) {
            Fired::Deadline => {
                self.acked = true;
                true
            }
            Fired::Resend => {
                self.pending = Some(self.bytes.clone());
                false
            }
            Fired::Nothing => false,
        }
    }

    /// The 2xx, when it is due to be sent.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.pending.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn resent_with_backoff_until_acked() {
        let t0 = Instant::now();
        let t = Timers::default();
        let mut r = AnswerRetransmit::new(b"200".to_vec(), 5, false, t, t0);
        assert_eq!(
            r.poll_transmit(),
            None,
            "the first copy is the transaction's"
        );
        let mut at = Vec::new();
        for _ in 0..5 {
            let now = r.poll_timeout().unwrap();
            assert!(!r.handle_timeout(now, t));
            assert!(r.poll_transmit().is_some());
            at.push((now - t0).as_millis());
        }
        assert_eq!(at, [500, 1500, 3500, 7500, 11500]);
        r.acked();
        assert!(r.is_acked());
        assert_eq!(r.poll_timeout(), None);
        assert!(!r.handle_timeout(t0 + Duration::from_secs(60), t));
        assert_eq!(r.cseq(), 5);
    }

    #[test]
    fn gives_up_after_64_t1() {
        let t0 = Instant::now();
        let t = Timers::default();
        let mut r = AnswerRetransmit::new(b"200".to_vec(), 1, false, t, t0);
        let mut sends = 0;
        let end = loop {
            let now = r.poll_timeout().unwrap();
            if r.handle_timeout(now, t) {
                break now;
            }
            sends += r.poll_transmit().map_or(0, |_| 1);
        };
        assert_eq!(end - t0, Duration::from_secs(32));
        assert_eq!(sends, 10);
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn reliable_transport_only_waits() {
        let t0 = Instant::now();
        let t = Timers::default();
        let mut r = AnswerRetransmit::new(b"200".to_vec(), 1, true, t, t0);
        assert_eq!(r.poll_timeout(), Some(t0 + Duration::from_secs(32)));
        assert!(r.handle_timeout(t0 + Duration::from_secs(32), t));
        assert_eq!(r.poll_transmit(), None, "nothing resent over a stream");
    }
}
