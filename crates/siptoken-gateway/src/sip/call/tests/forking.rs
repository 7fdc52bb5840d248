//! A forking proxy: 2xx from a second fork (ACK and BYE it, keep the first dialog), and 2xx
//! retransmissions arriving after the INVITE transaction ended (ACK again).

use std::time::Duration;

use super::harness::{starts, Far, Run, ANSWER};
use crate::sip::compose;

#[test]
fn a_second_forks_2xx_is_acknowledged_and_hung_up() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    run.take_sent();
    run.take_events();
    let mut other = Far::callee(&inv);
    other.tag = "fork2".into();
    other.contact = "sip:bob@10.0.0.3:5062".into();
    run.input(&other.answer(&inv, 200, Some(ANSWER)));
    let sent = run.take_sent();
    assert_eq!(starts(&sent), ["ACK", "BYE"]);
    for m in &sent {
        assert_eq!(compose::tag_of(m.header("to").unwrap()), Some("fork2"));
        let crate::sip::message::StartLine::Request { uri, .. } = &m.start else {
            unreachable!()
        };
        assert_eq!(uri, "sip:bob@10.0.0.3:5062");
    }
    assert!(run.take_events().is_empty(), "the call is the first fork's");
    assert!(!run.call.is_ended());
    // The first dialog still works.
    run.command(|c, now| c.hangup(now));
    let bye = run.one_sent();
    assert_eq!(compose::tag_of(bye.header("to").unwrap()), Some("callee1"));
}

#[test]
fn a_late_2xx_retransmission_is_acknowledged_again() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    let ack = run.one_sent();
    run.take_events();
    run.advance(Duration::from_secs(40));
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    let again = run.one_sent();
    assert_eq!(again.method(), Some("ACK"));
    assert_eq!(again.top_via_branch(), ack.top_via_branch(), "the same ACK");
    assert!(run.take_events().is_empty());
}

#[test]
fn a_flood_of_forked_2xx_is_acknowledged_with_a_bounded_number_of_byes() {
    let (mut run, inv, far) = Run::calling();
    run.input(&far.answer(&inv, 200, Some(ANSWER)));
    run.take_sent();
    let mut byes = 0;
    for n in 0..50 {
        let mut other = Far::callee(&inv);
        other.tag = format!("fork{n}");
        run.input(&other.answer(&inv, 200, Some(ANSWER)));
        let sent = run.take_sent();
        assert_eq!(sent[0].method(), Some("ACK"));
        byes += sent.iter().filter(|m| m.method() == Some("BYE")).count();
    }
    assert_eq!(byes, 8);
}
