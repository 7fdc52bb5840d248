//! The WebSocket session protocol (`docs/gateway-protocol.md`): JSON text frames `login`,
//! `logout`, `ping` in; `registering`, `registered`, `authenticated`, `unregistered`,
//! `registrationLost`, `pong`, `error` out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::config::StoreFailure;
use super::sip::register::{self, Account, Command, Event, SipError};
use super::sip::transport::Kind;
use super::State;
use siptoken::{Transport, Verifier};

/// A client message (unknown fields are ignored, for forward compatibility). `Debug` never
/// shows the token.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ClientMessage {
    /// `{"type":"login","token":"…"}`.
    Login {
        /// The token.
        token: String,
    },
    /// `{"type":"logout"}`.
    Logout,
    /// `{"type":"ping"}`.
    Ping,
}

impl std::fmt::Debug for ClientMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientMessage::Login { token } => f
                .debug_struct("Login")
                .field("token", &format_args!("<{} bytes>", token.len()))
                .finish(),
            ClientMessage::Logout => f.write_str("Logout"),
            ClientMessage::Ping => f.write_str("Ping"),
        }
    }
}

/// Parses a text frame; the error is a message for `bad_request`.
pub fn parse_client_message(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| {
        // serde_json's own messages can quote the input (a token, say): describe the error by
        // its category and position instead. (Truncating its message panicked on a multi-byte
        // character; the ws_message fuzz target found it.)
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => "not JSON",
            Category::Data => {
                "expected {\"type\":\"login\",\"token\":\"…\"}, {\"type\":\"logout\"} or {\"type\":\"ping\"}"
            }
        };
        format!(
            "not a valid client message: {what} (line {}, column {})",
            e.line(),
            e.column()
        )
    })
}

/// An `error` message.
pub fn error(code: &str, message: impl Into<String>) -> Value {
    json!({"type": "error", "code": code, "message": message.into()})
}

struct Registration {
    aor: String,
    /// `None` for `authenticated` accounts (no SIP) and once unregistering has been asked for.
    commands: Option<mpsc::Sender<Command>>,
    started: Instant,
    registered: bool,
    sip: bool,
}

struct Session {
    state: Arc<State>,
    ip: IpAddr,
    accounts: HashMap<u64, Registration>,
    next_id: u64,
    events: mpsc::UnboundedSender<(u64, Event)>,
    guard: tokio_util::task::task_tracker::TaskTrackerToken,
}

enum Step {
    Ws(Option<Result<WsMessage, axum::Error>>),
    Event((u64, Event)),
    Shutdown,
    Heartbeat,
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

async fn send(socket: &mut WebSocket, v: Value) -> bool {
    let frame = WsMessage::Text(v.to_string().into());
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(frame)).await,
        Ok(Ok(()))
    )
}

