//! The WebSocket Origin check (cross-site WebSocket hijacking and DNS rebinding guard).
//!
//! A browser's upgrade carries the page's origin. It is accepted when it is one of the gateway's
//! own origins — `public_origin`, or when that is unset the listen address and `localhost` (and,
//! listening on a wildcard address, the address the connection arrived on) — or one of
//! `allowed_origins`. The request's own `Host` (or `:authority`) is never consulted: after DNS
//! rebinding, a page on `http://evil.example:8088` whose name now points at the gateway sends
//! `Host: evil.example:8088` too, so "origin equals host" proves nothing.
//!
//! Origins are compared as (scheme, host, port): schemes case-insensitively with `ws` read as
//! `http` and `wss` as `https`, host names in lower case, IP addresses in their canonical text,
//! default ports (80, 443) filled in. Anything that is not a plain `scheme://host[:port]`
//! (a path, user info, `null`) matches nothing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// A scheme as browsers compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http` or `ws`.
    Http,
    /// `https` or `wss`.
    Https,
}

impl Scheme {
    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A normalised origin: `https://GW.example.org`, `wss://gw.example.org:443/` are the same
/// origin; `http://gw.example.org` is another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    scheme: Scheme,
    /// Lower-case name, dotted IPv4, or bracketed canonical IPv6.
    host: String,
    port: u16,
}

/// Why a string is not an origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginError {
    /// No `scheme://`, or a scheme other than http, https, ws, wss.
    Scheme,
    /// An empty or malformed host (user info, characters a host name cannot have).
    Host,
    /// A port that is not a number from 1 to 65535.
    Port,
    /// Something after the host and port other than a single `/`.
    Path,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OriginError::Scheme => "no http://, https://, ws:// or wss:// scheme",
            OriginError::Host => "not a host name or IP address",
            OriginError::Port => "the port is not a number from 1 to 65535",
            OriginError::Path => "an origin has no path, query or fragment",
        })
    }
}

impl std::error::Error for OriginError {}

impl FromStr for Origin {
    type Err = OriginError;

    fn from_str(s: &str) -> Result<Origin, OriginError> {
        let s = s.trim();
        let (scheme, rest) = s.split_once("://").ok_or(OriginError::Scheme)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" | "ws" => Scheme::Http,
            "https" | "wss" => Scheme::Https,
            _ => return Err(OriginError::Scheme),
        };
        let authority = match rest.find(['/', '?', '#']) {
            Some(i) if &rest[i..] == "/" => &rest[..i],
            Some(_) => return Err(OriginError::Path),
            None => rest,
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (ip, after) = v6.split_once(']').ok_or(OriginError::Host)?;
            let ip: Ipv6Addr = ip.parse().map_err(|_| OriginError::Host)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or(OriginError::Host)?),
            };
            (format!("[{ip}]"), port)
        } else {
            let (host, port) = match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            let host_ok = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            if !host_ok {
                return Err(OriginError::Host);
            }
            let host = match host.parse::<Ipv4Addr>() {
                Ok(ip) => ip.to_string(),
                Err(_) => host.to_ascii_lowercase(),
            };
            (host, port)
        };
        let port = match port {
            None => scheme.default_port(),
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                match p.parse::<u16>() {
                    Ok(0) | Err(_) => return Err(OriginError::Port),
                    Ok(p) => p,
                }
            }
            Some(_) => return Err(OriginError::Port),
        };
        Ok(Origin { scheme, host, port })
    }
}

impl Origin {
    fn of_ip(scheme: Scheme, ip: IpAddr, port: u16) -> Origin {
        let host = match ip.to_canonical() {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        Origin { scheme, host, port }
    }
}

/// Which origins may open WebSockets.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    own: Vec<Origin>,
    allowed: Vec<Origin>,
    /// Listening on a wildcard address without `public_origin`: the scheme and port to pair
    /// with the local address each connection arrived on.
    arrival: Option<(Scheme, u16)>,
}

