//! Hosts as SIP writes them (RFC 3261 §25.1): `host = hostname / IPv4address / IPv6reference`,
//! where an IPv6 address always stands in brackets (`[::1]`).
//!
//! Every host the gateway takes from outside — a token's `domain` and `outboundProxy`, the host
//! of a URI or a Via in a message — goes through [`Host`], so nothing but a host can reach a SIP
//! message in a host's place, and an IPv6 address is always written bracketed (`sip:[::1]`,
//! never `sip:::1`). The grammar is short and exact (labels of letters, digits and inner
//! hyphens, the last one starting with a letter; dotted-quad IPv4; IPv6 by the standard
//! library's parser), so it is written here rather than taken from a URL library, whose host
//! rules (WHATWG: percent-decoding, IDNA, `_` allowed) are not SIP's.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// Longest host name (RFC 1035 §2.3.4: 255 octets on the wire, 253 as text).
const MAX_NAME_LEN: usize = 253;
/// Longest label of a host name (RFC 1035 §2.3.4).
const MAX_LABEL_LEN: usize = 63;

/// A SIP host: a DNS name, an IPv4 address or an IPv6 address. `Display` writes it as SIP
/// does (`[2001:db8::1]`), [`Host::bare`] as DNS and certificates do (`2001:db8::1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    /// A host name, as written (compare with [`Host::same`]: names are case-insensitive).
    Name(String),
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 address (written `[…]` in SIP).
    V6(Ipv6Addr),
}

/// Why a string is not a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Nothing at all.
    #[error("empty host")]
    Empty,
    /// Longer than 253 characters.
    #[error("host name longer than {MAX_NAME_LEN} characters")]
    TooLong,
    /// Not a host name: a character other than a letter, digit, `-` or `.`, an empty label, a
    /// label longer than 63 or with a hyphen at either end, or a last label not starting with
    /// a letter.
    #[error("not a host name")]
    BadName,
    /// Only digits and dots, but not four numbers 0–255.
    #[error("not an IPv4 address")]
    BadIpv4,
    /// Brackets around something that is not an IPv6 address, or unbalanced brackets.
    #[error("not an IPv6 reference")]
    BadIpv6,
    /// An IPv6 address without its brackets where the grammar needs them.
    #[error("an IPv6 address must be in brackets")]
    UnbracketedIpv6,
}

impl Host {
    /// Parses a host as a SIP URI or Via writes it (RFC 3261 §25.1): IPv6 only in brackets.
    pub fn parse(s: &str) -> Result<Host, HostError> {
        if s.is_empty() {
            return Err(HostError::Empty);
        }
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(HostError::BadIpv6)?;
            return inner
                .parse::<Ipv6Addr>()
                .map(Host::V6)
                .map_err(|_| HostError::BadIpv6);
        }
        if s.contains([']', '[']) {
            return Err(HostError::BadIpv6);
        }
        if s.contains(':') {
            return Err(if s.parse::<Ipv6Addr>().is_ok() {
                HostError::UnbracketedIpv6
            } else {
                HostError::BadName
            });
        }
        if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return s
                .parse::<Ipv4Addr>()
                .map(Host::V4)
                .map_err(|_| HostError::BadIpv4);
        }
        check_name(s)?;
        Ok(Host::Name(s.to_owned()))
    }

    /// Parses a host as a token names it (`domain`, `outboundProxy`): as [`Host::parse`], and
    /// a bare IPv6 address is accepted too (it is bracketed when written).
    pub fn parse_claim(s: &str) -> Result<Host, HostError> {
        match Host::parse(s) {
            Err(HostError::UnbracketedIpv6) => s
                .parse::<Ipv6Addr>()
                .map(Host::V6)
                .map_err(|_| HostError::BadIpv6),
            other => other,
        }
    }

    /// The IP address, when the host is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Host::Name(_) => None,
            Host::V4(a) => Some(IpAddr::V4(*a)),
            Host::V6(a) => Some(IpAddr::V6(*a)),
        }
    }

    /// The host without brackets: what DNS looks up and what a certificate names.
    pub fn bare(&self) -> String {
        match self {
            Host::Name(n) => n.clone(),
            Host::V4(a) => a.to_string(),
            Host::V6(a) => a.to_string(),
        }
    }

    /// Whether two hosts are the same (RFC 3261 §19.1.4: names compare case-insensitively,
    /// addresses by value; a trailing dot is ignored).
    pub fn same(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Name(a), Host::Name(b)) => a
                .trim_end_matches('.')
                .eq_ignore_ascii_case(b.trim_end_matches('.')),
            _ => self == other,
        }
    }
}

