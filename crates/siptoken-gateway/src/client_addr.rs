//! Who the client is: the address every per-client limit counts (login rate, sessions and
//! connections per address) and the logs name.
//!
//! Directly connected, it is the TCP peer. Behind front proxies listed in `trusted_proxies`
//! (and only then), it is what they report: the source of a PROXY protocol header
//! (module `proxy_protocol`), and per request the right-most address in `X-Forwarded-For` or
//! `Forwarded` (RFC 7239) that is not itself a trusted proxy — everything left of it was written
//! by the client and proves nothing. IPv6 clients are counted per /64 ([`ClientKey`]), the
//! smallest prefix a single site is usually given, so one host cannot multiply its limits by
//! cycling through its own addresses.
//!
//! The header parsers are hand-written because they are a few lines each over `str` and no
//! well-kept crate parses both header forms with the "right-most untrusted" rule; CIDRs are
//! `ipnet`'s.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::http::HeaderMap;
use serde::Deserialize;

/// The key per-address limits count a client under: its IPv4 address, or the /64 prefix of its
/// IPv6 address (IPv4-mapped IPv6 addresses count as IPv4).
///
/// ```
/// # use siptoken_gateway::client_addr::ClientKey;
/// let a = ClientKey::of("2001:db8::1".parse().unwrap());
/// assert_eq!(a, ClientKey::of("2001:db8::ffff:1".parse().unwrap()));
/// assert_ne!(a, ClientKey::of("2001:db8:0:1::1".parse().unwrap()));
/// assert_eq!(ClientKey::of("::ffff:192.0.2.1".parse().unwrap()).to_string(), "192.0.2.1");
/// assert_eq!(a.to_string(), "2001:db8::/64");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 client.
    V4(Ipv4Addr),
    /// An IPv6 client's /64 prefix (the upper 64 bits).
    V6(u64),
}

impl ClientKey {
    /// The key of `ip`.
    pub fn of(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(v4),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientKey::V4(ip) => write!(f, "{ip}"),
            ClientKey::V6(prefix) => write!(f, "{}/64", Ipv6Addr::from(u128::from(*prefix) << 64)),
        }
    }
}

/// An entry of `trusted_proxies`: a network in CIDR notation (`10.0.0.0/8`, `fd00::/8`) or a
/// single address (`192.0.2.7`, `::1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(ipnet::IpNet);

/// A `trusted_proxies` entry that is neither an address nor a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCidr(pub String);

impl fmt::Display for BadCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not an IP address or a network in CIDR notation (e.g. 10.0.0.0/8)",
            self.0
        )
    }
}

impl std::error::Error for BadCidr {}

impl FromStr for Cidr {
    type Err = BadCidr;