/// Runs one WebSocket session until the client closes it or the gateway shuts down; every
/// account it registered is unregistered.
pub async fn session(mut socket: WebSocket, state: Arc<State>, ip: IpAddr) {
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
        state.metrics.login("error", "session_limit");
        let _ = send(
            &mut socket,
            error(
                "session_limit",
                "the gateway has too many sessions; try again later",
            ),
        )
        .await;
        let close = socket.send(close_frame(1013, "session limit"));
        let _ = tokio::time::timeout(SEND_TIMEOUT, close).await;
        return;
    }
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut s = Session {
        state: state.clone(),
        ip,
        accounts: HashMap::new(),
        next_id: 0,
        events: events_tx,
        guard,
    };
    let mut shutdown = state.shutdown.clone();
    let idle = Duration::from_secs(state.config.ws_idle_timeout_seconds);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + idle / 3, idle / 3);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let shutting_down = loop {
        if *shutdown.borrow() {
            break true;
        }
        let step = tokio::select! {
            m = socket.recv() => Step::Ws(m),
            Some(e) = events.recv() => Step::Event(e),
            _ = shutdown.changed() => Step::Shutdown,
            _ = heartbeat.tick() => Step::Heartbeat,
        };
        if matches!(step, Step::Ws(Some(Ok(_)))) {
            last_heard = Instant::now();
        }
        match step {
            Step::Shutdown => break true,
            Step::Heartbeat if last_heard.elapsed() >= idle => {
                // Nothing from the client, not even a pong to our pings: a dead peer (closed
                // laptop, dropped network) must not hold its registrations for ever.
                tracing::info!(ip = %s.ip, "WebSocket idle timeout: closing");
                state.metrics.closed("idle_timeout");
                let _ = send(
                    &mut socket,
                    error("idle_timeout", "nothing received from the client in time"),
                )
                .await;
                let close = socket.send(close_frame(4408, "idle timeout"));
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
                let e = error("bad_request", "binary frames are not supported");
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

fn close_frame(code: u16, reason: &'static str) -> WsMessage {
    WsMessage::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

impl Session {
    async fn handle(&mut self, text: &str) -> Vec<Value> {
        match parse_client_message(text) {
            Err(m) => vec![error("bad_request", m)],
            Ok(ClientMessage::Ping) => vec![json!({"type": "pong"})],
            Ok(ClientMessage::Logout) => self.logout(),
            Ok(ClientMessage::Login { token }) => self.login(&token).await,
        }
    }

    fn logout(&mut self) -> Vec<Value> {
        if self.accounts.is_empty() {
            return vec![error(
                "not_logged_in",
                "no account is logged in on this socket",
            )];
        }
        self.logout_all()
    }

    /// Asks every registration to unregister; `authenticated` accounts leave at once.
    fn logout_all(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut gone = Vec::new();
        for (id, a) in self.accounts.iter_mut() {
            if a.sip {
                if let Some(c) = a.commands.take() {
                    let _ = c.try_send(Command::Unregister);
                }
            } else {
                out.push(json!({"type": "unregistered", "aor": a.aor}));
                gone.push(*id);
            }
        }
        for id in gone {
            self.remove(id);
        }
        out
    }

    async fn login(&mut self, token: &str) -> Vec<Value> {
        let started = Instant::now();
        let st = self.state.clone();
        let fail = |code: &'static str, msg: String| {
            st.metrics.login("error", code);
            vec![error(code, msg)]
        };
        let reject = |detail: &str, msg: String| {
            st.metrics.login("error", "token_rejected");
            let mut v = error("token_rejected", msg);
            v["detail"] = json!(detail);
            vec![v]
        };
        if !st.limiter.allow(self.ip) {
            return fail(
                "rate_limited",
                "too many login attempts from this address".into(),
            );
        }
        if self.accounts.len() >= st.config.max_accounts_per_session {
            return fail(
                "session_limit",
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
            None | Some(Transport::Udp) => Kind::Udp,
            Some(Transport::Tcp) => Kind::Tcp,
            Some(Transport::Tls) if c.should_register() && st.sip.tls.is_none() => {
                return fail(
                    "sip_unreachable",
                    "SIP over TLS is not configured on this gateway (no CA bundle)".into(),
                );
            }
            Some(Transport::Tls) => Kind::Tls,
        };
        let account = Account {
            login: c.login().to_owned(),
            domain: c.domain().to_owned(),
            auth_name: c.auth_name().to_owned(),
            password: zeroize::Zeroizing::new(c.password().expose().to_owned()),
            display_name: c.visible_name().map(str::to_owned),
            transport,
            transport_given: c.transport().is_some(),
            host: c.outbound_proxy().unwrap_or(c.domain()).to_owned(),
            port: c.port(),
        };
        if let Err(why) = account.check() {
            tracing::info!(ip = %self.ip, app = verified.app(), "token claims unusable for SIP");
            return reject(siptoken::ErrorCode::InvalidField.as_str(), why);
        }
        let aor = account.aor();
        match st.replay.first_use(verified.replay_key(), until, now).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(ip = %self.ip, app = verified.app(), token_id, %aor, "replayed token refused");
                return fail("replayed", "this token has already been used".into());
            }
            Err(e) => {
                st.metrics
                    .replay_store_errors
                    .fetch_add(1, Ordering::Relaxed);
                match st.config.replay_store_failure {
                    StoreFailure::Closed => {
                        tracing::error!(ip = %self.ip, app = verified.app(), token_id, %aor, "{e}: login refused (replay_store_failure = closed)");
                        return fail(
                            "store_unavailable",
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
            return vec![json!({"type": "authenticated", "aor": aor})];
        }
        let commands = register::spawn(
            id,
            account,
            st.sip.clone(),
            st.metrics.clone(),
            self.events.clone(),
            self.guard.clone(),
        );
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
        vec![json!({"type": "registering", "aor": aor})]
    }

    /// Turns a registration task's event into a message for the client.
    fn event(&mut self, (id, e): (u64, Event)) -> Option<Value> {
        let m = &self.state.metrics;
        let a = self.accounts.get_mut(&id)?;
        let aor = a.aor.clone();
        let sip_error = |mut v: Value, e: &SipError| {
            if let Some(s) = e.status() {
                v["sipStatus"] = json!(s);
            }
            v["aor"] = json!(aor);
            v
        };
        match e {
            Event::Registered { expires } => {
                if !a.registered {
                    a.registered = true;
                    m.registered.fetch_add(1, Ordering::Relaxed);
                    m.login("registered", "");
                    m.observe_login_latency(a.started.elapsed());
                }
                Some(json!({"type": "registered", "aor": aor, "expires": expires}))
            }
            Event::Failed(e) => {
                self.accounts.remove(&id);
                m.login("error", e.code());
                Some(sip_error(error(e.code(), e.to_string()), &e))
            }
            Event::Lost(e) => {
                self.remove(id);
                Some(sip_error(
                    json!({"type": "registrationLost", "code": e.code(), "message": e.to_string()}),
                    &e,
                ))
            }
            Event::Unregistered => {
                self.remove(id);
                Some(json!({"type": "unregistered", "aor": aor}))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages() {
        assert!(matches!(
            parse_client_message(r#"{"type":"login","token":"CRM:v1.k.00"}"#),
            Ok(ClientMessage::Login { .. })
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"ping"}"#),
            Ok(ClientMessage::Ping)
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"logout"}"#),
            Ok(ClientMessage::Logout)
        ));
        for bad in [
            "",
            "null",
            "[]",
            r#"{"type":"login"}"#,
            r#"{"type":"login","token":5}"#,
            r#"{"type":"dance"}"#,
            r#"{"token":"x"}"#,
        ] {
            assert!(parse_client_message(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_request_messages_do_not_echo_long_tokens() {
        let token = format!("CRM:v1.k1.{}", "ab".repeat(200));
        for text in [
            format!(r#"{{"type":"login","token":"{token}""#),
            format!(r#"{{"type":"lgin","token":"{token}"}}"#),
            format!(r#"{{"type":"login","token":["{token}"]}}"#),
        ] {
            let e = parse_client_message(&text).unwrap_err();
            assert!(!e.contains("abababab"), "{e}");
        }
        let ok = parse_client_message(&format!(r#"{{"type":"login","token":"{token}"}}"#));
        assert!(!format!("{ok:?}").contains("abababab"));
    }

    #[test]
    fn errors_never_quote_the_input_and_never_panic() {
        // The ws_message fuzz target's reproducer: a long error message cut inside a character.
        let crash = format!("\"{}ü\"", "\\r".repeat(80));
        let err = parse_client_message(&crash).unwrap_err();
        assert!(err.starts_with("not a valid client message: "), "{err}");
        let token = "CRM:v1.k1.".to_owned() + &"ab".repeat(200);
        for text in [
            format!(r#"{{"type":"login","token":5,"t":{token:?}}}"#),
            format!(r#"{{"type":{token:?}}}"#),
            format!(r#"{{"type":"login","token":"{token}"#),
        ] {
            let err = parse_client_message(&text).unwrap_err();
            assert!(!err.contains("abab"), "{err}");
        }
    }
}
