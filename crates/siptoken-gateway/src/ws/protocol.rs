//! The WebSocket protocol's messages (`docs/gateway-protocol.md`): what a client sends
//! ([`ClientMessage`], parsed by [`parse_client_message`]), what the gateway sends
//! ([`ServerMessage`]) and the error codes ([`ErrorCode`]), typed both ways with serde. The
//! session that exchanges them is [`super::session::run`].

use serde::{Deserialize, Serialize};

use crate::sip::call::Party;
use crate::sip::register::SipError;

/// A client message (unknown fields are ignored, for forward compatibility). `Debug` never
/// shows the token.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// `{"type":"login","token":"…"}`.
    Login {
        /// The token.
        token: String,
    },
    /// `{"type":"logout"}`.
    Logout,
    /// `{"type":"ping"}`.
    Ping,
    /// `{"type":"call","call":"c1","to":"1002","sdp":"<offer>"[,"aor":…]}`: place a call.
    Call {
        /// The client's id for the call.
        call: String,
        /// A `sip:`/`sips:`/`tel:` URI, or a user part or number.
        to: String,
        /// The browser's WebRTC offer.
        sdp: String,
        /// Which logged-in account calls (default: the first).
        #[serde(default)]
        aor: Option<String>,
    },
    /// `{"type":"answer","call":"in-…","sdp":"<offer>"}`: take an incoming call.
    Answer {
        /// The incoming call's id.
        call: String,
        /// The browser's WebRTC offer.
        sdp: String,
    },
    /// `{"type":"reject","call":"…"[,"status":486|603]}`: decline an incoming call.
    Reject {
        /// The call.
        call: String,
        /// 486 (default) or 603.
        #[serde(default)]
        status: Option<u16>,
    },
    /// `{"type":"hangup","call":"…"}`: CANCEL before the answer, BYE after.
    Hangup {
        /// The call.
        call: String,
    },
    /// `{"type":"hold","call":"…"}`.
    Hold {
        /// The call.
        call: String,
    },
    /// `{"type":"unhold","call":"…"}`.
    Unhold {
        /// The call.
        call: String,
    },
    /// `{"type":"dtmf","call":"…","digits":"12#"}`.
    Dtmf {
        /// The call.
        call: String,
        /// `0-9 * # A-D`, at most 32.
        digits: String,
    },
    /// `{"type":"transfer","call":"…","to":"1003"}`: blind transfer.
    Transfer {
        /// The call.
        call: String,
        /// Where to.
        to: String,
    },
}

impl std::fmt::Debug for ClientMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientMessage::Login { token } => f
                .debug_struct("Login")
                .field("token", &format_args!("<{} bytes>", token.len()))
                .finish(),
            ClientMessage::Logout => f.write_str("Logout"),
            ClientMessage::Ping => f.write_str("Ping"),
            ClientMessage::Call { call, .. } => write!(f, "Call({call})"),
            ClientMessage::Answer { call, .. } => write!(f, "Answer({call})"),
            ClientMessage::Reject { call, .. } => write!(f, "Reject({call})"),
            ClientMessage::Hangup { call } => write!(f, "Hangup({call})"),
            ClientMessage::Hold { call } => write!(f, "Hold({call})"),
            ClientMessage::Unhold { call } => write!(f, "Unhold({call})"),
            ClientMessage::Dtmf { call, .. } => write!(f, "Dtmf({call})"),
            ClientMessage::Transfer { call, .. } => write!(f, "Transfer({call})"),
        }
    }
}

/// Why a text frame is not a client message (the `message` of a `bad_request`). It names
/// the kind of problem and its position, never the input: serde_json's own messages can quote
/// it (a token, say). (Truncating its message panicked on a multi-byte character; the
/// ws_message fuzz target found it.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid client message: {what} (line {line}, column {column})")]
pub struct BadClientMessage {
    what: BadKind,
    line: usize,
    column: usize,
}

/// What kind of problem a [`BadClientMessage`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadKind {
    /// Not JSON at all.
    #[error("not JSON")]
    NotJson,
    /// JSON, but not one of the client messages.
    #[error(
        "expected one of the client messages (login, logout, ping, call, answer, reject, hangup, hold, unhold, dtmf, transfer) with its fields"
    )]
    NotAClientMessage,
}

