//! The SIP side: a message parser, digest authentication, DNS SRV, UDP/TCP transports and the REGISTER
//! client.

pub mod digest;
pub mod dns;
pub mod message;
pub mod register;
pub mod transport;
