//! WWW-Authenticate / Proxy-Authenticate values: parse, choose among several, and answer
//! whatever parses (the Authorization header must stay one well-formed line).
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken_gateway::fuzzing::digest;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    let _ = digest::parse_params(value);
    let _ = digest::Challenge::choose(value.split('\n'));
    if let Ok(challenge) = digest::Challenge::parse(value) {
        let answer = digest::Answer {
            username: "alice",
            password: "s3cr<t",
            method: "REGISTER",
            uri: "sip:example.org",
            cnonce: "0a4f113b",
            nc: 1,
        };
        let header = digest::authorization(&challenge, &answer);
        assert!(!header.contains(['\r', '\n']), "header injection: {header:?}");
        // (Unless the challenge itself carries that text: a realm is echoed as it came, its
        // quoted-pairs unescaped, so `s3cr\<t` in a realm is echoed as `s3cr<t`.)
        if !value.replace('\\', "").contains("s3cr<t") {
            assert!(!header.contains("s3cr<t"), "password in the header");
        }
    }
});
