//! The gateway's limits against misbehaving clients and registrars, on the real binary: handshake
//! timeout (silent and slow-loris connections), WebSocket idle timeout, maximum message size,
//! per-IP login rate, maximum sessions — each a documented error, none taking the gateway down —
//! and a silent registrar (UDP or TCP) that must not hold a session's resources for ever.

#[path = "gateway/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use harness::*;
use serde_json::json;
use siptoken::Transport;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// Waits (bounded) until the process has `n` open file descriptors.
fn wait_fds(pid: u32, n: usize, within: Duration) {
    let deadline = Instant::now() + within;
    while open_fds(pid) != n {
        assert!(
            Instant::now() < deadline,
            "gateway holds {} file descriptors, expected {n}",
            open_fds(pid)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until the peer closes the connection; returns how long that took (panics after 10 s).
fn time_to_eof(s: &mut TcpStream) -> Duration {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return t.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return t.elapsed(),
            Err(e) => panic!("connection not closed by the gateway: {e}"),
        }
    }
}

/// A WebSocket opened on a plain TCP socket (the upgrade done by hand).
fn raw_websocket(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "upgrade answer cut short");
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s
}

/// A client text frame (masked, as RFC 6455 requires of clients).
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut f = vec![0x81];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// Splits unmasked server frames into (opcode, payload).
fn server_frames(mut raw: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    while raw.len() >= 2 {
        let op = raw[0] & 0x0f;
        let (len, at) = match raw[1] & 0x7f {
            126 => (u16::from_be_bytes([raw[2], raw[3]]) as usize, 4),
            127 => panic!("unexpected 64-bit frame length"),
            n => (n as usize, 2),
        };
        out.push((op, raw[at..at + len].to_vec()));
        raw = &raw[at + len..];
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_closes_silent_and_slow_connections() {
    let gw = Gateway::start("handshake_timeout_seconds = 1");
    let pid = gw.pid();
    let mut ws = gw.ws().await;
    let baseline = open_fds(pid);
    // 40 connections that never send a byte, and one slow loris that trickles its headers.
    let mut silent: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    // ... and one that opens an HTTP/2 connection (preface and SETTINGS) but no stream.
    let mut h2 = TcpStream::connect(gw.addr).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    silent.push(h2);
    let addr = gw.addr;
    let loris = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let t = Instant::now();
        let head = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nX-Slow: ";
        s.write_all(head.as_bytes()).unwrap();
        while t.elapsed() < Duration::from_secs(5) {
            if s.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = time_to_eof(&mut s);
        t.elapsed()
    });
    // Meanwhile the gateway serves everyone else.
    assert_eq!(gw.get("/healthz").0, 200);
    ws.ping().await;
    for s in silent.iter_mut() {
        let waited = time_to_eof(s);
        assert!(waited < Duration::from_secs(3), "{waited:?}");
    }
    let loris = loris.join().unwrap();
    assert!(
        loris < Duration::from_secs(3),
        "slow loris held on {loris:?}"
    );
    wait_fds(pid, baseline, Duration::from_secs(3));
    // A normal upgrade is not affected, and an open WebSocket outlives the handshake timeout.
    let mut other = gw.ws().await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    other.ping().await;
    ws.ping().await;
    assert!(gw
        .log()
        .contains("HTTP request not completed within the handshake timeout"));
    assert_eq!(gw.closed_total("handshake_timeout"), 42.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_are_closed_and_their_accounts_released() {
    let gw = Gateway::start("ws_idle_timeout_seconds = 2");
    // A client that logged in and then went silent: it never reads, so never answers a ping.
    // (A raw socket: a WebSocket library would answer pings whenever it is polled.)
    let mut live = gw.ws().await;
    let token = token_without_sip();
    let mut dead = raw_websocket(gw.addr);
    let login = json!({"type": "login", "token": token}).to_string();
    dead.write_all(&masked_text_frame(login.as_bytes()))
        .unwrap();
    // The login is accepted.
    gw.wait_metric(
        "siptoken_gateway_registered_accounts",
        Duration::from_secs(5),
        |accounts| accounts == 1.0,
    )
    .await;
    assert_eq!(gw.metric("siptoken_gateway_sessions"), 2.0);
    // Meanwhile a client that sends a message now and then (the demo page pings every 25 s)
    // stays, for twice the idle timeout. (Answering the gateway's pings is not enough: any
    // client library does that by itself, gateway_abuse.rs checks it.)
    live.login(&token_without_sip()).await;
    live.expect("authenticated").await;
    let t = Instant::now();
    let mut closed_after = None;
    while t.elapsed() < Duration::from_secs(4) {
        live.ping().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        if closed_after.is_none() && gw.metric("siptoken_gateway_sessions") == 1.0 {
            closed_after = Some(t.elapsed());
        }
    }
    live.ping().await;
    let closed_after = closed_after.expect("the idle session was not closed");
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
    assert_eq!(gw.metric("siptoken_gateway_registered_accounts"), 1.0);
    // What the silent client finds when it reads again: pings, `authenticated`, the
    // `idle_timeout` error, then close code 4408.
    let mut raw = Vec::new();
    dead.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = dead.read_to_end(&mut raw);
    let frames = server_frames(&raw);
    let texts: Vec<serde_json::Value> = frames
        .iter()
        .filter(|(op, _)| *op == 1)
        .map(|(_, p)| serde_json::from_slice(p).unwrap())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert_eq!(texts[0]["type"], "authenticated");
    assert_eq!(texts[1]["code"], "idle_timeout");
    assert!(frames.iter().any(|(op, _)| *op == 9), "the gateway pinged");
    let (op, close) = frames.last().unwrap();
    assert_eq!(*op, 8, "last frame is a close");
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 4408);
    assert_eq!(&close[2..], b"idle timeout");
    assert_eq!(gw.closed_total("idle_timeout"), 1.0);
    live.ping().await;
    assert_eq!(gw.get("/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_close_the_socket_with_1009() {
    let gw = Gateway::start("ws_max_message_bytes = 2048");
    let mut ws = gw.ws().await;
    // At the limit: an ordinary (bad) request, answered.
    let pad = "x".repeat(2048 - r#"{"type":"ping","pad":""}"#.len());
    ws.send(json!({"type": "ping", "pad": pad})).await;
    ws.expect("pong").await;
    // One byte over: closed with 1009, and nothing of it echoed.
    let pad = "x".repeat(2049 - r#"{"type":"ping","pad":""}"#.len());
    ws.send(json!({"type": "ping", "pad": pad})).await;
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.stream.next()).await {
            Ok(Some(Ok(Message::Close(c)))) => break c.unwrap(),
            Ok(Some(Ok(Message::Ping(_)))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Size);
    assert_eq!(close.reason.as_str(), "message too big");
    // A megabyte in one frame: refused the same way, without the gateway reading it all.
    let mut big = gw.ws().await;
    let _ = big
        .stream
        .send(Message::Text("y".repeat(1 << 20).into()))
        .await;
    assert_eq!(gw.get("/healthz").0, 200);
    let mut fresh = gw.ws().await;
    fresh.ping().await;
    gw.wait_closed_total("message_too_big", 2.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_is_per_ip_and_session_limit_recovers() {
    let gw = Gateway::start("login_rate_per_minute = 1\nlogin_burst = 3\nmax_sessions = 3");
    let mut a = gw.ws().await;
    let v = a.use_up_login_burst(3).await;
    assert!(v["message"].as_str().unwrap().contains("too many"));
    // Another client address (127.0.0.2 is loopback too) has its own bucket.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let tcp = socket.connect(gw.addr).await.unwrap();
    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    let (stream, _) = tokio_tungstenite::client_async(format!("ws://{}/ws", gw.addr), tcp)
        .await
        .unwrap();
    let mut b = Ws { stream };
    b.login("CRM:zz").await;
    b.expect_error("token_rejected").await;

    // Sessions: 3 allowed (a, b and one more); 20 more each get session_limit and code 1013.
    let mut c = gw.ws().await;
    c.ping().await;
    for _ in 0..20 {
        let mut extra = gw.ws().await;
        extra.expect_error("session_limit").await;
        let close = match tokio::time::timeout(Duration::from_secs(5), extra.stream.next()).await {
            Ok(Some(Ok(Message::Close(c)))) => c.unwrap(),
            other => panic!("expected a close frame, got {other:?}"),
        };
        assert_eq!(close.code, CloseCode::Again);
    }
    a.ping().await;
    // Once sessions close, new ones are accepted again.
    drop((b, c));
    gw.wait_metric(
        "siptoken_gateway_sessions",
        Duration::from_secs(5),
        |sessions| sessions <= 1.0,
    )
    .await;
    let mut d = gw.ws().await;
    d.ping().await;
    assert_eq!(gw.get("/healthz").0, 200);
}

/// A TCP "registrar" that accepts connections and never answers.
fn silent_tcp() -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        l.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(15);
        while Instant::now() < until {
            if let Ok((s, _)) = l.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    (port, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_registrar_releases_every_resource() {
    let silent_udp = Silent::new();
    let (tcp_port, _tcp) = silent_tcp();
    let gw = Gateway::start("sip_t1_ms = 100\nsip_transaction_timeout_ms = 1500");
    let pid = gw.pid();
    let mut ws = gw.ws().await;
    ws.ping().await;
    let baseline = open_fds(pid);
    for (port, transport) in [
        (silent_udp.port, Transport::Udp),
        (tcp_port, Transport::Tcp),
    ] {
        // Waiting for the answer: sip_timeout, then the SIP socket is gone.
        ws.login(&token("crm1", "pw", port, transport)).await;
        ws.expect("registering").await;
        let deadline = Instant::now() + Duration::from_secs(1);
        while open_fds(pid) <= baseline {
            assert!(
                Instant::now() < deadline,
                "{transport:?}: no SIP socket opened"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let t = Instant::now();
        ws.expect_error("sip_timeout").await;
        assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
        wait_fds(pid, baseline, Duration::from_secs(2));
    }
    // The client leaves while the REGISTER is unanswered: the task still ends within the
    // transaction timeout and closes its socket (and there is nothing to unregister).
    for (port, transport) in [
        (silent_udp.port, Transport::Udp),
        (tcp_port, Transport::Tcp),
    ] {
        let mut gone = gw.ws().await;
        gone.login(&token("crm1", "pw", port, transport)).await;
        gone.expect("registering").await;
        drop(gone);
        wait_fds(pid, baseline, Duration::from_secs(4));
    }
    assert_eq!(gw.metric("siptoken_gateway_sessions"), 1.0);
    assert_eq!(gw.metric("siptoken_gateway_registered_accounts"), 0.0);
    ws.ping().await;
}

/// Answers every UDP request with `100 Trying` and never with a final response.
fn trying_forever(stop: Arc<AtomicBool>) -> (u16, std::thread::JoinHandle<usize>) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = s.local_addr().unwrap().port();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let h = std::thread::spawn(move || {
        let mut answered = 0;
        let mut buf = [0u8; 65536];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, from)) = s.recv_from(&mut buf) else {
                continue;
            };
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            let mut resp = "SIP/2.0 100 Trying\r\n".to_owned();
            for l in req.lines() {
                let name = l.split(':').next().unwrap_or("").to_ascii_lowercase();
                if ["via", "from", "to", "call-id", "cseq"].contains(&name.as_str()) {
                    resp.push_str(l);
                    resp.push_str("\r\n");
                }
            }
            resp.push_str("Content-Length: 0\r\n\r\n");
            let _ = s.send_to(resp.as_bytes(), from);
            answered += 1;
        }
        answered
    });
    (port, h)
}

/// Accepts TCP connections and trickles a response that never ends, a byte every 100 ms.
fn trickling_tcp() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let _ = s.write_all(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK");
            let until = Instant::now() + Duration::from_secs(10);
            while Instant::now() < until && s.write_all(b"x").is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_registrars_are_bounded_by_the_transaction_timeout() {
    let stop = Arc::new(AtomicBool::new(false));
    let (trying, answers) = trying_forever(stop.clone());
    let trickle = trickling_tcp();
    let gw = Gateway::start("sip_t1_ms = 100\nsip_transaction_timeout_ms = 1500");
    let pid = gw.pid();
    let mut ws = gw.ws().await;
    ws.ping().await;
    let baseline = open_fds(pid);
    for (port, transport, what) in [
        (trying, Transport::Udp, "100 Trying, then nothing"),
        (trickle, Transport::Tcp, "a response trickled byte by byte"),
    ] {
        let t = Instant::now();
        ws.login(&token("crm1", "pw", port, transport)).await;
        ws.expect("registering").await;
        ws.expect_error("sip_timeout").await;
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
            "{what}: {took:?}"
        );
        wait_fds(pid, baseline, Duration::from_secs(2));
    }
    stop.store(true, Ordering::Relaxed);
    assert!(
        answers.join().unwrap() >= 1,
        "the UDP registrar answered 100 Trying"
    );
    ws.ping().await;
    assert_eq!(gw.get("/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_streams_per_connection_are_bounded() {
    let gw = Gateway::start("http2_max_streams = 2");
    let h2 = H2::connect(gw.addr).await;
    let mut a = h2.open().await;
    let mut b = h2.open().await;
    a.ping().await;
    b.ping().await;
    // A third session on the connection waits for a free stream ...
    let third = h2.try_open(None);
    let mut third = std::pin::pin!(third);
    assert!(
        tokio::time::timeout(Duration::from_millis(700), third.as_mut())
            .await
            .is_err(),
        "a third stream opened past http2_max_streams = 2"
    );
    // ... while another connection is not affected ...
    let mut other = H2::connect(gw.addr).await.open().await;
    other.ping().await;
    // ... and gets one when a session on the connection ends.
    drop(a);
    let (status, ws) = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the waiting stream opened once a session ended");
    assert_eq!(status, 200);
    ws.unwrap().ping().await;
    b.ping().await;
}
