//! Secrets never leave the gateway: one `siptoken-gateway` at the most verbose logging
//! (`--log trace`) goes through logins over UDP and TCP against a real Kamailio, a refresh that
//! meets a stale nonce, logout, an abrupt close, every kind of refused login (wrong SIP
//! password, tampered, expired, replayed, malformed JSON around a token, an oversized message),
//! a legacy token, a Redis store with a password, and SIGTERM with an account registered. Then
//! neither its log (stderr) nor its stdout may contain a SIP password, a key (hex, either case),
//! the Redis password, or a whole token (nor a token's last 32 characters).

#[path = "gateway/harness.rs"]
mod harness;

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use harness::*;
use serde_json::json;
use siptoken::{Claims, Issuer, Transport};
use tokio_tungstenite::tungstenite::Message;

const ALICE_PW: &str = "Alice-Sip-Pw-8f3e1";
const BOB_PW: &str = "Bob-Sip-Pw-27c9d";
const WRONG_PW: &str = "Wrong-Sip-Pw-66a0b";
const LEGACY_PW: &str = "Legacy-Sip-Pw-41d2e";
const REDIS_PW: &str = "Redis-Pw-93b7c";

/// Every secret the test handed to the gateway, in every case the logs could spell it in.
fn secrets(tokens: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for pw in [ALICE_PW, BOB_PW, WRONG_PW, LEGACY_PW, REDIS_PW] {
        out.push((format!("password {pw}"), pw.to_owned()));
    }
    for line in KEYS.lines() {
        let hex = line.split_once('=').unwrap().1.trim();
        out.push(("key (lower case)".into(), hex.to_ascii_lowercase()));
        out.push(("key (upper case)".into(), hex.to_ascii_uppercase()));
    }
    for t in tokens {
        out.push(("a whole token".into(), t.clone()));
        out.push(("a token's tail".into(), t[t.len() - 32..].to_owned()));
    }
    out
}

