//! The REGISTER client's driver: one task per registration that finds the registrar (RFC 3263),
//! opens the transport, and runs the sans-IO [`Registration`] machine — handing it what
//! arrives (messages, transport errors, timeouts, the session's commands) and carrying out
//! what it asks for (send, reconnect, report). The SIP logic itself is in
//! [`super::registration`].

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::agent::{Agent, COMMAND_QUEUE};
use super::allowed_registrars::AllowedRegistrars;
use super::call::Local;
use super::dns::{self, Candidate};
use super::host::Host;
use super::incoming::{self, Disposition};
use super::message::Message;
use super::registration::{self, Output, Registration, Timing, TransmitKind};
use super::transport::{Kind, SipSocket, TlsTarget};
use super::transport_error::TransportError;
use crate::media::MediaEvent;
use crate::metrics::Metrics;

pub use super::account::{Account, AccountClaims};
pub use super::agent::{CallCommand, CallContext, CallUpdate, Refusal};
pub use super::registration::{Event, SipError};

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
    /// Which digest challenges are answered (`min_digest_algorithm`, `allow_rfc2069_digest`).
    pub digest: super::digest::DigestPolicy,
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
            user_agent: super::user_agent(),
            dns: dns::Resolver::new(&[], true, IpAddr::from([0u8; 4])),
            allowed_registrars: AllowedRegistrars::default(),
            tcp_keepalive: Duration::from_secs(30),
            tls: None,
            digest: super::digest::DigestPolicy::default(),
        }
    }
}

impl SipSettings {
    /// The registration machine's timers and identity.
    pub fn timing(&self) -> Timing {
        Timing {
            expires: self.expires,
            t1: self.t1,
            t2: self.t2,
            timer_f: self.transaction_timeout,
            max_retry_after: self.max_retry_after,
            keepalive: self.tcp_keepalive,
            user_agent: self.user_agent.clone(),
            digest: self.digest,
        }
    }
}

/// Where to send, in order (RFC 3263 §4, see [`dns::Resolver::locate`]), after the
/// `allowed_registrars` checks.
async fn locate(
    account: &Account,
    given: Option<Kind>,
    settings: &SipSettings,
) -> Result<VecDeque<Candidate>, SipError> {
    let host = account.host.bare();
    let target = dns::Target {
        host: &host,
        port: account.port,
        transport: given,
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
                tracing::warn!(aor = %account.aor(), %host, "registrar refused by allowed_registrars: {e}");
            } else {
                tracing::info!(aor = %account.aor(), %host, "cannot locate the registrar: {e:?}");
            }
            Err(e.into())
        }
    }
}

/// The TLS configuration and the name the registrar's certificate must carry: the host the
/// token names (`outboundProxy`, else `domain`), a DNS name or an IP address — also when SRV
/// records point elsewhere (RFC 3263 §4.1 keeps the domain as the identity to check).
fn tls_target(host: &Host, settings: &SipSettings) -> Result<TlsTarget, TransportError> {
    let config = settings
        .tls
        .clone()
        .ok_or(TransportError::TlsNotConfigured)?;
    let name = match host {
        Host::Name(n) => rustls::pki_types::ServerName::try_from(n.clone())
            .map_err(|_| TransportError::TlsName)?,
        h => rustls::pki_types::ServerName::from(h.ip().expect("an address")),
    };
    Ok(TlsTarget { config, name })
}

/// Opens a transport to the first of `candidates` that accepts one (a TCP connection refused or
/// timed out, a failed TLS handshake: the next), removing the candidates it used up. `route`
/// is the registration's identifier on a shared UDP socket (see [`super::udp`]).
async fn open_next(
    candidates: &mut VecDeque<Candidate>,
    host: &Host,
    settings: &SipSettings,
    route: &str,
) -> Result<(SipSocket, Kind), SipError> {
    let mut last = TransportError::NoAddress;
    while let Some(c) = candidates.pop_front() {
        let tls = match c.transport {
            Kind::Tls => Some(tls_target(host, settings).map_err(SipError::Unreachable)?),
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
            Ok(s) => return Ok((s, c.transport)),
            Err(e) => {
                tracing::info!(%host, peer = %c.addr, transport = c.transport.via_name(), "cannot open a transport ({e}): trying the next candidate");
                last = e;
            }
        }
    }
    Err(SipError::Unreachable(last))
}

/// The call side of a registration, from what the machine knows of the account and the
/// transport in use.
fn agent_for(ctx: CallContext, reg: &Registration, sock: &SipSocket, route: &str) -> Agent {
    let account = reg.account();
    let local = Local {
        aor: reg.aor().to_string(),
        display_name: account.display_name.clone(),
        contact: reg.contact().to_string(),
        sent_by: sock.local_addr().to_string(),
        transport: account.transport,
        route: route.to_owned(),
        auth_name: account.auth_name.clone(),
        password: account.password.clone(),
    };
    Agent::new(
        ctx,
        local,
        account.domain.to_string(),
        sock.local_addr().ip(),
    )
}

