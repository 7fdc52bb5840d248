//! The REGISTER client (RFC 3261 §10 and §17.1.2): one task per registration that registers,
//! refreshes before the granted expiry (with jitter), answers OPTIONS keep-alives, and
//! unregisters (`Expires: 0`) when told to or when its owner goes away.

use std::collections::VecDeque;
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use zeroize::Zeroizing;

use super::allowed_registrars::AllowedRegistrars;
use super::digest::{self, Challenge};
use super::dns::{self, Candidate};
use super::message::{self, Message};
use super::transport::{Kind, SipSocket, TlsTarget, TransportError};
use crate::metrics::Metrics;

/// The SIP account a token describes.
pub struct Account {
    /// SIP user (`login`).
    pub login: String,
    /// SIP domain (Request-URI and AOR host).
    pub domain: String,
    /// Digest username (`authenticationName`, default the login).
    pub auth_name: String,
    /// The SIP password.
    pub password: Zeroizing<String>,
    /// Display name for From/To.
    pub display_name: Option<String>,
    /// Transport: the token's, else UDP (the default, unless NAPTR chooses another: see
    /// `transport_given`).
    pub transport: Kind,
    /// Whether the token names the transport; if not, DNS NAPTR records may choose it
    /// (RFC 3263 §4.1).
    pub transport_given: bool,
    /// Where to send: the outbound proxy or the domain.
    pub host: String,
    /// Port at `host`; `None`: located with DNS NAPTR/SRV for a host name (RFC 3263).
    pub port: Option<u16>,
}

/// Whether `host` can stand in a SIP URI as written: a host name, an IPv4 address, or an IPv6
/// address (bare or in brackets). Everything a token names as a host goes through this before
/// it reaches a SIP message, so no claim can inject characters into one.
pub fn is_sip_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':' | b'[' | b']')
        })
}

impl Account {
    /// Checks the claims that go into SIP messages as they are (the login is escaped and the
    /// display name quoted where they are written): hosts must be hosts, and the digest user
    /// name must have no control characters. The error names the claim.
    pub fn check(&self) -> Result<(), String> {
        if !is_sip_host(&self.domain) {
            return Err("field \"domain\" is not a host name or IP address".into());
        }
        if !is_sip_host(&self.host) {
            return Err("field \"outboundProxy\" is not a host name or IP address".into());
        }
        if self.auth_name.chars().any(char::is_control) {
            return Err("field \"authenticationName\" contains a control character".into());
        }
        Ok(())
    }

    /// The address of record, `sip:login@domain`.
    pub fn aor(&self) -> String {
        format!("sip:{}@{}", escape_user(&self.login), self.domain)
    }
}

