//! Issuing tokens.

use std::time::Duration;

use crate::claims::{Claims, TokenId, MAX_UNIX_TIME};
use crate::error::{Error, Result};
use crate::format::{self, Format, MAX_TOKEN_LEN, NONCE_LEN};
use crate::keys::KeyRing;
use crate::verify::{Clock, ClockSetting};

/// The time-to-live of a token whose claims set no `expires`: 5 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// Makes tokens with the keys of a [`KeyRing`]: v1 by default, legacy on request.
///
/// For v1, `issued` is set to the current time and `id` to 16 random bytes unless the claims
/// set them; for both formats `expires` is `now + ttl` unless the claims set it.
///
/// ```
/// use siptoken::{Claims, Issuer, KeyRing};
/// let ring: KeyRing = "CRM=8263D535FFFFFFFF7B0F60".parse()?;
/// let claims = Claims::builder("crm1", "s3cret", "sipnet.ru").expires(1764120300).build()?;
/// // Legacy tokens have no random parts: the same claims always give the same token, the one
/// // `openssl enc -aes-128-ctr -nosalt -K 8263D535FFFFFFFF7B0F60 -iv 0 | xxd -p` gives for the XML.
/// let token = Issuer::new(&ring).legacy().issue("CRM", &claims)?;
/// assert_eq!(
///     token,
///     "CRM:7990a68e4d70e6553cfc54de1d1ebfe5c54299d896432e4f09f1630f4a2d1a6c8c3f8957d45cf7f8f065cd42c6addeeddd2169b6ee2d32e6b7759813661c25f1cbe1f815fa7d6fbc1fe0b6ff0c32",
/// );
/// # Ok::<(), siptoken::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Issuer<'k> {
    ring: &'k KeyRing,
    format: Format,
    kid: Option<String>,
    ttl: Duration,
    now: Option<i64>,
    clock: ClockSetting,
}

impl<'k> Issuer<'k> {
    /// An issuer of v1 tokens with the newest key of each application and a 5-minute TTL.
    pub fn new(ring: &'k KeyRing) -> Issuer<'k> {
        Issuer {
            ring,
            format: Format::V1,
            kid: None,
            ttl: DEFAULT_TTL,
            now: None,
            clock: ClockSetting::default(),
        }
    }

    /// Issue legacy (Web Call Server) tokens instead of v1.
    #[must_use]
    pub fn legacy(self) -> Self {
        self.format(Format::Legacy)
    }

    /// Issue tokens of `format`.
    #[must_use]
    pub fn format(mut self, format: Format) -> Self {
        self.format = format;
        self
    }

    /// Sign v1 tokens with key id `kid` instead of the newest key of the application.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Time-to-live of tokens whose claims set no `expires` (default 5 minutes).
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Pins the clock to `unix_seconds`.
    #[must_use]
    pub fn at(mut self, unix_seconds: i64) -> Self {
        self.now = Some(unix_seconds);
        self
    }

    /// Reads the time from `clock` (unless pinned with [`Issuer::at`]).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock.set(clock);
        self
    }

    fn now(&self) -> i64 {
        self.clock.now(self.now)
    }

    /// Issues a token for `app` carrying `claims`.
    ///
    /// Fails with `unknown_app` / `unknown_key` when the ring has no suitable key,
    /// `invalid_field` when the resulting times are out of range or `expires` precedes
    /// `issued`, and `too_large` when the token would exceed [`MAX_TOKEN_LEN`].
    pub fn issue(&self, app: &str, claims: &Claims) -> Result<String> {
        self.issue_with_nonce(app, claims, crate::random::bytes())
    }

    /// [`Issuer::issue`] with a caller-chosen v1 nonce. Only for reproducing test vectors: a
    /// nonce must never be used twice with the same key.
    #[doc(hidden)]
    pub fn issue_with_nonce(
        &self,
        app: &str,
        claims: &Claims,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String> {
        let now = self.now();
        let ttl = i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX);
        let expires = claims.expires().unwrap_or(now.saturating_add(ttl));
        if !(0..=MAX_UNIX_TIME).contains(&expires) {
            return Err(Error::invalid_field(
                "expires",
                format!("must be Unix seconds from 0 to {MAX_UNIX_TIME}"),
            ));
        }
        let token = match self.format {
            Format::Legacy => {
                let key = self.ring.legacy_key(app)?;
                let xml = claims.to_xml_stamped(Some(expires), claims.issued(), claims.id());
                format::seal_legacy(app, key, xml.as_bytes())
            }
            Format::V1 => {
                let (kid, key) = self.ring.v1_key(app, self.kid.as_deref())?;
                let issued = claims.issued().unwrap_or(now);
                if expires < issued {
                    return Err(Error::invalid_field(
                        "expires",
                        "is earlier than \"issued\"",
                    ));
                }
                let id = claims.id().unwrap_or_else(TokenId::random);
                let xml = claims.to_xml_stamped(Some(expires), Some(issued), Some(id));
                format::seal_v1(app, kid, key, &nonce, xml.as_bytes())
            }
        };
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::TooLarge { len: token.len() });
        }
        Ok(token)
    }
}