/// A request to a registration task.
#[derive(Debug)]
pub enum Command {
    /// Hang up every call, unregister and end.
    Unregister,
    /// Something about a call of this account.
    Call(CallCommand),
}

/// What a registration task reports about its account.
#[derive(Debug)]
pub enum Report {
    /// The registration's own events.
    Registration(Event),
    /// An update about one of its calls (`call`: the client's or the gateway's id).
    Call {
        /// The call's id.
        call: String,
        /// What happened.
        update: CallUpdate,
    },
}

/// Where a registration task reports: the session's channel, each report tagged with the
/// session's id for this registration.
#[derive(Clone)]
pub struct Reports {
    /// The session's id for this registration.
    pub id: u64,
    /// The session's channel.
    pub events: mpsc::UnboundedSender<(u64, Report)>,
}

impl Reports {
    /// Sends a report (dropped when the session has gone).
    fn send(&self, report: Report) {
        let _ = self.events.send((self.id, report));
    }

    fn call(&self, call: String, update: CallUpdate) {
        self.send(Report::Call { call, update });
    }
}

/// What a registration task is given.
pub struct Task {
    /// The account to register.
    pub account: Account,
    /// SIP timing, server location and identity.
    pub settings: SipSettings,
    /// With `Some`, the registration carries calls too.
    pub calls: Option<CallContext>,
    /// The gateway's counters.
    pub metrics: Arc<Metrics>,
    /// Where the task reports.
    pub reports: Reports,
}

/// Starts a registration task. It reports on `task.reports`; sending [`Command::Unregister`] or
/// dropping the returned sender makes it hang up its calls, unregister and end. `alive` is held
/// until the task ends (shutdown waits for such guards to drop).
pub fn spawn(task: Task, alive: impl Send + 'static) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    tokio::spawn(async move {
        let _alive = alive;
        run(task, rx).await;
    });
    tx
}

