//! SDP as the gateway reads it from outside: the SIP far end's offers and answers, the
//! signalling's hold check, and the browser's WebRTC offer (str0m). No panic, our answers parse
//! back, no media address the gateway would refuse to send to, only the laws asked for.
//! Needs `siptoken_gateway::fuzzing::sdp_fuzz` (the gateway's `fuzzing` feature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken_gateway::fuzzing::sdp_fuzz;

fuzz_target!(|data: &[u8]| {
    sdp_fuzz::sdp(data);
});
