//! Calls through the gateway, end to end, against real parts only: headless Chromium (its fake
//! microphone playing a sine) speaking the WebSocket protocol, the gateway, Kamailio as
//! registrar and proxy (digest with 407 on INVITE, record-routing), and independent callees and
//! callers: sipp (scenarios in tests/gateway/sipp/call-*.xml, `-rtp_echo`) and baresip (its own
//! sine, recording what it hears). Every test that says audio checks audio: the tone is found by
//! frequency at the far end (a WebAudio analyser in the browser; a Goertzel filter over what
//! baresip recorded), not just signalling.

#[path = "gateway/harness.rs"]
mod harness;

#[path = "gateway/browser.rs"]
mod browser;

#[path = "gateway/baresip.rs"]
mod baresip;

#[path = "gateway/audio.rs"]
mod audio;

use std::time::Duration;

use baresip::Baresip;
use browser::BrowserPhone;
use harness::*;
use serde_json::json;
use siptoken::Transport;

const T: Duration = Duration::from_secs(20);
/// The browser's microphone tone and baresip's.
const BROWSER_HZ: f64 = 1000.0;
const BARESIP_HZ: u32 = 400;

/// A gateway that carries calls: the browser leg on a free loopback port, RTP ports from a
/// window of its own (tests run in parallel), `extra` TOML lines.
fn call_gateway(extra: &str) -> Gateway {
    Gateway::start(&format!("{}{extra}", CallPorts::free().config()))
}

/// A Kamailio with the operators `alice` and `carol`, the phone `bob`, and static routes from
/// user names to sipp callees.
fn kamailio(routes: &[(&str, &Sipp)]) -> Kamailio {
    Kamailio::start_with(
        "MD5",
        &[("alice", "pa55"), ("bob", "b0b"), ("carol", "c4r0l")],
        KamailioOptions::routes_to(routes),
    )
}

/// Kamailio with `routes`, a call gateway with `extra` config lines, and alice's browser logged
/// in through it.
fn alice_through(routes: &[(&str, &Sipp)], extra: &str) -> (Kamailio, Gateway, BrowserPhone) {
    let kam = kamailio(routes);
    let gw = call_gateway(extra);
    let alice = operator(&gw, &kam, "alice", "pa55", BROWSER_HZ);
    (kam, gw, alice)
}

/// [`alice_through`] the sipp callee `name` (running the scenario file `scenario_file` with
/// `sipp_args`), and alice's call `c1` to it answered. The callee comes first: it outlives the
/// rest, as when declared first.
fn answered_call(
    scenario_file: &str,
    sipp_args: &[&str],
    name: &str,
    extra: &str,
) -> (Sipp, Kamailio, Gateway, BrowserPhone) {
    let callee = Sipp::start_with(&scenario(scenario_file), sipp_args);
    let (kam, gw, mut alice) = alice_through(&[(name, &callee)], extra);
    alice.call_answered("c1", name, T);
    (callee, kam, gw, alice)
}

/// Like [`alice_through`] (no extra config), with the phone bob (baresip playing
/// [`BARESIP_HZ`]) registered before the gateway starts.
fn alice_and_bob(routes: &[(&str, &Sipp)]) -> (Kamailio, Baresip, Gateway, BrowserPhone) {
    let kam = kamailio(routes);
    let bob = Baresip::start(kam.port, "bob", "b0b", BARESIP_HZ, "");
    let gw = call_gateway("");
    let alice = operator(&gw, &kam, "alice", "pa55", BROWSER_HZ);
    (kam, bob, gw, alice)
}

