//! The token formats: the one place that knows how a token is laid out and sealed.
//!
//! ```text
//! legacy: APP ":" hex( AES-128-CTR(key, iv = 0^16, xml) )
//! v1:     APP ":v1." KID "." hex( nonce[16] ‖ AES-128-CTR(enc_key, nonce, xml) ‖ tag[32] )
//!         tag = HMAC-SHA256(sign_key, ascii(APP ":v1." KID ".") ‖ nonce ‖ ciphertext)
//! ```
//!
//! `docs/token-format.md` is the full specification.

use aes::cipher::{KeyIvInit, StreamCipher};
use hmac::Mac;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::{is_valid_name, LegacyKey, V1Key};

use crate::layout::Aes128Ctr;
pub use crate::layout::{Format, MAX_TOKEN_LEN, MIN_V1_BODY_LEN, NONCE_LEN, TAG_LEN};

/// A token split into its parts and its body decoded from hex; nothing decrypted or checked
/// beyond syntax.
pub(crate) struct Envelope<'t> {
    pub(crate) format: Format,
    pub(crate) app: &'t str,
    pub(crate) kid: Option<&'t str>,
    /// Everything before the hex body: `APP:` or `APP:v1.KID.` (what the v1 tag covers).
    pub(crate) prefix: &'t str,
    /// The decoded body (zeroized: after decryption it holds the claims).
    pub(crate) body: Zeroizing<Vec<u8>>,
}

impl<'t> Envelope<'t> {
    /// Splits `token` (surrounding ASCII whitespace ignored) and decodes its body, refusing
    /// oversized tokens with `too_large` and anything not of the token grammar with `malformed`.
    pub(crate) fn parse(token: &'t str) -> Result<Envelope<'t>> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TooLarge { len: token.len() });
        }
        let token = token.trim_ascii();
        if token.is_empty() {
            return Err(Error::Malformed("the token is empty"));
        }
        let (app, rest) = token
            .split_once(':')
            .ok_or(Error::Malformed("no ':' after the application name"))?;
        if !is_valid_name(app) {
            return Err(Error::Malformed(
                "the application name must be 1 to 32 of A-Z a-z 0-9 _ -",
            ));
        }
        let (format, kid, body_hex) = match rest.strip_prefix("v1.") {
            Some(rest) => {
                let (kid, body) = rest.split_once('.').ok_or(Error::Malformed(
                    "a v1 token needs a key id: APP:v1.KID.HEX",
                ))?;
                if !is_valid_name(kid) {
                    return Err(Error::Malformed(
                        "the key id must be 1 to 32 of A-Z a-z 0-9 _ -",
                    ));
                }
                (Format::V1, Some(kid), body)
            }
            None => (Format::Legacy, None, rest),
        };
        if body_hex.is_empty() {
            return Err(Error::Malformed("the token has no body"));
        }
        if body_hex.len() % 2 != 0 {
            return Err(Error::Malformed("the body has an odd number of hex digits"));
        }
        // (A fold rather than `any`: without the early exit the compiler vectorises it.)
        let has_upper = |hex: &str| hex.bytes().fold(false, |up, b| up | b.is_ascii_uppercase());
        if format == Format::V1 && has_upper(body_hex) {
            // One token, one spelling: v1 is canonical, so no variant of a token's text can
            // pass as a different token.
            return Err(Error::Malformed("a v1 body must be lowercase hexadecimal"));
        }
        let mut body = Zeroizing::new(vec![0u8; body_hex.len() / 2]);
        hex::decode_to_slice(body_hex, &mut body)
            .map_err(|_| Error::Malformed("the body is not hexadecimal"))?;
        if format == Format::V1 && body.len() < MIN_V1_BODY_LEN {
            return Err(Error::Malformed(
                "a v1 body must hold a 16-byte nonce, at least 1 byte of claims and a 32-byte tag",
            ));
        }
        Ok(Envelope {
            format,
            app,
            kid,
            prefix: &token[..token.len() - body_hex.len()],
            body,
        })
    }

    /// Decrypts a legacy token in place. There is nothing to check: any key "succeeds".
    pub(crate) fn open_legacy(&mut self, key: &LegacyKey) -> &[u8] {
        Aes128Ctr::new(key.bytes().into(), &[0u8; 16].into()).apply_keystream(&mut self.body);
        &self.body
    }

    /// Checks the tag of a v1 token in constant time, then decrypts the claims in place.
    pub(crate) fn open_v1(&mut self, key: &V1Key) -> Result<&[u8]> {
        let body = &mut self.body;
        let len = body.len();
        let (nonce_and_ct, tag) = body.split_at(len - TAG_LEN);
        let mut mac = key.mac();
        mac.update(self.prefix.as_bytes());
        mac.update(nonce_and_ct);
        mac.verify_slice(tag).map_err(|_| Error::BadSignature)?;
        let (nonce, ct) = body[..len - TAG_LEN].split_at_mut(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = (&*nonce).try_into().expect("16 bytes");
        Aes128Ctr::new(key.enc_key().into(), &nonce.into()).apply_keystream(ct);
        Ok(&body[NONCE_LEN..len - TAG_LEN])
    }
}

