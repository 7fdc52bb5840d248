//! Taking a call: the incoming INVITE, 100 and 180, answering (200 retransmitted until the ACK),
//! rejecting, the ring timeout, a delayed offer, retransmitted INVITEs.

use std::time::Duration;

use super::confirmed_inbound;
use super::harness::{self, names, starts, Far, Run, ANSWER, OFFER, ROUTE};
use crate::sip::call::{Call, CallEvent, CallSettings};
use crate::sip::compose;
use crate::sip::incoming::ALLOW;
use crate::sip::message::Message;
use crate::sip::transport::Kind;

#[test]
fn an_incoming_invite_is_announced_with_trying_and_ringing() {
    let far = Far::caller();
    let mut run = Run::incoming(&far);
    assert_eq!(
        run.take_events(),
        [CallEvent::Incoming {
            from: "sip:+15551234@example.org".into(),
            display_name: Some("Jane Doe".into()),
            offer: Some(OFFER.to_vec()),
        }]
    );
    let sent = run.take_sent();
    assert_eq!(starts(&sent), ["100", "180"]);
    let (trying, ringing) = (&sent[0], &sent[1]);
    assert_eq!(
        trying.header("to"),
        Some("<sip:op@example.org>"),
        "no tag on 100"
    );
    assert_eq!(trying.list("via").len(), 2);
    let tag = compose::tag_of(ringing.header("to").unwrap()).unwrap();
    assert!(!tag.is_empty());
    assert_eq!(
        ringing.header("record-route"),
        Some("<sip:proxy.example.org;lr>")
    );
    assert_eq!(
        ringing.header("contact"),
        Some(format!("<sip:st-{ROUTE}@10.0.0.1:5070>").as_str())
    );
    assert_eq!(ringing.header("allow"), Some(ALLOW));
    assert_eq!(ringing.top_via_branch(), Some("z9hG4bKproxy1"));
    assert!(run.call.matches(&harness::parse(far.cancel().as_bytes())));
}

#[test]
fn a_caller_without_display_name_has_none() {
    let mut far = Far::caller();
    far.party = "<sip:+15551234@example.org>".into();
    let mut run = Run::incoming(&far);
    let e = run.take_events();
    assert!(matches!(
        &e[0],
        CallEvent::Incoming {
            display_name: None,
            ..
        }
    ));
}

#[test]
fn the_answer_is_retransmitted_until_the_ack() {
    let (mut run, mut far) = Run::ringing_in();
    run.command(|c, now| c.answer(ANSWER.to_vec(), now));
    let ok = run.one_sent();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.body, ANSWER);
    assert_eq!(ok.header("content-type"), Some("application/sdp"));
    assert_eq!(
        ok.header("record-route"),
        Some("<sip:proxy.example.org;lr>")
    );
    assert!(ok.header("contact").is_some());
    assert_eq!(
        compose::tag_of(ok.header("to").unwrap()),
        far.our_tag.as_deref(),
        "the same tag as the 180"
    );
    run.advance(Duration::from_millis(3600));
    assert_eq!(
        starts(&run.take_sent()),
        ["200", "200", "200"],
        "at 0.5, 1.5, 3.5 s"
    );
    assert!(run.take_events().is_empty(), "answered only on the ACK");
    // A retransmitted INVITE is absorbed (the core retransmits the 2xx on its own).
    run.input(&far.invite(Some(OFFER)));
    assert!(run.take_sent().is_empty());
    run.input(&far.ack_latest(None));
    assert_eq!(run.take_events(), [CallEvent::Answered { sdp: None }]);
    run.advance(Duration::from_secs(40));
    assert!(
        run.take_sent().is_empty(),
        "no retransmission after the ACK"
    );
    assert!(!run.call.is_ended());
}

