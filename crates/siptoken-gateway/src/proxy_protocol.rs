//! The PROXY protocol v2 (HAProxy's binary header, <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>)
//! with which a TCP front proxy (HAProxy `send-proxy-v2`, AWS NLB, nginx `proxy_protocol on` in
//! its stream module, …) tells the gateway who its client is.
//!
//! With `proxy_protocol = true`, every connection from a `trusted_proxies` address must start
//! with the header (the specification forbids guessing whether one is there); connections from
//! other addresses are ordinary clients and never read as PROXY headers. The header is parsed
//! by the `ppp` crate; this module reads exactly the header's bytes off the connection (the
//! HTTP bytes behind it stay for the HTTP server), bounds its size, and says what it means for
//! the gateway: a `PROXY` command names the client; `LOCAL` (the proxy's own health checks) and
//! address families without an IP (UNIX, unspecified) leave the proxy as the peer. Version 1
//! (text) headers are not accepted.

use std::fmt;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The v2 signature every header starts with.
const SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Fixed part of a header: signature, version and command, family and protocol, length.
const FIXED: usize = 16;

/// Largest header accepted, bytes (addresses plus TLVs). IPv6 addresses take 36; proxies add a
/// few TLVs (ALPN, authority, TLS details, a unique id): a few hundred bytes in practice.
pub const MAX_HEADER: usize = 1024;

/// Why a connection's PROXY header was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ProxyHeaderError {
    /// The connection does not start with the v2 signature (a proxy that does not send the
    /// header, a version 1 text header, or a client talking HTTP directly).
    NoSignature,
    /// The header announces more than [`MAX_HEADER`] bytes.
    TooLong(usize),
    /// The header is malformed (version, command, family or length); the text says which.
    Invalid(String),
    /// The connection ended or failed before the header was complete.
    Io(std::io::ErrorKind),
}

impl fmt::Display for ProxyHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyHeaderError::NoSignature => {
                f.write_str("no PROXY protocol v2 header from a trusted proxy")
            }
            ProxyHeaderError::TooLong(n) => {
                write!(
                    f,
                    "PROXY protocol header of {n} bytes (at most {MAX_HEADER})"
                )
            }
            ProxyHeaderError::Invalid(why) => write!(f, "invalid PROXY protocol header: {why}"),
            ProxyHeaderError::Io(kind) => write!(f, "PROXY protocol header cut short: {kind}"),
        }
    }
}

impl std::error::Error for ProxyHeaderError {}

/// What a complete header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `PROXY` over TCP/UDP with IP addresses: the client's address and port.
    Client(SocketAddr),
    /// `LOCAL`, or an address family without an IP: the connection is the proxy's own.
    Local,
}

/// How many bytes the header whose first [`FIXED`] bytes are `fixed` takes in all.
pub fn header_length(fixed: &[u8; FIXED]) -> Result<usize, ProxyHeaderError> {
    if &fixed[..12] != SIGNATURE {
        return Err(ProxyHeaderError::NoSignature);
    }
    let total = FIXED + u16::from_be_bytes([fixed[14], fixed[15]]) as usize;
    if total > MAX_HEADER {
        return Err(ProxyHeaderError::TooLong(total));
    }
    Ok(total)
}

/// Parses one complete header (exactly [`header_length`] bytes).
pub fn parse(header: &[u8]) -> Result<ProxyHeader, ProxyHeaderError> {
    use ppp::v2::{Addresses, Command, Header};
    let h = Header::try_from(header).map_err(|e| match e {
        ppp::v2::ParseError::Prefix => ProxyHeaderError::NoSignature,
        e => ProxyHeaderError::Invalid(e.to_string()),
    })?;
    if h.len() != header.len() {
        return Err(ProxyHeaderError::Invalid(format!(
            "{} bytes announced, {} given",
            h.len(),
            header.len()
        )));
    }
    Ok(match (h.command, h.addresses) {
        (Command::Local, _) => ProxyHeader::Local,
        (Command::Proxy, Addresses::IPv4(a)) => {
            ProxyHeader::Client(SocketAddr::from((a.source_address, a.source_port)))
        }
        (Command::Proxy, Addresses::IPv6(a)) => ProxyHeader::Client(SocketAddr::from((
            a.source_address.to_canonical(),
            a.source_port,
        ))),
        (Command::Proxy, Addresses::Unix(_) | Addresses::Unspecified) => ProxyHeader::Local,
    })
}

