//! The RFC 3261 timer base values (§17.1.1.1, Table 4) shared by the call transactions.
//!
//! Every transaction timer is derived from three values: T1 (round-trip estimate: the first
//! retransmission interval), T2 (the retransmission interval cap for non-INVITE requests and
//! INVITE responses) and T4 (how long a message may stay in the network). The gateway's
//! configuration sets T1 and T2 (`sip_t1_ms`, `sip_t2_ms`); T4 is the RFC's 5 s.

use std::time::Duration;

/// Timer D (RFC 3261 Table 4): how long an INVITE client transaction over UDP waits in
/// Completed for retransmitted final responses (to acknowledge them again). Fixed, not derived
/// from T1: it covers the proxies' Timer B on the way back.
pub const TIMER_D: Duration = Duration::from_secs(32);

/// T1, T2 and T4 for one transaction (copied into it: transactions are independent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Round-trip estimate (default 500 ms): the first UDP retransmission interval.
    pub t1: Duration,
    /// Longest retransmission interval (default 4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (default 5 s): Timers I and K.
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl Timers {
    /// 64·T1 (32 s by default): Timers B, F, H, J, L and M, and the UAS core's wait for the
    /// ACK of a 2xx.
    pub fn transaction_timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// The next retransmission interval after `current`: doubled, at most T2 (Timers E and G,
    /// and the UAS core's 2xx retransmission).
    pub fn backoff(&self, current: Duration) -> Duration {
        (current * 2).min(self.t2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_values_follow_table_4() {
        let t = Timers::default();
        assert_eq!(t.transaction_timeout(), Duration::from_secs(32));
        let mut i = t.t1;
        let mut seen = vec![];
        for _ in 0..6 {
            seen.push(i.as_millis());
            i = t.backoff(i);
        }
        assert_eq!(seen, [500, 1000, 2000, 4000, 4000, 4000]);
    }
}
