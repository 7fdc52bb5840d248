//! SIP messages (RFC 3261 §7): a small, strict parser for what a registering user agent
//! receives — responses to its REGISTERs and requests such as OPTIONS keep-alives — and the
//! framing of a message on a stream. The values of the headers it needs are read by their own
//! grammars: [`super::address`] (From, To, Contact), [`super::via`], [`super::uri`],
//! [`super::host`].
//!
//! Header names are matched case-insensitively and compact forms (`v`, `f`, `t`, `i`, `m`, `l`,
//! …) are expanded; folded header lines (a continuation line starting with space or tab) are
//! joined with one space. Every header occurrence is kept in order, so several
//! `WWW-Authenticate` headers stay several challenges. The version (`SIP/2.0`) is matched
//! case-insensitively (RFC 3261 §7.1); a message with two Content-Length headers is refused, as
//! its framing would be ambiguous.

use super::address::Address;
use super::params::is_token_char;
use super::via::Via;

/// Largest message accepted (header section plus body), bytes.
pub const MAX_MESSAGE_LEN: usize = 65_535;

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`.
    Request {
        /// The method, e.g. `OPTIONS`.
        method: String,
        /// The Request-URI, as written.
        uri: String,
    },
    /// `SIP/2.0 CODE Reason`.
    Response {
        /// The status code, 100–699.
        code: u16,
        /// The reason phrase (may be empty).
        reason: String,
    },
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The request or status line.
    pub start: StartLine,
    /// Headers in order as (canonical lower-case full name, value).
    headers: Vec<(String, String)>,
    /// The body (as many bytes as Content-Length says, or the rest of a datagram).
    pub body: Vec<u8>,
}

/// Why bytes are not (yet) a SIP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// More bytes are needed (stream transports): the header section or body is not complete.
    #[error("incomplete SIP message")]
    Incomplete,
    /// The bytes are not a valid SIP message.
    #[error("invalid SIP message: {0}")]
    Invalid(Invalid),
}

/// What is wrong with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// No blank line within [`MAX_MESSAGE_LEN`] bytes.
    #[error("header section too long")]
    HeadersTooLong,
    /// A datagram without the blank line that ends the headers.
    #[error("no blank line after the headers")]
    NoBlankLine,
    /// The header section is not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// Neither a status line nor a request line.
    #[error("bad request line")]
    BadRequestLine,
    /// A version other than SIP/2.0.
    #[error("not SIP/2.0")]
    NotSip20,
    /// A status code that is not three digits.
    #[error("bad status code")]
    BadStatusCode,
    /// A status code outside 100–699.
    #[error("status code out of range")]
    StatusOutOfRange,
    /// A folded line before any header.
    #[error("continuation line before any header")]
    ContinuationFirst,
    /// A header line without `:`.
    #[error("header line without a colon")]
    NoColon,
    /// A header name that is not a token.
    #[error("bad header name")]
    BadHeaderName,
    /// A Content-Length that is not a number.
    #[error("bad Content-Length")]
    BadContentLength,
    /// More than one Content-Length (the framing would be ambiguous).
    #[error("more than one Content-Length")]
    DuplicateContentLength,
    /// No Content-Length on a stream, where it is the framing.
    #[error("Content-Length missing on a stream transport")]
    MissingContentLength,
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("message too long")]
    TooLong,
    /// A datagram with fewer body bytes than Content-Length says.
    #[error("body shorter than Content-Length")]
    BodyTooShort,
}

fn invalid(why: Invalid) -> ParseError {
    ParseError::Invalid(why)
}

/// The canonical lower-case full name for a header name (compact forms expanded, RFC 3261
/// §7.3.3 and the IANA registry).
pub fn canonical_name(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let full = match lower.as_str() {
        "v" => "via",
        "f" => "from",
        "t" => "to",
        "i" => "call-id",
        "m" => "contact",
        "l" => "content-length",
        "c" => "content-type",
        "e" => "content-encoding",
        "k" => "supported",
        "s" => "subject",
        "o" => "event",
        "u" => "allow-events",
        "r" => "refer-to",
        "b" => "referred-by",
        "x" => "session-expires",
        "a" => "accept-contact",
        "j" => "reject-contact",
        "d" => "request-disposition",
        "y" => "identity",
        _ => return lower,
    };
    full.to_owned()
}

/// Where the header section ends: (index of the first body byte, length of the header section
/// without the blank line). Accepts CRLF and bare LF line ends.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some((i + 2, i));
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some((i + 3, i));
            }
        }
        i += 1;
    }
    None
}

/// Parses one message from the start of `buf`.
///
/// With `stream == true` (TCP) the body length comes from the mandatory Content-Length, and
/// [`ParseError::Incomplete`] asks for more bytes; leading CRLF keep-alives are skipped. With
/// `stream == false` (one UDP datagram) a missing Content-Length means "the rest of the
/// datagram". Returns the message and how many bytes of `buf` it used.
pub fn parse(buf: &[u8], stream: bool) -> Result<(Message, usize), ParseError> {
    let mut skip = 0;
    while skip < buf.len() && (buf[skip] == b'\r' || buf[skip] == b'\n') {
        skip += 1;
    }
    let rest = &buf[skip..];
    let Some((body_start, head_len)) = header_end(rest) else {
        if rest.len() > MAX_MESSAGE_LEN {
            return Err(invalid(Invalid::HeadersTooLong));
        }
        return if stream || rest.is_empty() {
            Err(ParseError::Incomplete)
        } else {
            Err(invalid(Invalid::NoBlankLine))
        };
    };
    let head = std::str::from_utf8(&rest[..head_len]).map_err(|_| invalid(Invalid::NotUtf8))?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().ok_or(invalid(Invalid::BadRequestLine))?;
    let start = parse_start_line(first)?;

    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let Some(last) = headers.last_mut() else {
                return Err(invalid(Invalid::ContinuationFirst));
            };
            let more = line.trim();
            if !more.is_empty() {
                if !last.1.is_empty() {
                    last.1.push(' ');
                }
                last.1.push_str(more);
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(invalid(Invalid::NoColon));
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(invalid(Invalid::BadHeaderName));
        }
        headers.push((canonical_name(name), value.trim().to_owned()));
    }

    let mut message = Message {
        start,
        headers,
        body: Vec::new(),
    };
    let available = rest.len() - body_start;
    let body_len = {
        let mut lengths = message.headers_named("content-length");
        match (lengths.next(), lengths.next()) {
            (Some(_), Some(_)) => return Err(invalid(Invalid::DuplicateContentLength)),
            (Some(v), None) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| invalid(Invalid::BadContentLength))?,
            (None, _) if stream => return Err(invalid(Invalid::MissingContentLength)),
            (None, _) => available,
        }
    };
    // A Content-Length near usize::MAX must not wrap the sum (found by the call_in_dialog fuzz
    // target: a panic in debug builds, a wrong bound in release).
    if body_start.saturating_add(body_len) > MAX_MESSAGE_LEN {
        return Err(invalid(Invalid::TooLong));
    }
    if body_len > available {
        return if stream {
            Err(ParseError::Incomplete)
        } else {
            Err(invalid(Invalid::BodyTooShort))
        };
    }
    message.body = rest[body_start..body_start + body_len].to_vec();
    Ok((message, skip + body_start + body_len))
}

/// The version, matched case-insensitively (RFC 3261 §7.1).
const VERSION: &str = "SIP/2.0";

fn parse_start_line(line: &str) -> Result<StartLine, ParseError> {
    let status = line
        .get(..VERSION.len() + 1)
        .filter(|v| v.eq_ignore_ascii_case("SIP/2.0 "));
    if status.is_some() {
        let rest = &line[VERSION.len() + 1..];
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(Invalid::BadStatusCode));
        }
        let code: u16 = code.parse().map_err(|_| invalid(Invalid::BadStatusCode))?;
        if !(100..=699).contains(&code) {
            return Err(invalid(Invalid::StatusOutOfRange));
        }
        return Ok(StartLine::Response {
            code,
            reason: reason.to_owned(),
        });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid(Invalid::BadRequestLine));
    };
    if !version.eq_ignore_ascii_case(VERSION) {
        return Err(invalid(Invalid::NotSip20));
    }
    if method.is_empty() || !method.bytes().all(is_token_char) || uri.is_empty() {
        return Err(invalid(Invalid::BadRequestLine));
    }
    Ok(StartLine::Request {
        method: method.to_owned(),
        uri: uri.to_owned(),
    })
}

impl Message {
    /// The status code of a response, `None` for a request.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The method of a request, `None` for a response.
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The first value of a header (any spelling or compact form of `name`).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).next()
    }

    /// Every occurrence of a header, in order (one item per header line, not split at commas).
    pub fn headers_named<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        let name = canonical_name(name);
        self.headers
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every comma-separated element of every occurrence of a header (for list headers such as
    /// Via and Contact; commas inside quotes or `<…>` do not split).
    pub fn list(&self, name: &str) -> Vec<&str> {
        self.headers_named(name).flat_map(split_list).collect()
    }

    /// All headers as (canonical name, value), in order.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let v = self.header("cseq")?;
        let (n, m) = v.split_once([' ', '\t'])?;
        Some((n.trim().parse().ok()?, m.trim()))
    }

    /// The `branch` parameter of the topmost Via (`None` when it has none or the Via is not
    /// valid).
    pub fn top_via_branch(&self) -> Option<&str> {
        let via = *self.list("via").first()?;
        Via::parse(via).ok()?.branch()
    }
}

/// Splits a header value at top-level commas, honouring quoted strings (with `\` escapes) and
/// `<…>`; elements are trimmed and empty ones dropped.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let bytes = value.as_bytes();
    let (mut in_quotes, mut in_angle, mut escaped) = (false, false, false);
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_quotes {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_quotes = false;
            }
            continue;
        }
        match b {
            b'"' => in_quotes = true,
            b'<' => in_angle = true,
            b'>' => in_angle = false,
            b',' if !in_angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.into_iter().filter(|s| !s.is_empty())
}

/// The standard reason phrase of a status code (RFC 3261 §21 and the extensions a registrar
/// uses), `None` for codes without one.
pub fn reason_phrase(code: u16) -> Option<&'static str> {
    Some(match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        423 => "Interval Too Brief",
        429 => "Provide Referrer Identity",
        430 => "Flow Failed",
        439 => "First Hop Lacks Outbound Support",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        494 => "Security Agreement Required",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => return None,
    })
}

/// Builds the response to a request (RFC 3261 §8.2.6): Via, From, Call-ID and CSeq copied, To
/// copied with a tag added when it has none.
pub fn response_to(
    request: &Message,
    code: u16,
    reason: &str,
    to_tag: &str,
    extra: &str,
) -> String {
    let mut out = format!("SIP/2.0 {code} {reason}\r\n");
    for (name, value) in request.headers() {
        match name.as_str() {
            "via" => out.push_str(&format!("Via: {value}\r\n")),
            "from" => out.push_str(&format!("From: {value}\r\n")),
            "call-id" => out.push_str(&format!("Call-ID: {value}\r\n")),
            "cseq" => out.push_str(&format!("CSeq: {value}\r\n")),
            "to" => {
                let tagged = Address::parse(value).is_ok_and(|a| a.param("tag").is_some());
                if tagged {
                    out.push_str(&format!("To: {value}\r\n"));
                } else {
                    out.push_str(&format!("To: {value};tag={to_tag}\r\n"));
                }
            }
            _ => {}
        }
    }
    out.push_str(extra);
    out.push_str("Content-Length: 0\r\n\r\n");
    out
}

/// The `;name[=value]` parameters of a header value, read by the grammars (quoted values keep
/// their quotes): a Via value's after its sent-by, an address's (From, To, Contact, Route) after
/// the address. Empty when the value does not parse.
pub fn params(value: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let list = if value.trim_start().starts_with("SIP/") {
        value
            .find(';')
            .and_then(|i| super::params::parse(&value[i..]).ok())
            .unwrap_or_default()
    } else {
        Address::parse(value).map(|a| a.params).unwrap_or_default()
    };
    list.into_iter().map(|p| (p.name, p.value))
}

/// The URI of a name-addr or addr-spec (`"Name" <sip:…>;p=1` → `sip:…`; `sip:…;p=1` → `sip:…`),
/// read by the address grammar; empty when the value is not an address.
pub fn addr_uri(value: &str) -> &str {
    Address::parse(value).map_or("", |a| a.uri)
}

/// The user part of a SIP URI as written (`sip:user@host` → `user`), if any.
pub fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri
        .strip_prefix("sip:")
        .or_else(|| uri.strip_prefix("sips:"))?;
    let end = rest.find([';', '?']).unwrap_or(rest.len());
    let (user, _) = rest[..end].split_once('@')?;
    Some(user.split(':').next().unwrap_or(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "SIP/2.0 401 Unauthorized\r\n\
        v: SIP/2.0/UDP 127.0.0.1:5070;rport=5070;branch=z9hG4bKabc;received=127.0.0.1\r\n\
        From: <sip:crm1@example.org>;tag=1\r\n\
        t: <sip:crm1@example.org>;tag=2\r\n\
        i: call-1\r\n\
        CSEQ: 7 REGISTER\r\n\
        WWW-Authenticate: Digest realm=\"example.org\",\r\n\
        \tnonce=\"a,b\", algorithm=SHA-256, qop=\"auth\"\r\n\
        www-authenticate: Digest realm=\"example.org\", nonce=\"c\", algorithm=MD5\r\n\
        l: 0\r\n\r\n";

    #[test]
    fn parses_a_response_with_folding_compact_names_and_repeated_headers() {
        let (m, used) = parse(CHALLENGE.as_bytes(), true).unwrap();
        assert_eq!(used, CHALLENGE.len());
        assert_eq!(m.code(), Some(401));
        assert_eq!(m.cseq(), Some((7, "REGISTER")));
        assert_eq!(m.header("Call-ID"), Some("call-1"));
        assert_eq!(m.top_via_branch(), Some("z9hG4bKabc"));
        let challenges: Vec<_> = m.headers_named("WWW-AUTHENTICATE").collect();
        assert_eq!(challenges.len(), 2);
        assert_eq!(
            challenges[0],
            "Digest realm=\"example.org\", nonce=\"a,b\", algorithm=SHA-256, qop=\"auth\""
        );
    }

    #[test]
    fn stream_framing_needs_content_length_and_reports_incomplete() {
        let whole = CHALLENGE.as_bytes();
        for cut in 0..whole.len() {
            assert_eq!(
                parse(&whole[..cut], true),
                Err(ParseError::Incomplete),
                "cut {cut}"
            );
        }
        let two = [whole, whole].concat();
        let (_, used) = parse(&two, true).unwrap();
        assert_eq!(used, whole.len());
        let no_len = "SIP/2.0 200 OK\r\nCall-ID: x\r\n\r\n";
        assert!(matches!(
            parse(no_len.as_bytes(), true),
            Err(ParseError::Invalid(_))
        ));
        let (m, _) = parse(no_len.as_bytes(), false).unwrap();
        assert!(m.body.is_empty());
    }

    #[test]
    fn body_and_keepalives() {
        let msg =
            "\r\n\r\nOPTIONS sip:gw@127.0.0.1:5 SIP/2.0\r\nContent-Length: 4\r\n\r\nabcdEXTRA";
        let (m, used) = parse(msg.as_bytes(), true).unwrap();
        assert_eq!(m.method(), Some("OPTIONS"));
        assert_eq!(m.body, b"abcd");
        assert_eq!(&msg[used..], "EXTRA");
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "SIP/2.0 99 Low\r\n\r\n",
            "SIP/2.0 2000 OK\r\n\r\n",
            "HELLO\r\n\r\n",
            "OPTIONS sip:x SIP/3.0\r\n\r\n",
            "SIP/2.0 200 OK\r\nNoColon\r\n\r\n",
            "SIP/2.0 200 OK\r\n folded-first\r\n\r\n",
            "SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n",
            "SIP/2.0 200 OK\r\nBad Name: x\r\n\r\n",
            "SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ] {
            assert!(
                matches!(parse(bad.as_bytes(), false), Err(ParseError::Invalid(_))),
                "{bad:?}"
            );
        }
        assert!(parse(b"SIP/2.0 200 OK\r\nX: \xff\r\n\r\n", false).is_err());
    }

    #[test]
    fn lists_split_at_top_level_commas_only() {
        let v = r#""Op, 1" <sip:a@h;transport=tcp>;expires=60, <sip:b@h>;expires="30,5", sip:c@h"#;
        let items: Vec<_> = split_list(v).collect();
        assert_eq!(
            items,
            [
                r#""Op, 1" <sip:a@h;transport=tcp>;expires=60"#,
                r#"<sip:b@h>;expires="30,5""#,
                "sip:c@h"
            ]
        );
        let a = Address::parse(items[0]).unwrap();
        assert_eq!(a.uri, "sip:a@h;transport=tcp");
    }

    /// Issue 12: `sip/2.0` was refused although the version is case-insensitive.
    #[test]
    fn the_version_is_case_insensitive() {
        let (m, _) = parse(b"sip/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", true).unwrap();
        assert_eq!(m.code(), Some(200));
        let (m, _) = parse(
            b"OPTIONS sip:x@h Sip/2.0\r\nContent-Length: 0\r\n\r\n",
            true,
        )
        .unwrap();
        assert_eq!(m.method(), Some("OPTIONS"));
        assert_eq!(
            parse(b"OPTIONS sip:x@h SIP/2.1\r\n\r\n", false),
            Err(ParseError::Invalid(Invalid::NotSip20))
        );
    }

    /// Issue 12: two Content-Length headers silently took the first; the framing is ambiguous,
    /// so the message is refused.
    #[test]
    fn two_content_lengths_are_refused() {
        for m in [
            &b"SIP/2.0 200 OK\r\nContent-Length: 0\r\nl: 4\r\n\r\nabcd"[..],
            b"SIP/2.0 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
        ] {
            for stream in [true, false] {
                assert_eq!(
                    parse(m, stream),
                    Err(ParseError::Invalid(Invalid::DuplicateContentLength))
                );
            }
        }
    }

    #[test]
    fn the_top_via_branch_is_read_by_the_via_grammar() {
        let msg =
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP [::1]:5070;x=\"a;branch=no\";branch=z9hG4bK7\r\n\
                   Via: SIP/2.0/UDP h;branch=z9hG4bK8\r\nContent-Length: 0\r\n\r\n";
        let (m, _) = parse(msg.as_bytes(), true).unwrap();
        assert_eq!(m.top_via_branch(), Some("z9hG4bK7"));
        let (m, _) = parse(b"SIP/2.0 200 OK\r\nVia: garbage\r\n\r\n", false).unwrap();
        assert_eq!(m.top_via_branch(), None);
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(423), Some("Interval Too Brief"));
        assert_eq!(reason_phrase(299), None);
    }

    #[test]
    fn answers_options_with_the_request_headers() {
        let req =
            "OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\
                   From: <sip:ka@x>;tag=9\r\nTo: <sip:gw@x>\r\nCall-ID: k\r\nCSeq: 1 OPTIONS\r\n\
                   Content-Length: 0\r\n\r\n";
        let (m, _) = parse(req.as_bytes(), false).unwrap();
        let resp = response_to(&m, 200, "OK", "t1", "");
        let (r, _) = parse(resp.as_bytes(), true).unwrap();
        assert_eq!(r.code(), Some(200));
        assert_eq!(r.header("to"), Some("<sip:gw@x>;tag=t1"));
        // A To that already has a tag keeps it (a quoted "tag" in the display name is no tag).
        let req = req.replace("To: <sip:gw@x>", "To: \"tag=x\" <sip:gw@x>;tag=old");
        let (m, _) = parse(req.as_bytes(), false).unwrap();
        let (r, _) = parse(response_to(&m, 200, "OK", "t1", "").as_bytes(), true).unwrap();
        assert_eq!(r.header("to"), Some("\"tag=x\" <sip:gw@x>;tag=old"));
        assert_eq!(r.top_via_branch(), Some("z9hG4bK1"));
        assert_eq!(r.cseq(), Some((1, "OPTIONS")));
    }
    #[test]
    fn a_content_length_near_usize_max_is_too_long_not_a_panic() {
        let m = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
                 Content-Length: 18446744073709551610\r\n\r\nv=0\r\n";
        for stream in [false, true] {
            assert!(matches!(
                parse(m.as_bytes(), stream),
                Err(ParseError::Invalid(_))
            ));
        }
    }
}
