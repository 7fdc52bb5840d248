//! An established call (inbound or outbound) fed arbitrary datagrams interleaved with client
//! commands and time: no panic, every message it sends is valid SIP, `Ended` at most once.
//! Needs `siptoken_gateway::fuzzing::call_fuzz` (the gateway's `fuzzing` feature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken_gateway::fuzzing::call_fuzz;

fuzz_target!(|data: &[u8]| {
    call_fuzz::in_dialog(data);
});
