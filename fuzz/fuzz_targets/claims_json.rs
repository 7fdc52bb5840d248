//! The JSON requests of the batch mode, the C ABI and the WASM package.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken::json::{options_from_json, ClaimsRequest};
use siptoken::{Issuer, KeyRing, Verifier};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = options_from_json(text);
    if let Ok(request) = ClaimsRequest::from_json(text) {
        // Whatever is accepted can be issued (unless too large) and verifies to the same claims.
        let ring: KeyRing = "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2".parse().unwrap();
        let issuer = Issuer::new(&ring).at(1_764_120_000);
        match issuer.issue("CRM", &request.claims) {
            Ok(token) => {
                let v = Verifier::new(&ring).at(1_764_120_000).max_lifetime(std::time::Duration::from_secs(u32::MAX.into()));
                if let Ok(verified) = v.verify(&token) {
                    assert_eq!(verified.claims().login(), request.claims.login());
                    assert_eq!(verified.claims().password(), request.claims.password());
                }
            }
            Err(e) => assert!(matches!(e.code().as_str(), "too_large" | "invalid_field"), "{e}"),
        }
    }
});
