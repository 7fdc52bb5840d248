//! SIP messages as the gateway reads them from UDP datagrams and TCP streams.
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken_gateway::fuzzing::message;

fuzz_target!(|data: &[u8]| {
    for stream in [false, true] {
        if let Ok((msg, used)) = message::parse(data, stream) {
            assert!(used <= data.len());
            let _ = (msg.code(), msg.method(), msg.cseq(), msg.top_via_branch());
            for (name, value) in msg.headers() {
                let _ = message::canonical_name(name);
                let _: Vec<_> = message::split_list(value).collect();
                let _: Vec<_> = message::params(value).collect();
                let uri = message::addr_uri(value);
                let _ = message::uri_user(uri);
            }
        }
    }
});
