//! Outgoing SIP messages for calls: requests and responses assembled header by header, with a
//! body, and the requests RFC 3261 derives from others (the ACK of a non-2xx response, §17.1.1.3;
//! CANCEL, §9.1).
//!
//! Written by hand, like the parser in [`super::message`]: the SIP crates on crates.io are
//! either whole stacks with their own transport and runtime or unmaintained, and these few
//! functions are all the call code needs. Header values are written as given except that any
//! control character other than tab becomes a space, so a value can never end a header line
//! early (header injection); callers still validate what they take from untrusted input.

use std::fmt::Write as _;

use super::message::{self, Message};

/// A message body and its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body {
    /// The media type, e.g. `application/sdp`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A request being built (or kept, to derive an ACK or CANCEL from it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The method, e.g. `INVITE`.
    pub method: String,
    /// The Request-URI.
    pub uri: String,
    headers: Vec<(&'static str, String)>,
    /// The body, if any.
    pub body: Option<Body>,
}

impl Request {
    /// A request with no headers yet.
    pub fn new(method: &str, uri: &str) -> Request {
        Request {
            method: method.to_owned(),
            uri: uri.to_owned(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Appends a header (after the ones already there).
    pub fn push(&mut self, name: &'static str, value: impl Into<String>) -> &mut Request {
        self.headers.push((name, value.into()));
        self
    }

    /// Removes every header called `name` (case-insensitive).
    pub fn remove(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// The first value of a header (case-insensitive name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The CSeq number (0 when the header is missing or bad, which our own requests never are).
    pub fn cseq(&self) -> u32 {
        self.get("CSeq")
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The `branch` of the (first) Via.
    pub fn branch(&self) -> Option<&str> {
        via_branch(self.get("Via")?)
    }

    /// Sets the body (`Content-Type` and `Content-Length` are written by [`Request::encode`]).
    pub fn set_body(&mut self, content_type: &str, bytes: Vec<u8>) {
        self.body = Some(Body {
            content_type: content_type.to_owned(),
            bytes,
        });
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let start = format!("{} {} SIP/2.0", clean(&self.method), clean(&self.uri));
        encode(&start, &self.headers, self.body.as_ref())
    }
}

/// A response being built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub code: u16,
    headers: Vec<(&'static str, String)>,
    /// The body, if any.
    pub body: Option<Body>,
}

impl Response {
    /// The response to `request` (RFC 3261 §8.2.6.2): every Via, From, Call-ID and CSeq copied;
    /// To copied, with `to_tag` added when the request's To has no tag (not for 100 Trying,
    /// which never carries one).
    pub fn to(request: &Message, code: u16, to_tag: Option<&str>) -> Response {
        let mut headers = Vec::new();
        for (name, value) in request.headers() {
            let name: &'static str = match name.as_str() {
                "via" => "Via",
                "from" => "From",
                "call-id" => "Call-ID",
                "cseq" => "CSeq",
                "to" => {
                    let mut to = value.clone();
                    if let (Some(tag), false, true) = (to_tag, has_tag(value), code > 100) {
                        to.push_str(";tag=");
                        to.push_str(tag);
                    }
                    headers.push(("To", to));
                    continue;
                }
                _ => continue,
            };
            headers.push((name, value.clone()));
        }
        Response {
            code,
            headers,
            body: None,
        }
    }

    /// Appends a header.
    pub fn push(&mut self, name: &'static str, value: impl Into<String>) -> &mut Response {
        self.headers.push((name, value.into()));
        self
    }

    /// The first value of a header (case-insensitive name).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Sets the body.
    pub fn set_body(&mut self, content_type: &str, bytes: Vec<u8>) {
        self.body = Some(Body {
            content_type: content_type.to_owned(),
            bytes,
        });
    }

    /// The wire form, with the standard reason phrase for the code.
    pub fn encode(&self) -> Vec<u8> {
        let start = format!("SIP/2.0 {} {}", self.code, reason_phrase(self.code));
        encode(&start, &self.headers, self.body.as_ref())
    }
}

fn encode(start: &str, headers: &[(&'static str, String)], body: Option<&Body>) -> Vec<u8> {
    let mut out = String::with_capacity(512);
    out.push_str(start);
    out.push_str("\r\n");
    for (name, value) in headers {
        let _ = write!(out, "{name}: {}\r\n", clean(value));
    }
    let len = body.map_or(0, |b| b.bytes.len());
    if let Some(b) = body {
        let _ = write!(out, "Content-Type: {}\r\n", clean(&b.content_type));
    }
    let _ = write!(out, "Content-Length: {len}\r\n\r\n");
    let mut bytes = out.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(&b.bytes);
    }
    bytes
}

/// `value` with every control character but tab replaced by a space.
pub fn clean(value: &str) -> std::borrow::Cow<'_, str> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        value
            .chars()
            .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        value.into()
    }
}

/// Whether a From/To value carries a `tag` parameter.
pub fn has_tag(value: &str) -> bool {
    tag_of(value).is_some()
}

/// The `tag` parameter of a From/To value.
pub fn tag_of(value: &str) -> Option<&str> {
    message::params(value)
        .find(|(k, _)| k.eq_ignore_ascii_case("tag"))
        .and_then(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A From/To value without its `tag` parameter (other parameters kept).
pub fn without_tag(value: &str) -> String {
    // The header parameters start after `>` (name-addr) or at the first `;` (addr-spec).
    let split = match value.rfind('>') {
        Some(i) => i + 1,
        None => value.find(';').unwrap_or(value.len()),
    };
    let (head, tail) = value.split_at(split);
    let mut out = head.trim_end().to_owned();
    for p in tail.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let name = p.split('=').next().unwrap_or("").trim();
        if !name.eq_ignore_ascii_case("tag") {
            out.push(';');
            out.push_str(p);
        }
    }
    out
}

/// The `branch` parameter of one Via value.
pub fn via_branch(via: &str) -> Option<&str> {
    message::params(via)
        .find(|(k, _)| k.eq_ignore_ascii_case("branch"))
        .and_then(|(_, v)| v)
}

/// The sent-by (`host[:port]`) of one Via value: what follows the protocol, up to the first `;`.
pub fn via_sent_by(via: &str) -> Option<&str> {
    let mut parts = via.splitn(2, |c: char| c.is_ascii_whitespace());
    let proto = parts.next()?;
    if !proto.to_ascii_uppercase().starts_with("SIP/2.0/") {
        return None;
    }
    let rest = parts.next()?.trim_start();
    let sent_by = rest.split(';').next()?.trim();
    (!sent_by.is_empty()).then_some(sent_by)
}

/// Quotes a display name (`"` and `\` escaped, CR and LF dropped).
pub fn quote_display(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// `"Name" <uri>` or `<uri>`.
pub fn name_addr(display: Option<&str>, uri: &str) -> String {
    match display {
        Some(n) if !n.is_empty() => format!("{} <{uri}>", quote_display(n)),
        _ => format!("<{uri}>"),
    }
}

/// The display name of a name-addr (`"Alice \"A\"" <sip:…>` → `Alice "A"`; `Bob <sip:…>` →
/// `Bob`), `None` when there is none.
pub fn display_name(value: &str) -> Option<String> {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return (!out.trim().is_empty()).then(|| out.trim().to_owned()),
                '\\' => out.extend(chars.next()),
                c => out.push(c),
            }
        }
        return None;
    }
    let lt = value.find('<')?;
    let name = value[..lt].trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): the same
/// Request-URI, Call-ID, From, CSeq number and Route headers, the top Via only, and the
/// response's To (with its tag).
pub fn ack_for_failure(invite: &Request, response: &Message) -> Request {
    let mut ack = Request::new("ACK", &invite.uri);
    if let Some(via) = invite.get("Via") {
        ack.push("Via", via);
    }
    ack.push("Max-Forwards", "70");
    if let Some(from) = invite.get("From") {
        ack.push("From", from);
    }
    let to = response
        .header("to")
        .map(str::to_owned)
        .or_else(|| invite.get("To").map(str::to_owned))
        .unwrap_or_default();
    ack.push("To", to);
    if let Some(id) = invite.get("Call-ID") {
        ack.push("Call-ID", id);
    }
    ack.push("CSeq", format!("{} ACK", invite.cseq()));
    for r in invite.all("Route") {
        ack.push("Route", r);
    }
    ack
}

/// The CANCEL of `invite` (RFC 3261 §9.1): the same Request-URI, Call-ID, From, To, CSeq number,
/// Route headers and top Via (the same branch: it is matched to the INVITE by it).
pub fn cancel_for(invite: &Request) -> Request {
    let mut c = Request::new("CANCEL", &invite.uri);
    for name in ["Via", "Max-Forwards", "From", "To", "Call-ID"] {
        if let Some(v) = invite.get(name) {
            c.push(header_name(name), v);
        }
    }
    c.push("CSeq", format!("{} CANCEL", invite.cseq()));
    for r in invite.all("Route") {
        c.push("Route", r);
    }
    c
}

fn header_name(name: &str) -> &'static str {
    match name {
        "Via" => "Via",
        "Max-Forwards" => "Max-Forwards",
        "From" => "From",
        "To" => "To",
        _ => "Call-ID",
    }
}

/// Random lower-case hex of `bytes` random bytes (tags, branches, Call-IDs, cnonces).
pub fn random_hex(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    let mut left = bytes;
    while left > 0 {
        let n = left.min(8);
        let v: u64 = rand::random();
        let _ = write!(out, "{:0width$x}", v >> (64 - 8 * n as u32), width = 2 * n);
        left -= n;
    }
    out
}

/// The standard reason phrase of the codes the call code sends.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &[u8]) -> Message {
        message::parse(s, true).expect("valid SIP").0
    }

    const INVITE: &str = "INVITE sip:st-r1@10.0.0.1:5070 SIP/2.0\r\n\
        Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKp1;received=10.0.0.9\r\n\
        Via: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bKc1\r\n\
        Record-Route: <sip:10.0.0.9;lr>\r\n\
        From: \"Caller \\\"One\\\"\" <sip:+15551234@example.org>;tag=abc\r\n\
        To: <sip:1001@example.org>\r\n\
        Call-ID: call-1@host\r\n\
        CSeq: 7 INVITE\r\n\
        Contact: <sip:caller@10.0.0.8:5060>\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn responses_copy_the_request_and_add_the_to_tag() {
        let req = parse(INVITE.as_bytes());
        let mut r = Response::to(&req, 180, Some("t9"));
        r.push("Contact", "<sip:st-r1@10.0.0.1:5070>");
        let m = parse(&r.encode());
        assert_eq!(m.code(), Some(180));
        assert_eq!(m.list("via").len(), 2);
        assert_eq!(m.top_via_branch(), Some("z9hG4bKp1"));
        assert_eq!(m.header("to"), Some("<sip:1001@example.org>;tag=t9"));
        assert_eq!(m.cseq(), Some((7, "INVITE")));
        assert_eq!(m.header("call-id"), Some("call-1@host"));
        let trying = parse(&Response::to(&req, 100, Some("t9")).encode());
        assert_eq!(trying.header("to"), Some("<sip:1001@example.org>"));
        assert!(String::from_utf8(r.encode())
            .unwrap()
            .starts_with("SIP/2.0 180 Ringing\r\n"));
    }

    #[test]
    fn bodies_get_type_and_length() {
        let mut q = Request::new("INVITE", "sip:a@b");
        q.push("Call-ID", "x")
            .set_body("application/sdp", b"v=0\r\n".to_vec());
        let m = parse(&q.encode());
        assert_eq!(m.header("content-type"), Some("application/sdp"));
        assert_eq!(m.header("content-length"), Some("5"));
        assert_eq!(m.body, b"v=0\r\n");
    }

    #[test]
    fn values_cannot_inject_header_lines() {
        let mut q = Request::new("INFO", "sip:a@b");
        q.push("Subject", "hi\r\nVia: evil\u{0}");
        let text = String::from_utf8(q.encode()).unwrap();
        assert_eq!(text.matches("\r\n").count(), 4, "{text:?}");
        let m = parse(text.as_bytes());
        assert!(m.header("via").is_none());
        assert_eq!(m.header("subject"), Some("hi  Via: evil"));
        let bad_uri = Request::new("INFO", "sip:a@b\r\nX: y").encode();
        assert_eq!(
            String::from_utf8(bad_uri).unwrap().matches("\r\n").count(),
            3
        );
    }

    #[test]
    fn tags_display_names_and_via_parts() {
        let from = "\"A;b\" <sip:a@b;x=1>;tag=12;foo";
        assert_eq!(tag_of(from), Some("12"));
        assert_eq!(without_tag(from), "\"A;b\" <sip:a@b;x=1>;foo");
        assert_eq!(without_tag("sip:a@b;tag=1"), "sip:a@b");
        assert_eq!(display_name(from).as_deref(), Some("A;b"));
        assert_eq!(display_name("Bob <sip:b@c>").as_deref(), Some("Bob"));
        assert_eq!(display_name("<sip:b@c>"), None);
        assert_eq!(display_name("\"\" <sip:b@c>"), None);
        assert_eq!(display_name("\"unterminated <sip:b@c>"), None);
        assert_eq!(
            display_name("\"Caller \\\"One\\\"\" <sip:x@y>").as_deref(),
            Some("Caller \"One\"")
        );
        let via = "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKp1;rport";
        assert_eq!(via_sent_by(via), Some("10.0.0.9:5060"));
        assert_eq!(via_branch(via), Some("z9hG4bKp1"));
        assert_eq!(via_sent_by("HTTP/1.1 x"), None);
        assert_eq!(name_addr(Some("O\"p"), "sip:a@b"), "\"O\\\"p\" <sip:a@b>");
        assert_eq!(name_addr(None, "sip:a@b"), "<sip:a@b>");
    }

    #[test]
    fn ack_and_cancel_follow_the_invite() {
        let mut inv = Request::new("INVITE", "sip:bob@example.org");
        inv.push("Via", "SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK-r-1")
            .push("Max-Forwards", "70")
            .push("From", "<sip:a@example.org>;tag=f1")
            .push("To", "<sip:bob@example.org>")
            .push("Call-ID", "c1")
            .push("CSeq", "2 INVITE")
            .push("Route", "<sip:p1;lr>")
            .push("Proxy-Authorization", "Digest x");
        let resp = parse(
            b"SIP/2.0 486 Busy Here\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK-r-1\r\n\
              From: <sip:a@example.org>;tag=f1\r\nTo: <sip:bob@example.org>;tag=t7\r\n\
              Call-ID: c1\r\nCSeq: 2 INVITE\r\nContent-Length: 0\r\n\r\n",
        );
        let ack = parse(&ack_for_failure(&inv, &resp).encode());
        assert_eq!(ack.method(), Some("ACK"));
        assert_eq!(ack.header("to"), Some("<sip:bob@example.org>;tag=t7"));
        assert_eq!(ack.cseq(), Some((2, "ACK")));
        assert_eq!(ack.top_via_branch(), Some("z9hG4bK-r-1"));
        assert_eq!(ack.header("route"), Some("<sip:p1;lr>"));
        let cancel = parse(&cancel_for(&inv).encode());
        assert_eq!(cancel.method(), Some("CANCEL"));
        assert_eq!(cancel.cseq(), Some((2, "CANCEL")));
        assert_eq!(cancel.top_via_branch(), Some("z9hG4bK-r-1"));
        assert_eq!(cancel.header("to"), Some("<sip:bob@example.org>"));
        assert!(cancel.header("proxy-authorization").is_none());
    }

    #[test]
    fn random_hex_has_the_asked_length() {
        for n in [1, 4, 8, 9, 16] {
            let h = random_hex(n);
            assert_eq!(h.len(), 2 * n);
            assert!(h.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(random_hex(8), random_hex(8));
    }
}