#[test]
fn no_ack_within_64_t1_hangs_up() {
    let (mut run, _far) = Run::ringing_in();
    run.command(|c, now| c.answer(ANSWER.to_vec(), now));
    run.take_sent();
    run.advance(Duration::from_secs(31));
    assert_eq!(
        run.take_sent().len(),
        9,
        "0.5, 1.5, 3.5, 7.5, then every 4 s"
    );
    run.advance(Duration::from_secs(1));
    assert_eq!(
        starts(&run.take_sent()),
        ["200", "BYE"],
        "the last at 31.5 s, BYE at 32 s"
    );
    assert_eq!(run.ended(), ("failed", None));
}

#[test]
fn reject_sends_the_status_until_acknowledged() {
    for status in [486, 603] {
        let (mut run, far) = Run::ringing_in();
        run.command(|c, now| c.reject(status, now));
        let r = run.one_sent();
        assert_eq!(r.code(), Some(status));
        assert_eq!(
            compose::tag_of(r.header("to").unwrap()),
            far.our_tag.as_deref()
        );
        assert_eq!(run.ended(), ("hangup", Some(status)));
        run.advance(Duration::from_millis(600));
        assert_eq!(starts(&run.take_sent()), [status.to_string()], "Timer G");
        // The caller's ACK (same branch as the INVITE: part of its transaction).
        let ack = far.in_dialog_with("ACK", far.cseq, "z9hG4bKproxy1", "", None, "");
        run.input(&ack);
        run.advance(Duration::from_secs(10));
        assert!(run.take_sent().is_empty());
        assert!(run.call.is_done());
    }
    let far = Far::caller();
    let mut run = Run::incoming(&far);
    assert_eq!(
        run.call.reject(200, run.now),
        Err(crate::sip::call::CallError::InvalidStatus)
    );
}

#[test]
fn hangup_while_ringing_is_busy_here() {
    let (mut run, _far) = Run::ringing_in();
    run.command(|c, now| c.hangup(now));
    assert_eq!(run.one_sent().code(), Some(486));
    assert_eq!(run.ended(), ("hangup", None));
}

#[test]
fn ringing_too_long_is_480_no_answer() {
    let (mut run, _far) = Run::ringing_in();
    run.advance(Duration::from_secs(60));
    assert_eq!(run.one_sent().code(), Some(480));
    assert_eq!(run.ended(), ("no_answer", None));
    assert!(run.call.answer(ANSWER.to_vec(), run.now).is_err());
}

#[test]
fn a_retransmitted_invite_gets_the_last_provisional_again() {
    let (mut run, far) = Run::ringing_in();
    run.input(&far.invite(Some(OFFER)));
    assert_eq!(starts(&run.take_sent()), ["180"]);
    assert!(run.take_events().is_empty(), "not a second call");
}

#[test]
fn the_same_invite_by_another_branch_is_a_merged_request() {
    let far = Far::caller();
    let mut run = Run::incoming(&far);
    run.take_sent();
    let forked = far
        .invite(Some(OFFER))
        .replace("z9hG4bKproxy1", "z9hG4bKproxy2");
    run.input(&forked);
    assert_eq!(run.one_sent().code(), Some(482));
    run.advance(std::time::Duration::from_millis(600));
    assert_eq!(
        starts(&run.take_sent()),
        ["482"],
        "an INVITE failure waits for its ACK"
    );
}

#[test]
fn an_invite_without_offer_is_answered_with_one_and_the_ack_answers() {
    let mut far = Far::caller();
    let mut run = Run::incoming_with(&far, Kind::Udp, None);
    far.learn(&run.take_sent()[1]);
    assert!(matches!(
        &run.take_events()[0],
        CallEvent::Incoming { offer: None, .. }
    ));
    run.command(|c, now| c.answer(OFFER.to_vec(), now));
    assert_eq!(run.one_sent().body, OFFER);
    run.input(&far.ack_latest(Some(ANSWER)));
    assert_eq!(
        run.take_events(),
        [CallEvent::Answered {
            sdp: Some(ANSWER.to_vec())
        }]
    );
}

#[test]
fn an_ack_missing_the_answer_to_our_offer_hangs_up() {
    let (mut run, mut far) = Run::ringing_in_with(Kind::Udp, None);
    run.command(|c, now| c.answer(OFFER.to_vec(), now));
    run.take_sent();
    run.input(&far.ack_latest(None));
    assert_eq!(starts(&run.take_sent()), ["BYE"]);
    assert_eq!(run.ended(), ("failed", None));
}

