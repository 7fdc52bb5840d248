//! Placing a call: the INVITE, provisional responses, the answer and its ACK, failures, Timer B,
//! the ring timeout, hanging up and being hung up on.

use std::time::Duration;

use super::confirmed_outbound;
use super::harness::{names, starts, Far, Run, ANSWER, OFFER, ROUTE};
use crate::sip::call::{CallEvent, EndReason};
use crate::sip::incoming::ALLOW;
use crate::sip::routing;
use crate::sip::transport::Kind;

#[test]
fn the_invite_is_complete_and_honest() {
    let mut run = Run::outgoing();
    let inv = run.one_sent();
    assert_eq!(inv.method(), Some("INVITE"));
    let crate::sip::message::StartLine::Request { uri, .. } = &inv.start else {
        unreachable!()
    };
    assert_eq!(uri, "sip:bob@example.org");
    let via = inv.header("via").unwrap();
    assert!(
        via.starts_with("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bK-"),
        "{via}"
    );
    assert_eq!(
        routing::route_of_branch(inv.top_via_branch().unwrap()),
        Some(ROUTE)
    );
    assert_eq!(inv.header("max-forwards"), Some("70"));
    let from = inv.header("from").unwrap();
    assert!(
        from.starts_with("\"Operator\" <sip:op@example.org>;tag="),
        "{from}"
    );
    assert_eq!(inv.header("to"), Some("<sip:bob@example.org>"));
    assert!(inv.header("call-id").unwrap().ends_with("@siptoken-call"));
    assert_eq!(inv.cseq(), Some((1, "INVITE")));
    assert_eq!(
        inv.header("contact"),
        Some(format!("<sip:st-{ROUTE}@10.0.0.1:5070>").as_str())
    );
    assert_eq!(inv.header("allow"), Some(ALLOW));
    assert_eq!(inv.header("supported"), None, "no extension is implemented");
    assert_eq!(inv.header("content-type"), Some("application/sdp"));
    assert_eq!(inv.body, OFFER);
    assert!(inv
        .header("user-agent")
        .unwrap()
        .starts_with("siptoken-gateway/"));
    assert!(run.take_events().is_empty());
}

#[test]
fn ringing_then_answer_is_acknowledged_in_the_dialog() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 100, None));
    run.input(&far.answer(&inv, 180, None));
    run.input(&far.answer(&inv, 180, None));
    assert_eq!(names(&run.take_events()), ["Ringing"], "once, not for 100");
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    assert_eq!(
        run.take_events(),
        [CallEvent::Answered {
            sdp: Some(ANSWER.to_vec())
        }]
    );
    let ack = run.one_sent();
    assert_eq!(ack.method(), Some("ACK"));
    let crate::sip::message::StartLine::Request { uri, .. } = &ack.start else {
        unreachable!()
    };
    assert_eq!(uri, "sip:bob@10.0.0.2:5062", "the remote target");
    assert_eq!(ack.header("route"), Some("<sip:proxy.example.org;lr>"));
    assert_eq!(ack.cseq(), Some((1, "ACK")));
    assert_eq!(ack.header("to"), Some("<sip:bob@example.org>;tag=callee1"));
    assert_ne!(
        ack.top_via_branch(),
        inv.top_via_branch(),
        "the 2xx ACK is a new transaction"
    );
    assert_eq!(ack.header("call-id"), inv.header("call-id"));
    // Nothing more: no retransmission of the INVITE after the answer.
    run.advance(Duration::from_secs(10));
    assert!(run.take_sent().is_empty());
    assert!(!run.call.is_ended());
}

#[test]
fn early_media_then_ringing() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 183, Some(ANSWER)));
    run.input(&far.answer(&inv, 183, Some(ANSWER)));
    assert_eq!(
        run.take_events(),
        [CallEvent::EarlyMedia {
            sdp: ANSWER.to_vec()
        }],
        "the same early SDP twice is one event"
    );
    run.input(&far.answer(&inv, 183, None));
    assert_eq!(run.take_events(), [CallEvent::Ringing]);
    run.input(&far.answer(&inv, 181, None));
    assert!(run.take_events().is_empty(), "181 is not ringing");
}

#[test]
fn the_invite_is_retransmitted_until_a_provisional_response() {
    let mut run = Run::outgoing();
    let inv = run.one_sent();
    run.advance(Duration::from_millis(1600));
    let again = run.take_sent();
    assert_eq!(starts(&again), ["INVITE", "INVITE"], "at 0.5 s and 1.5 s");
    assert_eq!(again[0].top_via_branch(), inv.top_via_branch());
    let far = Far::callee(&inv);
    run.input(&far.answer(&inv, 100, None));
    run.advance(Duration::from_secs(60));
    assert!(
        starts(&run.take_sent()).iter().all(|s| s != "INVITE"),
        "no INVITE retransmission while proceeding"
    );
}

#[test]
fn no_response_at_all_fails_after_timer_b() {
    let mut run = Run::outgoing();
    run.advance(Duration::from_secs(40));
    assert_eq!(
        run.take_sent().len(),
        7,
        "the INVITE, then 6 retransmissions"
    );
    assert_eq!(run.ended(), ("failed", None));
    assert!(run.call.is_done());
}

#[test]
fn reliable_transport_sends_the_invite_once() {
    let mut run = Run::outgoing_with(Kind::Tcp);
    let inv = run.one_sent();
    assert!(inv.header("via").unwrap().starts_with("SIP/2.0/TCP "));
    run.advance(Duration::from_secs(31));
    assert!(run.take_sent().is_empty());
    run.advance(Duration::from_secs(1));
    assert_eq!(run.ended(), ("failed", None));
}