/// Escapes a URI user part (RFC 3261 §25.1: unreserved, user-unreserved and escaped).
pub fn escape_user(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for b in user.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn quote_display(name: &str) -> String {
    let mut out = String::from("\"");
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        if c != '\r' && c != '\n' {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// SIP timing and identity settings.
#[derive(Debug, Clone)]
pub struct SipSettings {
    /// Local address to bind (port 0 is always used: an ephemeral port per registrar for UDP,
    /// per connection for TCP and TLS).
    pub bind: IpAddr,
    /// Requested registration expiry, seconds.
    pub expires: u32,
    /// RFC 3261 T1 (first UDP retransmission interval).
    pub t1: Duration,
    /// RFC 3261 T2 (retransmission interval cap).
    pub t2: Duration,
    /// Give up on a transaction after this long (RFC 3261 Timer F = 64·T1 = 32 s).
    pub transaction_timeout: Duration,
    /// Longest Retry-After honoured; longer ones fail the registration.
    pub max_retry_after: Duration,
    /// User-Agent header value.
    pub user_agent: String,
    /// Locates registrars (RFC 3263: NAPTR, SRV, A/AAAA; `srv_lookup`, `dns_servers`), with
    /// one DNS cache for every registration.
    pub dns: dns::Resolver,
    /// Which registrars a token may name (`allowed_registrars`; empty: any).
    pub allowed_registrars: AllowedRegistrars,
    /// Interval of CRLF keep-alives on idle TCP connections; zero: none.
    pub tcp_keepalive: Duration,
    /// rustls client configuration for SIP over TLS (trusted CAs); `None`: TLS unavailable.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for SipSettings {
    fn default() -> SipSettings {
        SipSettings {
            bind: IpAddr::from([0u8; 4]),
            expires: 600,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            transaction_timeout: Duration::from_secs(32),
            max_retry_after: Duration::from_secs(30),
            user_agent: format!("siptoken-gateway/{}", env!("CARGO_PKG_VERSION")),
            dns: dns::Resolver::new(&[], true, IpAddr::from([0u8; 4])),
            allowed_registrars: AllowedRegistrars::default(),
            tcp_keepalive: Duration::from_secs(30),
            tls: None,
        }
    }
}

/// Why a registration failed; the `code` is the WebSocket error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipError {
    /// The registrar refused the credentials (403, or 401/407 again after answering).
    AuthFailed {
        /// The final status.
        status: u16,
    },
    /// Any other final failure.
    Rejected {
        /// The final status.
        status: u16,
        /// What happened.
        reason: String,
    },
    /// No final response within the transaction timeout.
    Timeout,
    /// Resolution failed, ICMP unreachable, connection refused or closed.
    Unreachable(String),
    /// `allowed_registrars` refuses the host the token names or every address it resolves to;
    /// nothing was sent to it.
    NotAllowed,
}

impl SipError {
    /// The WebSocket error / `registrationLost` code.
    pub fn code(&self) -> &'static str {
        match self {
            SipError::AuthFailed { .. } => "sip_auth_failed",
            SipError::Rejected { .. } => "sip_rejected",
            SipError::Timeout => "sip_timeout",
            SipError::Unreachable(_) => "sip_unreachable",
            SipError::NotAllowed => "registrar_not_allowed",
        }
    }

    /// The SIP status, when there was a final response.
    pub fn status(&self) -> Option<u16> {
        match self {
            SipError::AuthFailed { status } | SipError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for SipError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SipError::AuthFailed { status } => {
                write!(f, "the registrar refused the credentials ({status})")
            }
            SipError::Rejected { status, reason } => {
                write!(
                    f,
                    "the registrar rejected the registration: {status} {reason}"
                )
            }
            SipError::Timeout => f.write_str("no answer from the registrar"),
            SipError::Unreachable(why) => write!(f, "registrar unreachable: {why}"),
            SipError::NotAllowed => {
                f.write_str("this gateway does not register with the registrar the token names")
            }
        }
    }
}

impl SipError {
    /// Whether the registrar did not answer at all (RFC 3263 §4.3: then the next candidate is
    /// tried): a transaction timeout, an ICMP error, a connection refused, reset or timed out, a
    /// failed TLS handshake; also `503 Service Unavailable` (after any `Retry-After` wait).
    pub fn is_failover(&self) -> bool {
        matches!(
            self,
            SipError::Timeout | SipError::Unreachable(_) | SipError::Rejected { status: 503, .. }
        )
    }
}

impl From<TransportError> for SipError {
    fn from(e: TransportError) -> SipError {
        SipError::Unreachable(e.to_string())
    }
}

impl From<dns::LocateError> for SipError {
    fn from(e: dns::LocateError) -> SipError {
        if e.is_not_allowed() {
            SipError::NotAllowed
        } else {
            SipError::Unreachable(e.to_string())
        }
    }
}

/// What a registration task reports to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Registered (or refreshed) for this many seconds.
    Registered {
        /// The expiry the registrar granted.
        expires: u32,
    },
    /// The first registration failed; the task has ended. (Boxed: events queue in a channel
    /// per session, whose buffer is sized by the largest event.)
    Failed(Box<SipError>),
    /// A refresh failed; the task has ended.
    Lost(Box<SipError>),
    /// Unregistered after a request to stop; the task has ended.
    Unregistered,
}

