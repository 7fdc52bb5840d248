//! The shared WebRTC socket: one UDP socket for every browser leg, and the task that reads it
//! and hands each datagram to its call.
//!
//! Routing, in order:
//! 1. a STUN binding request goes to the call whose ICE username fragment is the first half of
//!    its USERNAME (`OURS:THEIRS`) if its MESSAGE-INTEGRITY is right for that call's ICE
//!    password, and its source address is remembered for that call (the username fragment
//!    travels in clear in every check, so it alone would let whoever saw one steer the call's
//!    routing: move its addresses away, or push the browser's out of the table);
//! 2. anything else (DTLS, SRTP, SRTCP, further STUN) goes to the call its source address was
//!    remembered for.
//!
//! The call then asks str0m whether the datagram is really its own (`Rtc::accepts`, which
//! checks the ufrag or the nominated address) before str0m authenticates it (STUN
//! MESSAGE-INTEGRITY, DTLS, SRTP). A call remembers at most [`MAX_ADDRESSES`] addresses (a
//! browser checks a few candidate pairs), the oldest forgotten first; datagrams for no call are
//! dropped and counted.
//!
//! A reader hands a datagram to its call's [`Receiver`] on the spot, from its own read buffer:
//! no copy, no queue, no wake-up of another task per packet (the hop that cost the relay a
//! task switch per browser packet). There are [`readers`] of them on the one socket, so the
//! browsers' datagrams are worked on by as many threads as the runtime has; datagrams that
//! arrive while they are busy wait in the socket's receive buffer (see `buffers`), the one place
//! they queue. Two datagrams of one call read by two readers at the same moment are handled one
//! after the other (the call's lock), not always in arrival order: SRTP, DTLS and the relay
//! accept reordering, as they must from any network. (Not `SO_REUSEPORT` sockets, which would
//! keep each browser on one reader: they would also let a second gateway started on the same
//! port take half the browsers silently, where a plain socket makes it fail to start.)

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use str0m::crypto::Sha1HmacProvider;
use tokio::net::UdpSocket;

use super::counters::MediaCounters;
use super::stamped;

/// Addresses remembered per call.
pub const MAX_ADDRESSES: usize = 8;

/// What takes a call's datagrams from the shared socket (the call's media state). Called on the
/// reader's task, with the routing table unlocked: it must not wait.
pub trait Receiver: Send + Sync {
    /// A datagram from `source`, read at `at`, that reached the socket at `arrived` (the
    /// kernel's receive timestamp; `at` when there was none).
    fn receive(&self, at: Instant, arrived: Instant, source: SocketAddr, data: &[u8]);
}

/// What checks the STUN binding requests of one call: its local ICE password (the key of
/// MESSAGE-INTEGRITY, RFC 8445 §7.2.2) and the HMAC-SHA1 to use.
#[derive(Clone)]
pub struct IceKey {
    /// The call's local ICE password (`a=ice-pwd` of our answer).
    pub password: String,
    /// The crypto provider's HMAC-SHA1.
    pub hmac: &'static dyn Sha1HmacProvider,
}

impl std::fmt::Debug for IceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IceKey(..)")
    }
}

impl IceKey {
    fn verifies(&self, m: &str0m::ice::StunMessage<'_>) -> bool {
        m.verify(self.password.as_bytes(), |key, parts| {
            self.hmac.sha1_hmac(key, parts)
        })
    }
}

struct Route {
    receiver: Arc<dyn Receiver>,
    ufrag: String,
    key: IceKey,
    addresses: VecDeque<SocketAddr>,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("ufrag", &self.ufrag)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

/// Which call each datagram belongs to.
#[derive(Debug, Default)]
pub struct Demux {
    next: u64,
    routes: HashMap<u64, Route>,
    by_ufrag: HashMap<String, u64>,
    by_address: HashMap<SocketAddr, u64>,
}

fn lock(m: &Mutex<Demux>) -> MutexGuard<'_, Demux> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A STUN binding request and the first half of its USERNAME, if `data` is one.
fn stun_binding(data: &[u8]) -> Option<(&str, str0m::ice::StunMessage<'_>)> {
    if data.len() < 20 || data[0] >= 2 {
        return None;
    }
    let m = str0m::ice::StunMessage::parse(data).ok()?;
    if !m.is_binding_request() {
        return None;
    }
    Some((m.username()?.split_once(':')?.0, m))
}

impl Demux {
    /// Registers a call by its ICE username fragment and password, with what takes its
    /// datagrams; returns its id.
    pub fn register(&mut self, ufrag: &str, key: IceKey, receiver: Arc<dyn Receiver>) -> u64 {
        self.next += 1;
        let id = self.next;
        self.by_ufrag.insert(ufrag.to_owned(), id);
        self.routes.insert(
            id,
            Route {
                receiver,
                ufrag: ufrag.to_owned(),
                key,
                addresses: VecDeque::new(),
            },
        );
        id
    }

