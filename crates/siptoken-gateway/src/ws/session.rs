//! One WebSocket session (`docs/gateway-protocol.md`): admission, the login deadline, the
//! accounts it logs in (one registration task each), its calls, the heartbeat, and the orderly
//! end (calls hung up, accounts unregistered) on logout, close or shutdown.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use tokio::sync::mpsc;

use super::protocol::{
    parse_client_message, valid_call_id, ClientMessage, ErrorCode, ServerMessage,
};
use crate::config::StoreFailure;
use crate::session_clock::{Expired, SessionClock};
use crate::sip::register::{
    self, Account, AccountClaims, CallCommand, CallUpdate, Command, Event, Refusal, Report,
};
use crate::sip::transport::Kind;
use crate::State;
use siptoken::{Transport, Verifier};

struct Registration {
    aor: String,
    /// `None` for `authenticated` accounts (no SIP) and once unregistering has been asked for.
    commands: Option<mpsc::Sender<Command>>,
    started: Instant,
    registered: bool,
    sip: bool,
}

/// A call of this socket, by its id.
struct LiveCall {
    /// The account (registration task) carrying it.
    account: u64,
    /// The client was told about it (`media` for its own calls, `incomingCall` for others);
    /// until then a refusal of the `call` itself ends it silently.
    announced: bool,
}

struct Session {
    state: Arc<State>,
    ip: IpAddr,
    accounts: HashMap<u64, Registration>,
    calls: HashMap<String, LiveCall>,
    next_id: u64,
    events: mpsc::UnboundedSender<(u64, Report)>,
    guard: tokio_util::task::task_tracker::TaskTrackerToken,
}

enum Step {
    Ws(Option<Result<WsMessage, axum::Error>>),
    Event((u64, Report)),
    Shutdown,
    Heartbeat,
    Deadline,
}

/// Whether a read error is a message or frame above `ws_max_message_bytes`.
fn too_big(e: axum::Error) -> bool {
    e.into_inner()
        .downcast_ref::<tungstenite::Error>()
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)))
}

