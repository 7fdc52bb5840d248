//! WebSocket clients of the gateway for the load tools: over HTTP/1.1 (one TCP connection per
//! session, from spread loopback source addresses) or HTTP/2 (RFC 8441 streams), and reading its
//! JSON messages. Shared by the load tools (`#[path]` module).
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::h2_client::{self, H2Sender};

/// What a WebSocket runs over: a TCP connection of its own, or an HTTP/2 stream.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

pub type Ws = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// The client side's WebSocket settings: tungstenite's default read buffer (128 KiB, zeroed
/// when first read into) would make the load tool, which shares the CPUs with the gateway and
/// Kamailio, spend most of a login clearing memory.
pub fn client_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(4096)
}

/// Connects session `i` to `addr` from one of 62,500 loopback source addresses
/// (127.1.0.1-127.1.249.250, chosen by `i`), ports picked by the kernel. From one source address,
/// the kernel's search for a free ephemeral port towards one destination grows with the
/// connections already open: at 20,000 sessions it took most of the load tool's CPU
/// (`__inet_hash_connect` in `perf`), starving the gateway it shares the machine with.
pub async fn connect_from_spread_source(addr: &str, i: usize) -> Result<TcpStream, String> {
    let peer: std::net::SocketAddr = addr.parse().map_err(|e| format!("address {addr}: {e}"))?;
    let tcp = if peer.ip().is_loopback() && peer.is_ipv4() {
        let source = std::net::Ipv4Addr::new(127, 1, (i / 250 % 250) as u8, (1 + i % 250) as u8);
        let socket = tokio::net::TcpSocket::new_v4().map_err(|e| format!("socket: {e}"))?;
        socket
            .bind((source, 0).into())
            .map_err(|e| format!("bind {source}: {e}"))?;
        socket.connect(peer).await
    } else {
        TcpStream::connect(peer).await
    };
    tcp.map_err(|e| format!("TCP connect: {e}"))
}

/// How sessions reach the gateway.
#[derive(Clone)]
pub enum Dialer {
    /// A new HTTP/1.1 connection and upgrade per session.
    Http1(String),
    /// Extended CONNECT streams (RFC 8441), session `i` on connection `i / per_connection`.
    Http2 {
        addr: String,
        connections: Arc<Vec<H2Sender>>,
        per_connection: usize,
    },
}

impl Dialer {
    /// For `n` sessions: over HTTP/1.1, or over ceil(n / per) HTTP/2 connections opened now.
    pub async fn new(addr: &str, n: usize, http2: Option<usize>) -> Result<Dialer, String> {
        let Some(per) = http2 else {
            return Ok(Dialer::Http1(addr.to_owned()));
        };
        let mut connections = Vec::new();
        for _ in 0..n.div_ceil(per) {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("TCP connect: {e}"))?;
            connections.push(h2_client::handshake(tcp).await?);
        }
        Ok(Dialer::Http2 {
            addr: addr.to_owned(),
            connections: Arc::new(connections),
            per_connection: per,
        })
    }

    /// Opens session `i`'s WebSocket.
    pub async fn open(&self, i: usize) -> Result<Ws, String> {
        match self {
            Dialer::Http1(addr) => {
                let tcp = connect_from_spread_source(addr, i).await?;
                let _ = tcp.set_nodelay(true);
                let io: Box<dyn Io> = Box::new(tcp);
                let (ws, _) = tokio_tungstenite::client_async_with_config(
                    format!("ws://{addr}/ws"),
                    io,
                    Some(client_config()),
                )
                .await
                .map_err(|e| format!("WebSocket handshake: {e}"))?;
                Ok(ws)
            }
            Dialer::Http2 {
                addr,
                connections,
                per_connection,
            } => {
                let send = &connections[i / per_connection];
                let (status, io) = h2_client::extended_connect(send, addr, None).await?;
                let Some(io) = io else {
                    return Err(format!("extended CONNECT answered {status}"));
                };
                let io: Box<dyn Io> = Box::new(io);
                Ok(tokio_tungstenite::WebSocketStream::from_raw_socket(
                    io,
                    tokio_tungstenite::tungstenite::protocol::Role::Client,
                    Some(client_config()),
                )
                .await)
            }
        }
    }
}

/// The next JSON message from the gateway within `within` (other frames skipped).
pub async fn next_json(ws: &mut Ws, within: Duration) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return Err("timed out waiting for the gateway".into()),
            Ok(None) => return Err("socket closed".into()),
            Ok(Some(Err(e))) => return Err(format!("WebSocket error: {e}")),
            Ok(Some(Ok(m))) => m,
        };
        match m {
            Message::Text(t) => {
                return serde_json::from_str(t.as_str()).map_err(|e| format!("bad JSON: {e}"))
            }
            Message::Close(c) => return Err(format!("closed by the gateway: {c:?}")),
            _ => continue,
        }
    }
}

/// Sends a JSON message.
pub async fn send_json(ws: &mut Ws, v: Value) -> Result<(), String> {
    ws.send(Message::Text(v.to_string().into()))
        .await
        .map_err(|e| format!("send: {e}"))
}

/// Connects session `i` and logs in with `token`, each gateway message awaited at most `within`;
/// returns the socket and the latency (login sent -> `registered`).
pub async fn login(
    dialer: &Dialer,
    i: usize,
    token: &str,
    within: Duration,
) -> Result<(Ws, Duration), String> {
    let mut ws = tokio::time::timeout(Duration::from_secs(30), dialer.open(i))
        .await
        .map_err(|_| "WebSocket connect timed out".to_string())??;
    let t0 = Instant::now();
    send_json(&mut ws, json!({"type": "login", "token": token})).await?;
    for expected in ["registering", "registered"] {
        let m = next_json(&mut ws, within).await?;
        if m["type"] != expected {
            return Err(format!("expected {expected}, got {m}"));
        }
    }
    Ok((ws, t0.elapsed()))
}