    /// Forgets a call.
    pub fn unregister(&mut self, id: u64) {
        if let Some(r) = self.routes.remove(&id) {
            if self.by_ufrag.get(&r.ufrag) == Some(&id) {
                self.by_ufrag.remove(&r.ufrag);
            }
            for a in r.addresses {
                if self.by_address.get(&a) == Some(&id) {
                    self.by_address.remove(&a);
                }
            }
        }
    }

    /// The call a datagram from `source` belongs to (learning `source` from an authentic
    /// binding request): what takes its datagrams.
    fn route(&mut self, source: SocketAddr, data: &[u8]) -> Option<&Arc<dyn Receiver>> {
        if let Some((ufrag, m)) = stun_binding(data) {
            let id = *self.by_ufrag.get(ufrag)?;
            if !self.routes.get(&id)?.key.verifies(&m) {
                return None;
            }
            if self.by_address.get(&source) != Some(&id) {
                if let Some(old) = self.by_address.insert(source, id) {
                    if let Some(r) = self.routes.get_mut(&old) {
                        r.addresses.retain(|a| *a != source);
                    }
                }
                let route = self.routes.get_mut(&id)?;
                route.addresses.push_back(source);
                if route.addresses.len() > MAX_ADDRESSES {
                    if let Some(gone) = route.addresses.pop_front() {
                        self.by_address.remove(&gone);
                    }
                }
            }
            return self.routes.get(&id).map(|r| &r.receiver);
        }
        let id = self.by_address.get(&source)?;
        self.routes.get(id).map(|r| &r.receiver)
    }
}

/// The shared socket, its routing table and the media counters.
#[derive(Debug)]
pub struct Shared {
    /// The socket every browser leg sends and receives on.
    pub socket: UdpSocket,
    /// The routing table.
    pub demux: Mutex<Demux>,
    /// Counters for `/metrics`.
    pub counters: Arc<MediaCounters>,
}

impl Shared {
    /// Registers a call (see [`Demux::register`]).
    pub fn register(&self, ufrag: &str, key: IceKey, receiver: Arc<dyn Receiver>) -> u64 {
        lock(&self.demux).register(ufrag, key, receiver)
    }

