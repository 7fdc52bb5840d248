//! One UDP socket per registrar, shared by every registration with that registrar.
//!
//! A socket per registration would cost each session a file descriptor and an ephemeral port:
//! the process would run out of descriptors at half its `ulimit -n` sessions, and a host out of
//! ports near 28,000 registrations (Linux's default ephemeral range). Instead, registrations to
//! one registrar address (from one bind address) share one connected socket, and a pump task
//! hands each incoming message to its registration by a *route*: a random identifier the
//! registration carries in its Call-ID (`ROUTE@siptoken`: responses echo it) and in its Contact
//! user (`st-ROUTE`: requests from the registrar, such as OPTIONS keep-alives, are addressed to
//! it). Messages for no current route are dropped.
//!
//! The socket is connected, so an ICMP port- or host-unreachable from the registrar still
//! surfaces (as `ConnectionRefused` and the like). It reaches the registrations that are
//! waiting for a response at that moment as one *notice* each ([`TransportError`] from
//! [`UdpRoute::recv`], after any queued message; several ICMP errors before the registration
//! reads make one notice, so a flood of them cannot fill its queue), not idle ones. The notice
//! is soft: anyone who can guess the socket's port can forge an ICMP error, so the transaction
//! keeps retransmitting until Timer F (issue 14 item 5; see [`super::registration`]).
//!
//! The socket closes when its last registration ends.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tokio::net::UdpSocket;
use tokio::sync::Notify;

use super::message::{self, Message};
use super::transport_error::TransportError;
use super::uri::SipUri;

/// Messages queued for one registration beyond which more are dropped (a registration reads
/// its messages as they come; a backlog means a flood, not traffic).
const INBOX_LIMIT: usize = 16;

/// The socket receive buffer asked for: room for bursts of responses and keep-alives from a
/// registrar serving thousands of registrations through this one socket.
const RECEIVE_BUFFER: usize = 4 << 20;

/// How many datagrams were dropped because no registration had their route, process-wide
/// (tests and diagnostics).
pub static UNROUTED: AtomicU64 = AtomicU64::new(0);

/// The route of a message: for a response, the Call-ID before `@siptoken`; for a request, the
/// Request-URI's user after `st-`. `None` for anything else.
pub fn route_of(m: &Message) -> Option<Cow<'_, str>> {
    match &m.start {
        // A call's requests carry the route in their Via branch (their Call-IDs are the
        // caller's or random); a REGISTER's in its Call-ID.
        message::StartLine::Response { .. } => m
            .top_via_branch()
            .and_then(super::routing::route_of_branch)
            .or_else(|| m.header("call-id")?.trim().strip_suffix("@siptoken"))
            .map(Cow::Borrowed),
        message::StartLine::Request { uri, .. } => {
            let user = SipUri::parse(uri).ok()?.user?;
            user.strip_prefix("st-").map(|r| Cow::Owned(r.to_owned()))
        }
    }
}

/// What one registration receives: messages in arrival order, and at most one pending
/// unreachable notice.
#[derive(Default)]
struct Inbox {
    queue: Mutex<VecDeque<Message>>,
    /// An ICMP error not yet read (one, however many arrived).
    notice: Mutex<Option<TransportError>>,
    ready: Notify,
    /// Set while the registration waits for a response (ICMP errors are reported then).
    awaiting: AtomicBool,
}

impl Inbox {
    fn push(&self, m: Message) {
        let mut q = lock(&self.queue);
        if q.len() >= INBOX_LIMIT {
            tracing::debug!("dropping a SIP message: the registration has {INBOX_LIMIT} unread");
            return;
        }
        q.push_back(m);
        drop(q);
        self.ready.notify_one();
    }

    fn notify_unreachable(&self, e: TransportError) {
        lock(&self.notice).get_or_insert(e);
        self.ready.notify_one();
    }
}