fn random_hex(bytes: usize) -> String {
    let id = siptoken::TokenId::random().0;
    hex::encode(&id[..bytes.min(16)])
}

/// How long after a successful registration to refresh: 55–85 % of the granted expiry
/// (random per refresh, so many sessions spread out), at least one second.
pub fn refresh_delay(granted: u32) -> Duration {
    let frac = 0.55 + 0.30 * (rand::random::<u32>() as f64 / u32::MAX as f64);
    Duration::from_secs_f64((granted as f64 * frac).max(1.0))
}

/// Where to send, in order (RFC 3263 §4, see [`dns::Resolver::locate`]), after the
/// `allowed_registrars` checks.
async fn locate(
    account: &Account,
    settings: &SipSettings,
) -> Result<VecDeque<Candidate>, SipError> {
    let target = dns::Target {
        host: &account.host,
        port: account.port,
        transport: account.transport_given.then_some(account.transport),
        tls: settings.tls.is_some(),
    };
    let found = settings
        .dns
        .locate(
            &target,
            settings.bind,
            &settings.allowed_registrars,
            settings.transaction_timeout,
        )
        .await;
    match found {
        Ok(list) => Ok(list.into()),
        Err(e) => {
            if e.is_not_allowed() {
                tracing::warn!(aor = %account.aor(), host = %account.host, "registrar refused by allowed_registrars: {e}");
            } else {
                tracing::info!(aor = %account.aor(), host = %account.host, "cannot locate the registrar: {e:?}");
            }
            Err(e.into())
        }
    }
}

/// Opens a transport to the first of `candidates` that accepts one (a TCP connection refused or
/// timed out, a failed TLS handshake: the next), removing the candidates it used up.
async fn open_next(
    candidates: &mut VecDeque<Candidate>,
    account: &Account,
    settings: &SipSettings,
    route: &str,
) -> Result<SipSocket, SipError> {
    let mut last = None;
    while let Some(c) = candidates.pop_front() {
        let tls = match c.transport {
            Kind::Tls => tls_target(account, settings)?,
            _ => None,
        };
        let opened = SipSocket::connect(
            c.transport,
            settings.bind,
            c.addr,
            settings.transaction_timeout,
            tls,
            route,
        )
        .await;
        match opened {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::info!(aor = %account.aor(), peer = %c.addr, transport = c.transport.via_name(), "cannot open a transport ({e}): trying the next candidate");
                last = Some(e);
            }
        }
    }
    Err(last
        .map(SipError::from)
        .unwrap_or_else(|| SipError::Unreachable("no address to try".into())))
}

/// The TLS configuration and the name the registrar's certificate must carry: the host the
/// token names (`outboundProxy`, else `domain`), a DNS name or an IP address.
fn tls_target(
    account: &Account,
    settings: &SipSettings,
) -> Result<Option<TlsTarget>, TransportError> {
    let config = settings.tls.clone().ok_or_else(|| {
        TransportError::Unreachable("SIP over TLS is not configured (no CA bundle)".into())
    })?;
    let host = account.host.trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|_| {
        TransportError::Unreachable(format!("{host} is not a name a certificate can carry"))
    })?;
    Ok(Some(TlsTarget { config, name }))
}

