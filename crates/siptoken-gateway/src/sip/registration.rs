//! One registration's REGISTER logic as a sans-IO state machine (RFC 3261 §10 and §17.1.2),
//! in the manner of str0m: the driver passes in the time and what arrived — a message, a
//! timeout, a transport error, a command — and takes out what to do: messages to send, events
//! to report, a connection to replace, and when to wake it next. The machine owns no socket
//! and no timer, so every path (challenges, 423, 5xx, Timer E/F, refreshes, unregistration)
//! has a fast unit test with a made-up registrar and a made-up clock; the async driver in
//! [`super::register`] only moves bytes and sleeps.
//!
//! ```text
//!            start                 2xx                 refresh_at
//!   Idle ──────────▶ Transaction ──────▶ Registered ──────────────▶ Transaction …
//!                     │  ▲   │ 5xx + Retry-After          │ stream closed
//!   401/407/423 ──────┘  │   ▼                            ▼
//!                        └─ Backoff               Reconnecting ──▶ Transaction
//!   final failure, Timer F, unregistered ──▶ Done
//! ```
//!
//! Transport errors on UDP are *soft* (issue 14 item 5): an ICMP port-unreachable on the shared
//! socket may be forged by anyone who can guess the socket's port, so it never ends a
//! transaction; the request is retransmitted until Timer F, which then reports
//! [`SipError::Unreachable`] instead of [`SipError::Timeout`]. On TCP and TLS the connection's
//! errors are its own and end the transaction at once.
//!
//! "This target did not answer" is a clean outcome: a first registration that ends with an
//! error for which [`SipError::is_target_failure`] holds leaves the machine `Done` and unbound,
//! and [`Registration::retarget`] starts it again from another address (DNS failover).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::account::Account;
use super::address::Address;
use super::digest::{Answered, Challenge, ChallengeError, DigestPolicy, PolicyRefusal};
use super::dns::LocateError;
use super::host::Host;
use super::message::{self, Message, StartLine};
use super::transport::Kind;
use super::transport_error::TransportError;
use super::uri::{Scheme, SipUri};

/// Timing and identity settings of a registration.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Requested expiry, seconds.
    pub expires: u32,
    /// RFC 3261 T1: the first UDP retransmission interval (Timer E starts at T1, doubles).
    pub t1: Duration,
    /// RFC 3261 T2: the cap of the retransmission interval, and the interval after a 1xx.
    pub t2: Duration,
    /// Timer F: a transaction without a final response ends after this long.
    pub timer_f: Duration,
    /// Longest Retry-After honoured; longer ones fail the attempt.
    pub max_retry_after: Duration,
    /// Interval of CRLF keep-alives on an idle TCP or TLS connection; zero: none.
    pub keepalive: Duration,
    /// User-Agent header value.
    pub user_agent: String,
    /// Which digest challenges are answered (`min_digest_algorithm`, `allow_rfc2069_digest`).
    pub digest: DigestPolicy,
}

/// Why a registration failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// The registrar refused the credentials (403, or 401/407 again after answering).
    #[error("the registrar refused the credentials ({status})")]
    AuthFailed {
        /// The final status.
        status: u16,
    },
    /// Any other final failure. The text shows the status and its standard reason phrase;
    /// the registrar's own phrase, which is free text, is kept for the log (`Debug`).
    #[error("the registrar rejected the registration: {}", status_text(*.status))]
    Rejected {
        /// The final status.
        status: u16,
        /// The registrar's reason phrase (for logs only).
        reason: String,
    },
    /// A 2xx that granted a registration 0 seconds.
    #[error("the registrar kept no binding (it granted 0 seconds)")]
    NoBinding {
        /// The 2xx status.
        status: u16,
    },
    /// A 401/407 whose challenge cannot be answered.
    #[error("cannot answer the registrar's challenge: {error}")]
    BadChallenge {
        /// 401 or 407.
        status: u16,
        /// Why.
        error: ChallengeError,
    },
    /// The registrar's challenge is below the gateway's digest policy; it was not answered.
    #[error("the gateway's digest policy refuses the challenge ({status}): {why}")]
    DigestRefused {
        /// The challenge's status (401 or 407).
        status: u16,
        /// Which rule refused it.
        why: PolicyRefusal,
    },
    /// No final response before Timer F, and no sign of the registrar being unreachable.
    #[error("no answer from the registrar")]
    Timeout,
    /// The registrar could not be resolved or reached, or its connection failed. Over UDP:
    /// Timer F after an ICMP error.
    #[error("registrar unreachable: {0}")]
    Unreachable(TransportError),
    /// Server location (RFC 3263) found no address to send to.
    #[error("registrar not found: {0}")]
    NotFound(LocateError),
    /// `allowed_registrars` refuses the host the token names or every address it resolves to;
    /// nothing was sent to it.
    #[error("this gateway does not register with the registrar the token names")]
    NotAllowed,
}

