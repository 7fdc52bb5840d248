//! Connection-level abuse of the gateway, as an outside attacker would try it (issue 14, items 1,
//! 4 and 6), on the real binary: sockets that never log in holding the session limit, pongs
//! passing for activity, floods from one address over HTTP/1.1 and HTTP/2, HTTP/2 connections
//! and request bodies that never end, and DNS rebinding past the Origin check. Each test first
//! reproduced the attack against the gateway as it was (the comment says what it did then).

#[path = "gateway/harness.rs"]
mod harness;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use harness::h2_client;
use harness::*;
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// A TCP connection to `addr` from the loopback address `source` (127.0.0.0/8 is all loopback,
/// so each source is another client address for the gateway).
async fn tcp_from(source: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{source}:0").parse().unwrap()).unwrap();
    socket.connect(addr).await.unwrap()
}

/// A WebSocket session over HTTP/1.1 from the loopback address `source`.
async fn ws_from(source: &str, addr: SocketAddr) -> Ws {
    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp_from(source, addr).await);
    let (stream, _) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), tcp)
        .await
        .unwrap();
    Ws { stream }
}

/// An HTTP/2 connection from `source` for requests with bodies of type `B`, with the task
/// driving it (it ends when the connection does).
async fn h2_from<B>(
    source: &str,
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<B>,
    tokio::task::JoinHandle<()>,
)
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let tcp = tcp_from(source, addr).await;
    let (send, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    (
        send,
        tokio::spawn(async move {
            let _ = conn.await;
        }),
    )
}

/// Waits (at most `within`) until the task driving an HTTP/2 connection ends, that is until
/// the connection is closed; panics with `what` otherwise. Returns how long that took.
async fn h2_closed(
    task: &mut tokio::task::JoinHandle<()>,
    within: Duration,
    what: &str,
) -> Duration {
    let t = Instant::now();
    tokio::time::timeout(within, task)
        .await
        .expect(what)
        .unwrap();
    t.elapsed()
}

/// Opens a WebSocket on an HTTP/2 connection (extended CONNECT): `None` unless answered 200.
async fn h2_ws(
    send: &hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    addr: SocketAddr,
) -> Option<Ws<H2Stream>> {
    let (status, io) = h2_client::extended_connect(send, &addr.to_string(), None)
        .await
        .unwrap();
    assert!(status == 200 || io.is_none(), "{status}");
    let io = io?;
    let stream = tokio_tungstenite::WebSocketStream::from_raw_socket(
        io,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    Some(Ws { stream })
}

/// Reads the WebSocket until the gateway closes it (answering its pings meanwhile, as browsers
/// do); returns the close frame and how long it took, or `None` if it stayed open `within`.
async fn close_within<S>(ws: &mut Ws<S>, within: Duration) -> Option<(u16, String, Duration)>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let t = Instant::now();
    loop {
        let left = within.checked_sub(t.elapsed())?;
        match tokio::time::timeout(left, ws.stream.next()).await {
            Err(_) => return None,
            Ok(Some(Ok(Message::Close(c)))) => {
                let c = c.expect("a close frame with a code");
                return Some((u16::from(c.code), c.reason.to_string(), t.elapsed()));
            }
            Ok(Some(Ok(_))) => {}
            Ok(other) => panic!("socket ended without a close frame: {other:?}"),
        }
    }
}

/// Expects `session_limit` and close code 1013 on a fresh session.
async fn expect_refused<S>(ws: &mut Ws<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    ws.expect_error("session_limit").await;
    let (code, _, _) = close_within(ws, Duration::from_secs(5))
        .await
        .expect("closed after session_limit");
    assert_eq!(code, u16::from(CloseCode::Again));
}

