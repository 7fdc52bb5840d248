//! The gateway against a real Kamailio registrar (Debian `kamailio`): register, refresh,
//! logout, abrupt close, two sessions of one account, wrong password, SHA-256, TCP, OPTIONS
//! keep-alives and SIGTERM — every binding checked through Kamailio itself (`kamcmd ul.dump`).

#[path = "gateway/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;
use siptoken::Transport;

const USERS: &[(&str, &str)] = &[("alice", "s3cr<t \"x\""), ("bob", "b0b")];

/// A token for `user` (one of [`USERS`], with its password) registering at `kam`.
fn user_token(user: &str, kam: &Kamailio, transport: Transport) -> String {
    let (_, password) = USERS
        .iter()
        .find(|(u, _)| *u == user)
        .expect("one of USERS");
    token(user, password, kam.port, transport)
}

/// Logs `user` in on `ws` with `tok` and waits until Kamailio holds its one binding
/// (returned).
async fn register_with(ws: &mut Ws, kam: &Kamailio, user: &str, tok: &str) -> Vec<String> {
    ws.login_registered(tok).await;
    kam.wait_bindings(user, 1, Duration::from_secs(2))
}

/// Logs `user` (one of [`USERS`]) in on `ws`, registering at `kam` over `transport`, and waits
/// until Kamailio holds its one binding (returned).
async fn register(ws: &mut Ws, kam: &Kamailio, user: &str, transport: Transport) -> Vec<String> {
    register_with(ws, kam, user, &user_token(user, kam, transport)).await
}

/// Starts Kamailio (MD5 digest, [`USERS`]) and a gateway with `config`, and opens a WebSocket.
async fn kamailio_gateway_ws(config: &str) -> (Kamailio, Gateway, Ws) {
    kamailio_with_gateway_ws(KamailioOptions::default(), config).await
}

/// Logs `ws` out and waits (at most 2 s) until Kamailio holds no binding of `user` left.
async fn log_out(ws: &mut Ws, kam: &Kamailio, user: &str) {
    ws.logout().await;
    kam.wait_bindings(user, 0, Duration::from_secs(2));
}

/// [`kamailio_gateway_ws`] with other Kamailio `options`.
async fn kamailio_with_gateway_ws(
    options: KamailioOptions,
    config: &str,
) -> (Kamailio, Gateway, Ws) {
    let kam = Kamailio::start_with("MD5", USERS, options);
    let gw = Gateway::start(config);
    let ws = gw.ws().await;
    (kam, gw, ws)
}

