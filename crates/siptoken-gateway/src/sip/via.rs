//! The Via header (RFC 3261 §20.42, §25.1): `SIP/2.0/UDP host[:port];branch=…;rport;…`, read
//! to match a response to its transaction by the topmost Via's `branch`.

use super::host::{Host, HostError};
use super::params::{self, is_token_char, Param, ParamError};

/// One Via value (one element of the Via list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// The transport (`UDP`, `TCP`, `TLS`, …) as written.
    pub transport: &'a str,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, when written.
    pub port: Option<u16>,
    /// The parameters (`branch`, `received`, `rport`, …).
    pub params: Vec<Param<'a>>,
}

/// Why a value is not a Via.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ViaError {
    /// Not `SIP/2.0/transport` (the protocol name and version are case-insensitive).
    #[error("bad sent-protocol")]
    Protocol,
    /// The sent-by host is not a host.
    #[error("bad sent-by host: {0}")]
    Host(#[from] HostError),
    /// The sent-by port is not a number 0–65535.
    #[error("bad sent-by port")]
    Port,
    /// The parameters are not valid.
    #[error("{0}")]
    Params(#[from] ParamError),
}

impl<'a> Via<'a> {
    /// Parses one Via value.
    pub fn parse(value: &'a str) -> Result<Via<'a>, ViaError> {
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport, with optional
        // white space around each slash.
        let mut rest = value.trim_start_matches([' ', '\t']);
        let mut parts = [""; 3];
        for (n, part) in parts.iter_mut().enumerate() {
            if n > 0 {
                rest = rest
                    .trim_start_matches([' ', '\t'])
                    .strip_prefix('/')
                    .ok_or(ViaError::Protocol)?
                    .trim_start_matches([' ', '\t']);
            }
            let end = rest
                .bytes()
                .position(|b| !is_token_char(b))
                .unwrap_or(rest.len());
            if end == 0 {
                return Err(ViaError::Protocol);
            }
            *part = &rest[..end];
            rest = &rest[end..];
        }
        if !parts[0].eq_ignore_ascii_case("SIP") || parts[1] != "2.0" {
            return Err(ViaError::Protocol);
        }
        let sent_by = rest.trim_start_matches([' ', '\t']);
        if sent_by.len() == rest.len() {
            return Err(ViaError::Protocol);
        }
        let end = if sent_by.starts_with('[') {
            sent_by.find(']').map_or(sent_by.len(), |i| i + 1)
        } else {
            sent_by.find([':', ';', ' ', '\t']).unwrap_or(sent_by.len())
        };
        let host = Host::parse(&sent_by[..end])?;
        let mut tail = sent_by[end..].trim_start_matches([' ', '\t']);
        let mut port = None;
        if let Some(p) = tail.strip_prefix(':') {
            let p = p.trim_start_matches([' ', '\t']);
            let digits = p
                .bytes()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(p.len());
            if digits == 0 || digits > 5 {
                return Err(ViaError::Port);
            }
            port = Some(p[..digits].parse().map_err(|_| ViaError::Port)?);
            tail = &p[digits..];
        }
        Ok(Via {
            transport: parts[2],
            host,
            port,
            params: params::parse(tail)?,
        })
    }

    /// The `branch` parameter.
    pub fn branch(&self) -> Option<&'a str> {
        params::find(&self.params, "branch").and_then(|p| p.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    #[test]
    fn parses_sent_protocol_sent_by_and_params() {
        let cases = [
            (
                "SIP/2.0/UDP 127.0.0.1:5070;rport=5070;branch=z9hG4bKabc;received=127.0.0.1",
                "UDP",
                Host::parse("127.0.0.1").unwrap(),
                Some(5070),
                Some("z9hG4bKabc"),
            ),
            (
                "sip / 2.0 / tcp [::1]:5060 ;branch=z9hG4bK1;rport",
                "tcp",
                Host::V6(Ipv6Addr::LOCALHOST),
                Some(5060),
                Some("z9hG4bK1"),
            ),
            (
                "SIP/2.0/TLS sip.example.org",
                "TLS",
                Host::parse("sip.example.org").unwrap(),
                None,
                None,
            ),
        ];
        for (text, transport, host, port, branch) in cases {
            let v = Via::parse(text).unwrap();
            assert_eq!(v.transport, transport, "{text}");
            assert_eq!(v.host, host, "{text}");
            assert_eq!((v.port, v.branch()), (port, branch), "{text}");
        }
    }
}
