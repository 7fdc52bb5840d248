//! SIP transports for one registration: a place on the UDP socket shared with every other
//! registration to the same registrar ([`super::udp`]: responses and requests are told apart by
//! a route the registration carries in its Call-ID and Contact), or a TCP or TLS connection of
//! its own (rustls, the server certificate verified against the configured CAs and the host
//! name the token names) on its own ephemeral local port.
//!
//! ICMP port-unreachable on the (connected) UDP socket and a refused or reset connection
//! become [`TransportError::Unreachable`].

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::message::{self, Message, ParseError};
use super::udp::UdpRoute;

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UDP (retransmissions by the transaction layer).
    Udp,
    /// TCP (reliable; Content-Length framing).
    Tcp,
    /// TLS over TCP (as TCP, encrypted and the registrar authenticated).
    Tls,
}

impl Kind {
    /// `UDP` / `TCP` / `TLS` as written in Via.
    pub fn via_name(self) -> &'static str {
        match self {
            Kind::Udp => "UDP",
            Kind::Tcp => "TCP",
            Kind::Tls => "TLS",
        }
    }

    /// Whether this is a connection (TCP or TLS) rather than datagrams.
    pub fn is_stream(self) -> bool {
        self != Kind::Udp
    }
}

/// A transport failure.
#[derive(Debug)]
pub enum TransportError {
    /// The peer refused (ICMP unreachable, TCP RST) or could not be reached or resolved.
    Unreachable(String),
    /// The TCP connection closed.
    Closed,
    /// Another I/O error.
    Io(io::Error),
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Unreachable(why) => write!(f, "unreachable: {why}"),
            TransportError::Closed => f.write_str("connection closed by the peer"),
            TransportError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for TransportError {}

fn classify(e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::ConnectionRefused
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable
        | io::ErrorKind::AddrNotAvailable => TransportError::Unreachable(e.to_string()),
        _ => TransportError::Io(e),
    }
}

