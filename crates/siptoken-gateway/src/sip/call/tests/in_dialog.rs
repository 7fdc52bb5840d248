//! Requests inside a dialog: OPTIONS, CSeq order, methods not handled, wrong tags, Require,
//! retransmissions; stray and duplicate responses; `Allow` lists exactly what is handled and no
//! `Supported` is ever sent.

use std::time::Duration;

use super::harness::{respond, Run, ANSWER, HOLD};
use super::{confirmed_inbound, confirmed_outbound};
use crate::sip::incoming::{ACCEPT, ALLOW};

#[test]
fn options_in_the_dialog_is_answered_with_capabilities() {
    let (mut run, mut far) = confirmed_outbound();
    run.input(&far.request("OPTIONS", "", None, ""));
    let ok = run.one_sent();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.header("allow"), Some(ALLOW));
    assert_eq!(ok.header("accept"), Some(ACCEPT));
    assert_eq!(ok.header("supported"), None);
    assert!(!run.call.is_ended());
}

#[test]
fn an_out_of_order_request_gets_500() {
    let (mut run, mut far) = confirmed_inbound();
    run.input(&far.request("OPTIONS", "", None, ""));
    run.take_sent();
    let old = far.cseq - 1;
    let b = far.branch();
    run.input(&far.in_dialog_with("INFO", old, &b, "", None, ""));
    assert_eq!(run.one_sent().code(), Some(500));
    let b = far.branch();
    let same = far.cseq;
    run.input(&far.in_dialog_with("BYE", same, &b, "", None, ""));
    assert_eq!(
        run.one_sent().code(),
        Some(500),
        "an equal CSeq with a new branch too"
    );
    assert!(!run.call.is_ended());
}

#[test]
fn allow_lists_exactly_the_methods_handled() {
    let allowed: Vec<&str> = ALLOW.split(", ").collect();
    for method in [
        "UPDATE",
        "PRACK",
        "SUBSCRIBE",
        "MESSAGE",
        "REFER",
        "PUBLISH",
        "FOO",
    ] {
        let (mut run, mut far) = confirmed_outbound();
        assert!(!allowed.contains(&method));
        run.input(&far.request(method, "", None, ""));
        let r = run.one_sent();
        assert_eq!(r.code(), Some(405), "{method}");
        assert_eq!(r.header("allow"), Some(ALLOW));
    }
    // Every allowed method gets something other than 405 in a dialog.
    for method in allowed {
        let (mut run, mut far) = confirmed_outbound();
        let extra = if method == "NOTIFY" {
            "Event: refer\r\n"
        } else {
            ""
        };
        run.input(&far.request(method, extra, None, ""));
        let codes: Vec<Option<u16>> = run.take_sent().iter().map(|m| m.code()).collect();
        assert!(!codes.contains(&Some(405)), "{method}: {codes:?}");
    }
}

#[test]
fn requests_with_the_wrong_tags_get_481() {
    let (mut run, mut far) = confirmed_outbound();
    let text = far.altered("BYE", "tag=callee1", "tag=other");
    assert_eq!(run.answer_code(&text), Some(481));
    assert!(!run.call.is_ended());
}

#[test]
fn require_of_an_extension_gets_420() {
    let (mut run, mut far) = confirmed_outbound();
    run.input(&far.request(
        "INVITE",
        "Require: timer\r\n",
        Some(HOLD),
        "application/sdp",
    ));
    let r = run.one_sent();
    assert_eq!(r.code(), Some(420));
    assert_eq!(r.header("unsupported"), Some("timer"));
    assert!(run.take_events().is_empty());
}

#[test]
fn stray_and_duplicate_responses_are_ignored() {
    let (mut run, far) = confirmed_outbound();
    // A response to nothing we sent.
    let fake = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5070;branch=z9hG4bK-x-y\r\n";
    let text = format!(
        "{fake}From: {};tag={}\r\nTo: <sip:bob@example.org>;tag=callee1\r\nCall-ID: {}\r\n\
         CSeq: 9 INFO\r\nContent-Length: 0\r\n\r\n",
        far.our_party,
        far.our_tag.as_deref().unwrap(),
        far.call_id
    );
    run.input(&text);
    assert!(run.take_sent().is_empty());
    assert!(run.take_events().is_empty());
    // The BYE's 200 twice: the second is absorbed.
    run.command(|c, now| c.hangup(now));
    let bye = run.one_sent();
    run.take_events();
    run.input(&far.answer(&bye, 200, None));
    run.input(&far.answer(&bye, 200, None));
    run.input(&far.answer(&bye, 100, None));
    assert!(run.take_sent().is_empty());
    assert!(run.take_events().is_empty());
}

#[test]
fn no_message_ever_says_supported() {
    let (mut run, mut far) = confirmed_inbound();
    run.input(&far.request("OPTIONS", "", None, ""));
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    run.call.transfer("sip:1003@example.org", run.now).unwrap();
    run.call.send_dtmf("1", run.now).unwrap();
    run.command(|c, now| c.hangup(now));
    run.advance(Duration::from_secs(40));
    let sent = run.take_sent();
    assert!(sent.len() > 5);
    for m in sent {
        assert_eq!(m.header("supported"), None, "{:?}", m.start);
    }
    let (mut run, inv, far) = Run::calling();
    run.input(&respond(&inv, 180, "t", "", None));
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    for m in run.take_sent() {
        assert_eq!(m.header("supported"), None);
    }
}

#[test]
fn a_request_flood_does_not_grow_the_call_without_bound() {
    let (mut run, mut far) = confirmed_outbound();
    for _ in 0..200 {
        run.input(&far.request("OPTIONS", "", None, ""));
        assert_eq!(run.one_sent().code(), Some(200), "still answered");
    }
    let debug = format!("{:?}", run.call);
    assert!(
        debug.matches("NonInviteServer").count() <= 32,
        "at most 32 server transactions kept"
    );
}
