//! Single use: remembers the replay key of every accepted token until the token expires.
//!
//! [`ReplayStore`] is a trait: [`MemoryStore`] is the in-process one, and
//! [`super::redis::RedisStore`] lets several gateway instances share one store.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use siptoken::TokenId;

/// A store failure (a shared store being down, slow or refusing); the gateway refuses the login
/// (`store_unavailable`) unless `replay_store_failure = "open"`. `store` is the store's URL with
/// the credentials hidden.
#[derive(Debug, thiserror::Error)]
pub enum ReplayStoreError {
    /// No complete answer within `replay_store_timeout_ms`.
    #[error("replay store unavailable: no answer from {store} within {ms} ms")]
    Timeout {
        /// The store.
        store: String,
        /// The timeout.
        ms: u128,
    },
    /// The connection failed or the server answered with an error.
    #[error("replay store unavailable: {store}: {source}")]
    Redis {
        /// The store.
        store: String,
        /// The `redis` crate's error.
        #[source]
        source: redis::RedisError,
    },
    /// The new key reached fewer replicas than `replay_store_min_replicas` in time; it was
    /// deleted again, so the token is not spent.
    #[error(
        "replay store unavailable: {store}: the key reached {acked} of the {wanted} replicas \
         required (replay_store_min_replicas) within {waited_ms} ms"
    )]
    NotReplicated {
        /// The store.
        store: String,
        /// Replicas that acknowledged the key.
        acked: u64,
        /// Replicas required.
        wanted: u32,
        /// How long the server waited for them.
        waited_ms: u64,
    },
    /// A reply that `SET … NX` or `WAIT` never gives.
    #[error("replay store unavailable: {store}: unexpected reply {reply}")]
    UnexpectedReply {
        /// The store.
        store: String,
        /// The reply, as the `redis` crate shows it.
        reply: String,
    },
}

/// A boxed future, so the trait stays object-safe (`Arc<dyn ReplayStore>`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Remembers token replay keys.
pub trait ReplayStore: Send + Sync {
    /// Atomically records `key` until `until` (Unix seconds). Returns `Ok(true)` when the key
    /// was new (first use), `Ok(false)` when it was already recorded and not yet forgotten.
    fn first_use(
        &self,
        key: TokenId,
        until: i64,
        now: i64,
    ) -> StoreFuture<'_, Result<bool, ReplayStoreError>>;
}

/// An in-memory store; expired entries are purged as new ones arrive.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    until: HashMap<TokenId, i64>,
    by_expiry: BTreeSet<(i64, TokenId)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// How many keys are remembered.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .until
            .len()
    }

    fn insert(&self, key: TokenId, until: i64, now: i64) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        while let Some(&(t, k)) = g.by_expiry.first() {
            if t >= now {
                break;
            }
            g.by_expiry.pop_first();
            g.until.remove(&k);
        }
        if g.until.contains_key(&key) {
            return false;
        }
        g.until.insert(key, until);
        g.by_expiry.insert((until, key));
        true
    }
}

impl ReplayStore for MemoryStore {
    fn first_use(
        &self,
        key: TokenId,
        until: i64,
        now: i64,
    ) -> StoreFuture<'_, Result<bool, ReplayStoreError>> {
        let fresh = self.insert(key, until, now);
        Box::pin(async move { Ok(fresh) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn second_use_is_refused_until_expiry() {
        let s = MemoryStore::new();
        let k = TokenId([7; 16]);
        assert!(s.first_use(k, 100, 10).await.unwrap());
        assert!(!s.first_use(k, 100, 50).await.unwrap());
        assert!(s.first_use(TokenId([8; 16]), 300, 101).await.unwrap());
        assert_eq!(s.len(), 1, "the expired key was purged");
        assert!(s.first_use(k, 200, 101).await.unwrap());
    }

    /// Issue 14, item 2, at the store: a legacy token whose `<root ` space is flipped into a
    /// tab (no key needed) has the same claims, and must be refused as a replay.
    #[tokio::test]
    async fn a_whitespace_flipped_legacy_token_is_a_replay() {
        use siptoken::{Claims, Issuer, KeyRing, Verifier};
        let ring: KeyRing = "CRM=8263D535FFFFFFFF7B0F60".parse().unwrap();
        let now = 1_764_120_000;
        let claims = Claims::builder("crm1", "pw", "sip.example.org")
            .expires(now + 300)
            .build()
            .unwrap();
        let token = Issuer::new(&ring).legacy().issue("CRM", &claims).unwrap();
        // Byte 5 of the plaintext is the space of `<root `: hex digits 10 and 11 of the body.
        let body = &token["CRM:".len()..];
        let byte = u8::from_str_radix(&body[10..12], 16).unwrap() ^ b' ' ^ b'\t';
        let flipped = format!("CRM:{}{byte:02x}{}", &body[..10], &body[12..]);
        let verifier = Verifier::new(&ring).allow_legacy(true).at(now);
        let (first, second) = (
            verifier.verify(&token).unwrap(),
            verifier.verify(&flipped).unwrap(),
        );
        assert_eq!(first.claims(), second.claims());

        let store = MemoryStore::new();
        let until = now + 300 + 30;
        assert!(matches!(
            store.first_use(first.replay_key(), until, now).await,
            Ok(true)
        ));
        assert!(
            matches!(
                store.first_use(second.replay_key(), until, now + 1).await,
                Ok(false)
            ),
            "the flipped variant is the same token"
        );
    }
}
