//! Keys and key rings: the one place that parses, holds and looks up key material.
//!
//! A key ring is text in the Web Call Server configuration syntax, one `NAME=HEX` per line:
//!
//! ```text
//! # legacy key for the application CRM (1 to 16 bytes, zero-padded to 16 like `openssl -K`)
//! CRM=8263D535FFFFFFFF7B0F60
//! # v1 keys (exactly 32 bytes) for CRM, key ids k1 and k2; the last one listed issues
//! CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2
//! CRM.k2=fe162ce2b39d1cd78bbb0f2bcd59ed2aedcbe4b0bf4e8675fd84581dd1eb3a35
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Length of a legacy key after padding (AES-128).
pub const LEGACY_KEY_LEN: usize = 16;
/// Length of a v1 key: 16 bytes of HMAC key, then 16 bytes of AES key.
pub const V1_KEY_LEN: usize = 32;

/// Whether `name` is a valid application name or key id: `[A-Za-z0-9_-]{1,32}`.
///
/// ```
/// assert!(siptoken::is_valid_name("CRM_2-a"));
/// assert!(!siptoken::is_valid_name("C R M"));
/// assert!(!siptoken::is_valid_name(""));
/// ```
pub fn is_valid_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A legacy (Web Call Server) AES-128 key, zero-padded to 16 bytes.
#[derive(Clone)]
pub struct LegacyKey([u8; LEGACY_KEY_LEN]);

crate::secret::secret_newtype!(LegacyKey);

impl LegacyKey {
    /// Makes a key from 1 to 16 bytes, right-padding with zero bytes as `openssl enc -K` does.
    pub fn from_bytes(bytes: &[u8]) -> Result<LegacyKey> {
        if bytes.is_empty() || bytes.len() > LEGACY_KEY_LEN {
            return Err(Error::InvalidKeyring {
                line: 0,
                reason: format!(
                    "a legacy key must be 1 to 16 bytes (got {} bytes)",
                    bytes.len()
                ),
            });
        }
        let mut key = [0u8; LEGACY_KEY_LEN];
        key[..bytes.len()].copy_from_slice(bytes);
        Ok(LegacyKey(key))
    }

    pub(crate) fn bytes(&self) -> &[u8; LEGACY_KEY_LEN] {
        &self.0
    }
}

/// A v1 key: `sign_key = key[0..16]` for HMAC-SHA256, `enc_key = key[16..32]` for AES-128-CTR.
///
/// Holds the HMAC state already keyed with `sign_key`, so that each token costs only the hash of
/// its own bytes. Key bytes and the keyed state are zeroized on drop.
#[derive(Clone)]
pub struct V1Key {
    key: Zeroizing<[u8; V1_KEY_LEN]>,
    mac: crate::layout::HmacSha256,
}

impl V1Key {
    /// Makes a key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<V1Key> {
        let key: [u8; V1_KEY_LEN] = bytes.try_into().map_err(|_| Error::InvalidKeyring {
            line: 0,
            reason: format!(
                "a v1 key must be exactly 32 bytes (got {} bytes)",
                bytes.len()
            ),
        })?;
        Ok(V1Key::new(Zeroizing::new(key)))
    }

    fn new(key: Zeroizing<[u8; V1_KEY_LEN]>) -> V1Key {
        use hmac::KeyInit;
        let mac = crate::layout::HmacSha256::new_from_slice(&key[..16]).expect("any key length");
        V1Key { key, mac }
    }

    /// A fresh key from the operating system's random generator.
    pub fn random() -> V1Key {
        V1Key::new(Zeroizing::new(crate::random::bytes()))
    }

    /// A copy of the HMAC state keyed with `sign_key`.
    pub(crate) fn mac(&self) -> crate::layout::HmacSha256 {
        self.mac.clone()
    }

    pub(crate) fn enc_key(&self) -> &[u8; 16] {
        self.key[16..].try_into().expect("16 bytes")
    }

    /// The key as 64 lowercase hex digits, for writing a key ring line.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(*self.key))
    }
}

impl fmt::Debug for V1Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("V1Key(<redacted>)")
    }
}

/// The keys of one application.
#[derive(Clone, Default)]
struct AppKeys {
    legacy: Option<LegacyKey>,
    /// In the order listed; the last one issues.
    v1: Vec<(String, V1Key)>,
}

