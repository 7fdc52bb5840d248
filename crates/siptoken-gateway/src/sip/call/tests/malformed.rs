//! Broken input never panics and gets 400 when a response can be built: requests with a CSeq
//! that does not match the method or no Via branch, control characters, garbage mutations of
//! every in-dialog request (property test: whatever the call sends back must parse).

use proptest::prelude::*;

use super::harness::{parse, HOLD};
use super::{confirmed_inbound, confirmed_outbound};
use crate::sip::message;

/// Requests broken by replacing a part: a CSeq not matching the method, no Via branch.
const BAD_REQUESTS: [(&str, &str, &str); 2] = [
    ("BYE", " BYE\r\n", " INFO\r\n"),
    ("INFO", ";branch=z9hG4bKfar", ";x="),
];

#[test]
fn a_cseq_not_matching_the_method_or_no_branch_is_400() {
    for (method, part, by) in BAD_REQUESTS {
        let (mut run, mut far) = confirmed_outbound();
        let text = far.altered(method, part, by);
        assert_eq!(run.answer_code(&text), Some(400), "{method} {part:?}");
        assert!(!run.call.is_ended());
    }
}

#[test]
fn control_characters_in_echoed_headers_get_no_answer() {
    let (mut run, mut far) = confirmed_outbound();
    let text = far.altered("BYE", "Call-ID: ", "Call-ID: \u{1}");
    let m = message::parse(text.as_bytes(), true).unwrap().0;
    run.input_unchecked(&m);
    assert!(run.take_sent().is_empty());
    assert!(!run.call.is_ended());
}

#[test]
fn a_response_without_a_cseq_or_status_body_is_dropped() {
    let (mut run, _far) = confirmed_outbound();
    let m = parse(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    run.input_unchecked(&m);
    assert!(run.take_sent().is_empty());
}

fn requests(far: &mut super::Far) -> Vec<String> {
    vec![
        far.request("BYE", "", None, ""),
        far.reinvite(Some(HOLD)),
        far.dtmf_info(b"Signal=1\r\nDuration=160\r\n"),
        far.request(
            "NOTIFY",
            "Event: refer\r\nSubscription-State: active\r\n",
            Some(b"SIP/2.0 200 OK\r\n"),
            "message/sipfrag",
        ),
        far.request("OPTIONS", "", None, ""),
        far.cancel(),
        far.ack(far.cseq, Some(b"v=0\r\n")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Mutated in-dialog requests never panic the call, and everything it sends is valid SIP
    /// (the harness parses every output).
    #[test]
    fn mutated_requests_never_panic(
        which in 0usize..7,
        inbound in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let (mut run, mut far) = if inbound { confirmed_inbound() } else { confirmed_outbound() };
        if !inbound {
            // An outbound callee never CANCELs; give it a transfer to NOTIFY about.
            run.command(|c, now| c.transfer("sip:1003@example.org", now));
        }
        let mut bytes = requests(&mut far)[which].clone().into_bytes();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        if let Ok((m, _)) = message::parse(&bytes, false) {
            run.input_unchecked(&m);
            run.advance(std::time::Duration::from_secs(40));
            let _ = run.take_sent();
        }
    }
}