/// Parses a text frame.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, BadClientMessage> {
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => BadKind::NotJson,
            Category::Data => BadKind::NotAClientMessage,
        };
        BadClientMessage {
            what,
            line: e.line(),
            column: e.column(),
        }
    })
}

/// A gateway message (`docs/gateway-protocol.md`, "Gateway → client"); the mirror of
/// [`ClientMessage`]. Fields are written in the order the document shows them, absent
/// optional fields are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ServerMessage {
    /// The token was accepted and the REGISTER is in flight.
    Registering {
        /// The address of record.
        aor: String,
    },
    /// The registrar accepted the binding (sent again after every refresh).
    Registered {
        /// The address of record.
        aor: String,
        /// The expiry the registrar granted, seconds.
        expires: u32,
    },
    /// A `registered="false"` token was verified; no REGISTER.
    Authenticated {
        /// The address of record.
        aor: String,
    },
    /// The binding was removed after `logout` or at shutdown.
    Unregistered {
        /// The address of record.
        aor: String,
    },
    /// A refresh failed for good; the account is no longer logged in.
    #[serde(rename_all = "camelCase")]
    RegistrationLost {
        /// The address of record.
        aor: String,
        /// One of the `sip_*` codes.
        code: ErrorCode,
        /// What happened.
        message: String,
        /// The final SIP status, when there was one.
        #[serde(skip_serializing_if = "Option::is_none")]
        sip_status: Option<u16>,
    },
    /// The answer to `ping`.
    Pong,
    /// An INVITE reached one of this socket's accounts.
    #[serde(rename_all = "camelCase")]
    IncomingCall {
        /// The gateway's id for the call (`in-…`).
        call: String,
        /// The account called.
        aor: String,
        /// The caller's URI.
        from: String,
        /// The caller's display name, when the caller sent one.
        #[serde(skip_serializing_if = "Option::is_none")]
        display_name: Option<String>,
    },
    /// The gateway's SDP answer to the browser's offer (right after `call` or `answer`).
    Media {
        /// The call.
        call: String,
        /// The answer.
        sdp: String,
    },
    /// 180, or 183 without SDP.
    Ringing {
        /// The call.
        call: String,
    },
    /// 183 with SDP: the far end's audio now plays.
    EarlyMedia {
        /// The call.
        call: String,
    },
    /// The call is established.
    Answered {
        /// The call.
        call: String,
    },
    /// The call went on hold.
    Held {
        /// The call.
        call: String,
        /// `local` (this client) or `remote` (the far end).
        by: HoldParty,
    },
    /// The call came off hold.
    Resumed {
        /// The call.
        call: String,
        /// `local` or `remote`.
        by: HoldParty,
    },
    /// The REFER was accepted; `ended` with `transferred` follows when the transfer succeeds.
    Transferring {
        /// The call.
        call: String,
    },
    /// The call is over: exactly once for every call id ever announced.
    #[serde(rename_all = "camelCase")]
    Ended {
        /// The call.
        call: String,
        /// Why (`docs/gateway-protocol.md`, "Calls").
        reason: &'static str,
        /// The SIP status that decided it, when one did.
        #[serde(skip_serializing_if = "Option::is_none")]
        sip_status: Option<u16>,
    },
    /// A request failed.
    #[serde(rename_all = "camelCase")]
    Error {
        /// What kind of failure.
        code: ErrorCode,
        /// What happened, for people.
        message: String,
        /// `token_rejected`: the core library's error code.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<&'static str>,
        /// `sip_*`: the final SIP status, when there was one.
        #[serde(skip_serializing_if = "Option::is_none")]
        sip_status: Option<u16>,
        /// `sip_*`: the account's address of record.
        #[serde(skip_serializing_if = "Option::is_none")]
        aor: Option<String>,
        /// The call the failed request was about.
        #[serde(skip_serializing_if = "Option::is_none")]
        call: Option<String>,
    },
}

/// Who changed a call's hold state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldParty {
    /// This client.
    Local,
    /// The far end.
    Remote,
}

impl From<Party> for HoldParty {
    fn from(p: Party) -> HoldParty {
        match p {
            Party::Local => HoldParty::Local,
            Party::Remote => HoldParty::Remote,
        }
    }
}

