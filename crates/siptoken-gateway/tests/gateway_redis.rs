//! Single use across gateway instances: two `siptoken-gateway` processes share a real
//! `redis-server` (`replay_store = "redis://…"`). The same token presented to both at the same
//! moment is accepted exactly once, over many trials; Redis down or silent is a bounded,
//! documented failure (`store_unavailable`, or accepted with `replay_store_failure = "open"`),
//! and the gateways recover by themselves when Redis comes back. The same over TLS
//! (`rediss://`, a private CA or the system roots; an untrusted CA refused), through Redis
//! Sentinel with the master killed, or failed over by `SENTINEL FAILOVER`, during a stream of
//! logins (also Sentinel over TLS), on a three-node Redis Cluster (also over TLS), and with
//! `replay_store_min_replicas` (a key no replica holds does not let its token in).

#[path = "gateway/harness.rs"]
mod harness;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;
use siptoken::{Claims, Verifier};

/// A password for Redis's `requirepass`: the gateways must never log it.
const REDIS_PASSWORD: &str = "redis-pw-7c1f0e";

/// A master starts a replica's full sync at once (Redis waits 5 s for more replicas by default).
const FAST_SYNC: &str = "repl-diskless-sync-delay 0\n";

/// A fresh token (its own random id) that authenticates without SIP (`registered="false"`).
fn fresh_token() -> String {
    let claims = Claims::builder("crm1", "pw-never-logged", DOMAIN)
        .outbound_proxy("127.0.0.1")
        .port(9)
        .registered(false)
        .expires(now() + 3600)
        .build()
        .unwrap();
    crm_token(&claims)
}

/// A gateway config on this Redis with limits high enough for the trials.
fn config(redis: &str, extra: &str) -> String {
    format!(
        "replay_store = \"{redis}\"\nlogin_rate_per_minute = 1000000\nlogin_burst = 1000000\n{extra}"
    )
}

