//! Loopback helpers shared by the gateway tests (`tests/gateway/harness.rs`) and the load tool
//! (`examples/gateway_load.rs`).

use std::net::{TcpListener, UdpSocket};

/// A port free on loopback for both TCP and UDP (at the moment of asking).
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let t = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = t.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}
