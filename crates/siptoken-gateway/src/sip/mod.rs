//! The SIP side: the message parser and the grammars of the header values it needs (hosts,
//! URIs, addresses, parameters, Via), digest authentication, DNS SRV, the transports (UDP: one
//! shared socket per registrar; TCP; TLS) and the REGISTER client (a sans-IO state machine and
//! its async driver).

pub mod account;
pub mod address;
pub mod digest;
pub mod dns;
pub mod host;
pub mod message;
pub mod params;
pub mod register;
pub mod registration;
pub mod transport;
pub mod transport_error;
pub mod udp;
pub mod uri;
pub mod via;
