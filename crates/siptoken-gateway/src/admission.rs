//! Caps on what one client, and all clients together, may hold open: connections in total
//! (`max_connections`), connections per client (`max_connections_per_ip`) and WebSocket
//! sessions per client (`max_sessions_per_ip`), each client being a [`ClientKey`] (an IPv4
//! address or an IPv6 /64). A cap is taken as a [`Permit`] that gives its place back when
//! dropped, so whoever holds the resource (the connection's I/O, the session) holds the permit.
//!
//! Per-client counts live in a map sharded by key; an entry exists only while its client holds
//! something, so the map is bounded by the total caps and never needs a sweep.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::client_addr::ClientKey;

const SHARDS: usize = 64;

/// How many of something each client holds, with a cap.
pub struct PerClient {
    max: usize,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<ClientKey, usize>>>,
}

/// How many of something everyone holds together, with a cap.
pub struct Total {
    max: usize,
    held: AtomicUsize,
}

/// A place taken under a cap; dropping it gives the place back.
#[must_use = "the place is given back when the permit is dropped"]
pub struct Permit(Release);

enum Release {
    PerClient(Arc<PerClient>, ClientKey),
    Total(Arc<Total>),
}

impl Drop for Permit {
    fn drop(&mut self) {
        match &self.0 {
            Release::PerClient(p, key) => {
                let mut shard = p.shard(key).lock().unwrap_or_else(|e| e.into_inner());
                if let Some(n) = shard.get_mut(key) {
                    *n -= 1;
                    if *n == 0 {
                        shard.remove(key);
                    }
                }
            }
            Release::Total(t) => {
                t.held.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

impl PerClient {
    /// At most `max` per client.
    pub fn new(max: usize) -> Arc<PerClient> {
        Arc::new(PerClient {
            max,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        })
    }

    fn shard(&self, key: &ClientKey) -> &Mutex<HashMap<ClientKey, usize>> {
        &self.shards[self.hasher.hash_one(key) as usize % SHARDS]
    }

    /// A place for `key`, unless it already holds `max`.
    pub fn try_acquire(self: &Arc<Self>, key: ClientKey) -> Option<Permit> {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        if shard.get(&key).copied().unwrap_or(0) >= self.max {
            return None;
        }
        *shard.entry(key).or_insert(0) += 1;
        Some(Permit(Release::PerClient(self.clone(), key)))
    }

    /// Clients holding at least one place.
    #[cfg(test)]
    fn clients(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

impl Total {
    /// At most `max` at once.
    pub fn new(max: usize) -> Arc<Total> {
        Arc::new(Total {
            max,
            held: AtomicUsize::new(0),
        })
    }

    /// A place, unless `max` are held.
    pub fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        self.held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Permit(Release::Total(self.clone())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ClientKey {
        ClientKey::of(s.parse().unwrap())
    }

    #[test]
    fn per_client_caps_and_release() {
        let p = PerClient::new(2);
        let a1 = p.try_acquire(key("192.0.2.1")).unwrap();
        let _a2 = p.try_acquire(key("192.0.2.1")).unwrap();
        assert!(p.try_acquire(key("192.0.2.1")).is_none());
        // Another client, and the same /64 counted as one client.
        let _b = p.try_acquire(key("2001:db8::1")).unwrap();
        let _b2 = p.try_acquire(key("2001:db8::2")).unwrap();
        assert!(p.try_acquire(key("2001:db8::3")).is_none());
        drop(a1);
        let _a3 = p.try_acquire(key("192.0.2.1")).unwrap();
        assert_eq!(p.clients(), 2);
    }

    #[test]
    fn entries_go_when_their_last_permit_does() {
        let p = PerClient::new(1);
        let permits: Vec<_> = (0..1000u32)
            .map(|i| {
                p.try_acquire(ClientKey::of(std::net::Ipv4Addr::from(i).into()))
                    .unwrap()
            })
            .collect();
        assert_eq!(p.clients(), 1000);
        drop(permits);
        assert_eq!(p.clients(), 0);
        // A refused attempt leaves no entry behind either.
        let p = PerClient::new(0);
        assert!(p.try_acquire(key("192.0.2.1")).is_none());
        assert!(p
            .shards
            .iter()
            .all(|s| s.lock().unwrap().values().all(|n| *n > 0)));
    }

    #[test]
    fn totals() {
        let t = Total::new(2);
        let a = t.try_acquire().unwrap();
        let _b = t.try_acquire().unwrap();
        assert!(t.try_acquire().is_none());
        drop(a);
        assert!(t.try_acquire().is_some());
    }
}
