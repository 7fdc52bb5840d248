//! The REGISTER client's driver: one task per registration that finds the registrar (RFC 3263),
//! opens the transport, and runs the sans-IO [`Registration`] machine — handing it what
//! arrives (messages, transport errors, timeouts, the session's commands) and carrying out
//! what it asks for (send, reconnect, report). The SIP logic itself is in
//! [`super::registration`].

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::agent::{Agent, COMMAND_QUEUE};
use super::call::Local;
use super::dns;
use super::host::Host;
use super::incoming::{self, Disposition};
use super::message::Message;
use super::registration::{self, Output, Registration, Timing, TransmitKind};
use super::transport::{self, Kind, SipSocket, TlsTarget};
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
    /// Look up DNS SRV records when a token names a host without a port.
    pub srv_lookup: bool,
    /// Name servers for SRV lookups; empty: those in /etc/resolv.conf.
    pub dns_servers: Vec<std::net::SocketAddr>,
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
            user_agent: format!("siptoken-gateway/{}", env!("CARGO_PKG_VERSION")),
            srv_lookup: true,
            dns_servers: Vec::new(),
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

/// Where to send, in order (RFC 3263 §4): the token's host and port when a port is given or the
/// host is an IP address; else the targets of `_sip._udp.HOST` / `_sip._tcp.HOST` SRV records;
/// else HOST:5060.
async fn targets(account: &Account, settings: &SipSettings) -> Vec<(String, u16)> {
    let host = account.host.bare();
    if let Some(port) = account.port {
        return vec![(host, port)];
    }
    if account.host.ip().is_some() || !settings.srv_lookup {
        return vec![(host, 5060)];
    }
    // RFC 3263 §4.2: TLS is `_sips._tcp`.
    let service = match account.transport {
        Kind::Udp => "_sip._udp",
        Kind::Tcp => "_sip._tcp",
        Kind::Tls => "_sips._tcp",
    };
    let name = format!("{service}.{host}");
    let servers = if settings.dns_servers.is_empty() {
        dns::system_nameservers()
    } else {
        settings.dns_servers.clone()
    };
    let timeout = settings.transaction_timeout.min(Duration::from_secs(2));
    match dns::lookup_srv(&servers, &name, timeout).await {
        Ok(records) if !records.is_empty() => {
            tracing::debug!(%name, ?records, "SRV");
            records.into_iter().map(|r| (r.target, r.port)).collect()
        }
        Ok(_) => vec![(host, 5060)],
        Err(e) => {
            tracing::debug!(%name, "SRV lookup failed ({e}); using A/AAAA");
            vec![(host, 5060)]
        }
    }
}

/// The TLS configuration and the name the registrar's certificate must carry: the host the
/// token names (`outboundProxy`, else `domain`), a DNS name or an IP address.
fn tls_target(account: &Account, settings: &SipSettings) -> Result<TlsTarget, TransportError> {
    let config = settings
        .tls
        .clone()
        .ok_or(TransportError::TlsNotConfigured)?;
    let name = match &account.host {
        Host::Name(n) => rustls::pki_types::ServerName::try_from(n.clone())
            .map_err(|_| TransportError::TlsName)?,
        h => rustls::pki_types::ServerName::from(h.ip().expect("an address")),
    };
    Ok(TlsTarget { config, name })
}

/// Resolves the registrar and opens the transport, trying the targets in order. `route` is
/// the registration's identifier on a shared UDP socket (see [`super::udp`]).
async fn connect(
    account: &Account,
    settings: &SipSettings,
    route: &str,
) -> Result<SipSocket, TransportError> {
    let tls = match account.transport {
        Kind::Tls => Some(tls_target(account, settings)?),
        _ => None,
    };
    let mut last = TransportError::NoAddress;
    for (host, port) in targets(account, settings).await {
        let peer = match transport::resolve(
            &host,
            port,
            settings.bind,
            settings.transaction_timeout,
        )
        .await
        {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(%host, port, "cannot resolve the registrar: {e}");
                last = e;
                continue;
            }
        };
        match SipSocket::connect(
            account.transport,
            settings.bind,
            peer,
            settings.transaction_timeout,
            tls.clone(),
            route,
        )
        .await
        {
            Ok(s) => return Ok(s),
            Err(e) => {
                tracing::info!(%host, %peer, "cannot reach the registrar: {e}");
                last = e;
            }
        }
    }
    Err(last)
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

/// Starts a registration task. It reports `(id, Report)` on `events`; sending
/// [`Command::Unregister`] or dropping the returned sender makes it hang up its calls,
/// unregister and end. With `calls`, it carries calls too. `alive` is held until the task ends
/// (shutdown waits for such guards to drop).
pub fn spawn(
    id: u64,
    account: Account,
    settings: SipSettings,
    calls: Option<CallContext>,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<(u64, Report)>,
    alive: impl Send + 'static,
) -> mpsc::Sender<Command> {
    let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
    tokio::spawn(async move {
        let _alive = alive;
        run(id, account, settings, calls, metrics, events, rx).await;
    });
    tx
}

/// The registration task: connects, then feeds the machine until it is done. The connect is
/// boxed (DNS and TLS make it a large future, which would otherwise size the task's state for
/// its whole life, almost all of it spent idle between refreshes).
async fn run(
    id: u64,
    account: Account,
    settings: SipSettings,
    calls: Option<CallContext>,
    metrics: Arc<Metrics>,
    events: mpsc::UnboundedSender<(u64, Report)>,
    mut commands: mpsc::Receiver<Command>,
) {
    let aor = account.aor().to_string();
    let send = |e: Event| {
        let _ = events.send((id, Report::Registration(e)));
    };
    let route = registration::random_hex(12);
    let mut sock = match Box::pin(connect(&account, &settings, &route)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%aor, "registration failed: {e}");
            send(Event::Failed(Box::new(SipError::Unreachable(e))));
            return;
        }
    };
    let peer = sock.peer_addr();
    let caller = calls.map(|ctx| {
        (
            ctx,
            account.auth_name.clone(),
            account.password.clone(),
            account.display_name.clone(),
            account.domain.to_string(),
            account.transport,
        )
    });
    let mut reg = Registration::new(account, settings.timing(), &route, sock.local_addr());
    let mut agent = caller.map(
        |(ctx, auth_name, password, display_name, domain, transport)| {
            let local = Local {
                aor: reg.aor().to_string(),
                display_name,
                contact: reg.contact().to_string(),
                sent_by: sock.local_addr().to_string(),
                transport,
                route: route.clone(),
                auth_name,
                password,
            };
            Agent::new(ctx, local, domain, sock.local_addr().ip())
        },
    );
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
                let _ = events.send((id, Report::Call { call, update }));
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
                    let _ = events.send((id, Report::Call { call, update }));
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
