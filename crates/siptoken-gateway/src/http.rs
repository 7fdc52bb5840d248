//! HTTP routes: `/` (demo softphone; its other files in `softphone`), `/healthz`, `/metrics`, `/ws` (with the Origin check; a
//! WebSocket upgrade over HTTP/1.1, or an extended CONNECT over HTTP/2, RFC 8441).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;

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
        state.metrics.render(),
    )
        .into_response()
}

/// Whether a WebSocket upgrade with this `Origin` may proceed: no Origin (not a browser), the
/// gateway's own origin (same host and port as the `Host` header), or one in the allow-list.
pub fn origin_allowed(origin: Option<&str>, host: Option<&str>, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    let origin = origin.trim().trim_end_matches('/');
    if allowed
        .iter()
        .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let authority = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    match (authority, host) {
        (Some(a), Some(h)) => !a.contains('/') && a.eq_ignore_ascii_case(h.trim()),
        _ => false,
    }
}

async fn websocket(
    AxState(state): AxState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    // HTTP/2 carries the host in the :authority pseudo-header (the request URI), not in Host.
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or(uri.authority().map(|a| a.as_str()));
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    if !origin_allowed(origin, host, &state.config.allowed_origins) {
        tracing::warn!(%peer, origin = origin.unwrap_or(""), "WebSocket upgrade refused: origin not allowed");
        return (StatusCode::FORBIDDEN, "origin not allowed\n").into_response();
    }
    let max = state.config.ws_max_message_bytes;
    ws.max_message_size(max)
        .max_frame_size(max)
        // tungstenite allocates its read buffer up front (128 KiB by default) and keeps it for
        // the life of the socket: most of a session's memory. Client messages are small (a login
        // is well under 1 KiB); a larger one still arrives whole (the buffer grows for it), up to
        // the limit above.
        .read_buffer_size(1024)
        .on_upgrade(move |socket| super::ws::session(socket, state, peer.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_rules() {
        let allowed = vec!["https://crm.example.org".to_owned()];
        assert!(origin_allowed(None, Some("gw:8088"), &allowed));
        assert!(origin_allowed(
            Some("http://gw:8088"),
            Some("gw:8088"),
            &allowed
        ));
        assert!(origin_allowed(
            Some("https://CRM.example.org/"),
            Some("gw"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            Some("gw:8088"),
            &allowed
        ));
        assert!(!origin_allowed(
            Some("http://gw:8089"),
            Some("gw:8088"),
            &allowed
        ));
        assert!(!origin_allowed(Some("null"), Some("gw:8088"), &allowed));
        assert!(!origin_allowed(Some("http://gw:8088"), None, &[]));
    }
}