/// Per-application keys: at most one legacy key and any number of v1 keys (by key id) each.
///
/// Immutable once parsed, cheap to share between threads. `Debug` lists applications and key
/// ids, never key material.
///
/// ```
/// use siptoken::KeyRing;
/// let ring: KeyRing = "
///     ## comment
///     CRM=8263D535FFFFFFFF7B0F60
///     CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2
///     CRM.k2=fe162ce2b39d1cd78bbb0f2bcd59ed2aedcbe4b0bf4e8675fd84581dd1eb3a35
/// ".parse()?;
/// assert_eq!(ring.current_kid("CRM"), Some("k2"));
/// assert!(ring.has_legacy_key("CRM"));
///
/// let err = "CRM.k1=00".parse::<KeyRing>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid key ring, line 1: a v1 key must be exactly 32 bytes (got 1 bytes)");
/// # Ok::<(), siptoken::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct KeyRing {
    apps: HashMap<String, AppKeys>,
}

impl KeyRing {
    /// An empty key ring (add keys with [`KeyRing::add_legacy`] and [`KeyRing::add_v1`]).
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Reads and parses a key ring file.
    pub fn open(path: impl AsRef<Path>) -> Result<KeyRing> {
        let path = path.as_ref();
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.display().to_string(),
            message: io_message(&e),
        })?);
        text.parse()
    }

    /// Adds the legacy key of `app`. Fails if `app` is not a valid name or already has one.
    pub fn add_legacy(&mut self, app: &str, key: LegacyKey) -> Result<()> {
        check_name("application name", app)?;
        let entry = self.apps.entry(app.to_owned()).or_default();
        if entry.legacy.is_some() {
            return Err(keyring_error(format!(
                "application \"{app}\" already has a legacy key"
            )));
        }
        entry.legacy = Some(key);
        Ok(())
    }

    /// Adds a v1 key `app.kid`; the key added last issues new tokens for `app`.
    pub fn add_v1(&mut self, app: &str, kid: &str, key: V1Key) -> Result<()> {
        check_name("application name", app)?;
        check_name("key id", kid)?;
        let entry = self.apps.entry(app.to_owned()).or_default();
        if entry.v1.iter().any(|(k, _)| k == kid) {
            return Err(keyring_error(format!(
                "key \"{app}.{kid}\" is listed twice"
            )));
        }
        entry.v1.push((kid.to_owned(), key));
        Ok(())
    }

    /// Whether the ring has any key for `app`.
    pub fn has_app(&self, app: &str) -> bool {
        self.apps.contains_key(app)
    }

    /// Whether `app` has a legacy key.
    pub fn has_legacy_key(&self, app: &str) -> bool {
        self.legacy_key(app).is_ok()
    }

    /// The key id that issues v1 tokens for `app`: the last one listed.
    pub fn current_kid(&self, app: &str) -> Option<&str> {
        self.apps.get(app)?.v1.last().map(|(kid, _)| kid.as_str())
    }

    /// The key ids of `app`, in the order listed.
    pub fn kids(&self, app: &str) -> impl Iterator<Item = &str> {
        self.apps
            .get(app)
            .into_iter()
            .flat_map(|keys| keys.v1.iter().map(|(kid, _)| kid.as_str()))
    }

    /// The application names, sorted.
    pub fn apps(&self) -> Vec<&str> {
        let mut apps: Vec<&str> = self.apps.keys().map(String::as_str).collect();
        apps.sort_unstable();
        apps
    }

    fn app_keys(&self, app: &str) -> Result<&AppKeys> {
        self.apps.get(app).ok_or_else(|| Error::UnknownApp {
            app: app.to_owned(),
        })
    }

    /// The legacy key of `app`, or `unknown_app` / `unknown_key`.
    pub(crate) fn legacy_key(&self, app: &str) -> Result<&LegacyKey> {
        self.app_keys(app)?
            .legacy
            .as_ref()
            .ok_or_else(|| Error::UnknownKey {
                app: app.to_owned(),
                format: crate::Format::Legacy,
                kid: None,
            })
    }

    /// The v1 key `app.kid`, or the issuing one (the last listed) when `kid` is `None`; fails
    /// with `unknown_app` / `unknown_key`.
    pub(crate) fn v1_key(&self, app: &str, kid: Option<&str>) -> Result<(&str, &V1Key)> {
        let keys = self.app_keys(app)?;
        let found = match kid {
            Some(kid) => keys.v1.iter().find(|(k, _)| k == kid),
            None => keys.v1.last(),
        };
        found
            .map(|(k, key)| (k.as_str(), key))
            .ok_or_else(|| Error::UnknownKey {
                app: app.to_owned(),
                format: crate::Format::V1,
                kid: kid.map(str::to_owned),
            })
    }
}

fn keyring_error(reason: String) -> Error {
    Error::InvalidKeyring { line: 0, reason }
}