/// Reads the header at the start of `io`, and nothing after it. The caller bounds the time
/// (the handshake timeout).
pub async fn read<I: AsyncRead + Unpin>(io: &mut I) -> Result<ProxyHeader, ProxyHeaderError> {
    let io_error = |e: std::io::Error| ProxyHeaderError::Io(e.kind());
    let mut fixed = [0u8; FIXED];
    // The signature first, so a client that sends a short HTTP request is told apart at once.
    io.read_exact(&mut fixed[..12]).await.map_err(io_error)?;
    if &fixed[..12] != SIGNATURE {
        return Err(ProxyHeaderError::NoSignature);
    }
    io.read_exact(&mut fixed[12..]).await.map_err(io_error)?;
    let total = header_length(&fixed)?;
    let mut header = vec![0u8; total];
    header[..FIXED].copy_from_slice(&fixed);
    io.read_exact(&mut header[FIXED..])
        .await
        .map_err(io_error)?;
    parse(&header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4_header(command: u8, tlvs: &[u8]) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(0x11);
        h.extend_from_slice(&((12 + tlvs.len()) as u16).to_be_bytes());
        h.extend_from_slice(&[203, 0, 113, 5, 192, 0, 2, 1]);
        h.extend_from_slice(&4711u16.to_be_bytes());
        h.extend_from_slice(&443u16.to_be_bytes());
        h.extend_from_slice(tlvs);
        h
    }

    fn v6_header() -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.extend_from_slice(&[0x21, 0x21, 0, 36]);
        let src: std::net::Ipv6Addr = "2001:db8::5".parse().unwrap();
        let dst: std::net::Ipv6Addr = "2001:db8::1".parse().unwrap();
        h.extend_from_slice(&src.octets());
        h.extend_from_slice(&dst.octets());
        h.extend_from_slice(&[0x12, 0x34, 0x01, 0xbb]);
        h
    }

    async fn read_all(bytes: &[u8]) -> (Result<ProxyHeader, ProxyHeaderError>, Vec<u8>) {
        let mut io = bytes;
        let r = read(&mut io).await;
        (r, io.to_vec())
    }

    #[tokio::test]
    async fn reads_exactly_the_header() {
        let mut bytes = v4_header(1, &[]);
        bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (r, rest) = read_all(&bytes).await;
        assert_eq!(
            r,
            Ok(ProxyHeader::Client("203.0.113.5:4711".parse().unwrap()))
        );
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
        // With TLVs (here a NOOP and an authority), skipped.
        let mut bytes = v4_header(1, &[0x04, 0, 2, 0, 0, 0x02, 0, 3, b'a', b'.', b'b']);
        bytes.push(b'X');
        let (r, rest) = read_all(&bytes).await;
        assert_eq!(
            r,
            Ok(ProxyHeader::Client("203.0.113.5:4711".parse().unwrap()))
        );
        assert_eq!(rest, b"X");
        let (r, _) = read_all(&v6_header()).await;
        assert_eq!(
            r,
            Ok(ProxyHeader::Client("[2001:db8::5]:4660".parse().unwrap()))
        );
    }

    #[tokio::test]
    async fn local_and_addressless_headers_are_the_proxy_itself() {
        let (r, _) = read_all(&v4_header(0, &[])).await;
        assert_eq!(r, Ok(ProxyHeader::Local));
        let mut unspec = SIGNATURE.to_vec();
        unspec.extend_from_slice(&[0x21, 0x00, 0, 0]);
        assert_eq!(read_all(&unspec).await.0, Ok(ProxyHeader::Local));
        let mut unix = SIGNATURE.to_vec();
        unix.extend_from_slice(&[0x21, 0x31, 0, 216]);
        unix.extend_from_slice(&[0u8; 216]);
        assert_eq!(read_all(&unix).await.0, Ok(ProxyHeader::Local));
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_v2_header() {
        let (r, _) = read_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(r, Err(ProxyHeaderError::NoSignature));
        let (r, _) = read_all(b"PROXY TCP4 203.0.113.5 192.0.2.1 4711 443\r\n").await;
        assert_eq!(
            r,
            Err(ProxyHeaderError::NoSignature),
            "version 1 is not accepted"
        );
        let (r, _) = read_all(b"GET /").await;
        assert!(matches!(r, Err(ProxyHeaderError::Io(_))), "{r:?}");
        // Version 1 in the v2 layout, an unknown command, family or protocol.
        for (at, byte) in [(12, 0x11), (12, 0x22), (13, 0x41), (13, 0x13)] {
            let mut h = v4_header(1, &[]);
            h[at] = byte;
            let (r, _) = read_all(&h).await;
            assert!(matches!(r, Err(ProxyHeaderError::Invalid(_))), "{r:?}");
        }
        // A length too short for the family's addresses.
        let mut h = v4_header(1, &[]);
        h[15] = 4;
        h.truncate(20);
        assert!(matches!(
            read_all(&h).await.0,
            Err(ProxyHeaderError::Invalid(_))
        ));
        // Cut short, and too long.
        let h = v4_header(1, &[]);
        let (r, _) = read_all(&h[..20]).await;
        assert_eq!(
            r,
            Err(ProxyHeaderError::Io(std::io::ErrorKind::UnexpectedEof))
        );
        let mut h = v4_header(1, &[]);
        h[14..16].copy_from_slice(&2000u16.to_be_bytes());
        assert_eq!(read_all(&h).await.0, Err(ProxyHeaderError::TooLong(2016)));
        let e = ProxyHeaderError::TooLong(2016).to_string();
        assert!(e.contains("2016") && e.contains("1024"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any bytes after the signature: no panic, and a header is read only when it is
        /// exactly as long as it says.
        #[test]
        fn headers_never_panic(rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut bytes = SIGNATURE.to_vec();
            bytes.extend_from_slice(&rest);
            let _ = parse(&bytes);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let mut io = &bytes[..];
            if rt.block_on(read(&mut io)).is_ok() {
                let used = bytes.len() - io.len();
                proptest::prop_assert_eq!(used, 16 + u16::from_be_bytes([bytes[14], bytes[15]]) as usize);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_truncations() {
        let full = v6_header();
        for n in 0..full.len() {
            assert!(parse(&full[..n]).is_err(), "{n}");
        }
        assert!(parse(&full).is_ok());
    }
}
