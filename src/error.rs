//! The one error type of the library, with stable machine-readable codes.

use std::fmt;

/// Stable, machine-readable error codes.
///
/// The string form ([`ErrorCode::as_str`]) and the number ([`ErrorCode::number`]) are part of the
/// public contract: the CLI prints the string, the C ABI returns the number, and neither ever
/// changes meaning. New codes may be added at the end.
///
/// ```
/// use siptoken::ErrorCode;
/// assert_eq!(ErrorCode::BadSignature.as_str(), "bad_signature");
/// assert_eq!(ErrorCode::from_number(ErrorCode::Expired.number()), Some(ErrorCode::Expired));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The token is not `APP:HEX` or `APP:v1.KID.HEX` (bad name, bad hex, too short).
    Malformed = 1,
    /// No key at all for the token's application.
    UnknownApp = 2,
    /// The application is known but has no key of the kind (or key id) the token names.
    UnknownKey = 3,
    /// The v1 HMAC tag does not match: altered, truncated, or made with another key.
    BadSignature = 4,
    /// A legacy token was presented to a verifier that does not accept legacy tokens.
    LegacyDisabled = 5,
    /// The decrypted claims are not the XML this format allows.
    InvalidXml = 6,
    /// A required claim is absent.
    MissingField = 7,
    /// A claim has a value outside its domain.
    InvalidField = 8,
    /// The token's `expires` (plus leeway) is in the past.
    Expired = 9,
    /// The token's `issued` is in the future (beyond the leeway).
    NotYetValid = 10,
    /// `expires - issued` exceeds the verifier's maximum lifetime; without `issued` (legacy),
    /// `expires` is more than the maximum lifetime plus the leeway after now.
    LifetimeTooLong = 11,
    /// The token is larger than [`MAX_TOKEN_LEN`](crate::MAX_TOKEN_LEN) bytes.
    TooLarge = 12,
    /// A key ring could not be parsed.
    InvalidKeyring = 13,
    /// A JSON request (claims or options) could not be parsed.
    InvalidJson = 14,
    /// A file could not be read.
    Io = 15,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::Malformed,
        ErrorCode::UnknownApp,
        ErrorCode::UnknownKey,
        ErrorCode::BadSignature,
        ErrorCode::LegacyDisabled,
        ErrorCode::InvalidXml,
        ErrorCode::MissingField,
        ErrorCode::InvalidField,
        ErrorCode::Expired,
        ErrorCode::NotYetValid,
        ErrorCode::LifetimeTooLong,
        ErrorCode::TooLarge,
        ErrorCode::InvalidKeyring,
        ErrorCode::InvalidJson,
        ErrorCode::Io,
    ];

    /// The stable string form, e.g. `"bad_signature"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownApp => "unknown_app",
            ErrorCode::UnknownKey => "unknown_key",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::LegacyDisabled => "legacy_disabled",
            ErrorCode::InvalidXml => "invalid_xml",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::InvalidField => "invalid_field",
            ErrorCode::Expired => "expired",
            ErrorCode::NotYetValid => "not_yet_valid",
            ErrorCode::LifetimeTooLong => "lifetime_too_long",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidKeyring => "invalid_keyring",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::Io => "io",
        }
    }

    /// The stable number (1 and up) that the C ABI returns for this code.
    pub const fn number(self) -> i32 {
        self as i32
    }

    /// The code with this number, if any.
    pub fn from_number(n: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.number() == n)
    }

    /// The code with this string form, if any.
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// Whether this code means "the token was judged and rejected" (as opposed to a problem with
    /// the caller's configuration or input, such as a bad key ring or bad JSON).
    pub const fn is_rejection(self) -> bool {
        !matches!(
            self,
            ErrorCode::InvalidKeyring | ErrorCode::InvalidJson | ErrorCode::Io
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong when parsing keys, issuing or verifying tokens.
///
/// Messages never contain key material, passwords or whole tokens. Each variant maps to one
/// [`ErrorCode`] through [`Error::code`].
///
/// ```
/// use siptoken::{KeyRing, Verifier, ErrorCode};
/// let ring: KeyRing = "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2"
///     .parse().unwrap();
/// let err = Verifier::new(&ring).verify("CRM:v1.k1.00").unwrap_err();
/// assert_eq!(err.code(), ErrorCode::Malformed);
/// assert_eq!(err.code().as_str(), "malformed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// See [`ErrorCode::Malformed`]; the string says what is wrong.
    Malformed(&'static str),
    /// See [`ErrorCode::UnknownApp`].
    UnknownApp {
        /// The application name from the token.
        app: String,
    },
    /// See [`ErrorCode::UnknownKey`].
    UnknownKey {
        /// The application name from the token.
        app: String,
        /// The token format whose key is missing.
        format: crate::layout::Format,
        /// The key id asked for (v1 only; `None` when the newest v1 key was asked for).
        kid: Option<String>,
    },
    /// See [`ErrorCode::BadSignature`].
    BadSignature,
    /// See [`ErrorCode::LegacyDisabled`].
    LegacyDisabled,
    /// See [`ErrorCode::InvalidXml`]; the string says what is wrong, without quoting content.
    InvalidXml(String),
    /// See [`ErrorCode::MissingField`]; holds the XML attribute name.
    MissingField(&'static str),
    /// See [`ErrorCode::InvalidField`].
    InvalidField {
        /// The XML attribute name.
        field: String,
        /// What is wrong with it (never quotes a password).
        reason: String,
    },
    /// See [`ErrorCode::Expired`].
    Expired {
        /// The token's `expires`, Unix seconds.
        expires: i64,
        /// The verifier's clock, Unix seconds.
        now: i64,
    },
    /// See [`ErrorCode::NotYetValid`].
    NotYetValid {
        /// The token's `issued`, Unix seconds.
        issued: i64,
        /// The verifier's clock, Unix seconds.
        now: i64,
    },
    /// See [`ErrorCode::LifetimeTooLong`].
    LifetimeTooLong {
        /// `expires - issued`, seconds.
        lifetime: i64,
        /// The verifier's maximum, seconds.
        max: u64,
    },
    /// See [`ErrorCode::LifetimeTooLong`]: a token without `issued` (legacy) whose `expires` is
    /// more than the maximum lifetime plus the leeway after the verifier's clock.
    ExpiresTooFar {
        /// The token's `expires`, Unix seconds.
        expires: i64,
        /// The verifier's clock, Unix seconds.
        now: i64,
        /// The verifier's maximum lifetime, seconds.
        max: u64,
    },
    /// See [`ErrorCode::TooLarge`].
    TooLarge {
        /// The size presented, in bytes.
        len: usize,
    },
    /// See [`ErrorCode::InvalidKeyring`].
    InvalidKeyring {
        /// 1-based line number in the key ring text (0 when not about one line).
        line: usize,
        /// What is wrong (never quotes key material).
        reason: String,
    },
    /// See [`ErrorCode::InvalidJson`].
    InvalidJson(String),
    /// See [`ErrorCode::Io`].
    Io {
        /// The file concerned.
        path: String,
        /// The operating system's description.
        message: String,
    },
}

impl Error {
    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Malformed(_) => ErrorCode::Malformed,
            Error::UnknownApp { .. } => ErrorCode::UnknownApp,
            Error::UnknownKey { .. } => ErrorCode::UnknownKey,
            Error::BadSignature => ErrorCode::BadSignature,
            Error::LegacyDisabled => ErrorCode::LegacyDisabled,
            Error::InvalidXml(_) => ErrorCode::InvalidXml,
            Error::MissingField(_) => ErrorCode::MissingField,
            Error::InvalidField { .. } => ErrorCode::InvalidField,
            Error::Expired { .. } => ErrorCode::Expired,
            Error::NotYetValid { .. } => ErrorCode::NotYetValid,
            Error::LifetimeTooLong { .. } | Error::ExpiresTooFar { .. } => {
                ErrorCode::LifetimeTooLong
            }
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::InvalidKeyring { .. } => ErrorCode::InvalidKeyring,
            Error::InvalidJson(_) => ErrorCode::InvalidJson,
            Error::Io { .. } => ErrorCode::Io,
        }
    }

    pub(crate) fn invalid_field(field: &str, reason: impl Into<String>) -> Error {
        Error::InvalidField {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Formats Unix seconds as RFC 3339 UTC (`2026-12-02T12:00:00Z`), or the bare number outside
/// 1970-01-01 ..= 9999-12-31 (what an RFC 3339 date can spell).
pub(crate) fn format_unix(secs: i64) -> String {
    const YEAR_10000: i64 = 253_402_300_800;
    match u64::try_from(secs) {
        Ok(s) if secs < YEAR_10000 => {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(s);
            humantime::format_rfc3339_seconds(t).to_string()
        }
        _ => secs.to_string(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(why) => write!(f, "malformed token: {why}"),
            Error::UnknownApp { app } => {
                write!(
                    f,
                    "unknown application \"{app}\": the key ring has no key for it"
                )
            }
            Error::UnknownKey {
                app,
                kid: Some(kid),
                ..
            } => write!(f, "unknown key \"{kid}\" for application \"{app}\""),
            Error::UnknownKey { app, format, .. } => write!(
                f,
                "application \"{app}\" has no {format} key in the key ring"
            ),
            Error::BadSignature => f.write_str(
                "bad signature: the token was altered, truncated, or made with another key",
            ),
            Error::LegacyDisabled => {
                f.write_str("legacy tokens are not accepted here (legacy acceptance is off)")
            }
            Error::InvalidXml(why) => write!(f, "token claims are not valid XML: {why}"),
            Error::MissingField(name) => write!(f, "required field \"{name}\" is missing"),
            Error::InvalidField { field, reason } => write!(f, "field \"{field}\" {reason}"),
            Error::Expired { expires, now } => write!(
                f,
                "token expired at {} (now {})",
                format_unix(*expires),
                format_unix(*now)
            ),
            Error::NotYetValid { issued, now } => write!(
                f,
                "token is not valid yet: issued at {} (now {})",
                format_unix(*issued),
                format_unix(*now)
            ),
            Error::LifetimeTooLong { lifetime, max } => write!(
                f,
                "token lifetime of {lifetime} s exceeds the maximum of {max} s"
            ),
            Error::ExpiresTooFar { expires, now, max } => write!(
                f,
                "token without \"issued\" expires at {}, more than the maximum lifetime of {max} s \
                 (plus the leeway) after now ({})",
                format_unix(*expires),
                format_unix(*now)
            ),
            Error::TooLarge { len } => write!(
                f,
                "token is too large: {len} bytes (the limit is {} bytes)",
                crate::layout::MAX_TOKEN_LEN
            ),
            Error::InvalidKeyring { line: 0, reason } => write!(f, "invalid key ring: {reason}"),
            Error::InvalidKeyring { line, reason } => {
                write!(f, "invalid key ring, line {line}: {reason}")
            }
            Error::InvalidJson(why) => write!(f, "invalid JSON: {why}"),
            Error::Io { path, message } => write!(f, "{path}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
