//! A SIP dialog (RFC 3261 §12): its identity (Call-ID, local and remote tag), the CSeq numbers
//! in both directions, the remote target and the route set; building requests inside it
//! (§12.2.1.1, loose and strict routing) and checking requests that arrive in it (§12.2.2).

use std::fmt;

use super::compose::{self, Request};
use super::message::{self, Message};

/// A dialog cannot be formed from the messages given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogError {
    /// A header the dialog needs is missing (`Call-ID`, `From tag`, `To tag`, `Contact`, `CSeq`).
    Missing(&'static str),
    /// The Contact is not a `sip:`/`sips:` URI that can be written back into a request.
    BadContact,
}

impl fmt::Display for DialogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DialogError::Missing(what) => write!(f, "no {what}"),
            DialogError::BadContact => f.write_str("unusable Contact URI"),
        }
    }
}

impl std::error::Error for DialogError {}

/// An in-dialog request arrived out of order (its CSeq is not above the last one): RFC 3261
/// §12.2.2 says answer 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder {
    /// The request's CSeq number.
    pub got: u32,
    /// The highest seen before.
    pub last: u32,
}

/// One dialog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    call_id: String,
    local_tag: String,
    remote_tag: String,
    /// Our From/To value without the tag (display name and URI).
    local_party: String,
    remote_party: String,
    local_cseq: u32,
    remote_cseq: Option<u32>,
    remote_target: String,
    /// Route values in the order our requests carry them.
    route_set: Vec<String>,
    caller: bool,
}

/// The first Contact URI of a message, checked to be a SIP URI with nothing that could break a
/// request line or header.
pub fn contact_uri(m: &Message) -> Result<String, DialogError> {
    let contact = *m
        .list("contact")
        .first()
        .ok_or(DialogError::Missing("Contact"))?;
    let uri = message::addr_uri(contact);
    if is_safe_sip_uri(uri) {
        Ok(uri.to_owned())
    } else {
        Err(DialogError::BadContact)
    }
}

/// Whether `uri` is a `sip:`/`sips:` URI without whitespace, control characters, quotes or angle
/// brackets (it goes into a Request-URI and a `<…>` as is).
pub fn is_safe_sip_uri(uri: &str) -> bool {
    let lower = uri
        .get(..5)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    (lower.starts_with("sip:") || lower == "sips:")
        && uri.len() > 4
        && uri.len() <= 1024
        && !uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
}

/// Whether a Route value's URI carries the `lr` parameter (a loose router, RFC 3261 §19.1.1).
fn is_loose(route: &str) -> bool {
    message::addr_uri(route).split(';').skip(1).any(|p| {
        p.split('=')
            .next()
            .is_some_and(|n| n.trim().eq_ignore_ascii_case("lr"))
    })
}

/// The Record-Route values of a message, each element separately, in order. Elements that
/// could not be written back safely are dropped.
fn record_route(m: &Message) -> Vec<String> {
    m.list("record-route")
        .into_iter()
        .filter(|r| is_safe_sip_uri(message::addr_uri(r)))
        .map(str::to_owned)
        .collect()
}

impl Dialog {
    /// The dialog a 2xx (or a 1xx with a To tag) to our INVITE creates (RFC 3261 §12.1.2):
    /// route set = the response's Record-Route reversed, remote target = its Contact.
    pub fn as_uac(invite: &Request, response: &Message) -> Result<Dialog, DialogError> {
        let from = invite.get("From").ok_or(DialogError::Missing("From"))?;
        let to = invite.get("To").ok_or(DialogError::Missing("To"))?;
        let remote_tag = response
            .header("to")
            .and_then(compose::tag_of)
            .ok_or(DialogError::Missing("To tag"))?;
        let mut route_set = record_route(response);
        route_set.reverse();
        Ok(Dialog {
            call_id: invite
                .get("Call-ID")
                .ok_or(DialogError::Missing("Call-ID"))?
                .to_owned(),
            local_tag: compose::tag_of(from)
                .ok_or(DialogError::Missing("From tag"))?
                .to_owned(),
            remote_tag: remote_tag.to_owned(),
            local_party: compose::without_tag(from),
            remote_party: compose::without_tag(to),
            local_cseq: invite.cseq(),
            remote_cseq: None,
            remote_target: contact_uri(response)?,
            route_set,
            caller: true,
        })
    }

