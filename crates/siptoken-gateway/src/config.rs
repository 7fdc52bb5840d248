//! Gateway configuration: a TOML file (every key optional, unknown keys are errors) with
//! command-line overrides. See `examples/gateway.toml`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::client_addr::{Cidr, ForwardedHeader};
use super::media::{MediaSettings, PortRange};
use super::sip::allowed_registrars::AllowedRegistrars;
use super::sip::digest::{DigestPolicy, HashStrength};
use super::sip::dns;
use super::sip::register::SipSettings;
use siptoken::verify::{LEEWAY_LIMIT_SECONDS, LIFETIME_LIMIT_SECONDS};
use siptoken::VerifyOptions;

/// A `replay_store` value. `Debug` hides the credentials of a Redis URL (everything between
/// `://` and the last `@`, in every URL form), so printing a [`Config`] never shows them.
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
    /// Clock leeway for `expires` / `issued`, seconds, at most 300. Default 30.
    pub leeway_seconds: u64,
    /// Largest accepted `expires - issued` (for legacy tokens without `issued`: `expires - now`,
    /// plus the leeway), seconds, 1 to 604800 (7 days). Default 86400.
    pub max_lifetime_seconds: u64,
    /// Local IP address for SIP sockets (ephemeral ports on it: one UDP socket per registrar,
    /// one connection per TCP or TLS registration).
    /// Default `0.0.0.0`.
    pub sip_bind: IpAddr,
    /// Requested registration expiry, seconds. Default 600.
    pub register_expires: u32,
    /// WebSocket origins allowed besides the gateway's own, e.g. `https://crm.example.org`.
    pub allowed_origins: Vec<String>,
    /// The gateway's own origins as browsers reach it (`https://gw.example.org`; a string or a
    /// list), for the Origin check. Unset: the listen address and `localhost` (with the listen
    /// port and the scheme served). Never the request's `Host`.
    #[serde(deserialize_with = "one_or_many")]
    pub public_origin: Vec<String>,
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
    /// Most concurrent WebSocket sessions per client address (IPv6: per /64). Default 1000.
    pub max_sessions_per_ip: usize,
    /// Seconds a WebSocket may hold no logged-in account (from its start, or after its last
    /// account went) before it is closed with code 4401. Default 15.
    pub login_timeout_seconds: u64,
    /// Most open connections (HTTP/1.1, HTTP/2, TLS or not); more are closed at once.
    /// Default 20000.
    pub max_connections: usize,
    /// Most open connections per client address (IPv6: per /64); a trusted proxy's own
    /// connections are exempt. Default 1000.
    pub max_connections_per_ip: usize,
    /// Front proxies whose word on the client address is taken (CIDRs or addresses, e.g.
    /// `["10.0.0.0/8", "::1"]`). Empty (default): every client is its TCP peer.
    pub trusted_proxies: Vec<Cidr>,
    /// The header trusted proxies name the client in: `x-forwarded-for` (default),
    /// `forwarded` (RFC 7239) or `none`.
    pub forwarded_header: ForwardedHeader,
    /// Connections from `trusted_proxies` start with a PROXY protocol v2 header. Default false.
    pub proxy_protocol: bool,
    /// Most WebSocket sessions carried by one HTTP/2 connection (RFC 8441 streams; HTTP/1.1
    /// carries one per connection). Default 1000.
    pub http2_max_streams: u32,
    /// Most accounts one WebSocket session may log in at once. Default 4.
    pub max_accounts_per_session: usize,
    /// Most calls in progress on the whole gateway. Default 1000.
    pub max_calls: usize,
    /// Most calls in progress on one WebSocket session. Default 2.
    pub max_calls_per_session: usize,
    /// How long a call may ring (either direction) before it ends as `no_answer`. Default 60.
    pub ring_timeout_seconds: u64,
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
    /// Replay store: `memory` (this process only) or a Redis URL, shared by every gateway
    /// instance using the same Redis: `redis://[[user]:password@]host[:port][/db]`, `rediss://…`
    /// (TLS), `redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/MASTER[?db=N]`,
    /// `redis+cluster://[[user]:password@]host[:port][,host[:port]…]`, and `rediss+sentinel://…`,
    /// `rediss+cluster://…` (TLS). Default `memory`.
    pub replay_store: StoreUrl,
    /// What a login does when the shared replay store cannot be reached: `closed` (refuse it
    /// with `store_unavailable`, the default) or `open` (accept it without the single-use check).
    pub replay_store_failure: StoreFailure,
    /// Longest time one replay-store call (connect, authenticate, `SET NX`) may take,
    /// milliseconds; longer counts as a store failure. Default 500.
    pub replay_store_timeout_ms: u64,
    /// PEM bundle of the CAs trusted for a `rediss…://` replay store (a private CA). Unset
    /// (default): the system's roots (`SSL_CERT_FILE` when set).
    pub replay_store_tls_ca_file: Option<PathBuf>,
    /// Replicas that must acknowledge a token's key (`WAIT`) before the token is accepted, so
    /// that a failover cannot lose it. Default 0 (the master's answer suffices).
    pub replay_store_min_replicas: u32,
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
    /// The weakest digest algorithm answered: `MD5` (default), `SHA-256` or `SHA-512-256`.
    /// A registrar offering only weaker challenges gets no answer (`sip_auth_failed`).
    pub min_digest_algorithm: HashStrength,
    /// Answer digest challenges without `qop` (RFC 2069), whose answers can be replayed.
    /// Default `false`: such a challenge gets no answer (`sip_auth_failed`).
    pub allow_rfc2069_digest: bool,
    /// The demo softphone's "open client card" link for an incoming call, e.g.
    /// `https://crm.example.org/clients?phone={from}` (`{from}`: the caller's number, `{name}`:
    /// the caller's display name, both percent-encoded by the page). Unset (default): no link.
    pub screen_pop_url: Option<String>,
    /// The one UDP socket for every browser's WebRTC audio, advertised as the ICE host
    /// candidate. Port 0 picks a free port at start. Default `127.0.0.1:0`.
    pub webrtc_listen: SocketAddr,
    /// The address browsers are told to send WebRTC audio to, when `webrtc_listen`'s is not it
    /// (NAT, or listening on every interface). Unset by default.
    pub webrtc_public_ip: Option<IpAddr>,
    /// Ports for the SIP legs' RTP (even) and RTCP (next odd) sockets. Default `20000-29999`.
    pub rtp_ports: PortRange,
    /// Address the SIP legs' RTP sockets bind to and their SDP advertises. Default: `sip_bind`
    /// (when that is `0.0.0.0` or `::`, the SDP names the local address of the call's SIP
    /// socket).
    pub rtp_address: Option<IpAddr>,
    /// An established call whose far end sends no RTP for this long (outside hold) is ended
    /// (`media_timeout`), seconds; 0: never. Also bounds the browser leg's ICE and DTLS setup.
    /// Default 30.
    pub media_timeout_seconds: u64,
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
            public_origin: Vec::new(),
            handshake_timeout_seconds: 10,
            ws_idle_timeout_seconds: 90,
            ws_max_message_bytes: 16 * 1024,
            max_sessions: 10_000,
            max_sessions_per_ip: 1000,
            login_timeout_seconds: 15,
            max_connections: 20_000,
            max_connections_per_ip: 1000,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::XForwardedFor,
            proxy_protocol: false,
            http2_max_streams: 1000,
            max_accounts_per_session: 4,
            max_calls: 1000,
            max_calls_per_session: 2,
            ring_timeout_seconds: 60,
            login_rate_per_minute: 60,
            login_burst: 20,
            sip_t1_ms: 500,
            sip_transaction_timeout_ms: 32_000,
            max_retry_after_seconds: 30,
            replay_store: "memory".into(),
            replay_store_failure: StoreFailure::Closed,
            replay_store_timeout_ms: 500,
            replay_store_tls_ca_file: None,
            replay_store_min_replicas: 0,
            srv_lookup: true,
            dns_servers: Vec::new(),
            allowed_registrars: AllowedRegistrars::default(),
            tcp_keepalive_seconds: 30,
            min_digest_algorithm: HashStrength::Md5,
            allow_rfc2069_digest: false,
            screen_pop_url: None,
            webrtc_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            webrtc_public_ip: None,
            rtp_ports: PortRange {
                first: 20000,
                last: 29999,
            },
            rtp_address: None,
            media_timeout_seconds: 30,
        }
    }
}

