//! Verifying tokens: format checks, key lookup, decryption, claims and time checks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::claims::{Claims, TokenId};
use crate::error::{Error, Result};
use crate::format::{Envelope, Format};
use crate::keys::KeyRing;

/// Verifier settings. The defaults are the safe ones: legacy tokens refused, 30 s of clock
/// leeway, at most 24 h between `issued` and `expires` (without `issued`: between now and
/// `expires`, plus the leeway), legacy tokens must carry `expires`.
///
/// Deserializes from the JSON options of the C ABI and the WASM package (every field optional,
/// unknown fields refused):
///
/// ```
/// let o: siptoken::VerifyOptions =
///     serde_json::from_str(r#"{"allow_legacy": true, "now": 1764120000}"#).unwrap();
/// assert!(o.allow_legacy);
/// assert_eq!(o.leeway_seconds, 30);
/// assert!(serde_json::from_str::<siptoken::VerifyOptions>(r#"{"alow_legacy": true}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyOptions {
    /// Accept legacy (unauthenticated) tokens. Default `false`.
    pub allow_legacy: bool,
    /// Clock leeway applied to `expires` and `issued`, seconds. Default 30.
    pub leeway_seconds: u64,
    /// Largest accepted `expires - issued`, seconds; for tokens without `issued` (legacy),
    /// `expires` may be at most this plus the leeway after now. Default 86400 (24 h).
    pub max_lifetime_seconds: u64,
    /// Refuse legacy tokens without `expires` (`missing_field`). Default `true`.
    pub require_legacy_expiry: bool,
    /// Pin the clock to these Unix seconds (replaying old tokens, tests). Default: the system
    /// clock.
    pub now: Option<i64>,
}

impl Default for VerifyOptions {
    fn default() -> VerifyOptions {
        VerifyOptions {
            allow_legacy: false,
            leeway_seconds: 30,
            max_lifetime_seconds: 24 * 3600,
            require_legacy_expiry: true,
            now: None,
        }
    }
}

/// The largest clock leeway the CLI (`--leeway`) and the gateway (`leeway_seconds`) accept in
/// their settings: 5 minutes. The library takes any value and saturates its arithmetic.
pub const LEEWAY_LIMIT_SECONDS: u64 = 300;

/// The largest maximum lifetime the CLI (`--max-lifetime`) and the gateway
/// (`max_lifetime_seconds`) accept in their settings: 7 days. The library takes any value and
/// saturates its arithmetic.
pub const LIFETIME_LIMIT_SECONDS: u64 = 7 * 24 * 3600;

/// A source of the current time in Unix seconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The current Unix time from the system clock: the default clock of [`Verifier`] and
/// [`Issuer`](crate::Issuer).
///
/// On `wasm32-unknown-unknown` there is no system clock (the standard library panics): there,
/// always give a clock ([`Verifier::clock`], [`Verifier::at`]), as the WASM package does with
/// JavaScript's `Date.now()`.
pub fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The clock an [`Issuer`](crate::Issuer) or a [`Verifier`] reads: the system's unless one was
/// given. `Debug` shows `None` or `Some("custom")`, as a closure has nothing else to show.
#[derive(Clone, Default)]
pub(crate) struct ClockSetting(Option<Clock>);

impl ClockSetting {
    /// Reads the time from `clock` from now on.
    pub(crate) fn set(&mut self, clock: Clock) {
        self.0 = Some(clock);
    }

    /// `pinned` if the time is pinned, else the given clock's time, else the system's.
    pub(crate) fn now(&self, pinned: Option<i64>) -> i64 {
        match (pinned, &self.0) {
            (Some(now), _) => now,
            (None, Some(clock)) => clock(),
            (None, None) => system_now(),
        }
    }
}

impl fmt::Debug for ClockSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.as_ref().map(|_| "custom").fmt(f)
    }
}

/// Checks tokens against a [`KeyRing`].
///
/// ```
/// use siptoken::{Claims, Issuer, KeyRing, Verifier, ErrorCode};
/// let ring: KeyRing = "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2".parse()?;
/// let claims = Claims::builder("crm1", "s3cret", "sip.example.org").build()?;
/// let token = Issuer::new(&ring).at(1_764_120_000).issue("CRM", &claims)?;
///
/// let verified = Verifier::new(&ring).at(1_764_120_100).verify(&token)?;
/// assert_eq!(verified.claims().login(), "crm1");
/// assert_eq!(verified.kid(), Some("k1"));
///
/// let late = Verifier::new(&ring).at(1_764_120_000 + 300 + 31).verify(&token).unwrap_err();
/// assert_eq!(late.code(), ErrorCode::Expired);
/// # Ok::<(), siptoken::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Verifier<'k> {
    ring: &'k KeyRing,
    options: VerifyOptions,
    clock: ClockSetting,
}

