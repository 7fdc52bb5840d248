//! Any text presented as a token: the verifier (legacy allowed, so both formats' paths run) and
//! `inspect` must return, never panic, and a success must be a token the ring can make.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken::{KeyRing, Verifier};

/// The legacy key of the test vectors (so the seed corpus reaches the claims checks), and a v1
/// key that signs none of the seeds: a v1 token that verifies would be a forgery.
const RING: &str = "CRM=8263D535FFFFFFFF7B0F60\nCRM.k1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let ring: KeyRing = RING.parse().unwrap();
    let verifier = Verifier::new(&ring).allow_legacy(true).require_legacy_expiry(false).at(1_764_120_000);
    if let Ok(verified) = verifier.verify(token) {
        // A v1 token that verifies was made with the key: the fuzzer cannot forge one.
        assert_eq!(verified.format(), siptoken::Format::Legacy, "forged v1 token: {token:?}");
        let _ = verified.replay_key();
    }
    let _ = siptoken::inspect(token);
});
