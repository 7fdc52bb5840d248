//! Requests that reach a registration's route and no call claims: a new incoming call, or a
//! response to send back at once (statelessly), or nothing. Also the checks every request for a
//! call must pass, and a best-effort 400 for datagrams the parser rejects.
//!
//! The rules (RFC 3261 §8.2, and issue 13 for the routes):
//! - ACK is never answered; responses nobody waits for are dropped.
//! - A request missing what a response needs (Via with a branch, From, To, Call-ID, a CSeq whose
//!   method is the request's), or with a control character in those headers: `400`.
//! - `Require` naming any extension: `420 Bad Extension` (none is implemented), except on CANCEL.
//! - A Request-URI that is not a route (`st-…`): `404`; a route no session holds: `480`.
//! - For a route a session holds: an INVITE without a To tag starts an incoming call; a request
//!   with a To tag (a dialog we do not know) or a CANCEL (no transaction to cancel): `481`;
//!   OPTIONS: `200` with our capabilities; other methods we handle only in a dialog: `481`;
//!   methods we do not handle: `405` with `Allow`.

use super::compose::{self, Response};
use super::message::{self, Message};

/// The methods the gateway handles in calls (the `Allow` header everywhere).
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY";

/// The bodies the gateway understands (the `Accept` header of OPTIONS answers).
pub const ACCEPT: &str = "application/sdp, application/dtmf-relay, message/sipfrag";

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// An INVITE starting a call for this route: hand it to `Call::incoming`.
    NewCall,
    /// Send these bytes back (a complete response).
    Respond(Vec<u8>),
    /// Nothing to do (ACK, responses).
    Ignore,
}

/// The verdict of [`check_request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Well-formed enough to act on.
    Valid,
    /// Refused: send this response.
    Reply(Vec<u8>),
    /// Refused and not answerable (an ACK, or too broken to build a response for).
    Drop,
}

fn has_control(v: &str) -> bool {
    v.chars().any(|c| c.is_control() && c != '\t')
}

/// A stateless response to `request` with a fresh To tag.
pub fn reply(request: &Message, code: u16) -> Response {
    Response::to(request, code, Some(&compose::random_hex(8)))
}

/// Checks what every request must have before a call acts on it (see the module doc).
pub fn check_request(m: &Message) -> Check {
    let Some(method) = m.method() else {
        return Check::Drop;
    };
    let via = m.list("via");
    let echoed = ["via", "from", "to", "call-id", "cseq", "record-route"];
    let printable = m
        .headers()
        .iter()
        .filter(|(n, _)| echoed.contains(&n.as_str()))
        .all(|(_, v)| !has_control(v));
    let answerable = printable
        && via
            .first()
            .is_some_and(|v| compose::via_sent_by(v).is_some())
        && m.header("from").is_some()
        && m.header("to").is_some()
        && m.header("call-id").is_some_and(|c| !c.is_empty())
        && m.header("cseq").is_some();
    if !answerable {
        return Check::Drop;
    }
    let cseq_ok = m.cseq().is_some_and(|(_, cm)| cm == method);
    if method == "ACK" {
        return if cseq_ok { Check::Valid } else { Check::Drop };
    }
    if !cseq_ok || m.top_via_branch().is_none_or(str::is_empty) {
        return Check::Reply(reply(m, 400).encode());
    }
    if method != "CANCEL" {
        let required: Vec<&str> = m.list("require");
        if !required.is_empty() {
            let mut r = reply(m, 420);
            r.push("Unsupported", required.join(", "));
            return Check::Reply(r.encode());
        }
    }
    Check::Valid
}

/// What to do with a request no call of the session claimed. `route_known` tells whether a
/// session holds a route (the `R` of a Request-URI user `st-R`).
pub fn out_of_dialog(m: &Message, route_known: impl Fn(&str) -> bool) -> Disposition {
    let Some(method) = m.method() else {
        return Disposition::Ignore;
    };
    match check_request(m) {
        Check::Valid => {}
        Check::Reply(b) => return Disposition::Respond(b),
        Check::Drop => return Disposition::Ignore,
    }
    if method == "ACK" {
        return Disposition::Ignore;
    }
    let respond = |code: u16| Disposition::Respond(reply(m, code).encode());
    let route = match &m.start {
        message::StartLine::Request { uri, .. } => {
            message::uri_user(uri).and_then(|u| u.strip_prefix("st-"))
        }
        message::StartLine::Response { .. } => None,
    };
    let Some(route) = route.filter(|r| !r.is_empty()) else {
        return respond(404);
    };
    if !route_known(route) {
        return respond(480);
    }
    let to_tag = m.header("to").and_then(compose::tag_of).is_some();
    match method {
        "INVITE" if !to_tag => Disposition::NewCall,
        "OPTIONS" if !to_tag => {
            let mut r = reply(m, 200);
            r.push("Allow", ALLOW).push("Accept", ACCEPT);
            Disposition::Respond(r.encode())
        }
        "INVITE" | "CANCEL" | "BYE" | "INFO" | "NOTIFY" | "OPTIONS" => respond(481),
        _ if to_tag => respond(481),
        _ => {
            let mut r = reply(m, 405);
            r.push("Allow", ALLOW);
            Disposition::Respond(r.encode())
        }
    }
}