fn trials() -> usize {
    std::env::var("SIPTOKEN_REDIS_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// No gateway log holds the Redis password.
fn assert_no_password_logged(gateways: &[&Gateway]) {
    for gw in gateways {
        assert!(
            !gw.log().contains(REDIS_PASSWORD),
            "the Redis password is in a gateway log"
        );
    }
}

/// No gateway counted a replay store error.
fn assert_no_store_errors(gateways: &[&Gateway]) {
    for gw in gateways {
        assert_eq!(gw.metric("siptoken_gateway_replay_store_errors_total"), 0.0);
    }
}

/// `token` is accepted by the gateway behind `first`, then refused as replayed by the one
/// behind `second` (both sharing one store).
async fn accepted_once(first: &mut Ws, second: &mut Ws, token: &str) {
    first.login(token).await;
    first.expect("authenticated").await;
    second.login(token).await;
    second.expect_error("replayed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (scripts/ci/45-hardening.sh)"]
async fn the_same_token_at_two_gateways_at_once_is_accepted_exactly_once() {
    let redis = Redis::start(Some(REDIS_PASSWORD));
    let a = Gateway::start(&config(&redis.url(), ""));
    let b = Gateway::start(&config(&redis.url(), ""));
    let mut wa = a.ws().await;
    let mut wb = b.ws().await;
    let n = trials();
    let (mut won_a, mut won_b) = (0, 0);
    let started = Instant::now();
    for trial in 0..n {
        let token = fresh_token();
        let msg = json!({"type": "login", "token": token});
        // Each socket sends from its own task, released together by a barrier: on the 2 worker
        // threads the two logins leave at the same moment.
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let go = |mut ws: Ws, barrier: Arc<tokio::sync::Barrier>, msg: serde_json::Value| {
            tokio::spawn(async move {
                barrier.wait().await;
                ws.send(msg).await;
                let r = ws.recv().await;
                (ws, r)
            })
        };
        let ta = go(wa, barrier.clone(), msg.clone());
        let tb = go(wb, barrier, msg);
        let (a_done, b_done) = (ta.await.unwrap(), tb.await.unwrap());
        let (ra, rb);
        (wa, ra) = a_done;
        (wb, rb) = b_done;
        let accepted = [&ra, &rb]
            .iter()
            .filter(|v| v["type"] == "authenticated")
            .count();
        let replayed = [&ra, &rb]
            .iter()
            .filter(|v| v["type"] == "error" && v["code"] == "replayed")
            .count();
        assert_eq!((accepted, replayed), (1, 1), "trial {trial}: {ra} / {rb}");
        let winner = if ra["type"] == "authenticated" {
            won_a += 1;
            &mut wa
        } else {
            won_b += 1;
            &mut wb
        };
        winner.send(json!({"type": "logout"})).await;
        winner.expect("unregistered").await;
    }
    eprintln!(
        "{n} trials in {:?}: gateway A accepted {won_a}, gateway B accepted {won_b}, \
         every token exactly once",
        started.elapsed()
    );
    assert_eq!(won_a + won_b, n);
    // Each key lives until the token expires (plus leeway): SET … NX EX, not a key forever.
    assert!(redis.command("DBSIZE").trim() == format!(":{n}"));
    let token = fresh_token();
    let key = Verifier::new(&ring()).verify(&token).unwrap().replay_key();
    wa.login(&token).await;
    wa.expect("authenticated").await;
    let ttl: i64 = redis
        .command(&format!("TTL siptoken:used:{key}"))
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap();
    assert!((3600..=3600 + 30).contains(&ttl), "TTL {ttl}");
    assert_no_password_logged(&[&a, &b]);
    assert_no_store_errors(&[&a, &b]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (scripts/ci/45-hardening.sh)"]
async fn redis_down_fails_closed_by_default_or_open_if_configured_and_both_recover() {
    let mut redis = Redis::start(None);
    let timeout = "replay_store_timeout_ms = 300\n";
    let closed = Gateway::start(&config(&redis.url(), timeout));
    let open = Gateway::start(&config(
        &redis.url(),
        &format!("{timeout}replay_store_failure = \"open\""),
    ));
    let mut wc = closed.ws().await;
    let mut wo = open.ws().await;
    wc.login(&fresh_token()).await;
    wc.expect("authenticated").await;
    wo.login(&fresh_token()).await;
    wo.expect("authenticated").await;

    redis.stop();
    let refused = fresh_token();
    let t = Instant::now();
    wc.login(&refused).await;
    let v = wc.expect_error("store_unavailable").await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(!v["message"].as_str().unwrap().contains("127.0.0.1"), "{v}");
    wc.ping().await;
    assert_eq!(closed.get("/healthz").0, 200);
    assert_eq!(
        closed
            .metric("siptoken_gateway_logins_total{outcome=\"error\",code=\"store_unavailable\"}"),
        1.0
    );
    assert!(closed.metric("siptoken_gateway_replay_store_errors_total") >= 1.0);
    assert!(closed
        .log()
        .contains("login refused (replay_store_failure = closed)"));

    // Fail open: the token is verified as ever, only the single-use check is skipped.
    wo.login(&fresh_token()).await;
    wo.expect("authenticated").await;
    wo.login("CRM:v1.k1.00").await;
    wo.expect_error("token_rejected").await;
    assert!(open.metric("siptoken_gateway_replay_store_errors_total") >= 1.0);
    assert!(open.log().contains("without the single-use check"));

    // Redis comes back (empty): both gateways use it again without a restart. The refused
    // token was never spent, so it can be used now.
    redis.restart();
    wc.login(&refused).await;
    wc.expect("authenticated").await;
    let again = fresh_token();
    accepted_once(&mut wo, &mut wc, &again).await;
    assert_eq!(redis.command("DBSIZE").trim(), ":2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (scripts/ci/45-hardening.sh)"]
async fn a_store_that_accepts_connections_but_never_answers_is_a_bounded_failure() {
    // A TCP listener that accepts and never says a word (a hung Redis, a black-holing proxy).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(20);
        while Instant::now() < until {
            if let Ok((s, _)) = listener.accept() {
                held.push(s);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let gw = Gateway::start(&config(
        &format!("redis://127.0.0.1:{port}"),
        "replay_store_timeout_ms = 400",
    ));
    let mut sockets = Vec::new();
    for _ in 0..3 {
        sockets.push(gw.ws().await);
    }
    let t = Instant::now();
    for ws in sockets.iter_mut() {
        ws.login(&fresh_token()).await;
    }
    for ws in sockets.iter_mut() {
        ws.expect_error("store_unavailable").await;
        ws.ping().await;
    }
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(gw.log().contains("no answer from redis://127.0.0.1"));
    assert_eq!(gw.get("/healthz").0, 200);
    drop(holder);
}

/// What one gateway answered to a login.
fn outcome(v: &serde_json::Value) -> &str {
    match v["type"].as_str() {
        Some("authenticated") => "authenticated",
        Some("error") => v["code"].as_str().unwrap_or("error"),
        _ => "other",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server with TLS, openssl (scripts/ci/45-hardening.sh)"]
async fn rediss_with_a_private_ca_works_and_an_untrusted_ca_fails_closed() {
    let pki = tempfile::tempdir().unwrap();
    let certs = Certs::make(pki.path(), "redis.test");
    let tls_port = free_port();
    // The plain port stays for the test's own commands; the gateways use the TLS one.
    let redis = Redis::start_with(
        Some(REDIS_PASSWORD),
        &format!(
            "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
             tls-auth-clients no\n",
            certs.cert.display(),
            certs.key.display(),
            certs.ca.display()
        ),
    );
    let url = format!("rediss://:{REDIS_PASSWORD}@127.0.0.1:{tls_port}");
    let trusted = Gateway::start(&config(
        &url,
        &format!("replay_store_tls_ca_file = \"{}\"", certs.ca.display()),
    ));
    // The system roots, pointed at the test CA the way rustls-native-certs reads them.
    let ca = certs.ca.display().to_string();
    let system = Gateway::start_with_env(&config(&url, ""), &[], &[("SSL_CERT_FILE", &ca)]);
    let other = tempfile::tempdir().unwrap();
    let stranger = Certs::make(other.path(), "redis.test");
    let untrusted = Gateway::start(&config(
        &url,
        &format!(
            "replay_store_tls_ca_file = \"{}\"\nreplay_store_timeout_ms = 1000",
            stranger.ca.display()
        ),
    ));
    let (mut wt, mut ws, mut wu) = (trusted.ws().await, system.ws().await, untrusted.ws().await);

    let token = fresh_token();
    accepted_once(&mut wt, &mut ws, &token).await;
    let other_token = fresh_token();
    ws.login(&other_token).await;
    ws.expect("authenticated").await;
    assert_eq!(redis.command("DBSIZE").trim(), ":2");

    // A server certificate from a CA the gateway does not trust: refused, promptly, and the
    // token is not spent (the TLS handshake fails before any command).
    let refused = fresh_token();
    let t = Instant::now();
    wu.login(&refused).await;
    wu.expect_error("store_unavailable").await;
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let log = untrusted.log();
    assert!(
        log.contains("certificate") && log.contains("login refused"),
        "{log}"
    );
    assert_eq!(redis.command("DBSIZE").trim(), ":2");
    wt.login(&refused).await;
    wt.expect("authenticated").await;
    assert_no_password_logged(&[&trusted, &system, &untrusted]);
    // Plain redis:// to the TLS port never gets an answer it can use: a bounded failure too.
    let plain = Gateway::start(&config(
        &format!("redis://:{REDIS_PASSWORD}@127.0.0.1:{tls_port}"),
        "replay_store_timeout_ms = 500",
    ));
    let mut wp = plain.ws().await;
    wp.login(&fresh_token()).await;
    wp.expect_error("store_unavailable").await;
}

/// `redis.conf` lines for TLS on `tls_port` with `certs` (the plain port stays, for the test's
/// own commands); replication, cluster bus and sentinels over TLS too.
fn tls_config(tls_port: u16, certs: &Certs) -> String {
    format!(
        "tls-port {tls_port}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
         tls-auth-clients no\ntls-replication yes\n",
        certs.cert.display(),
        certs.key.display(),
        certs.ca.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server, redis-sentinel with TLS, openssl (scripts/ci/45-hardening.sh)"]
async fn rediss_sentinel_finds_the_master_over_tls_and_refuses_an_untrusted_ca() {
    let pki = tempfile::tempdir().unwrap();
    let certs = Certs::make(pki.path(), "redis.test");
    let (master_tls, replica_tls, sentinel_tls) = (free_port(), free_port(), free_port());
    let master = Redis::start_with(
        Some(REDIS_PASSWORD),
        &format!("{FAST_SYNC}{}", tls_config(master_tls, &certs)),
    );
    let replica = Redis::start_with(
        Some(REDIS_PASSWORD),
        &format!(
            "{}replicaof 127.0.0.1 {master_tls}\n",
            tls_config(replica_tls, &certs)
        ),
    );
    wait_replicas(&master, 1);
    let sentinel = RedisSentinel::start_with(
        master_tls,
        Some(REDIS_PASSWORD),
        1,
        &tls_config(sentinel_tls, &certs),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sentinel
        .command(&format!("SENTINEL replicas {}", RedisSentinel::MASTER))
        .contains(&replica_tls.to_string())
    {
        assert!(Instant::now() < deadline, "{}", sentinel.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!(
        "rediss+sentinel://:{REDIS_PASSWORD}@127.0.0.1:{sentinel_tls}/{}",
        RedisSentinel::MASTER
    );
    let ca = |c: &Certs| format!("replay_store_tls_ca_file = \"{}\"", c.ca.display());
    let a = Gateway::start(&config(&url, &ca(&certs)));
    let b = Gateway::start(&config(&url, &ca(&certs)));
    let (mut wa, mut wb) = (a.ws().await, b.ws().await);
    let token = fresh_token();
    accepted_once(&mut wa, &mut wb, &token).await;
    assert_eq!(master.command("DBSIZE").trim(), ":1");
    // Replicated over TLS too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while replica.command("DBSIZE").trim() != ":1" {
        assert!(
            Instant::now() < deadline,
            "the key never reached the replica"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    let other = tempfile::tempdir().unwrap();
    let stranger = Certs::make(other.path(), "redis.test");
    let untrusted = Gateway::start(&config(&url, &ca(&stranger)));
    let mut wu = untrusted.ws().await;
    let refused = fresh_token();
    wu.login(&refused).await;
    wu.expect_error("store_unavailable").await;
    assert!(
        untrusted.log().contains("certificate"),
        "{}",
        untrusted.log()
    );
    wb.login(&refused).await;
    wb.expect("authenticated").await;
    assert_no_password_logged(&[&a, &b, &untrusted]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server (scripts/ci/45-hardening.sh)"]
async fn min_replicas_refuse_a_key_no_replica_holds_and_leave_its_token_unspent() {
    let master = Redis::start_with(Some(REDIS_PASSWORD), FAST_SYNC);
    let mut replica = Redis::start_with(
        Some(REDIS_PASSWORD),
        &format!("replicaof 127.0.0.1 {}\n", master.port),
    );
    wait_replicas(&master, 1);
    let gw = Gateway::start(&config(
        &master.url(),
        // A replica's acknowledgement gets 1 s (half the call): ample on a loaded machine.
        "replay_store_min_replicas = 1\nreplay_store_timeout_ms = 2000",
    ));
    let mut ws = gw.ws().await;
    let token = fresh_token();
    ws.login(&token).await;
    ws.expect("authenticated").await;
    assert_eq!(
        replica.command("DBSIZE").trim(),
        ":1",
        "the key is on the replica"
    );

    replica.stop();
    wait_replicas(&master, 0);
    let refused = fresh_token();
    let t = Instant::now();
    ws.login(&refused).await;
    ws.expect_error("store_unavailable").await;
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(
        gw.log().contains("of the 1 replicas required"),
        "{}",
        gw.log()
    );
    assert_eq!(
        master.command("DBSIZE").trim(),
        ":1",
        "the unreplicated key was deleted"
    );
    ws.login(&token).await;
    ws.expect_error("replayed").await;

    replica.restart();
    wait_replicas(&master, 1);
    ws.login(&refused).await;
    ws.expect("authenticated").await;
    assert_eq!(master.command("DBSIZE").trim(), ":2");
}

/// Waits until `server` is a replica of the one on `master_port`, in sync; returns when.
fn wait_following(server: &Redis, master_port: u16) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = server.command("INFO replication");
        if info.contains("role:slave")
            && info.contains(&format!("master_port:{master_port}"))
            && info.contains("master_link_status:up")
        {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "never a replica of {master_port}: {info}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `master` counts `n` connected replicas in sync.
fn wait_replicas(master: &Redis, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = master.command("INFO replication");
        let online = info.matches("state=online").count();
        let connected = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_slaves:"))
            .and_then(|v| v.trim().parse::<usize>().ok());
        if connected == Some(n) && online == n {
            return;
        }
        assert!(Instant::now() < deadline, "replicas never {n}: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Counts of a stream of logins.
#[derive(Default, Debug)]
struct Tally {
    /// Tokens presented (each to both gateways at once).
    attempted: usize,
    /// Tokens one gateway accepted.
    accepted: usize,
    /// Tokens neither accepted, at least one saying store_unavailable.
    unavailable: usize,
    /// Accepted tokens, with when they were sent.
    accepted_tokens: Vec<(Instant, String)>,
    /// Tokens refused with store_unavailable by both.
    unavailable_tokens: Vec<String>,
    /// Other outcomes (e.g. replayed by both), by pair.
    other: HashMap<String, usize>,
}

impl Tally {
    /// The counts for a report, with `unspent` and `spent` from [`present_again`].
    fn summary(&self, unspent: usize, spent: usize) -> String {
        format!(
            "{} tokens presented to both gateways, {} accepted (exactly once each), {} refused \
             store_unavailable ({} by both: {unspent} unspent and accepted later, {spent} \
             spent), other {:?}",
            self.attempted,
            self.accepted,
            self.unavailable,
            self.unavailable_tokens.len(),
            self.other
        )
    }

    /// No token had an outcome besides accepted once, store_unavailable, or replayed by both.
    fn assert_only_replayed_otherwise(&self) {
        assert!(
            self.other.keys().all(|k| k == "replayed/replayed"),
            "{:?}",
            self.other
        );
    }
}

/// Clients presenting every fresh token to two gateways at once, until stopped. Panics (in
/// its tasks, seen at [`LoginStream::finish`]) if both gateways ever accept one token.
struct LoginStream {
    tally: Arc<Mutex<Tally>>,
    stop: Arc<AtomicBool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl LoginStream {
    fn start(a: &Arc<Gateway>, b: &Arc<Gateway>, clients: usize) -> LoginStream {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..clients)
            .map(|_| {
                let (a, b, tally, stop) = (a.clone(), b.clone(), tally.clone(), stop.clone());
                tokio::spawn(async move {
                    let (mut wa, mut wb) = (a.ws().await, b.ws().await);
                    while !stop.load(Ordering::Relaxed) {
                        let token = fresh_token();
                        let sent = Instant::now();
                        let ((), ()) = tokio::join!(wa.login(&token), wb.login(&token));
                        let (ra, rb) = tokio::join!(wa.recv(), wb.recv());
                        let (oa, ob) = (outcome(&ra), outcome(&rb));
                        let won = [oa, ob].iter().filter(|o| **o == "authenticated").count();
                        assert!(won <= 1, "a token accepted twice: {ra} / {rb}");
                        {
                            let mut t = tally.lock().unwrap();
                            t.attempted += 1;
                            if won == 1 {
                                t.accepted += 1;
                                t.accepted_tokens.push((sent, token));
                            } else if oa == "store_unavailable" || ob == "store_unavailable" {
                                t.unavailable += 1;
                                if oa == ob {
                                    t.unavailable_tokens.push(token);
                                }
                            } else {
                                *t.other.entry(format!("{oa}/{ob}")).or_default() += 1;
                            }
                        }
                        for (w, o) in [(&mut wa, oa), (&mut wb, ob)] {
                            if o == "authenticated" {
                                w.send(json!({"type": "logout"})).await;
                                w.expect("unregistered").await;
                            }
                        }
                    }
                })
            })
            .collect();
        LoginStream {
            tally,
            stop,
            workers,
        }
    }

    fn accepted(&self) -> usize {
        self.tally.lock().unwrap().accepted
    }

    /// Waits for the first accepted login sent after `since` (at most `within`); returns when
    /// it was sent.
    async fn first_accepted_after(&self, since: Instant, within: Duration) -> Instant {
        let deadline = Instant::now() + within;
        loop {
            let first = self
                .tally
                .lock()
                .unwrap()
                .accepted_tokens
                .iter()
                .find(|(sent, _)| *sent > since)
                .map(|(sent, _)| *sent);
            if let Some(sent) = first {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "no login accepted within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await.unwrap();
        }
        std::mem::take(&mut *self.tally.lock().unwrap())
    }
}

/// Presents every token again, once the store is back: each accepted one must be refused as
/// replayed (no key was lost in a failover). Tokens refused as unavailable are mostly unspent
/// (accepted now); some may read "replayed" (the SET landed, its answer was lost). Returns
/// (unspent, spent) of those.
async fn present_again(gw: &Gateway, t: &Tally) -> (usize, usize) {
    let mut ws = gw.ws().await;
    for (_, token) in &t.accepted_tokens {
        ws.login(token).await;
        let v = ws.recv().await;
        assert_eq!(
            outcome(&v),
            "replayed",
            "a token accepted again after the failover: {v}"
        );
    }
    let (mut unspent, mut spent) = (0, 0);
    for token in &t.unavailable_tokens {
        ws.login(token).await;
        let v = ws.recv().await;
        match outcome(&v) {
            "authenticated" => {
                unspent += 1;
                ws.send(json!({"type": "logout"})).await;
                ws.expect("unregistered").await;
            }
            "replayed" => spent += 1,
            other => panic!("unexpected {other}: {v}"),
        }
    }
    (unspent, spent)
}

/// A master with one replica, three sentinels (quorum 2) that know each other and the replica,
/// and two gateways on `redis+sentinel://` with `extra` config.
struct SentinelGroup {
    master: Redis,
    replica: Redis,
    sentinels: Vec<RedisSentinel>,
    a: Arc<Gateway>,
    b: Arc<Gateway>,
}

impl SentinelGroup {
    fn start(extra: &str) -> SentinelGroup {
        let master = Redis::start_with(Some(REDIS_PASSWORD), FAST_SYNC);
        let replica = Redis::start_with(
            Some(REDIS_PASSWORD),
            &format!("{FAST_SYNC}replicaof 127.0.0.1 {}\n", master.port),
        );
        wait_replicas(&master, 1);
        let sentinels: Vec<RedisSentinel> = (0..3)
            .map(|_| RedisSentinel::start(master.port, Some(REDIS_PASSWORD), 2))
            .collect();
        // Each sentinel must know the others (hello messages, every 2 s) and the replica
        // before a failover can be authorised.
        let deadline = Instant::now() + Duration::from_secs(30);
        for s in &sentinels {
            loop {
                let q = s.command(&format!("SENTINEL CKQUORUM {}", RedisSentinel::MASTER));
                let r = s.command(&format!("SENTINEL replicas {}", RedisSentinel::MASTER));
                if q.contains("3 usable") && r.contains(&replica.port.to_string()) {
                    break;
                }
                assert!(Instant::now() < deadline, "sentinels not ready: {q} / {r}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let hosts: Vec<String> = sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let url = format!(
            "redis+sentinel://:{REDIS_PASSWORD}@{}/{}",
            hosts.join(","),
            RedisSentinel::MASTER
        );
        let a = Arc::new(Gateway::start(&config(&url, extra)));
        let b = Arc::new(Gateway::start(&config(&url, extra)));
        SentinelGroup {
            master,
            replica,
            sentinels,
            a,
            b,
        }
    }

    /// Waits until a sentinel names the server on `port` as master; returns when it did.
    async fn wait_master(&self, port: u16, since: Instant) -> Instant {
        loop {
            if self.sentinels.iter().any(|s| s.master_port() == Some(port)) {
                return Instant::now();
            }
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "no failover within 30 s:\n{}",
                self.sentinels[0].log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn assert_no_password_logged(&self) {
        assert_no_password_logged(&[&self.a, &self.b]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server, redis-sentinel (scripts/ci/45-hardening.sh)"]
async fn the_master_killed_during_logins_no_token_accepted_twice_and_logins_recover() {
    let mut g = SentinelGroup::start("replay_store_timeout_ms = 500");
    let stream = LoginStream::start(&g.a, &g.b, 4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        stream.accepted() > 0,
        "no login went through before the failover"
    );
    g.master.kill();
    // From here no login can go through until the replica is promoted (the master is dead).
    let killed = Instant::now();
    let promoted = g.wait_master(g.replica.port, killed).await;
    let recovered = stream
        .first_accepted_after(killed, Duration::from_secs(10) + promoted.elapsed())
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let t = stream.finish().await;
    let after = t
        .accepted_tokens
        .iter()
        .filter(|(s, _)| *s > recovered)
        .count();
    let (unspent, spent) = present_again(&g.a, &t).await;
    eprintln!(
        "master killed during logins: {}; kill → replica promoted {:?}, promoted → first login \
         accepted {:?} (kill → recovery {:?}); {after} accepted in the 3 s after",
        t.summary(unspent, spent),
        promoted - killed,
        recovered.saturating_duration_since(promoted),
        recovered - killed,
    );
    t.assert_only_replayed_otherwise();
    let lag = recovered.saturating_duration_since(promoted);
    assert!(
        lag < Duration::from_secs(5),
        "logins recovered {lag:?} after the promotion"
    );
    assert!(after > 0);
    g.assert_no_password_logged();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server, redis-sentinel (scripts/ci/45-hardening.sh)"]
async fn a_sentinel_failover_with_min_replicas_never_accepts_a_token_twice() {
    // SENTINEL FAILOVER promotes the replica while the old master, which no one has told, still
    // takes writes until the sentinels demote it (about 10 s later): a gateway still connected
    // there and one already on the new master both accept the same token, and the keys written
    // there are lost when it resyncs. With replay_store_min_replicas = 1 such a key fails its
    // WAIT (the old master has no replica left) and its login is refused. Run with
    // SIPTOKEN_REDIS_FAILOVER_MIN_REPLICAS=0 to see the hole this closes.
    let min_replicas = std::env::var("SIPTOKEN_REDIS_FAILOVER_MIN_REPLICAS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1);
    let g = SentinelGroup::start(&format!(
        "replay_store_timeout_ms = 500\nreplay_store_min_replicas = {min_replicas}"
    ));
    let stream = LoginStream::start(&g.a, &g.b, 4);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        stream.accepted() > 0,
        "no login went through before the failover"
    );
    let asked = Instant::now();
    let reply = g.sentinels[0].command(&format!("SENTINEL FAILOVER {}", RedisSentinel::MASTER));
    assert!(reply.starts_with("+OK"), "{reply}");
    let promoted = g.wait_master(g.replica.port, asked).await;
    // Logins go through again once the old master follows the new one (WAIT 1 is met again).
    let recovered = stream
        .first_accepted_after(promoted, Duration::from_secs(30))
        .await;
    let lag = recovered.saturating_duration_since(promoted);
    assert!(
        lag < Duration::from_secs(20),
        "logins recovered {lag:?} after the promotion"
    );
    // Until the sentinels have demoted the old master, a gateway may still be writing there:
    // only then is it known which keys survive.
    let demoted = wait_following(&g.master, g.replica.port);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let t = stream.finish().await;
    let (unspent, spent) = present_again(&g.a, &t).await;
    eprintln!(
        "SENTINEL FAILOVER during logins (min_replicas = {min_replicas}): {}; asked → promoted \
         {:?}, promoted → first login accepted {:?}, asked → old master demoted {:?}",
        t.summary(unspent, spent),
        promoted - asked,
        recovered.saturating_duration_since(promoted),
        demoted - asked,
    );
    t.assert_only_replayed_otherwise();
    eprintln!(
        "DEBUG sentinel log:\n{}\nold master log:\n{}",
        g.sentinels[0].log(),
        std::fs::read_to_string(g.master.dir.path().join("redis.log")).unwrap()
    );
    g.assert_no_password_logged();
}

/// Three `redis-server` cluster nodes, all slots assigned by `redis-cli --cluster create`, each
/// also with TLS on its own port (cluster bus over TLS too, mutual: the certificate needs
/// `clientAuth`) when `tls` is given. Returns the nodes and the `127.0.0.1:port` addresses
/// clients use (the TLS ones with `tls`).
fn start_cluster(tls: Option<&Certs>) -> (Vec<Redis>, Vec<String>) {
    let mut client_ports = Vec::new();
    let nodes: Vec<Redis> = (0..3)
        .map(|_| {
            let mut extra = format!(
                "cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port {}\n\
                 cluster-node-timeout 2000\n",
                free_port()
            );
            if let Some(certs) = tls {
                let port = free_port();
                extra.push_str(&tls_config(port, certs));
                extra.push_str("tls-cluster yes\n");
                client_ports.push(Some(port));
            } else {
                client_ports.push(None);
            }
            Redis::start_with(Some(REDIS_PASSWORD), &extra)
        })
        .collect();
    let addrs: Vec<String> = nodes
        .iter()
        .zip(client_ports)
        .map(|(n, tls)| format!("127.0.0.1:{}", tls.unwrap_or(n.port)))
        .collect();
    // The password through the environment, never on a command line; bounded (redis-cli waits
    // forever for nodes that cannot meet).
    let mut create = std::process::Command::new("timeout");
    create
        .args(["60", "redis-cli"])
        .env("REDISCLI_AUTH", REDIS_PASSWORD);
    if let Some(certs) = tls {
        create.arg("--tls").arg("--cacert").arg(&certs.ca);
    }
    let out = create
        .args(["--cluster", "create"])
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "redis-cli --cluster create: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    for n in &nodes {
        while !n.command("CLUSTER INFO").contains("cluster_state:ok") {
            assert!(
                Instant::now() < deadline,
                "cluster not ok: {}",
                n.command("CLUSTER INFO")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    (nodes, addrs)
}

/// Keys per node.
fn cluster_sizes(nodes: &[Redis]) -> Vec<usize> {
    nodes
        .iter()
        .map(|node| {
            node.command("DBSIZE")
                .trim()
                .trim_start_matches(':')
                .parse()
                .unwrap()
        })
        .collect()
}

/// Presents `n` fresh tokens to two gateways at once: each accepted by exactly one.
async fn race(wa: &mut Ws, wb: &mut Ws, n: usize) {
    for trial in 0..n {
        let token = fresh_token();
        let ((), ()) = tokio::join!(wa.login(&token), wb.login(&token));
        let (ra, rb) = tokio::join!(wa.recv(), wb.recv());
        let mut got = [outcome(&ra), outcome(&rb)];
        got.sort();
        assert_eq!(
            got,
            ["authenticated", "replayed"],
            "trial {trial}: {ra} / {rb}"
        );
        let winner = if outcome(&ra) == "authenticated" {
            &mut *wa
        } else {
            &mut *wb
        };
        winner.send(json!({"type": "logout"})).await;
        winner.expect("unregistered").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server, redis-tools (scripts/ci/45-hardening.sh)"]
async fn on_a_redis_cluster_each_token_is_accepted_once_whichever_node_holds_its_key() {
    let (nodes, addrs) = start_cluster(None);
    // Gateway A knows one seed node, B all three: both find every key's node.
    let a = Gateway::start(&config(
        &format!("redis+cluster://:{REDIS_PASSWORD}@{}", addrs[0]),
        "",
    ));
    let b = Gateway::start(&config(
        &format!("redis+cluster://:{REDIS_PASSWORD}@{}", addrs.join(",")),
        "",
    ));
    let (mut wa, mut wb) = (a.ws().await, b.ws().await);
    let n = trials().min(100);
    race(&mut wa, &mut wb, n).await;
    let sizes = cluster_sizes(&nodes);
    eprintln!("{n} tokens on a 3-node cluster, keys per node: {sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), n);
    assert!(
        sizes.iter().all(|s| *s > 0),
        "keys on every node: {sizes:?}"
    );
    assert_no_password_logged(&[&a, &b]);
    assert_no_store_errors(&[&a, &b]);
    // The WAIT goes with the SET to the key's master: these masters have no replica, so a
    // gateway requiring one refuses the login and leaves no key behind.
    let c = Gateway::start(&config(
        &format!("redis+cluster://:{REDIS_PASSWORD}@{}", addrs[1]),
        "replay_store_min_replicas = 1",
    ));
    let mut wc = c.ws().await;
    wc.login(&fresh_token()).await;
    wc.expect_error("store_unavailable").await;
    assert!(
        c.log().contains("of the 1 replicas required"),
        "{}",
        c.log()
    );
    assert_eq!(cluster_sizes(&nodes).iter().sum::<usize>(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server with TLS, redis-tools, openssl (scripts/ci/45-hardening.sh)"]
async fn rediss_cluster_routes_every_key_over_tls() {
    let pki = tempfile::tempdir().unwrap();
    let certs = Certs::make_for(pki.path(), "redis.test", "serverAuth,clientAuth");
    let (nodes, addrs) = start_cluster(Some(&certs));
    let url = format!("rediss+cluster://:{REDIS_PASSWORD}@{}", addrs[0]);
    let ca = format!("replay_store_tls_ca_file = \"{}\"", certs.ca.display());
    let a = Gateway::start(&config(&url, &ca));
    let b = Gateway::start(&config(&url, &ca));
    let (mut wa, mut wb) = (a.ws().await, b.ws().await);
    race(&mut wa, &mut wb, 60).await;
    let sizes = cluster_sizes(&nodes);
    assert!(
        sizes.iter().all(|s| *s > 0),
        "keys on every node: {sizes:?}"
    );
    let other = tempfile::tempdir().unwrap();
    let stranger = Certs::make(other.path(), "redis.test");
    let untrusted = Gateway::start(&config(
        &url,
        &format!("replay_store_tls_ca_file = \"{}\"", stranger.ca.display()),
    ));
    let mut wu = untrusted.ws().await;
    wu.login(&fresh_token()).await;
    wu.expect_error("store_unavailable").await;
    assert_eq!(cluster_sizes(&nodes).iter().sum::<usize>(), 60);
    assert_no_password_logged(&[&a, &b, &untrusted]);
}