    /// The dialog we create by answering `invite` with `local_tag` (RFC 3261 §12.1.1): route
    /// set = its Record-Route in order, remote target = its Contact.
    pub fn as_uas(invite: &Message, local_tag: &str) -> Result<Dialog, DialogError> {
        let from = invite.header("from").ok_or(DialogError::Missing("From"))?;
        let to = invite.header("to").ok_or(DialogError::Missing("To"))?;
        Ok(Dialog {
            call_id: invite
                .header("call-id")
                .ok_or(DialogError::Missing("Call-ID"))?
                .to_owned(),
            local_tag: local_tag.to_owned(),
            remote_tag: compose::tag_of(from)
                .ok_or(DialogError::Missing("From tag"))?
                .to_owned(),
            local_party: compose::without_tag(to),
            remote_party: compose::without_tag(from),
            local_cseq: 0,
            remote_cseq: Some(invite.cseq().ok_or(DialogError::Missing("CSeq"))?.0),
            remote_target: contact_uri(invite)?,
            route_set: record_route(invite),
            caller: false,
        })
    }

    /// The Call-ID.
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Our tag.
    pub fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// The peer's tag.
    pub fn remote_tag(&self) -> &str {
        &self.remote_tag
    }

    /// Where our requests go (the peer's Contact).
    pub fn remote_target(&self) -> &str {
        &self.remote_target
    }

    /// The route set, as our requests carry it.
    pub fn route_set(&self) -> &[String] {
        &self.route_set
    }

    /// Whether we sent the INVITE that created the dialog (we "own" its Call-ID: the 491 retry
    /// delay depends on it, RFC 3261 §14.1).
    pub fn is_caller(&self) -> bool {
        self.caller
    }

    /// The last CSeq number we used.
    pub fn local_cseq(&self) -> u32 {
        self.local_cseq
    }

    /// Whether a request arriving belongs to this dialog (Call-ID, our tag in To, theirs in
    /// From).
    pub fn matches_request(&self, request: &Message) -> bool {
        request.header("call-id") == Some(self.call_id.as_str())
            && request.header("to").and_then(compose::tag_of) == Some(self.local_tag.as_str())
            && request.header("from").and_then(compose::tag_of) == Some(self.remote_tag.as_str())
    }

    /// Whether a response belongs to this dialog (Call-ID, our tag in From, theirs in To).
    pub fn matches_response(&self, response: &Message) -> bool {
        response.header("call-id") == Some(self.call_id.as_str())
            && response.header("from").and_then(compose::tag_of) == Some(self.local_tag.as_str())
            && response.header("to").and_then(compose::tag_of) == Some(self.remote_tag.as_str())
    }

    /// A new request in the dialog with the next CSeq (RFC 3261 §12.2.1.1): Request-URI and
    /// Route from the remote target and route set (loose routing when the first route has `lr`,
    /// else strict routing), then Via, Max-Forwards, From, To, Call-ID and CSeq. The caller adds
    /// Contact, credentials and a body.
    pub fn request(&mut self, method: &str, via: &str) -> Request {
        self.local_cseq = self.local_cseq.wrapping_add(1).max(1);
        let cseq = self.local_cseq;
        self.build(method, cseq, via)
    }

    /// The ACK of a 2xx to our INVITE with CSeq number `cseq` (RFC 3261 §13.2.2.4): an in-dialog
    /// request with the INVITE's CSeq number.
    pub fn ack(&self, cseq: u32, via: &str) -> Request {
        self.build("ACK", cseq, via)
    }

    fn build(&self, method: &str, cseq: u32, via: &str) -> Request {
        let (uri, routes): (String, Vec<String>) = match self.route_set.first() {
            Some(first) if !is_loose(first) => {
                let mut routes: Vec<String> = self.route_set[1..].to_vec();
                routes.push(format!("<{}>", self.remote_target));
                (message::addr_uri(first).to_owned(), routes)
            }
            _ => (self.remote_target.clone(), self.route_set.clone()),
        };
        let mut r = Request::new(method, &uri);
        r.push("Via", via)
            .push("Max-Forwards", "70")
            .push(
                "From",
                format!("{};tag={}", self.local_party, self.local_tag),
            )
            .push(
                "To",
                format!("{};tag={}", self.remote_party, self.remote_tag),
            )
            .push("Call-ID", self.call_id.clone())
            .push("CSeq", format!("{cseq} {method}"));
        for route in routes {
            r.push("Route", route);
        }
        r
    }