impl From<LocateError> for SipError {
    fn from(e: LocateError) -> SipError {
        if e.is_not_allowed() {
            SipError::NotAllowed
        } else {
            SipError::NotFound(e)
        }
    }
}

/// `404 Not Found`: the status and the standard phrase (none for unknown codes).
fn status_text(status: u16) -> String {
    match message::reason_phrase(status) {
        Some(p) => format!("{status} {p}"),
        None => status.to_string(),
    }
}

impl SipError {
    /// The SIP status, when there was a final response.
    pub fn status(&self) -> Option<u16> {
        match self {
            SipError::AuthFailed { status }
            | SipError::Rejected { status, .. }
            | SipError::NoBinding { status }
            | SipError::BadChallenge { status, .. }
            | SipError::DigestRefused { status, .. } => Some(*status),
            SipError::Timeout
            | SipError::Unreachable(_)
            | SipError::NotFound(_)
            | SipError::NotAllowed => None,
        }
    }

    /// Whether another address of the registrar might do better (RFC 3263 §4.3): no answer
    /// (Timer F), unreachable, or 503 Service Unavailable without a usable Retry-After.
    pub fn is_target_failure(&self) -> bool {
        matches!(
            self,
            SipError::Timeout | SipError::Unreachable(_) | SipError::Rejected { status: 503, .. }
        )
    }
}

/// What a registration reports to its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Registered (or refreshed) for this many seconds.
    Registered {
        /// The expiry the registrar granted.
        expires: u32,
    },
    /// The first registration failed; the registration has ended. (Boxed: events queue in a
    /// channel per session, whose buffer is sized by the largest event.)
    Failed(Box<SipError>),
    /// A refresh failed; the registration has ended.
    Lost(Box<SipError>),
    /// Unregistered after a request to stop (or the attempt failed, which the log says); the
    /// registration has ended.
    Unregistered,
}

/// What a message to send is, for the driver's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransmitKind {
    /// A new REGISTER transaction.
    Request,
    /// A UDP retransmission of the current REGISTER.
    Retransmission,
    /// A response to a request from the registrar.
    Response,
    /// A CRLF keep-alive on a connection (RFC 5626 §3.5.1).
    KeepAlive,
}

/// Bytes to send to the registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// What they are.
    pub kind: TransmitKind,
    /// The message.
    pub data: Vec<u8>,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes on the registration's transport.
    Transmit(Transmit),
    /// Report this to the session.
    Event(Event),
    /// The connection (TCP, TLS) is gone: open a new one, then call
    /// [`Registration::reconnected`] or [`Registration::reconnect_failed`].
    Reconnect,
}

/// What an attempt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Register,
    Refresh,
    Unregister,
}

/// One registration, refresh or unregistration, over as many requests as its challenges and
/// retries take: each kind of retry is bounded (one fresh answer per challenge kind, two stale
/// nonces, two 423s, two 5xx back-offs), so an attempt sends at most nine requests.
#[derive(Debug)]
struct Attempt {
    purpose: Purpose,
    expires: u32,
    /// Whether a fresh (not `stale`) challenge of each kind (401, 407) was answered.
    answered_fresh: [bool; 2],
    stale_retries: u32,
    interval_retries: u32,
    busy_retries: u32,
}

impl Attempt {
    fn new(purpose: Purpose, expires: u32) -> Attempt {
        Attempt {
            purpose,
            expires,
            answered_fresh: [false; 2],
            stale_retries: 0,
            interval_retries: 0,
            busy_retries: 0,
        }
    }
}

