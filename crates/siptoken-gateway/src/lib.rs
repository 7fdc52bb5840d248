//! The reference gateway `siptoken-gateway`: a browser presents a
//! token over a WebSocket, the gateway verifies it and registers the SIP account itself.
//!
//! The public surface is what the binary needs: [`cli`], [`config`], [`serve`] and
//! [`check_tls`]. Inside, one module per job: `http` (routes, origin check, demo page), `ws` (the
//! WebSocket session protocol), `replay` and `redis` (single use), `metrics`, `ratelimit`, `tls`
//! (rustls for `wss://` and SIP over TLS), and `sip` (message parser, digest, DNS, transports,
//! the REGISTER client). The protocol is specified in `docs/gateway-protocol.md`.

pub mod cli;
pub mod config;
mod http;
mod metrics;
mod ratelimit;
mod redis;
mod replay;
mod sip;
mod tls;
mod ws;

#[cfg(test)]
mod parser_properties;

/// The parsers of untrusted input, for the fuzz targets in `fuzz/` (cargo feature `fuzzing`;
/// not part of the crate's stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::sip::digest;
    pub use crate::sip::message;
    pub use crate::ws::parse_client_message;
}

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use config::Config;
use metrics::Metrics;
use ratelimit::RateLimiter;
use replay::ReplayStore;
use sip::register::SipSettings;
use siptoken::{KeyRing, VerifyOptions};

/// Everything the sessions share.
pub(crate) struct State {
    /// The configuration.
    pub config: Config,
    /// The key ring.
    pub ring: KeyRing,
    /// Verifier options derived from the configuration.
    pub verify_options: VerifyOptions,
    /// SIP settings derived from the configuration.
    pub sip: SipSettings,
    /// The single-use store.
    pub replay: Arc<dyn ReplayStore>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-IP login rate limiter.
    pub limiter: RateLimiter,
    /// Becomes `true` when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Every session and registration task holds a token of it; shutdown closes it and waits
    /// until every token is dropped.
    pub tasks: tokio_util::task::TaskTracker,
}

/// Serves HTTP and WebSockets on `listener` until `signal` completes, then unregisters every
/// account (waiting at most the SIP transaction timeout plus a few seconds) and returns.
///
/// Each connection is served by hyper (HTTP/1.1 or HTTP/2) with a handshake timeout
/// (`handshake_timeout_seconds`): a client that connects and does not finish its request (the
/// WebSocket upgrade included) in time is disconnected, so idle or slow-loris connections cannot
/// pile up.
pub async fn serve(
    config: Config,
    ring: KeyRing,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = shutdown_rx.clone();
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut sip = config.sip_settings();
    sip.tls = sip_tls(&config).map_err(invalid)?;
    let acceptor = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
            tls::server_config(cert, key).map_err(invalid)?,
        )),
        _ => None,
    };
    let tasks = tokio_util::task::TaskTracker::new();
    let replay: Arc<dyn ReplayStore> = match config.redis_url() {
        Ok(Some(url)) => {
            tracing::info!(store = %url, "single-use store on Redis");
            let timeout = Duration::from_millis(config.replay_store_timeout_ms);
            Arc::new(redis::RedisStore::new(url, timeout))
        }
        Ok(None) => Arc::new(replay::MemoryStore::new()),
        Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
    };
    let state = Arc::new(State {
        verify_options: config.verify_options(),
        limiter: RateLimiter::new(config.login_rate_per_minute, config.login_burst),
        sip,
        config,
        ring,
        replay,
        metrics: Arc::new(Metrics::default()),
        shutdown,
        tasks: tasks.clone(),
    });
    let app = http::router(state.clone());
    let grace = state.sip.transaction_timeout + Duration::from_secs(3);
    let handshake = Duration::from_secs(state.config.handshake_timeout_seconds);
    let max_streams = state.config.http2_max_streams;
    let metrics = state.metrics.clone();
    drop(state);
    let mut signal = std::pin::pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut signal => break,
            r = listener.accept() => match r {
                Ok(c) => {
                    // Small JSON events go out back to back ("registering", then
                    // "registered"): without TCP_NODELAY, Nagle's algorithm holds the second
                    // one until the client's delayed ACK.
                    if let Err(e) = c.0.set_nodelay(true) {
                        tracing::debug!("cannot set TCP_NODELAY: {e}");
                    }
                    c
                }
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (app, shutdown, metrics) = (app.clone(), shutdown_rx.clone(), metrics.clone());
        match acceptor.clone() {
            None => {
                tokio::spawn(connection(
                    tcp,
                    peer,
                    app,
                    handshake,
                    max_streams,
                    shutdown,
                    metrics,
                ));
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    // The TLS handshake counts against the handshake timeout too.
                    let start = tokio::time::Instant::now();
                    match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            let left = handshake.saturating_sub(start.elapsed());
                            let left = left.max(Duration::from_millis(1));
                            connection(tls, peer, app, left, max_streams, shutdown, metrics).await
                        }
                        Ok(Err(e)) => {
                            metrics.closed("tls_handshake_failed");
                            tracing::info!(%peer, "TLS handshake failed: {e}")
                        }
                        Err(_) => {
                            metrics.closed("handshake_timeout");
                            tracing::info!(%peer, "TLS handshake not completed within the handshake timeout")
                        }
                    }
                });
            }
        }
    }
    tracing::info!("shutting down: unregistering every account");
    let _ = shutdown_tx.send(true);
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        let left = tasks.len();
        tracing::warn!(
            left,
            "shutdown timeout: some sessions did not finish unregistering"
        );
    } else {
        tracing::info!("all sessions closed");
    }
    Ok(())
}