    /// Checks the CSeq of a request arriving in the dialog and records it (RFC 3261 §12.2.2).
    /// ACK and CANCEL carry the number of the INVITE they belong to and are not checked.
    pub fn check_cseq(&mut self, request: &Message) -> Result<(), OutOfOrder> {
        let Some((n, method)) = request.cseq() else {
            return Ok(());
        };
        if matches!(method, "ACK" | "CANCEL") {
            return Ok(());
        }
        if let Some(last) = self.remote_cseq {
            if n <= last {
                return Err(OutOfOrder { got: n, last });
            }
        }
        self.remote_cseq = Some(n);
        Ok(())
    }

    /// A target refresh (re-INVITE or its 2xx): the Contact, if usable, becomes the remote
    /// target (RFC 3261 §12.2.1.2, §12.2.2).
    pub fn refresh_target(&mut self, m: &Message) {
        if let Ok(uri) = contact_uri(m) {
            self.remote_target = uri;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> Message {
        message::parse(text.as_bytes(), false).unwrap().0
    }

    fn invite() -> Request {
        let mut r = Request::new("INVITE", "sip:bob@example.org");
        r.push("Via", "SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-r-1")
            .push("From", "\"Op\" <sip:op@example.org>;tag=L1")
            .push("To", "<sip:bob@example.org>")
            .push("Call-ID", "cid")
            .push("CSeq", "3 INVITE");
        r
    }

    const OK: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-r-1\r\n\
        Record-Route: <sip:p2.example.org;lr>, <sip:p1.example.org;lr;transport=udp>\r\n\
        From: \"Op\" <sip:op@example.org>;tag=L1\r\nTo: <sip:bob@example.org>;tag=R1\r\n\
        Call-ID: cid\r\nCSeq: 3 INVITE\r\nContact: <sip:bob@10.0.0.2:5062;transport=udp>\r\n\r\n";

    /// The UAC dialog of our INVITE and [`OK`] with `part` replaced by `by`.
    fn uac_with(part: &str, by: &str) -> Result<Dialog, DialogError> {
        Dialog::as_uac(&invite(), &msg(&OK.replace(part, by)))
    }

    #[test]
    fn uac_dialog_from_2xx_reverses_record_route() {
        let mut d = Dialog::as_uac(&invite(), &msg(OK)).unwrap();
        assert_eq!(
            (d.call_id(), d.local_tag(), d.remote_tag()),
            ("cid", "L1", "R1")
        );
        assert_eq!(d.remote_target(), "sip:bob@10.0.0.2:5062;transport=udp");
        assert_eq!(
            d.route_set(),
            [
                "<sip:p1.example.org;lr;transport=udp>",
                "<sip:p2.example.org;lr>"
            ]
        );
        assert!(d.is_caller());
        let bye = d.request("BYE", "SIP/2.0/UDP h;branch=z9hG4bK-r-2");
        assert_eq!(bye.uri, "sip:bob@10.0.0.2:5062;transport=udp");
        assert_eq!(bye.get("CSeq"), Some("4 BYE"));
        assert_eq!(bye.get("From"), Some("\"Op\" <sip:op@example.org>;tag=L1"));
        assert_eq!(bye.get("To"), Some("<sip:bob@example.org>;tag=R1"));
        assert_eq!(
            bye.all("Route").collect::<Vec<_>>(),
            [
                "<sip:p1.example.org;lr;transport=udp>",
                "<sip:p2.example.org;lr>"
            ]
        );
        let ack = d.ack(3, "SIP/2.0/UDP h;branch=z9hG4bK-r-3");
        assert_eq!(ack.get("CSeq"), Some("3 ACK"));
        assert_eq!(d.local_cseq(), 4, "ACK does not use a new CSeq");
        assert!(d.matches_response(&msg(OK)));
    }

    #[test]
    fn strict_router_goes_into_the_request_uri() {
        let mut d = uac_with(
            "<sip:p1.example.org;lr;transport=udp>",
            "<sip:p1.example.org>",
        )
        .unwrap();
        let r = d.request("INFO", "SIP/2.0/UDP h;branch=z9hG4bK-x");
        assert_eq!(r.uri, "sip:p1.example.org");
        assert_eq!(
            r.all("Route").collect::<Vec<_>>(),
            [
                "<sip:p2.example.org;lr>",
                "<sip:bob@10.0.0.2:5062;transport=udp>"
            ]
        );
    }

    #[test]
    fn no_route_set_no_route_header() {
        let mut d = uac_with(
            "Record-Route: <sip:p2.example.org;lr>, <sip:p1.example.org;lr;transport=udp>\r\n",
            "",
        )
        .unwrap();
        assert!(d.route_set().is_empty());
        assert_eq!(d.request("BYE", "v").get("Route"), None);
    }

    #[test]
    fn uac_dialog_needs_tag_and_usable_contact() {
        assert_eq!(uac_with(";tag=R1", ""), Err(DialogError::Missing("To tag")));
        assert_eq!(
            uac_with("Contact: <sip:bob@10.0.0.2:5062;transport=udp>\r\n", ""),
            Err(DialogError::Missing("Contact"))
        );
        for bad in ["<http://x>", "<sip:a b@c>", "<sip:a\"@c>"] {
            assert_eq!(
                uac_with("<sip:bob@10.0.0.2:5062;transport=udp>", bad),
                Err(DialogError::BadContact),
                "{bad}"
            );
        }
    }

    const INVITE_IN: &str = "INVITE sip:st-r@10.0.0.1:5070 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKa\r\n\
        Record-Route: <sip:p1.example.org;lr>\r\nRecord-Route: <sip:p2.example.org;lr>\r\n\
        From: \"Caller\" <sip:+1555@example.org>;tag=F9\r\nTo: <sip:op@example.org>\r\n\
        Call-ID: in-1\r\nCSeq: 10 INVITE\r\nContact: <sip:caller@10.0.0.8>\r\n\r\n";

    #[test]
    fn uas_dialog_keeps_record_route_order_and_checks_cseq() {
        let mut d = Dialog::as_uas(&msg(INVITE_IN), "T1").unwrap();
        assert!(!d.is_caller());
        assert_eq!(
            d.route_set(),
            ["<sip:p1.example.org;lr>", "<sip:p2.example.org;lr>"]
        );
        let bye = d.request("BYE", "v");
        assert_eq!(bye.uri, "sip:caller@10.0.0.8");
        assert_eq!(bye.get("From"), Some("<sip:op@example.org>;tag=T1"));
        assert_eq!(
            bye.get("To"),
            Some("\"Caller\" <sip:+1555@example.org>;tag=F9")
        );
        assert_eq!(bye.get("CSeq"), Some("1 BYE"));

        let req = |method: &str, n: u32| {
            msg(&format!(
                "{method} sip:st-r@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\r\n\
                 From: <sip:+1555@example.org>;tag=F9\r\nTo: <sip:op@example.org>;tag=T1\r\n\
                 Call-ID: in-1\r\nCSeq: {n} {method}\r\n\r\n"
            ))
        };
        assert!(d.matches_request(&req("BYE", 11)));
        assert_eq!(d.check_cseq(&req("ACK", 10)), Ok(()));
        assert_eq!(
            d.check_cseq(&req("INFO", 10)),
            Err(OutOfOrder { got: 10, last: 10 })
        );
        assert_eq!(d.check_cseq(&req("INFO", 11)), Ok(()));
        assert_eq!(
            d.check_cseq(&req("BYE", 9)),
            Err(OutOfOrder { got: 9, last: 11 })
        );
        assert_eq!(d.check_cseq(&req("CANCEL", 10)), Ok(()));
        let other = msg(&INVITE_IN.replace("tag=F9", "tag=F8"));
        assert!(!d.matches_request(&other));
    }

    #[test]
    fn target_refresh_takes_a_usable_contact_only() {
        let mut d = Dialog::as_uas(&msg(INVITE_IN), "T1").unwrap();
        d.refresh_target(&msg(
            &INVITE_IN.replace("caller@10.0.0.8", "caller@10.0.0.99")
        ));
        assert_eq!(d.remote_target(), "sip:caller@10.0.0.99");
        d.refresh_target(&msg(&INVITE_IN.replace("<sip:caller@10.0.0.8>", "<tel:1>")));
        assert_eq!(d.remote_target(), "sip:caller@10.0.0.99");
    }

    #[test]
    fn uas_dialog_needs_from_tag() {
        let t = INVITE_IN.replace(";tag=F9", "");
        assert_eq!(
            Dialog::as_uas(&msg(&t), "T1"),
            Err(DialogError::Missing("From tag"))
        );
    }
}