    fn from_str(s: &str) -> Result<Cidr, BadCidr> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Cidr(ipnet::IpNet::from(ip.to_canonical())));
        }
        s.parse::<ipnet::IpNet>()
            .map(|n| Cidr(n.trunc()))
            .map_err(|_| BadCidr(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Cidr {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses match IPv4 networks).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

/// Whether `ip` is one of the `trusted_proxies`.
pub fn is_trusted(trusted: &[Cidr], ip: IpAddr) -> bool {
    trusted.iter().any(|c| c.contains(ip))
}

/// Which request header a trusted proxy reports the client in (`forwarded_header`). Only one
/// is read: a proxy that writes one passes the other through from the client unchanged, and
/// reading it would let the client choose its own address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy `option forwardfor`, Envoy,
    /// cloud load balancers). The default.
    #[default]
    #[serde(rename = "x-forwarded-for")]
    XForwardedFor,
    /// `Forwarded: for=client, for=proxy1` (RFC 7239).
    #[serde(rename = "forwarded")]
    Forwarded,
    /// Neither: only the PROXY protocol (or the TCP peer) names the client.
    #[serde(rename = "none")]
    None,
}

/// The client of one request that arrived from `peer` (the TCP peer, or the source a trusted
/// proxy gave in a PROXY protocol header): `peer` itself unless it is a trusted proxy, else the
/// right-most address of the forwarding header that is not a trusted proxy. When every listed
/// address is trusted, the left-most; when the walk meets a value that is not an address
/// (`unknown`, an obfuscated `_name`, garbage), the trusted hop that reported it.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[Cidr],
    which: ForwardedHeader,
) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(trusted, peer) {
        return peer;
    }
    let name = match which {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
        ForwardedHeader::None => return peer,
    };
    // Every field line of the header, in order, is one list (RFC 9110 §5.3).
    let mut hops: Vec<Option<IpAddr>> = Vec::new();
    for value in headers.get_all(name) {
        let Ok(value) = value.to_str() else {
            // Not visible ASCII: nothing in it can be trusted, nor anything left of it.
            hops.clear();
            hops.push(None);
            continue;
        };
        match which {
            ForwardedHeader::XForwardedFor => hops.extend(value.split(',').map(xff_element)),
            _ => hops.extend(forwarded_elements(value)),
        }
    }
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        match hop {
            Some(ip) if is_trusted(trusted, ip) => client = ip,
            Some(ip) => return ip,
            None => return client,
        }
    }
    client
}

/// One `X-Forwarded-For` element: `ip`, `ip:port` or `[ipv6]:port` (some proxies add the port).
fn xff_element(s: &str) -> Option<IpAddr> {
    node(s.trim())
}

/// An address with an optional port, IPv6 optionally in brackets (with a port, in brackets).
fn node(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    s.strip_prefix('[')?
        .strip_suffix(']')?
        .parse::<Ipv6Addr>()
        .ok()
        .map(|v6| IpAddr::V6(v6).to_canonical())
}