/// The registration task: connects, then feeds the machine until it is done. The connect is
/// boxed (DNS and TLS make it a large future, which would otherwise size the task's state for
/// its whole life, almost all of it spent idle between refreshes).
async fn run(task: Task, mut commands: mpsc::Receiver<Command>) {
    let Task {
        account,
        settings,
        calls,
        metrics,
        reports,
    } = task;
    let aor = account.aor().to_string();
    let send = |e: Event| {
        reports.send(Report::Registration(e));
    };
    let route = registration::random_hex(12);
    let given = account.transport_given.then_some(account.transport);
    let located = match Box::pin(locate(&account, given, &settings)).await {
        Ok(c) => c,
        Err(e) => {
            send(Event::Failed(Box::new(e)));
            return;
        }
    };
    let mut candidates = located;
    let (mut sock, transport) =
        match Box::pin(open_next(&mut candidates, &account.host, &settings, &route)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(%aor, "registration failed: {e}");
                send(Event::Failed(Box::new(e)));
                return;
            }
        };
    let mut account = account;
    account.transport = transport;
    let mut peer = sock.peer_addr();
    let mut reg = Registration::new(account, settings.timing(), &route, sock.local_addr());
    reg.set_alternatives(!candidates.is_empty());
    let mut agent = calls.clone().map(|ctx| agent_for(ctx, &reg, &sock, &route));
    reg.start(Instant::now().into_std());
    let mut registered_once = false;
    let mut commands_open = true;
    loop {
        while let Some(out) = reg.poll_output() {
            match out {
                Output::Transmit(t) => {
                    let counter = match t.kind {
                        TransmitKind::Request => Some(&metrics.sip_transactions),
                        TransmitKind::Retransmission => Some(&metrics.sip_retransmissions),
                        TransmitKind::Response => Some(&metrics.sip_requests_answered),
                        TransmitKind::KeepAlive => None,
                    };
                    if let Some(c) = counter {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Err(e) = sock.send(&t.data).await {
                        tracing::debug!(%aor, %peer, "send failed: {e}");
                        reg.handle_transport_error(Instant::now().into_std(), e);
                    }
                }
                Output::Reconnect => match Box::pin(sock.reconnect(&route)).await {
                    Ok(s) => {
                        sock = s;
                        reg.reconnected(Instant::now().into_std(), sock.local_addr());
                    }
                    Err(e) => {
                        tracing::warn!(%aor, %peer, "reconnect failed: {e}");
                        reg.reconnect_failed(Instant::now().into_std(), e);
                    }
                },
                Output::Event(Event::Failed(e))
                    if !registered_once && e.is_target_failure() && !candidates.is_empty() =>
                {
                    // RFC 3263 §4.3: the next candidate, with a fresh transport.
                    tracing::info!(%aor, %peer, "registrar did not answer ({e}): trying the next candidate");
                    let now = Instant::now().into_std();
                    let host = reg.account().host.clone();
                    match Box::pin(open_next(&mut candidates, &host, &settings, &route)).await {
                        Ok((s, transport)) => {
                            sock = s;
                            peer = sock.peer_addr();
                            reg.set_alternatives(!candidates.is_empty());
                            reg.retarget(now, transport, sock.local_addr());
                            // Calls placed before the registration went to the silent target.
                            if let Some(a) = agent.as_mut() {
                                a.hang_up_all(now);
                                while let Some((call, update)) = a.poll_update() {
                                    reports.call(call, update);
                                }
                            }
                            agent = calls.clone().map(|ctx| agent_for(ctx, &reg, &sock, &route));
                        }
                        Err(e) => {
                            tracing::warn!(%aor, "registration failed: {e}");
                            if let Some(a) = agent.as_mut() {
                                a.hang_up_all(now);
                            }
                            send(Event::Failed(Box::new(e)));
                        }
                    }
                }
                Output::Event(e) => {
                    match &e {
                        Event::Registered { expires } if registered_once => {
                            metrics.refreshes.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(%aor, expires, "refreshed");
                        }
                        Event::Registered { expires } => {
                            registered_once = true;
                            tracing::info!(%aor, contact = %reg.contact(), %peer, expires, "registered");
                        }
                        Event::Failed(e) => {
                            tracing::warn!(%aor, %peer, "registration failed: {e} ({e:?})")
                        }
                        Event::Lost(e) => {
                            tracing::warn!(%aor, %peer, "registration lost: {e} ({e:?})")
                        }
                        Event::Unregistered => {}
                    }
                    if matches!(e, Event::Failed(_) | Event::Lost(_)) {
                        // No registration, no calls: hang them up while the flow is there.
                        if let Some(a) = agent.as_mut() {
                            a.hang_up_all(Instant::now().into_std());
                        }
                    }
                    send(e);
                }
            }
        }
        if let Some(a) = agent.as_mut() {
            while let Some(bytes) = a.poll_transmit() {
                metrics.sip_transactions.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = sock.send(&bytes).await {
                    tracing::debug!(%aor, %peer, "send failed: {e}");
                }
            }
            while let Some((call, update)) = a.poll_update() {
                reports.call(call, update);
            }
        }
        if reg.is_done() {
            return;
        }
        sock.set_awaiting(reg.awaiting_response());
        let call_wake = agent.as_ref().and_then(Agent::poll_timeout);
        let wake = match (reg.poll_timeout(), call_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(Instant::from_std);
        let media = async {
            match agent.as_mut() {
                Some(a) => a.next_media_event().await,
                None => std::future::pending().await,
            }
        };
        enum Step {
            Command(Option<Command>),
            Message(Result<Message, TransportError>),
            Media(String, Option<MediaEvent>),
            Timeout,
        }
        let step = tokio::select! {
            c = commands.recv(), if commands_open => Step::Command(c),
            m = sock.recv() => Step::Message(m),
            (call, ev) = media => Step::Media(call, ev),
            _ = sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Step::Timeout,
        };
        let now = Instant::now().into_std();
        match step {
            Step::Command(Some(Command::Call(c))) => match agent.as_mut() {
                Some(a) => a.command(now, c),
                None => {
                    let update = CallUpdate::Refused {
                        refusal: Refusal::Failed,
                        message: "this gateway carries no calls".into(),
                    };
                    let call = c.call().to_owned();
                    reports.call(call, update);
                }
            },
            Step::Command(c) => {
                commands_open = c.is_some();
                if let Some(a) = agent.as_mut() {
                    a.hang_up_all(now);
                }
                reg.unregister(now);
            }
            Step::Message(Ok(m)) => {
                let taken = agent.as_mut().is_some_and(|a| a.handle_message(now, &m));
                if !taken {
                    match (agent.as_mut(), m.method()) {
                        (Some(a), Some(method)) if method != "OPTIONS" && method != "REGISTER" => {
                            match incoming::out_of_dialog(&m, |r| r == route) {
                                Disposition::NewCall => a.incoming(now, &m),
                                Disposition::Respond(bytes) => {
                                    if let Err(e) = sock.send(&bytes).await {
                                        tracing::debug!(%aor, %peer, "send failed: {e}");
                                    }
                                }
                                Disposition::Ignore => {}
                            }
                        }
                        _ => reg.handle_message(now, &m),
                    }
                }
            }
            Step::Message(Err(e)) => reg.handle_transport_error(now, e),
            Step::Media(call, ev) => {
                if let Some(a) = agent.as_mut() {
                    a.handle_media(now, &call, ev);
                }
            }
            Step::Timeout => {
                reg.handle_timeout(now);
                if let Some(a) = agent.as_mut() {
                    a.handle_timeout(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