/// The `code` of an `error` or `registrationLost` message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, unknown `type`, missing `token`, or a binary frame.
    BadRequest,
    /// The token did not verify, or its claims cannot go into a SIP message.
    TokenRejected,
    /// The token was already used.
    Replayed,
    /// The registrar refused the credentials.
    SipAuthFailed,
    /// Any other final SIP failure.
    SipRejected,
    /// No final response within the transaction timeout.
    SipTimeout,
    /// The registrar could not be resolved or reached.
    SipUnreachable,
    /// `allowed_registrars` does not allow the registrar the token names.
    RegistrarNotAllowed,
    /// Too many login attempts from this client address.
    RateLimited,
    /// Too many sessions, or too many accounts on this socket.
    SessionLimit,
    /// `logout` with no account logged in.
    NotLoggedIn,
    /// Nothing from the client for `ws_idle_timeout_seconds`.
    IdleTimeout,
    /// No account logged in within `login_timeout_seconds`.
    LoginTimeout,
    /// The shared single-use store is unavailable.
    StoreUnavailable,
    /// A call command names no live call of this socket.
    UnknownCall,
    /// `max_calls` or `max_calls_per_session` reached.
    CallLimit,
    /// The call target is not a usable URI, user or number.
    InvalidTarget,
    /// The browser's SDP offer cannot be answered.
    InvalidSdp,
    /// A call operation failed on the SIP or media side (the call goes on unless `ended` follows).
    CallFailed,
}

impl ErrorCode {
    /// The code as written on the wire (and in the metrics' `code` label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::TokenRejected => "token_rejected",
            ErrorCode::Replayed => "replayed",
            ErrorCode::SipAuthFailed => "sip_auth_failed",
            ErrorCode::SipRejected => "sip_rejected",
            ErrorCode::SipTimeout => "sip_timeout",
            ErrorCode::SipUnreachable => "sip_unreachable",
            ErrorCode::RegistrarNotAllowed => "registrar_not_allowed",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SessionLimit => "session_limit",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::IdleTimeout => "idle_timeout",
            ErrorCode::LoginTimeout => "login_timeout",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::UnknownCall => "unknown_call",
            ErrorCode::CallLimit => "call_limit",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::InvalidSdp => "invalid_sdp",
            ErrorCode::CallFailed => "call_failed",
        }
    }

    /// The code of a failed registration.
    pub fn of_sip(e: &SipError) -> ErrorCode {
        match e {
            SipError::AuthFailed { .. } | SipError::DigestRefused { .. } => {
                ErrorCode::SipAuthFailed
            }
            SipError::Rejected { .. }
            | SipError::NoBinding { .. }
            | SipError::BadChallenge { .. } => ErrorCode::SipRejected,
            SipError::Timeout => ErrorCode::SipTimeout,
            SipError::Unreachable(_) | SipError::NotFound(_) => ErrorCode::SipUnreachable,
            SipError::NotAllowed => ErrorCode::RegistrarNotAllowed,
        }
    }
}

impl ServerMessage {
    /// An `error` message without extra fields.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> ServerMessage {
        ServerMessage::Error {
            code,
            message: message.into(),
            detail: None,
            sip_status: None,
            aor: None,
            call: None,
        }
    }

    /// An `error` about a call.
    pub fn call_error(code: ErrorCode, call: &str, message: impl Into<String>) -> ServerMessage {
        let mut error = ServerMessage::error(code, message);
        if let ServerMessage::Error { call: about, .. } = &mut error {
            *about = Some(call.to_owned());
        }
        error
    }

    /// The `error` for a first registration that failed. The text is the error's `Display`,
    /// which never holds the registrar's address (issue 14 item 12: that stays in the log).
    pub fn sip_failed(aor: String, e: &SipError) -> ServerMessage {
        ServerMessage::Error {
            code: ErrorCode::of_sip(e),
            message: e.to_string(),
            detail: None,
            sip_status: e.status(),
            aor: Some(aor),
            call: None,
        }
    }

    /// The JSON text frame.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("plain data serializes")
    }
}