impl<'k> Verifier<'k> {
    /// A verifier with the default [`VerifyOptions`].
    pub fn new(ring: &'k KeyRing) -> Verifier<'k> {
        Verifier::with_options(ring, VerifyOptions::default())
    }

    /// A verifier with the given options.
    pub fn with_options(ring: &'k KeyRing, options: VerifyOptions) -> Verifier<'k> {
        Verifier {
            ring,
            options,
            clock: ClockSetting::default(),
        }
    }

    /// Accept legacy tokens (off by default).
    #[must_use]
    pub fn allow_legacy(mut self, allow: bool) -> Self {
        self.options.allow_legacy = allow;
        self
    }

    /// Clock leeway for `expires` and `issued` (default 30 s).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.options.leeway_seconds = leeway.as_secs();
        self
    }

    /// Largest accepted `expires - issued` (default 24 h).
    #[must_use]
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.options.max_lifetime_seconds = max.as_secs();
        self
    }

    /// Whether legacy tokens must carry `expires` (default true).
    #[must_use]
    pub fn require_legacy_expiry(mut self, require: bool) -> Self {
        self.options.require_legacy_expiry = require;
        self
    }

    /// Pins the clock to `unix_seconds`.
    #[must_use]
    pub fn at(mut self, unix_seconds: i64) -> Self {
        self.options.now = Some(unix_seconds);
        self
    }

    /// Reads the time from `clock` (unless pinned with [`Verifier::at`]).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock.set(clock);
        self
    }

    /// The options in force.
    pub fn options(&self) -> &VerifyOptions {
        &self.options
    }

    fn now(&self) -> i64 {
        self.clock.now(self.options.now)
    }

    /// Verifies `token` (surrounding whitespace ignored) and returns its claims.
    ///
    /// The checks run in this order, and the first failure is returned: size (`too_large`),
    /// syntax (`malformed`), legacy acceptance (`legacy_disabled`), key lookup (`unknown_app`,
    /// `unknown_key`), v1 tag in constant time before any decryption (`bad_signature`), XML
    /// (`invalid_xml`), claims (`missing_field`, `invalid_field`), then time (`expired`,
    /// `not_yet_valid`, `lifetime_too_long`: `expires - issued` over the maximum lifetime, or,
    /// without `issued`, `expires` more than the maximum lifetime plus the leeway after now).
    pub fn verify(&self, token: &str) -> Result<Verified> {
        let mut env = Envelope::parse(token)?;
        if env.format == Format::Legacy && !self.options.allow_legacy {
            return Err(Error::LegacyDisabled);
        }
        let xml = match env.format {
            Format::Legacy => {
                let key = self.ring.legacy_key(env.app)?;
                env.open_legacy(key)
            }
            Format::V1 => env.open_v1(self.ring.v1_key(env.app, env.kid)?.1)?,
        };
        let claims = Claims::from_xml(xml)?;
        self.check_claims(env.format, &claims)?;
        let replay_key = match (env.format, claims.id()) {
            (Format::V1, Some(id)) => id,
            (Format::V1, None) => return Err(Error::MissingField("id")),
            (Format::Legacy, _) => legacy_account_key(env.app, &claims),
        };
        Ok(Verified {
            format: env.format,
            app: env.app.to_owned(),
            kid: env.kid.map(str::to_owned),
            replay_key,
            claims,
        })
    }

    fn check_claims(&self, format: Format, claims: &Claims) -> Result<()> {
        let expires = match (format, claims.expires()) {
            (_, Some(expires)) => Some(expires),
            (Format::V1, None) => return Err(Error::MissingField("expires")),
            (Format::Legacy, None) if self.options.require_legacy_expiry => {
                return Err(Error::MissingField("expires"))
            }
            (Format::Legacy, None) => None,
        };
        if format == Format::V1 {
            if claims.issued().is_none() {
                return Err(Error::MissingField("issued"));
            }
            if claims.id().is_none() {
                return Err(Error::MissingField("id"));
            }
        }
        let now = self.now();
        // Options are u64 (JSON, command lines, config files): saturate, never wrap.
        let leeway = saturating_i64(self.options.leeway_seconds);
        let max = self.options.max_lifetime_seconds;
        if let Some(expires) = expires {
            if now > expires.saturating_add(leeway) {
                return Err(Error::Expired { expires, now });
            }
        }
        match (claims.issued(), expires) {
            (Some(issued), _) if issued > now.saturating_add(leeway) => {
                Err(Error::NotYetValid { issued, now })
            }
            (Some(issued), Some(expires)) => {
                // Claims never hold expires < issued (`invalid_field`), so this is not negative.
                let lifetime = expires.saturating_sub(issued);
                if u64::try_from(lifetime).is_ok_and(|l| l > max) {
                    return Err(Error::LifetimeTooLong { lifetime, max });
                }
                Ok(())
            }
            // No `issued` (legacy tokens): the lifetime is measured from the verifier's clock,
            // or a token (forged or bit-flipped) could be valid until the year 9999.
            (None, Some(expires)) => {
                let latest = now
                    .saturating_add(saturating_i64(max))
                    .saturating_add(leeway);
                if expires > latest {
                    return Err(Error::ExpiresTooFar { expires, now, max });
                }
                Ok(())
            }
            (_, None) => Ok(()),
        }
    }
}

