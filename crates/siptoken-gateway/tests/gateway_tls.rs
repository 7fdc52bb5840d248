//! TLS on both sides of the gateway, with certificates the test makes (openssl CLI): `wss://`
//! and `https://` from `tls_cert_file` / `tls_key_file`, and SIP over TLS (`transport="tls"`)
//! to a real Kamailio with its TLS module, verified against `sip_tls_ca_file` — an untrusted
//! CA or a name the certificate does not carry is `sip_unreachable`, never a registration.

#[path = "gateway/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use siptoken::{Claims, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A rustls client trusting only `ca`.
fn connector(ca: &std::path::Path) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn tls_stream(
    gw: &Gateway,
    certs: &Certs,
    name: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(gw.addr).await?;
    let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
    connector(&certs.ca).connect(name, tcp).await
}

/// GET `path` over HTTPS, verifying the certificate for `name`; the whole response.
async fn https_get_as(gw: &Gateway, certs: &Certs, name: &str, path: &str) -> String {
    let mut s = tls_stream(gw, certs, name).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp))
        .await
        .unwrap();
    String::from_utf8_lossy(&resp).into_owned()
}

async fn https_get(gw: &Gateway, certs: &Certs, path: &str) -> String {
    https_get_as(gw, certs, "gw.test", path).await
}

fn tls_config(certs: &Certs, extra: &str) -> String {
    format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\nhandshake_timeout_seconds = 1\n{extra}",
        certs.cert.display(),
        certs.key.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_and_https_with_the_configured_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let certs = Certs::make(pki.path(), "gw.test");
    let gw = Gateway::start(&tls_config(&certs, ""));
    assert!(gw.stdout().contains("listening on https://"));

    // HTTPS: /healthz through the TLS stream, the certificate verified by name and by IP.
    for name in ["gw.test", "127.0.0.1"] {
        let resp = https_get_as(&gw, &certs, name, "/healthz").await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.ends_with("ok\n"), "{resp}");
    }
    // A name the certificate does not carry is refused by the client.
    assert!(tls_stream(&gw, &certs, "other.test").await.is_err());

    // wss://: the protocol works unchanged.
    let s = tls_stream(&gw, &certs, "gw.test").await.unwrap();
    let (stream, _) = tokio_tungstenite::client_async("wss://gw.test/ws", s)
        .await
        .unwrap();
    let mut ws = Ws { stream };
    ws.login(&token_without_sip()).await;
    ws.expect("authenticated").await;

    // Plain HTTP to the TLS port gets no answer; a client that never starts the TLS handshake
    // is dropped after the handshake timeout. The gateway keeps serving.
    let t = Instant::now();
    let (status, _) = http_get(gw.addr, "/healthz", &[]);
    assert_eq!(status, 0);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let mut idle = tokio::net::TcpStream::connect(gw.addr).await.unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
        .await
        .expect("the gateway did not drop a silent TLS client")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    ws.ping().await;
    assert!(gw.log().contains("TLS handshake"));
    let metrics = https_get(&gw, &certs, "/metrics").await;
    let closed = |reason: &str| {
        let series = format!("siptoken_gateway_connections_closed_total{{reason=\"{reason}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // The plain HTTP request, and the client refusing the certificate's name.
    assert_eq!(closed("tls_handshake_failed"), 2.0, "{metrics}");
    assert_eq!(closed("handshake_timeout"), 1.0, "{metrics}");
}

#[test]
fn tls_file_errors_are_clear_and_exit_2() {
    let pki = tempfile::tempdir().unwrap();
    let certs = Certs::make(pki.path(), "gw.test");
    let bin = env!("CARGO_BIN_EXE_siptoken-gateway");
    let keys = pki.path().join("keys.conf");
    std::fs::write(&keys, KEYS).unwrap();
    let mut perms = std::fs::metadata(&keys).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&keys, perms).unwrap();
    let garbage = pki.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n",
    )
    .unwrap();
    let key_text = std::fs::read_to_string(&certs.key).unwrap();
    for (config, expect) in [
        (
            format!("tls_cert_file = \"{}\"", certs.cert.display()),
            "tls_cert_file and tls_key_file go together",
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                certs.key.display(),
                certs.key.display()
            ),
            "no PEM certificate",
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                certs.cert.display(),
                garbage.display()
            ),
            "cannot read a PEM private key",
        ),
        (
            format!(
                "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
                certs.ca.display(),
                certs.key.display()
            ),
            "do not make a usable TLS identity",
        ),
        (
            format!("sip_tls_ca_file = \"{}\"", garbage.display()),
            "sip_tls_ca_file",
        ),
    ] {
        let path = pki.path().join("gw.toml");
        std::fs::write(&path, format!("keys = \"{}\"\n{config}\n", keys.display())).unwrap();
        let out = std::process::Command::new(bin)
            .arg("--config")
            .arg(&path)
            .arg("--check")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {err}");
        assert!(err.contains(expect), "{config}: {err}");
        assert!(
            !err.contains("c2VjcmV0"),
            "key material in the error: {err}"
        );
        for line in key_text.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!err.contains(line), "key material in the error: {err}");
        }
    }
}

