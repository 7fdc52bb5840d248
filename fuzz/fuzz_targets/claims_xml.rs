//! Arbitrary plaintext reaches the claims XML reader: a legacy token lets the fuzzer choose the
//! decrypted bytes exactly. Whatever is accepted must survive a write/read round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken::{format::seal_legacy, Issuer, KeyRing, LegacyKey, Verifier};

const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\n";

fuzz_target!(|xml: &[u8]| {
    let ring: KeyRing = RING.parse().unwrap();
    let key = LegacyKey::from_bytes(&[0x82, 0x63, 0xD5, 0x35, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B, 0x0F, 0x60]).unwrap();
    let token = seal_legacy("CRM", &key, xml);
    let verifier = Verifier::new(&ring).allow_legacy(true).require_legacy_expiry(false).at(1_764_120_000);
    if let Ok(verified) = verifier.verify(&token) {
        let claims = verified.into_claims();
        let again = Issuer::new(&ring).legacy().at(1_764_120_000).issue("CRM", &claims);
        let again = match again {
            Ok(token) => token,
            // Canonical escaping can lengthen the XML (a raw '>' becomes "&gt;") past the
            // token size limit: refusing that is right.
            Err(e) if e.code() == siptoken::ErrorCode::TooLarge => return,
            Err(e) => panic!("accepted claims cannot be issued again: {e}"),
        };
        // The stamped expiry may make the lifetime long when `issued` is old: no limit here.
        let lenient = verifier.clone().max_lifetime(std::time::Duration::from_secs(u64::MAX / 2));
        let back = lenient.verify(&again).expect("re-issued claims verify");
        let back = back.into_claims();
        // The issuer stamps an expiry when there is none; everything else must be identical.
        assert_eq!(back.expires(), claims.expires().or(Some(1_764_120_000 + 300)));
        assert_eq!(back.login(), claims.login());
        assert_eq!(back.password(), claims.password());
        assert_eq!(back.domain(), claims.domain());
        assert_eq!(back.authentication_name(), claims.authentication_name());
        assert_eq!(back.outbound_proxy(), claims.outbound_proxy());
        assert_eq!(back.port(), claims.port());
        assert_eq!(back.visible_name(), claims.visible_name());
        assert_eq!(back.transport(), claims.transport());
        assert_eq!(back.registered(), claims.registered());
        assert_eq!(back.issued(), claims.issued());
        assert_eq!(back.id(), claims.id());
        assert_eq!(back.extra(), claims.extra());
    }
});