/// A configured origin that does not parse; names the key and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOrigin {
    /// `public_origin` or `allowed_origins`.
    pub key: &'static str,
    /// The value as configured.
    pub value: String,
    /// What is wrong with it.
    pub error: OriginError,
}

impl fmt::Display for BadOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} entry {:?} must look like http://host[:port] or https://host[:port]: {}",
            self.key, self.value, self.error
        )
    }
}

impl std::error::Error for BadOrigin {}

/// Parses the origins configured under `key`.
pub fn parse_list(key: &'static str, values: &[String]) -> Result<Vec<Origin>, BadOrigin> {
    values
        .iter()
        .map(|v| {
            v.parse().map_err(|error| BadOrigin {
                key,
                value: v.clone(),
                error,
            })
        })
        .collect()
}

impl OriginPolicy {
    /// The policy for a gateway listening on `listen` (the bound address, port included),
    /// serving TLS or not.
    pub fn new(
        public_origin: &[String],
        allowed_origins: &[String],
        listen: SocketAddr,
        tls: bool,
    ) -> Result<OriginPolicy, BadOrigin> {
        let allowed = parse_list("allowed_origins", allowed_origins)?;
        if !public_origin.is_empty() {
            return Ok(OriginPolicy {
                own: parse_list("public_origin", public_origin)?,
                allowed,
                arrival: None,
            });
        }
        let scheme = if tls { Scheme::Https } else { Scheme::Http };
        let port = listen.port();
        let mut own = vec![Origin {
            scheme,
            host: "localhost".into(),
            port,
        }];
        let mut arrival = None;
        if listen.ip().is_unspecified() {
            arrival = Some((scheme, port));
        } else {
            own.push(Origin::of_ip(scheme, listen.ip(), port));
        }
        Ok(OriginPolicy {
            own,
            allowed,
            arrival,
        })
    }