/// One registration's SIP dialog-less state: Call-ID, CSeq, tags, the last challenge.
pub struct Client {
    sock: SipSocket,
    account: Account,
    settings: SipSettings,
    metrics: Arc<Metrics>,
    call_id: String,
    from_tag: String,
    cseq: u32,
    contact_user: String,
    /// The last challenges answered: [0] from a 401 (registrar), [1] from a 407 (proxy). Both
    /// are answered in every later request, each with its own nonce count.
    challenges: [Option<Answered>; 2],
    /// The registrar's last `Min-Expires` (423), honoured by later refreshes too.
    min_expires: u32,
    /// The Contact of a TCP connection that was replaced: removed (`expires=0`) by the next
    /// successful REGISTER, so a reconnect does not leave a stale binding behind.
    replaced_contact: Option<String>,
    /// The candidates not tried yet (RFC 3263 §4.3), for [`Client::register_first`].
    candidates: VecDeque<Candidate>,
}

/// A challenge being answered: the challenge, our cnonce and the last nonce count used.
struct Answered {
    challenge: Challenge,
    cnonce: String,
    nc: u32,
}

enum Wait {
    Message(Result<Message, TransportError>),
    Retransmit,
    Timeout,
}

impl Client {
    /// Locates the registrar and opens a transport to the first candidate that accepts one.
    pub async fn connect(
        account: Account,
        settings: SipSettings,
        metrics: Arc<Metrics>,
    ) -> Result<Client, SipError> {
        // This registration's route on a shared UDP socket: its Call-ID and Contact user carry
        // it (see `udp`).
        let route = random_hex(12);
        let mut candidates = locate(&account, &settings).await?;
        let sock = open_next(&mut candidates, &account, &settings, &route).await?;
        Ok(Client {
            sock,
            account,
            settings,
            metrics,
            call_id: format!("{route}@siptoken"),
            from_tag: random_hex(8),
            cseq: 0,
            contact_user: format!("st-{route}"),
            challenges: [None, None],
            min_expires: 0,
            replaced_contact: None,
            candidates,
        })
    }

    /// The first registration (see [`Client::register`]): while the registrar does not answer
    /// ([`SipError::is_failover`]) and candidates are left, the REGISTER moves on to the next
    /// one (RFC 3263 §4.3) with a fresh transport, instead of failing.
    pub async fn register_first(&mut self, expires: u32) -> Result<u32, SipError> {
        loop {
            match Box::pin(self.register(expires)).await {
                Err(e) if e.is_failover() && !self.candidates.is_empty() => {
                    tracing::info!(aor = %self.aor(), peer = %self.sock.peer_addr(), transport = self.sock.kind().via_name(), "registrar did not answer ({e}): trying the next candidate");
                    self.sock = open_next(
                        &mut self.candidates,
                        &self.account,
                        &self.settings,
                        &self.contact_user["st-".len()..],
                    )
                    .await?;
                    // Challenges and interval limits were the other server's.
                    self.challenges = [None, None];
                    self.min_expires = 0;
                }
                result => {
                    self.candidates.clear();
                    return result;
                }
            }
        }
    }

    /// Replaces a TCP connection that closed with a new one (a new local port, so a new
    /// Contact); the next REGISTER also removes the old Contact.
    pub async fn reconnect(&mut self) -> Result<(), TransportError> {
        let sock = SipSocket::connect(
            self.sock.kind(),
            self.settings.bind,
            self.sock.peer_addr(),
            self.settings.transaction_timeout,
            self.sock.tls_target(),
            &self.contact_user["st-".len()..],
        )
        .await?;
        let old = self.contact();
        self.sock = sock;
        self.replaced_contact = Some(old);
        Ok(())
    }

    /// Sends a CRLF keep-alive (RFC 5626 §3.5.1) on a TCP connection, so the registrar does not
    /// close it as idle.
    pub async fn keepalive(&mut self) -> Result<(), TransportError> {
        self.sock.send(b"\r\n\r\n").await
    }

    /// This registration's Contact URI.
    pub fn contact(&self) -> String {
        let t = match self.sock.kind() {
            Kind::Udp => "",
            Kind::Tcp => ";transport=tcp",
            Kind::Tls => ";transport=tls",
        };
        format!("sip:{}@{}{t}", self.contact_user, self.sock.local_addr())
    }