/// Item 1. Before: three sockets that never logged in (answering the gateway's pings) held all
/// three sessions of `max_sessions = 3`, and a fourth client got `session_limit` for as long as
/// they stayed (still after 20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_that_never_log_in_lose_their_slot_at_the_login_deadline() {
    // Default login deadline (15 s), so this also checks the default.
    let gw = Gateway::start("max_sessions = 3");
    let mut silent = Vec::new();
    for _ in 0..3 {
        let mut ws = gw.ws().await;
        ws.ping().await; // counted before the next one connects; a ping is not a login
        silent.push(ws);
    }
    let t0 = Instant::now();
    let mut fourth = gw.ws().await;
    expect_refused(&mut fourth).await;
    // Each silent socket is told, then closed with 4401, once the deadline passes.
    for ws in silent.iter_mut() {
        let v = ws.recv_within(Duration::from_secs(25)).await;
        assert_eq!(
            (v["type"].as_str(), v["code"].as_str()),
            (Some("error"), Some("login_timeout")),
            "{v}"
        );
        let (code, reason, _) = close_within(ws, Duration::from_secs(5))
            .await
            .expect("closed after login_timeout");
        assert_eq!((code, reason.as_str()), (4401, "login timeout"));
    }
    let waited = t0.elapsed();
    assert!(
        waited > Duration::from_secs(13) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    gw.wait_no_sessions(Duration::from_secs(5)).await;
    let mut fourth = gw.ws().await;
    fourth.ping().await;
    assert_eq!(gw.closed_total("login_timeout"), 3.0);
}

/// Item 1. A socket that logs in keeps its slot past the login deadline; one that logs out has
/// the deadline again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_deadline_applies_while_a_socket_holds_no_account() {
    let gw = Gateway::start("login_timeout_seconds = 1");
    let mut ws = gw.ws().await;
    ws.login(&token_without_sip()).await;
    ws.expect("authenticated").await;
    tokio::time::sleep(Duration::from_millis(1800)).await;
    ws.ping().await;
    ws.logout().await;
    let (code, _, after) = close_within(&mut ws, Duration::from_secs(4))
        .await
        .expect("closed after logging out");
    assert_eq!(code, 4401);
    assert!(after < Duration::from_secs(3), "{after:?}");
    // Failed logins do not stop the clock either: one every 200 ms until the gateway closes.
    let mut bad = gw.ws().await;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        let login = Message::Text(
            json!({"type": "login", "token": "CRM:zz"})
                .to_string()
                .into(),
        );
        if futures_util::SinkExt::send(&mut bad.stream, login)
            .await
            .is_err()
        {
            break;
        }
        match tokio::time::timeout(Duration::from_secs(1), bad.stream.next()).await {
            Ok(Some(Ok(Message::Text(m)))) => {
                let v: serde_json::Value = serde_json::from_str(m.as_str()).unwrap();
                if v["code"] == "login_timeout" {
                    break;
                }
                assert_eq!(v["code"], "token_rejected", "{v}");
            }
            Ok(Some(Ok(Message::Close(_))) | None | Some(Err(_))) => break,
            Ok(Some(Ok(_))) | Err(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    gw.wait_closed_total("login_timeout", 2.0).await;
}

/// Item 1. Before: a logged-in socket that only answered the gateway's WebSocket pings (which
/// any client library does by itself) never counted as idle, so it held its slot for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pongs_do_not_count_as_activity() {
    let gw = Gateway::start("ws_idle_timeout_seconds = 2");
    let mut pongs_only = gw.ws().await;
    pongs_only.login(&token_without_sip()).await;
    pongs_only.expect("authenticated").await;
    let mut talking = gw.ws().await;
    talking.login(&token_without_sip()).await;
    talking.expect("authenticated").await;
    let chatter = async {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(4) {
            talking.ping().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        talking
    };
    let watch = close_within(&mut pongs_only, Duration::from_secs(5));
    let (closed, mut talking) = tokio::join!(watch, chatter);
    let (code, reason, after) = closed.expect("a socket that only answers pings is idle");
    assert_eq!((code, reason.as_str()), (4408, "idle timeout"));
    assert!(after < Duration::from_secs(4), "{after:?}");
    // The client that sends messages stayed.
    talking.ping().await;
}

/// Item 1. Per-address caps: one address cannot take every session, nor every connection.
/// Before: no such keys; with `max_sessions = 6` alone, six sessions from 127.0.0.1 locked
/// 127.0.0.2 out (`session_limit`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_session_or_connection() {
    let gw =
        Gateway::start("max_sessions = 6\nmax_sessions_per_ip = 3\nmax_connections_per_ip = 5");
    let mut mine = Vec::new();
    for _ in 0..3 {
        let mut ws = ws_from("127.0.0.1", gw.addr).await;
        ws.ping().await;
        mine.push(ws);
    }
    let mut fourth = ws_from("127.0.0.1", gw.addr).await;
    let v = fourth.recv().await;
    assert_eq!(v["code"], "session_limit", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("this address"),
        "{v}"
    );
    drop(fourth);
    // Another address still gets in.
    let mut other = ws_from("127.0.0.2", gw.addr).await;
    other.ping().await;
    // Connections: 3 WebSockets + 2 more are the five allowed; the sixth is closed at once,
    // before any HTTP, while 127.0.0.2 can still connect.
    gw.wait_metric("siptoken_gateway_sessions", Duration::from_secs(5), |v| {
        v == 4.0
    })
    .await;
    let idle: Vec<_> = (0..2)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sixth = TcpStream::connect(gw.addr).unwrap();
    sixth
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = sixth.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the sixth connection got an answer");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let mut other2 = ws_from("127.0.0.2", gw.addr).await;
    other2.ping().await;
    drop(idle);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.closed_total("connection_limit_per_ip"), 1.0);
    for ws in mine.iter_mut() {
        ws.ping().await;
    }
}

