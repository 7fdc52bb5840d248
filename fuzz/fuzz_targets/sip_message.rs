//! SIP messages as the gateway reads them from UDP datagrams and TCP streams, and the header
//! values it reads by their grammars (addresses, URIs, hosts, Via, parameters).
#![no_main]

use libfuzzer_sys::fuzz_target;
use siptoken_gateway::fuzzing::{address, host, message, params, uri, via};

fuzz_target!(|data: &[u8]| {
    for stream in [false, true] {
        if let Ok((msg, used)) = message::parse(data, stream) {
            assert!(used <= data.len());
            let _ = (msg.code(), msg.method(), msg.cseq(), msg.top_via_branch());
            for (name, value) in msg.headers() {
                let _ = message::canonical_name(name);
                for item in message::split_list(value) {
                    let _ = params::parse(item);
                    let _ = via::Via::parse(item);
                    if let Ok(a) = address::Address::parse(item) {
                        for p in &a.params {
                            let _ = p.unquoted();
                        }
                        if let Ok(u) = uri::SipUri::parse(a.uri) {
                            // What the gateway writes back must read the same.
                            assert_eq!(uri::SipUri::parse(&u.to_string()), Ok(u));
                        }
                    }
                }
            }
            if let message::StartLine::Request { uri: u, .. } = &msg.start {
                let _ = uri::SipUri::parse(u);
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(h) = host::Host::parse(text) {
            assert_eq!(host::Host::parse(&h.to_string()), Ok(h));
        }
        if let Ok(h) = host::Host::parse_claim(text) {
            assert_eq!(host::Host::parse(&h.to_string()), Ok(h));
        }
    }
});