    /// The account's address of record.
    pub fn aor(&self) -> String {
        self.account.aor()
    }

    fn request(&mut self, expires: u32, branch: &str) -> String {
        let a = &self.account;
        let aor = a.aor();
        let name = a
            .display_name
            .as_deref()
            .map(|n| format!("{} ", quote_display(n)))
            .unwrap_or_default();
        let uri = format!("sip:{}", a.domain);
        let mut r = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{} {};rport;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: {name}<{aor}>;tag={}\r\n\
             To: {name}<{aor}>\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n\
             Contact: <{}>;expires={expires}\r\n\
             Expires: {expires}\r\n\
             Allow: OPTIONS\r\n\
             User-Agent: {}\r\n",
            self.sock.kind().via_name(),
            self.sock.local_addr(),
            self.from_tag,
            self.call_id,
            self.cseq,
            self.contact(),
            self.settings.user_agent,
        );
        if let Some(old) = &self.replaced_contact {
            r.push_str(&format!("Contact: <{old}>;expires=0\r\n"));
        }
        for (i, slot) in self.challenges.iter_mut().enumerate() {
            let Some(ans) = slot else { continue };
            ans.nc += 1;
            let value = digest::authorization(
                &ans.challenge,
                &digest::Answer {
                    username: &a.auth_name,
                    password: &a.password,
                    method: "REGISTER",
                    uri: &uri,
                    cnonce: &ans.cnonce,
                    nc: ans.nc,
                },
            );
            let h = if i == 1 {
                "Proxy-Authorization"
            } else {
                "Authorization"
            };
            r.push_str(&format!("{h}: {value}\r\n"));
        }
        r.push_str("Content-Length: 0\r\n\r\n");
        r
    }

    /// Registers with `expires` seconds (0 unregisters this Contact), handling digest
    /// challenges, `stale`, 423 and 5xx with Retry-After. Returns the granted expiry.
    pub async fn register(&mut self, expires: u32) -> Result<u32, SipError> {
        let mut expires = if expires == 0 {
            0
        } else {
            expires.max(self.min_expires)
        };
        // Whether a challenge of this kind (401, 407) received in this call was answered.
        let mut answered_fresh = [false, false];
        let (mut stale_retries, mut interval_retries, mut busy_retries) = (0, 0, 0);
        for _attempt in 0..10 {
            self.cseq += 1;
            let branch = format!("z9hG4bK{}", random_hex(10));
            let req = self.request(expires, &branch);
            let resp = self.transaction(&req, &branch).await?;
            let status = resp.code().unwrap_or(0);
            match status {
                200..=299 => {
                    self.replaced_contact = None;
                    let granted = self.granted(&resp, expires);
                    if expires > 0 && granted == 0 {
                        return Err(SipError::Rejected {
                            status,
                            reason: "the registrar kept no binding (expires=0)".into(),
                        });
                    }
                    return Ok(granted);
                }
                401 | 407 => {
                    let proxy = status == 407;
                    let name = if proxy {
                        "proxy-authenticate"
                    } else {
                        "www-authenticate"
                    };
                    let ch = Challenge::choose(resp.headers_named(name)).map_err(|e| {
                        SipError::Rejected {
                            status,
                            reason: format!("cannot answer the challenge: {e}"),
                        }
                    })?;
                    if ch.stale {
                        stale_retries += 1;
                        if stale_retries > 2 {
                            return Err(SipError::AuthFailed { status });
                        }
                    } else if answered_fresh[proxy as usize] {
                        return Err(SipError::AuthFailed { status });
                    }
                    answered_fresh[proxy as usize] = true;
                    self.challenges[proxy as usize] = Some(Answered {
                        challenge: ch,
                        cnonce: random_hex(8),
                        nc: 0,
                    });
                }
                403 => return Err(SipError::AuthFailed { status }),
                423 => {
                    let min = resp
                        .header("min-expires")
                        .and_then(|v| v.trim().parse::<u32>().ok());
                    match min {
                        Some(m) if m > expires && interval_retries < 2 => {
                            interval_retries += 1;
                            tracing::info!(aor = %self.aor(), min_expires = m, "423 Interval Too Brief: retrying");
                            expires = m;
                            self.min_expires = m;
                        }
                        _ => return Err(rejected(&resp)),
                    }
                }
                500..=599 => {
                    let after = resp.header("retry-after").and_then(|v| {
                        let digits: String = v
                            .trim()
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .collect();
                        digits.parse::<u64>().ok()
                    });
                    match after {
                        Some(s)
                            if busy_retries < 2
                                && Duration::from_secs(s) <= self.settings.max_retry_after =>
                        {
                            busy_retries += 1;
                            tracing::info!(aor = %self.aor(), status, retry_after = s, "registrar busy: backing off");
                            self.idle_for(Duration::from_secs(s)).await?;
                        }
                        _ => return Err(rejected(&resp)),
                    }
                }
                _ => return Err(rejected(&resp)),
            }
        }
        Err(SipError::Rejected {
            status: 0,
            reason: "too many attempts".into(),
        })
    }

    /// The expiry granted in a 2xx: our Contact's `expires`, else `Expires`, else requested.
    fn granted(&self, resp: &Message, requested: u32) -> u32 {
        let ours = format!("sip:{}@{}", self.contact_user, self.sock.local_addr());
        for c in resp.list("contact") {
            let uri = message::addr_uri(c);
            let same = uri
                .strip_prefix(ours.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(';'));
            if same {
                if let Some(e) = message::params(c)
                    .find(|(k, _)| k.eq_ignore_ascii_case("expires"))
                    .and_then(|(_, v)| v?.trim_matches('"').parse().ok())
                {
                    return e;
                }
            }
        }
        resp.header("expires")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(requested)
    }

    /// Waits `d` while answering requests from the registrar.
    async fn idle_for(&mut self, d: Duration) -> Result<(), SipError> {
        let until = Instant::now() + d;
        loop {
            tokio::select! {
                _ = sleep_until(until) => return Ok(()),
                m = self.sock.recv() => self.answer(&m?).await,
            }
        }
    }

    /// Sends a request and waits for its final response, retransmitting over UDP (T1 doubling
    /// up to T2, at T2 after a provisional response) and answering requests meanwhile.
    async fn transaction(&mut self, req: &str, branch: &str) -> Result<Message, SipError> {
        self.sock.set_awaiting(true);
        let result = self.transact(req, branch).await;
        self.sock.set_awaiting(false);
        result
    }

    async fn transact(&mut self, req: &str, branch: &str) -> Result<Message, SipError> {
        self.metrics
            .sip_transactions
            .fetch_add(1, Ordering::Relaxed);
        self.sock.send(req.as_bytes()).await?;
        let udp = self.sock.kind() == Kind::Udp;
        let deadline = Instant::now() + self.settings.transaction_timeout;
        let mut interval = self.settings.t1;
        let mut next = Instant::now() + interval;
        loop {
            let w = tokio::select! {
                m = self.sock.recv() => Wait::Message(m),
                _ = sleep_until(next), if udp => Wait::Retransmit,
                _ = sleep_until(deadline) => Wait::Timeout,
            };
            match w {
                Wait::Timeout => return Err(SipError::Timeout),
                Wait::Retransmit => {
                    self.metrics
                        .sip_retransmissions
                        .fetch_add(1, Ordering::Relaxed);
                    self.sock.send(req.as_bytes()).await?;
                    interval = (interval * 2).min(self.settings.t2);
                    next = Instant::now() + interval;
                }
                Wait::Message(Err(e)) => return Err(e.into()),
                Wait::Message(Ok(m)) => {
                    let Some(code) = m.code() else {
                        self.answer(&m).await;
                        continue;
                    };
                    let ours = m.top_via_branch() == Some(branch)
                        && m.cseq() == Some((self.cseq, "REGISTER"));
                    if !ours {
                        tracing::debug!("ignoring a response to another transaction");
                        continue;
                    }
                    if code >= 200 {
                        return Ok(m);
                    }
                    // Proceeding: keep retransmitting, at T2.
                    interval = self.settings.t2;
                    next = Instant::now() + interval;
                }
            }
        }
    }

    /// Answers a request from the registrar: OPTIONS with 200, ACK with nothing, anything else
    /// with 405.
    pub async fn answer(&mut self, m: &Message) {
        let Some(method) = m.method() else { return };
        if method == "ACK" {
            return;
        }
        self.metrics
            .sip_requests_answered
            .fetch_add(1, Ordering::Relaxed);
        let resp = if method == "OPTIONS" {
            message::response_to(
                m,
                200,
                "OK",
                &self.from_tag,
                "Allow: OPTIONS\r\nAccept: application/sdp\r\n",
            )
        } else {
            message::response_to(
                m,
                405,
                "Method Not Allowed",
                &self.from_tag,
                "Allow: OPTIONS\r\n",
            )
        };
        if let Err(e) = self.sock.send(resp.as_bytes()).await {
            tracing::debug!("cannot answer {method}: {e}");
        }
    }
}