enum Inner {
    Udp(UdpRoute),
    Tcp(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// What a TLS connection needs: the client configuration (trusted CAs) and the name the
/// registrar's certificate must carry.
#[derive(Clone)]
pub struct TlsTarget {
    /// rustls client configuration.
    pub config: std::sync::Arc<rustls::ClientConfig>,
    /// Host name or IP address to verify the certificate against (and to send as SNI).
    pub name: rustls::pki_types::ServerName<'static>,
}

/// A socket connected to one registrar (or outbound proxy).
pub struct SipSocket {
    inner: Inner,
    kind: Kind,
    local: SocketAddr,
    peer: SocketAddr,
    /// TCP and TLS: bytes received but not yet parsed.
    buf: Vec<u8>,
    /// TLS: how to connect again.
    tls: Option<TlsTarget>,
}

impl SipSocket {
    /// Opens a transport from `bind` to `peer`: for UDP, joins the socket shared with `peer`
    /// under `route` (unique per registration; see [`super::udp`]); for TCP and TLS, a new
    /// connection from a fresh ephemeral port. `tls` is required for [`Kind::Tls`] (its absence
    /// is [`TransportError::Unreachable`]). `timeout` bounds the TCP connect and the TLS
    /// handshake each.
    pub async fn connect(
        kind: Kind,
        bind: IpAddr,
        peer: SocketAddr,
        timeout: Duration,
        tls: Option<TlsTarget>,
        route: &str,
    ) -> Result<SipSocket, TransportError> {
        let bind = if bind.is_ipv4() != peer.is_ipv4() && bind.is_unspecified() {
            if peer.is_ipv4() {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            }
        } else {
            bind
        };
        let inner = match kind {
            Kind::Udp => Inner::Udp(UdpRoute::join(bind, peer, route).map_err(classify)?),
            Kind::Tcp | Kind::Tls => {
                let s = if peer.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .map_err(TransportError::Io)?;
                s.bind(SocketAddr::new(bind, 0))
                    .map_err(TransportError::Io)?;
                let stream = tokio::time::timeout(timeout, s.connect(peer))
                    .await
                    .map_err(|_| {
                        TransportError::Unreachable(format!("TCP connect to {peer} timed out"))
                    })?
                    .map_err(classify)?;
                stream.set_nodelay(true).map_err(TransportError::Io)?;
                if kind == Kind::Tcp {
                    Inner::Tcp(stream)
                } else {
                    let t = tls.as_ref().ok_or_else(|| {
                        TransportError::Unreachable(
                            "SIP over TLS is not configured (no CA bundle)".into(),
                        )
                    })?;
                    let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                    let name = t.name.clone();
                    let s = tokio::time::timeout(timeout, connector.connect(name, stream))
                        .await
                        .map_err(|_| {
                            TransportError::Unreachable(format!(
                                "TLS handshake with {peer} timed out"
                            ))
                        })?
                        .map_err(|e| {
                            TransportError::Unreachable(format!(
                                "TLS handshake with {peer} failed: {e}"
                            ))
                        })?;
                    Inner::Tls(Box::new(s))
                }
            }
        };
        let local = match &inner {
            Inner::Udp(s) => Ok(s.local_addr()),
            Inner::Tcp(s) => s.local_addr(),
            Inner::Tls(s) => s.get_ref().0.local_addr(),
        }
        .map_err(TransportError::Io)?;
        Ok(SipSocket {
            inner,
            kind,
            local,
            peer,
            buf: Vec::new(),
            tls,
        })
    }

    /// The TLS target this socket was opened with (to reconnect).
    pub fn tls_target(&self) -> Option<TlsTarget> {
        self.tls.clone()
    }

    /// The transport kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The local address (for Via and Contact).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The registrar's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one message.
    pub async fn send(&mut self, data: &[u8]) -> Result<(), TransportError> {
        match &mut self.inner {
            Inner::Udp(s) => s.send(data).await.map_err(classify),
            Inner::Tcp(s) => s.write_all(data).await.map_err(classify),
            Inner::Tls(s) => {
                s.write_all(data).await.map_err(classify)?;
                s.flush().await.map_err(classify)
            }
        }
    }

    /// Marks whether a response is awaited (UDP reports ICMP errors to a registration only
    /// then; a connection reports its own errors either way).
    pub fn set_awaiting(&self, awaiting: bool) {
        if let Inner::Udp(s) = &self.inner {
            s.set_awaiting(awaiting);
        }
    }

    /// Receives the next message. Datagrams or stream bytes that are not valid SIP are logged
    /// and skipped. Cancel-safe: partial stream data stays buffered.
    pub async fn recv(&mut self) -> Result<Message, TransportError> {
        loop {
            match &mut self.inner {
                Inner::Udp(s) => return s.recv().await,
                Inner::Tcp(_) | Inner::Tls(_) => {
                    match message::parse(&self.buf, true) {
                        Ok((m, used)) => {
                            self.buf.drain(..used);
                            return Ok(m);
                        }
                        Err(ParseError::Incomplete) => {
                            if self.buf.iter().all(|b| b"\r\n".contains(b)) {
                                self.buf.clear();
                            }
                        }
                        Err(e) => {
                            // A stream cannot resynchronise after garbage.
                            tracing::warn!(peer = %self.peer, "closing TCP stream: {e}");
                            return Err(TransportError::Closed);
                        }
                    }
                    let n = match &mut self.inner {
                        Inner::Tcp(s) => s.read_buf(&mut self.buf).await,
                        Inner::Tls(s) => s.read_buf(&mut self.buf).await,
                        Inner::Udp(_) => Ok(0),
                    };
                    match n {
                        Ok(0) => return Err(TransportError::Closed),
                        Ok(_) => {}
                        // A TLS peer that closes without close_notify.
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                            return Err(TransportError::Closed)
                        }
                        Err(e) => return Err(classify(e)),
                    }
                }
            }
        }
    }
}