/// Sends both logins before reading either answer, then waits for both registrations.
async fn login_both(a: &mut Ws, b: &mut Ws, tokens: [String; 2]) {
    let [ta, tb] = tokens;
    a.login(&ta).await;
    b.login(&tb).await;
    for ws in [a, b] {
        ws.expect_registration().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn registers_refreshes_and_unregisters_on_logout_udp() {
    // Nonces expire after 1 s, so the refresh (which reuses the last challenge) meets a stale
    // nonce and must answer the new challenge. Kamailio compares whole seconds, so a nonce can
    // pass for up to 2 s: with a 4 s expiry the first refresh comes 2.2-3.4 s after the login.
    let options = KamailioOptions {
        nonce_expire: 1,
        ..Default::default()
    };
    let (kam, gw, mut ws) = kamailio_with_gateway_ws(options, "register_expires = 4").await;
    let t0 = Instant::now();
    let tok = user_token("alice", &kam, Transport::Udp);
    ws.login(&tok).await;
    let v = ws.expect("registering").await;
    assert_eq!(v["aor"], "sip:alice@sip.test");
    let v = ws.expect("registered").await;
    eprintln!("login latency (UDP, MD5 challenge): {:?}", t0.elapsed());
    assert_eq!(v["aor"], "sip:alice@sip.test");
    assert_eq!(v["expires"], 4);
    let b = kam.wait_bindings("alice", 1, Duration::from_secs(2));
    assert!(b[0].starts_with("sip:st-"), "{b:?}");

    // The registration outlives its first expiry because the gateway refreshes it.
    let v = ws.recv_within(Duration::from_secs(5)).await;
    assert_eq!(v["type"], "registered", "{v}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(kam.bindings("alice"), b, "same contact, refreshed");
    assert!(gw.metric("siptoken_gateway_refreshes_total") >= 1.0);
    assert!(
        kam.log().contains("auth failed for alice: -4"),
        "the refresh did not meet a stale nonce:\n{}",
        kam.log()
    );
    assert_eq!(gw.metric("siptoken_gateway_registered_accounts"), 1.0);
    assert_eq!(
        gw.metric("siptoken_gateway_logins_total{outcome=\"registered\",code=\"\"}"),
        1.0
    );

    let v = ws.logout_after_refreshes().await;
    assert_eq!(v["aor"], "sip:alice@sip.test");
    assert!(kam.bindings("alice").is_empty(), "{}", kam.dump());
    ws.send(json!({"type": "logout"})).await;
    ws.expect_error("not_logged_in").await;
    assert_eq!(gw.metric("siptoken_gateway_registered_accounts"), 0.0);

    // Nothing secret in the gateway's log at the most verbose level (trace).
    let log = gw.log();
    assert!(log.contains("DEBUG"), "the gateway did not log verbosely");
    assert!(!log.contains("s3cr<t"), "password in the log");
    assert!(!log.contains(&tok), "whole token in the log");
    assert!(
        !log.contains(&tok[tok.len() - 64..]),
        "token body in the log"
    );
    assert!(log.contains("sip:alice@sip.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn tcp_binding_is_removed_when_the_socket_closes_abruptly() {
    let (kam, gw, mut ws) = kamailio_gateway_ws("").await;
    let v = ws
        .login_registered(&user_token("bob", &kam, Transport::Tcp))
        .await;
    assert_eq!(v["expires"], 600);
    let b = kam.wait_bindings("bob", 1, Duration::from_secs(2));
    assert!(b[0].contains("transport=tcp"), "{b:?}");
    // Drop the TCP connection without a WebSocket close frame.
    drop(ws);
    kam.wait_bindings("bob", 0, Duration::from_secs(5));
    let ok = gw.get("/healthz");
    assert_eq!(ok, (200, "ok\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn two_sessions_of_one_account_are_two_bindings() {
    let (kam, gw, mut a) = kamailio_gateway_ws("").await;
    let mut b = gw.ws().await;
    let tokens = [Transport::Udp; 2].map(|t| user_token("bob", &kam, t));
    login_both(&mut a, &mut b, tokens).await;
    kam.wait_bindings("bob", 2, Duration::from_secs(2));
    a.logout().await;
    kam.wait_bindings("bob", 1, Duration::from_secs(2));
    b.ping().await;
    log_out(&mut b, &kam, "bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn wrong_password_is_sip_auth_failed_and_the_socket_stays_usable() {
    let (kam, gw, mut ws) = kamailio_gateway_ws("").await;
    ws.login(&token("alice", "wrong", kam.port, Transport::Udp))
        .await;
    ws.expect("registering").await;
    let v = ws.expect_error("sip_auth_failed").await;
    assert_eq!(v["sipStatus"], 401, "{v}");
    assert!(kam.bindings("alice").is_empty());
    ws.ping().await;
    register(&mut ws, &kam, "alice", Transport::Udp).await;
    assert_eq!(
        gw.metric("siptoken_gateway_logins_total{outcome=\"error\",code=\"sip_auth_failed\"}"),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn sha256_digest_against_kamailio() {
    let kam = Kamailio::start("SHA-256", USERS);
    let gw = Gateway::start("");
    let mut ws = gw.ws().await;
    register(&mut ws, &kam, "alice", Transport::Udp).await;
    log_out(&mut ws, &kam, "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn answers_kamailio_options_keepalives() {
    let (kam, gw, mut ws) = kamailio_gateway_ws("").await;
    ws.login_registered(&user_token("bob", &kam, Transport::Udp))
        .await;
    // nathelper pings every binding each second.
    gw.wait_metric(
        "siptoken_gateway_sip_requests_answered_total",
        Duration::from_secs(6),
        |answered| answered >= 1.0,
    )
    .await;
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn sigterm_unregisters_every_account_before_exit() {
    let (kam, mut gw, mut a) = kamailio_gateway_ws("").await;
    let mut b = gw.ws().await;
    let tokens = [
        user_token("alice", &kam, Transport::Udp),
        user_token("bob", &kam, Transport::Tcp),
    ];
    login_both(&mut a, &mut b, tokens).await;
    kam.wait_bindings("alice", 1, Duration::from_secs(2));
    kam.wait_bindings("bob", 1, Duration::from_secs(2));
    let status = gw.terminate(Duration::from_secs(15));
    assert!(status.success(), "{status:?}\n{}", gw.log());
    assert!(kam.bindings("alice").is_empty(), "{}", kam.dump());
    assert!(kam.bindings("bob").is_empty(), "{}", kam.dump());
    a.expect("unregistered").await;
    b.expect("unregistered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn registration_lost_when_the_registrar_goes_away() {
    // UDP: the next refresh (within 2 s) meets ICMP port unreachable. TCP: the connection
    // closes, the gateway reconnects at once and is refused.
    for transport in [Transport::Udp, Transport::Tcp] {
        let (kam, gw, mut ws) = kamailio_gateway_ws(
            "register_expires = 2\nsip_t1_ms = 100\nsip_transaction_timeout_ms = 1500",
        )
        .await;
        ws.login_registered(&user_token("bob", &kam, transport))
            .await;
        drop(kam);
        let v = loop {
            let v = ws.recv_within(Duration::from_secs(6)).await;
            if v["type"] != "registered" {
                break v;
            }
        };
        assert_eq!(v["type"], "registrationLost", "{transport:?}: {v}");
        assert_eq!(v["aor"], "sip:bob@sip.test");
        assert_eq!(v["code"], "sip_unreachable", "{transport:?}: {v}");
        assert_eq!(gw.metric("siptoken_gateway_registered_accounts"), 0.0);
        ws.send(json!({"type": "logout"})).await;
        ws.expect_error("not_logged_in").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn fifty_concurrent_sessions_register_and_all_go_away() {
    const N: usize = 50;
    let kam = Kamailio::start("MD5", USERS);
    let gw = Gateway::start("login_burst = 100");
    let mut handles = Vec::new();
    for _ in 0..N {
        let tok = user_token("bob", &kam, Transport::Udp);
        let addr = gw.addr;
        handles.push(tokio::spawn(async move {
            let mut ws = Ws::connect(addr, None).await;
            let t0 = Instant::now();
            ws.login_registered(&tok).await;
            (ws, t0.elapsed())
        }));
    }
    let mut sockets = Vec::new();
    let mut latencies = Vec::new();
    for h in handles {
        let (ws, d) = h.await.unwrap();
        sockets.push(ws);
        latencies.push(d);
    }
    latencies.sort();
    eprintln!(
        "{N} concurrent logins: p50 {:?}, p95 {:?}, max {:?}",
        latencies[N / 2],
        latencies[N * 95 / 100],
        latencies[N - 1]
    );
    let contacts = kam.wait_bindings("bob", N, Duration::from_secs(5));
    assert_eq!(gw.metric("siptoken_gateway_registered_accounts"), N as f64);
    // Over UDP every registration shares one socket: one local address, N Contact users.
    let hosts: std::collections::BTreeSet<&str> = contacts
        .iter()
        .map(|c| c.split_once('@').expect("user@host").1)
        .collect();
    assert_eq!(
        hosts.len(),
        1,
        "one UDP socket for one registrar: {contacts:?}"
    );
    let users: std::collections::BTreeSet<&str> = contacts
        .iter()
        .map(|c| c.split_once('@').unwrap().0)
        .collect();
    assert_eq!(
        users.len(),
        N,
        "a Contact user per registration: {contacts:?}"
    );
    // ... so the gateway holds about one descriptor per session (its WebSocket), not two.
    let fds = gw.open_fds();
    assert!(fds < N + 30, "{fds} open descriptors for {N} sessions");
    drop(sockets);
    kam.wait_bindings("bob", 0, Duration::from_secs(10));
    gw.wait_no_sessions(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn registrar_host_name_is_resolved() {
    let (kam, _gw, mut ws) = kamailio_gateway_ws("").await;
    let claims = siptoken::Claims::builder("bob", "b0b", DOMAIN)
        .outbound_proxy("localhost")
        .port(kam.port)
        .build()
        .unwrap();
    let tok = crm_token(&claims);
    register_with(&mut ws, &kam, "bob", &tok).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn one_socket_two_accounts_logout_unregisters_both() {
    let (kam, _gw, mut ws) = kamailio_gateway_ws("").await;
    ws.login_registered(&user_token("alice", &kam, Transport::Udp))
        .await;
    ws.login_registered(&user_token("bob", &kam, Transport::Tcp))
        .await;
    kam.wait_bindings("alice", 1, Duration::from_secs(2));
    kam.wait_bindings("bob", 1, Duration::from_secs(2));
    ws.send(json!({"type": "logout"})).await;
    let mut aors = vec![
        ws.expect("unregistered").await["aor"].to_string(),
        ws.expect("unregistered").await["aor"].to_string(),
    ];
    aors.sort();
    assert_eq!(aors, ["\"sip:alice@sip.test\"", "\"sip:bob@sip.test\""]);
    assert!(kam.bindings("alice").is_empty() && kam.bindings("bob").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn registrar_located_by_dns_srv() {
    let kam = Kamailio::start("MD5", USERS);
    let dns = Dnsmasq::start(&[
        ("_sip._udp.sip.test", "localhost", kam.port),
        ("_sip._tcp.sip.test", "localhost", kam.port),
    ]);
    let gw = Gateway::start(&format!("dns_servers = [\"127.0.0.1:{}\"]", dns.port));
    let mut ws = gw.ws().await;
    for (user, password, transport) in [
        ("alice", "s3cr<t \"x\"", Transport::Udp),
        ("bob", "b0b", Transport::Tcp),
    ] {
        // No outboundProxy and no port: the domain's SRV records say where the registrar is.
        let claims = siptoken::Claims::builder(user, password, DOMAIN)
            .transport(transport)
            .build()
            .unwrap();
        let tok = crm_token(&claims);
        let b = register_with(&mut ws, &kam, user, &tok).await;
        assert_eq!(
            b[0].contains("transport=tcp"),
            transport == Transport::Tcp,
            "{b:?}"
        );
    }
}

/// Kamailio closes TCP connections idle for 2 s (its timer notices after about 11 s).
fn short_tcp_lifetime() -> KamailioOptions {
    KamailioOptions {
        tcp_lifetime: 2,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn crlf_keepalives_keep_an_idle_tcp_connection_open() {
    let (kam, _gw, mut ws) =
        kamailio_with_gateway_ws(short_tcp_lifetime(), "tcp_keepalive_seconds = 1").await;
    let before = register(&mut ws, &kam, "bob", Transport::Tcp).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(kam.bindings("bob"), before, "the connection was replaced");
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn a_closed_idle_tcp_connection_is_replaced_without_a_stale_binding() {
    // No keep-alives: Kamailio closes the connection; the gateway reconnects, registers the new
    // Contact and removes the old one in the same REGISTER.
    let (kam, _gw, mut ws) =
        kamailio_with_gateway_ws(short_tcp_lifetime(), "tcp_keepalive_seconds = 0").await;
    let before = register(&mut ws, &kam, "bob", Transport::Tcp).await;
    let v = ws.recv_within(Duration::from_secs(20)).await;
    assert_eq!(v["type"], "registered", "{v}");
    let after = kam.wait_bindings("bob", 1, Duration::from_secs(2));
    assert_ne!(after, before, "a new connection has a new Contact");
    log_out(&mut ws, &kam, "bob").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn sigint_unregisters_too() {
    let (kam, mut gw, mut ws) = kamailio_gateway_ws("").await;
    register(&mut ws, &kam, "alice", Transport::Tcp).await;
    let status = gw.signal("INT", Duration::from_secs(15));
    assert!(status.success(), "{status:?}");
    assert!(kam.bindings("alice").is_empty(), "{}", kam.dump());
    ws.expect("unregistered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn registers_over_ipv6() {
    if !ipv6_loopback() {
        eprintln!("registers_over_ipv6: skipped (no IPv6 loopback on this machine)");
        return;
    }
    let kam = Kamailio::start("MD5", USERS);
    let gw = Gateway::start_with_args("", &["--sip-bind", "::1"]);
    let mut ws = gw.ws().await;
    // The outbound proxy bracketed, and bare (issue 14 item 7: written bracketed).
    for (user, password, transport, proxy) in [
        ("alice", "s3cr<t \"x\"", Transport::Udp, "[::1]"),
        ("bob", "b0b", Transport::Tcp, "::1"),
    ] {
        let claims = siptoken::Claims::builder(user, password, DOMAIN)
            .outbound_proxy(proxy)
            .port(kam.port)
            .transport(transport)
            .build()
            .unwrap();
        let tok = crm_token(&claims);
        let b = register_with(&mut ws, &kam, user, &tok).await;
        assert!(b[0].contains("@[::1]:"), "{b:?}");
    }
    ws.logout().await;
    ws.expect("unregistered").await;
    kam.wait_bindings("alice", 0, Duration::from_secs(2));
    kam.wait_bindings("bob", 0, Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio (scripts/ci/40-gateway.sh)"]
async fn websockets_over_http2_share_one_connection() {
    const N: usize = 20;
    let kam = Kamailio::start("MD5", USERS);
    let gw = Gateway::start("login_burst = 100\nhttp2_max_streams = 25");
    let h2 = H2::connect(gw.addr).await;
    let mut sessions = Vec::new();
    for _ in 0..N {
        let mut ws = h2.open().await;
        ws.login_registered(&user_token("bob", &kam, Transport::Udp))
            .await;
        sessions.push(ws);
    }
    kam.wait_bindings("bob", N, Duration::from_secs(5));
    assert_eq!(gw.metric("siptoken_gateway_sessions"), N as f64);
    // One TCP connection and one SIP socket for all of them.
    let fds = gw.open_fds();
    assert!(
        fds < 30,
        "{fds} open descriptors for {N} sessions on one connection"
    );

    // One session logging out leaves the others on the connection registered.
    let mut first = sessions.remove(0);
    first.logout().await;
    kam.wait_bindings("bob", N - 1, Duration::from_secs(5));
    for ws in sessions.iter_mut() {
        ws.ping().await;
    }

    // The Origin check holds over HTTP/2 too: the gateway's own origin (its :authority) passes,
    // another is refused with 403.
    let (status, ws) = h2.try_open(Some("https://evil.example")).await;
    assert_eq!((status, ws.is_none()), (403, true));
    let (status, _ws) = h2.try_open(Some(&format!("http://{}", gw.addr))).await;
    assert_eq!(status, 200);

    // The connection going away ends every session on it and unregisters every account.
    drop(sessions);
    drop(first);
    drop(_ws);
    drop(h2);
    kam.wait_bindings("bob", 0, Duration::from_secs(10));
    gw.wait_no_sessions(Duration::from_secs(5)).await;
}
