//! Client messages on the gateway's WebSocket.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = siptoken_gateway::fuzzing::parse_client_message(text);
});
