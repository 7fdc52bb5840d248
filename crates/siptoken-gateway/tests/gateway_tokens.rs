//! The gateway binary's WebSocket protocol without a registrar: token faults (each the
//! documented error and no SIP traffic sent), protocol errors, limits, the Origin check, and
//! failures that need only loopback sockets (unreachable, silent registrar).

#[path = "gateway/harness.rs"]
mod harness;

use std::time::Duration;

use futures_util::SinkExt;
use harness::*;
use serde_json::json;
use siptoken::{Claims, Issuer, KeyRing, Transport};
use tokio_tungstenite::tungstenite::Message;

fn claims(port: u16) -> siptoken::ClaimsBuilder {
    Claims::builder("crm1", "pw-never-logged", DOMAIN)
        .outbound_proxy("127.0.0.1")
        .port(port)
}

/// A gateway with the `config` lines whose `sip_tls_ca_file` is a fresh test CA (of
/// `sip.test`), and the directory holding it (keep it while the gateway runs).
fn gateway_trusting_a_test_ca(config: &str) -> (Gateway, tempfile::TempDir) {
    let pki = tempfile::tempdir().unwrap();
    let certs = Certs::make(pki.path(), "sip.test");
    let gw = Gateway::start(&format!(
        "{config}\nsip_tls_ca_file = \"{}\"",
        certs.ca.display()
    ));
    (gw, pki)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_faults_are_reported_and_send_no_sip() {
    let silent = Silent::new();
    let gw = Gateway::start("");
    let mut ws = gw.ws().await;
    let ring = ring();
    let now = now();

    let expired = Issuer::new(&ring)
        .issue(
            "CRM",
            &claims(silent.port)
                .issued(now - 4000)
                .expires(now - 3600)
                .build()
                .unwrap(),
        )
        .unwrap();
    let good = Issuer::new(&ring)
        .issue("CRM", &claims(silent.port).build().unwrap())
        .unwrap();
    // Flip one hex digit inside the ciphertext.
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() - 40;
    tampered[i] = if tampered[i] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    let other: KeyRing = "ERP.k1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
        .parse()
        .unwrap();
    let unknown_app = Issuer::new(&other)
        .issue("ERP", &claims(silent.port).build().unwrap())
        .unwrap();
    let legacy = Issuer::new(&ring)
        .legacy()
        .issue("OLD", &claims(silent.port).build().unwrap())
        .unwrap();
    // Valid tokens whose claims would inject header lines into the REGISTER.
    let injected_domain = Issuer::new(&ring)
        .issue(
            "CRM",
            &siptoken::Claims::builder("crm1", "pw-never-logged", "sip.test\r\nVia: x")
                .outbound_proxy("127.0.0.1")
                .port(silent.port)
                .build()
                .unwrap(),
        )
        .unwrap();
    let injected_proxy = Issuer::new(&ring)
        .issue(
            "CRM",
            &claims(silent.port)
                .outbound_proxy("127.0.0.1>;x\r\nRoute: <sip:evil")
                .build()
                .unwrap(),
        )
        .unwrap();
    let injected_auth = Issuer::new(&ring)
        .issue(
            "CRM",
            &claims(silent.port)
                .auth_name("crm1\r\nX: y")
                .build()
                .unwrap(),
        )
        .unwrap();

    for (token, detail) in [
        (expired.as_str(), "expired"),
        (tampered.as_str(), "bad_signature"),
        (unknown_app.as_str(), "unknown_app"),
        (legacy.as_str(), "legacy_disabled"),
        ("CRM:zz", "malformed"),
        (injected_domain.as_str(), "invalid_field"),
        (injected_proxy.as_str(), "invalid_field"),
        (injected_auth.as_str(), "invalid_field"),
    ] {
        ws.login(token).await;
        let v = ws.expect_error("token_rejected").await;
        assert_eq!(v["detail"], detail, "{v}");
        assert!(!v["message"].as_str().unwrap().contains("pw-never-logged"));
    }

    // Replay: the first use is accepted (no REGISTER for registered="false"), the second not.
    let once = Issuer::new(&ring)
        .issue(
            "CRM",
            &claims(silent.port).registered(false).build().unwrap(),
        )
        .unwrap();
    ws.login(&once).await;
    let v = ws.expect("authenticated").await;
    assert_eq!(v["aor"], "sip:crm1@sip.test");
    let mut other_socket = gw.ws().await;
    other_socket.login(&once).await;
    other_socket.expect_error("replayed").await;
    ws.logout().await;

    assert!(
        silent.received(Duration::from_millis(300)).is_empty(),
        "SIP traffic was sent"
    );
    assert_eq!(gw.metric("siptoken_gateway_sip_transactions_total"), 0.0);
    assert_eq!(
        gw.metric("siptoken_gateway_logins_total{outcome=\"error\",code=\"token_rejected\"}"),
        8.0
    );
    let log = gw.log();
    assert!(!log.contains("pw-never-logged"), "password in the log");
    for t in [&good, &expired, &legacy, &once] {
        assert!(!log.contains(t.as_str()), "whole token in the log");
    }
    assert!(log.contains("token rejected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_tokens_work_when_allowed() {
    let gw = Gateway::start_with_args("", &["--allow-legacy"]);
    let legacy = Issuer::new(&ring())
        .legacy()
        .issue("OLD", &claims(9).registered(false).build().unwrap())
        .unwrap();
    let mut ws = gw.ws().await;
    ws.login(&legacy).await;
    ws.expect("authenticated").await;
    // Legacy tokens: the replay key is the account (not the spelling of the hex).
    ws.login(&legacy.to_uppercase()).await;
    let v = ws.recv().await;
    assert_eq!(v["code"], "replayed", "{v}");
    // Issue 14, item 2: the space of `<root ` flipped into a tab, without the key, is the same
    // token (the replay key is the account, not the ciphertext).
    let body = &legacy["OLD:".len()..];
    let byte = u8::from_str_radix(&body[10..12], 16).unwrap() ^ b' ' ^ b'\t';
    let flipped = format!("OLD:{}{byte:02x}{}", &body[..10], &body[12..]);
    ws.login(&flipped).await;
    let v = ws.recv().await;
    assert_eq!(v["code"], "replayed", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_keep_the_socket_open() {
    let gw = Gateway::start("");
    let mut ws = gw.ws().await;
    for text in [
        "not json",
        "{\"type\":\"dance\"}",
        "{\"type\":\"login\"}",
        "[]",
    ] {
        ws.stream
            .send(Message::Text(text.to_owned().into()))
            .await
            .unwrap();
        ws.expect_error("bad_request").await;
    }
    ws.stream
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .unwrap();
    ws.expect_error("bad_request").await;
    ws.send(json!({"type": "logout"})).await;
    ws.expect_error("not_logged_in").await;
    ws.ping().await;
    // Oversized frames are refused by closing the socket, not by taking the gateway down.
    let huge = "x".repeat(100_000);
    let _ = ws.send(json!({"type": "login", "token": huge})).await;
    assert_eq!(gw.get("/healthz").0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_rate_and_session_limits() {
    let gw = Gateway::start("login_rate_per_minute = 1\nlogin_burst = 2\nmax_sessions = 2");
    let mut ws = gw.ws().await;
    ws.use_up_login_burst(2).await;
    let mut second = gw.ws().await;
    second.ping().await; // its session is counted before the third connects
    let mut third = gw.ws().await;
    third.expect_error("session_limit").await;
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origin_check_blocks_cross_site_websockets() {
    let gw = Gateway::start_with_args("", &["--allowed-origin", "https://crm.example.org"]);
    let upgrade = |origin: &'static str| {
        let mut headers = vec![
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        if !origin.is_empty() {
            headers.push(("Origin", origin));
        }
        http_get(gw.addr, "/ws", &headers).0
    };
    assert_eq!(upgrade("https://evil.example"), 403);
    assert_eq!(upgrade("null"), 403);
    assert_eq!(upgrade("https://crm.example.org"), 101);
    assert_eq!(upgrade(""), 101);
    let own = format!("http://{}", gw.addr);
    let mut ws = Ws::connect(gw.addr, Some(&own)).await;
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registrars() {
    let (gw, _pki) = gateway_trusting_a_test_ca("sip_transaction_timeout_ms = 3000");
    let closed = free_port();
    let mut ws = gw.ws().await;
    for transport in [Transport::Udp, Transport::Tcp] {
        ws.login(&token("crm1", "pw", closed, transport)).await;
        ws.expect("registering").await;
        let v = ws.expect_error("sip_unreachable").await;
        assert!(v.get("sipStatus").is_none(), "{v}");
    }
    let tls = crm_token(&claims(closed).transport(Transport::Tls).build().unwrap());
    ws.login(&tls).await;
    ws.expect("registering").await;
    ws.expect_error("sip_unreachable").await;
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_registrar_times_out_after_retransmissions() {
    let silent = Silent::new();
    let gw = Gateway::start("sip_t1_ms = 100\nsip_transaction_timeout_ms = 1500");
    let mut ws = gw.ws().await;
    ws.login(&token("crm1", "pw", silent.port, Transport::Udp))
        .await;
    ws.expect("registering").await;
    let got = silent.received(Duration::from_millis(1700));
    let v = ws.expect_error("sip_timeout").await;
    assert!(v.get("sipStatus").is_none());
    // T1 = 100 ms doubling to 800 ms within 1.5 s: sent at 0, .1, .3, .7, 1.5 (± scheduling).
    assert!((4..=6).contains(&got.len()), "{} datagrams", got.len());
    let branch = |m: &str| {
        m.split("branch=")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .to_owned()
    };
    assert!(
        got.iter().all(|m| branch(m) == branch(&got[0])),
        "retransmissions keep the branch"
    );
    let first = &got[0];
    assert!(
        first.starts_with("REGISTER sip:sip.test SIP/2.0\r\n"),
        "{first}"
    );
    assert!(first.contains(";rport;branch=z9hG4bK"), "{first}");
    assert!(
        first.contains("From: \"Operator \\\"1\\\"\" <sip:crm1@sip.test>;tag="),
        "{first}"
    );
    assert!(first.contains("Contact: <sip:st-"), "{first}");
    assert!(first.contains("Expires: 600\r\n"), "{first}");
    assert!(gw.metric("siptoken_gateway_sip_retransmissions_total") >= 3.0);
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_endpoints() {
    let gw = Gateway::start("");
    assert_eq!(gw.get("/healthz"), (200, "ok\n".to_owned()));
    let (status, page) = gw.get("/");
    assert_eq!(status, 200);
    // The softphone page: its login button, and its script on the browser SDK.
    assert!(page.contains("<button id=\"login\""), "{page}");
    assert!(page.contains("phone.js"), "{page}");
    let (status, metrics) = gw.get("/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("# TYPE siptoken_gateway_login_latency_seconds histogram"));
    assert_eq!(gw.get("/nope").0, 404);
}

#[test]
fn configuration_errors_are_clear_and_exit_2() {
    let bin = env!("CARGO_BIN_EXE_siptoken-gateway");
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.conf");
    std::fs::write(&keys, KEYS).unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin).args(args).output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let k = keys.to_str().unwrap();
    let (code, stdout, _) = run(&["--keys", k, "--check"]);
    assert_eq!(code, Some(0));
    assert!(
        stdout.contains("configuration ok: 2 application(s)"),
        "{stdout}"
    );

    let (code, _, stderr) = run(&["--check"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("--keys"), "{stderr}");

    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "keys = \"keys.conf\"\nregister_expire = 60\n").unwrap();
    let (code, _, stderr) = run(&["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("register_expire"), "{stderr}");

    std::fs::write(&cfg, "keys = \"keys.conf\"\n").unwrap();
    let (code, stdout, _) = run(&["--config", cfg.to_str().unwrap(), "--check"]);
    assert_eq!(
        code,
        Some(0),
        "a relative key path is relative to the config file"
    );
    assert!(stdout.contains("keys.conf"));

    let bad_keys = dir.path().join("bad.keys");
    std::fs::write(&bad_keys, "CRM=nothex\n").unwrap();
    let (code, _, stderr) = run(&["--keys", bad_keys.to_str().unwrap(), "--check"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("line 1"), "{stderr}");
    assert!(!stderr.contains("nothex"), "key material echoed: {stderr}");

    let (code, _, stderr) = run(&[
        "--keys",
        k,
        "--allowed-origin",
        "crm.example.org",
        "--check",
    ]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("http://"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_register_in_flight_to_a_silent_registrar_exits_in_bounded_time() {
    let silent = Silent::new();
    let mut gw = Gateway::start("sip_t1_ms = 100\nsip_transaction_timeout_ms = 1500");
    let mut ws = gw.ws().await;
    ws.login(&token("crm1", "pw", silent.port, Transport::Udp))
        .await;
    ws.expect("registering").await;
    let mut other = gw.ws().await;
    let authenticated = crm_token(&claims(silent.port).registered(false).build().unwrap());
    other.login(&authenticated).await;
    other.expect("authenticated").await;
    let t0 = std::time::Instant::now();
    let status = gw.terminate(Duration::from_secs(10));
    assert!(status.success(), "{status:?}");
    other.expect("unregistered").await;
    // Bounded by the transaction timeout plus the shutdown grace of 3 s.
    assert!(
        t0.elapsed() < Duration::from_millis(4500),
        "{:?}",
        t0.elapsed()
    );
}

/// Issue 14 item 12: a failed registration's message does not tell the browser the registrar's
/// resolved address and port (the token names `localhost`; the gateway resolves it to
/// 127.0.0.1 and meets a TLS peer that hangs up, a closed TCP port, a closed UDP port). The
/// log keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_registrations_do_not_reveal_the_registrars_address() {
    let (gw, _pki) =
        gateway_trusting_a_test_ca("sip_t1_ms = 100\nsip_transaction_timeout_ms = 1500");
    // A peer that accepts TCP connections and closes them at once: every TLS handshake fails.
    let hangup = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hangup_port = hangup.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in hangup.incoming() {
            drop(c);
        }
    });
    let closed = free_port();
    let mut ws = gw.ws().await;
    for (transport, port) in [
        (Transport::Tls, hangup_port),
        (Transport::Tcp, closed),
        (Transport::Udp, closed),
    ] {
        let tok = crm_token(
            &Claims::builder("crm1", "pw", DOMAIN)
                .outbound_proxy("localhost")
                .port(port)
                .transport(transport)
                .build()
                .unwrap(),
        );
        ws.login(&tok).await;
        ws.expect("registering").await;
        let v = ws.expect_error("sip_unreachable").await;
        let text = v.to_string();
        for address in ["127.0.0.1", "::1", &format!(":{port}")] {
            assert!(
                !text.contains(address),
                "{transport:?}: {address} in {text}"
            );
        }
    }
    assert!(
        gw.log().contains(&format!("127.0.0.1:{hangup_port}")),
        "the log keeps it"
    );
    ws.ping().await;
}
