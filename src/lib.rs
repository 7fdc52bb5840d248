//! # siptoken
//!
//! Expiring, encrypted SIP-credential tokens for browser phones.
//!
//! A CRM backend puts an operator's SIP account into a short-lived token with a per-application
//! key; the web page hands the opaque token to a WebRTC–SIP gateway; only the gateway holds the
//! key, so the SIP password never reaches the browser.
//!
//! Two formats (specified in `docs/token-format.md`):
//! - **v1** (the default): AES-128-CTR with a random nonce, HMAC-SHA256 over everything, key
//!   ids for rotation, a random `id` for single use.
//! - **legacy**: Flashphoner Web Call Server's `loginByToken` format, byte for byte: AES-128-CTR
//!   with a zero IV and no integrity check. Accepted only when asked for.
//!
//! ```
//! use siptoken::{Claims, Issuer, KeyRing, Verifier};
//!
//! let ring: KeyRing = "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2".parse()?;
//! let claims = Claims::builder("crm1", "s3cr<t", "sip.example.org")
//!     .visible_name("Operator 1")
//!     .build()?;
//! let token = Issuer::new(&ring).issue("CRM", &claims)?;
//! assert!(token.starts_with("CRM:v1.k1."));
//!
//! let verified = Verifier::new(&ring).verify(&token)?;
//! assert_eq!(verified.claims().password().expose(), "s3cr<t");
//! # Ok::<(), siptoken::Error>(())
//! ```
//!
//! Module map: [`keys`] (key rings), [`claims`] (what a token says), `xml` (the claims XML),
//! [`format`] (token layout and sealing), [`issue`](mod@issue) and [`verify`](mod@verify), and
//! [`json`] (the JSON shapes shared by the CLI, the C ABI and the WASM package).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod claims;
mod error;
pub mod format;
pub mod issue;
pub mod json;
pub mod keys;
mod layout;
mod random;
mod secret;
pub mod verify;
mod xml;

pub use claims::{Claims, ClaimsBuilder, Password, TokenId, Transport};
pub use error::{Error, ErrorCode, Result};
pub use format::{inspect, Format, TokenInfo, MAX_TOKEN_LEN};
pub use issue::{Issuer, DEFAULT_TTL};
pub use keys::{is_valid_name, permission_warning, KeyRing, LegacyKey, V1Key};
pub use verify::{Clock, Verified, Verifier, VerifyOptions};

/// This library's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
