//! Which registration a SIP message on a shared socket is for, calls included.
//!
//! [`super::udp`] routes a registration's messages by a route `R` it carries in its Call-ID
//! (`R@siptoken`, echoed in responses) and its Contact user (`st-R`, the Request-URI of
//! requests sent to it). Calls reuse the Contact (so INVITEs, BYEs and every other request for a
//! call reach the registration's route), but a call's Call-ID is not the registration's: an
//! incoming call's is the caller's. So every request a call sends carries the route in its Via
//! branch, `z9hG4bK-R-<random>`, which every response echoes: [`route_of`] reads the branch
//! first and falls back to the registration's Call-ID form.

use super::compose;
use super::message::{self, Message, StartLine};

/// The RFC 3261 magic cookie followed by our separator.
const PREFIX: &str = "z9hG4bK-";

/// A fresh branch for a request sent on behalf of route `route` (a route never contains `-`).
pub fn branch(route: &str) -> String {
    format!("{PREFIX}{route}-{}", compose::random_hex(8))
}

/// The route a branch made by [`branch`] carries.
pub fn route_of_branch(branch: &str) -> Option<&str> {
    let rest = branch.strip_prefix(PREFIX)?;
    let (route, random) = rest.split_once('-')?;
    (!route.is_empty() && !random.is_empty()).then_some(route)
}

/// The Contact user of route `route`.
pub fn contact_user(route: &str) -> String {
    format!("st-{route}")
}

/// The route of a message: for a response, the one in its top Via branch, else its Call-ID's
/// (`R@siptoken`, registrations); for a request, the Request-URI user after `st-`.
pub fn route_of(m: &Message) -> Option<&str> {
    match &m.start {
        StartLine::Response { .. } => m
            .top_via_branch()
            .and_then(route_of_branch)
            .or_else(|| m.header("call-id")?.trim().strip_suffix("@siptoken")),
        StartLine::Request { uri, .. } => message::uri_user(uri)?.strip_prefix("st-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Message {
        message::parse(s.as_bytes(), false).unwrap().0
    }

    #[test]
    fn responses_by_branch_then_call_id_requests_by_contact_user() {
        let b = branch("0123abcd");
        assert!(b.starts_with("z9hG4bK-0123abcd-"));
        assert_eq!(route_of_branch(&b), Some("0123abcd"));
        assert_eq!(route_of_branch("z9hG4bK0123"), None, "a REGISTER branch");
        assert_eq!(route_of_branch("z9hG4bK--x"), None);
        let resp = |branch: &str, call_id: &str| {
            parse(&format!(
                "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch={branch}\r\nCall-ID: {call_id}\r\n\r\n"
            ))
        };
        assert_eq!(
            route_of(&resp(&b, "caller-call@elsewhere")),
            Some("0123abcd")
        );
        assert_eq!(route_of(&resp("z9hG4bKabc", "feed@siptoken")), Some("feed"));
        assert_eq!(route_of(&resp("z9hG4bKabc", "x@y")), None);
        let req = parse("BYE sip:st-feed@10.0.0.1:5070 SIP/2.0\r\nCall-ID: x\r\n\r\n");
        assert_eq!(route_of(&req), Some("feed"));
        assert_eq!(contact_user("feed"), "st-feed");
    }
}
