//! The `allowed_registrars` policy: which registrars a token may point the gateway at.
//!
//! A token names the host the gateway sends SIP to (`outboundProxy`, else `domain`). Legacy
//! tokens can be forged (docs/security.md), so without a policy anyone holding a legacy key's
//! keystream could make the gateway send packets to loopback or to internal services. The
//! policy is a list of entries, each either
//!
//! - a **host pattern**: `sip.example.org` (that name) or `*.example.org` (any name below
//!   `example.org`, not `example.org` itself), compared case-insensitively, or
//! - a **network**: a CIDR (`10.1.0.0/16`, `2001:db8::/32`) or a single address (`192.0.2.7`,
//!   the same as `/32` or `/128`).
//!
//! An empty list allows everything. Otherwise a registrar is allowed when
//!
//! 1. its **name** matches a host pattern — checked before any DNS query; when the list holds
//!    no host pattern, any name passes this step. A host that is an IP address is not a name:
//!    it must lie in one of the networks;
//! 2. and every **address** a packet would go to lies in one of the networks — when the list
//!    holds no network, any address passes this step (the host patterns then trust the DNS
//!    the gateway uses).
//!
//! The matching is written here because it is a few lines over `ipnet` (which parses and tests
//! the CIDRs); no crate offers this policy.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// One refused `allowed_registrars` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadEntry(pub String);

impl fmt::Display for BadEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "allowed_registrars entry {:?} is neither a host name, a *.domain pattern, an IP \
             address nor a CIDR",
            self.0
        )
    }
}

impl std::error::Error for BadEntry {}

/// A host pattern: an exact name, or `*.` and a domain (any name strictly below it).
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    Below(String),
}

/// The parsed `allowed_registrars` list (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct AllowedRegistrars {
    names: Vec<HostPattern>,
    nets: Vec<IpNet>,
}

/// A name as compared: lower case, without a trailing dot.
fn canonical(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `name` is a plausible DNS name (letters, digits, `-`, `_`, dot-separated labels).
fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl AllowedRegistrars {
    /// Parses the entries; the error names the first bad one.
    pub fn parse(entries: &[String]) -> Result<AllowedRegistrars, BadEntry> {
        let mut out = AllowedRegistrars::default();
        for e in entries {
            let t = e.trim();
            if let Ok(net) = t.parse::<IpNet>() {
                out.nets.push(net.trunc());
            } else if let Ok(ip) = t
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                out.nets.push(IpNet::from(ip));
            } else if let Some(domain) = t.strip_prefix("*.") {
                let d = canonical(domain);
                if !is_name(&d) {
                    return Err(BadEntry(e.clone()));
                }
                out.names.push(HostPattern::Below(d));
            } else {
                let n = canonical(t);
                if !is_name(&n) {
                    return Err(BadEntry(e.clone()));
                }
                out.names.push(HostPattern::Exact(n));
            }
        }
        Ok(out)
    }

    /// Whether the list is empty (everything allowed).
    pub fn is_empty(&self) -> bool {
        self.names.is_empty() && self.nets.is_empty()
    }

    /// Step 1 for a host name (not an IP address): matches a host pattern, or there is none.
    pub fn allows_name(&self, name: &str) -> bool {
        if self.names.is_empty() {
            return true;
        }
        let n = canonical(name);
        self.names.iter().any(|p| match p {
            HostPattern::Exact(e) => *e == n,
            HostPattern::Below(d) => n
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
        })
    }

    /// Step 2 for an address a packet would go to: in a network, or there is none.
    pub fn allows_addr(&self, ip: IpAddr) -> bool {
        self.nets.is_empty() || self.nets.iter().any(|n| n.contains(&canonical_ip(ip)))
    }

    /// A host that is an IP address: allowed only inside a network (when the list is not
    /// empty): host patterns never match an address.
    pub fn allows_literal(&self, ip: IpAddr) -> bool {
        self.is_empty() || self.nets.iter().any(|n| n.contains(&canonical_ip(ip)))
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`) are compared as the IPv4 address they reach.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl TryFrom<Vec<String>> for AllowedRegistrars {
    type Error = BadEntry;
    fn try_from(v: Vec<String>) -> Result<AllowedRegistrars, BadEntry> {
        AllowedRegistrars::parse(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowedRegistrars {
        AllowedRegistrars::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_allows_everything() {
        let a = list(&[]);
        assert!(a.is_empty());
        assert!(a.allows_name("localhost") && a.allows_addr(ip("127.0.0.1")));
        assert!(a.allows_literal(ip("::1")));
    }

    #[test]
    fn host_patterns() {
        let a = list(&["sip.example.org", "*.Example.NET."]);
        assert!(a.allows_name("sip.example.org") && a.allows_name("SIP.example.org."));
        assert!(!a.allows_name("evil.sip.example.org") && !a.allows_name("example.org"));
        assert!(a.allows_name("a.example.net") && a.allows_name("b.a.example.net"));
        assert!(!a.allows_name("example.net") && !a.allows_name("badexample.net"));
        assert!(!a.allows_name("example.net.evil.org"));
        // No networks listed: addresses are not restricted, but IP literals are (no pattern
        // matches an address).
        assert!(a.allows_addr(ip("10.0.0.1")));
        assert!(!a.allows_literal(ip("10.0.0.1")) && !a.allows_literal(ip("127.0.0.1")));
    }

    #[test]
    fn networks() {
        let a = list(&["10.1.0.0/16", "2001:db8::/32", "192.0.2.7", "[::1]"]);
        assert!(
            a.allows_name("anything.example"),
            "no host pattern: names pass"
        );
        assert!(a.allows_addr(ip("10.1.255.3")) && !a.allows_addr(ip("10.2.0.1")));
        assert!(a.allows_addr(ip("2001:db8:1::5")) && !a.allows_addr(ip("2001:db9::1")));
        assert!(a.allows_addr(ip("192.0.2.7")) && !a.allows_addr(ip("192.0.2.8")));
        assert!(a.allows_literal(ip("::1")) && !a.allows_literal(ip("127.0.0.1")));
        // An IPv4-mapped IPv6 address is the IPv4 address it reaches.
        assert!(a.allows_addr(ip("::ffff:10.1.0.9")) && !a.allows_addr(ip("::ffff:127.0.0.1")));
        // A CIDR with host bits set means its network.
        assert!(list(&["10.1.2.3/16"]).allows_addr(ip("10.1.9.9")));
    }

    #[test]
    fn bad_entries_are_named() {
        for bad in [
            "",
            "*.",
            "a..b",
            "sip example",
            "10.0.0.0/33",
            "*.10.0.0.0/8x",
            "a/b",
        ] {
            let e = AllowedRegistrars::parse(&[bad.to_string()]).unwrap_err();
            assert_eq!(e, BadEntry(bad.to_string()));
            assert!(e.to_string().contains("allowed_registrars"), "{e}");
        }
    }
}
