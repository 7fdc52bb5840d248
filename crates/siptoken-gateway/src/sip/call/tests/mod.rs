//! Unit tests of the call state machine, one module per behaviour (str0m style): each drives a
//! [`super::Call`] on a virtual clock against a scripted far end ([`harness`]).

mod harness;

mod cancel;
mod digest;
mod dtmf;
mod forking;
mod glare;
mod hold;
mod in_dialog;
mod inbound;
mod malformed;
mod outbound;
mod transfer;

use harness::{Far, Run, ANSWER};

/// An outbound call answered by the far end (INVITE, 200, ACK consumed).
fn confirmed_outbound() -> (Run, Far) {
    let mut run = Run::outgoing();
    let invite = run.one_sent();
    let far = Far::callee(&invite);
    run.input(&far.answer(&invite, 200, Some(ANSWER)));
    assert_eq!(harness::starts(&run.take_sent()), ["ACK"]);
    assert_eq!(harness::names(&run.take_events()), ["Answered"]);
    (run, far)
}

/// An inbound call answered by us and acknowledged (INVITE, 100, 180, 200, ACK consumed).
fn confirmed_inbound() -> (Run, Far) {
    let mut far = Far::caller();
    let mut run = Run::incoming(&far);
    let sent = run.take_sent();
    far.learn(&sent[1]);
    run.take_events();
    run.command(|c, now| c.answer(ANSWER.to_vec(), now));
    assert_eq!(harness::starts(&run.take_sent()), ["200"]);
    run.input(&far.ack_latest(None));
    assert_eq!(harness::names(&run.take_events()), ["Answered"]);
    assert!(run.take_sent().is_empty());
    (run, far)
}