#[test]
fn failures_are_acknowledged_and_mapped_to_reasons() {
    for &(code, reason) in crate::sip::call::end::STATUS_REASONS {
        let (mut run, inv, far) = Run::calling();
        run.input(&far.answer(&inv, 180, None));
        run.input(&far.answer(&inv, code, None));
        let ack = run.one_sent();
        assert_eq!(ack.method(), Some("ACK"), "{code}");
        assert_eq!(
            ack.top_via_branch(),
            inv.top_via_branch(),
            "{code}: ACK in the transaction"
        );
        assert_eq!(ack.cseq(), Some((1, "ACK")));
        assert_eq!(run.ended(), (reason, Some(code)), "{code}");
        // The retransmitted failure is acknowledged again, nothing else.
        run.only_acked(&far.answer(&inv, code, None));
    }
}

#[test]
fn a_2xx_without_sdp_answer_is_acknowledged_and_hung_up() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 200, None));
    assert_eq!(starts(&run.take_sent()), ["ACK", "BYE"]);
    assert_eq!(run.ended(), ("failed", None));
}

#[test]
fn ringing_too_long_is_cancelled_as_no_answer() {
    let (mut run, inv, far) = Run::ringing_out();
    run.advance(Duration::from_secs(59));
    assert!(run.take_sent().is_empty());
    run.advance(Duration::from_secs(1));
    let cancel = run.one_sent();
    assert_eq!(cancel.method(), Some("CANCEL"));
    assert_eq!(run.ended(), ("no_answer", None));
    run.input(&super::harness::respond(&cancel, 200, "callee1", "", None));
    run.only_acked(&far.answer(&inv, 487, None));
}

#[test]
fn hangup_after_answer_sends_bye() {
    let (mut run, far) = confirmed_outbound();
    run.command(|c, now| c.hangup(now));
    assert_eq!(run.ended(), ("hangup", None));
    let bye = run.one_sent();
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.cseq(), Some((2, "BYE")));
    assert_eq!(bye.header("route"), Some("<sip:proxy.example.org;lr>"));
    assert_eq!(bye.header("to"), Some("<sip:bob@example.org>;tag=callee1"));
    assert!(run.call.hangup(run.now).is_err(), "once");
    run.advance(Duration::from_millis(600));
    assert_eq!(starts(&run.take_sent()), ["BYE"], "retransmitted over UDP");
    run.input(&far.answer(&bye, 200, None));
    assert!(
        !run.call.is_done(),
        "Timers K and M still absorb retransmissions"
    );
    run.finish(Duration::from_secs(32));
}

#[test]
fn remote_bye_ends_the_call_once() {
    let (mut run, mut far) = confirmed_outbound();
    let bye = far.request("BYE", "", None, "");
    run.input(&bye);
    let ok = run.one_sent();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.cseq(), Some((101, "BYE")));
    assert_eq!(run.ended(), ("remote_hangup", None));
    run.input(&bye);
    assert_eq!(
        starts(&run.take_sent()),
        ["200"],
        "the retransmission gets the same answer"
    );
    assert!(run.take_events().is_empty());
    assert!(run.call.hangup(run.now).is_err());
    run.finish(Duration::from_secs(40));
}

#[test]
fn logged_out_mid_call_hangs_up_properly() {
    let (mut run, _far) = confirmed_outbound();
    run.command(|c, now| c.terminate(EndReason::LoggedOut, now));
    assert_eq!(starts(&run.take_sent()), ["BYE"]);
    assert_eq!(run.ended(), ("logged_out", None));
}

#[test]
fn a_transport_failure_ends_the_call_at_once() {
    let (mut run, _far) = confirmed_outbound();
    run.call.transport_failed();
    run.pump();
    assert!(run.take_sent().is_empty());
    assert_eq!(run.ended(), ("failed", None));
    assert!(run.call.is_done());
}

#[test]
fn commands_that_do_not_fit_the_state_are_refused() {
    let mut run = Run::outgoing();
    let now = run.now;
    use crate::sip::call::CallError::*;
    assert_eq!(run.call.answer(ANSWER.to_vec(), now), Err(WrongState));
    assert_eq!(run.call.reject(486, now), Err(WrongState));
    assert_eq!(run.call.hold(ANSWER.to_vec(), now), Err(WrongState));
    assert_eq!(run.call.send_dtmf("1", now), Err(WrongState));
    assert_eq!(run.call.transfer("sip:x@y", now), Err(WrongState));
    assert_eq!(run.call.accept_offer(ANSWER.to_vec(), now), Err(NoOffer));
    assert!(crate::sip::call::Call::outgoing(
        super::harness::local(Kind::Udp),
        Default::default(),
        "sip:bob@x>\r\nVia: evil",
        vec![],
        now
    )
    .is_err());
}

#[test]
fn the_password_never_shows_in_debug_output() {
    let mut run = Run::outgoing();
    let inv = run.one_sent();
    run.input(&super::harness::respond(
        &inv,
        407,
        "t",
        "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\", qop=\"auth\"\r\n",
        None,
    ));
    let debug = format!("{:?}", run.call);
    assert!(
        debug.contains("Proxy-Authorization"),
        "the state is all there"
    );
    assert!(!debug.contains("secret"), "but not the password");
}