/// Item 1, over HTTP/2. Before: ten HTTP/2 connections carrying streams that never log in
/// filled `max_sessions` from one address (at the defaults, 10 connections × 1000 streams fill
/// all 10,000 sessions), locking everyone else out; here at a hundredth of the scale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_stream_flood_from_one_address_leaves_room_for_others() {
    let gw = Gateway::start(
        "max_sessions = 100\nhttp2_max_streams = 10\nmax_sessions_per_ip = 40\n\
         login_timeout_seconds = 8\nhandshake_timeout_seconds = 2",
    );
    // (8 s: an admitted session that met its login deadline while the flood was still being
    // opened would free its slot for a later stream; the opening is timed below.)
    let t0 = Instant::now();
    let mut flood = Vec::new();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for _ in 0..10 {
        let (send, task) = h2_from("127.0.0.1", gw.addr).await;
        for _ in 0..10 {
            let mut ws = h2_ws(&send, gw.addr).await.expect("stream opened");
            // (A refused stream may already be closed for sending: its answer is there anyway.)
            let ping = Message::Text(json!({"type": "ping"}).to_string().into());
            let _ = futures_util::SinkExt::send(&mut ws.stream, ping).await;
            let v = ws.recv().await;
            if v["type"] == "pong" {
                admitted.push(ws);
            } else {
                assert_eq!(v["code"], "session_limit", "{v}");
                refused += 1;
            }
        }
        flood.push((send, task));
    }
    let opened = t0.elapsed();
    assert!(
        opened < Duration::from_secs(8),
        "opening the flood took {opened:?}, past the login deadline"
    );
    assert_eq!((admitted.len(), refused), (40, 60));
    // Another address still gets a session, over HTTP/2 too.
    let (send, _task) = h2_from("127.0.0.2", gw.addr).await;
    let mut other = h2_ws(&send, gw.addr).await.expect("stream opened");
    other.ping().await;
    // The flood's sessions end at the login deadline, and then its connections, which carry no
    // stream any more, at the idle timeout.
    for ws in admitted.iter_mut() {
        let (code, _, _) = close_within(ws, Duration::from_secs(11))
            .await
            .expect("closed at the login deadline");
        assert_eq!(code, 4401);
    }
    drop(admitted);
    // (The client keeps its end open: the gateway is the one closing.)
    for (_send, task) in flood.iter_mut() {
        tokio::time::timeout(Duration::from_secs(6), task)
            .await
            .expect("the flood's HTTP/2 connection was closed")
            .unwrap();
    }
}

/// A session on an HTTP/2 connection that answers a ping: `None` if the stream is refused, the
/// session is refused (`session_limit`), or anything fails on the way (the connection may be
/// closed under a flood).
async fn admitted_h2_session(
    send: hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    addr: SocketAddr,
) -> Option<Ws<H2Stream>> {
    let (status, io) = h2_client::extended_connect(&send, &addr.to_string(), None)
        .await
        .ok()?;
    let io = io.filter(|_| status == 200)?;
    let stream = tokio_tungstenite::WebSocketStream::from_raw_socket(
        io,
        tokio_tungstenite::tungstenite::protocol::Role::Client,
        None,
    )
    .await;
    let mut ws = Ws { stream };
    pongs(&mut ws).await.then_some(ws)
}

/// Whether the session answers a ping with `pong` (within 60 s): false when it was refused,
/// or has ended since (its HTTP/2 connection may be closed under a flood).
async fn pongs(ws: &mut Ws<H2Stream>) -> bool {
    let ping = Message::Text(json!({"type": "ping"}).to_string().into());
    if futures_util::SinkExt::send(&mut ws.stream, ping)
        .await
        .is_err()
    {
        return false;
    }
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.stream.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                return v["type"] == "pong";
            }
            Ok(Some(Ok(_))) => {}
            _ => return false,
        }
    }
}

