//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1): `sip:[user[:password]@]host[:port][;params][?headers]`.
//!
//! The gateway reads URIs to route requests from a registrar (the Request-URI's user) and to
//! find its own binding in a 200 OK's Contacts (user, host and port); it writes them for the
//! Request-URI, the address of record and the Contact, with the user part escaped and the host
//! written by [`Host`] (IPv6 bracketed). Parameters and headers are checked for characters a
//! URI may not hold and kept as written.

use std::fmt;

use super::host::{Host, HostError};
use super::params::is_token_char;

/// `sip:` or `sips:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `sip:`.
    Sip,
    /// `sips:` (TLS all the way).
    Sips,
}

/// A parsed SIP or SIPS URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The scheme.
    pub scheme: Scheme,
    /// The user part as written (escaped), without a password.
    pub user: Option<String>,
    /// The host.
    pub host: Host,
    /// The port, when written.
    pub port: Option<u16>,
    /// `;params` and `?headers` as written (empty when there are none).
    pub rest: String,
}

/// Why a string is not a SIP URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// Not `sip:` or `sips:`.
    #[error("not a sip: or sips: URI")]
    NotSip,
    /// The user or password holds a character RFC 3261 does not allow there.
    #[error("bad user part")]
    BadUser,
    /// The host is not a host.
    #[error("bad host: {0}")]
    Host(#[from] HostError),
    /// The port is not a number 0–65535.
    #[error("bad port")]
    BadPort,
    /// The parameters or headers hold a character a URI may not hold.
    #[error("bad URI parameters")]
    BadParams,
}

/// `unreserved` (alphanum / mark).
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b)
}

/// Whether `s` is `*( allowed / escaped )`, `escaped = "%" HEXDIG HEXDIG`.
fn all_escaped_or(s: &str, allowed: impl Fn(u8) -> bool) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if !(b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
        } else if allowed(b[i]) {
            i += 1;
        } else {
            return false;
        }
    }
    true
}

/// Escapes a user part (RFC 3261 §25.1: unreserved and user-unreserved characters stay, the
/// rest becomes `%HH`), so any login fits in a URI.
pub fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if is_unreserved(b) || b"&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl SipUri {
    /// A URI from its parts; `user` is a raw user name, escaped here.
    pub fn new(scheme: Scheme, user: Option<&str>, host: Host, port: Option<u16>) -> SipUri {
        SipUri {
            scheme,
            user: user.map(escape_user),
            host,
            port,
            rest: String::new(),
        }
    }

    /// Parses a URI as written in a message.
    pub fn parse(s: &str) -> Result<SipUri, UriError> {
        let (scheme, rest) = match s.split_once(':') {
            Some((sc, rest)) if sc.eq_ignore_ascii_case("sip") => (Scheme::Sip, rest),
            Some((sc, rest)) if sc.eq_ignore_ascii_case("sips") => (Scheme::Sips, rest),
            _ => return Err(UriError::NotSip),
        };
        // No character after the userinfo may be `@` (RFC 3261 §25.1), so the first one ends it.
        let (user, hostport) = match rest.split_once('@') {
            Some((userinfo, hp)) => {
                let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user_ok = !user.is_empty()
                    && all_escaped_or(user, |b| is_unreserved(b) || b"&=+$,;?/".contains(&b));
                let password_ok =
                    all_escaped_or(password, |b| is_unreserved(b) || b"&=+$,".contains(&b));
                if !user_ok || !password_ok {
                    return Err(UriError::BadUser);
                }
                (Some(user.to_owned()), hp)
            }
            None => (None, rest),
        };
        let plain = &hostport[..hostport.find([';', '?']).unwrap_or(hostport.len())];
        if !plain.starts_with('[') && plain.matches(':').count() > 1 {
            // `sip:::1`, `sip:crm1@::1:5060`: an IPv6 address without its brackets.
            return Err(UriError::Host(HostError::UnbracketedIpv6));
        }
        let end = if hostport.starts_with('[') {
            hostport.find(']').map_or(hostport.len(), |i| i + 1)
        } else {
            hostport.find([':', ';', '?']).unwrap_or(hostport.len())
        };
        let host = Host::parse(&hostport[..end])?;
        let mut tail = &hostport[end..];
        let mut port = None;
        if let Some(p) = tail.strip_prefix(':') {
            let digits = p.find([';', '?']).unwrap_or(p.len());
            if digits == 0 || digits > 5 || !p[..digits].bytes().all(|b| b.is_ascii_digit()) {
                return Err(UriError::BadPort);
            }
            port = Some(p[..digits].parse().map_err(|_| UriError::BadPort)?);
            tail = &p[digits..];
        }
        let params_ok = (tail.is_empty() || tail.starts_with([';', '?']))
            && all_escaped_or(tail, |b| {
                is_token_char(b) || b"[]/:&+$;?=@,".contains(&b) || b == b'\''
            });
        if !params_ok {
            return Err(UriError::BadParams);
        }
        Ok(SipUri {
            scheme,
            user,
            host,
            port,
            rest: tail.to_owned(),
        })
    }

    /// Whether this URI names the same user, host and port as `other` (the parts a binding is
    /// told apart by here; parameters are not compared).
    pub fn same_binding(&self, other: &SipUri) -> bool {
        self.scheme == other.scheme
            && self.user == other.user
            && self.host.same(&other.host)
            && self.port == other.port
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
        })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        f.write_str(&self.rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn parses_the_parts() {
        let u = SipUri::parse("sip:st-ab@10.0.0.1:5060;transport=tcp").unwrap();
        assert_eq!(u.scheme, Scheme::Sip);
        assert_eq!(u.user.as_deref(), Some("st-ab"));
        assert_eq!(u.host, Host::parse("10.0.0.1").unwrap());
        assert_eq!(u.port, Some(5060));
        assert_eq!(u.rest, ";transport=tcp");
        assert_eq!(u.to_string(), "sip:st-ab@10.0.0.1:5060;transport=tcp");

        let u = SipUri::parse("SIPS:alice:secret@[2001:db8::1]:5061").unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.host, Host::V6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));

        let u = SipUri::parse("sip:[::1];lr").unwrap();
        assert_eq!(
            (u.user, u.host, u.port),
            (None, Host::V6(Ipv6Addr::LOCALHOST), None)
        );
        let u = SipUri::parse("sip:a%20b;x@h.example?subject=x").unwrap();
        assert_eq!(u.user.as_deref(), Some("a%20b;x"));
        assert_eq!(u.rest, "?subject=x");
    }

    #[test]
    fn builds_with_escaped_users_and_bracketed_ipv6() {
        let aor = SipUri::new(
            Scheme::Sip,
            Some("a b@c"),
            Host::parse_claim("::1").unwrap(),
            None,
        );
        assert_eq!(aor.to_string(), "sip:a%20b%40c@[::1]");
        assert_eq!(SipUri::parse(&aor.to_string()), Ok(aor));
        assert_eq!(escape_user("crm1"), "crm1");
        assert_eq!(escape_user("é"), "%C3%A9");
    }

    #[test]
    fn bindings_compare_by_user_host_and_port() {
        let a = SipUri::parse("sip:st-1@[::1]:5070;transport=tcp").unwrap();
        assert!(a.same_binding(&SipUri::parse("sip:st-1@[0::1]:5070").unwrap()));
        assert!(!a.same_binding(&SipUri::parse("sip:st-1@[::1]:5071").unwrap()));
        assert!(!a.same_binding(&SipUri::parse("sip:st-2@[::1]:5070").unwrap()));
    }
}