/// The REGISTER client transaction in flight.
#[derive(Debug)]
struct Transaction {
    attempt: Attempt,
    request: Vec<u8>,
    branch: String,
    cseq: u32,
    /// Timer E's current interval (UDP).
    interval: Duration,
    /// When to retransmit next (UDP only).
    retransmit_at: Option<Instant>,
    /// Timer F.
    deadline: Instant,
    /// A soft (UDP) transport error seen during the transaction.
    soft_error: Option<TransportError>,
}

#[derive(Debug)]
enum State {
    Idle,
    Transaction(Box<Transaction>),
    Backoff { until: Instant, attempt: Attempt },
    Registered { refresh_at: Instant },
    Reconnecting(Purpose),
    Done,
}

/// One registration's state: identity (Call-ID, tags, CSeq), the challenges it answers, and
/// where it is in its life.
pub struct Registration {
    account: Account,
    timing: Timing,
    local: SocketAddr,
    contact_user: String,
    call_id: String,
    from_tag: String,
    cseq: u32,
    /// The last challenges answered: `[0]` from a 401 (registrar), `[1]` from a 407 (proxy). Both
    /// are answered in every later request, each with its own nonce count.
    challenges: [Option<Answered>; 2],
    /// The registrar's last `Min-Expires` (423), honoured by later refreshes too.
    min_expires: u32,
    /// The Contact of a connection that was replaced: removed (`expires=0`) by the next
    /// REGISTER, so a reconnect leaves no stale binding behind.
    replaced_contact: Option<SipUri>,
    /// A REGISTER succeeded: there is a binding to refresh or remove.
    bound: bool,
    /// Unregistering was asked for.
    stop: bool,
    /// The unregistration already reconnected once.
    unregister_reconnected: bool,
    /// The first registration ended with a failure another target might not have.
    target_failed: bool,
    /// Another address of the registrar remains to be tried (see
    /// [`Registration::set_alternatives`]).
    alternatives: bool,
    keepalive_at: Option<Instant>,
    state: State,
    out: VecDeque<Output>,
}

/// `bytes` random bytes (at most 16) as lower-case hex, from the OS.
pub fn random_hex(bytes: usize) -> String {
    let id = siptoken::TokenId::random().0;
    hex::encode(&id[..bytes.min(16)])
}

