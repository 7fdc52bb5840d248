//! The gateway behind a front proxy (issue 14, item 8), on the real binary: client addresses
//! from `X-Forwarded-For`, `Forwarded` (RFC 7239) and the PROXY protocol v2, each honoured only
//! from `trusted_proxies`, and every per-address limit (login rate, sessions, connections)
//! counted per client — IPv6 clients per /64. Before: the gateway had none of this, and every
//! client behind a proxy shared the proxy's login bucket, so one client sending junk logins
//! locked out all the others (`rate_limited`).

#[path = "gateway/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use harness::*;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A TCP connection to `addr` from the loopback address `source`.
async fn tcp_from(source: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A WebSocket from `source` over `tcp` (already connected), with extra request headers.
async fn ws_over(tcp: tokio::net::TcpStream, addr: SocketAddr, headers: &[(&str, &str)]) -> Ws {
    let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
    for (k, v) in headers {
        use tokio_tungstenite::tungstenite::http::header::{HeaderName, HeaderValue};
        req.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    let (stream, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::client_async(req, tcp),
    )
    .await
    .expect("WebSocket handshake timed out")
    .expect("WebSocket handshake failed");
    Ws { stream }
}

/// A WebSocket from the loopback address `source` with extra request headers.
async fn ws_from(source: &str, addr: SocketAddr, headers: &[(&str, &str)]) -> Ws {
    ws_over(tcp_from(source, addr).await, addr, headers).await
}

/// One login attempt with a malformed token: `token_rejected` (a bucket had room) or
/// `rate_limited`.
async fn attempt(ws: &mut Ws) -> String {
    ws.login("CRM:zz").await;
    let v = ws.recv().await;
    assert_eq!(v["type"], "error", "{v}");
    v["code"].as_str().unwrap().to_owned()
}

/// The gateway counts `first` and `second` as one client: once `first` (connected first) has
/// spent the login burst, `second`'s login attempt is `rate_limited`.
async fn assert_one_client(
    burst: usize,
    first: impl std::future::Future<Output = Ws>,
    second: impl std::future::Future<Output = Ws>,
) {
    let mut first = first.await;
    first.use_up_login_burst(burst).await;
    let mut second = second.await;
    assert_eq!(attempt(&mut second).await, "rate_limited");
}

/// The gateway counts `ws` as a client of its own: its login attempt with a bad token is
/// `token_rejected`, not `rate_limited` (its bucket has room).
async fn assert_own_client(ws: impl std::future::Future<Output = Ws>) {
    assert_eq!(attempt(&mut ws.await).await, "token_rejected");
}

/// A PROXY protocol v2 header: `PROXY` command, TCP, from `source` to `destination`.
fn proxy_v2(source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21);
    match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            h.push(0x11);
            h.extend_from_slice(&12u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            h.push(0x21);
            h.extend_from_slice(&36u16.to_be_bytes());
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
        }
        _ => panic!("mixed families"),
    }
    h.extend_from_slice(&source.port().to_be_bytes());
    h.extend_from_slice(&destination.port().to_be_bytes());
    h
}

/// A connection from `source` that starts with a PROXY v2 header naming `client`.
async fn proxied(source: &str, addr: SocketAddr, client: &str) -> tokio::net::TcpStream {
    let mut tcp = tcp_from(source, addr).await;
    let client: SocketAddr = client.parse().unwrap();
    let destination = if client.is_ipv4() {
        "192.0.2.1:443".parse().unwrap()
    } else {
        "[2001:db8:ffff::1]:443".parse().unwrap()
    };
    tcp.write_all(&proxy_v2(client, destination)).await.unwrap();
    tcp
}