/// A browser logged in as `user` (password `password`) through `gw`, its microphone playing
/// `hz`.
fn operator(gw: &Gateway, kam: &Kamailio, user: &str, password: &str, hz: f64) -> BrowserPhone {
    let mut phone = BrowserPhone::start(gw.addr, hz);
    phone.login(&token(user, password, kam.port, Transport::Udp));
    phone
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn browser_calls_an_echo_callee_through_the_proxy_and_hears_itself() {
    let mut echo = Sipp::start_with(&scenario("call-answer.xml"), &["-rtp_echo"]);
    let (kam, _gw, mut alice) = alice_through(&[("echo", &echo)], "");
    alice.call("c1", "echo");
    alice.event("media", Some("c1"), T);
    alice.event("answered", Some("c1"), T);
    // What the browser sends comes back from the echo through Kamailio's callee and the gateway.
    alice.assert_hears("c1", BROWSER_HZ);
    alice.hangup("c1");
    alice.ended("c1", "hangup", T);
    echo.wait_success(T);
    // The INVITE was challenged by the proxy (407) and answered with the token's credentials.
    echo.assert_logged("INVITE sip:");
    assert!(
        kam.log().contains("INVITE to echo"),
        "the call went through Kamailio:\n{}",
        kam.log()
    );
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn browser_and_baresip_hear_each_other() {
    let (_kam, mut bob, _gw, mut alice) = alice_and_bob(&[]);
    alice.call_answered("c1", "bob", T);
    bob.event("CALL_ESTABLISHED", T);
    alice.assert_hears("c1", BARESIP_HZ as f64);
    std::thread::sleep(Duration::from_secs(3));
    alice.hangup("c1");
    alice.ended("c1", "hangup", T);
    bob.event("CALL_CLOSED", T);
    bob.assert_heard(BROWSER_HZ, 2.0);
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn baresip_calls_the_operator_who_answers_and_the_caller_hangs_up() {
    let (kam, mut bob, _gw, mut alice) = alice_and_bob(&[]);
    bob.command("dial", &format!("sip:alice@127.0.0.1:{}", kam.port));
    let incoming = alice.event("incomingCall", None, T);
    let id = incoming["call"].as_str().unwrap().to_owned();
    assert!(id.starts_with("in-"), "{incoming}");
    assert!(
        incoming["from"].as_str().unwrap().starts_with("sip:bob@"),
        "{incoming}"
    );
    assert_eq!(incoming["displayName"], "Test bob", "{incoming}");
    alice.cmd(json!({"cmd": "answer", "call": id}));
    alice.event("media", Some(&id), T);
    alice.event("answered", Some(&id), T);
    bob.event("CALL_ESTABLISHED", T);
    alice.assert_hears(&id, BARESIP_HZ as f64);
    std::thread::sleep(Duration::from_secs(3));
    bob.command("hangup", "");
    alice.ended(&id, "remote_hangup", T);
    bob.assert_heard(BROWSER_HZ, 2.0);
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn a_caller_who_gives_up_before_the_answer_is_cancelled_and_a_rejected_caller_sees_486() {
    let (kam, mut bob, _gw, mut alice) = alice_and_bob(&[]);
    let alice_uri = format!("sip:alice@127.0.0.1:{}", kam.port);

    bob.command("dial", &alice_uri);
    let id = alice.event("incomingCall", None, T)["call"]
        .as_str()
        .unwrap()
        .to_owned();
    bob.command("hangup", "");
    alice.ended(&id, "cancelled", T);
    bob.event("CALL_CLOSED", T);

    bob.command("dial", &alice_uri);
    let id = alice.event("incomingCall", None, T)["call"]
        .as_str()
        .unwrap()
        .to_owned();
    alice.send(json!({"type": "reject", "call": id}));
    let closed = bob.event("CALL_CLOSED", T);
    assert!(
        closed["param"].as_str().unwrap_or("").contains("486"),
        "the caller sees 486: {closed}"
    );
    // The client hung up the ringing call: `hangup`, with the status the caller got.
    let ended = alice.ended(&id, "hangup", T);
    assert_eq!(ended["sipStatus"], 486, "{ended}");
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn final_responses_map_to_end_reasons() {
    let cases = [
        (486, "Busy Here", "busy"),
        (603, "Decline", "declined"),
        (404, "Not Found", "not_found"),
        (480, "Temporarily Unavailable", "no_answer"),
        (488, "Not Acceptable Here", "unsupported_media"),
        (500, "Server Internal Error", "failed"),
    ];
    let scenarios = tempfile::tempdir().unwrap();
    let callees: Vec<(String, Sipp)> = cases
        .iter()
        .map(|(status, reason, _)| {
            let file = scenarios.path().join(format!("status-{status}.xml"));
            let template = std::fs::read_to_string(scenario("call-status.xml")).unwrap();
            let filled = template.replace("STATUS REASON", &format!("{status} {reason}"));
            std::fs::write(&file, filled).unwrap();
            (format!("s{status}"), Sipp::start(&file))
        })
        .collect();
    let routes: Vec<(&str, &Sipp)> = callees.iter().map(|(u, s)| (u.as_str(), s)).collect();
    let (_kam, _gw, mut alice) = alice_through(&routes, "");
    for (i, ((status, _, reason), (user, _))) in cases.iter().zip(&callees).enumerate() {
        let id = format!("c{i}");
        alice.call(&id, user);
        alice.event("ringing", Some(&id), T);
        let ended = alice.ended(&id, reason, T);
        assert_eq!(ended["sipStatus"], *status, "{ended}");
    }
    for (_, mut sipp) in callees {
        sipp.wait_success(T);
    }
    // Nobody of that name: Kamailio's own 404.
    alice.call("nobody", "nobody");
    let ended = alice.ended("nobody", "not_found", T);
    assert_eq!(ended["sipStatus"], 404, "{ended}");
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn hold_and_unhold_reach_the_far_end() {
    let (mut callee, _kam, _gw, mut alice) =
        answered_call("call-hold.xml", &["-rtp_echo"], "held", "");
    alice.assert_hears("c1", BROWSER_HZ);
    alice.send(json!({"type": "hold", "call": "c1"}));
    let held = alice.event("held", Some("c1"), T);
    assert_eq!(held["by"], "local", "{held}");
    alice.send(json!({"type": "unhold", "call": "c1"}));
    let resumed = alice.event("resumed", Some("c1"), T);
    assert_eq!(resumed["by"], "local", "{resumed}");
    alice.assert_hears("c1", BROWSER_HZ);
    alice.hangup("c1");
    alice.event("ended", Some("c1"), T);
    // The scenario checked a=sendonly in the first re-INVITE and a=sendrecv in the second.
    callee.wait_success(T);
    let log = callee.log();
    assert!(
        log.contains("held: a=sendonly") && log.contains("resumed: a=sendrecv"),
        "{log}"
    );
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn dtmf_reaches_the_far_end_as_rfc4733_events_or_as_sip_info() {
    let kam_sipp = Sipp::start_with(&scenario("call-info-dtmf.xml"), &[]);
    let (_kam, mut bob, _gw, mut alice) = alice_and_bob(&[("noevents", &kam_sipp)]);

    // baresip offers telephone-event: RFC 4733 events in the RTP stream.
    alice.call_answered("c1", "bob", T);
    bob.event("CALL_ESTABLISHED", T);
    alice.send(json!({"type": "dtmf", "call": "c1", "digits": "12#9"}));
    let mut got = String::new();
    for _ in 0..4 {
        let e = bob.event("CALL_DTMF_START", T);
        got.push_str(e["param"].as_str().unwrap_or("?"));
    }
    assert_eq!(got, "12#9");
    alice.hangup("c1");
    alice.event("ended", Some("c1"), T);

    // The sipp callee offers no telephone-event: SIP INFO application/dtmf-relay.
    let mut info = kam_sipp;
    alice.call_answered("c2", "noevents", T);
    alice.send(json!({"type": "dtmf", "call": "c2", "digits": "3*A"}));
    std::thread::sleep(Duration::from_secs(3));
    alice.hangup("c2");
    alice.event("ended", Some("c2"), T);
    info.wait_success(T);
    for d in ["DTMF 3", "DTMF *", "DTMF A"] {
        info.assert_logged(d);
    }

    // Bad digits are refused before anything is sent.
    alice.call_answered("c3", "bob", T);
    alice.send(json!({"type": "dtmf", "call": "c3", "digits": "12x"}));
    let e = alice.event("error", Some("c3"), T);
    assert_eq!(e["code"], "bad_request", "{e}");
    alice.hangup("c3");
    alice.event("ended", Some("c3"), T);
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn blind_transfer_completes() {
    let (mut callee, _kam, _gw, mut alice) = answered_call("call-refer.xml", &[], "transferee", "");
    alice.send(json!({"type": "transfer", "call": "c1", "to": "1003"}));
    alice.event("transferring", Some("c1"), T);
    alice.ended("c1", "transferred", T);
    callee.wait_success(T);
    callee.assert_logged("REFER to sip:1003@");
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn a_silent_far_end_ends_the_call_with_media_timeout() {
    // call-answer.xml without -rtp_echo never sends RTP.
    let (mut silent, _kam, _gw, mut alice) = answered_call(
        "call-answer.xml",
        &[],
        "silent",
        "media_timeout_seconds = 3",
    );
    alice.ended("c1", "media_timeout", T);
    // The gateway hung up properly: the callee got its BYE.
    silent.wait_success(T);
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn closing_the_socket_mid_call_sends_bye() {
    let (mut echo, kam, _gw, alice) = answered_call("call-answer.xml", &["-rtp_echo"], "echo", "");
    drop(alice); // Chromium goes away with its WebSocket.
    echo.wait_success(T);
    kam.wait_bindings("alice", 0, T);
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn sigterm_mid_call_sends_bye_then_unregisters() {
    let (mut echo, kam, mut gw, mut alice) =
        answered_call("call-answer.xml", &["-rtp_echo"], "echo", "");
    assert_eq!(kam.bindings("alice").len(), 1);
    let status = gw.terminate(T);
    assert!(status.success(), "{status}\n{}", gw.log());
    alice.ended("c1", "logged_out", T);
    echo.wait_success(T);
    assert!(kam.bindings("alice").is_empty(), "{}", kam.dump());
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn two_browsers_call_each_other_through_the_gateway() {
    let (kam, gw, mut alice) = alice_through(&[], "");
    let mut carol = operator(&gw, &kam, "carol", "c4r0l", 600.0);
    alice.call("a1", "carol");
    let incoming = carol.event("incomingCall", None, T);
    assert!(
        incoming["from"].as_str().unwrap().starts_with("sip:alice@"),
        "{incoming}"
    );
    let id = incoming["call"].as_str().unwrap().to_owned();
    carol.cmd(json!({"cmd": "answer", "call": id}));
    alice.event("answered", Some("a1"), T);
    carol.event("answered", Some(&id), T);
    alice.assert_hears("a1", 600.0);
    carol.assert_hears(&id, BROWSER_HZ);
    alice.hangup("a1");
    alice.ended("a1", "hangup", T);
    carol.ended(&id, "remote_hangup", T);
}

#[test]
#[ignore = "needs Kamailio, sipp, baresip and headless Chromium (scripts/ci/40-gateway.sh)"]
fn call_messages_are_checked() {
    let kam = kamailio(&[]);
    let gw = call_gateway("max_calls_per_session = 1");
    let mut alice = BrowserPhone::start(gw.addr, BROWSER_HZ);
    // Before any login.
    alice.send(json!({"type": "call", "call": "c1", "to": "bob", "sdp": "v=0"}));
    assert_eq!(alice.event("error", None, T)["code"], "not_logged_in");
    alice.login(&token("alice", "pa55", kam.port, Transport::Udp));
    for (msg, code) in [
        (json!({"type": "hangup", "call": "nope"}), "unknown_call"),
        (
            json!({"type": "call", "call": "bad id!", "to": "bob", "sdp": "v=0"}),
            "bad_request",
        ),
        (
            json!({"type": "call", "call": "c2", "to": "sip:", "sdp": "v=0"}),
            "invalid_target",
        ),
        (
            json!({"type": "call", "call": "c3", "to": "bob", "sdp": "not sdp"}),
            "invalid_sdp",
        ),
    ] {
        alice.send(msg.clone());
        let e = alice.event("error", None, T);
        assert_eq!(e["code"], code, "{msg} -> {e}");
    }
}
