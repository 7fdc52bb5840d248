//! One accepted TCP connection, from accept to close: the caps on connections (in total and per
//! client), the PROXY protocol header from trusted proxies, TLS, then HTTP/1.1 or HTTP/2 (hyper)
//! with the handshake and idle timeouts, request bodies refused, and the connection's addresses
//! attached to every request for the routes (`http`).
//!
//! A connection must always be doing something: from the moment it is accepted, and whenever it
//! has no request in progress (no HTTP/2 stream open, no HTTP/1.1 request being served), it has
//! `handshake_timeout_seconds` to complete a request head, or it is closed. A WebSocket is a
//! request in progress for as long as it is open. Over HTTP/1.1 hyper also bounds every request
//! head by the same time.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Method, Request, Response, StatusCode, Version};
use hyper::body::{Body as _, Incoming};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use crate::admission::{PerClient, Permit, Total};
use crate::client_addr::{is_trusted, Cidr, ClientKey};
use crate::metrics::Metrics;
use crate::proxy_protocol::{self, ProxyHeader};

/// What every connection needs, shared.
pub(crate) struct Connections {
    /// The routes.
    pub app: axum::Router,
    /// TLS, when the gateway serves it.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// `handshake_timeout_seconds`: for the first request, and idle between requests.
    pub handshake: Duration,
    /// `http2_max_streams`.
    pub max_streams: u32,
    /// `max_connections`.
    pub total: Arc<Total>,
    /// `max_connections_per_ip`.
    pub per_client: Arc<PerClient>,
    /// `trusted_proxies`.
    pub trusted_proxies: Vec<Cidr>,
    /// `proxy_protocol`.
    pub proxy_protocol: bool,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// The local address a request's connection arrived on (a request extension, for the Origin
/// check on wildcard listen addresses).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LocalAddr(pub SocketAddr);

/// Held for as long as a request is in progress on its connection (a request extension: the
/// WebSocket session takes one for its whole life). The connection counts as idle when none is
/// held.
#[derive(Clone)]
pub(crate) struct InProgress(#[allow(dead_code)] Arc<StreamGuard>);

pub(crate) struct StreamGuard(Arc<watch::Sender<Streams>>);

#[derive(Debug, Clone, Copy, Default)]
struct Streams {
    open: usize,
    ever: bool,
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.send_modify(|s| s.open -= 1);
    }
}

fn in_progress(streams: &Arc<watch::Sender<Streams>>) -> InProgress {
    streams.send_modify(|s| {
        s.open += 1;
        s.ever = true;
    });
    InProgress(Arc::new(StreamGuard(streams.clone())))
}

/// A connection's I/O with the places it holds under the connection caps: they are given back
/// when the socket is closed, which for a WebSocket over HTTP/1.1 is when its session ends.
struct Held<I> {
    io: I,
    _places: (Permit, Option<Permit>),
}

impl<I: AsyncRead + Unpin> AsyncRead for Held<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Held<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A response body that keeps its request counted as in progress until it has been sent.
struct HeldBody {
    body: axum::body::Body,
    _in_progress: InProgress,
}

impl hyper::body::Body for HeldBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// Serves one accepted connection from `peer` until it closes or the gateway shuts down.
pub(crate) async fn serve(
    mut tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    c: Arc<Connections>,
    shutdown: watch::Receiver<bool>,
) {
    let Some(total) = c.total.try_acquire() else {
        c.metrics.closed("connection_limit");
        tracing::debug!(%peer, "max_connections reached: connection closed");
        return;
    };
    let started = tokio::time::Instant::now();
    let deadline = started + c.handshake;
    let local = tcp.local_addr().unwrap_or(peer);
    let mut client = peer;
    // A trusted proxy's connection carries many clients: it is not held to the per-client
    // cap, unless a PROXY header names the one client it carries.
    let mut carries_many = is_trusted(&c.trusted_proxies, peer.ip());
    if c.proxy_protocol && carries_many {
        match tokio::time::timeout_at(deadline, proxy_protocol::read(&mut tcp)).await {
            Ok(Ok(ProxyHeader::Client(source))) => {
                client = source;
                carries_many = is_trusted(&c.trusted_proxies, source.ip());
            }
            Ok(Ok(ProxyHeader::Local)) => {}
            Ok(Err(e)) => {
                c.metrics.closed("proxy_header_invalid");
                tracing::info!(%peer, "{e}: connection closed");
                return;
            }
            Err(_) => {
                c.metrics.closed("handshake_timeout");
                tracing::info!(%peer, "PROXY protocol header not received within the handshake timeout: connection closed");
                return;
            }
        }
    }
    let per_client = if carries_many {
        None
    } else {
        match c.per_client.try_acquire(ClientKey::of(client.ip())) {
            Some(p) => Some(p),
            None => {
                c.metrics.closed("connection_limit_per_ip");
                tracing::debug!(client = %client.ip(), "max_connections_per_ip reached: connection closed");
                return;
            }
        }
    };
    let io = Held {
        io: tcp,
        _places: (total, per_client),
    };
    match c.tls.clone() {
        None => http(io, client, local, &c, deadline, shutdown).await,
        Some(acceptor) => {
            // The TLS handshake counts against the handshake timeout too.
            match tokio::time::timeout_at(deadline, acceptor.accept(io)).await {
                Ok(Ok(tls)) => http(tls, client, local, &c, deadline, shutdown).await,
                Ok(Err(e)) => {
                    c.metrics.closed("tls_handshake_failed");
                    tracing::info!(%peer, "TLS handshake failed: {e}")
                }
                Err(_) => {
                    c.metrics.closed("handshake_timeout");
                    tracing::info!(%peer, "TLS handshake not completed within the handshake timeout")
                }
            }
        }
    }
}

/// `413 Payload Too Large` for a request that comes with a body (no route takes one); over
/// HTTP/1.1 the connection is closed after it rather than reading the body.
fn body_refused(version: Version) -> Response<axum::body::Body> {
    let mut r = Response::new(axum::body::Body::from("request bodies are not accepted\n"));
    *r.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    if version < Version::HTTP_2 {
        r.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    r
}

/// Serves HTTP/1.1 or HTTP/2 (told apart by the client's first bytes; over TLS, by ALPN) on
/// `io` and hands WebSocket upgrades to their sessions: one per HTTP/1.1 connection, up to
/// `http2_max_streams` extended CONNECT streams per HTTP/2 connection (RFC 8441). The first
/// request must be complete by `first_by`; later, the connection is closed after
/// `handshake_timeout_seconds` without a request in progress. HTTP/2 connections are pinged,
/// and closed when the peer stops answering. On shutdown the requests in progress, if any, are
/// finished first.
async fn http<I>(
    io: I,
    peer: SocketAddr,
    local: SocketAddr,
    c: &Connections,
    first_by: tokio::time::Instant,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let app = hyper_util::service::TowerToHyperService::new(c.app.clone());
    let streams = Arc::new(watch::Sender::new(Streams::default()));
    let mut changes = streams.subscribe();
    let tracker = streams.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let held = in_progress(&tracker);
        let refuse = req.method() != Method::CONNECT && !req.body().is_end_stream();
        let version = req.version();
        let call = (!refuse).then(|| {
            let ext = req.extensions_mut();
            ext.insert(axum::extract::ConnectInfo(peer));
            ext.insert(LocalAddr(local));
            ext.insert(held.clone());
            hyper::service::Service::call(&app, req)
        });
        async move {
            let response = match call {
                Some(call) => call.await?,
                None => body_refused(version),
            };
            Ok::<_, std::convert::Infallible>(response.map(|body| HeldBody {
                body,
                _in_progress: held,
            }))
        }
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(c.handshake);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(c.max_streams)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // When the connection is closed for doing nothing (`None` while a request is in progress).
    let mut idle_by = Some(first_by);
    let done = loop {
        tokio::select! {
            r = conn.as_mut() => break Some(r),
            _ = shutdown.changed() => break None,
            _ = changes.changed() => {
                let now = changes.borrow_and_update().open;
                idle_by = match (now, idle_by) {
                    (0, None) => Some(tokio::time::Instant::now() + c.handshake),
                    (0, by) => by,
                    _ => None,
                };
            }
            _ = tokio::time::sleep_until(idle_by.unwrap_or(first_by)), if idle_by.is_some() => {
                if !changes.borrow().ever {
                    c.metrics.closed("handshake_timeout");
                    tracing::info!(%peer, "HTTP request not completed within the handshake timeout: connection closed");
                    return;
                }
                c.metrics.closed("http_idle_timeout");
                tracing::debug!(%peer, "no request in progress for the handshake timeout: connection closed");
                // HTTP/2: GOAWAY first, so the client starts no stream on a closing connection.
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
                return;
            }
        }
    };
    let result = match done {
        Some(r) => r,
        None => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(Duration::from_secs(5), conn).await {
                Ok(r) => r,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        if e.downcast_ref::<hyper::Error>()
            .is_some_and(|e| e.is_timeout())
        {
            c.metrics.closed("handshake_timeout");
            tracing::info!(%peer, "HTTP request not completed within the handshake timeout: connection closed");
        } else {
            tracing::debug!(%peer, "HTTP connection ended: {e}");
        }
    }
}
