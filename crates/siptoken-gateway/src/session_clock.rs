//! The two deadlines of a WebSocket session (sans-IO: the session loop tells it what happened
//! and when, and asks when to wake up and what expired).
//!
//! - **Login deadline** (`login_timeout_seconds`): a socket that holds no account — from the
//!   start, or again after `logout`, a failed registration or a lost one — must log one in within
//!   that time, or it is closed. Sockets that never log in cannot hold session slots.
//! - **Idle timeout** (`ws_idle_timeout_seconds`): a socket from which no message arrives for
//!   that long is closed. A message is a text or binary frame; WebSocket control frames (the
//!   automatic pong to the gateway's ping, a client's ping) are not, since any client library
//!   sends them by itself.

use std::time::{Duration, Instant};

/// What expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// No account logged in within the login timeout.
    Login,
    /// No message from the client within the idle timeout.
    Idle,
}

/// The deadlines of one session.
#[derive(Debug, Clone)]
pub struct SessionClock {
    login_timeout: Duration,
    idle_timeout: Duration,
    last_message: Instant,
    /// Since when the socket has held no account (`None` while it holds one).
    without_account_since: Option<Instant>,
}

impl SessionClock {
    /// A session opened at `now`, holding no account yet.
    pub fn new(now: Instant, login_timeout: Duration, idle_timeout: Duration) -> SessionClock {
        SessionClock {
            login_timeout,
            idle_timeout,
            last_message: now,
            without_account_since: Some(now),
        }
    }

    /// A message (text or binary frame) arrived from the client at `now`.
    pub fn message(&mut self, now: Instant) {
        self.last_message = now;
    }

    /// The socket holds `accounts` accounts (logging in, registered or authenticated) at `now`.
    pub fn accounts(&mut self, accounts: usize, now: Instant) {
        match (accounts, self.without_account_since) {
            (0, None) => self.without_account_since = Some(now),
            (1.., Some(_)) => self.without_account_since = None,
            _ => {}
        }
    }

    /// When the next deadline falls.
    pub fn next_deadline(&self) -> Instant {
        let idle = self.last_message + self.idle_timeout;
        match self.without_account_since {
            Some(since) => idle.min(since + self.login_timeout),
            None => idle,
        }
    }

    /// What has expired at `now`, if anything (the login deadline first).
    pub fn expired(&self, now: Instant) -> Option<Expired> {
        if self
            .without_account_since
            .is_some_and(|since| now >= since + self.login_timeout)
        {
            return Some(Expired::Login);
        }
        (now >= self.last_message + self.idle_timeout).then_some(Expired::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_socket_without_account_has_the_login_deadline() {
        let t = Instant::now();
        let mut c = SessionClock::new(t, 15 * S, 90 * S);
        assert_eq!(c.next_deadline(), t + 15 * S);
        // Messages (pings, failed logins) do not stop the login clock.
        c.message(t + 10 * S);
        assert_eq!(c.expired(t + 14 * S), None);
        assert_eq!(c.expired(t + 15 * S), Some(Expired::Login));
    }

    #[test]
    fn logging_in_stops_it_and_logging_out_restarts_it() {
        let t = Instant::now();
        let mut c = SessionClock::new(t, 15 * S, 90 * S);
        c.accounts(1, t + 5 * S);
        assert_eq!(c.next_deadline(), t + 90 * S);
        assert_eq!(c.expired(t + 60 * S), None);
        c.message(t + 60 * S);
        c.accounts(1, t + 61 * S);
        c.accounts(0, t + 100 * S);
        assert_eq!(c.next_deadline(), t + 115 * S);
        // The clock starts when the last account went, not at a later report of none.
        c.accounts(0, t + 110 * S);
        assert_eq!(c.expired(t + 115 * S), Some(Expired::Login));
    }

    #[test]
    fn idle_means_no_message() {
        let t = Instant::now();
        let mut c = SessionClock::new(t, 15 * S, 90 * S);
        c.accounts(2, t);
        c.message(t + 30 * S);
        assert_eq!(c.next_deadline(), t + 120 * S);
        assert_eq!(c.expired(t + 119 * S), None);
        assert_eq!(c.expired(t + 120 * S), Some(Expired::Idle));
    }

    #[test]
    fn the_earlier_deadline_wins() {
        let t = Instant::now();
        let c = SessionClock::new(t, 15 * S, 5 * S);
        assert_eq!(c.next_deadline(), t + 5 * S);
        assert_eq!(c.expired(t + 5 * S), Some(Expired::Idle));
        assert_eq!(c.expired(t + 15 * S), Some(Expired::Login));
    }
}