fn rejected(resp: &Message) -> SipError {
    let (status, reason) = match &resp.start {
        message::StartLine::Response { code, reason } => (*code, reason.clone()),
        message::StartLine::Request { .. } => (0, String::new()),
    };
    SipError::Rejected { status, reason }
}

/// A request to a registration task.
#[derive(Debug)]
pub enum Command {
    /// Unregister and end.
    Unregister,
}

/// Starts a registration task. It reports `(id, Event)` on `events`; sending
/// [`Command::Unregister`] or dropping the returned sender makes it unregister and end.
/// `alive` is held until the task ends (shutdown waits for such guards to drop).
pub fn spawn(
    id: u64,
    account: Account,
    settings: SipSettings,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<(u64, Event)>,
    alive: impl Send + 'static,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let _alive = alive;
        run(id, account, settings, metrics, events, rx).await;
    });
    tx
}

/// The registration task. Every SIP exchange is boxed while it runs: the task spends almost all
/// of its life idle between refreshes, and without the boxes its state would be as large as the
/// largest exchange (several KiB per registration, kept for the whole session).
async fn run(
    id: u64,
    account: Account,
    settings: SipSettings,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<(u64, Event)>,
    mut commands: mpsc::Receiver<Command>,
) {
    let aor = account.aor();
    let expires = settings.expires;
    let send = |e: Event| {
        let _ = events.send((id, e));
    };
    let mut client = match Box::pin(Client::connect(account, settings, metrics.clone())).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(%aor, "registration failed: {e}");
            send(Event::Failed(Box::new(e)));
            return;
        }
    };
    let granted = match Box::pin(client.register_first(expires)).await {
        Ok(g) => g,
        Err(e) => {
            tracing::warn!(%aor, "registration failed: {e}");
            send(Event::Failed(Box::new(e)));
            return;
        }
    };
    tracing::info!(%aor, contact = %client.contact(), expires = granted, "registered");
    send(Event::Registered { expires: granted });
    let mut refresh_at = Instant::now() + refresh_delay(granted);
    let ping_every = client.settings.tcp_keepalive;
    let keepalive = client.sock.kind().is_stream() && !ping_every.is_zero();
    let mut ping_at = Instant::now() + ping_every;
    loop {
        enum Step {
            Stop,
            Refresh,
            Incoming(Result<Message, TransportError>),
            Ping,
        }
        let step = tokio::select! {
            _ = commands.recv() => Step::Stop,
            _ = sleep_until(refresh_at) => Step::Refresh,
            m = client.sock.recv() => Step::Incoming(m),
            _ = sleep_until(ping_at), if keepalive => Step::Ping,
        };
        match step {
            Step::Stop => {
                let mut result = Box::pin(client.register(0)).await;
                if matches!(result, Err(SipError::Unreachable(_))) && client.sock.kind().is_stream()
                {
                    // The registrar closed the idle connection: a new one removes both Contacts.
                    result = match Box::pin(client.reconnect()).await {
                        Ok(()) => Box::pin(client.register(0)).await,
                        Err(e) => Err(e.into()),
                    };
                }
                match result {
                    Ok(_) => tracing::info!(%aor, contact = %client.contact(), "unregistered"),
                    Err(e) => tracing::warn!(%aor, "unregistration failed: {e}"),
                }
                send(Event::Unregistered);
                return;
            }
            Step::Refresh | Step::Incoming(Err(_)) => {
                if let Step::Incoming(Err(e)) = &step {
                    tracing::info!(%aor, "transport problem while idle ({e}): re-registering");
                    if client.sock.kind().is_stream() {
                        if let Err(e) = Box::pin(client.reconnect()).await {
                            tracing::warn!(%aor, "registration lost: {e}");
                            send(Event::Lost(Box::new(e.into())));
                            return;
                        }
                    }
                }
                match Box::pin(client.register(expires)).await {
                    Ok(g) => {
                        refresh_at = Instant::now() + refresh_delay(g);
                        metrics.refreshes.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%aor, expires = g, "refreshed");
                        send(Event::Registered { expires: g });
                    }
                    Err(e) => {
                        tracing::warn!(%aor, "registration lost: {e}");
                        send(Event::Lost(Box::new(e)));
                        return;
                    }
                }
            }
            Step::Incoming(Ok(m)) => client.answer(&m).await,
            Step::Ping => {
                ping_at = Instant::now() + ping_every;
                if let Err(e) = client.keepalive().await {
                    // The next receive sees the broken connection and reconnects.
                    tracing::debug!(%aor, "keep-alive failed: {e}");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_user_parts() {
        assert!(is_sip_host("sip.example.org") && is_sip_host("10.0.0.5") && is_sip_host("[::1]"));
        assert!(!is_sip_host("a.org\r\nVia: x") && !is_sip_host("a b") && !is_sip_host(""));
        assert_eq!(escape_user("crm1"), "crm1");
        assert_eq!(escape_user("a b@c"), "a%20b%40c");
        assert_eq!(escape_user("é"), "%C3%A9");
    }

    #[test]
    fn refresh_is_jittered_within_bounds() {
        for _ in 0..1000 {
            let d = refresh_delay(600).as_secs_f64();
            assert!((330.0..=510.0).contains(&d), "{d}");
        }
        assert_eq!(refresh_delay(0), Duration::from_secs(1));
    }

    #[test]
    fn error_codes() {
        assert_eq!(SipError::Timeout.code(), "sip_timeout");
        assert_eq!(SipError::AuthFailed { status: 403 }.status(), Some(403));
        assert_eq!(SipError::Unreachable("x".into()).code(), "sip_unreachable");
        assert_eq!(SipError::NotAllowed.code(), "registrar_not_allowed");
        assert!(!SipError::NotAllowed.to_string().contains('.'));
        for (e, failover) in [
            (SipError::Timeout, true),
            (SipError::Unreachable("ICMP".into()), true),
            (
                SipError::Rejected {
                    status: 503,
                    reason: "Busy".into(),
                },
                true,
            ),
            (
                SipError::Rejected {
                    status: 500,
                    reason: "Oops".into(),
                },
                false,
            ),
            (SipError::AuthFailed { status: 403 }, false),
            (SipError::NotAllowed, false),
        ] {
            assert_eq!(e.is_failover(), failover, "{e}");
        }
    }
}
