//! Locating the registrar (RFC 3263) against a real dnsmasq and Kamailio the tests start on
//! loopback: the NAPTR → SRV → A chain, the DNS cache, TCP when a UDP answer is truncated, AAAA
//! targets, failover from dead SRV targets to the next (with its timing), and
//! `allowed_registrars` (a UDP listener proves that nothing was sent).
//!
//! Run by scripts/ci/40-gateway.sh with `--include-ignored` (it installs dnsmasq and Kamailio).

#[path = "gateway/harness.rs"]
mod harness;

use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use harness::*;
use siptoken::{Claims, Issuer, Transport};

const USERS: &[(&str, &str)] = &[("alice", "a1ice"), ("bob", "b0b"), ("carol", "c4rol")];

fn password(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).unwrap().1
}

/// A token for `user` at the test domain, sent to `proxy` when given (a host without a port:
/// located with DNS), with `transport` when given (else NAPTR may choose).
fn token_for(user: &str, proxy: Option<&str>, transport: Option<Transport>) -> String {
    let mut b = Claims::builder(user, password(user), DOMAIN);
    if let Some(p) = proxy {
        b = b.outbound_proxy(p);
    }
    if let Some(t) = transport {
        b = b.transport(t);
    }
    Issuer::new(&ring())
        .issue("CRM", &b.build().unwrap())
        .unwrap()
}

/// Alice's token, over UDP through `proxy`.
fn udp_token_via(proxy: &str) -> String {
    token_for("alice", Some(proxy), Some(Transport::Udp))
}

/// Logs in with `token`, which `allowed_registrars` must refuse; the error.
async fn refused(ws: &mut Ws, token: &str) -> serde_json::Value {
    ws.login(token).await;
    ws.expect("registering").await;
    ws.expect_error("registrar_not_allowed").await
}

fn dns_config(dns: &Dnsmasq, extra: &str) -> String {
    format!("dns_servers = [\"127.0.0.1:{}\"]\n{extra}", dns.port)
}

