//! The SIP side: a message parser, digest authentication, UDP/TCP transports and the REGISTER
//! client.

pub mod digest;
pub mod message;
pub mod register;
pub mod transport;