/// A string or a list of strings (`public_origin`).
fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    })
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

/// A configuration problem. The texts name the key (or the file) and what is wrong; a value
/// that may hold a secret (the Redis URL) is never quoted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {why}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        why: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type or form (toml's and serde's
    /// message, which names the line and the key).
    #[error("{}", .0.to_string().trim_end())]
    Syntax(toml::de::Error),
    /// A problem in this file.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The file.
        path: PathBuf,
        /// The problem.
        error: Box<ConfigError>,
    },
    /// Values that parse but make no sense together or out of range; the text names the keys.
    #[error("{0}")]
    Invalid(&'static str),
    /// `leeway_seconds` above its bound.
    #[error("leeway_seconds must be at most {LEEWAY_LIMIT_SECONDS} (5 minutes)")]
    LeewayTooLong,
    /// `max_lifetime_seconds` out of range.
    #[error("max_lifetime_seconds must be between 1 and {LIFETIME_LIMIT_SECONDS} (7 days)")]
    LifetimeOutOfRange,
    /// `replay_store` is not a usable Redis URL.
    #[error("replay_store: {0}")]
    ReplayStore(super::redis::UrlError),
    /// An entry of `public_origin` or `allowed_origins` does not parse.
    #[error(transparent)]
    Origin(#[from] super::origin::BadOrigin),
}

impl Config {
    /// Parses TOML text (paths stay as written).
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(ConfigError::Syntax)
    }

    /// Reads a TOML file; relative file paths (`keys`, `tls_*_file`, `sip_tls_ca_file`) are taken
    /// relative to the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|why| ConfigError::Read {
            path: path.to_owned(),
            why,
        })?;
        let mut c = Config::parse(&text).map_err(|e| ConfigError::InFile {
            path: path.to_owned(),
            error: Box::new(e),
        })?;
        if let Some(dir) = path.parent() {
            for p in [
                &mut c.keys,
                &mut c.tls_cert_file,
                &mut c.tls_key_file,
                &mut c.sip_tls_ca_file,
                &mut c.replay_store_tls_ca_file,
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
        let bad = |m: &'static str| Err(ConfigError::Invalid(m));
        if self.keys.is_none() {
            return bad("no key ring: set `keys` in the config file or pass --keys FILE");
        }
        if self.tls_cert_file.is_some() != self.tls_key_file.is_some() {
            return bad("tls_cert_file and tls_key_file go together: set both or neither");
        }
        // Bounded so that every sum and cast of them stays far from overflow, and because more
        // would defeat the expiry: a token may be used until `expires` plus the leeway.
        if self.leeway_seconds > LEEWAY_LIMIT_SECONDS {
            return Err(ConfigError::LeewayTooLong);
        }
        if !(1..=LIFETIME_LIMIT_SECONDS).contains(&self.max_lifetime_seconds) {
            return Err(ConfigError::LifetimeOutOfRange);
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
        if self.login_timeout_seconds == 0 {
            return bad("login_timeout_seconds must be positive");
        }
        if self.ring_timeout_seconds == 0 || self.ring_timeout_seconds > 3600 {
            return bad("ring_timeout_seconds must be 1 to 3600");
        }
        if self.max_sessions_per_ip == 0
            || self.max_connections == 0
            || self.max_connections_per_ip == 0
        {
            return bad(
                "max_sessions_per_ip, max_connections and max_connections_per_ip must be positive",
            );
        }
        if self.proxy_protocol && self.trusted_proxies.is_empty() {
            return bad("proxy_protocol = true needs trusted_proxies (the proxies that send it)");
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
        let redis = self.redis_url()?;
        if self.replay_store_tls_ca_file.is_some() && !redis.as_ref().is_some_and(|u| u.tls) {
            return bad("replay_store_tls_ca_file needs a TLS replay_store (rediss://, rediss+sentinel://, rediss+cluster://)");
        }
        if self.replay_store_min_replicas > 0 && redis.is_none() {
            return bad("replay_store_min_replicas needs a Redis replay_store");
        }
        if self.replay_store_timeout_ms == 0 {
            return bad("replay_store_timeout_ms must be positive");
        }
        if self.webrtc_listen.ip().is_unspecified() && self.webrtc_public_ip.is_none() {
            return bad("webrtc_listen binds every interface: set webrtc_public_ip to the address browsers reach");
        }
        if self
            .webrtc_public_ip
            .is_some_and(|ip| ip.is_unspecified() || ip.is_multicast())
        {
            return bad("webrtc_public_ip must be a unicast address");
        }
        if let Some(u) = &self.screen_pop_url {
            if !(u.starts_with("http://") || u.starts_with("https://"))
                || u.chars().any(char::is_control)
            {
                return bad("screen_pop_url must be an http:// or https:// URL");
            }
        }
        for (key, list) in [
            ("allowed_origins", &self.allowed_origins),
            ("public_origin", &self.public_origin),
        ] {
            super::origin::parse_list(key, list)?;
        }
        Ok(())
    }

    /// The Redis address when `replay_store` is not `memory`.
    pub fn redis_url(&self) -> Result<Option<super::redis::RedisUrl>, ConfigError> {
        if self.replay_store == "memory" {
            return Ok(None);
        }
        super::redis::RedisUrl::parse(&self.replay_store)
            .map(Some)
            .map_err(ConfigError::ReplayStore)
    }

    /// The Redis store's settings besides its URL.
    pub fn redis_settings(&self) -> super::redis::StoreSettings {
        super::redis::StoreSettings {
            timeout: Duration::from_millis(self.replay_store_timeout_ms),
            tls_ca_file: self.replay_store_tls_ca_file.clone(),
            min_replicas: self.replay_store_min_replicas,
        }
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

    /// The media settings.
    pub fn media_settings(&self) -> MediaSettings {
        MediaSettings {
            webrtc_listen: self.webrtc_listen,
            webrtc_public_ip: self.webrtc_public_ip,
            rtp_ports: self.rtp_ports,
            rtp_address: self.rtp_address.unwrap_or(self.sip_bind),
            media_timeout: (self.media_timeout_seconds > 0)
                .then(|| Duration::from_secs(self.media_timeout_seconds)),
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
            digest: DigestPolicy {
                min_algorithm: self.min_digest_algorithm,
                allow_rfc2069: self.allow_rfc2069_digest,
            },
            // Every field given: `..SipSettings::default()` would build (and drop) a second
            // resolver from the system's configuration, warning twice when it is unreadable.
            user_agent: crate::sip::user_agent(),
            tls: None,
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
        // The example shows the defaults of the connection limits and proxy keys.
        let d = Config::default();
        assert_eq!(
            (
                c.login_timeout_seconds,
                c.max_connections,
                c.max_connections_per_ip,
                c.max_sessions_per_ip,
            ),
            (
                d.login_timeout_seconds,
                d.max_connections,
                d.max_connections_per_ip,
                d.max_sessions_per_ip,
            )
        );
        assert_eq!(
            (&c.trusted_proxies, c.forwarded_header, c.proxy_protocol),
            (&d.trusted_proxies, d.forwarded_header, d.proxy_protocol)
        );
        assert!(c.public_origin.is_empty());
    }

    #[test]
    fn proxy_and_origin_keys() {
        let c = Config::parse(
            "keys = \"k\"\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n\
             forwarded_header = \"forwarded\"\nproxy_protocol = true\n\
             public_origin = \"https://gw.example.org\"",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        assert_eq!(c.forwarded_header, ForwardedHeader::Forwarded);
        assert_eq!(c.public_origin, ["https://gw.example.org"]);
        let c = Config::parse("public_origin = [\"https://a.example\", \"wss://b.example:8443\"]")
            .unwrap();
        assert_eq!(c.public_origin.len(), 2);
        let e = Config::parse("trusted_proxies = [\"10.0.0.0/33\"]").unwrap_err();
        assert!(
            e.to_string().contains("10.0.0.0/33") && e.to_string().contains("CIDR"),
            "{e}"
        );
        assert!(Config::parse("forwarded_header = \"x-real-ip\"").is_err());
        for (bad, says) in [
            ("proxy_protocol = true", "trusted_proxies"),
            ("public_origin = \"gw.example.org\"", "public_origin"),
            ("public_origin = [\"https://gw/path\"]", "public_origin"),
            (
                "allowed_origins = [\"https://crm.example.org:0\"]",
                "allowed_origins",
            ),
            ("login_timeout_seconds = 0", "login_timeout_seconds"),
            ("max_sessions_per_ip = 0", "max_sessions_per_ip"),
            ("max_connections = 0", "max_connections"),
            ("max_connections_per_ip = 0", "max_connections_per_ip"),
        ] {
            let c = Config::parse(&format!("keys = \"k\"\n{bad}")).unwrap();
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_and_errors() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8088");
        assert!(c.validate().unwrap_err().to_string().contains("--keys"));
        let e = Config::parse("lisen = \"1.2.3.4:5\"").unwrap_err();
        assert!(e.to_string().contains("lisen"), "{e}");
        let mut c = Config::parse("keys = \"k\"\nreplay_store = \"redis://x:6380/1\"").unwrap();
        c.validate().unwrap();
        assert_eq!(c.replay_store_failure, StoreFailure::Closed);
        assert_eq!(
            c.redis_url().unwrap().unwrap().to_string(),
            "redis://x:6380/1"
        );
        for bad in [
            "redis+sentinel://:pw@x",
            "redis://:pw@x:99999",
            "memcached://:pw@x",
            "memory2",
        ] {
            c.replay_store = bad.into();
            let e = c.validate().unwrap_err().to_string();
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
            assert!(c.validate().unwrap_err().to_string().contains(key), "{bad}");
        }
        for (extra, key) in [
            (
                "replay_store_tls_ca_file = \"ca.pem\"",
                "replay_store_tls_ca_file",
            ),
            ("replay_store_min_replicas = 1", "replay_store_min_replicas"),
        ] {
            let t = Config::parse(&format!("keys = \"k\"\n{extra}")).unwrap();
            assert!(
                t.validate().unwrap_err().to_string().contains(key),
                "{extra}"
            );
        }
        let t = Config::parse(
            "keys = \"k\"\nreplay_store = \"rediss://h\"\nreplay_store_tls_ca_file = \"ca.pem\"\n\
             replay_store_min_replicas = 1",
        )
        .unwrap();
        t.validate().unwrap();
        assert_eq!(t.redis_settings().min_replicas, 1);
        let o = Config::parse("replay_store_failure = \"open\"").unwrap();
        assert_eq!(o.replay_store_failure, StoreFailure::Open);
        c.replay_store = "memory".into();
        c.allowed_origins = vec!["crm.example.org".into()];
        assert!(c.validate().is_err());
        c.allowed_origins.clear();
        for bad in [
            "javascript:alert(1)",
            "crm.example.org/{from}",
            "https://crm/\n{from}",
        ] {
            c.screen_pop_url = Some(bad.into());
            assert!(
                c.validate()
                    .unwrap_err()
                    .to_string()
                    .contains("screen_pop_url"),
                "{bad}"
            );
        }
        c.screen_pop_url = Some("https://crm.example.org/clients?phone={from}".into());
        c.validate().unwrap();
    }

    /// Issue 14, item 13: both were cast with `as i64` where the gateway computes how long to
    /// remember a token, so a huge value wrapped to a negative one (the entry expired at once).
    #[test]
    fn leeway_and_lifetime_are_bounded() {
        for ok in [
            "leeway_seconds = 0",
            "leeway_seconds = 300",
            "max_lifetime_seconds = 1",
            "max_lifetime_seconds = 604800",
        ] {
            let c = Config::parse(&format!("keys = \"k\"\n{ok}")).unwrap();
            c.validate().unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for (bad, key) in [
            ("leeway_seconds = 301", "leeway_seconds"),
            ("leeway_seconds = 9223372036854775808", "leeway_seconds"),
            ("max_lifetime_seconds = 604801", "max_lifetime_seconds"),
            (
                "max_lifetime_seconds = 18446744073709551615",
                "max_lifetime_seconds",
            ),
            ("max_lifetime_seconds = 0", "max_lifetime_seconds"),
        ] {
            let c = Config::parse(&format!("keys = \"k\"\n{bad}")).unwrap();
            let e = c.validate().expect_err(bad).to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    /// Issue 14, item 11: the digest policy keys, their defaults, and what reaches SipSettings.
    #[test]
    fn digest_policy_keys() {
        let d = Config::parse("").unwrap().sip_settings().digest;
        assert_eq!(d.min_algorithm, HashStrength::Md5);
        assert!(!d.allow_rfc2069);
        let c = Config::parse("min_digest_algorithm = \"SHA-256\"\nallow_rfc2069_digest = true")
            .unwrap();
        let d = c.sip_settings().digest;
        assert_eq!(d.min_algorithm, HashStrength::Sha256);
        assert!(d.allow_rfc2069);
        let c = Config::parse("min_digest_algorithm = \"SHA-512-256\"").unwrap();
        assert_eq!(
            c.sip_settings().digest.min_algorithm,
            HashStrength::Sha512_256
        );
        for bad in ["\"SHA-1\"", "\"sha-256\"", "1"] {
            let e = Config::parse(&format!("min_digest_algorithm = {bad}")).unwrap_err();
            assert!(e.to_string().contains("min_digest_algorithm"), "{e}");
        }
    }

    #[test]
    fn media_keys() {
        let c = Config::parse("keys = \"k\"").unwrap();
        c.validate().unwrap();
        let m = c.media_settings();
        assert_eq!(m.webrtc_listen.to_string(), "127.0.0.1:0");
        assert_eq!((m.rtp_ports.first, m.rtp_ports.last), (20000, 29999));
        assert_eq!(m.rtp_address, c.sip_bind);
        assert_eq!(m.media_timeout, Some(Duration::from_secs(30)));
        let c = Config::parse(
            "keys = \"k\"\nwebrtc_listen = \"0.0.0.0:3478\"\nwebrtc_public_ip = \"203.0.113.9\"\n\
             rtp_ports = \"40000-40099\"\nrtp_address = \"10.0.0.2\"\nmedia_timeout_seconds = 0",
        )
        .unwrap();
        c.validate().unwrap();
        let m = c.media_settings();
        assert_eq!(m.rtp_ports.to_string(), "40000-40099");
        assert_eq!(m.rtp_address.to_string(), "10.0.0.2");
        assert_eq!(m.media_timeout, None);
        for bad in [
            "keys = \"k\"\nwebrtc_listen = \"0.0.0.0:3478\"",
            "webrtc_public_ip = \"0.0.0.0\"\nkeys = \"k\"",
        ] {
            let e = Config::parse(bad).unwrap().validate().unwrap_err();
            assert!(e.to_string().contains("webrtc_public_ip"), "{bad}: {e}");
        }
        for bad in ["20000", "30000-20000", "80-90", "x"] {
            let e = Config::parse(&format!("rtp_ports = \"{bad}\"")).unwrap_err();
            assert!(e.to_string().contains("rtp_ports"), "{bad}: {e}");
        }
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
            e.to_string().contains("allowed_registrars") && e.to_string().contains("10.0.0.0/40"),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_the_store_password() {
        for (url, shown_as) in [
            ("redis://user:s3cr@t@h:6380/1", "redis://***@h:6380/1"),
            ("rediss://:s3cr%40t@h:6380/1", "rediss://***@h:6380/1"),
            (
                "redis+sentinel://gw:s3cr@t@s1:26379,s2:26379/mymaster?db=2",
                "redis+sentinel://***@s1:26379,s2:26379/mymaster?db=2",
            ),
            (
                "redis+cluster://:s3cr/t@n1:7000,n2:7001",
                "redis+cluster://***@n1:7000,n2:7001",
            ),
        ] {
            let c = Config::parse(&format!("keys = \"k\"\nreplay_store = \"{url}\"")).unwrap();
            let shown = format!("{c:?}");
            assert!(
                shown.contains(shown_as) && !shown.contains("s3cr"),
                "{shown}"
            );
            let e = format!("{:?}", c.validate());
            assert!(!e.contains("s3cr"), "{e}");
        }
    }
}