/// A WebSocket through the trusted proxy 127.0.0.1, whose PROXY v2 header names `client`.
async fn ws_proxied(addr: SocketAddr, client: &str) -> Ws {
    ws_over(proxied("127.0.0.1", addr, client).await, addr, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_forwarded_for_from_a_trusted_proxy_gives_each_client_its_own_bucket() {
    let gw = Gateway::start(
        "login_rate_per_minute = 1\nlogin_burst = 2\ntrusted_proxies = [\"127.0.0.1/32\"]",
    );
    let addr = gw.addr;
    let xff = |v: &'static str| [("X-Forwarded-For", v)];
    // Client A (via the proxy) spends its budget ...
    let mut a = ws_from("127.0.0.1", addr, &xff("203.0.113.5")).await;
    a.use_up_login_burst(2).await;
    // ... client B, via the same proxy, still has its own (before: rate_limited).
    assert_own_client(ws_from("127.0.0.1", addr, &xff("203.0.113.6"))).await;
    // The right-most untrusted address is the client: what A wrote itself to the left of
    // what the proxy appended does not help it, in one header or in several.
    for headers in [
        vec![("X-Forwarded-For", "203.0.113.99, 203.0.113.5")],
        vec![("X-Forwarded-For", "203.0.113.5, 127.0.0.1")],
        vec![
            ("X-Forwarded-For", "203.0.113.99"),
            ("X-Forwarded-For", "203.0.113.5"),
        ],
        vec![("X-Forwarded-For", "198.51.100.1,203.0.113.5:4711")],
    ] {
        let mut ws = ws_from("127.0.0.1", addr, &headers).await;
        assert_eq!(attempt(&mut ws).await, "rate_limited", "{headers:?}");
    }
    // The proxy's own requests (no header) are the proxy's, in a bucket of their own.
    assert_own_client(ws_from("127.0.0.1", addr, &[])).await;
    // From an untrusted peer the header is ignored: 127.0.0.2 is one client, whatever it says.
    assert_one_client(
        2,
        ws_from("127.0.0.2", addr, &xff("203.0.113.7")),
        ws_from("127.0.0.2", addr, &xff("203.0.113.8")),
    )
    .await;
    // IPv6 clients count per /64.
    assert_one_client(
        2,
        ws_from("127.0.0.1", addr, &xff("2001:db8::1")),
        ws_from("127.0.0.1", addr, &xff("2001:db8::2:3")),
    )
    .await;
    assert_own_client(ws_from("127.0.0.1", addr, &xff("[2001:db8:0:1::1]:80"))).await;
    // The log names the client, not the proxy.
    let log = gw.log();
    assert!(log.contains("203.0.113.6"), "client address not logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc7239_forwarded_when_configured() {
    let gw = Gateway::start(
        "login_rate_per_minute = 1\nlogin_burst = 1\ntrusted_proxies = [\"127.0.0.0/8\"]\n\
         forwarded_header = \"forwarded\"",
    );
    let addr = gw.addr;
    let fwd = |v: &'static str| [("Forwarded", v)];
    let mut a = ws_from("127.0.0.1", addr, &fwd("for=203.0.113.5;proto=https")).await;
    a.use_up_login_burst(1).await;
    for value in [
        "for=203.0.113.5",
        "For=\"203.0.113.5:4711\"",
        "for=203.0.113.99, for=203.0.113.5;by=127.0.0.1",
        "for=203.0.113.99;proto=http, for=203.0.113.5, for=127.0.0.9",
    ] {
        let mut ws = ws_from("127.0.0.1", addr, &fwd(value)).await;
        assert_eq!(attempt(&mut ws).await, "rate_limited", "{value}");
    }
    assert_one_client(
        1,
        ws_from("127.0.0.1", addr, &fwd("for=\"[2001:db8::1]:4711\"")),
        ws_from("127.0.0.1", addr, &fwd("for=\"[2001:db8::9]\"")),
    )
    .await;
    // With `forwarded`, X-Forwarded-For is not read (a client could write it itself) ...
    let mut x = ws_from(
        "127.0.0.3",
        addr,
        &[
            ("X-Forwarded-For", "203.0.113.77"),
            ("Forwarded", "for=203.0.113.5"),
        ],
    )
    .await;
    assert_eq!(attempt(&mut x).await, "rate_limited");
    // ... and an obfuscated or unknown client leaves the proxy's address.
    assert_one_client(
        1,
        ws_from("127.0.0.4", addr, &fwd("for=_hidden")),
        ws_from("127.0.0.4", addr, &fwd("for=unknown")),
    )
    .await;
    assert_own_client(ws_from("127.0.0.1", addr, &fwd("for=203.0.113.6"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_session_caps_count_forwarded_clients() {
    let gw = Gateway::start(
        "max_sessions_per_ip = 1\nmax_connections_per_ip = 2\ntrusted_proxies = [\"127.0.0.1\"]",
    );
    let addr = gw.addr;
    let mut a = ws_from("127.0.0.1", addr, &[("X-Forwarded-For", "203.0.113.5")]).await;
    a.ping().await;
    let mut a2 = ws_from("127.0.0.1", addr, &[("X-Forwarded-For", "203.0.113.5")]).await;
    a2.expect_error("session_limit").await;
    // The proxy itself is not held to max_connections_per_ip (it carries every client).
    let mut others = Vec::new();
    for i in 0..4 {
        let xff = format!("203.0.113.{}", 10 + i);
        let mut ws = ws_from("127.0.0.1", addr, &[("X-Forwarded-For", xff.as_str())]).await;
        ws.ping().await;
        others.push(ws);
    }
    a.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_v2_from_trusted_proxies() {
    let gw = Gateway::start(
        "login_rate_per_minute = 1\nlogin_burst = 2\nproxy_protocol = true\n\
         trusted_proxies = [\"127.0.0.1\"]\nmax_connections_per_ip = 2\nhandshake_timeout_seconds = 2",
    );
    let addr = gw.addr;
    let mut a = ws_proxied(addr, "198.51.100.7:5555").await;
    a.use_up_login_burst(2).await;
    assert_own_client(ws_proxied(addr, "198.51.100.8:5555")).await;
    let mut a2 = ws_proxied(addr, "198.51.100.7:6666").await;
    assert_eq!(attempt(&mut a2).await, "rate_limited");
    // IPv6 clients per /64.
    assert_one_client(
        2,
        ws_proxied(addr, "[2001:db8::1]:1"),
        ws_proxied(addr, "[2001:db8::ffff]:2"),
    )
    .await;
    // Connections per address are counted per client too: a third from 198.51.100.7 is
    // closed at once, one from another client is not.
    let mut third = proxied("127.0.0.1", addr, "198.51.100.7:7777").await;
    let mut buf = [0u8; 16];
    // (It may be closed before this is written.)
    let _ = third
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await;
    let n = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read(&mut third, &mut buf),
    )
    .await
    .expect("closed")
    .unwrap_or(0);
    assert_eq!(n, 0, "answered past max_connections_per_ip");
    let mut c = ws_proxied(addr, "198.51.100.9:1").await;
    c.ping().await;
    drop((a, a2));

    // A health check with the LOCAL command is the proxy itself.
    let mut local = std::net::TcpStream::connect(addr).unwrap();
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00".to_vec();
    h.extend_from_slice(
        format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    local.write_all(&h).unwrap();
    let mut resp = String::new();
    local.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    // A trusted proxy that sends no header is refused (misconfiguration, not a client).
    let mut plain = std::net::TcpStream::connect(addr).unwrap();
    plain
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut resp = Vec::new();
    let _ = plain.read_to_end(&mut resp);
    assert!(resp.is_empty(), "{}", String::from_utf8_lossy(&resp));
    // An untrusted peer is an ordinary client: its PROXY header is not honoured (the
    // connection fails as bad HTTP), its plain requests are served.
    let mut spoof = proxied("127.0.0.2", addr, "198.51.100.50:1")
        .await
        .into_std()
        .unwrap();
    spoof.set_nonblocking(false).unwrap();
    // (The gateway may already have answered the header as a bad request and closed.)
    let _ = spoof.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes());
    spoof
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut resp = Vec::new();
    let _ = spoof.read_to_end(&mut resp);
    assert!(
        !resp.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let mut direct = ws_from("127.0.0.2", addr, &[]).await;
    direct.ping().await;
    assert!(gw.log().contains("198.51.100.8"));
}