impl From<IpAddr> for Host {
    fn from(ip: IpAddr) -> Host {
        match ip {
            IpAddr::V4(a) => Host::V4(a),
            IpAddr::V6(a) => Host::V6(a),
        }
    }
}

impl FromStr for Host {
    type Err = HostError;
    fn from_str(s: &str) -> Result<Host, HostError> {
        Host::parse(s)
    }
}

impl fmt::Display for Host {
    /// As SIP writes it: IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// `hostname = *( domainlabel "." ) toplabel [ "." ]`, `domainlabel = alphanum / alphanum
/// *( alphanum / "-" ) alphanum`, `toplabel = ALPHA / ALPHA *( alphanum / "-" ) alphanum`.
fn check_name(s: &str) -> Result<(), HostError> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() > MAX_NAME_LEN {
        return Err(HostError::TooLong);
    }
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        let b = label.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= MAX_LABEL_LEN
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return Err(HostError::BadName);
        }
    }
    let top = labels[labels.len() - 1];
    if !top.as_bytes()[0].is_ascii_alphabetic() {
        return Err(HostError::BadName);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_kinds_of_host() {
        for (text, host) in [
            ("sip.example.org", Host::Name("sip.example.org".into())),
            ("localhost", Host::Name("localhost".into())),
            ("x1.example.", Host::Name("x1.example.".into())),
            ("a-b.c0m", Host::Name("a-b.c0m".into())),
            ("10.0.0.5", Host::V4(Ipv4Addr::new(10, 0, 0, 5))),
            ("[::1]", Host::V6(Ipv6Addr::LOCALHOST)),
            ("[2001:db8::10]", Host::V6("2001:db8::10".parse().unwrap())),
            (
                "[::ffff:10.0.0.1]",
                Host::V6("::ffff:10.0.0.1".parse().unwrap()),
            ),
        ] {
            assert_eq!(Host::parse(text), Ok(host.clone()), "{text}");
            assert_eq!(host.to_string(), text);
        }
    }

    #[test]
    fn over_long_names_are_refused() {
        // The other refusals: `super::super::grammar_refusals`.
        let long_label = format!("{}.example", "a".repeat(64));
        assert_eq!(Host::parse(&long_label), Err(HostError::BadName));
        let long_name = format!("{}example", "a.".repeat(127));
        assert_eq!(Host::parse(&long_name), Err(HostError::TooLong));
    }

    #[test]
    fn claims_may_name_a_bare_ipv6_address_which_is_then_bracketed() {
        let h = Host::parse_claim("::1").unwrap();
        assert_eq!(h.to_string(), "[::1]");
        assert_eq!(h.bare(), "::1");
        assert_eq!(Host::parse_claim("[::1]"), Ok(h));
        assert_eq!(Host::parse_claim("a]b[:c"), Err(HostError::BadIpv6));
        assert_eq!(Host::parse_claim("::1]"), Err(HostError::BadIpv6));
    }

    #[test]
    fn names_compare_case_insensitively() {
        let a = Host::parse("SIP.Example.org").unwrap();
        assert!(a.same(&Host::parse("sip.example.org.").unwrap()));
        assert!(!a.same(&Host::parse("sip.example.net").unwrap()));
        let v6 = Host::parse("[0:0::1]").unwrap();
        assert!(v6.same(&Host::parse("[::1]").unwrap()));
    }
}
