//! The SIP side: a message parser, digest authentication, server location (DNS NAPTR, SRV,
//! A/AAAA; `allowed_registrars`), UDP (one shared socket per registrar), TCP and TLS transports
//! and the REGISTER client.

pub mod allowed_registrars;
pub mod digest;
pub mod dns;
pub mod message;
pub mod register;
pub mod transport;
pub mod udp;