fn check_name(what: &str, name: &str) -> Result<()> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(keyring_error(format!(
            "invalid {what}: use 1 to 32 of A-Z a-z 0-9 _ -"
        )))
    }
}

/// An I/O error's description without the "(os error N)" noise.
pub(crate) fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

impl FromStr for KeyRing {
    type Err = Error;

    /// Parses key ring text. Errors name the line and never quote key material.
    fn from_str(text: &str) -> Result<KeyRing> {
        let mut ring = KeyRing::new();
        for (index, line) in text.lines().enumerate() {
            let at_line = |e: Error| match e {
                Error::InvalidKeyring { reason, .. } => Error::InvalidKeyring {
                    line: index + 1,
                    reason,
                },
                other => other,
            };
            parse_line(&mut ring, line).map_err(at_line)?;
        }
        Ok(ring)
    }
}

fn parse_line(ring: &mut KeyRing, line: &str) -> Result<()> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(());
    }
    let (name, value) = line
        .split_once('=')
        .ok_or_else(|| keyring_error("expected NAME=HEX".into()))?;
    let (name, value) = (name.trim(), value.trim());
    if value.len() % 2 != 0 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(keyring_error(
            "the key is not an even number of hex digits".into(),
        ));
    }
    let bytes = Zeroizing::new(hex::decode(value).expect("checked to be hex"));
    match name.split_once('.') {
        None => ring.add_legacy(name, LegacyKey::from_bytes(&bytes)?),
        Some((app, kid)) => ring.add_v1(app, kid, V1Key::from_bytes(&bytes)?),
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for app in self.apps() {
            let keys = &self.apps[app];
            let kids: Vec<&str> = keys.v1.iter().map(|(k, _)| k.as_str()).collect();
            map.entry(
                &app,
                &format_args!("legacy: {}, v1: {:?}", keys.legacy.is_some(), kids),
            );
        }
        map.finish()
    }
}

/// A warning when a key ring file can be read by its group or by others, `None` when it is
/// private (or on platforms without Unix permissions).
pub fn permission_warning(path: impl AsRef<Path>) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = path.as_ref();
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        if mode & 0o044 != 0 {
            return Some(format!(
                "key ring {} is readable by {} (mode {:o}); restrict it with: chmod 600 {}",
                path.display(),
                if mode & 0o004 != 0 {
                    "others"
                } else {
                    "its group"
                },
                mode & 0o777,
                path.display()
            ));
        }
        None
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K32: &str = "6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2";

    #[test]
    fn parses_comments_blank_lines_and_whitespace() {
        let text = format!("\n# c\n  CRM = 8263D535FFFFFFFF7B0F60  \n\tCRM.k1={K32}\r\n");
        let ring: KeyRing = text.parse().unwrap();
        assert_eq!(ring.legacy_key("CRM").unwrap().bytes()[11..], [0u8; 5]);
        assert_eq!(ring.v1_key("CRM", None).unwrap().0, "k1");
        assert_eq!(ring.apps(), vec!["CRM"]);
    }

    #[test]
    fn errors_name_the_line_and_hide_the_key() {
        let secret = "8263d535ffffffff7b0f60aabbccddeeff";
        let cases = [
            (format!("# ok\nCRM={secret}"), 2, "1 to 16 bytes"),
            (format!("CRM.k1={secret}"), 1, "exactly 32 bytes"),
            ("CRM=xyz".to_owned(), 1, "hex"),
            ("CRM=abc".to_owned(), 1, "hex"),
            ("CRM=".to_owned(), 1, "1 to 16 bytes"),
            ("just text".to_owned(), 1, "NAME=HEX"),
            ("C R M=00".to_owned(), 1, "application name"),
            (format!("CRM.k 1={K32}"), 1, "key id"),
            (format!("CRM.a.b={K32}"), 1, "key id"),
            (format!("CRM.k1={K32}\nCRM.k1={K32}"), 2, "twice"),
            ("CRM=00\nCRM=01".to_owned(), 2, "already has"),
        ];
        for (text, line, needle) in cases {
            let err = text.parse::<KeyRing>().unwrap_err();
            let msg = err.to_string();
            assert!(
                matches!(err, Error::InvalidKeyring { line: l, .. } if l == line),
                "{text:?}: {msg}"
            );
            assert!(msg.contains(needle), "{text:?}: {msg}");
            assert!(!msg.contains(secret) && !msg.contains(K32), "{msg}");
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ring: KeyRing = format!("CRM={}\nCRM.k1={K32}", &K32[..32]).parse().unwrap();
        let dbg = format!("{ring:?}");
        assert!(dbg.contains("k1") && !dbg.contains(&K32[..32]) && !dbg.contains(&K32[32..]));
    }
}
