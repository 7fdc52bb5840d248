//! Single use across gateway instances: two `siptoken-gateway` processes share a real
//! `redis-server` (`replay_store = "redis://…"`). The same token presented to both at the same
//! moment is accepted exactly once, over many trials; Redis down or silent is a bounded,
//! documented failure (`store_unavailable`, or accepted with `replay_store_failure = "open"`),
//! and the gateways recover by themselves when Redis comes back.

#[path = "gateway/harness.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::*;
use serde_json::json;
use siptoken::{Claims, Issuer, Verifier};

/// A password for Redis's `requirepass`: the gateways must never log it.
const REDIS_PASSWORD: &str = "redis-pw-7c1f0e";

/// A fresh token (its own random id) that authenticates without SIP (`registered="false"`).
fn fresh_token() -> String {
    let claims = Claims::builder("crm1", "pw-never-logged", DOMAIN)
        .outbound_proxy("127.0.0.1")
        .port(9)
        .registered(false)
        .expires(now() + 3600)
        .build()
        .unwrap();
    Issuer::new(&ring()).issue("CRM", &claims).unwrap()
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
    for gw in [&a, &b] {
        assert!(
            !gw.log().contains(REDIS_PASSWORD),
            "the Redis password is in a gateway log"
        );
        assert_eq!(gw.metric("siptoken_gateway_replay_store_errors_total"), 0.0);
    }
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
    wo.login(&again).await;
    wo.expect("authenticated").await;
    wc.login(&again).await;
    wc.expect_error("replayed").await;
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
