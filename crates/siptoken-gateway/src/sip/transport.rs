//! SIP transports for one registration: a place on the UDP socket shared with every other
//! registration to the same registrar ([`super::udp`]: responses and requests are told apart by
//! a route the registration carries in its Call-ID and Contact), or a TCP or TLS connection of
//! its own (rustls, the server certificate verified against the configured CAs and the host
//! name the token names) on its own ephemeral local port.
//!
//! Failures are [`TransportError`]s (a leaf module shared with [`super::udp`]); they name what
//! happened, never the registrar's address, which is logged here beside them instead.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::message::{self, Message, ParseError};
use super::transport_error::{TlsFailure, TransportError};
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
    /// How to connect again: the bind address asked for, the connect timeout, TLS.
    bind: IpAddr,
    timeout: Duration,
    tls: Option<TlsTarget>,
}

impl SipSocket {
    /// Opens a transport from `bind` to `peer`: for UDP, joins the socket shared with `peer`
    /// under `route` (unique per registration; see [`super::udp`]); for TCP and TLS, a new
    /// connection from a fresh ephemeral port. `tls` is required for [`Kind::Tls`] (its absence
    /// is [`TransportError::TlsNotConfigured`]). `timeout` bounds the TCP connect and the TLS
    /// handshake each.
    pub async fn connect(
        kind: Kind,
        bind: IpAddr,
        peer: SocketAddr,
        timeout: Duration,
        tls: Option<TlsTarget>,
        route: &str,
    ) -> Result<SipSocket, TransportError> {
        let asked = bind;
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
            Kind::Udp => Inner::Udp(UdpRoute::join(bind, peer, route).map_err(|e| {
                tracing::debug!(%peer, "cannot open the shared UDP socket: {e}");
                TransportError::of(&e)
            })?),
            Kind::Tcp | Kind::Tls => {
                let s = if peer.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }?;
                s.bind(SocketAddr::new(bind, 0))?;
                let stream = tokio::time::timeout(timeout, s.connect(peer))
                    .await
                    .map_err(|_| TransportError::ConnectTimeout)?
                    .map_err(|e| {
                        tracing::debug!(%peer, "TCP connect failed: {e}");
                        TransportError::of(&e)
                    })?;
                stream.set_nodelay(true)?;
                if kind == Kind::Tcp {
                    Inner::Tcp(stream)
                } else {
                    let t = tls.as_ref().ok_or(TransportError::TlsNotConfigured)?;
                    let connector = tokio_rustls::TlsConnector::from(t.config.clone());
                    let name = t.name.clone();
                    let s = tokio::time::timeout(timeout, connector.connect(name, stream))
                        .await
                        .map_err(|_| TransportError::TlsTimeout)?
                        .map_err(|e| {
                            tracing::info!(%peer, "TLS handshake failed: {e}");
                            TransportError::Tls(TlsFailure::of(&e))
                        })?;
                    Inner::Tls(Box::new(s))
                }
            }
        };
        let local = match &inner {
            Inner::Udp(s) => Ok(s.local_addr()),
            Inner::Tcp(s) => s.local_addr(),
            Inner::Tls(s) => s.get_ref().0.local_addr(),
        }?;
        Ok(SipSocket {
            inner,
            kind,
            local,
            peer,
            buf: Vec::new(),
            bind: asked,
            timeout,
            tls,
        })
    }

    /// A new transport to the same registrar, as [`SipSocket::connect`] opened this one (for a
    /// connection, a new one from a new local port).
    pub async fn reconnect(&self, route: &str) -> Result<SipSocket, TransportError> {
        SipSocket::connect(
            self.kind,
            self.bind,
            self.peer,
            self.timeout,
            self.tls.clone(),
            route,
        )
        .await
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
            Inner::Udp(s) => s.send(data).await?,
            Inner::Tcp(s) => s.write_all(data).await?,
            Inner::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await?
            }
        }
        Ok(())
    }

    /// Marks whether a response is awaited (UDP reports ICMP errors to a registration only
    /// then, as soft notices; a connection reports its own errors either way).
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
                            return Err(TransportError::Garbage);
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
                        Err(e) => return Err(TransportError::of(&e)),
                    }
                }
            }
        }
    }
}