    /// Forgets a call.
    pub fn unregister(&self, id: u64) {
        lock(&self.demux).unregister(id);
    }
}

/// How many tasks read the shared socket: one per core (at most 4), as the runtime has threads.
pub fn readers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Reads the shared socket until the task is aborted (when the engine is dropped).
pub async fn read_loop(shared: Arc<Shared>) {
    let mut buf = vec![0u8; 2048];
    let mut control = stamped::control_buffer();
    loop {
        let d = match stamped::recv_from(&shared.socket, &mut buf, &mut control).await {
            Ok(d) => d,
            Err(e) => {
                // ICMP errors from earlier sends surface here on Linux; nothing to do.
                tracing::debug!("WebRTC socket: {e}");
                continue;
            }
        };
        let (data, source) = (&buf[..d.len], d.source);
        // The routing table is unlocked before the call works on the datagram.
        let receiver = lock(&shared.demux).route(source, data).cloned();
        match receiver {
            Some(r) => r.receive(Instant::now(), d.arrived, source, data),
            None => {
                shared
                    .counters
                    .webrtc_unrouted
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use str0m::ice::{StunMessage, TransId};

    fn hmac() -> &'static dyn Sha1HmacProvider {
        str0m::crypto::from_feature_flags().sha1_hmac_provider
    }

    /// A call that takes datagrams and does nothing with them (routing is tested here).
    struct Ignore;

    impl Receiver for Ignore {
        fn receive(&self, _: Instant, _: Instant, _: SocketAddr, _: &[u8]) {}
    }

    fn key() -> IceKey {
        IceKey {
            password: "password".into(),
            hmac: hmac(),
        }
    }

    fn signed(username: &str, password: &[u8]) -> Vec<u8> {
        let m = StunMessage::binding_request(username, TransId::new(), true, 0, 1, false);
        let mut buf = vec![0u8; 512];
        let n = m
            .to_bytes(Some(password), &mut buf, |k, p| hmac().sha1_hmac(k, p))
            .unwrap();
        buf.truncate(n);
        buf
    }

    fn binding(username: &str) -> Vec<u8> {
        signed(username, b"password")
    }

    #[tokio::test]
    async fn only_authentic_binding_requests_teach_addresses() {
        let mut d = Demux::default();
        let a = d.register("aaaa", key(), Arc::new(Ignore));
        let browser: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        assert!(d.route(browser, &binding("aaaa:them")).is_some());
        // Someone who saw the username fragment (it is in every check, in clear) but not the
        // password: its checks are not routed, and cannot push the browser's address out.
        for port in 0..20u16 {
            let attacker = SocketAddr::new("10.0.0.66".parse().unwrap(), 7000 + port);
            assert!(d.route(attacker, &signed("aaaa:them", b"guess")).is_none());
            let unsigned =
                StunMessage::binding_request("aaaa:x", TransId::new(), true, 0, 1, false);
            let mut buf = vec![0u8; 512];
            let n = unsigned.to_bytes(None, &mut buf, |_, _| [0; 20]).unwrap();
            assert!(d.route(attacker, &buf[..n]).is_none());
        }
        assert_eq!(d.routes[&a].addresses, [browser]);
        assert!(d.route(browser, &[22u8, 0xfe, 0xfd, 0, 0]).is_some());
    }

    #[tokio::test]
    async fn stun_teaches_addresses_and_other_datagrams_follow_them() {
        let mut d = Demux::default();
        let a = d.register("aaaa", key(), Arc::new(Ignore));
        let b = d.register("bbbb", key(), Arc::new(Ignore));
        let x: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let y: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let dtls = [22u8, 0xfe, 0xfd, 0, 0];
        assert!(d.route(x, &dtls).is_none(), "unknown address");
        assert!(d.route(x, &binding("cccc:them")).is_none(), "unknown ufrag");
        assert!(d.route(x, &binding("aaaa:them")).is_some());
        assert_eq!(d.by_address.get(&x), Some(&a));
        assert!(d.route(x, &dtls).is_some());
        assert!(d.route(y, &dtls).is_none());
        // The same address checking for another call moves to it.
        assert!(d.route(x, &binding("bbbb:them")).is_some());
        assert_eq!(d.by_address.get(&x), Some(&b));
        assert!(d.routes[&a].addresses.is_empty());
        // At most MAX_ADDRESSES per call.
        for port in 0..20u16 {
            let s = SocketAddr::new("10.0.0.3".parse().unwrap(), 6000 + port);
            d.route(s, &binding("aaaa:them"));
        }
        assert_eq!(d.routes[&a].addresses.len(), MAX_ADDRESSES);
        assert_eq!(
            d.by_address.values().filter(|v| **v == a).count(),
            MAX_ADDRESSES
        );
        d.unregister(a);
        assert!(d.route(x, &dtls).is_some(), "b keeps its address");
        assert_eq!(d.by_address.len(), 1);
        assert!(!d.by_ufrag.contains_key("aaaa"));
        d.unregister(b);
        assert!(d.by_address.is_empty() && d.routes.is_empty());
    }

    /// Keeps what it receives.
    #[derive(Default)]
    struct Record(Mutex<Vec<(SocketAddr, Vec<u8>)>>);

    impl Receiver for Record {
        fn receive(&self, _: Instant, _: Instant, source: SocketAddr, data: &[u8]) {
            self.0.lock().unwrap().push((source, data.to_vec()));
        }
    }

    #[tokio::test]
    async fn the_reader_hands_each_datagram_to_its_call_as_it_arrives() {
        let shared = Arc::new(Shared {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            demux: Default::default(),
            counters: Arc::new(MediaCounters::default()),
        });
        let to = shared.socket.local_addr().unwrap();
        let (a, b) = (Arc::new(Record::default()), Arc::new(Record::default()));
        shared.register("aaaa", key(), a.clone());
        shared.register("bbbb", key(), b.clone());
        let reader = tokio::spawn(read_loop(shared.clone()));
        let browser = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let dtls = [22u8, 0xfe, 0xfd, 1, 2, 3];
        stranger.send_to(&dtls, to).await.unwrap();
        let check = binding("bbbb:them");
        browser.send_to(&check, to).await.unwrap();
        browser.send_to(&dtls, to).await.unwrap();
        let deadline = Instant::now() + std::time::Duration::from_secs(5);
        while b.0.lock().unwrap().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        reader.abort();
        let got = b.0.lock().unwrap().clone();
        let from = browser.local_addr().unwrap();
        assert_eq!(got, [(from, check), (from, dtls.to_vec())]);
        assert!(a.0.lock().unwrap().is_empty());
        assert_eq!(shared.counters.webrtc_unrouted.load(Ordering::Relaxed), 1);
    }
}
