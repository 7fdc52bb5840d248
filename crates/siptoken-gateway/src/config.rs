//! Gateway configuration: a TOML file (every key optional, unknown keys are errors) with
//! command-line overrides. See `examples/gateway.toml`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::sip::allowed_registrars::AllowedRegistrars;
use super::sip::dns;
use super::sip::register::SipSettings;
use siptoken::VerifyOptions;

/// A `replay_store` value. `Debug` hides the password of a `redis://` URL, so printing a
/// [`Config`] never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct StoreUrl(pub String);

impl std::ops::Deref for StoreUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for StoreUrl {
    fn from(s: &str) -> StoreUrl {
        StoreUrl(s.to_owned())
    }
}

impl PartialEq<&str> for StoreUrl {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0.split_once("://"), self.0.rsplit_once('@')) {
            (Some((scheme, _)), Some((_, host))) => write!(f, "\"{scheme}://***@{host}\""),
            _ => write!(f, "{:?}", self.0),
        }
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP/WebSocket listen address. Default `127.0.0.1:8088`.
    pub listen: SocketAddr,
    /// Key ring file (`APP=HEX` / `APP.KID=HEX` lines). Required. Relative paths in a config
    /// file are relative to the file's directory.
    pub keys: Option<PathBuf>,
    /// PEM certificate chain (leaf first) for serving `https://` and `wss://`; with
    /// `tls_key_file`. Unset (default): plain `http://` and `ws://`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// PEM bundle of the CAs trusted for SIP over TLS (`transport="tls"` tokens). Unset
    /// (default): the platform's trusted CAs (`SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else
    /// the system store).
    pub sip_tls_ca_file: Option<PathBuf>,
    /// Accept legacy (unauthenticated) tokens. Default `false`.
    pub allow_legacy: bool,
    /// Clock leeway for `expires` / `issued`, seconds. Default 30.
    pub leeway_seconds: u64,
    /// Largest accepted `expires - issued`, seconds. Default 86400.
    pub max_lifetime_seconds: u64,
    /// Local IP address for SIP sockets (ephemeral ports on it: one UDP socket per registrar,
    /// one connection per TCP or TLS registration).
    /// Default `0.0.0.0`.
    pub sip_bind: IpAddr,
    /// Requested registration expiry, seconds. Default 600.
    pub register_expires: u32,
    /// WebSocket origins allowed besides the gateway's own, e.g. `https://crm.example.org`.
    pub allowed_origins: Vec<String>,
    /// Time a client has from connecting to finishing its HTTP request (the WebSocket upgrade
    /// included), seconds; slower connections are closed. Default 10.
    pub handshake_timeout_seconds: u64,
    /// A WebSocket from which nothing (no message, no pong) arrives for this long is closed
    /// (code 4408) and its accounts unregistered, seconds. The gateway sends a WebSocket ping
    /// every third of it, which browsers answer by themselves. Default 90.
    pub ws_idle_timeout_seconds: u64,
    /// Largest WebSocket message (and frame) accepted, bytes; larger closes the socket with code
    /// 1009. Between 1024 and 1048576. Default 16384 (tokens are at most 8 KiB).
    pub ws_max_message_bytes: usize,
    /// Most concurrent WebSocket sessions. Default 10000.
    pub max_sessions: usize,
    /// Most WebSocket sessions carried by one HTTP/2 connection (RFC 8441 streams; HTTP/1.1
    /// carries one per connection). Default 1000.
    pub http2_max_streams: u32,
    /// Most accounts one WebSocket session may log in at once. Default 4.
    pub max_accounts_per_session: usize,
    /// Login attempts allowed per client IP per minute (token bucket). Default 60.
    pub login_rate_per_minute: u32,
    /// Burst of login attempts allowed per client IP. Default 20.
    pub login_burst: u32,
    /// SIP timer T1, milliseconds. Default 500.
    pub sip_t1_ms: u64,
    /// SIP transaction timeout (Timer F), milliseconds. Default 32000.
    pub sip_transaction_timeout_ms: u64,
    /// Longest `Retry-After` honoured on 5xx, seconds; longer fails the login. Default 30.
    pub max_retry_after_seconds: u64,
    /// Replay store: `memory` (this process only) or `redis://[[user]:password@]host[:port][/db]`
    /// (shared by every gateway instance using the same Redis). Default `memory`.
    pub replay_store: StoreUrl,
    /// What a login does when the shared replay store cannot be reached: `closed` (refuse it
    /// with `store_unavailable`, the default) or `open` (accept it without the single-use check).
    pub replay_store_failure: StoreFailure,
    /// Longest time one replay-store call (connect, authenticate, `SET NX`) may take,
    /// milliseconds; longer counts as a store failure. Default 500.
    pub replay_store_timeout_ms: u64,
    /// Locate registrars with DNS NAPTR and SRV records (RFC 3263) when a token names a host
    /// name without a port; `false`: A/AAAA only, port 5060 (5061 for TLS). Default `true`.
    pub srv_lookup: bool,
    /// Name servers (`IP:PORT`, asked over UDP, and TCP for truncated answers) for every
    /// registrar lookup; empty: those in /etc/resolv.conf.
    pub dns_servers: Vec<SocketAddr>,
    /// Registrars a token may name: host patterns (`sip.example.org`, `*.example.org`) and
    /// networks (`10.1.0.0/16`, `2001:db8::/32`, a single address). Empty (default): any. See
    /// `sip::allowed_registrars`.
    pub allowed_registrars: AllowedRegistrars,
    /// Seconds between CRLF keep-alives on idle SIP TCP connections (0: none). Default 30.
    pub tcp_keepalive_seconds: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8088)),
            keys: None,
            tls_cert_file: None,
            tls_key_file: None,
            sip_tls_ca_file: None,
            allow_legacy: false,
            leeway_seconds: 30,
            max_lifetime_seconds: 86_400,
            sip_bind: IpAddr::from([0u8; 4]),
            register_expires: 600,
            allowed_origins: Vec::new(),
            handshake_timeout_seconds: 10,
            ws_idle_timeout_seconds: 90,
            ws_max_message_bytes: 16 * 1024,
            max_sessions: 10_000,
            http2_max_streams: 1000,
            max_accounts_per_session: 4,
            login_rate_per_minute: 60,
            login_burst: 20,
            sip_t1_ms: 500,
            sip_transaction_timeout_ms: 32_000,
            max_retry_after_seconds: 30,
            replay_store: "memory".into(),
            replay_store_failure: StoreFailure::Closed,
            replay_store_timeout_ms: 500,
            srv_lookup: true,
            dns_servers: Vec::new(),
            allowed_registrars: AllowedRegistrars::default(),
            tcp_keepalive_seconds: 30,
        }
    }
}