fn assert_clean(what: &str, text: &str, tokens: &[String]) {
    for (name, secret) in secrets(tokens) {
        assert!(
            !text.contains(&secret),
            "{name} appears in the gateway's {what}"
        );
    }
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A `wss://` connection to the gateway, trusting the test CA.
async fn wss(gw: &Gateway, certs: &Certs) -> Ws<TlsStream> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(&certs.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("sip.test").unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (stream, _) = tokio_tungstenite::client_async("wss://sip.test/ws", tls)
        .await
        .unwrap();
    Ws { stream }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio with its TLS module (scripts/ci/45-hardening.sh)"]
async fn no_password_key_or_token_in_the_gateway_output_at_trace_level() {
    let users = [("alice", ALICE_PW), ("bob", BOB_PW), ("carol", LEGACY_PW)];
    let kam = Kamailio::start_with(
        "MD5",
        &users,
        KamailioOptions {
            nonce_expire: 1,
            tls: true,
            ..Default::default()
        },
    );
    let certs = kam.certs.clone().unwrap();
    let redis = Redis::start(Some(REDIS_PW));
    // The gateway serves wss:// with the same certificate (its key must not leak either).
    let mut gw = Gateway::start_with_args(
        &format!(
            "register_expires = 3\nreplay_store = \"{}\"\nsip_tls_ca_file = \"{}\"\n\
             tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            redis.url(),
            certs.ca.display(),
            certs.cert.display(),
            certs.key.display()
        ),
        &["--log", "trace", "--allow-legacy"],
    );
    let key_pem = std::fs::read_to_string(&certs.key).unwrap();
    let mut tokens = Vec::new();
    let mut ws = wss(&gw, &certs).await;

    // UDP: register, refresh (meeting a stale nonce), logout.
    let alice = token("alice", ALICE_PW, kam.port, Transport::Udp);
    tokens.push(alice.clone());
    ws.login_registered(&alice).await;
    let v = ws.recv_within(Duration::from_secs(5)).await;
    assert_eq!(v["type"], "registered", "refresh: {v}");
    ws.logout_after_refreshes().await;

    // Refused logins.
    ws.login(&alice).await;
    ws.expect_error("replayed").await;
    let wrong = token("alice", WRONG_PW, kam.port, Transport::Udp);
    tokens.push(wrong.clone());
    ws.login(&wrong).await;
    ws.expect("registering").await;
    ws.expect_error("sip_auth_failed").await;
    let fresh = token("alice", ALICE_PW, kam.port, Transport::Udp);
    let mut tampered = fresh.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).unwrap();
    tokens.push(tampered.clone());
    ws.login(&tampered).await;
    let v = ws.expect_error("token_rejected").await;
    assert_eq!(v["detail"], "bad_signature");
    let expired = crm_token(
        &Claims::builder("alice", ALICE_PW, DOMAIN)
            .outbound_proxy("127.0.0.1")
            .port(kam.port)
            .issued(now() - 600)
            .expires(now() - 300)
            .build()
            .unwrap(),
    );
    tokens.push(expired.clone());
    ws.login(&expired).await;
    let v = ws.expect_error("token_rejected").await;
    assert_eq!(v["detail"], "expired");
    // Malformed JSON and wrong types around a real token: bad_request, token not echoed.
    tokens.push(fresh.clone());
    for text in [
        format!(r#"{{"type":"login","token":"{fresh}""#),
        format!(r#"{{"type":"lgin","token":"{fresh}"}}"#),
        format!(r#"{{"type":"login","token":["{fresh}"]}}"#),
    ] {
        ws.stream.send(Message::Text(text.into())).await.unwrap();
        let v = ws.expect_error("bad_request").await;
        assert_clean("bad_request answer", &v.to_string(), &tokens);
    }

    // Legacy token (its key is the ring's upper-case hex), authenticated without SIP.
    let legacy = Issuer::new(&ring())
        .legacy()
        .issue(
            "OLD",
            &Claims::builder("carol", LEGACY_PW, DOMAIN)
                .registered(false)
                .build()
                .unwrap(),
        )
        .unwrap();
    tokens.push(legacy.clone());
    ws.login(&legacy).await;
    ws.expect("authenticated").await;

    // TCP: register, then the socket closes abruptly (unregistered in the background).
    let bob = token("bob", BOB_PW, kam.port, Transport::Tcp);
    tokens.push(bob.clone());
    let mut ws2 = wss(&gw, &certs).await;
    ws2.login_registered(&bob).await;
    drop(ws2);
    kam.wait_bindings("bob", 0, Duration::from_secs(5));

    // An oversized message made of a token: closed with 1009, nothing of it logged.
    let mut ws3 = wss(&gw, &certs).await;
    let huge = fresh.repeat(16 * 1024 / fresh.len() + 1);
    let _ = ws3.stream.send(Message::Text(huge.into())).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws3.stream.next()).await {
            Ok(Some(Ok(Message::Close(c)))) => {
                assert_eq!(u16::from(c.unwrap().code), 1009);
                break;
            }
            Ok(Some(Ok(_))) => {}
            other => panic!("expected close 1009, got {other:?}"),
        }
    }

    // SIP over TLS to Kamailio: register and log out.
    let tls_token = token("alice", ALICE_PW, kam.tls_port, Transport::Tls);
    tokens.push(tls_token.clone());
    ws.login_registered(&tls_token).await;
    // Logout also ends the legacy account (carol, unregistered at once).
    ws.send(json!({"type": "logout"})).await;
    loop {
        let v = ws.recv().await;
        if v["type"] == "unregistered" && v["aor"] == "sip:alice@sip.test" {
            break;
        }
        assert!(
            ["registered", "unregistered"].contains(&v["type"].as_str().unwrap()),
            "{v}"
        );
    }

    // SIGTERM with an account registered: the shutdown path logs too.
    let last = token("alice", ALICE_PW, kam.port, Transport::Udp);
    tokens.push(last.clone());
    ws.login_registered(&last).await;
    assert!(gw.terminate(Duration::from_secs(10)).success());
    kam.wait_bindings("alice", 0, Duration::from_secs(2));

    let log = gw.log();
    // The gateway logs nothing at TRACE itself; at `trace` everything down to DEBUG shows.
    assert!(log.contains(" DEBUG "), "the gateway did not log verbosely");
    assert!(log.contains("token accepted") && log.contains("sip:alice@sip.test"));
    assert!(log.contains("token rejected"));
    assert!(log.contains("replayed token refused"));
    assert!(log.contains("WebSocket message too big"));
    if std::env::var_os("SIPTOKEN_SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    assert_clean("log", &log, &tokens);
    for line in key_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(
            !log.contains(line),
            "the TLS private key appears in the log"
        );
    }
    assert_clean("stdout", &gw.stdout(), &tokens);
    eprintln!(
        "checked {} bytes of trace log and {} secrets",
        log.len(),
        secrets(&tokens).len()
    );
}