/// A best-effort `400 Bad Request` for a datagram the parser refused: when its first line looks
/// like a request (not ACK) and the Via, From, To, Call-ID and CSeq lines are there and
/// printable, they are copied into a 400. `None` otherwise (nothing sensible can be sent).
pub fn reply_to_unparseable(datagram: &[u8]) -> Option<Vec<u8>> {
    let end = datagram
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(datagram.len())
        .min(message::MAX_MESSAGE_LEN);
    let head = &datagram[..end];
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = std::str::from_utf8(lines.next()?).ok()?;
    let mut parts = first.split(' ');
    let method = parts.next()?;
    if method.is_empty()
        || method == "ACK"
        || method.starts_with("SIP/")
        || !method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
    {
        return None;
    }
    let mut copied: Vec<(&'static str, String)> = Vec::new();
    for line in lines {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let name: &'static str = match message::canonical_name(name.trim()).as_str() {
            "via" => "Via",
            "from" => "From",
            "to" => "To",
            "call-id" => "Call-ID",
            "cseq" => "CSeq",
            _ => continue,
        };
        if value.is_empty() || has_control(value) {
            return None;
        }
        if name != "Via" && copied.iter().any(|(n, _)| *n == name) {
            continue;
        }
        copied.push((name, value.to_owned()));
    }
    for needed in ["Via", "From", "To", "Call-ID", "CSeq"] {
        if !copied.iter().any(|(n, _)| *n == needed) {
            return None;
        }
    }
    let tag = compose::random_hex(8);
    let mut out = String::from("SIP/2.0 400 Bad Request\r\n");
    for (name, value) in copied {
        out.push_str(name);
        out.push_str(": ");
        out.push_str(&value);
        if name == "To" && !compose::has_tag(&value) {
            out.push_str(";tag=");
            out.push_str(&tag);
        }
        out.push_str("\r\n");
    }
    out.push_str("Content-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str, extra: &str) -> Message {
        let text = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKq\r\n\
             From: <sip:a@x>;tag=f\r\nTo: <sip:b@x>{extra}\r\nCall-ID: c1\r\n\
             CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        message::parse(text.as_bytes(), true).unwrap().0
    }

    /// The response a disposition sends, if it sends one.
    fn response(d: &Disposition) -> Option<Message> {
        match d {
            Disposition::Respond(b) => Some(message::parse(b, true).unwrap().0),
            _ => None,
        }
    }

    /// The response to a bodiless `method` request to `uri` outside a dialog (it must get one).
    fn answer(method: &str, uri: &str) -> Message {
        response(&out_of_dialog(&request(method, uri, ""), known)).unwrap()
    }

    fn code(d: &Disposition) -> Option<u16> {
        response(d)?.code()
    }

    /// A request as it arrived, unchecked (for malformed ones).
    fn raw(text: &[u8]) -> Message {
        message::parse(text, false).unwrap().0
    }

    fn known(r: &str) -> bool {
        r == "feed"
    }

    #[test]
    fn invite_for_a_known_route_is_a_new_call() {
        let m = request("INVITE", "sip:st-feed@10.0.0.1:5070", "");
        assert_eq!(out_of_dialog(&m, known), Disposition::NewCall);
    }

    #[test]
    fn unknown_route_480_no_route_404() {
        let m = request("INVITE", "sip:st-dead@10.0.0.1:5070", "");
        assert_eq!(code(&out_of_dialog(&m, known)), Some(480));
        for uri in [
            "sip:alice@10.0.0.1",
            "sip:10.0.0.1",
            "tel:+1555",
            "sip:st-@h",
        ] {
            let m = request("INVITE", uri, "");
            assert_eq!(code(&out_of_dialog(&m, known)), Some(404), "{uri}");
        }
        let r = answer("INVITE", "sip:st-dead@h");
        assert!(compose::tag_of(r.header("to").unwrap()).is_some());
        assert_eq!(r.top_via_branch(), Some("z9hG4bKq"));
    }

    #[test]
    fn unknown_dialogs_and_transactions_481() {
        for (method, extra) in [
            ("INVITE", ";tag=x"),
            ("BYE", ";tag=x"),
            ("BYE", ""),
            ("CANCEL", ""),
            ("NOTIFY", ";tag=x"),
            ("INFO", ""),
            ("MESSAGE", ";tag=x"),
        ] {
            let m = request(method, "sip:st-feed@h", extra);
            assert_eq!(
                code(&out_of_dialog(&m, known)),
                Some(481),
                "{method}{extra}"
            );
        }
    }

    #[test]
    fn options_answered_unknown_methods_405_ack_ignored() {
        let r = answer("OPTIONS", "sip:st-feed@h");
        assert_eq!(r.code(), Some(200));
        assert_eq!(r.header("allow"), Some(ALLOW));
        assert_eq!(r.header("accept"), Some(ACCEPT));
        let r = answer("MESSAGE", "sip:st-feed@h");
        assert_eq!(r.code(), Some(405));
        assert_eq!(r.header("allow"), Some(ALLOW));
        assert_eq!(
            out_of_dialog(&request("ACK", "sip:st-feed@h", ""), known),
            Disposition::Ignore
        );
        assert_eq!(
            out_of_dialog(&request("ACK", "sip:st-dead@h", ""), known),
            Disposition::Ignore
        );
    }

    #[test]
    fn require_gets_420_except_on_cancel() {
        let m = request("INVITE", "sip:st-feed@h", "\r\nRequire: 100rel, timer");
        let r = response(&out_of_dialog(&m, known)).unwrap();
        assert_eq!(r.code(), Some(420));
        assert_eq!(r.header("unsupported"), Some("100rel, timer"));
        let c = request("CANCEL", "sip:st-feed@h", "\r\nRequire: 100rel");
        assert_eq!(check_request(&c), Check::Valid);
    }

    #[test]
    fn malformed_requests_get_400_or_nothing() {
        let bad_cseq = raw(
            b"INVITE sip:st-feed@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n\
              To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
        );
        assert_eq!(code(&out_of_dialog(&bad_cseq, known)), Some(400));
        let no_branch = raw(
            b"BYE sip:st-feed@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:a@x>;tag=1\r\n\
              To: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
        );
        assert_eq!(code(&out_of_dialog(&no_branch, known)), Some(400));
        let no_call_id = raw(
            b"BYE sip:st-feed@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>\r\nTo: <sip:b@x>\r\nCSeq: 1 BYE\r\n\r\n",
        );
        assert_eq!(out_of_dialog(&no_call_id, known), Disposition::Ignore);
        let control = raw(
            b"BYE sip:st-feed@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@x>\r\nTo: <sip:b\rX: y@x>\r\nCall-ID: c\r\nCSeq: 1 BYE\r\n\r\n",
        );
        assert_eq!(out_of_dialog(&control, known), Disposition::Ignore);
    }

    #[test]
    fn unparseable_datagrams_get_a_best_effort_400() {
        let broken = b"INVITE sip:st-feed@h SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bK7\r\n\
            f: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nBad Header: x\r\n\
            Content-Length: 99\r\n\r\nv=0";
        assert!(message::parse(broken, false).is_err());
        let r = reply_to_unparseable(broken).unwrap();
        let m = message::parse(&r, true).unwrap().0;
        assert_eq!(m.code(), Some(400));
        assert_eq!(m.top_via_branch(), Some("z9hG4bK7"));
        assert_eq!(m.header("from"), Some("<sip:a@x>;tag=1"));
        assert!(compose::tag_of(m.header("to").unwrap()).is_some());
        for hopeless in [
            &b"garbage"[..],
            b"",
            b"SIP/2.0 200 OK\r\nVia: x\r\n\r\n",
            b"ACK sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n",
            b"INVITE sip:x SIP/2.0\r\nFrom: a\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
            b"INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: a\x01\r\nTo: b\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
            b"\xff\xfe sip:x SIP/2.0\r\n\r\n",
        ] {
            assert_eq!(reply_to_unparseable(hopeless), None, "{hopeless:?}");
        }
    }
}
