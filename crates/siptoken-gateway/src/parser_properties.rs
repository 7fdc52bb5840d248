//! Property tests for the gateway's parsers of untrusted input: SIP messages, digest
//! challenges and WebSocket client messages never panic, and valid messages survive being cut
//! at any point on a stream.

use crate::sip::digest::{parse_params, Challenge};
use crate::sip::message::{self, ParseError};
use crate::ws::parse_client_message;
use proptest::prelude::*;

const OK: &str = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport=5070\r\n\
    From: <sip:a@b>;tag=1\r\nTo: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 2 REGISTER\r\n\
    Contact: <sip:st-1@127.0.0.1:5070>;expires=600, <sip:st-2@127.0.0.1:5071>;expires=30\r\n\
    Content-Length: 0\r\n\r\n";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn sip_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600), stream in any::<bool>()) {
        let _ = message::parse(&bytes, stream);
    }

    #[test]
    fn sip_parser_survives_mutations(pos in 0..OK.len(), byte in any::<u8>(), stream in any::<bool>()) {
        let mut b = OK.as_bytes().to_vec();
        b[pos] = byte;
        if let Ok((m, used)) = message::parse(&b, stream) {
            prop_assert!(used <= b.len());
            let _ = (m.cseq(), m.top_via_branch(), m.list("contact"));
        }
    }

    #[test]
    fn a_stream_cut_anywhere_is_incomplete_then_whole(cut in 0..OK.len()) {
        prop_assert_eq!(message::parse(&OK.as_bytes()[..cut], true), Err(ParseError::Incomplete));
        let (m, used) = message::parse(OK.as_bytes(), true).unwrap();
        prop_assert_eq!(used, OK.len());
        prop_assert_eq!(m.list("contact").len(), 2);
    }

    #[test]
    fn challenge_parser_never_panics(s in ".{0,300}") {
        let _ = Challenge::parse(&s);
        let _ = parse_params(&s);
    }

    #[test]
    fn challenge_params_with_arbitrary_quoted_values(realm in "[^\"\\\\\\x00-\\x1f\\x7f]{0,40}", nonce in "[A-Za-z0-9+/=]{1,40}") {
        let c = Challenge::parse(&format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", qop=\"auth\"")).unwrap();
        prop_assert_eq!(c.realm, realm);
        prop_assert_eq!(c.nonce, nonce);
    }

    // Values are echoed into the Authorization header: a control character in one is refused.
    #[test]
    fn control_characters_in_quoted_values_are_refused(pre in "[a-z]{0,5}", ctl in "[\\x00-\\x1f\\x7f]", post in "[a-z]{0,5}") {
        let header = format!("Digest realm=\"{pre}{ctl}{post}\", nonce=\"n\"");
        prop_assert!(Challenge::parse(&header).is_err());
    }

    #[test]
    fn client_message_parser_never_panics(s in ".{0,300}") {
        let _ = parse_client_message(&s);
    }
}