/// The login deadline of the full-scale flood: long enough that no admitted session expires
/// while the flood is still being opened on a slow shared machine.
const FLOOD_LOGIN_DEADLINE: Duration = Duration::from_secs(60);

/// Item 1 at full scale and default limits: 10 HTTP/2 connections × 1000 streams from one
/// address. Before: they took all 10,000 sessions and locked everyone else out. Now one address
/// gets at most `max_sessions_per_ip` (1000) of them, another address still gets in, and the
/// flood's sessions end at the login deadline. (Refused streams that the flood keeps
/// writing to count as stream errors for the HTTP/2 library, which ends such a connection
/// with GOAWAY after 1024 of them: the flood may lose whole connections on the way.)
///
/// The login deadline is raised from 15 s to [`FLOOD_LOGIN_DEADLINE`]: on a slow machine the
/// opening itself took 17-20 s, the first sessions met their deadline, and their
/// freed slots went to later streams — 1010 admitted over time, never more than 1000 at once.
/// The test asserts that the opening beat the deadline rather than assuming it, and counts the
/// sessions still open after it (connections the flood loses free slots too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "10,000 HTTP/2 streams, a minute or two of CPU: run by scripts/ci/70-load.sh"]
async fn ten_thousand_http2_streams_at_the_defaults() {
    let gw = Gateway::start(&format!(
        "login_timeout_seconds = {}",
        FLOOD_LOGIN_DEADLINE.as_secs()
    ));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    let mut connections = Vec::new();
    for _ in 0..10 {
        let (send, task) = h2_from("127.0.0.1", gw.addr).await;
        for _ in 0..1000 {
            tasks.push(tokio::spawn(admitted_h2_session(send.clone(), gw.addr)));
        }
        connections.push((send, task));
    }
    let mut admitted = Vec::new();
    for t in tasks {
        admitted.extend(t.await.unwrap());
    }
    let opened = t0.elapsed();
    assert!(
        opened < FLOOD_LOGIN_DEADLINE,
        "opening the flood took {opened:?}, longer than the login deadline: the admitted count \
         below could include slots freed by expired sessions"
    );
    // Sessions admitted over the opening can exceed the limit without breaking it: a whole
    // HTTP/2 connection may be closed under the flood (GOAWAY), and its sessions' slots go to
    // later streams (seen once: 1001). The limit is on sessions open at once: those that still
    // answer a ping now, with nothing more being opened.
    let open = futures_util::future::join_all(admitted.iter_mut().map(pongs))
        .await
        .into_iter()
        .filter(|open| *open)
        .count();
    assert!(
        (1..=1000).contains(&open),
        "{open} sessions open at once for one address ({} admitted during the opening)",
        admitted.len()
    );
    let sessions = gw.metric("siptoken_gateway_sessions");
    assert!(sessions <= 1000.0, "{sessions}");
    let (send, _task) = h2_from("127.0.0.2", gw.addr).await;
    let mut other = h2_ws(&send, gw.addr).await.expect("stream opened");
    other.ping().await;
    gw.wait_metric(
        "siptoken_gateway_sessions",
        FLOOD_LOGIN_DEADLINE + Duration::from_secs(15),
        |v| v <= 1.0,
    )
    .await;
    eprintln!(
        "10,000 streams tried in {opened:?}, {} sessions admitted, {open} of them open at once; \
         all of them gone {:?} after the start",
        admitted.len(),
        t0.elapsed()
    );
    drop(admitted);
}