/// How long one message may take to go out before the client counts as gone (a client that
/// stops reading must not hold its session forever).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn send(socket: &mut WebSocket, m: ServerMessage) -> bool {
    let frame = WsMessage::Text(m.to_json().into());
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Runs one WebSocket session until the client closes it or the gateway shuts down; every
/// account it registered is unregistered.
pub async fn run(mut socket: WebSocket, state: Arc<State>, ip: IpAddr) {
    let guard = state.tasks.token();
    let open = state.metrics.sessions.fetch_add(1, Ordering::Relaxed) + 1;
    struct Count(Arc<State>);
    impl Drop for Count {
        fn drop(&mut self) {
            self.0.metrics.sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _count = Count(state.clone());
    if open as usize > state.config.max_sessions {
        refuse(
            socket,
            &state,
            "the gateway has too many sessions; try again later",
        )
        .await;
        return;
    }
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut s = Session {
        state: state.clone(),
        ip,
        accounts: HashMap::new(),
        calls: HashMap::new(),
        next_id: 0,
        events: events_tx,
        guard,
    };
    let mut shutdown = state.shutdown.clone();
    let idle = Duration::from_secs(state.config.ws_idle_timeout_seconds);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + idle / 3, idle / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let login_timeout = Duration::from_secs(state.config.login_timeout_seconds);
    let mut clock = SessionClock::new(Instant::now(), login_timeout, idle);
    let shutting_down = loop {
        if *shutdown.borrow() {
            break true;
        }
        clock.accounts(s.accounts.len(), Instant::now());
        let deadline = tokio::time::Instant::from_std(clock.next_deadline());
        let step = tokio::select! {
            m = socket.recv() => Step::Ws(m),
            Some(e) = events.recv() => Step::Event(e),
            _ = shutdown.changed() => Step::Shutdown,
            _ = heartbeat.tick() => Step::Heartbeat,
            _ = tokio::time::sleep_until(deadline) => Step::Deadline,
        };
        // Only messages count as the client being there: pongs (and pings) are sent by any
        // client library by itself.
        if matches!(
            step,
            Step::Ws(Some(Ok(WsMessage::Text(_) | WsMessage::Binary(_))))
        ) {
            clock.message(Instant::now());
        }
        match step {
            Step::Shutdown => break true,
            Step::Deadline => {
                let Some(expired) = clock.expired(Instant::now()) else {
                    continue;
                };
                // A socket without an account must not hold a session slot for ever, nor a dead
                // peer (closed laptop, dropped network) its registrations.
                let (error_code, what, code, close) = match expired {
                    Expired::Login => (
                        ErrorCode::LoginTimeout,
                        "no account logged in in time",
                        4401,
                        "login timeout",
                    ),
                    Expired::Idle => (
                        ErrorCode::IdleTimeout,
                        "nothing received from the client in time",
                        4408,
                        "idle timeout",
                    ),
                };
                tracing::info!(ip = %s.ip, "WebSocket {close}: closing");
                state.metrics.closed(error_code.as_str());
                let _ = send(&mut socket, ServerMessage::error(error_code, what)).await;
                let close = socket.send(close_frame(code, close));
                let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
                break false;
            }
            Step::Heartbeat => {
                let ping = socket.send(WsMessage::Ping(Default::default()));
                if !matches!(tokio::time::timeout(SEND_TIMEOUT, ping).await, Ok(Ok(()))) {
                    break false;
                }
            }
            Step::Ws(Some(Err(e))) => {
                if too_big(e) {
                    tracing::info!(ip = %s.ip, "WebSocket message too big: closing");
                    state.metrics.closed("message_too_big");
                    let close = socket.send(close_frame(1009, "message too big"));
                    let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
                }
                break false;
            }
            Step::Ws(None | Some(Ok(WsMessage::Close(_)))) => break false,
            Step::Ws(Some(Ok(WsMessage::Text(t)))) => {
                let mut gone = false;
                // Boxed: a login (token check, replay store, registration start) is a large
                // future that would otherwise size every idle session's state.
                for v in Box::pin(s.handle(t.as_str())).await {
                    gone = gone || !send(&mut socket, v).await;
                }
                if gone {
                    break false;
                }
            }
            Step::Ws(Some(Ok(WsMessage::Binary(_)))) => {
                let e =
                    ServerMessage::error(ErrorCode::BadRequest, "binary frames are not supported");
                if !send(&mut socket, e).await {
                    break false;
                }
            }
            Step::Ws(Some(Ok(_))) => {}
            Step::Event(e) => {
                if let Some(v) = s.event(e) {
                    if !send(&mut socket, v).await {
                        break false;
                    }
                }
            }
        }
    };
    if shutting_down {
        // Unregister while the client can still be told, then close.
        for v in s.logout_all() {
            let _ = send(&mut socket, v).await;
        }
        let deadline =
            tokio::time::Instant::now() + state.sip.transaction_timeout + Duration::from_secs(1);
        while s.accounts.values().any(|a| a.sip) {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Ok(Some(e)) => {
                    if let Some(v) = s.event(e) {
                        let _ = send(&mut socket, v).await;
                    }
                }
                _ => break,
            }
        }
        let close = socket.send(close_frame(1001, "gateway shutting down"));
        let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
    }
    // Dropping the command senders makes every remaining registration task unregister.
    for a in s.accounts.values() {
        if a.registered {
            state.metrics.registered.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Refuses a new session with `session_limit` and close code 1013 (`max_sessions`,
/// `max_sessions_per_ip`).
pub async fn refuse(mut socket: WebSocket, state: &State, message: &str) {
    state.metrics.login("error", "session_limit");
    let _ = send(
        &mut socket,
        ServerMessage::error(ErrorCode::SessionLimit, message),
    )
    .await;
    let close = socket.send(close_frame(1013, "session limit"));
    let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
}

fn close_frame(code: u16, reason: &'static str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

impl Session {
    async fn handle(&mut self, text: &str) -> Vec<ServerMessage> {
        match parse_client_message(text) {
            Err(e) => vec![ServerMessage::error(ErrorCode::BadRequest, e.to_string())],
            Ok(ClientMessage::Ping) => vec![ServerMessage::Pong],
            Ok(ClientMessage::Logout) => self.logout(),
            Ok(ClientMessage::Login { token }) => self.login(&token).await,
            Ok(m) => self.call_message(m).into_iter().collect(),
        }
    }

    /// A call message: checked here (ids, limits, digits), carried out by the account's
    /// registration task, whose answer comes back as [`Report::Call`].
    fn call_message(&mut self, m: ClientMessage) -> Option<ServerMessage> {
        let st = self.state.clone();
        if !self.accounts.values().any(|a| a.sip) {
            return Some(ServerMessage::error(
                ErrorCode::NotLoggedIn,
                "log an account in before calling",
            ));
        }
        let cmd = match m {
            ClientMessage::Call { call, to, sdp, aor } => {
                if !valid_call_id(&call) {
                    return Some(ServerMessage::call_error(
                        ErrorCode::BadRequest,
                        &call,
                        "a call id is 1 to 64 of A-Z a-z 0-9 _ . -",
                    ));
                }
                if self.calls.contains_key(&call) {
                    return Some(ServerMessage::call_error(
                        ErrorCode::BadRequest,
                        &call,
                        "a live call of this socket has that id",
                    ));
                }
                let account = self
                    .accounts
                    .iter()
                    .filter(|(_, a)| a.sip && a.commands.is_some())
                    .filter(|(_, a)| aor.as_ref().is_none_or(|w| *w == a.aor))
                    .min_by_key(|(id, _)| **id)
                    .map(|(id, _)| *id);
                let Some(account) = account else {
                    return Some(ServerMessage::call_error(
                        ErrorCode::BadRequest,
                        &call,
                        "no logged-in account of this socket has that aor",
                    ));
                };
                if !sdp.trim_start().starts_with("v=0") {
                    return Some(ServerMessage::call_error(
                        ErrorCode::InvalidSdp,
                        &call,
                        "sdp must be the browser's SDP offer",
                    ));
                }
                if let Some(refusal) = self.call_limit() {
                    return Some(ServerMessage::call_error(
                        ErrorCode::CallLimit,
                        &call,
                        refusal,
                    ));
                }
                self.start_call(&call, account, false);
                (
                    account,
                    CallCommand::Call {
                        call,
                        target: to,
                        sdp,
                    },
                )
            }
            other => {
                let call = match &other {
                    ClientMessage::Answer { call, .. }
                    | ClientMessage::Reject { call, .. }
                    | ClientMessage::Hangup { call }
                    | ClientMessage::Hold { call }
                    | ClientMessage::Unhold { call }
                    | ClientMessage::Dtmf { call, .. }
                    | ClientMessage::Transfer { call, .. } => call.clone(),
                    _ => unreachable!("login, logout and ping are handled before"),
                };
                let Some(live) = self.calls.get(&call) else {
                    return Some(ServerMessage::call_error(
                        ErrorCode::UnknownCall,
                        &call,
                        "no live call of this socket has that id",
                    ));
                };
                let cmd = match other {
                    ClientMessage::Answer { sdp, .. } => {
                        if !sdp.trim_start().starts_with("v=0") {
                            return Some(ServerMessage::call_error(
                                ErrorCode::InvalidSdp,
                                &call,
                                "sdp must be the browser's SDP offer",
                            ));
                        }
                        CallCommand::Answer {
                            call: call.clone(),
                            sdp,
                        }
                    }
                    ClientMessage::Reject { status, .. } => match status.unwrap_or(486) {
                        s @ (486 | 603) => CallCommand::Reject {
                            call: call.clone(),
                            status: s,
                        },
                        _ => {
                            return Some(ServerMessage::call_error(
                                ErrorCode::BadRequest,
                                &call,
                                "status must be 486 or 603",
                            ))
                        }
                    },
                    ClientMessage::Hangup { .. } => CallCommand::Hangup { call: call.clone() },
                    ClientMessage::Hold { .. } => CallCommand::Hold {
                        call: call.clone(),
                        on: true,
                    },
                    ClientMessage::Unhold { .. } => CallCommand::Hold {
                        call: call.clone(),
                        on: false,
                    },
                    ClientMessage::Dtmf { digits, .. } => {
                        if digits.is_empty()
                            || digits.len() > 32
                            || !digits.bytes().all(|b| b"0123456789*#ABCD".contains(&b))
                        {
                            return Some(ServerMessage::call_error(
                                ErrorCode::BadRequest,
                                &call,
                                "digits are 1 to 32 of 0-9 * # A-D",
                            ));
                        }
                        CallCommand::Dtmf {
                            call: call.clone(),
                            digits,
                        }
                    }
                    ClientMessage::Transfer { to, .. } => CallCommand::Transfer {
                        call: call.clone(),
                        target: to,
                    },
                    _ => unreachable!("call messages only"),
                };
                (live.account, cmd)
            }
        };
        let (account, cmd) = cmd;
        let call = cmd.call().to_owned();
        let sent = self
            .accounts
            .get(&account)
            .and_then(|a| a.commands.as_ref())
            .is_some_and(|c| c.try_send(Command::Call(cmd)).is_ok());
        if sent {
            return None;
        }
        let _ = st;
        if self.calls.get(&call).is_some_and(|c| !c.announced) {
            self.end_call(&call);
        }
        Some(ServerMessage::call_error(
            ErrorCode::CallFailed,
            &call,
            "the account is logging out or busy; try again",
        ))
    }

    /// Why a new call would be over a limit, if it would.
    fn call_limit(&self) -> Option<String> {
        let c = &self.state.config;
        if self.calls.len() >= c.max_calls_per_session {
            return Some(format!(
                "at most {} calls per WebSocket",
                c.max_calls_per_session
            ));
        }
        if self.state.metrics.calls.load(Ordering::Relaxed) >= c.max_calls as i64 {
            return Some("the gateway has too many calls; try again later".into());
        }
        None
    }

    fn start_call(&mut self, call: &str, account: u64, announced: bool) {
        self.state.metrics.calls.fetch_add(1, Ordering::Relaxed);
        self.calls
            .insert(call.to_owned(), LiveCall { account, announced });
    }

    fn end_call(&mut self, call: &str) {
        if self.calls.remove(call).is_some() {
            self.state.metrics.calls.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// An update about a call, as the client hears it.
    fn call_update(
        &mut self,
        account: u64,
        call: String,
        update: CallUpdate,
    ) -> Option<ServerMessage> {
        if let CallUpdate::Incoming { from, display_name } = update {
            let aor = self.accounts.get(&account)?.aor.clone();
            if self.call_limit().is_some() {
                // Busy here: the caller hears 486, the client hears nothing.
                if let Some(c) = self
                    .accounts
                    .get(&account)
                    .and_then(|a| a.commands.as_ref())
                {
                    let _ = c.try_send(Command::Call(CallCommand::Reject { call, status: 486 }));
                }
                return None;
            }
            self.start_call(&call, account, true);
            return Some(ServerMessage::IncomingCall {
                call,
                aor,
                from,
                display_name,
            });
        }
        let live = self.calls.get_mut(&call)?;
        let announced = live.announced;
        Some(match update {
            CallUpdate::Incoming { .. } => unreachable!("handled above"),
            CallUpdate::Media { sdp } => {
                live.announced = true;
                ServerMessage::Media { call, sdp }
            }
            CallUpdate::Ringing => ServerMessage::Ringing { call },
            CallUpdate::EarlyMedia => ServerMessage::EarlyMedia { call },
            CallUpdate::Answered => ServerMessage::Answered { call },
            CallUpdate::Held { by } => ServerMessage::Held {
                call,
                by: by.into(),
            },
            CallUpdate::Resumed { by } => ServerMessage::Resumed {
                call,
                by: by.into(),
            },
            CallUpdate::Transferring => ServerMessage::Transferring { call },
            CallUpdate::Ended { reason, sip_status } => {
                self.end_call(&call);
                self.state.metrics.call_ended(reason.as_str());
                if !announced {
                    return None;
                }
                ServerMessage::Ended {
                    call,
                    reason: reason.as_str(),
                    sip_status,
                }
            }
            CallUpdate::Refused { refusal, message } => {
                if !announced {
                    // The `call` itself was refused: the id is free again.
                    self.end_call(&call);
                }
                let code = match refusal {
                    Refusal::UnknownCall => ErrorCode::UnknownCall,
                    Refusal::InvalidTarget => ErrorCode::InvalidTarget,
                    Refusal::InvalidSdp => ErrorCode::InvalidSdp,
                    Refusal::BadRequest => ErrorCode::BadRequest,
                    Refusal::Failed => ErrorCode::CallFailed,
                };
                ServerMessage::call_error(code, &call, message)
            }
        })
    }

    fn logout(&mut self) -> Vec<ServerMessage> {
        if self.accounts.is_empty() {
            return vec![ServerMessage::error(
                ErrorCode::NotLoggedIn,
                "no account is logged in on this socket",
            )];
        }
        self.logout_all()
    }

    /// Asks every registration to unregister; `authenticated` accounts leave at once.
    fn logout_all(&mut self) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, a) in self.accounts.iter_mut() {
            if a.sip {
                if let Some(c) = a.commands.take() {
                    let _ = c.try_send(Command::Unregister);
                }
            } else {
                out.push(ServerMessage::Unregistered { aor: a.aor.clone() });
                gone.push(*id);
            }
        }
        for id in gone {
            self.remove(id);
        }
        out
    }

    async fn login(&mut self, token: &str) -> Vec<ServerMessage> {
        let started = Instant::now();
        let st = self.state.clone();
        let fail = |code: ErrorCode, msg: String| {
            st.metrics.login("error", code.as_str());
            vec![ServerMessage::error(code, msg)]
        };
        let reject = |detail: &'static str, msg: String| {
            st.metrics.login("error", ErrorCode::TokenRejected.as_str());
            vec![ServerMessage::Error {
                code: ErrorCode::TokenRejected,
                message: msg,
                detail: Some(detail),
                sip_status: None,
                aor: None,
                call: None,
            }]
        };
        if !st.limiter.allow(self.ip) {
            return fail(
                ErrorCode::RateLimited,
                "too many login attempts from this address".into(),
            );
        }
        if self.accounts.len() >= st.config.max_accounts_per_session {
            return fail(
                ErrorCode::SessionLimit,
                format!(
                    "at most {} accounts per WebSocket",
                    st.config.max_accounts_per_session
                ),
            );
        }
        let verified =
            match Verifier::with_options(&st.ring, st.verify_options.clone()).verify(token) {
                Ok(v) => v,
                Err(e) => {
                    let detail = e.code().as_str();
                    tracing::info!(ip = %self.ip, detail, "token rejected");
                    return reject(detail, e.to_string());
                }
            };
        let c = verified.claims();
        let token_id = verified.replay_key().to_string();
        let now = siptoken::verify::system_now();
        let until = c
            .expires()
            .unwrap_or(now.saturating_add(st.config.max_lifetime_seconds as i64))
            .saturating_add(st.config.leeway_seconds as i64);
        // Checked before the token is spent, so the CRM can retry it elsewhere.
        let transport = match c.transport() {
            None => None,
            Some(Transport::Udp) => Some(Kind::Udp),
            Some(Transport::Tcp) => Some(Kind::Tcp),
            Some(Transport::Tls) if c.should_register() && st.sip.tls.is_none() => {
                return fail(
                    ErrorCode::SipUnreachable,
                    "SIP over TLS is not configured on this gateway (no CA bundle)".into(),
                );
            }
            Some(Transport::Tls) => Some(Kind::Tls),
        };
        let account = match Account::new(AccountClaims {
            login: c.login(),
            domain: c.domain(),
            auth_name: c.auth_name(),
            password: c.password().expose(),
            display_name: c.visible_name(),
            outbound_proxy: c.outbound_proxy(),
            port: c.port(),
            transport,
        }) {
            Ok(a) => a,
            Err(why) => {
                tracing::info!(ip = %self.ip, app = verified.app(), "token claims unusable for SIP: {why}");
                return reject(siptoken::ErrorCode::InvalidField.as_str(), why.to_string());
            }
        };
        let aor = account.aor().to_string();
        match st.replay.first_use(verified.replay_key(), until, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(ip = %self.ip, app = verified.app(), token_id, %aor, "replayed token refused");
                return fail(
                    ErrorCode::Replayed,
                    "this token has already been used".into(),
                );
            }
            Err(e) => {
                st.metrics
                    .replay_store_errors
                    .fetch_add(1, Ordering::Relaxed);
                match st.config.replay_store_failure {
                    StoreFailure::Closed => {
                        tracing::error!(ip = %self.ip, app = verified.app(), token_id, %aor, "{e}: login refused (replay_store_failure = closed)");
                        return fail(
                            ErrorCode::StoreUnavailable,
                            "the single-use store is unavailable; try again later".into(),
                        );
                    }
                    StoreFailure::Open => {
                        tracing::warn!(ip = %self.ip, app = verified.app(), token_id, %aor, "{e}: login accepted without the single-use check (replay_store_failure = open)");
                    }
                }
            }
        }
        tracing::info!(
            ip = %self.ip,
            app = verified.app(),
            kid = verified.kid().unwrap_or("-"),
            format = ?verified.format(),
            token_id,
            %aor,
            "token accepted"
        );
        let id = self.next_id;
        self.next_id += 1;
        if !c.should_register() {
            st.metrics.login("authenticated", "");
            st.metrics.observe_login_latency(started.elapsed());
            st.metrics.registered.fetch_add(1, Ordering::Relaxed);
            self.accounts.insert(
                id,
                Registration {
                    aor: aor.clone(),
                    commands: None,
                    started,
                    registered: true,
                    sip: false,
                },
            );
            return vec![ServerMessage::Authenticated { aor }];
        }
        let task = register::Task {
            account,
            settings: st.sip.clone(),
            calls: st.calls.clone(),
            metrics: st.metrics.clone(),
            reports: register::Reports {
                id,
                events: self.events.clone(),
            },
        };
        let commands = register::spawn(task, self.guard.clone());
        self.accounts.insert(
            id,
            Registration {
                aor: aor.clone(),
                commands: Some(commands),
                started,
                registered: false,
                sip: true,
            },
        );
        vec![ServerMessage::Registering { aor }]
    }

    /// Turns a registration task's event into a message for the client.
    fn event(&mut self, (id, report): (u64, Report)) -> Option<ServerMessage> {
        let e = match report {
            Report::Registration(e) => e,
            Report::Call { call, update } => return self.call_update(id, call, update),
        };
        let m = &self.state.metrics;
        let a = self.accounts.get_mut(&id)?;
        let aor = a.aor.clone();
        match e {
            Event::Registered { expires } => {
                if !a.registered {
                    a.registered = true;
                    m.registered.fetch_add(1, Ordering::Relaxed);
                    m.login("registered", "");
                    m.observe_login_latency(a.started.elapsed());
                }
                Some(ServerMessage::Registered { aor, expires })
            }
            Event::Failed(e) => {
                self.accounts.remove(&id);
                m.login("error", ErrorCode::of_sip(&e).as_str());
                Some(ServerMessage::sip_failed(aor, &e))
            }
            Event::Lost(e) => {
                self.remove(id);
                Some(ServerMessage::RegistrationLost {
                    aor,
                    code: ErrorCode::of_sip(&e),
                    message: e.to_string(),
                    sip_status: e.status(),
                })
            }
            Event::Unregistered => {
                self.remove(id);
                Some(ServerMessage::Unregistered { aor })
            }
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(a) = self.accounts.remove(&id) {
            if a.registered {
                self.state
                    .metrics
                    .registered
                    .fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}