/// How long after a successful registration to refresh: 55–85 % of the granted expiry (random
/// per refresh, so many sessions spread out), at least one second.
pub fn refresh_delay(granted: u32) -> Duration {
    let frac = 0.55 + 0.30 * (rand::random::<u32>() as f64 / u32::MAX as f64);
    Duration::from_secs_f64((granted as f64 * frac).max(1.0))
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

impl Registration {
    /// A registration of `account` from `local` (the transport's local address), identified
    /// on a shared UDP socket by `route` (see [`super::udp`]): the Call-ID is `route@siptoken`
    /// and the Contact user `st-route`. Nothing is sent before [`Registration::start`].
    pub fn new(account: Account, timing: Timing, route: &str, local: SocketAddr) -> Registration {
        Registration {
            account,
            timing,
            local,
            contact_user: format!("st-{route}"),
            call_id: format!("{route}@siptoken"),
            from_tag: random_hex(8),
            cseq: 0,
            challenges: [None, None],
            min_expires: 0,
            replaced_contact: None,
            bound: false,
            stop: false,
            unregister_reconnected: false,
            target_failed: false,
            alternatives: false,
            keepalive_at: None,
            state: State::Idle,
            out: VecDeque::new(),
        }
    }

    /// Sends the first REGISTER.
    pub fn start(&mut self, now: Instant) {
        if matches!(self.state, State::Idle) {
            self.begin(now, Purpose::Register);
        }
    }

    /// After a first registration failed with an error for which
    /// [`SipError::is_target_failure`] holds: starts again towards another address of the
    /// registrar, over `transport` (NAPTR and SRV records may name several) from `local` (the
    /// new transport's address). Returns `false` (and does nothing) in any other state. (For
    /// the driver's DNS failover, RFC 3263 §4.3.)
    pub fn retarget(&mut self, now: Instant, transport: Kind, local: SocketAddr) -> bool {
        if !matches!(self.state, State::Done) || self.bound || !self.target_failed || self.stop {
            return false;
        }
        self.account.transport = transport;
        self.local = local;
        self.challenges = [None, None];
        self.min_expires = 0;
        self.target_failed = false;
        self.begin(now, Purpose::Register);
        true
    }

    /// Tells the machine whether another address of the registrar remains to be tried. While
    /// one does, an ICMP error on UDP ends a first registration at once (a target failure, so
    /// the driver moves on, RFC 3263 §4.3) instead of being soft until Timer F: whoever forges
    /// one gains only a move to the next address, and a closed port costs milliseconds, not
    /// Timer F. With no alternative left, ICMP errors stay soft (issue 14 item 5).
    pub fn set_alternatives(&mut self, remain: bool) {
        self.alternatives = remain;
    }

    /// Asks for the binding to be removed (`Expires: 0`), after the transaction in flight if
    /// there is one. Ends with [`Event::Unregistered`].
    pub fn unregister(&mut self, now: Instant) {
        if self.stop {
            return;
        }
        self.stop = true;
        match std::mem::replace(&mut self.state, State::Done) {
            State::Idle => self.report(Event::Unregistered),
            State::Registered { .. } => self.begin(now, Purpose::Unregister),
            State::Backoff { attempt, .. } if attempt.purpose != Purpose::Unregister => {
                if self.bound {
                    self.begin(now, Purpose::Unregister);
                } else {
                    self.report(Event::Unregistered);
                }
            }
            // A transaction finishes first; a reconnect is followed by the unregistration.
            other => self.state = other,
        }
    }

    /// Whether the registration has ended (its last event is queued).
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Whether a response is awaited (the shared UDP socket reports ICMP errors only then).
    pub fn awaiting_response(&self) -> bool {
        matches!(self.state, State::Transaction(_))
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`Registration::handle_timeout`] must be called next (`None`: only input wakes
    /// the registration).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Transaction(tx) => {
                Some(tx.retransmit_at.map_or(tx.deadline, |r| r.min(tx.deadline)))
            }
            State::Backoff { until, .. } => Some(*until),
            State::Registered { refresh_at } => Some(
                self.keepalive_at
                    .map_or(*refresh_at, |k| k.min(*refresh_at)),
            ),
            State::Idle | State::Reconnecting(_) | State::Done => None,
        }
    }

    /// This registration's Contact URI.
    pub fn contact(&self) -> SipUri {
        let mut c = SipUri::new(
            Scheme::Sip,
            None,
            Host::from(self.local.ip()),
            Some(self.local.port()),
        );
        c.user = Some(self.contact_user.clone());
        c.rest = match self.account.transport {
            Kind::Udp => String::new(),
            Kind::Tcp => ";transport=tcp".into(),
            Kind::Tls => ";transport=tls".into(),
        };
        c
    }

    /// The account (its transport: the one in use, after [`Registration::retarget`]).
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// The address of record.
    pub fn aor(&self) -> SipUri {
        self.account.aor()
    }

    /// Time passed: retransmits, gives up at Timer F, ends a backoff, refreshes, keeps a
    /// connection alive — whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(at) = self.keepalive_at {
            if now >= at {
                if matches!(self.state, State::Registered { .. }) {
                    self.transmit(TransmitKind::KeepAlive, b"\r\n\r\n".to_vec());
                }
                self.keepalive_at = Some(now + self.timing.keepalive);
            }
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Transaction(tx) if now >= tx.deadline => {
                let e = match tx.soft_error {
                    Some(e) => SipError::Unreachable(e),
                    None => SipError::Timeout,
                };
                self.finish(now, tx.attempt.purpose, Err(e));
            }
            State::Transaction(mut tx) => {
                if tx.retransmit_at.is_some_and(|at| now >= at) {
                    self.transmit(TransmitKind::Retransmission, tx.request.clone());
                    tx.interval = (tx.interval * 2).min(self.timing.t2);
                    tx.retransmit_at = Some(now + tx.interval);
                }
                self.state = State::Transaction(tx);
            }
            State::Backoff { until, attempt } if now >= until => self.send_request(now, attempt),
            State::Registered { refresh_at } if now >= refresh_at => {
                self.begin(now, Purpose::Refresh)
            }
            other => self.state = other,
        }
    }

    /// A message arrived: a response to the transaction in flight (anything else is ignored),
    /// or a request from the registrar (OPTIONS is answered 200, ACK not at all, anything else
    /// 405).
    pub fn handle_message(&mut self, now: Instant, m: &Message) {
        if let Some(method) = m.method() {
            return self.answer(method, m);
        }
        let Some(code) = m.code() else { return };
        let State::Transaction(tx) = &mut self.state else {
            tracing::debug!("ignoring a response outside a transaction");
            return;
        };
        let ours = m.header("call-id").map(str::trim) == Some(self.call_id.as_str())
            && m.top_via_branch() == Some(tx.branch.as_str())
            && m.cseq() == Some((tx.cseq, "REGISTER"));
        if !ours {
            tracing::debug!("ignoring a response to another transaction");
            return;
        }
        if code < 200 {
            // Proceeding: retransmit at T2 (RFC 3261 §17.1.2.2).
            if tx.retransmit_at.is_some() {
                tx.interval = self.timing.t2;
                tx.retransmit_at = Some(now + self.timing.t2);
            }
            return;
        }
        let State::Transaction(tx) = std::mem::replace(&mut self.state, State::Done) else {
            unreachable!("checked above")
        };
        self.on_final(now, tx.attempt, m, code);
    }

    /// The transport reported an error. Over UDP it is soft: noted, and reported only if
    /// Timer F then expires. A connection's error ends the transaction in flight (an
    /// unregistration reconnects once), or, when idle, asks for a new connection and
    /// re-registers on it.
    pub fn handle_transport_error(&mut self, now: Instant, e: TransportError) {
        if self.account.transport == Kind::Udp {
            if let State::Transaction(tx) = &self.state {
                if self.alternatives && !self.bound && tx.attempt.purpose == Purpose::Register {
                    tracing::debug!("{e} on the UDP socket: trying the next address");
                    self.finish(now, Purpose::Register, Err(SipError::Unreachable(e)));
                    return;
                }
            }
            if let State::Transaction(tx) = &mut self.state {
                tracing::debug!(
                    "{e} on the UDP socket: a soft error, retransmitting until Timer F"
                );
                tx.soft_error.get_or_insert(e);
            }
            return;
        }
        match std::mem::replace(&mut self.state, State::Done) {
            State::Transaction(tx)
                if tx.attempt.purpose == Purpose::Unregister && !self.unregister_reconnected =>
            {
                self.unregister_reconnected = true;
                self.state = State::Reconnecting(Purpose::Unregister);
                self.out.push_back(Output::Reconnect);
            }
            State::Transaction(tx) => {
                self.finish(now, tx.attempt.purpose, Err(SipError::Unreachable(e)))
            }
            State::Backoff { attempt, .. } => {
                self.finish(now, attempt.purpose, Err(SipError::Unreachable(e)))
            }
            State::Registered { .. } => {
                tracing::info!(aor = %self.aor(), "{e} while idle: reconnecting");
                self.state = State::Reconnecting(Purpose::Refresh);
                self.out.push_back(Output::Reconnect);
            }
            other => self.state = other,
        }
    }

    /// The driver opened the connection [`Output::Reconnect`] asked for, from `local`: the
    /// registration (or unregistration) goes on, and its REGISTER also removes the old
    /// Contact.
    pub fn reconnected(&mut self, now: Instant, local: SocketAddr) {
        let State::Reconnecting(purpose) = self.state else {
            return;
        };
        if self.bound {
            self.replaced_contact = Some(self.contact());
        }
        self.local = local;
        let purpose = if self.stop {
            Purpose::Unregister
        } else {
            purpose
        };
        self.begin(now, purpose);
    }

    /// The driver could not open the connection [`Output::Reconnect`] asked for.
    pub fn reconnect_failed(&mut self, now: Instant, e: TransportError) {
        if let State::Reconnecting(purpose) = self.state {
            self.finish(now, purpose, Err(SipError::Unreachable(e)));
        }
    }

    fn transmit(&mut self, kind: TransmitKind, data: Vec<u8>) {
        self.out
            .push_back(Output::Transmit(Transmit { kind, data }));
    }

    fn report(&mut self, e: Event) {
        self.out.push_back(Output::Event(e));
    }

    fn begin(&mut self, now: Instant, purpose: Purpose) {
        let expires = match purpose {
            Purpose::Unregister => 0,
            _ => self.timing.expires.max(self.min_expires),
        };
        self.send_request(now, Attempt::new(purpose, expires));
    }

    fn send_request(&mut self, now: Instant, attempt: Attempt) {
        self.cseq += 1;
        let branch = format!("z9hG4bK{}", random_hex(10));
        let request = self.request(attempt.expires, &branch).into_bytes();
        self.transmit(TransmitKind::Request, request.clone());
        let udp = self.account.transport == Kind::Udp;
        self.state = State::Transaction(Box::new(Transaction {
            attempt,
            request,
            branch,
            cseq: self.cseq,
            interval: self.timing.t1,
            retransmit_at: udp.then(|| now + self.timing.t1),
            deadline: now + self.timing.timer_f,
            soft_error: None,
        }));
    }

    /// Ends an attempt: reports it, and moves on (refresh timer, unregistration, or done).
    fn finish(&mut self, now: Instant, purpose: Purpose, result: Result<u32, SipError>) {
        self.state = State::Done;
        match (purpose, result) {
            (Purpose::Register | Purpose::Refresh, Ok(granted)) => {
                self.bound = true;
                self.report(Event::Registered { expires: granted });
                if self.account.transport.is_stream() && !self.timing.keepalive.is_zero() {
                    self.keepalive_at = Some(now + self.timing.keepalive);
                }
                if self.stop {
                    self.begin(now, Purpose::Unregister);
                } else {
                    self.state = State::Registered {
                        refresh_at: now + refresh_delay(granted),
                    };
                }
            }
            (Purpose::Register, Err(e)) => {
                self.target_failed = !self.bound && e.is_target_failure();
                self.report(Event::Failed(Box::new(e)));
            }
            (Purpose::Refresh, Err(e)) => self.report(Event::Lost(Box::new(e))),
            (Purpose::Unregister, result) => {
                match result {
                    Ok(_) => {
                        tracing::info!(aor = %self.aor(), contact = %self.contact(), "unregistered")
                    }
                    Err(e) => {
                        tracing::warn!(aor = %self.aor(), "unregistration failed: {e} ({e:?})")
                    }
                }
                self.report(Event::Unregistered);
            }
        }
    }

    fn on_final(&mut self, now: Instant, mut attempt: Attempt, m: &Message, status: u16) {
        let purpose = attempt.purpose;
        let rejected = || {
            let reason = match &m.start {
                StartLine::Response { reason, .. } => reason.clone(),
                StartLine::Request { .. } => String::new(),
            };
            SipError::Rejected { status, reason }
        };
        match status {
            200..=299 => {
                self.replaced_contact = None;
                if purpose == Purpose::Unregister {
                    return self.finish(now, purpose, Ok(0));
                }
                let granted = self.granted(m, attempt.expires);
                let result = if granted == 0 {
                    Err(SipError::NoBinding { status })
                } else {
                    Ok(granted)
                };
                self.finish(now, purpose, result);
            }
            401 | 407 => {
                let proxy = usize::from(status == 407);
                let name = if proxy == 1 {
                    "proxy-authenticate"
                } else {
                    "www-authenticate"
                };
                let ch = match Challenge::choose_with(m.headers_named(name), &self.timing.digest) {
                    Ok(c) => c,
                    Err(ChallengeError::Policy(why)) => {
                        return self.finish(
                            now,
                            purpose,
                            Err(SipError::DigestRefused { status, why }),
                        )
                    }
                    Err(error) => {
                        return self.finish(
                            now,
                            purpose,
                            Err(SipError::BadChallenge { status, error }),
                        )
                    }
                };
                if ch.stale {
                    attempt.stale_retries += 1;
                    if attempt.stale_retries > 2 {
                        return self.finish(now, purpose, Err(SipError::AuthFailed { status }));
                    }
                } else if attempt.answered_fresh[proxy] {
                    return self.finish(now, purpose, Err(SipError::AuthFailed { status }));
                }
                attempt.answered_fresh[proxy] = true;
                self.challenges[proxy] = Some(Answered::new(ch, proxy == 1, random_hex(8)));
                self.send_request(now, attempt);
            }
            403 => self.finish(now, purpose, Err(SipError::AuthFailed { status })),
            423 => {
                let min = m
                    .header("min-expires")
                    .and_then(|v| v.trim().parse::<u32>().ok());
                match min {
                    // An unregistration asks for 0 seconds, which no Min-Expires fixes.
                    Some(min)
                        if purpose != Purpose::Unregister
                            && min > attempt.expires
                            && attempt.interval_retries < 2 =>
                    {
                        attempt.interval_retries += 1;
                        tracing::info!(aor = %self.aor(), min_expires = min, "423 Interval Too Brief: retrying");
                        attempt.expires = min;
                        self.min_expires = min;
                        self.send_request(now, attempt);
                    }
                    _ => self.finish(now, purpose, Err(rejected())),
                }
            }
            500..=599 => {
                let after = m.header("retry-after").and_then(|v| {
                    let v = v.trim();
                    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
                    v[..digits].parse::<u64>().ok()
                });
                match after {
                    Some(s)
                        if attempt.busy_retries < 2
                            && Duration::from_secs(s) <= self.timing.max_retry_after =>
                    {
                        attempt.busy_retries += 1;
                        tracing::info!(aor = %self.aor(), status, retry_after = s, "registrar busy: backing off");
                        self.state = State::Backoff {
                            until: now + Duration::from_secs(s),
                            attempt,
                        };
                    }
                    _ => self.finish(now, purpose, Err(rejected())),
                }
            }
            _ => self.finish(now, purpose, Err(rejected())),
        }
    }

    /// The expiry granted in a 2xx: our Contact's `expires`, else `Expires`, else requested.
    fn granted(&self, resp: &Message, requested: u32) -> u32 {
        let ours = self.contact();
        for c in resp.list("contact") {
            let Ok(a) = Address::parse(c) else { continue };
            let same = SipUri::parse(a.uri).is_ok_and(|u| u.same_binding(&ours));
            if !same {
                continue;
            }
            if let Some(e) = a
                .param("expires")
                .and_then(|p| p.unquoted())
                .and_then(|v| v.trim().parse().ok())
            {
                return e;
            }
        }
        resp.header("expires")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(requested)
    }

    fn request(&mut self, expires: u32, branch: &str) -> String {
        let a = &self.account;
        let aor = a.aor();
        let uri = a.registrar_uri().to_string();
        let name = a
            .display_name
            .as_deref()
            .map(|n| format!("{} ", quote_display(n)))
            .unwrap_or_default();
        let via_host = Host::from(self.local.ip());
        let mut r = format!(
            "REGISTER {uri} SIP/2.0\r\n\
             Via: SIP/2.0/{} {via_host}:{};rport;branch={branch}\r\n\
             Max-Forwards: 70\r\n\
             From: {name}<{aor}>;tag={}\r\n\
             To: {name}<{aor}>\r\n\
             Call-ID: {}\r\n\
             CSeq: {} REGISTER\r\n\
             Contact: <{}>;expires={expires}\r\n\
             Expires: {expires}\r\n\
             Allow: OPTIONS\r\n\
             User-Agent: {}\r\n",
            a.transport.via_name(),
            self.local.port(),
            self.from_tag,
            self.call_id,
            self.cseq,
            self.contact(),
            self.timing.user_agent,
        );
        if let Some(old) = &self.replaced_contact {
            r.push_str(&format!("Contact: <{old}>;expires=0\r\n"));
        }
        for ans in self.challenges.iter_mut().flatten() {
            let (h, value) = ans.next_header(&a.auth_name, &a.password, "REGISTER", &uri);
            r.push_str(&format!("{h}: {value}\r\n"));
        }
        r.push_str("Content-Length: 0\r\n\r\n");
        r
    }

    /// Answers a request from the registrar.
    fn answer(&mut self, method: &str, m: &Message) {
        if method == "ACK" {
            return;
        }
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
        self.transmit(TransmitKind::Response, resp.into_bytes());
    }
}

#[cfg(test)]
mod tests;
