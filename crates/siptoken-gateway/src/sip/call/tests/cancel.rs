//! CANCEL both ways, and its races: hanging up before any provisional response, the 200 of the
//! INVITE crossing our CANCEL (ACK then BYE), a CANCEL that never gets the INVITE ended, the
//! caller cancelling, a CANCEL after the answer.

use std::time::Duration;

use super::confirmed_inbound;
use super::harness::{respond, starts, Run, ANSWER, OFFER};

#[test]
fn hangup_before_any_provisional_cancels_when_one_arrives() {
    let (mut run, inv, far) = Run::calling();
    run.command(|c, now| c.hangup(now));
    assert_eq!(run.ended(), ("hangup", None), "the client learns at once");
    assert!(
        run.take_sent().is_empty(),
        "RFC 3261 §9.1: no CANCEL before a provisional"
    );
    run.input(&far.answer(&inv, 100, None));
    let cancel = run.one_sent();
    assert_eq!(cancel.method(), Some("CANCEL"));
    assert_eq!(cancel.top_via_branch(), inv.top_via_branch());
    assert_eq!(cancel.cseq(), Some((1, "CANCEL")));
    assert_eq!(cancel.header("to"), inv.header("to"));
    run.input(&respond(&cancel, 200, "callee1", "", None));
    run.only_acked(&far.answer(&inv, 487, None));
}

#[test]
fn hangup_while_ringing_cancels_at_once() {
    let (mut run, _inv, _far) = Run::ringing_out();
    run.command(|c, now| c.hangup(now));
    assert_eq!(starts(&run.take_sent()), ["CANCEL"]);
    assert_eq!(run.ended(), ("hangup", None));
    run.advance(Duration::from_millis(600));
    assert_eq!(
        starts(&run.take_sent()),
        ["CANCEL"],
        "CANCEL retransmitted over UDP"
    );
}

#[test]
fn a_200_crossing_the_cancel_is_acknowledged_then_hung_up() {
    let (mut run, inv, far) = Run::ringing_out();
    run.command(|c, now| c.hangup(now));
    let cancel = run.one_sent();
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    let sent = run.take_sent();
    assert_eq!(starts(&sent), ["ACK", "BYE"], "ACK first, then BYE");
    assert_eq!(
        sent[1].header("to"),
        Some("<sip:bob@example.org>;tag=callee1")
    );
    assert_eq!(run.ended(), ("hangup", None));
    // The CANCEL's own answer arrives late: nothing happens.
    run.input(&respond(&cancel, 200, "callee1", "", None));
    assert!(run.take_sent().is_empty());
    // The 200 retransmitted: ACK again, no second BYE.
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    assert_eq!(starts(&run.take_sent()), ["ACK"]);
    let bye = &sent[1];
    run.input(&far.answer(bye, 200, None));
    run.finish(Duration::from_secs(40));
}

#[test]
fn a_cancel_never_ending_the_invite_is_given_up() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 180, None));
    run.command(|c, now| c.hangup(now));
    let cancel = run.one_sent();
    run.input(&respond(&cancel, 200, "callee1", "", None));
    run.advance(Duration::from_secs(31));
    assert!(!run.call.is_done());
    run.finish(Duration::from_secs(2));
    assert!(run.elapsed() <= Duration::from_secs(33));
}

#[test]
fn the_caller_cancelling_ends_the_call_as_cancelled() {
    let (mut run, far) = Run::ringing_in();
    run.input(&far.cancel());
    let sent = run.take_sent();
    let mut codes: Vec<(u16, &str)> = sent
        .iter()
        .map(|m| (m.code().unwrap(), m.cseq().unwrap().1))
        .collect();
    codes.sort();
    assert_eq!(codes, [(200, "CANCEL"), (487, "INVITE")]);
    assert_eq!(run.ended(), ("cancelled", None));
    // A retransmitted CANCEL gets its 200 again; the 487 is retransmitted until the ACK.
    run.input(&far.cancel());
    assert_eq!(starts(&run.take_sent()), ["200"]);
    run.advance(Duration::from_millis(600));
    assert_eq!(starts(&run.take_sent()), ["487"]);
    run.input(&far.in_dialog_with("ACK", far.cseq, "z9hG4bKproxy1", "", None, ""));
    run.finish(Duration::from_secs(40));
    assert!(run.call.answer(OFFER.to_vec(), run.now).is_err());
}

#[test]
fn a_bye_on_the_early_dialog_is_a_cancel_too() {
    let (mut run, mut far) = Run::ringing_in();
    run.input(&far.request("BYE", "", None, ""));
    assert_eq!(run.sorted_codes(), [200, 487]);
    assert_eq!(run.ended(), ("cancelled", None));
}

#[test]
fn a_cancel_after_the_answer_changes_nothing() {
    let (mut run, far) = confirmed_inbound();
    run.input(&far.cancel());
    let ok = run.one_sent();
    assert_eq!(
        (ok.code(), ok.cseq()),
        (Some(200), Some((far.cseq, "CANCEL")))
    );
    assert!(run.take_events().is_empty());
    assert!(!run.call.is_ended());
}

#[test]
fn a_cancel_for_no_transaction_is_481() {
    let (mut run, far) = confirmed_inbound();
    let other = far.cancel().replace("z9hG4bKproxy1", "z9hG4bKelse");
    run.input(&other);
    assert_eq!(run.one_sent().code(), Some(481));
}
