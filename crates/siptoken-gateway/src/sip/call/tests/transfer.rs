//! Blind transfer (RFC 3515): REFER, 202, the NOTIFYs with `message/sipfrag` followed to the
//! end; success ends the call as `transferred` (BYE sent), failures are reported and the call
//! goes on.

use std::time::Duration;

use super::confirmed_outbound;
use super::harness::{starts, Far, Run, ROUTE};
use crate::sip::call::{CallError, CallEvent};
use crate::sip::message::Message;

fn notify(far: &mut Far, frag: &str, state: &str) -> String {
    far.request(
        "NOTIFY",
        &format!("Event: refer\r\nSubscription-State: {state}\r\n"),
        Some(frag.as_bytes()),
        "message/sipfrag;version=2.0",
    )
}

/// A confirmed outbound call and the REFER it sent to transfer the far end to 1003.
fn referring() -> (Run, Far, Message) {
    let (mut run, far) = confirmed_outbound();
    run.command(|c, now| c.transfer("sip:1003@example.org", now));
    let refer = run.one_sent();
    (run, far, refer)
}

/// [`referring`] with the REFER accepted (202; `Transferring` consumed).
fn transferring() -> (Run, Far) {
    let (mut run, far, refer) = referring();
    run.input(&far.answer(&refer, 202, None));
    run.take_events();
    (run, far)
}

#[test]
fn a_successful_transfer_ends_the_call_as_transferred() {
    let (mut run, mut far, refer) = referring();
    assert_eq!(refer.method(), Some("REFER"));
    assert_eq!(refer.header("refer-to"), Some("<sip:1003@example.org>"));
    assert_eq!(refer.header("referred-by"), Some("<sip:op@example.org>"));
    assert_eq!(
        refer.header("contact"),
        Some(format!("<sip:st-{ROUTE}@10.0.0.1:5070>").as_str())
    );
    assert_eq!(refer.cseq(), Some((2, "REFER")));
    run.input(&far.answer(&refer, 202, None));
    assert_eq!(run.take_events(), [CallEvent::Transferring]);
    run.input(&notify(
        &mut far,
        "SIP/2.0 100 Trying\r\n",
        "active;expires=60",
    ));
    assert_eq!(starts(&run.take_sent()), ["200"]);
    assert!(run.take_events().is_empty());
    run.input(&notify(
        &mut far,
        "SIP/2.0 180 Ringing\r\n",
        "active;expires=60",
    ));
    run.take_sent();
    run.input(&notify(
        &mut far,
        "SIP/2.0 200 OK\r\n",
        "terminated;reason=noresource",
    ));
    assert_eq!(starts(&run.take_sent()), ["200", "BYE"]);
    assert_eq!(run.ended(), ("transferred", None));
}

#[test]
fn a_notify_before_the_202_is_accepted_and_announced_once() {
    let (mut run, mut far, refer) = referring();
    run.input(&notify(&mut far, "SIP/2.0 100 Trying\r\n", "active"));
    assert_eq!(starts(&run.take_sent()), ["200"]);
    assert_eq!(run.take_events(), [CallEvent::Transferring]);
    run.input(&far.answer(&refer, 202, None));
    assert!(run.take_events().is_empty());
}

#[test]
fn a_refused_refer_is_reported_and_the_call_goes_on() {
    let (mut run, far, refer) = referring();
    run.input(&far.answer(&refer, 603, None));
    run.goes_on_after(CallEvent::TransferFailed {
        sip_status: Some(603),
    });
    run.call.transfer("sip:1004@example.org", run.now).unwrap();
}

#[test]
fn a_failed_transfer_target_is_reported_from_the_sipfrag() {
    let (mut run, mut far) = transferring();
    run.input(&notify(&mut far, "SIP/2.0 486 Busy Here\r\n", "terminated"));
    assert_eq!(starts(&run.take_sent()), ["200"]);
    run.goes_on_after(CallEvent::TransferFailed {
        sip_status: Some(486),
    });
}

#[test]
fn a_subscription_ended_without_a_final_status_is_a_failure() {
    let (mut run, mut far) = transferring();
    run.input(&notify(
        &mut far,
        "SIP/2.0 100 Trying\r\n",
        "terminated;reason=timeout",
    ));
    assert_eq!(
        run.take_events(),
        [CallEvent::TransferFailed { sip_status: None }]
    );
}

#[test]
fn the_transferee_hanging_up_before_the_final_notify() {
    // The final NOTIFY follows the BYE: transferred.
    let (mut run, mut far) = transferring();
    run.input(&far.request("BYE", "", None, ""));
    assert_eq!(starts(&run.take_sent()), ["200"]);
    assert!(
        run.take_events().is_empty(),
        "not ended yet: the NOTIFY may follow"
    );
    run.input(&notify(&mut far, "SIP/2.0 200 OK\r\n", "terminated"));
    assert_eq!(
        starts(&run.take_sent()),
        ["200"],
        "no BYE: the dialog is gone"
    );
    assert_eq!(run.ended(), ("transferred", None));

    // No NOTIFY follows: a remote hangup after T4.
    let (mut run, mut far) = transferring();
    run.input(&far.request("BYE", "", None, ""));
    run.advance(Duration::from_secs(5));
    assert_eq!(run.ended(), ("remote_hangup", None));
}

#[test]
fn no_final_notify_in_time_is_a_failure() {
    let (mut run, _far) = transferring();
    run.advance(Duration::from_secs(60 + 32));
    run.goes_on_after(CallEvent::TransferFailed { sip_status: None });
}

#[test]
fn notify_rules() {
    let (mut run, mut far) = confirmed_outbound();
    run.input(&notify(&mut far, "SIP/2.0 200 OK\r\n", "active"));
    assert_eq!(
        run.one_sent().code(),
        Some(481),
        "no REFER: no subscription"
    );
    run.command(|c, now| c.transfer("sip:1003@example.org", now));
    run.take_sent();
    let other = far.request(
        "NOTIFY",
        "Event: presence\r\nSubscription-State: active\r\n",
        None,
        "",
    );
    run.input(&other);
    assert_eq!(run.one_sent().code(), Some(489));
    assert_eq!(
        run.call.transfer("sip:1004@example.org", run.now),
        Err(CallError::TransferInProgress)
    );
    assert_eq!(
        run.call.transfer("sip:x y@z", run.now),
        Err(CallError::InvalidTarget)
    );
}
