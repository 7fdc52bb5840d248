//! Per-client login rate limit: a token bucket per [`ClientKey`] (an IPv4 address or an IPv6
//! /64), in a table of bounded size.
//!
//! The table is split into [`SHARDS`] shards by key hash, each behind its own lock, so logins
//! from different clients rarely contend. Each shard keeps two generations of buckets: lookups
//! check the current one, then the previous one (moving a hit forward); when the current one
//! reaches its share of [`MAX_CLIENTS`], the previous one is dropped whole and the current one
//! becomes the previous. Every operation is O(1) and memory is bounded, with no sweep over the
//! table: a client not seen for a whole generation is forgotten, which only gives it a full
//! bucket again (what it would have after a minute anyway, unless the table turns over faster
//! than that — a flood of distinct clients can do that, but each of them gets no more than its
//! own burst).
//!
//! Written here rather than taken from `governor`: its keyed limiter has no size bound (a
//! periodic `retain_recent` sweep over the whole map is the caller's job), and a general cache
//! crate would need a lock per entry for the bucket's read-modify-write.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use crate::client_addr::ClientKey;

/// Number of independently locked shards.
pub const SHARDS: usize = 64;

/// Most clients the table remembers at once (over both generations of every shard).
pub const MAX_CLIENTS: usize = 131_072;

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Default)]
struct Shard {
    current: HashMap<ClientKey, Bucket>,
    previous: HashMap<ClientKey, Bucket>,
}

/// A token bucket per client: `burst` attempts at once, refilled at `per_minute`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    generation: usize,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` attempts per minute with bursts of `burst`, remembering
    /// at most [`MAX_CLIENTS`] clients.
    pub fn new(per_minute: u32, burst: u32) -> RateLimiter {
        RateLimiter::with_capacity(per_minute, burst, MAX_CLIENTS)
    }

    /// [`RateLimiter::new`] remembering at most `capacity` clients (at least one per shard).
    pub fn with_capacity(per_minute: u32, burst: u32, capacity: usize) -> RateLimiter {
        RateLimiter {
            per_second: per_minute as f64 / 60.0,
            burst: burst.max(1) as f64,
            // Two generations per shard share the shard's part of the capacity.
            generation: (capacity / SHARDS / 2).max(1),
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    /// Takes one attempt for the client at `ip` at `now`; `false` when its bucket is empty.
    pub fn allow_at(&self, ip: IpAddr, now: Instant) -> bool {
        let key = ClientKey::of(ip);
        let shard = &self.shards[self.hasher.hash_one(key) as usize % SHARDS];
        let mut dropped = None;
        let allowed = {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            let bucket = match s.current.get(&key) {
                Some(b) => *b,
                None => {
                    let b = s.previous.remove(&key).unwrap_or(Bucket {
                        tokens: self.burst,
                        at: now,
                    });
                    if s.current.len() >= self.generation {
                        let full = std::mem::take(&mut s.current);
                        dropped = Some(std::mem::replace(&mut s.previous, full));
                    }
                    b
                }
            };
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            let mut tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
            let allowed = tokens >= 1.0;
            if allowed {
                tokens -= 1.0;
            }
            s.current.insert(key, Bucket { tokens, at: now });
            allowed
        };
        // Freed outside the lock.
        drop(dropped);
        allowed
    }

    /// Takes one attempt for the client at `ip` now.
    pub fn allow(&self, ip: IpAddr) -> bool {
        self.allow_at(ip, Instant::now())
    }

    /// Clients currently remembered.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock().unwrap();
                s.current.len() + s.previous.len()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_refills() {
        let r = RateLimiter::new(60, 3);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t = Instant::now();
        assert!(r.allow_at(ip, t) && r.allow_at(ip, t) && r.allow_at(ip, t));
        assert!(!r.allow_at(ip, t));
        assert!(r.allow_at("192.0.2.2".parse().unwrap(), t));
        assert!(r.allow_at(ip, t + Duration::from_millis(1100)));
        assert!(!r.allow_at(ip, t + Duration::from_millis(1200)));
        // A clock that goes backwards (another thread's earlier `now`) refills nothing.
        assert!(!r.allow_at(ip, t));
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64() {
        let r = RateLimiter::new(1, 1);
        let t = Instant::now();
        assert!(r.allow_at("2001:db8::1".parse().unwrap(), t));
        assert!(!r.allow_at("2001:db8::2".parse().unwrap(), t));
        assert!(!r.allow_at("2001:db8::ffff:ffff:ffff:ffff".parse().unwrap(), t));
        assert!(r.allow_at("2001:db8:0:1::1".parse().unwrap(), t));
        assert!(r.allow_at("::ffff:192.0.2.1".parse().unwrap(), t));
        assert!(!r.allow_at("192.0.2.1".parse().unwrap(), t));
    }

    #[test]
    fn the_table_stays_bounded_and_keeps_recent_clients() {
        let capacity = SHARDS * 2 * 16;
        let r = RateLimiter::with_capacity(1, 1, capacity);
        let t = Instant::now();
        let throttled: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(r.allow_at(throttled, t));
        for i in 0..100_000u32 {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            assert!(r.allow_at(ip, t), "a new client has a full bucket");
            if i % 97 == 0 {
                assert!(r.len() <= capacity, "{} > {capacity}", r.len());
            }
            // A client that keeps trying stays remembered (and throttled), however many others
            // come and go.
            if i % 8 == 0 {
                assert!(!r.allow_at(throttled, t), "forgotten after {i} others");
            }
        }
        assert!(r.len() > capacity / 2, "{}", r.len());
    }
}