/// The `for=` node of each element of a `Forwarded` value (RFC 7239 §4), left to right: `None`
/// for an element without `for=`, or whose node is `unknown`, obfuscated or not an address.
/// A syntax error ends the list with `None` (nothing left of it is believed). `value` is
/// visible ASCII (what [`axum::http::HeaderValue::to_str`] passes).
fn forwarded_elements(value: &str) -> Vec<Option<IpAddr>> {
    let s = value.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    // The current element's `for=` node, once seen (the first one counts).
    let mut node_of_element: Option<Option<IpAddr>> = None;
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        let start = i;
        while i < s.len() && !matches!(s[i], b'=' | b';' | b',') {
            i += 1;
        }
        let name = value[start..i].trim();
        let mut pair_value = None;
        if s.get(i) == Some(&b'=') {
            i += 1;
            if s.get(i) == Some(&b'"') {
                // quoted-string, `\` escaping the next character.
                i += 1;
                let mut v = String::new();
                loop {
                    match s.get(i) {
                        None => {
                            out.push(None);
                            return out;
                        }
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if i + 1 < s.len() => {
                            v.push(s[i + 1] as char);
                            i += 2;
                        }
                        Some(&c) => {
                            v.push(c as char);
                            i += 1;
                        }
                    }
                }
                pair_value = Some(v);
            } else {
                let start = i;
                while i < s.len() && !matches!(s[i], b';' | b',' | b' ' | b'\t') {
                    i += 1;
                }
                pair_value = Some(value[start..i].to_owned());
            }
        }
        if name.eq_ignore_ascii_case("for") && node_of_element.is_none() {
            node_of_element = Some(pair_value.as_deref().and_then(node));
        }
        skip_ws(&mut i);
        match s.get(i) {
            Some(b';') => i += 1,
            Some(b',') => {
                out.push(node_of_element.take().flatten());
                i += 1;
            }
            None => {
                out.push(node_of_element.take().flatten());
                return out;
            }
            Some(_) => {
                out.push(None);
                return out;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    fn trusted() -> Vec<Cidr> {
        vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()]
    }

    /// The client address read as `which` from a request of the trusted proxy `peer` carrying
    /// the header `name` once for each of the values given.
    fn reported_by(
        peer: IpAddr,
        name: &'static str,
        which: ForwardedHeader,
    ) -> impl Fn(&[&str]) -> IpAddr {
        let t = trusted();
        move |values| {
            let pairs: Vec<_> = values.iter().map(|v| (name, *v)).collect();
            client_ip(peer, &headers(&pairs), &t, which)
        }
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.1.2.3/8".parse().unwrap();
        assert!(c.contains(ip("10.200.0.1")) && !c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.0.0.1")));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::1")) && !v6.contains(ip("2001:db9::1")));
        for bad in ["", "10.0.0.0/33", "example.org", "10.0.0.0/8/8", "::1/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let e = "nope".parse::<Cidr>().unwrap_err().to_string();
        assert!(e.contains("\"nope\"") && e.contains("CIDR"), "{e}");
    }

    #[test]
    fn untrusted_peers_are_the_client_whatever_they_send() {
        let h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        for which in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
            assert_eq!(
                client_ip(ip("192.0.2.1"), &h, &trusted(), which),
                ip("192.0.2.1")
            );
            assert_eq!(
                client_ip(ip("10.0.0.1"), &h, &[], which),
                ip("10.0.0.1"),
                "no trusted proxies: headers are never read"
            );
        }
    }

    #[test]
    fn x_forwarded_for_right_most_untrusted() {
        let peer = ip("10.0.0.1");
        let t = trusted();
        let xff = reported_by(peer, "x-forwarded-for", ForwardedHeader::XForwardedFor);
        assert_eq!(xff(&[]), peer, "no header: the proxy itself");
        assert_eq!(xff(&["203.0.113.5"]), ip("203.0.113.5"));
        assert_eq!(xff(&["198.51.100.1, 203.0.113.5"]), ip("203.0.113.5"));
        assert_eq!(xff(&["203.0.113.5, 10.9.9.9"]), ip("203.0.113.5"));
        assert_eq!(xff(&["198.51.100.1", "203.0.113.5"]), ip("203.0.113.5"));
        assert_eq!(xff(&["10.1.1.1, 10.2.2.2"]), ip("10.1.1.1"), "all trusted");
        assert_eq!(xff(&["203.0.113.5:4711"]), ip("203.0.113.5"));
        assert_eq!(xff(&["[2001:db8::1]:80"]), ip("2001:db8::1"));
        assert_eq!(xff(&["2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(xff(&["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(xff(&["::ffff:203.0.113.5"]), ip("203.0.113.5"));
        // Garbage stops the walk at the trusted hop that reported it.
        assert_eq!(xff(&["203.0.113.5, unknown"]), peer);
        assert_eq!(xff(&["203.0.113.5, nonsense, 10.2.2.2"]), ip("10.2.2.2"));
        assert_eq!(xff(&["203.0.113.5,"]), peer);
        // The other header is not read.
        let h = headers(&[("forwarded", "for=203.0.113.5")]);
        assert_eq!(
            client_ip(peer, &h, &t, ForwardedHeader::XForwardedFor),
            peer
        );
        assert_eq!(client_ip(peer, &h, &t, ForwardedHeader::None), peer);
    }

    #[test]
    fn forwarded_rfc7239() {
        let peer = ip("::1");
        let t = trusted();
        let fwd = reported_by(peer, "forwarded", ForwardedHeader::Forwarded);
        assert_eq!(
            fwd(&["for=192.0.2.60;proto=http;by=203.0.113.43"]),
            ip("192.0.2.60")
        );
        assert_eq!(
            fwd(&["For=\"[2001:db8:cafe::17]:4711\""]),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(fwd(&["for=\"192.0.2.60:80\""]), ip("192.0.2.60"));
        assert_eq!(
            fwd(&["for=192.0.2.43, for=198.51.100.17"]),
            ip("198.51.100.17")
        );
        assert_eq!(
            fwd(&["for=192.0.2.43;proto=https, for=10.0.0.2;by=\"a,b;c\""]),
            ip("192.0.2.43"),
            "quoted separators stay inside their value"
        );
        assert_eq!(
            fwd(&["for=192.0.2.43", "for=198.51.100.17"]),
            ip("198.51.100.17")
        );
        assert_eq!(fwd(&["proto=https;for=192.0.2.1"]), ip("192.0.2.1"));
        assert_eq!(
            fwd(&["for=\"\\1\\9\\2.0.2.1\""]),
            ip("192.0.2.1"),
            "quoted-pair"
        );
        for opaque in [
            "for=unknown",
            "for=_hidden",
            "for=\"_gazonk\"",
            "proto=https",
            "for=192.0.2.1 junk",
            "for=\"192.0.2.1",
            "for",
        ] {
            assert_eq!(fwd(&[opaque]), peer, "{opaque}");
        }
        // An opaque hop stops the walk: the client left of it is not believed.
        assert_eq!(fwd(&["for=192.0.2.1, for=_hidden"]), peer);
        let h = headers(&[("x-forwarded-for", "192.0.2.1")]);
        assert_eq!(client_ip(peer, &h, &t, ForwardedHeader::Forwarded), peer);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any visible-ASCII header value: no panic.
        #[test]
        fn forwarding_headers_never_panic(value in "[ -~]{0,120}", forwarded in proptest::bool::ANY) {
            let (name, which) = if forwarded {
                ("forwarded", ForwardedHeader::Forwarded)
            } else {
                ("x-forwarded-for", ForwardedHeader::XForwardedFor)
            };
            if let Ok(v) = axum::http::HeaderValue::from_str(&value) {
                let mut h = HeaderMap::new();
                h.append(name, v);
                let _ = client_ip(ip("10.0.0.1"), &h, &trusted(), which);
            }
        }

        /// A chain of trusted (10.0.0.x) and untrusted (203.0.113.x) hops, in both header forms:
        /// the client is the right-most untrusted hop, else the left-most.
        #[test]
        fn the_client_is_the_right_most_untrusted_hop(
            hops in proptest::collection::vec((proptest::bool::ANY, 0u8..=255), 1..8),
        ) {
            let hops: Vec<IpAddr> = hops
                .iter()
                .map(|(t, n)| IpAddr::from(if *t { [10, 0, 0, *n] } else { [203, 0, 113, *n] }))
                .collect();
            let expected = hops
                .iter()
                .rev()
                .find(|a| !is_trusted(&trusted(), **a))
                .copied()
                .unwrap_or(hops[0]);
            let list = |prefix: &str| {
                hops.iter()
                    .map(|a| format!("{prefix}{a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let peer = ip("10.0.0.1");
            let xff = headers(&[("x-forwarded-for", &list(""))]);
            let fwd = headers(&[("forwarded", &list("for="))]);
            proptest::prop_assert_eq!(
                client_ip(peer, &xff, &trusted(), ForwardedHeader::XForwardedFor),
                expected
            );
            proptest::prop_assert_eq!(
                client_ip(peer, &fwd, &trusted(), ForwardedHeader::Forwarded),
                expected
            );
        }
    }

    #[test]
    fn keys_aggregate_ipv6_by_64() {
        // (a, b, whether they are one client)
        for (a, b, same) in [
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", true),
            ("2001:db8:1:2::", "2001:db8:1:3::", false),
            ("::ffff:192.0.2.1", "192.0.2.1", true),
            ("192.0.2.1", "192.0.2.2", false),
        ] {
            let (ka, kb) = (ClientKey::of(ip(a)), ClientKey::of(ip(b)));
            assert_eq!(ka == kb, same, "{a} ({ka}) and {b} ({kb})");
        }
        assert_eq!(
            ClientKey::of(ip("2001:db8:1:2::9")).to_string(),
            "2001:db8:1:2::/64"
        );
    }
}
