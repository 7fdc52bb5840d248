//! The leaf every other module may import: the format enum, the size limits and the aliases of
//! the cryptographic primitives. It imports nothing of the crate, so `format`, `keys` and
//! `error` can all use it without depending on one another.

use std::fmt;

use serde::Serialize;

pub(crate) type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;
pub(crate) type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Tokens longer than this many bytes are refused before any other work.
pub const MAX_TOKEN_LEN: usize = 8192;
/// Length of the v1 nonce (the initial AES-CTR counter block).
pub const NONCE_LEN: usize = 16;
/// Length of the v1 HMAC-SHA256 tag.
pub const TAG_LEN: usize = 32;
/// The smallest v1 body: nonce, one byte of ciphertext, tag.
pub const MIN_V1_BODY_LEN: usize = NONCE_LEN + 1 + TAG_LEN;

/// A token format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Web Call Server's `loginByToken` format: AES-128-CTR with a zero IV, no integrity.
    Legacy,
    /// The authenticated format: random nonce, HMAC-SHA256, key ids.
    V1,
}

impl Format {
    /// `"legacy"` or `"v1"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Format::Legacy => "legacy",
            Format::V1 => "v1",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