/// A socket shared by the registrations with one registrar.
struct Shared {
    sock: UdpSocket,
    /// The bind address asked for (with `peer`, this socket's key in [`sockets`]).
    bind: IpAddr,
    local: SocketAddr,
    peer: SocketAddr,
    routes: Mutex<HashMap<Box<str>, Arc<Inbox>>>,
    stop: Notify,
}

type Key = (IpAddr, SocketAddr);

/// Every open shared socket, by (bind address, registrar address).
fn sockets() -> &'static Mutex<HashMap<Key, Arc<Shared>>> {
    static SOCKETS: OnceLock<Mutex<HashMap<Key, Arc<Shared>>>> = OnceLock::new();
    SOCKETS.get_or_init(Default::default)
}

/// A lock that survives a panic elsewhere (the data are plain maps and queues).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn open(bind: IpAddr, peer: SocketAddr) -> io::Result<UdpSocket> {
    let domain = if peer.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps it at net.core.rmem_max.
    let _ = s.set_recv_buffer_size(RECEIVE_BUFFER);
    s.bind(&SocketAddr::new(bind, 0).into())?;
    s.connect(&peer.into())?;
    s.set_nonblocking(true)?;
    UdpSocket::from_std(s.into())
}

/// One registration's place on a shared socket. Dropping it removes the route (and closes the
/// socket when it was the last).
pub struct UdpRoute {
    shared: Arc<Shared>,
    route: Box<str>,
    inbox: Arc<Inbox>,
}

impl UdpRoute {
    /// Joins (or opens) the socket from `bind` to `peer` under `route`, which must be unique
    /// among the registrations with this registrar (a random identifier).
    pub fn join(bind: IpAddr, peer: SocketAddr, route: &str) -> io::Result<UdpRoute> {
        let mut all = lock(sockets());
        let shared = match all.get(&(bind, peer)) {
            Some(s) => s.clone(),
            None => {
                let sock = open(bind, peer)?;
                let local = sock.local_addr()?;
                let s = Arc::new(Shared {
                    sock,
                    bind,
                    local,
                    peer,
                    routes: Mutex::default(),
                    stop: Notify::new(),
                });
                tokio::spawn(pump(s.clone()));
                all.insert((bind, peer), s.clone());
                s
            }
        };
        let inbox = Arc::new(Inbox::default());
        let mut routes = lock(&shared.routes);
        if routes.contains_key(route) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "route already in use on the shared SIP socket",
            ));
        }
        routes.insert(route.into(), inbox.clone());
        drop(routes);
        Ok(UdpRoute {
            shared,
            route: route.into(),
            inbox,
        })
    }

    /// The socket's local address (the same for every registration on it).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local
    }

    /// Sends one datagram to the registrar.
    pub async fn send(&self, data: &[u8]) -> io::Result<()> {
        self.shared.sock.send(data).await.map(|_| ())
    }

    /// The next message for this route, or an unreachable notice (an ICMP error that arrived
    /// while this registration was waiting for a response; soft, see the module doc).
    /// Messages come first. Cancel-safe.
    pub async fn recv(&self) -> Result<Message, TransportError> {
        loop {
            let next = lock(&self.inbox.queue).pop_front();
            if let Some(m) = next {
                return Ok(m);
            }
            if let Some(e) = lock(&self.inbox.notice).take() {
                return Err(e);
            }
            self.inbox.ready.notified().await;
        }
    }

    /// Marks whether this registration is waiting for a response (ICMP errors reach it only
    /// then).
    pub fn set_awaiting(&self, awaiting: bool) {
        self.inbox.awaiting.store(awaiting, Ordering::Relaxed);
    }
}

impl Drop for UdpRoute {
    fn drop(&mut self) {
        let mut all = lock(sockets());
        let mut routes = lock(&self.shared.routes);
        routes.remove(&self.route);
        if routes.is_empty() {
            drop(routes);
            let key = (self.shared.bind, self.shared.peer);
            if all.get(&key).is_some_and(|s| Arc::ptr_eq(s, &self.shared)) {
                all.remove(&key);
            }
            self.shared.stop.notify_one();
        }
    }
}

