//! 491 Request Pending (RFC 3261 §14.1): re-INVITEs crossing. The owner of the Call-ID (the
//! original caller) retries after 2.1–4 s, the other side after 0–2 s, in 10 ms steps.

use std::time::Duration;

use super::harness::{starts, ANSWER, HELD_ANSWER, HOLD, OFFER};
use super::{confirmed_inbound, confirmed_outbound};
use crate::sip::call::{glare_delay, CallEvent, Party};

/// Holds, gets 491, and returns when the retry went out.
fn retry_delay(run: &mut super::Run, far: &super::Far) -> Duration {
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    let re = run.one_sent();
    run.input(&far.answer(&re, 491, None));
    assert_eq!(starts(&run.take_sent()), ["ACK"]);
    assert!(run.take_events().is_empty(), "491 is not a failure");
    let start = run.now;
    loop {
        run.advance(Duration::from_millis(10));
        let sent = run.take_sent();
        if !sent.is_empty() {
            assert_eq!(starts(&sent), ["INVITE"]);
            assert_eq!(sent[0].body, HOLD);
            assert_eq!(sent[0].cseq(), Some((re.cseq().unwrap().0 + 1, "INVITE")));
            run.input(&far.answer(&sent[0], 200, Some(HELD_ANSWER)));
            assert!(run
                .take_events()
                .contains(&CallEvent::Held { by: Party::Local }));
            return run.now - start;
        }
        assert!(run.now - start < Duration::from_secs(5), "no retry");
    }
}

#[test]
fn the_caller_retries_after_2_1_to_4_seconds() {
    let (mut run, far) = confirmed_outbound();
    let d = retry_delay(&mut run, &far);
    assert!(
        (Duration::from_millis(2100)..=Duration::from_millis(4010)).contains(&d),
        "{d:?}"
    );
}

#[test]
fn the_callee_retries_within_2_seconds() {
    let (mut run, far) = confirmed_inbound();
    let d = retry_delay(&mut run, &far);
    assert!(d <= Duration::from_millis(2010), "{d:?}");
}

#[test]
fn delays_are_in_10_ms_steps_within_bounds() {
    for _ in 0..500 {
        let c = glare_delay(true);
        assert!((2100..=4000).contains(&c.as_millis()), "{c:?}");
        assert_eq!(c.as_millis() % 10, 0);
        let o = glare_delay(false);
        assert!(o.as_millis() <= 2000, "{o:?}");
        assert_eq!(o.as_millis() % 10, 0);
    }
}

#[test]
fn crossing_re_invites_each_get_491_and_ours_is_retried() {
    let (mut run, mut far) = confirmed_outbound();
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    let ours = run.one_sent();
    // Theirs arrives while ours is pending: 491, retransmitted until they acknowledge it.
    let theirs = far.reinvite(Some(OFFER));
    run.input(&theirs);
    assert_eq!(run.one_sent().code(), Some(491));
    // Ours gets 491 from them.
    run.input(&far.answer(&ours, 491, None));
    assert_eq!(starts(&run.take_sent()), ["ACK"]);
    run.advance(Duration::from_millis(500));
    assert_eq!(starts(&run.take_sent()), ["491"]);
    let theirs = super::harness::parse(theirs.as_bytes());
    let branch = theirs.top_via_branch().unwrap().to_owned();
    run.input(&far.in_dialog_with("ACK", far.cseq, &branch, "", None, ""));
    // Meanwhile their retry (they are not the owner: sooner) is accepted normally.
    run.input(&far.reinvite(Some(OFFER)));
    assert!(matches!(
        run.take_events()[..],
        [CallEvent::RemoteOffer { hold: false, .. }]
    ));
    run.command(|c, now| c.accept_offer(ANSWER.to_vec(), now));
    assert_eq!(starts(&run.take_sent()), ["100", "200"]);
    run.input(&far.ack_latest(None));
    // Our hold goes out after our own back-off.
    run.advance(Duration::from_secs(4));
    let sent = run.take_sent();
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|m| m.method() == Some("INVITE") && m.top_via_branch() == sent[0].top_via_branch()),
        "one re-INVITE (and its retransmissions)"
    );
    assert_eq!(sent[0].body, HOLD);
}