    /// Whether an upgrade with this `Origin` header, on a connection that arrived at `local`,
    /// may proceed. No header (not a browser): yes.
    pub fn allows(&self, origin: Option<&str>, local: Option<SocketAddr>) -> bool {
        let Some(origin) = origin else { return true };
        let Ok(origin) = origin.parse::<Origin>() else {
            return false;
        };
        if self.own.contains(&origin) || self.allowed.contains(&origin) {
            return true;
        }
        match (self.arrival, local) {
            (Some((scheme, port)), Some(local)) => {
                origin == Origin::of_ip(scheme, local.ip(), port)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(s: &str) -> Origin {
        s.parse().unwrap()
    }

    #[test]
    fn normalisation() {
        assert_eq!(o("http://gw:80"), o("http://gw"));
        assert_eq!(
            o("HTTPS://GW.Example.ORG:443/"),
            o("https://gw.example.org")
        );
        assert_eq!(o("ws://gw:8088"), o("http://gw:8088"));
        assert_eq!(o("wss://gw"), o("https://gw:443"));
        assert_eq!(o("http://[::1]:8088"), o("http://[0:0::1]:8088"));
        assert_eq!(o("http://[2001:DB8::1]"), o("http://[2001:db8::1]:80"));
        assert_ne!(o("http://gw"), o("https://gw"));
        assert_ne!(o("http://gw:8080"), o("http://gw:8081"));
        assert_ne!(o("http://127.0.0.1"), o("http://localhost"));
    }

    #[test]
    fn not_origins() {
        for (bad, e) in [
            ("null", OriginError::Scheme),
            ("gw.example.org", OriginError::Scheme),
            ("ftp://gw", OriginError::Scheme),
            ("http://", OriginError::Host),
            ("http://user@gw", OriginError::Host),
            ("http://gw:80@evil", OriginError::Port),
            ("http://gw:8088.evil.example", OriginError::Port),
            ("http://[::1", OriginError::Host),
            ("http://[::1]x", OriginError::Host),
            ("http://[nope]:80", OriginError::Host),
            ("http://a:b:c", OriginError::Host),
            ("http://gw:", OriginError::Port),
            ("http://gw:0", OriginError::Port),
            ("http://gw:65536", OriginError::Port),
            ("http://gw:+80", OriginError::Port),
            ("http://gw/x", OriginError::Path),
            ("http://gw?x", OriginError::Path),
            ("http://gw//", OriginError::Path),
            ("http://gw é", OriginError::Host),
        ] {
            assert_eq!(bad.parse::<Origin>(), Err(e), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any string: no panic; a parsed origin is equal to itself re-parsed from its parts.
        #[test]
        fn origin_parser_never_panics(value in "\\PC{0,60}") {
            if let Ok(o) = value.parse::<Origin>() {
                let scheme = match o.scheme { Scheme::Http => "http", Scheme::Https => "https" };
                let again: Origin = format!("{scheme}://{}:{}", o.host, o.port).parse().unwrap();
                proptest::prop_assert_eq!(again, o);
            }
        }
    }

    #[test]
    fn own_origins_come_from_the_listen_address_never_the_host() {
        let listen: SocketAddr = "127.0.0.1:8088".parse().unwrap();
        let p = OriginPolicy::new(&[], &["https://crm.example.org".into()], listen, false).unwrap();
        let local = Some(listen);
        assert!(p.allows(None, local));
        for ok in [
            "http://127.0.0.1:8088",
            "http://localhost:8088",
            "ws://LOCALHOST:8088",
            "https://crm.example.org",
            "https://crm.example.org:443",
        ] {
            assert!(p.allows(Some(ok), local), "{ok}");
        }
        for bad in [
            "http://evil.example:8088",
            "https://127.0.0.1:8088",
            "http://127.0.0.1:8089",
            "http://127.0.0.1",
            "http://crm.example.org",
            "null",
            "",
        ] {
            assert!(!p.allows(Some(bad), local), "{bad}");
        }
        // TLS: the own origins are https.
        let p = OriginPolicy::new(&[], &[], listen, true).unwrap();
        assert!(p.allows(Some("https://localhost:8088"), local));
        assert!(!p.allows(Some("http://localhost:8088"), local));
    }

    #[test]
    fn wildcard_listen_addresses_accept_the_arrival_address() {
        let listen: SocketAddr = "0.0.0.0:8088".parse().unwrap();
        let p = OriginPolicy::new(&[], &[], listen, false).unwrap();
        let local = Some("192.0.2.10:8088".parse().unwrap());
        assert!(p.allows(Some("http://192.0.2.10:8088"), local));
        assert!(!p.allows(Some("http://192.0.2.11:8088"), local));
        assert!(!p.allows(Some("http://0.0.0.0:8088"), local));
        assert!(p.allows(Some("http://localhost:8088"), local));
        let v6: SocketAddr = "[::]:8088".parse().unwrap();
        let p = OriginPolicy::new(&[], &[], v6, false).unwrap();
        let mapped = Some("[::ffff:192.0.2.10]:8088".parse().unwrap());
        assert!(p.allows(Some("http://192.0.2.10:8088"), mapped));
        let local6 = Some("[2001:db8::10]:8088".parse().unwrap());
        assert!(p.allows(Some("http://[2001:db8::10]:8088"), local6));
    }

    #[test]
    fn public_origins_replace_the_defaults() {
        let listen: SocketAddr = "127.0.0.1:8088".parse().unwrap();
        let p = OriginPolicy::new(&["https://gw.example.org".into()], &[], listen, false).unwrap();
        assert!(p.allows(Some("https://gw.example.org:443"), Some(listen)));
        assert!(p.allows(Some("wss://gw.example.org"), Some(listen)));
        assert!(!p.allows(Some("http://localhost:8088"), Some(listen)));
        assert!(!p.allows(Some("http://127.0.0.1:8088"), Some(listen)));
        let e = OriginPolicy::new(&["gw.example.org".into()], &[], listen, false).unwrap_err();
        assert_eq!(e.key, "public_origin");
        assert!(e.to_string().contains("http://"), "{e}");
    }
}