/// Reads the shared socket until told to stop, handing each message to its route.
async fn pump(shared: Arc<Shared>) {
    let mut buf = vec![0u8; message::MAX_MESSAGE_LEN];
    loop {
        let got = tokio::select! {
            _ = shared.stop.notified() => return,
            r = shared.sock.recv(&mut buf) => r,
        };
        match got {
            Ok(n) => dispatch(&shared, &buf[..n]),
            Err(e)
                if matches!(
                    TransportError::of(&e),
                    TransportError::Refused | TransportError::NoRoute
                ) =>
            {
                tracing::debug!(peer = %shared.peer, "ICMP error on the shared SIP socket: {e}");
                let routes = lock(&shared.routes);
                for inbox in routes.values() {
                    if inbox.awaiting.load(Ordering::Relaxed) {
                        inbox.notify_unreachable(TransportError::of(&e));
                    }
                }
            }
            Err(e) => {
                tracing::debug!(peer = %shared.peer, "SIP socket receive error: {e}");
                // Not a tight loop on a persistent error.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

fn dispatch(shared: &Shared, datagram: &[u8]) {
    let m = match message::parse(datagram, false) {
        Ok((m, _)) => m,
        Err(e) => {
            if !datagram.iter().all(|b| b"\r\n".contains(b)) {
                tracing::debug!(peer = %shared.peer, "ignoring datagram: {e}");
            }
            return;
        }
    };
    let inbox = route_of(&m).and_then(|r| lock(&shared.routes).get(r.as_ref()).cloned());
    match inbox {
        Some(inbox) => inbox.push(m),
        None => {
            UNROUTED.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(peer = %shared.peer, "a SIP message for no current registration");
            // A request for a route no session holds: 480 (404 when it names no route at
            // all), so a caller does not wait for a timeout.
            if let super::incoming::Disposition::Respond(reply) =
                super::incoming::out_of_dialog(&m, |_| false)
            {
                let _ = shared.sock.try_send_to(&reply, shared.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn loopback() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    fn response(call_id: &str) -> String {
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nFrom: <sip:a@x>;tag=1\r\n\
             To: <sip:a@x>;tag=2\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        )
    }

    fn options(user: &str) -> String {
        format!(
            "OPTIONS sip:{user}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\n\
             From: <sip:ping@x>;tag=9\r\nTo: <sip:{user}@x>\r\nCall-ID: ping-1\r\nCSeq: 7 OPTIONS\r\n\
             Content-Length: 0\r\n\r\n"
        )
    }

    async fn next(r: &UdpRoute) -> Result<Message, TransportError> {
        tokio::time::timeout(Duration::from_secs(5), r.recv())
            .await
            .expect("a message within 5 s")
    }

    #[test]
    fn routes_come_from_call_id_and_contact_user() {
        let (m, _) = message::parse(response("abc@siptoken").as_bytes(), false).unwrap();
        assert_eq!(route_of(&m).as_deref(), Some("abc"));
        let (m, _) = message::parse(response("abc@elsewhere").as_bytes(), false).unwrap();
        assert_eq!(route_of(&m), None);
        let (m, _) = message::parse(options("st-def").as_bytes(), false).unwrap();
        assert_eq!(route_of(&m).as_deref(), Some("def"));
        let (m, _) = message::parse(options("alice").as_bytes(), false).unwrap();
        assert_eq!(route_of(&m), None);
    }

    #[tokio::test]
    async fn registrations_share_one_socket_and_get_only_their_messages() {
        let registrar = UdpSocket::bind((loopback(), 0)).await.unwrap();
        let peer = registrar.local_addr().unwrap();
        let a = UdpRoute::join(loopback(), peer, "aaaa").unwrap();
        let b = UdpRoute::join(loopback(), peer, "bbbb").unwrap();
        assert_eq!(
            a.local_addr(),
            b.local_addr(),
            "one socket for one registrar"
        );
        assert!(
            UdpRoute::join(loopback(), peer, "aaaa").is_err(),
            "a route is unique"
        );

        a.send(b"hello").await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = registrar.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"hello"[..], a.local_addr()));

        let before = UNROUTED.load(Ordering::Relaxed);
        for msg in [
            response("bbbb@siptoken"),
            response("nobody@siptoken"),
            options("st-aaaa"),
            "garbage\r\n\r\n".to_string(),
            response("aaaa@siptoken"),
        ] {
            registrar.send_to(msg.as_bytes(), from).await.unwrap();
        }
        let m = next(&a).await.unwrap();
        assert_eq!(m.method(), Some("OPTIONS"));
        let m = next(&a).await.unwrap();
        assert_eq!(m.header("call-id"), Some("aaaa@siptoken"));
        let m = next(&b).await.unwrap();
        assert_eq!(m.header("call-id"), Some("bbbb@siptoken"));
        assert!(UNROUTED.load(Ordering::Relaxed) > before);
        assert!(
            tokio::time::timeout(Duration::from_millis(200), b.recv())
                .await
                .is_err(),
            "b got only its own message"
        );

        // The socket lives while a registration uses it and closes with the last.
        drop(a);
        assert!(lock(sockets()).contains_key(&(loopback(), peer)));
        drop(b);
        assert!(!lock(sockets()).contains_key(&(loopback(), peer)));
        let c = UdpRoute::join(loopback(), peer, "aaaa").unwrap();
        assert_eq!(c.shared.peer, peer);
    }

    /// A loopback port nobody listens on (bound, then closed): the kernel answers each
    /// datagram to it with ICMP port unreachable.
    fn unreachable_peer() -> SocketAddr {
        let s = std::net::UdpSocket::bind((loopback(), 0)).unwrap();
        s.local_addr().unwrap()
    }

    #[tokio::test]
    async fn icmp_errors_reach_waiting_registrations_as_one_notice() {
        let peer = unreachable_peer();
        let waiting = UdpRoute::join(loopback(), peer, "w").unwrap();
        let idle = UdpRoute::join(loopback(), peer, "i").unwrap();
        waiting.set_awaiting(true);
        // The send itself may already see the error of an earlier datagram.
        for _ in 0..5 {
            let _ = waiting.send(b"REGISTER").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(next(&waiting).await.err(), Some(TransportError::Refused));
        // Five ICMP errors, at most two notices (one may arrive after the first was read);
        // then the queue is empty again.
        let more = tokio::time::timeout(Duration::from_millis(100), waiting.recv()).await;
        if let Ok(r) = more {
            assert_eq!(r.err(), Some(TransportError::Refused));
        }
        assert!(
            tokio::time::timeout(Duration::from_millis(100), waiting.recv())
                .await
                .is_err(),
            "ICMP errors are coalesced"
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(200), idle.recv())
                .await
                .is_err(),
            "an idle registration is not told"
        );
    }

    /// Issue 14 item 5 at the socket: after an ICMP error, the registrar's answer still
    /// reaches the registration (it is the registration's choice what a notice means).
    #[tokio::test]
    async fn messages_still_arrive_after_an_icmp_error() {
        let peer = unreachable_peer();
        let waiting = UdpRoute::join(loopback(), peer, "w3").unwrap();
        waiting.set_awaiting(true);
        let _ = waiting.send(b"REGISTER").await;
        assert_eq!(next(&waiting).await.err(), Some(TransportError::Refused));
        let registrar = UdpSocket::bind(peer).await.unwrap();
        waiting.send(b"REGISTER again").await.unwrap();
        let mut buf = [0u8; 64];
        let (_, from) = registrar.recv_from(&mut buf).await.unwrap();
        registrar
            .send_to(response("w3@siptoken").as_bytes(), from)
            .await
            .unwrap();
        let m = next(&waiting).await.unwrap();
        assert_eq!(m.header("call-id"), Some("w3@siptoken"));
    }
}