/// What to do with a login when the shared replay store fails (`replay_store_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreFailure {
    /// Refuse the login with `store_unavailable` (a token can never be used twice).
    Closed,
    /// Accept the login without the single-use check (availability over single use).
    Open,
}

/// A configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses TOML text (paths stay as written).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string().trim_end().to_owned()))
    }

    /// Reads a TOML file; relative file paths (`keys`, `tls_*_file`, `sip_tls_ca_file`) are taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        let mut c =
            Config::parse(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        if let Some(dir) = path.parent() {
            for p in [
                &mut c.keys,
                &mut c.tls_cert_file,
                &mut c.tls_key_file,
                &mut c.sip_tls_ca_file,
            ] {
                if let Some(k) = p.as_ref().filter(|k| k.is_relative()) {
                    *p = Some(dir.join(k));
                }
            }
        }
        Ok(c)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if self.keys.is_none() {
            return bad("no key ring: set `keys` in the config file or pass --keys FILE");
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return bad("tls_cert_file and tls_key_file go together: set both or neither");
        }
        if self.register_expires == 0 || self.register_expires > 0x7fff_ffff {
            return bad("register_expires must be between 1 and 2147483647 seconds");
        }
        if self.sip_t1_ms == 0 || self.sip_transaction_timeout_ms == 0 {
            return bad("sip_t1_ms and sip_transaction_timeout_ms must be positive");
        }
        if self.handshake_timeout_seconds == 0 || self.ws_idle_timeout_seconds == 0 {
            return bad("handshake_timeout_seconds and ws_idle_timeout_seconds must be positive");
        }
        if !(1024..=1 << 20).contains(&self.ws_max_message_bytes) {
            return bad("ws_max_message_bytes must be between 1024 and 1048576");
        }
        if self.max_sessions == 0 || self.max_accounts_per_session == 0 {
            return bad("max_sessions and max_accounts_per_session must be positive");
        }
        if self.http2_max_streams == 0 {
            return bad("http2_max_streams must be positive");
        }
        if self.login_rate_per_minute == 0 || self.login_burst == 0 {
            return bad("login_rate_per_minute and login_burst must be positive");
        }
        // The URL may hold a Redis password: errors name the problem, never quote the value.
        if self.replay_store != "memory" {
            if !self.replay_store.starts_with("redis://") {
                return bad("replay_store must be \"memory\" or a redis:// URL");
            }
            self.redis_url()?;
        }
        if self.replay_store_timeout_ms == 0 {
            return bad("replay_store_timeout_ms must be positive");
        }
        for o in &self.allowed_origins {
            if !(o.starts_with("http://") || o.starts_with("https://")) {
                return Err(ConfigError(format!(
                    "allowed origin {o:?} must start with http:// or https://"
                )));
            }
        }
        Ok(())
    }

    /// The Redis address when `replay_store` is a `redis://` URL.
    pub fn redis_url(&self) -> Result<Option<super::redis::RedisUrl>, ConfigError> {
        if !self.replay_store.starts_with("redis://") {
            return Ok(None);
        }
        super::redis::RedisUrl::parse(&self.replay_store)
            .map(Some)
            .map_err(|e| ConfigError(format!("replay_store: {e}")))
    }

    /// The verifier options.
    pub fn verify_options(&self) -> VerifyOptions {
        VerifyOptions {
            allow_legacy: self.allow_legacy,
            leeway_seconds: self.leeway_seconds,
            max_lifetime_seconds: self.max_lifetime_seconds,
            ..VerifyOptions::default()
        }
    }

    /// The SIP settings.
    pub fn sip_settings(&self) -> SipSettings {
        let t1 = Duration::from_millis(self.sip_t1_ms);
        SipSettings {
            bind: self.sip_bind,
            expires: self.register_expires,
            t1,
            t2: (t1 * 8).max(Duration::from_millis(1)),
            transaction_timeout: Duration::from_millis(self.sip_transaction_timeout_ms),
            max_retry_after: Duration::from_secs(self.max_retry_after_seconds),
            dns: dns::Resolver::new(&self.dns_servers, self.srv_lookup, self.sip_bind),
            allowed_registrars: self.allowed_registrars.clone(),
            tcp_keepalive: Duration::from_secs(self.tcp_keepalive_seconds),
            ..SipSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let c = Config::parse(include_str!("../../../examples/gateway.toml")).unwrap();
        c.validate().unwrap();
        assert_eq!(c.register_expires, 600);
    }

    #[test]
    fn defaults_and_errors() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8088");
        assert!(c.validate().unwrap_err().0.contains("--keys"));
        let e = Config::parse("lisen = \"1.2.3.4:5\"").unwrap_err();
        assert!(e.0.contains("lisen"), "{e}");
        let mut c = Config::parse("keys = \"k\"\nreplay_store = \"redis://x:6380/1\"").unwrap();
        c.validate().unwrap();
        assert_eq!(c.replay_store_failure, StoreFailure::Closed);
        assert_eq!(c.redis_url().unwrap().unwrap().port, 6380);
        for bad in ["rediss://:pw@x", "redis://:pw@x:99999", "memcached://:pw@x"] {
            c.replay_store = bad.into();
            let e = c.validate().unwrap_err().0;
            assert!(e.contains("replay_store") && !e.contains("pw"), "{e}");
        }
        assert!(Config::parse("replay_store_failure = \"maybe\"").is_err());
        for (bad, key) in [
            ("handshake_timeout_seconds = 0", "handshake_timeout_seconds"),
            ("ws_idle_timeout_seconds = 0", "ws_idle_timeout_seconds"),
            ("ws_max_message_bytes = 100", "ws_max_message_bytes"),
            ("ws_max_message_bytes = 2000000", "ws_max_message_bytes"),
        ] {
            let c = Config::parse(&format!("keys = \"k\"\n{bad}")).unwrap();
            assert!(c.validate().unwrap_err().0.contains(key), "{bad}");
        }
        let o = Config::parse("replay_store_failure = \"open\"").unwrap();
        assert_eq!(o.replay_store_failure, StoreFailure::Open);
        c.replay_store = "memory".into();
        c.allowed_origins = vec!["crm.example.org".into()];
        assert!(c.validate().is_err());
    }

    #[test]
    fn allowed_registrars_parse_or_name_the_bad_entry() {
        let c = Config::parse(
            "allowed_registrars = [\"sip.example.org\", \"*.example.net\", \"10.1.0.0/16\", \"2001:db8::/32\"]",
        )
        .unwrap();
        let a = &c.allowed_registrars;
        assert!(a.allows_name("x.example.net") && !a.allows_name("example.net"));
        assert!(a.allows_addr("10.1.2.3".parse().unwrap()));
        assert!(!a.allows_addr("127.0.0.1".parse().unwrap()));
        assert!(Config::parse("").unwrap().allowed_registrars.is_empty());
        let e = Config::parse("allowed_registrars = [\"10.0.0.0/40\"]").unwrap_err();
        assert!(
            e.0.contains("allowed_registrars") && e.0.contains("10.0.0.0/40"),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_the_store_password() {
        let c =
            Config::parse("keys = \"k\"\nreplay_store = \"redis://user:s3cr@t@h:6380/1\"").unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("redis://***@h:6380/1") && !shown.contains("s3cr"),
            "{shown}"
        );
    }
}
