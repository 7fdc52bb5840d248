//! What the load tools (`gateway_load`, `gateway_calls_load`) share: the accounts and their
//! tokens, child processes and their CPU time, Kamailio, sipp, the gateway under test, WebSocket
//! clients. Included with
//! `#[path = "load_support/mod.rs"] mod load_support;`; the including crate root must also
//! declare `loopback` and `h2_client` (from tests/gateway/).

pub mod accounts;
pub mod gateway;
pub mod kamailio;
#[path = "../../tests/gateway/launch.rs"]
pub mod launch;
pub mod procs;
pub mod sipp;
pub mod ws_client;