/// Appends the lowercase hex of `bytes` to `out`.
fn push_hex(out: &mut String, bytes: &[u8]) {
    let start = out.len();
    let mut buf = std::mem::take(out).into_bytes();
    buf.resize(start + bytes.len() * 2, 0);
    hex::encode_to_slice(bytes, &mut buf[start..]).expect("sized to fit");
    *out = String::from_utf8(buf).expect("hex is ASCII");
}

/// Seals `xml` as a legacy token: exactly what
/// `openssl enc -aes-128-ctr -nosalt -K KEY -iv 0…0 | xxd -p` produces, prefixed by `APP:`.
///
/// Low level: the bytes are sealed as given, unchecked. Use [`Issuer`](crate::Issuer) to make
/// tokens from [`Claims`](crate::Claims); this is for reproducing test vectors and for tools.
///
/// ```
/// use siptoken::{format::seal_legacy, LegacyKey};
/// let key = LegacyKey::from_bytes(&[0x82, 0x63, 0xd5, 0x35]).unwrap();
/// assert_eq!(seal_legacy("CRM", &key, b"<root/>"), "CRM:b8bd72ea5a1540");
/// ```
pub fn seal_legacy(app: &str, key: &LegacyKey, xml: &[u8]) -> String {
    let mut ct = xml.to_vec();
    Aes128Ctr::new(key.bytes().into(), &[0u8; 16].into()).apply_keystream(&mut ct);
    let mut token = String::with_capacity(app.len() + 1 + 2 * ct.len());
    token.push_str(app);
    token.push(':');
    push_hex(&mut token, &ct);
    token
}

/// Seals `xml` as a v1 token under `key` (`app.kid`) with the given nonce.
///
/// Low level: the bytes are sealed as given, unchecked, and the nonce is the caller's. A nonce
/// must never repeat under one key; [`Issuer`](crate::Issuer) draws a fresh one for every token.
pub fn seal_v1(app: &str, kid: &str, key: &V1Key, nonce: &[u8; NONCE_LEN], xml: &[u8]) -> String {
    let mut body = Vec::with_capacity(NONCE_LEN + xml.len() + TAG_LEN);
    body.extend_from_slice(nonce);
    body.extend_from_slice(xml);
    Aes128Ctr::new(key.enc_key().into(), nonce.into()).apply_keystream(&mut body[NONCE_LEN..]);
    let mut token = String::with_capacity(app.len() + kid.len() + 5 + 2 * (body.len() + TAG_LEN));
    token.push_str(app);
    token.push_str(":v1.");
    token.push_str(kid);
    token.push('.');
    let mut mac = key.mac();
    mac.update(token.as_bytes());
    mac.update(&body);
    body.extend_from_slice(&mac.finalize().into_bytes());
    push_hex(&mut token, &body);
    token
}

/// What can be read from a token without any key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// The format.
    pub format: Format,
    /// The application name.
    pub app: String,
    /// The key id (v1 only).
    pub kid: Option<String>,
    /// Length of the token text, in bytes (surrounding whitespace excluded).
    pub token_len: usize,
    /// Length of the decoded body, in bytes.
    pub body_len: usize,
    /// Length of the encrypted claims XML, in bytes.
    pub claims_len: usize,
    /// The v1 nonce, as hex.
    pub nonce: Option<String>,
}

/// Reads a token's format, application, key id and sizes without any key (nothing is
/// decrypted or checked beyond syntax).
///
/// ```
/// let t = "CRM:v1.k2.559b4dfa430a39941fbb2dd071c146f6cf143b2e9db69199d624da74bb96cbdab8ff203e2a0897513db82bfa0ab782ee81d3";
/// let info = siptoken::inspect(t).unwrap();
/// assert_eq!((info.format, info.app.as_str(), info.kid.as_deref()), (siptoken::Format::V1, "CRM", Some("k2")));
/// assert_eq!(info.claims_len, info.body_len - 48);
/// ```
pub fn inspect(token: &str) -> Result<TokenInfo> {
    let env = Envelope::parse(token)?;
    let body_len = env.body.len();
    let (claims_len, nonce) = match env.format {
        Format::Legacy => (body_len, None),
        Format::V1 => (
            body_len - NONCE_LEN - TAG_LEN,
            Some(hex::encode(&env.body[..NONCE_LEN])),
        ),
    };
    Ok(TokenInfo {
        format: env.format,
        app: env.app.to_owned(),
        kid: env.kid.map(str::to_owned),
        token_len: env.prefix.len() + 2 * body_len,
        body_len,
        claims_len,
        nonce,
    })
}