/// `value` as i64, `i64::MAX` when larger.
fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The single-use key of a legacy token: the first 16 bytes of SHA-256 over a label and the
/// account it logs in — application, login, domain and authentication name, ASCII letters in
/// lower case, the domain without one trailing dot — each length-prefixed (4 bytes, big
/// endian). `docs/token-format.md` (section 6) specifies it for other implementations.
///
/// A legacy token has no integrity: its layout (whitespace, quotes, attribute order) and any
/// value can be changed without the key. Keying on the decoded claims makes format-only
/// variants collide; keying on the account alone makes every value flip that keeps the account
/// (another `expires`, `id`, display name, proxy) collide as well.
fn legacy_account_key(app: &str, claims: &Claims) -> TokenId {
    fn field(hash: &mut Sha256, value: &[u8]) {
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        hash.update(len.to_be_bytes());
        hash.update(value);
    }
    let domain = claims.domain().to_ascii_lowercase();
    let domain = domain.strip_suffix('.').unwrap_or(&domain);
    let mut hash = Sha256::new();
    hash.update(b"siptoken legacy account\0");
    field(&mut hash, app.as_bytes());
    field(&mut hash, claims.login().to_ascii_lowercase().as_bytes());
    field(&mut hash, domain.as_bytes());
    field(
        &mut hash,
        claims.auth_name().to_ascii_lowercase().as_bytes(),
    );
    let digest = hash.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    TokenId(key)
}

/// A token that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    format: Format,
    app: String,
    kid: Option<String>,
    replay_key: TokenId,
    claims: Claims,
}

impl Verified {
    /// The token's format.
    pub fn format(&self) -> Format {
        self.format
    }
    /// The application the token was issued for.
    pub fn app(&self) -> &str {
        &self.app
    }
    /// The key id (v1 only).
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
    /// The claims.
    pub fn claims(&self) -> &Claims {
        &self.claims
    }
    /// Consumes the result, returning the claims.
    pub fn into_claims(self) -> Claims {
        self.claims
    }
    /// The key under which a single-use store remembers this token until it expires.
    ///
    /// - v1: the token's `id` (authenticated, so no other token can carry it).
    /// - legacy: a hash of the account the token logs in (application, login, domain,
    ///   authentication name; see `docs/token-format.md`, section 6). Anyone can rewrite a
    ///   legacy token without the key — its whitespace, quotes, expiry, even its `id` — so the
    ///   account is the only thing worth keying on: while one legacy token of an account is
    ///   remembered, no other legacy token of that account gets in.
    ///
    /// ```
    /// use siptoken::{Claims, Issuer, KeyRing, Verifier};
    /// let ring: KeyRing = "CRM=8263D535FFFFFFFF7B0F60".parse()?;
    /// let claims = |expires| Claims::builder("crm1", "pw", "sip.example.org").expires(expires).build();
    /// let issuer = Issuer::new(&ring).legacy();
    /// let (a, b) = (issuer.issue("CRM", &claims(1764120300)?)?, issuer.issue("CRM", &claims(1764120200)?)?);
    /// let verifier = Verifier::new(&ring).allow_legacy(true).at(1764120000);
    /// assert_ne!(a, b);
    /// assert_eq!(verifier.verify(&a)?.replay_key(), verifier.verify(&b)?.replay_key());
    /// # Ok::<(), siptoken::Error>(())
    /// ```
    pub fn replay_key(&self) -> TokenId {
        self.replay_key
    }
}