/// Reads from `s` until the gateway closes the connection; returns what arrived and how long
/// that took (panics if it stays open `within`).
fn read_to_close(s: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let t = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, t.elapsed()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (got, t.elapsed()),
            Err(_) => {}
        }
        assert!(
            t.elapsed() < within,
            "connection still open after {within:?}; received {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

/// Item 4. Before: an HTTP/2 connection that made one request (`GET /healthz`) and then only
/// answered pings stayed open indefinitely (still open after 8 s with a 1 s handshake
/// timeout). HTTP/1.1 keep-alive connections were already bounded (hyper's header timeout);
/// both are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_with_no_request_in_progress_are_closed() {
    let gw = Gateway::start("handshake_timeout_seconds = 1");
    let (mut send, mut task) = h2_from("127.0.0.1", gw.addr).await;
    send.ready().await.unwrap();
    let req = hyper::Request::get(format!("http://{}/healthz", gw.addr))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = http_body_util::BodyExt::collect(resp.into_body()).await;
    assert_eq!(&body.unwrap().to_bytes()[..], b"ok\n");
    let after = h2_closed(
        &mut task,
        Duration::from_secs(8),
        "an HTTP/2 connection without streams was closed",
    )
    .await;
    assert!(after < Duration::from_secs(3), "{after:?}");
    drop(send);
    // HTTP/1.1 keep-alive: the same rule.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    write!(s, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", gw.addr).unwrap();
    let (got, after) = read_to_close(&mut s, Duration::from_secs(8));
    assert!(got.starts_with(b"HTTP/1.1 200"), "{got:?}");
    assert!(after < Duration::from_secs(3), "{after:?}");
    // An open WebSocket is a request in progress: its HTTP/2 connection stays.
    let (send, mut task) = h2_from("127.0.0.1", gw.addr).await;
    let mut ws = h2_ws(&send, gw.addr).await.unwrap();
    ws.login(&token_without_sip()).await;
    ws.expect("authenticated").await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        ws.ping().await;
    }
    assert!(!task.is_finished());
    // Once it ends, the connection has no stream left and is closed too.
    ws.logout().await;
    drop(ws);
    h2_closed(
        &mut task,
        Duration::from_secs(5),
        "closed once its last stream ended",
    )
    .await;
    assert_eq!(gw.get("/healthz").0, 200);
}

/// Item 4. Before: a request whose body never finished held its connection open
/// indefinitely (HTTP/2: still open after 8 s). No route takes a body: one is refused at once
/// with 413, over HTTP/1.1 and HTTP/2, and the connection does not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_are_refused_without_waiting_for_them() {
    use http_body_util::BodyExt;
    let gw = Gateway::start("handshake_timeout_seconds = 1");
    // HTTP/2: a POST whose body trickles a byte every 100 ms, for ever.
    let (mut send, mut task) = h2_from("127.0.0.1", gw.addr).await;
    send.ready().await.unwrap();
    let trickle = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(bytes::Bytes::from_static(
                b"x",
            ))),
            (),
        ))
    });
    let req = hyper::Request::post(format!("http://{}/healthz", gw.addr))
        .body(BodyExt::boxed(http_body_util::StreamBody::new(trickle)))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(3), send.send_request(req))
        .await
        .expect("answered before the body ends")
        .unwrap();
    assert_eq!(resp.status(), 413);
    let after = h2_closed(
        &mut task,
        Duration::from_secs(8),
        "the connection did not wait for the body",
    )
    .await;
    assert!(after < Duration::from_secs(4), "{after:?}");
    drop(send);
    // HTTP/1.1: a declared body that trickles.
    let mut s = TcpStream::connect(gw.addr).unwrap();
    write!(
        s,
        "POST /ws HTTP/1.1\r\nHost: {}\r\nContent-Length: 100000\r\n\r\nxx",
        gw.addr
    )
    .unwrap();
    let addr = gw.addr;
    let mut writer = s.try_clone().unwrap();
    std::thread::spawn(move || {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(8) && writer.write_all(b"x").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = addr;
    });
    let (got, after) = read_to_close(&mut s, Duration::from_secs(8));
    assert!(
        got.starts_with(b"HTTP/1.1 413"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(after < Duration::from_secs(3), "{after:?}");
    // A chunked one too, and GET with a body.
    for head in [
        "POST /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",
        "GET /healthz HTTP/1.1\r\nContent-Length: 10\r\n",
    ] {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        write!(s, "{head}Host: {}\r\n\r\n", gw.addr).unwrap();
        let (got, after) = read_to_close(&mut s, Duration::from_secs(8));
        assert!(got.starts_with(b"HTTP/1.1 413"), "{head}: {got:?}");
        assert!(after < Duration::from_secs(3), "{after:?}");
    }
    assert_eq!(gw.get("/healthz").0, 200);
}

/// Item 4. Before: no cap on connections at all. Past `max_connections`, a new connection is
/// closed at once (no HTTP answer), and the gateway accepts again once others close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_in_total() {
    let gw = Gateway::start("max_connections = 4");
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    for source in ["127.0.0.1", "127.0.0.2"] {
        let mut s = tcp_from(source, gw.addr).await.into_std().unwrap();
        s.set_nonblocking(false).unwrap();
        // (It may be closed before this is written.)
        let _ = write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
        let (got, after) = read_to_close(&mut s, Duration::from_secs(3));
        assert!(got.is_empty(), "{source}: {got:?}");
        assert!(after < Duration::from_secs(3), "{after:?}");
    }
    held.pop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.get("/healthz").0, 200);
    // Read the counter with room to spare: the gateway may not have seen the /healthz
    // connection close yet, and a /metrics request refused at the cap would read as 0 (it did,
    // once, in CI) and count a third refusal.
    drop(held);
    gw.wait_closed_total("connection_limit", 2.0).await;
}

