//! Property tests for the gateway's parsers of untrusted input: SIP messages, digest
//! challenges and WebSocket client messages never panic, and valid messages survive being cut
//! at any point on a stream.

use crate::sip::address::Address;
use crate::sip::digest::{parse_params, Challenge};
use crate::sip::host::Host;
use crate::sip::message::{self, ParseError};
use crate::sip::uri::{Scheme, SipUri};
use crate::sip::via::Via;
use crate::ws::protocol::parse_client_message;
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

    #[test]
    fn header_value_grammars_never_panic(s in ".{0,200}") {
        let _ = Host::parse(&s);
        let _ = Host::parse_claim(&s);
        let _ = SipUri::parse(&s);
        let _ = Via::parse(&s);
        if let Ok(a) = Address::parse(&s) {
            for p in &a.params {
                let _ = p.unquoted();
            }
        }
    }

    /// Any login and host the gateway writes into a URI reads back as the same parts.
    #[test]
    fn written_uris_read_back(user in ".{1,20}", host in "[a-z]{1,5}(\\.[a-z0-9-]{0,5}[a-z0-9])?|[0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-f:]{2,20}", port in proptest::option::of(any::<u16>())) {
        if let Ok(h) = Host::parse_claim(&host) {
            let written = SipUri::new(Scheme::Sip, Some(&user), h.clone(), port).to_string();
            let read = SipUri::parse(&written).unwrap();
            prop_assert_eq!(read.host, h);
            prop_assert_eq!(read.port, port);
            prop_assert_eq!(read.user, Some(crate::sip::uri::escape_user(&user)));
            let name: String = user.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '\\')).collect();
            let addr = format!("\"{name}\" <{written}>;tag=1");
            prop_assert_eq!(Address::parse(&addr).unwrap().uri, written.as_str());
        }
    }
}
