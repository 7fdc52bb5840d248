//! Hold and resume in both directions: our re-INVITEs (sendonly/sendrecv offers from the media
//! layer), theirs (RemoteOffer, answered by the media layer), refusals, a re-INVITE without SDP,
//! and the rules on concurrent INVITE transactions (RFC 3261 §14).

use std::time::Duration;

use super::harness::{starts, Run, ANSWER, HELD_ANSWER, HOLD, OFFER};
use super::{confirmed_inbound, confirmed_outbound};
use crate::sip::call::{CallError, CallEvent, Party};
use crate::sip::message::StartLine;

#[test]
fn local_hold_and_resume_by_re_invite() {
    let (mut run, far) = confirmed_outbound();
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    let re = run.one_sent();
    assert_eq!(re.method(), Some("INVITE"));
    let StartLine::Request { uri, .. } = &re.start else {
        unreachable!()
    };
    assert_eq!(uri, "sip:bob@10.0.0.2:5062");
    assert_eq!(re.cseq(), Some((2, "INVITE")));
    assert_eq!(re.header("to"), Some("<sip:bob@example.org>;tag=callee1"));
    assert_eq!(re.header("route"), Some("<sip:proxy.example.org;lr>"));
    assert!(re.header("contact").is_some());
    assert_eq!(re.body, HOLD);
    run.input(&far.answer(&re, 200, Some(HELD_ANSWER)));
    let ack = run.one_sent();
    assert_eq!(ack.cseq(), Some((2, "ACK")));
    assert_eq!(
        run.take_events(),
        [
            CallEvent::RemoteAnswer {
                sdp: HELD_ANSWER.to_vec()
            },
            CallEvent::Held { by: Party::Local }
        ]
    );
    run.command(|c, now| c.unhold(OFFER.to_vec(), now));
    let re2 = run.one_sent();
    assert_eq!(re2.cseq(), Some((3, "INVITE")));
    run.input(&far.answer(&re2, 200, Some(ANSWER)));
    run.take_sent();
    assert_eq!(
        run.take_events(),
        [
            CallEvent::RemoteAnswer {
                sdp: ANSWER.to_vec()
            },
            CallEvent::Resumed { by: Party::Local }
        ]
    );
}

#[test]
fn hold_requests_wait_for_the_re_invite_in_progress() {
    let (mut run, far) = confirmed_outbound();
    run.call.hold(HOLD.to_vec(), run.now).unwrap();
    run.command(|c, now| c.unhold(OFFER.to_vec(), now));
    let re = run.one_sent();
    assert_eq!(re.body, HOLD, "one INVITE transaction at a time");
    run.input(&far.answer(&re, 200, Some(HELD_ANSWER)));
    let sent = run.take_sent();
    assert_eq!(starts(&sent), ["ACK", "INVITE"]);
    assert_eq!(sent[1].body, OFFER);
}

#[test]
fn a_refused_re_invite_leaves_the_session_as_it_was() {
    let (mut run, far) = confirmed_outbound();
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    let re = run.one_sent();
    run.input(&far.answer(&re, 488, None));
    assert_eq!(starts(&run.take_sent()), ["ACK"]);
    run.goes_on_after(CallEvent::ReinviteFailed {
        sip_status: Some(488),
    });
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    assert_eq!(run.one_sent().cseq(), Some((3, "INVITE")));
}

#[test]
fn re_invite_481_ends_the_call_408_with_a_bye() {
    for (code, after) in [(481, vec!["ACK"]), (408, vec!["ACK", "BYE"])] {
        let (mut run, far) = confirmed_outbound();
        run.command(|c, now| c.hold(HOLD.to_vec(), now));
        let re = run.one_sent();
        run.input(&far.answer(&re, code, None));
        assert_eq!(starts(&run.take_sent()), after, "{code}");
        assert_eq!(run.ended(), ("failed", Some(code)));
    }
}

#[test]
fn a_re_invite_without_any_answer_ends_the_call() {
    let (mut run, _far) = confirmed_outbound();
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    run.take_sent();
    run.advance(Duration::from_secs(32));
    assert_eq!(
        starts(&run.take_sent()).last().map(String::as_str),
        Some("BYE")
    );
    assert_eq!(run.ended(), ("failed", None));
}

#[test]
fn remote_hold_and_resume() {
    let (mut run, mut far) = confirmed_inbound();
    let held = far.reinvite(Some(HOLD));
    run.input(&held);
    assert_eq!(starts(&run.take_sent()), ["100"]);
    assert_eq!(
        run.take_events(),
        [CallEvent::RemoteOffer {
            sdp: HOLD.to_vec(),
            hold: true
        }]
    );
    run.command(|c, now| c.accept_offer(HELD_ANSWER.to_vec(), now));
    let ok = run.one_sent();
    assert_eq!((ok.code(), ok.body.as_slice()), (Some(200), HELD_ANSWER));
    assert!(ok.header("contact").is_some());
    assert_eq!(run.take_events(), [CallEvent::Held { by: Party::Remote }]);
    assert_eq!(
        run.call.accept_offer(ANSWER.to_vec(), run.now),
        Err(CallError::NoOffer)
    );
    run.advance(Duration::from_millis(600));
    assert_eq!(
        starts(&run.take_sent()),
        ["200"],
        "retransmitted until the ACK"
    );
    run.input(&far.ack_latest(None));
    run.advance(Duration::from_secs(5));
    assert!(run.take_sent().is_empty());
    // Resume.
    run.input(&far.reinvite(Some(OFFER)));
    run.take_sent();
    assert_eq!(
        run.take_events(),
        [CallEvent::RemoteOffer {
            sdp: OFFER.to_vec(),
            hold: false
        }]
    );
    run.command(|c, now| c.accept_offer(ANSWER.to_vec(), now));
    assert_eq!(
        run.take_events(),
        [CallEvent::Resumed { by: Party::Remote }]
    );
}