/// A WebSocket upgrade over HTTP/1.1 with these `Host` and `Origin` headers; the status.
fn upgrade(addr: SocketAddr, host: &str, origin: Option<&str>) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let origin = origin
        .map(|o| format!("Origin: {o}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: {host}\r\n{origin}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    String::from_utf8_lossy(&head[9..12]).parse().unwrap()
}

/// Item 6. Before: the Origin check compared the origin with the request's own `Host`, so a
/// page on `http://evil.example:PORT` whose name was rebound to the gateway's address passed
/// (101), and `https://crm.example.org:443` did not match an allowed `https://crm.example.org`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_rebinding_does_not_pass_the_origin_check() {
    let gw = Gateway::start("allowed_origins = [\"https://crm.example.org\"]");
    let port = gw.addr.port();
    let evil = format!("evil.example:{port}");
    assert_eq!(
        upgrade(gw.addr, &evil, Some(&format!("http://{evil}"))),
        403
    );
    // Over HTTP/2 (the authority pseudo-header instead of Host).
    let (send, _task) = h2_from("127.0.0.1", gw.addr).await;
    let (status, _) = h2_client::extended_connect(&send, &evil, Some(&format!("http://{evil}")))
        .await
        .unwrap();
    assert_eq!(status, 403);
    // The gateway's own origins (no public_origin: the listen address and localhost, the
    // scheme it serves, the browser's spelling or ws://), whatever the Host says.
    for origin in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("HTTP://LocalHost:{port}/"),
        format!("ws://127.0.0.1:{port}"),
    ] {
        assert_eq!(upgrade(gw.addr, &evil, Some(&origin)), 101, "{origin}");
    }
    let (status, _) =
        h2_client::extended_connect(&send, &evil, Some(&format!("http://localhost:{port}")))
            .await
            .unwrap();
    assert_eq!(status, 200);
    for origin in [
        format!("https://127.0.0.1:{port}"),
        format!("wss://localhost:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "http://127.0.0.1".to_owned(),
        format!("http://127.0.0.1:{port}.evil.example"),
        format!("http://127.0.0.1:{port}@evil.example"),
        "null".to_owned(),
    ] {
        assert_eq!(upgrade(gw.addr, &evil, Some(&origin)), 403, "{origin}");
    }
    // Allowed origins with the default port spelled out, or as a WebSocket scheme.
    for origin in [
        "https://crm.example.org",
        "https://crm.example.org:443",
        "wss://crm.example.org",
    ] {
        assert_eq!(upgrade(gw.addr, &evil, Some(origin)), 101, "{origin}");
    }
    for origin in ["http://crm.example.org", "https://crm.example.org:8443"] {
        assert_eq!(upgrade(gw.addr, &evil, Some(origin)), 403, "{origin}");
    }
    // No Origin (not a browser): allowed, as before.
    assert_eq!(upgrade(gw.addr, &evil, None), 101);
}

/// Item 6. With `public_origin` set, the gateway's own origins are those and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_origins_replace_the_listen_address() {
    let gw =
        Gateway::start("public_origin = [\"https://gw.example.org\", \"http://gw.internal:8088\"]");
    let port = gw.addr.port();
    for origin in [
        "https://gw.example.org",
        "https://gw.example.org:443",
        "wss://gw.example.org",
        "http://gw.internal:8088",
        "ws://GW.internal:8088",
    ] {
        assert_eq!(
            upgrade(gw.addr, "gw.example.org", Some(origin)),
            101,
            "{origin}"
        );
    }
    for origin in [
        "http://gw.example.org".to_owned(),
        "http://gw.internal".to_owned(),
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
    ] {
        assert_eq!(
            upgrade(gw.addr, "gw.example.org", Some(&origin)),
            403,
            "{origin}"
        );
    }
    // A single origin may be written as a string.
    let gw = Gateway::start("public_origin = \"https://gw.example.org\"");
    assert_eq!(upgrade(gw.addr, "x", Some("https://gw.example.org")), 101);
}