/// Kamailio with SIP over TLS and the account alice, and the certificates it serves.
fn tls_registrar() -> (Kamailio, Certs) {
    let kam = Kamailio::start_with(
        "MD5",
        &[("alice", "tls-pw")],
        KamailioOptions {
            tls: true,
            ..Default::default()
        },
    );
    let certs = kam.certs.clone().unwrap();
    (kam, certs)
}

/// A token for alice at `kam`'s TLS port.
fn alice_over_tls(kam: &Kamailio) -> String {
    token("alice", "tls-pw", kam.tls_port, Transport::Tls)
}

/// Logs in with `tok` and expects the registrar's certificate to be refused: `sip_unreachable`
/// naming the certificate.
async fn refused_for_its_certificate(ws: &mut Ws, tok: &str) {
    ws.login(tok).await;
    ws.expect("registering").await;
    let v = ws.expect_error("sip_unreachable").await;
    assert!(
        v["message"].as_str().unwrap().contains("certificate"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio with its TLS module (scripts/ci/45-hardening.sh)"]
async fn sip_over_tls_registers_with_kamailio_and_refuses_untrusted_certificates() {
    let (kam, certs) = tls_registrar();
    let gw = Gateway::start(&format!(
        "sip_tls_ca_file = \"{}\"\nregister_expires = 3",
        certs.ca.display()
    ));
    let mut ws = gw.ws().await;
    let tok = alice_over_tls(&kam);
    ws.login(&tok).await;
    ws.expect("registering").await;
    let v = ws.expect("registered").await;
    assert_eq!(v["aor"], "sip:alice@sip.test");
    let b = kam.wait_bindings("alice", 1, Duration::from_secs(2));
    assert!(b[0].contains(";transport=tls"), "{b:?}");
    // Refreshed over the same TLS connection.
    let v = ws.recv_within(Duration::from_secs(5)).await;
    assert_eq!(v["type"], "registered", "{v}");
    assert_eq!(kam.bindings("alice"), b);
    ws.logout_after_refreshes().await;
    assert!(kam.bindings("alice").is_empty(), "{}", kam.dump());

    // A registrar whose certificate the gateway does not trust (another CA), or whose
    // certificate does not carry the name the token gives: sip_unreachable, nothing registered.
    let other = tempfile::tempdir().unwrap();
    let stranger = Certs::make(other.path(), "sip.test");
    let gw2 = Gateway::start(&format!("sip_tls_ca_file = \"{}\"", stranger.ca.display()));
    let mut ws2 = gw2.ws().await;
    refused_for_its_certificate(&mut ws2, &alice_over_tls(&kam)).await;
    let wrong_name = crm_token(
        &Claims::builder("alice", "tls-pw", DOMAIN)
            .outbound_proxy("localhost")
            .port(kam.tls_port)
            .transport(Transport::Tls)
            .build()
            .unwrap(),
    );
    refused_for_its_certificate(&mut ws, &wrong_name).await;
    assert!(kam.bindings("alice").is_empty());
    ws.ping().await;
    ws2.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Kamailio with its TLS module (scripts/ci/45-hardening.sh)"]
async fn without_sip_tls_ca_file_the_cas_in_ssl_cert_file_are_trusted() {
    let (kam, certs) = tls_registrar();
    // No sip_tls_ca_file: the platform's CAs, here the file SSL_CERT_FILE names.
    let gw = Gateway::start_with_env("", &[], &[("SSL_CERT_FILE", certs.ca.to_str().unwrap())]);
    let mut ws = gw.ws().await;
    ws.login_registered(&alice_over_tls(&kam)).await;
    let b = kam.wait_bindings("alice", 1, Duration::from_secs(2));
    assert!(b[0].contains(";transport=tls"), "{b:?}");
    ws.logout().await;
    assert!(kam.bindings("alice").is_empty(), "{}", kam.dump());

    // SSL_CERT_FILE naming another CA: Kamailio's certificate is not trusted.
    let other = tempfile::tempdir().unwrap();
    let stranger = Certs::make(other.path(), "sip.test");
    let gw2 = Gateway::start_with_env("", &[], &[("SSL_CERT_FILE", stranger.ca.to_str().unwrap())]);
    let mut ws2 = gw2.ws().await;
    refused_for_its_certificate(&mut ws2, &alice_over_tls(&kam)).await;
    assert!(kam.bindings("alice").is_empty());
}
