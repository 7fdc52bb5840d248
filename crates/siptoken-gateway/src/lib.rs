//! The reference gateway `siptoken-gateway`: a browser presents a
//! token over a WebSocket, the gateway verifies it and registers the SIP account itself.
//!
//! The public surface is what the binary needs: [`cli`], [`config`] (with the types of its keys
//! in [`client_addr`]), [`serve`] and [`check_tls`]; and [`media`], the calls' media layer
//! (WebRTC ↔ RTP relay), public so the integration tests and the load tool drive it directly.
//! Inside, one module per job: `conn` (one connection: caps, PROXY header, TLS, HTTP with its
//! timeouts), `admission` (connection and session caps), `proxy_protocol`, `http` (routes, demo
//! page), `origin` (the Origin check), `ws` (the WebSocket protocol: its messages in
//! `ws::protocol`, one socket's session in `ws::session`) with
//! `session_clock` (its login and idle deadlines), `replay` and `redis` (single use), `metrics`,
//! `ratelimit`, `tls` (rustls for `wss://` and SIP over TLS), and `sip` (message parser,
//! digest, DNS, transports, the REGISTER client, calls). The protocol is specified in
//! `docs/gateway-protocol.md`.

mod admission;
pub mod cli;
pub mod client_addr;
pub mod config;
mod conn;
mod http;
pub mod media;
mod metrics;
mod origin;
mod proxy_protocol;
mod ratelimit;
mod redis;
mod replay;
mod session_clock;
mod sip;
mod softphone;
mod tls;
pub use tls::TlsError;
mod ws;

#[cfg(test)]
mod parser_properties;

/// The parsers of untrusted input, for the fuzz targets in `fuzz/` (cargo feature `fuzzing`;
/// not part of the crate's stable API).
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::media::fuzz as sdp_fuzz;
    pub use crate::sip::call::fuzz as call_fuzz;
    pub use crate::sip::digest;
    pub use crate::sip::message;
    pub use crate::sip::{address, host, params, uri, via};
    pub use crate::ws::protocol::parse_client_message;
}

use std::future::Future;
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
    /// What registrations need to carry calls (the media engine, call timers).
    pub calls: Option<sip::agent::CallContext>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Per-client login rate limiter.
    pub limiter: RateLimiter,
    /// Which `Origin`s may open WebSockets.
    pub origins: origin::OriginPolicy,
    /// `max_sessions_per_ip`.
    pub sessions_per_client: Arc<admission::PerClient>,
    /// Becomes `true` when the gateway shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Every session and registration task holds a token of it; shutdown closes it and waits
    /// until every token is dropped.
    pub tasks: tokio_util::task::TaskTracker,
}

/// Serves HTTP and WebSockets on `listener` until `signal` completes, then unregisters every
/// account (waiting at most the SIP transaction timeout plus a few seconds) and returns.
///
/// Each connection is served by `conn::serve`: caps on connections in total and per client,
/// the PROXY protocol from trusted proxies, TLS, and hyper (HTTP/1.1 or HTTP/2) with a handshake
/// timeout (`handshake_timeout_seconds`): a client that connects and does not finish its request
/// (the WebSocket upgrade included) in time, or leaves its connection without a request in
/// progress that long, is disconnected, so idle or slow-loris connections cannot pile up.
pub async fn serve(
    config: Config,
    ring: KeyRing,
    listener: TcpListener,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = shutdown_rx.clone();
    fn invalid(e: impl std::error::Error + Send + Sync + 'static) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
    let mut sip = config.sip_settings();
    sip.tls = sip_tls(&config).map_err(invalid)?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
        (Some(cert), Some(key)) => Some(tokio_rustls::TlsAcceptor::from(
            tls::server_config(cert, key).map_err(invalid)?,
        )),
        _ => None,
    };
    let tasks = tokio_util::task::TaskTracker::new();
    let replay: Arc<dyn ReplayStore> = match config.redis_url() {
        Ok(Some(url)) => {
            tracing::info!(store = %url, "single-use store on Redis");
            Arc::new(redis::RedisStore::new(url, config.redis_settings()).map_err(invalid)?)
        }
        Ok(None) => Arc::new(replay::MemoryStore::new()),
        Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)),
    };
    // Calls: one WebRTC socket for every browser, RTP ports for the SIP legs.
    let media = media::MediaEngine::bind(&config.media_settings()).await?;
    tracing::info!(webrtc = %media.webrtc_address(), "calls' media ready");
    let calls = Some(sip::agent::CallContext {
        media,
        settings: sip::call::CallSettings {
            timers: sip::timers::Timers {
                t1: sip.t1,
                t2: sip.t2,
                ..Default::default()
            },
            ring_timeout: sip::agent::ring_timeout(config.ring_timeout_seconds),
            user_agent: sip.user_agent.clone(),
        },
    });
    let origins = origin::OriginPolicy::new(
        &config.public_origin,
        &config.allowed_origins,
        listener.local_addr()?,
        tls.is_some(),
    )
    .map_err(invalid)?;
    let state = Arc::new(State {
        verify_options: config.verify_options(),
        limiter: RateLimiter::new(config.login_rate_per_minute, config.login_burst),
        origins,
        sessions_per_client: admission::PerClient::new(config.max_sessions_per_ip),
        sip,
        config,
        ring,
        replay,
        calls,
        metrics: Arc::new(Metrics::default()),
        shutdown,
        tasks: tasks.clone(),
    });
    let grace = state.sip.transaction_timeout + Duration::from_secs(3);
    let connections = Arc::new(conn::Connections {
        app: http::router(state.clone()),
        tls,
        handshake: Duration::from_secs(state.config.handshake_timeout_seconds),
        max_streams: state.config.http2_max_streams,
        total: admission::Total::new(state.config.max_connections),
        per_client: admission::PerClient::new(state.config.max_connections_per_ip),
        trusted_proxies: state.config.trusted_proxies.clone(),
        proxy_protocol: state.config.proxy_protocol,
        metrics: state.metrics.clone(),
    });
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
        tokio::spawn(conn::serve(
            tcp,
            peer,
            connections.clone(),
            shutdown_rx.clone(),
        ));
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

/// The rustls client configuration for SIP over TLS: from `sip_tls_ca_file` (an error if it is
/// unusable), else from the platform's trusted CAs (`rustls-native-certs`: `SSL_CERT_FILE` /
/// `SSL_CERT_DIR` when set, else the system store), when it has any (else `None`:
/// `transport="tls"` tokens are then refused with `sip_unreachable`).
pub(crate) fn sip_tls(config: &Config) -> Result<Option<Arc<rustls::ClientConfig>>, tls::TlsError> {
    match &config.sip_tls_ca_file {
        Some(ca) => tls::client_config(ca)
            .map(Some)
            .map_err(|e| tls::TlsError::SipCaFile(Box::new(e))),
        None => Ok(tls::native_client_config()),
    }
}

/// Loads every TLS file the configuration names (for `--check` and start-up errors).
pub fn check_tls(config: &Config) -> Result<(), tls::TlsError> {
    if let (Some(cert), Some(key)) = (&config.tls_cert_file, &config.tls_key_file) {
        tls::server_config(cert, key)?;
    }
    if config.sip_tls_ca_file.is_some() {
        sip_tls(config)?;
    }
    Ok(())
}
