//! The SIP side: the message parser and the grammars of the header values it needs (hosts,
//! URIs, addresses, parameters, Via), digest authentication, server location
//! (RFC 3263 NAPTR, SRV, A/AAAA on hickory-resolver; `allowed_registrars`), the transports (UDP: one
//! shared socket per registrar; TCP; TLS) and the REGISTER client (a sans-IO state machine and
//! its async driver).
//!
//! Calls (issue 13): sans-IO transactions (`invite_client`, `invite_server`, `non_invite_client`,
//! `non_invite_server`, `uas_answer`), `dialog`, outgoing messages (`compose`) and the call
//! state machine (`call`), with `incoming` (what to do with a request no call claims) and
//! `routing` (which registration a message is for).

pub mod account;
pub mod address;
pub mod agent;
pub mod allowed_registrars;
pub mod digest;
pub mod dns;
#[cfg(test)]
mod grammar_refusals;
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

// Accessors of the call machinery that only its unit tests read yet.
#[allow(dead_code)]
pub mod call;
#[allow(dead_code)]
pub mod compose;
#[allow(dead_code)]
pub mod dialog;
#[allow(dead_code)]
pub mod incoming;
#[allow(dead_code)]
pub mod invite_client;
#[allow(dead_code)]
pub mod invite_server;
#[allow(dead_code)]
pub mod non_invite_client;
#[allow(dead_code)]
pub mod non_invite_server;
#[allow(dead_code)]
pub mod routing;
pub mod timers;
pub mod transaction;
pub mod uas_answer;

/// The User-Agent header the gateway sends on every request and response it makes:
/// `siptoken-gateway/<version>`.
pub fn user_agent() -> String {
    format!("siptoken-gateway/{}", env!("CARGO_PKG_VERSION"))
}
