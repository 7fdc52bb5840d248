//! The WebSocket session protocol (`docs/gateway-protocol.md`): JSON text frames, `login`,
//! `logout`, `ping` and the call commands in; registration and call events, `pong` and
//! `error` out. [`protocol`] holds the messages, [`session`] runs one socket.

pub mod protocol;
pub mod session;