#[test]
fn a_refused_remote_offer_changes_nothing() {
    let (mut run, mut far) = confirmed_inbound();
    run.reinvited(&mut far, HOLD);
    run.command(|c, now| c.reject_offer(488, now));
    assert_eq!(run.one_sent().code(), Some(488));
    assert!(run.take_events().is_empty());
    assert_eq!(run.call.reject_offer(488, run.now), Err(CallError::NoOffer));
}

#[test]
fn a_re_invite_without_sdp_gets_our_offer_and_the_ack_answers() {
    let (mut run, mut far) = confirmed_inbound();
    run.input(&far.reinvite(None));
    let ok = run.one_sent();
    assert_eq!(ok.code(), Some(200));
    assert_eq!(ok.body, ANSWER, "our current SDP, offered again");
    run.input(&far.ack_latest(Some(OFFER)));
    assert_eq!(
        run.take_events(),
        [CallEvent::RemoteAnswer {
            sdp: OFFER.to_vec()
        }]
    );
}

#[test]
fn their_re_invite_while_ours_is_pending_gets_491() {
    let (mut run, mut far) = confirmed_outbound();
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    run.take_sent();
    run.input(&far.reinvite(Some(OFFER)));
    assert_eq!(run.one_sent().code(), Some(491));
    assert!(run.take_events().is_empty());
}

#[test]
fn a_second_re_invite_while_one_is_unanswered_gets_500_with_retry_after() {
    let (mut run, mut far) = confirmed_inbound();
    run.reinvited(&mut far, HOLD);
    run.input(&far.reinvite(Some(OFFER)));
    let r = run.one_sent();
    assert_eq!(r.code(), Some(500));
    let after: u32 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(after <= 10);
}

#[test]
fn our_hold_waits_for_their_re_invite_to_finish() {
    let (mut run, mut far) = confirmed_inbound();
    run.reinvited(&mut far, OFFER);
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    assert!(
        run.take_sent().is_empty(),
        "their INVITE transaction is in progress"
    );
    run.command(|c, now| c.accept_offer(ANSWER.to_vec(), now));
    assert_eq!(starts(&run.take_sent()), ["200"]);
    run.input(&far.ack_latest(None));
    let re = run.one_sent();
    assert_eq!((re.method(), re.body.as_slice()), (Some("INVITE"), HOLD));
}

#[test]
fn hold_before_the_answer_is_refused() {
    let mut run = Run::outgoing();
    assert_eq!(
        run.call.hold(HOLD.to_vec(), run.now),
        Err(CallError::WrongState)
    );
}

#[test]
fn a_re_invite_with_a_body_other_than_sdp_gets_415() {
    let (mut run, mut far) = confirmed_inbound();
    run.input(&far.request("INVITE", "", Some(b"x"), "text/plain"));
    assert_eq!(run.one_sent().code(), Some(415));
}

#[test]
fn bye_while_their_offer_waits_answers_it_487() {
    let (mut run, mut far) = confirmed_inbound();
    run.reinvited(&mut far, HOLD);
    run.input(&far.request("BYE", "", None, ""));
    assert_eq!(run.sorted_codes(), [200, 487]);
    assert_eq!(run.ended(), ("remote_hangup", None));
}

#[test]
fn a_re_invite_flood_is_refused_beyond_ten_per_ten_seconds() {
    let (mut run, mut far) = confirmed_inbound();
    let mut taken = 0;
    let mut refused = Vec::new();
    // Every re-INVITE answered and acknowledged at once: nothing else would refuse them.
    for i in 0..30 {
        let sdp = if i % 2 == 0 { HOLD } else { OFFER };
        run.input(&far.request("INVITE", "", Some(sdp), "application/sdp"));
        let offered = run
            .take_events()
            .iter()
            .any(|e| matches!(e, CallEvent::RemoteOffer { .. }));
        if offered {
            taken += 1;
            let answer = if i % 2 == 0 { HELD_ANSWER } else { ANSWER };
            run.call.accept_offer(answer.to_vec(), run.now).unwrap();
            run.pump();
            run.take_events();
            let cseq = far.cseq;
            run.input(&far.ack(cseq, None));
            run.take_sent();
        } else {
            // (Earlier refusals may be retransmitted alongside: those are not ACKed here.)
            let cseq = far.cseq;
            let sent = run.take_sent();
            let r = sent
                .iter()
                .find(|m| m.cseq().is_some_and(|c| c.0 == cseq))
                .expect("an answer to this re-INVITE");
            assert_eq!(r.code(), Some(500));
            refused.push(r.header("retry-after").unwrap().parse::<u64>().unwrap());
        }
        run.advance(Duration::from_millis(100));
    }
    assert_eq!(taken, 10, "at most ten within ten seconds");
    assert_eq!(refused.len(), 20);
    assert!(refused.iter().all(|s| (1..=10).contains(s)), "{refused:?}");
    // Once the window has passed, re-INVITEs are taken again.
    run.advance(Duration::from_secs(10));
    run.take_sent();
    run.input(&far.request("INVITE", "", Some(OFFER), "application/sdp"));
    assert!(run
        .take_events()
        .iter()
        .any(|e| matches!(e, CallEvent::RemoteOffer { .. })));
}
