//! Digest credentials for the requests of a call (INVITE, re-INVITE, BYE, REFER, INFO), with the
//! same policy as REGISTER: a 401 is answered with `Authorization`, a 407 with
//! `Proxy-Authorization` (both kept and answered in every later request of the call, each with
//! its own nonce count); a second challenge of the same kind to the same request means the
//! credentials are wrong, unless it says `stale=true` (retried at most twice).

use std::fmt;

use crate::sip::compose;
use crate::sip::digest::{Answered, Challenge, ChallengeError, Qop};
use crate::sip::message::Message;

/// A challenge cannot or must not be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// Challenged again after answering: the credentials are refused.
    Refused,
    /// No usable challenge (unsupported algorithm or qop, bad syntax).
    Unanswerable(ChallengeError),
    /// Only `qop=auth-int` is offered and the request has a body: the digest implementation
    /// hashes an empty body, so the answer would be wrong.
    BodyIntegrity,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthError::Refused => f.write_str("credentials refused"),
            AuthError::Unanswerable(e) => write!(f, "cannot answer the challenge: {e}"),
            AuthError::BodyIntegrity => f.write_str("qop=auth-int on a request with a body"),
        }
    }
}

impl std::error::Error for AuthError {}

/// How often one request was challenged (carried from a request to its retry).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempt {
    /// A non-stale challenge of this kind (0: 401, 1: 407) was answered.
    fresh: [bool; 2],
    stale: u8,
}

/// The challenges a call answers.
#[derive(Debug, Default)]
pub struct Auth {
    /// Index 0 from a 401 (`Authorization`), index 1 from a 407 (`Proxy-Authorization`).
    slots: [Option<Answered>; 2],
}

impl Auth {
    /// The credential headers for a request (nonce counts advanced). Challenges that cannot
    /// cover a body are left out for requests with one.
    pub fn headers(
        &mut self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        has_body: bool,
    ) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for ans in self.slots.iter_mut().flatten() {
            if has_body && ans.challenge.qop == Some(Qop::AuthInt) {
                continue;
            }
            out.push(ans.next_header(username, password, method, uri));
        }
        out
    }

    /// Takes the challenge of a 401 or 407 to a request challenged `attempt` times so far;
    /// `Ok` means: send the request again with [`Auth::headers`].
    pub fn challenge(
        &mut self,
        response: &Message,
        attempt: &mut Attempt,
        has_body: bool,
    ) -> Result<(), AuthError> {
        let proxy = response.code() == Some(407);
        let name = if proxy {
            "proxy-authenticate"
        } else {
            "www-authenticate"
        };
        let ch =
            Challenge::choose(response.headers_named(name)).map_err(AuthError::Unanswerable)?;
        if has_body && ch.qop == Some(Qop::AuthInt) {
            return Err(AuthError::BodyIntegrity);
        }
        if ch.stale {
            attempt.stale += 1;
            if attempt.stale > 2 {
                return Err(AuthError::Refused);
            }
        } else if attempt.fresh[proxy as usize] {
            return Err(AuthError::Refused);
        }
        attempt.fresh[proxy as usize] = true;
        self.slots[proxy as usize] = Some(Answered::new(ch, proxy, compose::random_hex(8)));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;

    fn challenge(code: u16, value: &str) -> Message {
        let name = if code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        let text = format!("SIP/2.0 {code} X\r\n{name}: {value}\r\n\r\n");
        message::parse(text.as_bytes(), false).unwrap().0
    }

    #[test]
    fn answers_each_kind_once_and_both_later() {
        let mut auth = Auth::default();
        assert!(auth.headers("u", "p", "INVITE", "sip:b@x", true).is_empty());
        let mut a = Attempt::default();
        let c407 = challenge(407, "Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"");
        assert_eq!(auth.challenge(&c407, &mut a, true), Ok(()));
        let h = auth.headers("u", "p", "INVITE", "sip:b@x", true);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].0, "Proxy-Authorization");
        assert!(h[0].1.contains("nc=00000001"), "{}", h[0].1);
        assert!(h[0].1.contains("uri=\"sip:b@x\""));
        let c401 = challenge(401, "Digest realm=\"r\", nonce=\"n2\"");
        assert_eq!(auth.challenge(&c401, &mut a, true), Ok(()));
        assert_eq!(auth.challenge(&c407, &mut a, true), Err(AuthError::Refused));
        let h = auth.headers("u", "p", "BYE", "sip:b@y", false);
        assert_eq!(h.len(), 2);
        assert!(h
            .iter()
            .any(|(n, v)| *n == "Proxy-Authorization" && v.contains("nc=00000002")));
        // A new request starts a new attempt: a new challenge is answered again.
        let mut fresh = Attempt::default();
        assert_eq!(auth.challenge(&c407, &mut fresh, false), Ok(()));
    }

    #[test]
    fn stale_is_retried_twice() {
        let mut auth = Auth::default();
        let mut a = Attempt::default();
        let stale = challenge(401, "Digest realm=\"r\", nonce=\"n\", stale=true");
        assert_eq!(
            auth.challenge(
                &challenge(401, "Digest realm=\"r\", nonce=\"n0\""),
                &mut a,
                false
            ),
            Ok(())
        );
        assert_eq!(auth.challenge(&stale, &mut a, false), Ok(()));
        assert_eq!(auth.challenge(&stale, &mut a, false), Ok(()));
        assert_eq!(
            auth.challenge(&stale, &mut a, false),
            Err(AuthError::Refused)
        );
    }

    #[test]
    fn unusable_challenges_are_errors() {
        let mut auth = Auth::default();
        let mut a = Attempt::default();
        assert!(matches!(
            auth.challenge(&challenge(401, "Basic realm=\"r\""), &mut a, false),
            Err(AuthError::Unanswerable(_))
        ));
        let int = challenge(401, "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"");
        assert_eq!(
            auth.challenge(&int, &mut a, true),
            Err(AuthError::BodyIntegrity)
        );
        assert_eq!(auth.challenge(&int, &mut a, false), Ok(()));
        assert!(auth.headers("u", "p", "INVITE", "sip:x", true).is_empty());
        assert_eq!(auth.headers("u", "p", "BYE", "sip:x", false).len(), 1);
    }
}