/// Whether a client's call id is valid: 1–64 of `[A-Za-z0-9_.-]`.
pub fn valid_call_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages() {
        assert!(matches!(
            parse_client_message(r#"{"type":"login","token":"CRM:v1.k.00"}"#),
            Ok(ClientMessage::Login { .. })
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"logout"}"#),
            Ok(ClientMessage::Logout)
        ));
        for bad in [
            "",
            "null",
            "[]",
            r#"{"type":"login"}"#,
            r#"{"type":"login","token":5}"#,
            r#"{"type":"dance"}"#,
            r#"{"token":"x"}"#,
        ] {
            assert!(parse_client_message(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_request_messages_do_not_echo_long_tokens() {
        let token = format!("CRM:v1.k1.{}", "ab".repeat(200));
        for text in [
            format!(r#"{{"type":"login","token":"{token}""#),
            format!(r#"{{"type":"lgin","token":"{token}"}}"#),
            format!(r#"{{"type":"login","token":["{token}"]}}"#),
        ] {
            let e = parse_client_message(&text).unwrap_err().to_string();
            assert!(!e.contains("abababab"), "{e}");
        }
        let ok = parse_client_message(&format!(r#"{{"type":"login","token":"{token}"}}"#));
        assert!(!format!("{ok:?}").contains("abababab"));
    }

    #[test]
    fn errors_never_quote_the_input_and_never_panic() {
        // The ws_message fuzz target's reproducer: a long error message cut inside a character.
        let crash = format!("\"{}ü\"", "\\r".repeat(80));
        let err = parse_client_message(&crash).unwrap_err().to_string();
        assert!(err.starts_with("not a valid client message: "), "{err}");
        let token = "CRM:v1.k1.".to_owned() + &"ab".repeat(200);
        for text in [
            format!(r#"{{"type":"login","token":5,"t":{token:?}}}"#),
            format!(r#"{{"type":{token:?}}}"#),
            format!(r#"{{"type":"login","token":"{token}"#),
        ] {
            let err = parse_client_message(&text).unwrap_err().to_string();
            assert!(!err.contains("abab"), "{err}");
        }
    }

    /// The wire format of every gateway message, byte for byte as docs/gateway-protocol.md
    /// shows it: `type` first, then the fields in the documented order, optional ones left
    /// out when absent.
    #[test]
    fn server_messages_on_the_wire() {
        let aor = || "sip:crm1@sip.example.org".to_owned();
        for (m, json) in [
            (
                ServerMessage::Registering { aor: aor() },
                r#"{"type":"registering","aor":"sip:crm1@sip.example.org"}"#,
            ),
            (
                ServerMessage::Registered {
                    aor: aor(),
                    expires: 600,
                },
                r#"{"type":"registered","aor":"sip:crm1@sip.example.org","expires":600}"#,
            ),
            (
                ServerMessage::Authenticated { aor: aor() },
                r#"{"type":"authenticated","aor":"sip:crm1@sip.example.org"}"#,
            ),
            (
                ServerMessage::Unregistered { aor: aor() },
                r#"{"type":"unregistered","aor":"sip:crm1@sip.example.org"}"#,
            ),
            (
                ServerMessage::RegistrationLost {
                    aor: aor(),
                    code: ErrorCode::SipTimeout,
                    message: "no answer".into(),
                    sip_status: None,
                },
                r#"{"type":"registrationLost","aor":"sip:crm1@sip.example.org","code":"sip_timeout","message":"no answer"}"#,
            ),
            (
                ServerMessage::RegistrationLost {
                    aor: aor(),
                    code: ErrorCode::SipRejected,
                    message: "x".into(),
                    sip_status: Some(404),
                },
                r#"{"type":"registrationLost","aor":"sip:crm1@sip.example.org","code":"sip_rejected","message":"x","sipStatus":404}"#,
            ),
            (ServerMessage::Pong, r#"{"type":"pong"}"#),
            (
                ServerMessage::error(ErrorCode::NotLoggedIn, "none"),
                r#"{"type":"error","code":"not_logged_in","message":"none"}"#,
            ),
            (
                ServerMessage::Error {
                    code: ErrorCode::TokenRejected,
                    message: "expired".into(),
                    detail: Some("expired"),
                    sip_status: None,
                    aor: None,
                    call: None,
                },
                r#"{"type":"error","code":"token_rejected","message":"expired","detail":"expired"}"#,
            ),
            (
                ServerMessage::sip_failed(aor(), &SipError::AuthFailed { status: 403 }),
                r#"{"type":"error","code":"sip_auth_failed","message":"the registrar refused the credentials (403)","sipStatus":403,"aor":"sip:crm1@sip.example.org"}"#,
            ),
            (
                ServerMessage::sip_failed(aor(), &SipError::Timeout),
                r#"{"type":"error","code":"sip_timeout","message":"no answer from the registrar","aor":"sip:crm1@sip.example.org"}"#,
            ),
        ] {
            assert_eq!(m.to_json(), json);
        }
    }

    #[test]
    fn error_codes_are_written_as_their_names() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::TokenRejected,
            ErrorCode::Replayed,
            ErrorCode::SipAuthFailed,
            ErrorCode::SipRejected,
            ErrorCode::SipTimeout,
            ErrorCode::SipUnreachable,
            ErrorCode::RateLimited,
            ErrorCode::SessionLimit,
            ErrorCode::NotLoggedIn,
            ErrorCode::IdleTimeout,
            ErrorCode::StoreUnavailable,
        ] {
            assert_eq!(
                serde_json::to_string(&code).unwrap(),
                format!("\"{}\"", code.as_str())
            );
        }
    }

    /// Whether `s` holds something that looks like an IP address or a port.
    fn names_an_address(s: &str) -> bool {
        let dotted_quad = s
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .any(|t| {
                let parts: Vec<&str> = t.trim_matches('.').split('.').collect();
                parts.len() >= 4 && parts.iter().all(|p| !p.is_empty())
            });
        let port = s
            .as_bytes()
            .windows(2)
            .any(|w| w[0] == b':' && w[1].is_ascii_digit());
        dotted_quad || port || s.contains("::") || s.contains("]:")
    }

    /// Issue 14 item 12: no failed registration tells the client an address or a port; the
    /// registrar's reason phrase (free text) is not passed on either.
    #[test]
    fn sip_failures_name_no_address() {
        use crate::sip::transport_error::{TlsFailure, TransportError as T};
        assert!(names_an_address("TLS handshake with 127.0.0.1:5061 failed"));
        assert!(names_an_address("refused by [::1]:5060"));
        assert!(!names_an_address(
            "the registrar rejected the registration: 404 Not Found"
        ));
        let mut errors = vec![
            SipError::AuthFailed { status: 401 },
            SipError::Rejected {
                status: 503,
                reason: "Overloaded, try 10.0.0.7:5060".into(),
            },
            SipError::NoBinding { status: 200 },
            SipError::BadChallenge {
                status: 407,
                error: crate::sip::digest::ChallengeError::Missing("nonce"),
            },
            SipError::Timeout,
        ];
        for t in [
            T::Refused,
            T::Reset,
            T::NoRoute,
            T::Closed,
            T::Garbage,
            T::ConnectTimeout,
            T::NoAddress,
            T::TlsNotConfigured,
            T::TlsName,
            T::TlsTimeout,
            T::Tls(TlsFailure::UnknownIssuer),
            T::Tls(TlsFailure::NameMismatch),
            T::Tls(TlsFailure::Validity),
            T::Tls(TlsFailure::Certificate),
            T::Tls(TlsFailure::Protocol),
            T::Io(std::io::ErrorKind::AddrInUse),
        ] {
            errors.push(SipError::Unreachable(t));
        }
        use crate::sip::dns::{LocateError as L, LookupFailure};
        let host = || "sip.test".to_owned();
        for l in [
            L::NameNotAllowed,
            L::AddressNotAllowed,
            L::Lookup {
                name: "_sip._udp.sip.test.".into(),
                failure: LookupFailure::NoRecords,
            },
            L::Lookup {
                name: host(),
                failure: LookupFailure::Timeout,
            },
            L::Lookup {
                name: host(),
                failure: LookupFailure::Failed,
            },
            L::NoAddress { host: host() },
            L::NotOffered { host: host() },
            L::NoResolver,
            L::Timeout,
        ] {
            errors.push(SipError::from(l));
        }
        for e in &errors {
            let json = ServerMessage::sip_failed("sip:crm1@sip.test".into(), e).to_json();
            let message = serde_json::from_str::<serde_json::Value>(&json).unwrap()["message"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(!names_an_address(&message), "{message}");
        }
    }
}
