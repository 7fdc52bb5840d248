//! DTMF by SIP INFO (`application/dtmf-relay`): digits go out one INFO at a time, in order; a
//! refusal is reported and drops the rest; received INFOs are decoded.

use super::harness::starts;
use super::{confirmed_inbound, confirmed_outbound};
use crate::sip::call::{CallError, CallEvent};

#[test]
fn digits_go_out_one_info_at_a_time_in_order() {
    let (mut run, far) = confirmed_outbound();
    run.call.send_dtmf("1#", run.now).unwrap();
    run.command(|c, now| c.send_dtmf("D", now));
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let info = run.one_sent();
        assert_eq!(info.method(), Some("INFO"));
        assert_eq!(info.header("content-type"), Some("application/dtmf-relay"));
        bodies.push(String::from_utf8(info.body.clone()).unwrap());
        run.input(&far.answer(&info, 200, None));
    }
    assert_eq!(
        bodies,
        [
            "Signal=1\r\nDuration=160\r\n",
            "Signal=#\r\nDuration=160\r\n",
            "Signal=D\r\nDuration=160\r\n"
        ]
    );
    assert!(run.take_sent().is_empty());
    assert!(run.take_events().is_empty());
}

#[test]
fn a_refused_info_is_reported_and_drops_the_rest() {
    let (mut run, far) = confirmed_outbound();
    run.dtmf_answered(&far, "123", 415);
    run.goes_on_after(CallEvent::DtmfFailed {
        sip_status: Some(415),
    });
    assert!(run.take_sent().is_empty());
}

#[test]
fn info_481_ends_the_call() {
    let (mut run, far) = confirmed_outbound();
    run.dtmf_answered(&far, "1", 481);
    assert!(
        run.take_sent().is_empty(),
        "no BYE into a dialog that does not exist"
    );
    assert_eq!(run.ended(), ("failed", Some(481)));
}

#[test]
fn bad_digits_are_refused() {
    let (mut run, _far) = confirmed_outbound();
    for bad in ["", "1x", &"1".repeat(33)] {
        assert_eq!(
            run.call.send_dtmf(bad, run.now),
            Err(CallError::InvalidDigits)
        );
    }
}

#[test]
fn received_info_is_decoded_or_refused() {
    let (mut run, mut far) = confirmed_inbound();
    run.input(&far.dtmf_info(b"Signal=5\r\nDuration=250\r\n"));
    assert_eq!(run.one_sent().code(), Some(200));
    assert_eq!(
        run.take_events(),
        [CallEvent::DtmfReceived {
            digit: '5',
            duration_ms: Some(250)
        }]
    );
    run.input(&far.request("INFO", "", None, ""));
    assert_eq!(
        run.one_sent().code(),
        Some(200),
        "an empty INFO (keep-alive)"
    );
    run.input(&far.request("INFO", "", Some(b"<xml/>"), "application/media_control+xml"));
    let r = run.one_sent();
    assert_eq!(r.code(), Some(415));
    assert!(r
        .header("accept")
        .unwrap()
        .contains("application/dtmf-relay"));
    assert_eq!(starts(&run.take_sent()), Vec::<String>::new());
}
