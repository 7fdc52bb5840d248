//! HTTP routes: `/` (demo softphone; its other files in `softphone`), `/healthz`, `/metrics`,
//! `/ws` (with the Origin check, `origin`, and the per-client session cap; a WebSocket upgrade over
//! HTTP/1.1, or an extended CONNECT over HTTP/2, RFC 8441).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

use super::client_addr::{client_ip, ClientKey};
use super::conn::{InProgress, LocalAddr};
use super::State;

/// The demo page, embedded in the binary.
pub const DEMO_PAGE: &str = include_str!("demo.html");

/// The gateway's routes.
pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(DEMO_PAGE) }))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        // GET for HTTP/1.1, CONNECT for HTTP/2: the extractor refuses other methods (405).
        .route("/ws", any(websocket))
        .merge(super::softphone::routes())
        .with_state(state)
}

async fn metrics(AxState(state): AxState<Arc<State>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = state.metrics.render();
            if let Some(c) = &state.calls {
                c.media.counters().render(&mut text);
            }
            text
        },
    )
        .into_response()
}

async fn websocket(
    AxState(state): AxState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    axum::Extension(LocalAddr(local)): axum::Extension<LocalAddr>,
    axum::Extension(in_progress): axum::Extension<InProgress>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let config = &state.config;
    let client = client_ip(
        peer.ip(),
        &headers,
        &config.trusted_proxies,
        config.forwarded_header,
    );
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if !state.origins.allows(origin, Some(local)) {
        tracing::warn!(ip = %client, origin = origin.unwrap_or(""), "WebSocket upgrade refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    // Taken before the upgrade, so a flood from one client is refused before it costs a session.
    let place = state.sessions_per_client.try_acquire(ClientKey::of(client));
    let max = config.ws_max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        // tungstenite allocates its read buffer up front (128 KiB by default) and keeps it for
        // the life of the socket: most of a session's memory. Client messages are small (a login
        // is well under 1 KiB); a larger one still arrives whole (the buffer grows for it), up to
        // the limit above.
        .read_buffer_size(1024)
        .on_upgrade(move |socket| async move {
            // The session is the request in progress on its connection while it lasts.
            let _in_progress = in_progress;
            match place {
                Some(_place) => super::ws::session::run(socket, state, client).await,
                None => {
                    tracing::info!(ip = %client, "WebSocket refused: max_sessions_per_ip reached");
                    super::ws::session::refuse(
                        socket,
                        &state,
                        "too many sessions from this address; try again later",
                    )
                    .await
                }
            }
        })
}