#[test]
fn hangup_between_200_and_ack_waits_for_the_ack_to_bye() {
    let (mut run, mut far) = Run::ringing_in();
    run.command(|c, now| c.answer(ANSWER.to_vec(), now));
    run.take_sent();
    run.command(|c, now| c.hangup(now));
    assert_eq!(run.ended(), ("hangup", None));
    assert!(
        run.take_sent().is_empty(),
        "no BYE before the ACK (RFC 3261 §15)"
    );
    run.input(&far.ack_latest(None));
    let bye = run.one_sent();
    assert_eq!(bye.method(), Some("BYE"));
    assert_eq!(bye.cseq(), Some((1, "BYE")));
    let crate::sip::message::StartLine::Request { uri, .. } = &bye.start else {
        unreachable!()
    };
    assert_eq!(uri, "sip:+15551234@10.0.0.8:5060", "the caller's Contact");
    assert_eq!(bye.header("route"), Some("<sip:proxy.example.org;lr>"));
    assert!(run.take_events().is_empty());
}

#[test]
fn remote_bye_after_answer_is_remote_hangup() {
    let (mut run, mut far) = confirmed_inbound();
    run.input(&far.request("BYE", "", None, ""));
    assert_eq!(run.one_sent().code(), Some(200));
    assert_eq!(run.ended(), ("remote_hangup", None));
    run.finish(Duration::from_secs(40));
}

/// The response [`Call::incoming`] refuses the INVITE `text` with.
fn refused(text: &str) -> Message {
    let invite = harness::parse(text.as_bytes());
    let err = Call::incoming(
        harness::local(Kind::Udp),
        CallSettings::default(),
        &invite,
        std::time::Instant::now(),
    )
    .unwrap_err();
    harness::parse(&err)
}

#[test]
fn a_body_other_than_sdp_is_refused_with_415() {
    let far = Far::caller();
    let text = far
        .invite(Some(b"hello"))
        .replace("application/sdp", "text/plain");
    let r = refused(&text);
    assert_eq!(r.code(), Some(415));
    assert_eq!(r.header("accept"), Some("application/sdp"));
}

#[test]
fn an_invite_without_contact_or_from_tag_is_refused_with_400() {
    let far = Far::caller();
    for text in [
        far.invite(Some(OFFER))
            .replace(&format!("Contact: <{}>\r\n", far.contact), ""),
        far.invite(Some(OFFER)).replace(";tag=caller1", ""),
    ] {
        assert_eq!(refused(&text).code(), Some(400));
    }
}

#[test]
fn events_after_answer_are_in_order() {
    let (mut run, _far) = confirmed_inbound();
    run.command(|c, now| c.hangup(now));
    assert_eq!(names(&run.take_events()), ["Ended(hangup)"]);
    assert_eq!(starts(&run.take_sent()), ["BYE"]);
}

#[test]
fn over_tcp_the_answer_is_sent_once_and_the_ack_still_awaited() {
    let (mut run, mut far) = Run::ringing_in_with(Kind::Tcp, Some(OFFER));
    run.command(|c, now| c.answer(ANSWER.to_vec(), now));
    assert_eq!(starts(&run.take_sent()), ["200"]);
    run.advance(Duration::from_secs(31));
    assert!(
        run.take_sent().is_empty(),
        "no retransmission over a stream"
    );
    run.input(&far.ack_latest(None));
    assert_eq!(run.take_events(), [CallEvent::Answered { sdp: None }]);

    // Without the ACK: nothing resent, BYE after 64·T1.
    let mut far = Far::caller();
    let mut run = Run::incoming_with(&far, Kind::Tcp, Some(OFFER));
    far.learn(&run.take_sent()[1]);
    run.command(|c, now| c.answer(ANSWER.to_vec(), now));
    run.take_sent();
    run.advance(Duration::from_secs(32));
    assert_eq!(starts(&run.take_sent()), ["BYE"]);
}