fn opts(list: &[String]) -> Vec<String> {
    list.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio (scripts/ci/40-gateway.sh)"]
async fn naptr_chooses_the_transport_then_srv_then_a_and_answers_are_cached() {
    let kam = Kamailio::start("MD5", USERS);
    let p = kam.port;
    let dns = Dnsmasq::start_with(&opts(&[
        // SCTP comes first but the gateway does not speak it; TCP is preferred to UDP.
        "--naptr-record=sip.test,5,10,S,SIP+D2S,,_sip._sctp.sip.test".into(),
        "--naptr-record=sip.test,10,10,S,SIP+D2T,,_sip._tcp.sip.test".into(),
        "--naptr-record=sip.test,20,10,S,SIP+D2U,,_sip._udp.sip.test".into(),
        format!("--srv-host=_sip._sctp.sip.test,registrar.sip.test,{p},0,0"),
        format!("--srv-host=_sip._tcp.sip.test,registrar.sip.test,{p},0,0"),
        format!("--srv-host=_sip._udp.sip.test,registrar.sip.test,{p},0,0"),
        "--host-record=registrar.sip.test,127.0.0.1".into(),
        "--local-ttl=60".into(),
    ]));
    let gw = Gateway::start(&dns_config(&dns, ""));
    let mut ws = gw.ws().await;
    // No outboundProxy, no port, no transport: NAPTR, then SRV, then A.
    ws.login_registered(&token_for("alice", None, None)).await;
    let b = kam.wait_bindings("alice", 1, Duration::from_secs(2));
    assert!(b[0].contains("transport=tcp"), "NAPTR chose TCP: {b:?}");
    assert_eq!(dns.queries("NAPTR", "sip.test"), 1);
    assert!(dns.queries("SRV", "_sip._tcp.sip.test") >= 1);
    assert_eq!(
        dns.queries("SRV", "_sip._sctp.sip.test"),
        0,
        "SCTP not followed"
    );
    assert!(dns.queries("A", "registrar.sip.test") >= 1);

    // A second registration is located from the resolver's cache (TTL 60 s): no new query.
    let before = (
        dns.queries("SRV", "_sip._tcp.sip.test"),
        dns.queries("A", "registrar.sip.test"),
    );
    ws.login_registered(&token_for("bob", None, None)).await;
    kam.wait_bindings("bob", 1, Duration::from_secs(2));
    assert_eq!(dns.queries("NAPTR", "sip.test"), 1, "NAPTR answer cached");
    let after = (
        dns.queries("SRV", "_sip._tcp.sip.test"),
        dns.queries("A", "registrar.sip.test"),
    );
    assert_eq!(before, after, "SRV and A answers cached");

    // A token that fixes the transport skips NAPTR (RFC 3263 §4.1): UDP SRV.
    ws.login_registered(&token_for("carol", None, Some(Transport::Udp)))
        .await;
    let c = kam.wait_bindings("carol", 1, Duration::from_secs(2));
    assert!(!c[0].contains("transport="), "UDP: {c:?}");
    assert_eq!(dns.queries("NAPTR", "sip.test"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio (scripts/ci/40-gateway.sh)"]
async fn without_naptr_srv_then_without_srv_a_with_the_default_port() {
    let kam = Kamailio::start("MD5", USERS);
    // Only TCP SRV records for srv.test (no NAPTR): the gateway queries every transport's SRV
    // and finds TCP.
    let dns = Dnsmasq::start_with(&opts(&[
        format!(
            "--srv-host=_sip._tcp.srv.test,registrar.sip.test,{},0,0",
            kam.port
        ),
        "--host-record=registrar.sip.test,127.0.0.1".into(),
        "--host-record=plain.test,127.0.0.1".into(),
    ]));
    let gw = Gateway::start(&dns_config(&dns, "sip_transaction_timeout_ms = 2000"));
    let mut ws = gw.ws().await;
    ws.login_registered(&token_for("alice", Some("srv.test"), None))
        .await;
    let b = kam.wait_bindings("alice", 1, Duration::from_secs(2));
    assert!(b[0].contains("transport=tcp"), "{b:?}");
    assert_eq!(dns.queries("NAPTR", "srv.test"), 1);
    assert_eq!(dns.queries("SRV", "_sip._udp.srv.test"), 1);

    // No NAPTR, no SRV: A record, port 5060 over UDP. Nothing listens on 127.0.0.1:5060 here
    // (unless this machine runs a SIP server): the REGISTER goes there and fails.
    let silent_5060 = UdpSocket::bind("127.0.0.1:5060");
    ws.login(&token_for("bob", Some("plain.test"), None)).await;
    ws.expect("registering").await;
    let v = ws.recv_within(Duration::from_secs(5)).await;
    assert_eq!(v["type"], "error", "{v}");
    assert!(dns.queries("A", "plain.test") >= 1);
    if let Ok(s) = silent_5060 {
        // We held the port: the REGISTER arrived there.
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = s.recv(&mut buf).expect("a REGISTER on 127.0.0.1:5060");
        assert!(buf[..n].starts_with(b"REGISTER sip:sip.test SIP/2.0"));
    }
}

/// A TCP listener that accepts connections and never answers.
struct MuteTcp {
    port: u16,
    _listener: TcpListener,
}

impl MuteTcp {
    fn new() -> MuteTcp {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        MuteTcp {
            port: l.local_addr().unwrap().port(),
            _listener: l,
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (UDP: ICMP port unreachable; TCP: refused).
fn closed_port() -> u16 {
    free_port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio (scripts/ci/40-gateway.sh)"]
async fn a_dead_first_srv_target_fails_over_to_the_next() {
    let kam = Kamailio::start("MD5", USERS);
    let silent = Silent::new();
    let mute = MuteTcp::new();
    let closed = closed_port();
    let live = kam.port;
    let srv = |name: &str, dead: u16| {
        [
            format!("--srv-host=_sip._udp.{name},dead.test,{dead},10,0"),
            format!("--srv-host=_sip._tcp.{name},dead.test,{dead},10,0"),
            format!("--srv-host=_sip._udp.{name},registrar.sip.test,{live},20,0"),
            format!("--srv-host=_sip._tcp.{name},registrar.sip.test,{live},20,0"),
        ]
    };
    let mut o: Vec<String> = Vec::new();
    o.extend(srv("closed.test", closed));
    o.extend(srv("silent.test", silent.port));
    o.extend(srv("mute.test", mute.port));
    o.push("--host-record=dead.test,127.0.0.1".into());
    o.push("--host-record=registrar.sip.test,127.0.0.1".into());
    let dns = Dnsmasq::start_with(&o);
    // Timer F of 3 s, so that a registrar that never answers costs 3 s.
    let timeout = Duration::from_secs(3);
    let gw = Gateway::start(&dns_config(&dns, "sip_transaction_timeout_ms = 3000"));
    let mut ws = gw.ws().await;
    let mut report = Vec::new();
    for (case, proxy, transport, user) in [
        (
            "UDP, closed port (ICMP)",
            "closed.test",
            Transport::Udp,
            "alice",
        ),
        (
            "TCP, connection refused",
            "closed.test",
            Transport::Tcp,
            "bob",
        ),
        ("UDP, no answer", "silent.test", Transport::Udp, "carol"),
        ("TCP, no answer", "mute.test", Transport::Tcp, "alice"),
    ] {
        let t = Instant::now();
        ws.login(&token_for(user, Some(proxy), Some(transport)))
            .await;
        ws.expect("registering").await;
        let v = ws.recv_within(timeout * 2 + Duration::from_secs(5)).await;
        let took = t.elapsed();
        assert_eq!(v["type"], "registered", "{case}: {v}\n{}", gw.log());
        kam.wait_bindings(user, 1, Duration::from_secs(2));
        ws.logout().await;
        report.push(format!(
            "{case}: registered via the second target after {took:?}"
        ));
        assert!(took < timeout + Duration::from_secs(3), "{case}: {took:?}");
        if case.contains("no answer") {
            assert!(
                took >= timeout,
                "{case}: failed over before Timer F: {took:?}"
            );
        }
    }
    // The silent target did get the REGISTER (and its retransmissions) first.
    let got = silent.received(Duration::from_millis(200));
    assert!(
        got.len() >= 2 && got.iter().all(|m| m.starts_with("REGISTER ")),
        "{got:?}"
    );
    eprintln!("failover timings:\n  {}", report.join("\n  "));
    let log = gw.log();
    assert!(log.contains("trying the next candidate"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio (scripts/ci/40-gateway.sh)"]
async fn an_aaaa_target_is_reached_over_ipv6() {
    assert!(
        ipv6_loopback(),
        "this test needs the IPv6 loopback address ::1"
    );
    let kam = Kamailio::start("MD5", USERS);
    let dns = Dnsmasq::start_with(&opts(&[
        format!(
            "--srv-host=_sip._udp.v6.test,registrar6.test,{},0,0",
            kam.port
        ),
        format!(
            "--srv-host=_sip._tcp.v6.test,registrar6.test,{},0,0",
            kam.port
        ),
        "--host-record=registrar6.test,::1".into(),
    ]));
    // The wildcard bind reaches both families; the harness's 127.0.0.1 would reach only IPv4.
    let gw = Gateway::start_with_args(&dns_config(&dns, ""), &["--sip-bind", "0.0.0.0"]);
    let mut ws = gw.ws().await;
    for (user, transport) in [("alice", Transport::Udp), ("bob", Transport::Tcp)] {
        ws.login_registered(&token_for(user, Some("v6.test"), Some(transport)))
            .await;
        let b = kam.wait_bindings(user, 1, Duration::from_secs(2));
        assert!(b[0].contains("@[::1]:"), "{b:?}");
    }
    assert!(dns.queries("AAAA", "registrar6.test") >= 1);
    // Bound to an IPv4 address, the gateway asks for A records only: no candidate.
    let gw4 = Gateway::start(&dns_config(&dns, ""));
    let mut ws4 = gw4.ws().await;
    ws4.login(&token_for("carol", Some("v6.test"), Some(Transport::Udp)))
        .await;
    ws4.expect("registering").await;
    let v = ws4.expect_error("sip_unreachable").await;
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("registrar6.test has no address"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio (scripts/ci/40-gateway.sh)"]
async fn a_truncated_udp_answer_is_fetched_again_over_tcp() {
    let kam = Kamailio::start("MD5", USERS);
    // 40 SRV records with long names do not fit in one UDP answer. The live one comes first in
    // priority but dnsmasq puts it last in the answer, so only the TCP answer holds it.
    let mut o = vec![
        format!(
            "--srv-host=_sip._udp.big.test,kamailio-live.sip.test,{},1,0",
            kam.port
        ),
        "--host-record=kamailio-live.sip.test,127.0.0.1".into(),
    ];
    for i in 2..=40 {
        o.push(format!(
            "--srv-host=_sip._udp.big.test,unreachable-target-number-{i}.long-domain-name.test,5060,{i},0"
        ));
    }
    let dns = Dnsmasq::start_with(&o);
    // Check the premise with a plain UDP query (EDNS, 1232 bytes): truncated, without the live
    // target.
    let answer = udp_srv_query(dns.port, "_sip._udp.big.test");
    assert!(answer[2] & 0x02 != 0, "the UDP answer is not truncated");
    assert!(
        !answer.windows(13).any(|w| w == b"kamailio-live"),
        "the UDP answer already holds the live target"
    );
    let gw = Gateway::start(&dns_config(&dns, ""));
    let mut ws = gw.ws().await;
    ws.login_registered(&token_for("alice", Some("big.test"), Some(Transport::Udp)))
        .await;
    kam.wait_bindings("alice", 1, Duration::from_secs(2));
}

/// The raw answer to an SRV query over UDP with EDNS (payload 1232) to dnsmasq at `port`.
fn udp_srv_query(port: u16, name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 33, 0, 1]);
    // OPT: root name, type 41, payload 1232, no flags, no data.
    q.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(&q, ("127.0.0.1", port)).unwrap();
    let mut buf = vec![0u8; 65536];
    let n = s.recv(&mut buf).unwrap();
    buf.truncate(n);
    buf
}

/// No external server needed: tokens naming loopback (or any address or name the list does not
/// allow) are refused before any packet is sent, and the message names no address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_registrars_refuse_literal_addresses_and_names_without_sending() {
    let silent = Silent::new();
    let gw = Gateway::start("allowed_registrars = [\"10.1.0.0/16\", \"*.example.org\"]");
    let mut ws = gw.ws().await;
    for host in ["127.0.0.1", "::1", "localhost", "example.org", "10.2.0.1"] {
        let claims = Claims::builder("alice", "a1ice", DOMAIN)
            .outbound_proxy(host)
            .port(silent.port)
            .build()
            .unwrap();
        let v = refused(
            &mut ws,
            &Issuer::new(&ring()).issue("CRM", &claims).unwrap(),
        )
        .await;
        let m = v["message"].as_str().unwrap();
        assert!(
            !m.contains(host) && !m.contains(&silent.port.to_string()),
            "{host}: the message names the target: {v}"
        );
        assert_eq!(v["aor"], "sip:alice@sip.test");
    }
    assert!(silent.received(Duration::from_millis(300)).is_empty());
    let refused = "siptoken_gateway_logins_total{outcome=\"error\",code=\"registrar_not_allowed\"}";
    assert_eq!(gw.metric(refused), 5.0);
    ws.ping().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio (scripts/ci/40-gateway.sh)"]
async fn allowed_registrars_check_names_before_dns_and_every_address_after() {
    let kam = Kamailio::start("MD5", USERS);
    let silent = Silent::new();
    let dns = Dnsmasq::start_with(&opts(&[
        // A name the patterns allow, resolving to loopback (a rebinding or careless zone).
        format!(
            "--srv-host=_sip._udp.evil.example.org,loop.example.org,{},0,0",
            silent.port
        ),
        "--host-record=loop.example.org,127.0.0.1".into(),
        "--host-record=internal.corp,127.0.0.1".into(),
        format!(
            "--srv-host=_sip._udp.registrar.sip.test,kam.sip.test,{},0,0",
            kam.port
        ),
        "--host-record=kam.sip.test,127.0.0.1".into(),
    ]));
    let gw = Gateway::start(&dns_config(
        &dns,
        "allowed_registrars = [\"*.example.org\", \"10.1.0.0/16\"]",
    ));
    let mut ws = gw.ws().await;
    // The name passes, its address does not: refused after DNS, nothing sent.
    let v = refused(&mut ws, &udp_token_via("evil.example.org")).await;
    assert!(!v["message"].as_str().unwrap().contains("127.0.0.1"), "{v}");
    assert!(dns.queries("SRV", "_sip._udp.evil.example.org") >= 1);
    // A name no pattern allows is refused before any DNS query.
    refused(&mut ws, &udp_token_via("internal.corp")).await;
    assert_eq!(dns.queries("SRV", "_sip._udp.internal.corp"), 0);
    assert_eq!(dns.queries("A", "internal.corp"), 0);
    assert!(silent.received(Duration::from_millis(300)).is_empty());

    // A list that allows the registrar's name and network: registered as usual.
    let ok = Gateway::start(&dns_config(
        &dns,
        "allowed_registrars = [\"registrar.sip.test\", \"127.0.0.0/8\"]",
    ));
    let mut ws = ok.ws().await;
    ws.login_registered(&udp_token_via("registrar.sip.test"))
        .await;
    kam.wait_bindings("alice", 1, Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs dnsmasq and Kamailio with its TLS module (scripts/ci/40-gateway.sh)"]
async fn naptr_chooses_tls_when_a_trusted_ca_is_configured() {
    let kam = Kamailio::start_with(
        "MD5",
        USERS,
        KamailioOptions {
            tls: true,
            ..Default::default()
        },
    );
    let certs = kam.certs.clone().unwrap();
    let dns = Dnsmasq::start_with(&opts(&[
        "--naptr-record=sip.test,10,10,S,SIPS+D2T,,_sips._tcp.sip.test".into(),
        "--naptr-record=sip.test,20,10,S,SIP+D2U,,_sip._udp.sip.test".into(),
        format!(
            "--srv-host=_sips._tcp.sip.test,registrar.sip.test,{},0,0",
            kam.tls_port
        ),
        format!(
            "--srv-host=_sip._udp.sip.test,registrar.sip.test,{},0,0",
            kam.port
        ),
        "--host-record=registrar.sip.test,127.0.0.1".into(),
    ]));
    // The certificate is for sip.test (the domain located), not the SRV target (RFC 5922).
    let gw = Gateway::start(&dns_config(
        &dns,
        &format!("sip_tls_ca_file = \"{}\"", certs.ca.display()),
    ));
    let mut ws = gw.ws().await;
    ws.login_registered(&token_for("alice", None, None)).await;
    let b = kam.wait_bindings("alice", 1, Duration::from_secs(2));
    assert!(b[0].contains("transport=tls"), "{b:?}");
}