/// Serves one connection, HTTP/1.1 or HTTP/2 (told apart by the client's first bytes; over
/// TLS, by ALPN), and hands WebSocket upgrades to their sessions: one per HTTP/1.1 connection,
/// up to `http2_max_streams` extended CONNECT streams per HTTP/2 connection (RFC 8441). A
/// connection that has not completed a request within `handshake` is closed (HTTP/1.1 also
/// bounds every later request head by it); HTTP/2 connections are pinged, and closed when the
/// peer stops answering. On shutdown the request in progress, if any, is finished first.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    app: axum::Router,
    handshake: Duration,
    max_streams: u32,
    mut shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let app = hyper_util::service::TowerToHyperService::new(app);
    let requested = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = requested.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
        seen.store(true, std::sync::atomic::Ordering::Relaxed);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        hyper::service::Service::call(&app, req)
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(handshake);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .enable_connect_protocol()
        .max_concurrent_streams(max_streams)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    let conn = builder.serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let first_request_by = tokio::time::sleep(handshake);
    let mut first_request_by = std::pin::pin!(first_request_by);
    let mut waiting_first = true;
    let done = loop {
        tokio::select! {
            r = conn.as_mut() => break Some(r),
            _ = shutdown.changed() => break None,
            _ = first_request_by.as_mut(), if waiting_first => {
                if !requested.load(std::sync::atomic::Ordering::Relaxed) {
                    metrics.closed("handshake_timeout");
                    tracing::info!(%peer, "HTTP request not completed within the handshake timeout: connection closed");
                    return;
                }
                waiting_first = false;
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
            metrics.closed("handshake_timeout");
            tracing::info!(%peer, "HTTP request not completed within the handshake timeout: connection closed");
        } else {
            tracing::debug!(%peer, "HTTP connection ended: {e}");
        }
    }
}

/// The rustls client configuration for SIP over TLS: from `sip_tls_ca_file` (an error if it is
/// unusable), else from the platform's trusted CAs (`rustls-native-certs`: `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` when set, else the system store), when it has any (else `None`:
/// `transport="tls"` tokens are then refused with `sip_unreachable`).
pub(crate) fn sip_tls(config: &Config) -> Result<Option<Arc<rustls::ClientConfig>>, String> {
    match &config.sip_tls_ca_file {
        Some(ca) => tls::client_config(ca)
            .map(Some)
            .map_err(|e| format!("sip_tls_ca_file: {e}")),
        None => Ok(tls::native_client_config()),
    }
}

/// Loads every TLS file the configuration names (for `--check` and start-up errors).
pub fn check_tls(config: &Config) -> Result<(), String> {
    if let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) {
        tls::server_config(cert, key)?;
    }
    if config.sip_tls_ca_file.is_some() {
        sip_tls(config)?;
    }
    Ok(())
}
