//! Every path of the REGISTER machine against a registrar played by the test, on a made-up
//! clock: no socket, no sleep.

use super::*;
use crate::sip::account::AccountClaims;
use crate::sip::digest::{self, Answer};

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const TIMER_F: Duration = Duration::from_secs(32);

fn timing() -> Timing {
    Timing {
        expires: 600,
        t1: T1,
        t2: T2,
        timer_f: TIMER_F,
        max_retry_after: Duration::from_secs(30),
        keepalive: Duration::from_secs(30),
        user_agent: "test".into(),
        digest: Default::default(),
    }
}

fn account(kind: Kind, domain: &str) -> Account {
    Account::new(AccountClaims {
        login: "crm1",
        domain,
        auth_name: "crm1",
        password: "s3cret",
        display_name: Some("Op \"1\""),
        outbound_proxy: None,
        port: None,
        transport: Some(kind),
    })
    .unwrap()
}

fn local() -> SocketAddr {
    "10.0.0.1:5070".parse().unwrap()
}

/// A registration and the registrar's view of it.
struct Test {
    reg: Registration,
    t0: Instant,
}

impl Test {
    fn new(kind: Kind) -> Test {
        Test::with(account(kind, "sip.example.org"), timing())
    }

    fn with(account: Account, timing: Timing) -> Test {
        Test {
            reg: Registration::new(account, timing, "0123abcd", local()),
            t0: Instant::now(),
        }
    }

    fn at(&self, secs: f64) -> Instant {
        self.t0 + Duration::from_secs_f64(secs)
    }

    fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.reg.poll_output()).collect()
    }

    /// The one request sent since the last call (panics on anything else).
    fn request(&mut self) -> Message {
        let out = self.outputs();
        match out.as_slice() {
            [Output::Transmit(Transmit {
                kind: TransmitKind::Request,
                data,
            })] => message::parse(data, true).unwrap().0,
            other => panic!("expected one request, got {other:?}"),
        }
    }

    /// The one event since the last call.
    fn event(&mut self) -> Event {
        let out = self.outputs();
        match out.as_slice() {
            [Output::Event(e)] => e.clone(),
            other => panic!("expected one event, got {other:?}"),
        }
    }

    fn answer(&mut self, secs: f64, req: &Message, code: u16, extra: &str) {
        let reason = message::reason_phrase(code).unwrap_or("Whatever");
        let resp = message::response_to(req, code, reason, "reg-tag", extra);
        let (m, _) = message::parse(resp.as_bytes(), true).unwrap();
        self.reg.handle_message(self.at(secs), &m);
    }

    /// Answers `req` with a 200 and checks the registration reports the 600 s it grants.
    fn accept(&mut self, secs: f64, req: &Message) {
        self.answer(secs, req, 200, "");
        assert_eq!(self.event(), Event::Registered { expires: 600 });
    }

    /// Answers `req` with a 401 (`WWW-Authenticate`) or 407 (`Proxy-Authenticate`) carrying
    /// the challenge `value`.
    fn challenge(&mut self, secs: f64, req: &Message, code: u16, value: &str) {
        let header = if code == 407 {
            "Proxy-Authenticate"
        } else {
            "WWW-Authenticate"
        };
        self.answer(secs, req, code, &format!("{header}: {value}\r\n"));
    }

    /// A UDP registration whose first REGISTER is answered at 0.1 s with `code` (401 or 407)
    /// and a fresh challenge from `realm` with `nonce`; returns it, that REGISTER and the one
    /// sent again.
    fn challenged(code: u16, realm: &str, nonce: &str) -> (Test, Message, Message) {
        let (mut t, req) = Test::started(Kind::Udp);
        t.challenge(0.1, &req, code, &challenge(realm, nonce, false));
        let again = t.request();
        (t, req, again)
    }

    /// A registration of a `kind` account, registered at 0.1 s.
    fn registered(kind: Kind) -> Test {
        let mut t = Test::new(kind);
        t.register();
        t
    }

    /// A registration of a `kind` account that sent its first REGISTER, and that request.
    fn started(kind: Kind) -> (Test, Message) {
        let mut t = Test::new(kind);
        let req = t.start();
        (t, req)
    }

    fn start(&mut self) -> Message {
        self.reg.start(self.t0);
        self.request()
    }

    /// Registers with a 200 granting `expires`; returns the time it happened at.
    fn register(&mut self) -> f64 {
        let req = self.start();
        self.answer(0.1, &req, 200, "Expires: 600\r\n");
        assert_eq!(self.event(), Event::Registered { expires: 600 });
        0.1
    }
}

fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    format!(
        "Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\", algorithm=MD5{}",
        if stale { ", stale=true" } else { "" }
    )
}

/// The digest answer the registrar expects for `nonce` with nonce count `nc` (read back from
/// the request's own cnonce).
fn check_answer(req: &Message, header: &str, realm: &str, nonce: &str, nc: u32) {
    let value = req.header(header).unwrap_or_else(|| panic!("no {header}"));
    let params = digest::parse_params(value.strip_prefix("Digest ").unwrap()).unwrap();
    let get = |n: &str| {
        params
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {n} in {value}"))
    };
    assert_eq!(get("nonce"), nonce);
    assert_eq!(get("nc"), format!("{nc:08x}"));
    assert_eq!(get("uri"), "sip:sip.example.org");
    let ch = Challenge::parse(&challenge(realm, nonce, false)).unwrap();
    let expected = digest::response(
        &ch,
        &Answer {
            username: "crm1",
            password: "s3cret",
            method: "REGISTER",
            uri: "sip:sip.example.org",
            cnonce: &get("cnonce"),
            nc,
        },
    );
    assert_eq!(get("response"), expected, "{value}");
}

#[test]
fn the_register_request() {
    let (t, req) = Test::started(Kind::Udp);
    let text =
        String::from_utf8(message::response_to(&req, 200, "OK", "x", "").into_bytes()).unwrap();
    assert!(text.contains("Call-ID: 0123abcd@siptoken"), "{text}");
    assert!(
        matches!(&req.start, StartLine::Request { method, uri } if method == "REGISTER" && uri == "sip:sip.example.org")
    );
    assert_eq!(req.cseq(), Some((1, "REGISTER")));
    assert!(req.top_via_branch().unwrap().starts_with("z9hG4bK"));
    assert_eq!(
        req.header("via")
            .map(|v| v.split(";branch").next().unwrap()),
        Some("SIP/2.0/UDP 10.0.0.1:5070;rport")
    );
    assert_eq!(
        req.header("from").unwrap().split(";tag=").next(),
        Some(r#""Op \"1\"" <sip:crm1@sip.example.org>"#)
    );
    assert_eq!(
        req.header("contact"),
        Some("<sip:st-0123abcd@10.0.0.1:5070>;expires=600")
    );
    assert_eq!(req.header("expires"), Some("600"));
    assert!(req.header("authorization").is_none());
    assert!(t.reg.awaiting_response());
}

/// Issue 12 / issue 14 item 7: `REGISTER sip:::1` becomes `REGISTER sip:[::1]`, and an IPv6
/// local address is bracketed in Via and Contact.
#[test]
fn ipv6_is_bracketed_everywhere() {
    let mut reg = Registration::new(
        account(Kind::Tcp, "::1"),
        timing(),
        "r6",
        "[::1]:5070".parse().unwrap(),
    );
    reg.start(Instant::now());
    let Some(Output::Transmit(t)) = reg.poll_output() else {
        panic!()
    };
    let text = String::from_utf8(t.data).unwrap();
    assert!(text.starts_with("REGISTER sip:[::1] SIP/2.0\r\n"), "{text}");
    for bracketed in [
        "Via: SIP/2.0/TCP [::1]:5070;rport;branch=",
        "<sip:crm1@[::1]>;tag=",
        "Contact: <sip:st-r6@[::1]:5070;transport=tcp>;expires=600",
    ] {
        assert!(text.contains(bracketed), "{bracketed} in {text}");
    }
}

#[test]
fn a_200_grants_our_contacts_expires_else_the_expires_header_else_the_request() {
    for (extra, granted) in [
        (
            // Issue 12: the quoted `>` of +sip.instance no longer hides our binding's expires.
            "Contact: <sip:other@10.0.0.9:5060>;expires=30, \
             <sip:st-0123abcd@10.0.0.1:5070>;expires=300;+sip.instance=\"<urn:uuid:0001>\"\r\n\
             Expires: 900\r\n",
            300,
        ),
        (
            "Contact: <sip:other@10.0.0.9:5060>;expires=30\r\nExpires: 900\r\n",
            900,
        ),
        ("", 600),
    ] {
        let (mut t, req) = Test::started(Kind::Udp);
        t.answer(1.0, &req, 200, extra);
        assert_eq!(t.event(), Event::Registered { expires: granted }, "{extra}");
        assert!(!t.reg.awaiting_response());
        // Refresh at 55–85 % of the granted expiry.
        let refresh = t.reg.poll_timeout().unwrap() - t.at(1.0);
        let g = f64::from(granted);
        assert!(
            (0.55 * g - 0.01..=0.85 * g + 0.01).contains(&refresh.as_secs_f64()),
            "{refresh:?} for {granted}"
        );
    }
}

#[test]
fn a_200_granting_nothing_is_no_binding() {
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(0.1, &req, 200, "Expires: 0\r\n");
    assert_eq!(
        t.event(),
        Event::Failed(Box::new(SipError::NoBinding { status: 200 }))
    );
    assert!(t.reg.is_done());
}

#[test]
fn a_401_is_answered_then_refreshes_reuse_the_challenge_with_the_next_nc() {
    let (mut t, req, req2) = Test::challenged(401, "example.org", "n1");
    assert_eq!(req2.cseq(), Some((2, "REGISTER")));
    assert_ne!(
        req2.top_via_branch(),
        req.top_via_branch(),
        "a new transaction"
    );
    assert_eq!(req2.header("call-id"), req.header("call-id"));
    check_answer(&req2, "authorization", "example.org", "n1", 1);
    t.accept(0.2, &req2);

    // The refresh answers the same challenge pre-emptively, nc 2.
    let at = t.reg.poll_timeout().unwrap();
    t.reg.handle_timeout(at);
    let refresh = t.request();
    assert_eq!(refresh.cseq(), Some((3, "REGISTER")));
    check_answer(&refresh, "authorization", "example.org", "n1", 2);
    t.accept(400.0, &refresh);
}

#[test]
fn a_407_and_a_401_are_both_answered() {
    let (mut t, _, req2) = Test::challenged(407, "proxy.example.org", "p1");
    check_answer(&req2, "proxy-authorization", "proxy.example.org", "p1", 1);
    assert!(req2.header("authorization").is_none());
    let registrar = challenge("example.org", "r1", false);
    t.challenge(0.2, &req2, 401, &registrar);
    let req3 = t.request();
    check_answer(&req3, "proxy-authorization", "proxy.example.org", "p1", 2);
    check_answer(&req3, "authorization", "example.org", "r1", 1);
    t.accept(0.3, &req3);
}

#[test]
fn a_stale_nonce_is_retried_a_second_fresh_challenge_is_auth_failed() {
    let (mut t, _, req2) = Test::challenged(401, "example.org", "n1");
    t.challenge(0.2, &req2, 401, &challenge("example.org", "n2", true));
    let req3 = t.request();
    check_answer(&req3, "authorization", "example.org", "n2", 1);
    // The same credentials refused with a fresh nonce: wrong password.
    t.challenge(0.3, &req3, 401, &challenge("example.org", "n3", false));
    assert_eq!(
        t.event(),
        Event::Failed(Box::new(SipError::AuthFailed { status: 401 }))
    );
    assert!(t.reg.is_done());

    // Endless stale nonces end too.
    let (mut t, mut req) = Test::started(Kind::Udp);
    for i in 0..3 {
        t.challenge(0.1, &req, 401, &challenge("e", &format!("s{i}"), i > 0));
        req = t.request();
    }
    t.challenge(0.2, &req, 401, &challenge("e", "s9", true));
    assert_eq!(
        t.event(),
        Event::Failed(Box::new(SipError::AuthFailed { status: 401 }))
    );
}

#[test]
fn a_403_after_the_challenge_is_auth_failed() {
    let (mut t, _, req2) = Test::challenged(401, "e", "n");
    t.answer(0.2, &req2, 403, "");
    let e = t.event();
    assert_eq!(
        e,
        Event::Failed(Box::new(SipError::AuthFailed { status: 403 }))
    );
}

#[test]
fn an_unanswerable_challenge_is_rejected() {
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(
        0.1,
        &req,
        401,
        "WWW-Authenticate: Digest realm=\"e\", nonce=\"n\", algorithm=SHA-1\r\n",
    );
    let Event::Failed(e) = t.event() else {
        panic!()
    };
    assert!(
        matches!(
            *e,
            SipError::BadChallenge {
                status: 401,
                error: ChallengeError::UnsupportedAlgorithm(_)
            }
        ),
        "{e:?}"
    );
    assert_eq!(e.status(), Some(401));
}

/// A registration asking for 60 s that sent its first REGISTER, and that request.
fn asking_for_60_s() -> (Test, Message) {
    let mut t = Test::with(
        account(Kind::Udp, "sip.example.org"),
        Timing {
            expires: 60,
            ..timing()
        },
    );
    let req = t.start();
    (t, req)
}

#[test]
fn a_423_is_retried_with_min_expires_which_refreshes_keep() {
    let (mut t, req) = asking_for_60_s();
    t.answer(0.1, &req, 423, "Min-Expires: 1200\r\n");
    let req2 = t.request();
    assert_eq!(req2.header("expires"), Some("1200"));
    assert!(req2.header("contact").unwrap().ends_with(";expires=1200"));
    t.answer(0.2, &req2, 200, "");
    assert_eq!(t.event(), Event::Registered { expires: 1200 });
    t.reg.handle_timeout(t.reg.poll_timeout().unwrap());
    assert_eq!(t.request().header("expires"), Some("1200"));

    // Without a usable Min-Expires: rejected.
    for extra in ["", "Min-Expires: 30\r\n", "Min-Expires: x\r\n"] {
        let (mut t, req) = asking_for_60_s();
        t.answer(0.1, &req, 423, extra);
        let Event::Failed(e) = t.event() else {
            panic!()
        };
        assert_eq!(e.status(), Some(423), "{extra}");
        assert_eq!(
            e.to_string(),
            "the registrar rejected the registration: 423 Interval Too Brief"
        );
    }
}

#[test]
fn a_5xx_with_retry_after_backs_off_then_retries() {
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(1.0, &req, 503, "Retry-After: 5 (maintenance)\r\n");
    assert!(t.outputs().is_empty(), "nothing during the back-off");
    assert_eq!(t.reg.poll_timeout(), Some(t.at(6.0)));
    assert!(!t.reg.awaiting_response());
    t.reg.handle_timeout(t.at(5.9));
    assert!(t.outputs().is_empty());
    t.reg.handle_timeout(t.at(6.0));
    let req2 = t.request();
    assert_eq!(req2.cseq(), Some((2, "REGISTER")));
    t.accept(6.1, &req2);

    for extra in ["", "Retry-After: 31\r\n"] {
        let (mut t, req) = Test::started(Kind::Udp);
        t.answer(1.0, &req, 503, extra);
        let Event::Failed(e) = t.event() else {
            panic!()
        };
        assert_eq!(e.status(), Some(503));
        assert!(
            e.is_target_failure(),
            "a 503 sends DNS failover to the next target"
        );
    }
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(1.0, &req, 500, "");
    let Event::Failed(e) = t.event() else {
        panic!()
    };
    assert!(!e.is_target_failure());
}

#[test]
fn the_registrars_reason_phrase_stays_out_of_the_text() {
    let (mut t, req) = Test::started(Kind::Udp);
    let resp = message::response_to(&req, 404, "No user at 10.1.2.3:5060", "x", "");
    let (m, _) = message::parse(resp.as_bytes(), true).unwrap();
    t.reg.handle_message(t.at(0.1), &m);
    let Event::Failed(e) = t.event() else {
        panic!()
    };
    assert_eq!(
        e.to_string(),
        "the registrar rejected the registration: 404 Not Found"
    );
    assert!(format!("{e:?}").contains("10.1.2.3"), "kept for the log");
}

#[test]
fn udp_retransmits_on_timer_e_and_times_out_on_timer_f() {
    let (mut t, first) = Test::started(Kind::Udp);
    let mut sent_at = Vec::new();
    while let Some(at) = t.reg.poll_timeout() {
        t.reg.handle_timeout(at);
        for o in t.outputs() {
            match o {
                Output::Transmit(tr) => {
                    assert_eq!(tr.kind, TransmitKind::Retransmission);
                    let (m, _) = message::parse(&tr.data, true).unwrap();
                    assert_eq!(m.top_via_branch(), first.top_via_branch());
                    sent_at.push((at - t.t0).as_millis());
                }
                Output::Event(e) => {
                    assert_eq!(e, Event::Failed(Box::new(SipError::Timeout)));
                    assert_eq!(at - t.t0, TIMER_F);
                }
                Output::Reconnect => panic!(),
            }
        }
    }
    // T1 doubling up to T2: 0.5, 1.5, 3.5, 7.5, then every 4 s until 32 s.
    assert_eq!(
        sent_at,
        [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]
    );
    assert!(t.reg.is_done());
    assert!(Event::Failed(Box::new(SipError::Timeout)) != Event::Unregistered);
}

#[test]
fn tcp_does_not_retransmit() {
    let mut t = Test::new(Kind::Tcp);
    t.start();
    assert_eq!(t.reg.poll_timeout(), Some(t.t0 + TIMER_F));
    t.reg.handle_timeout(t.t0 + TIMER_F);
    assert_eq!(t.event(), Event::Failed(Box::new(SipError::Timeout)));
}

#[test]
fn a_provisional_response_moves_retransmissions_to_t2() {
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(0.2, &req, 100, "");
    assert!(t.outputs().is_empty());
    assert_eq!(t.reg.poll_timeout(), Some(t.at(0.2) + T2));
    t.reg.handle_timeout(t.at(4.2));
    let out = t.outputs();
    assert!(matches!(
        out.as_slice(),
        [Output::Transmit(Transmit {
            kind: TransmitKind::Retransmission,
            ..
        })]
    ));
    assert_eq!(t.reg.poll_timeout(), Some(t.at(8.2)));
    // A 1xx does not stop Timer F.
    t.reg.handle_timeout(t.t0 + TIMER_F);
    assert_eq!(t.event(), Event::Failed(Box::new(SipError::Timeout)));
}

#[test]
fn responses_of_other_transactions_are_ignored() {
    let (mut t, req) = Test::started(Kind::Tcp);
    let ok = message::response_to(&req, 200, "OK", "x", "");
    for (from, to) in [
        (
            "Call-ID: 0123abcd@siptoken",
            "Call-ID: someone-else@siptoken",
        ),
        ("CSeq: 1 REGISTER", "CSeq: 7 REGISTER"),
        ("CSeq: 1 REGISTER", "CSeq: 1 OPTIONS"),
        (";branch=z9hG4bK", ";branch=z9hG4bKx"),
    ] {
        assert!(ok.contains(from), "{ok}");
        let other = ok.replace(from, to);
        let (m, _) = message::parse(other.as_bytes(), true).unwrap();
        t.reg.handle_message(t.at(0.1), &m);
        assert!(t.outputs().is_empty(), "{to}");
        assert!(t.reg.awaiting_response());
    }
    t.accept(0.2, &req);
    // A late duplicate 200 is ignored too.
    t.answer(0.3, &req, 200, "");
    assert!(t.outputs().is_empty());
}

/// Issue 14 item 5: an ICMP port-unreachable (forgeable) on UDP does not end the transaction;
/// the answer to a retransmission registers. With no answer, Timer F reports unreachable.
#[test]
fn udp_errors_are_soft() {
    let (mut t, req) = Test::started(Kind::Udp);
    t.reg
        .handle_transport_error(t.at(0.01), TransportError::Refused);
    assert!(t.outputs().is_empty());
    assert!(t.reg.awaiting_response());
    t.reg.handle_timeout(t.at(0.5));
    assert!(matches!(
        t.outputs().as_slice(),
        [Output::Transmit(Transmit {
            kind: TransmitKind::Retransmission,
            ..
        })]
    ));
    t.accept(0.6, &req);
    // Idle: an ICMP error changes nothing.
    t.reg
        .handle_transport_error(t.at(1.0), TransportError::Refused);
    assert!(t.outputs().is_empty());
    assert!(matches!(t.reg.state, State::Registered { .. }));

    let mut t = Test::new(Kind::Udp);
    t.start();
    t.reg
        .handle_transport_error(t.at(0.01), TransportError::Refused);
    t.reg
        .handle_transport_error(t.at(0.02), TransportError::NoRoute);
    t.reg.handle_timeout(t.t0 + TIMER_F);
    let out = t.outputs();
    let Some(Output::Event(e)) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(
        *e,
        Event::Failed(Box::new(SipError::Unreachable(TransportError::Refused)))
    );
}

/// With another address of the registrar left to try, an ICMP error moves on at once (a
/// forger gains a move to the next address, nothing more); refreshes and the last address keep
/// ICMP soft.
#[test]
fn udp_errors_fail_over_at_once_while_another_address_remains() {
    let mut t = Test::new(Kind::Udp);
    t.reg.set_alternatives(true);
    t.start();
    t.reg
        .handle_transport_error(t.at(0.01), TransportError::Refused);
    assert_eq!(
        t.event(),
        Event::Failed(Box::new(SipError::Unreachable(TransportError::Refused)))
    );
    let next: SocketAddr = "10.0.0.2:5060".parse().unwrap();
    t.reg.set_alternatives(false);
    assert!(t.reg.retarget(t.at(0.02), Kind::Udp, next));
    let req = t.request();
    t.reg
        .handle_transport_error(t.at(0.03), TransportError::Refused);
    assert!(t.outputs().is_empty(), "the last address: soft");
    t.accept(0.1, &req);
    // Registered: alternatives no longer matter.
    t.reg.set_alternatives(true);
    t.reg
        .handle_transport_error(t.at(1.0), TransportError::Refused);
    assert!(t.outputs().is_empty());
}

#[test]
fn a_connection_error_ends_a_tcp_transaction_at_once() {
    let mut t = Test::new(Kind::Tcp);
    t.start();
    t.reg
        .handle_transport_error(t.at(0.1), TransportError::Refused);
    let e = SipError::Unreachable(TransportError::Refused);
    assert!(e.is_target_failure());
    assert_eq!(t.event(), Event::Failed(Box::new(e)));
}

#[test]
fn a_failed_target_can_be_retried_elsewhere() {
    let (mut t, first) = Test::started(Kind::Udp);
    t.reg.handle_timeout(t.t0 + TIMER_F);
    let out = t.outputs();
    assert_eq!(
        out.last(),
        Some(&Output::Event(Event::Failed(Box::new(SipError::Timeout))))
    );
    let next: SocketAddr = "10.0.0.1:5080".parse().unwrap();
    // The next candidate may use another transport (NAPTR/SRV records for several).
    assert!(t.reg.retarget(t.t0 + TIMER_F, Kind::Tcp, next));
    let req = t.request();
    assert_eq!(req.header("call-id"), first.header("call-id"));
    assert!(req
        .header("contact")
        .unwrap()
        .contains("@10.0.0.1:5080;transport=tcp>"));
    assert!(req
        .header("via")
        .unwrap()
        .starts_with("SIP/2.0/TCP 10.0.0.1:5080"));
    assert!(req.cseq().unwrap().0 > first.cseq().unwrap().0);
    t.accept(33.0, &req);
    assert!(
        !t.reg.retarget(t.at(34.0), Kind::Udp, next),
        "only after a target failure"
    );

    // Wrong credentials are no target failure.
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(0.1, &req, 403, "");
    t.outputs();
    assert!(!t.reg.retarget(t.at(0.2), Kind::Udp, next));
}

#[test]
fn refreshes_happen_in_time_and_a_failed_one_is_lost() {
    let mut t = Test::new(Kind::Udp);
    let at = t.register();
    let refresh_at = t.reg.poll_timeout().unwrap();
    let delay = (refresh_at - t.at(at)).as_secs_f64();
    assert!((330.0..=510.0).contains(&delay), "{delay}");
    t.reg.handle_timeout(refresh_at - Duration::from_millis(1));
    assert!(t.outputs().is_empty(), "not before time");
    t.reg.handle_timeout(refresh_at);
    let req = t.request();
    assert_eq!(req.cseq(), Some((2, "REGISTER")));
    t.answer(delay + 1.0, &req, 404, "");
    let Event::Lost(e) = t.event() else { panic!() };
    assert_eq!(e.status(), Some(404));
    assert!(t.reg.is_done());
}

/// A registered registration asked at `secs` to unregister, and the REGISTER it sent.
fn unregistering(secs: f64) -> (Test, Message) {
    let mut t = Test::registered(Kind::Udp);
    t.reg.unregister(t.at(secs));
    let req = t.request();
    (t, req)
}

#[test]
fn unregister_sends_expires_0() {
    let (mut t, req) = unregistering(5.0);
    assert_eq!(req.header("expires"), Some("0"));
    assert_eq!(
        req.header("contact"),
        Some("<sip:st-0123abcd@10.0.0.1:5070>;expires=0")
    );
    t.answer(5.1, &req, 200, "");
    assert_eq!(t.event(), Event::Unregistered);
    assert!(t.reg.is_done());
    assert_eq!(t.reg.poll_timeout(), None);

    // A failed unregistration still ends with Unregistered (the log says why).
    let (mut t, _) = unregistering(5.0);
    t.reg.handle_timeout(t.at(5.0) + TIMER_F);
    let out = t.outputs();
    assert_eq!(out.last(), Some(&Output::Event(Event::Unregistered)));
}

#[test]
fn unregister_asked_during_the_first_register_follows_it() {
    let (mut t, req) = Test::started(Kind::Udp);
    t.reg.unregister(t.at(0.05));
    assert!(
        t.outputs().is_empty(),
        "the transaction in flight finishes first"
    );
    t.answer(0.1, &req, 200, "");
    let out = t.outputs();
    assert!(matches!(
        &out[0],
        Output::Event(Event::Registered { expires: 600 })
    ));
    let Output::Transmit(tr) = &out[1] else {
        panic!("{out:?}")
    };
    let (unreg, _) = message::parse(&tr.data, true).unwrap();
    assert_eq!(unreg.header("expires"), Some("0"));
    t.answer(0.2, &unreg, 200, "");
    assert_eq!(t.event(), Event::Unregistered);

    // During a back-off before any binding: nothing to remove.
    let (mut t, req) = Test::started(Kind::Udp);
    t.answer(0.1, &req, 503, "Retry-After: 5\r\n");
    t.reg.unregister(t.at(1.0));
    assert_eq!(t.event(), Event::Unregistered);
    assert!(t.reg.is_done());
}

#[test]
fn an_unregistration_answered_423_is_not_turned_into_a_registration() {
    let (mut t, req) = unregistering(1.0);
    t.answer(1.1, &req, 423, "Min-Expires: 1200\r\n");
    assert_eq!(t.event(), Event::Unregistered);
}

#[test]
fn requests_from_the_registrar_are_answered() {
    let mut t = Test::registered(Kind::Udp);
    for (method, code) in [("OPTIONS", 200), ("INVITE", 405), ("ACK", 0)] {
        let req = format!(
            "{method} sip:st-0123abcd@10.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKk\r\n\
             From: <sip:ka@x>;tag=9\r\nTo: <sip:st-0123abcd@x>\r\nCall-ID: k\r\nCSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let (m, _) = message::parse(req.as_bytes(), true).unwrap();
        t.reg.handle_message(t.at(1.0), &m);
        let out = t.outputs();
        if code == 0 {
            assert!(out.is_empty());
            continue;
        }
        let [Output::Transmit(Transmit {
            kind: TransmitKind::Response,
            data,
        })] = out.as_slice()
        else {
            panic!("{out:?}")
        };
        let (r, _) = message::parse(data, true).unwrap();
        assert_eq!(r.code(), Some(code));
        assert_eq!(r.cseq(), Some((1, method)));
    }
}

#[test]
fn a_closed_idle_connection_is_replaced_and_the_old_contact_removed() {
    let mut t = Test::registered(Kind::Tcp);
    t.reg
        .handle_transport_error(t.at(10.0), TransportError::Closed);
    assert_eq!(t.outputs(), [Output::Reconnect]);
    assert_eq!(t.reg.poll_timeout(), None);
    t.reg
        .reconnected(t.at(10.1), "10.0.0.1:6000".parse().unwrap());
    let req = t.request();
    let contacts: Vec<_> = req.list("contact");
    assert_eq!(
        contacts,
        [
            "<sip:st-0123abcd@10.0.0.1:6000;transport=tcp>;expires=600",
            "<sip:st-0123abcd@10.0.0.1:5070;transport=tcp>;expires=0"
        ]
    );
    t.accept(10.2, &req);
    // The next refresh no longer names the old Contact.
    t.reg
        .handle_timeout(t.reg.poll_timeout().unwrap().max(t.at(600.0)));
    let refresh = t
        .outputs()
        .into_iter()
        .find_map(|o| match o {
            Output::Transmit(Transmit {
                kind: TransmitKind::Request,
                data,
            }) => Some(data),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        message::parse(&refresh, true)
            .unwrap()
            .0
            .list("contact")
            .len(),
        1
    );

    let mut t = Test::registered(Kind::Tcp);
    t.reg
        .handle_transport_error(t.at(10.0), TransportError::Closed);
    t.outputs();
    t.reg.reconnect_failed(t.at(10.1), TransportError::Refused);
    assert_eq!(
        t.event(),
        Event::Lost(Box::new(SipError::Unreachable(TransportError::Refused)))
    );
}

#[test]
fn an_unregistration_on_a_closed_connection_reconnects_once() {
    let mut t = Test::registered(Kind::Tcp);
    t.reg.unregister(t.at(1.0));
    t.request();
    t.reg
        .handle_transport_error(t.at(1.1), TransportError::Closed);
    assert_eq!(t.outputs(), [Output::Reconnect]);
    t.reg
        .reconnected(t.at(1.2), "10.0.0.1:6001".parse().unwrap());
    let req = t.request();
    assert_eq!(req.header("expires"), Some("0"));
    assert_eq!(req.list("contact").len(), 2, "both Contacts removed");
    t.reg
        .handle_transport_error(t.at(1.3), TransportError::Closed);
    assert_eq!(t.event(), Event::Unregistered, "no second reconnect");
}

#[test]
fn tcp_keepalives_while_idle() {
    let mut t = Test::new(Kind::Tcp);
    let at = t.register();
    assert_eq!(t.reg.poll_timeout(), Some(t.at(at + 30.0)));
    t.reg.handle_timeout(t.at(at + 30.0));
    assert_eq!(
        t.outputs(),
        [Output::Transmit(Transmit {
            kind: TransmitKind::KeepAlive,
            data: b"\r\n\r\n".to_vec()
        })]
    );
    assert_eq!(t.reg.poll_timeout(), Some(t.at(at + 60.0)));

    // None over UDP, none when switched off.
    let t = Test::registered(Kind::Udp);
    assert!(t.reg.poll_timeout().unwrap() > t.at(300.0));
    let mut t = Test::with(
        account(Kind::Tls, "sip.example.org"),
        Timing {
            keepalive: Duration::ZERO,
            ..timing()
        },
    );
    t.register();
    assert!(t.reg.poll_timeout().unwrap() > t.at(300.0));
}

/// A hostile registrar that uses every retry there is (a fresh and a stale answer per
/// challenge kind, two 423s, two 503s) gets nine requests; one more retry of any kind fails
/// the attempt.
#[test]
fn every_kind_of_retry_is_bounded() {
    let www = |n: &str, stale| format!("WWW-Authenticate: {}\r\n", challenge("e", n, stale));
    let proxy = |n: &str, stale| format!("Proxy-Authenticate: {}\r\n", challenge("p", n, stale));
    let script = [
        (401, www("a", false)),
        (407, proxy("b", false)),
        (401, www("c", true)),
        (407, proxy("d", true)),
        (423, "Min-Expires: 700\r\n".to_owned()),
        (423, "Min-Expires: 800\r\n".to_owned()),
        (503, "Retry-After: 1\r\n".to_owned()),
        (503, "Retry-After: 1\r\n".to_owned()),
    ];
    for (last, extra, status) in [
        (401, www("e", true), Some(401)),
        (407, proxy("f", false), Some(407)),
        (423, "Min-Expires: 900\r\n".to_owned(), Some(423)),
        (503, "Retry-After: 1\r\n".to_owned(), Some(503)),
    ] {
        let (mut t, mut req) = Test::started(Kind::Udp);
        let mut requests = 1;
        let mut now = 0.0;
        for (code, extra) in &script {
            now += 2.0;
            t.answer(now, &req, *code, extra);
            if *code == 503 {
                t.reg.handle_timeout(t.reg.poll_timeout().unwrap());
            }
            req = t.request();
            requests += 1;
        }
        assert_eq!(requests, 9);
        assert_eq!(req.header("expires"), Some("800"));
        t.answer(now + 1.0, &req, last, &extra);
        let Event::Failed(e) = t.event() else {
            panic!()
        };
        assert_eq!(e.status(), status, "{e:?}");
    }
}
