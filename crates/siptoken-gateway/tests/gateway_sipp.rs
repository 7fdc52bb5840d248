//! The gateway against faulty registrars played by sipp (Debian `sip-tester`): 403 after the
//! challenge, 423 with Min-Expires, 503 with Retry-After, a SHA-256 challenge beside an MD5 one,
//! a 407, a 401 and a `stale=true` 401 in a row, no answer at all, and challenges below the
//! gateway's digest policy (no qop, MD5 under `min_digest_algorithm = "SHA-256"`). Each
//! produces the documented event and leaves the gateway healthy.

#[path = "gateway/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use harness::*;
use siptoken::Transport;

/// Starts sipp playing `scenario_file` (in tests/gateway/sipp/) and a gateway with `config`, and
/// opens a WebSocket.
async fn sipp_gateway_ws(scenario_file: &str, config: &str) -> (Sipp, Gateway, Ws) {
    let sipp = Sipp::start(&scenario(scenario_file));
    let gw = Gateway::start(config);
    let ws = gw.ws().await;
    (sipp, gw, ws)
}

/// The one account every scenario expects, at sipp's port over UDP.
fn crm1_token(sipp: &Sipp) -> String {
    token("crm1", "pw", sipp.port, Transport::Udp)
}

/// Sends the login of [`crm1_token`] and expects `registering`.
async fn login_crm1(ws: &mut Ws, sipp: &Sipp) {
    ws.login(&crm1_token(sipp)).await;
    ws.expect("registering").await;
}

/// Registers at the registrar `scenario_file` plays (the gateway configured with `config` on top
/// of a 5 s transaction timeout), logs out, and checks that sipp saw its whole scenario.
async fn registers_and_unregisters_against(scenario_file: &str, config: &str) {
    let config = format!("sip_transaction_timeout_ms = 5000\n{config}");
    let (mut sipp, _gw, mut ws) = sipp_gateway_ws(scenario_file, &config).await;
    ws.login_registered(&crm1_token(&sipp)).await;
    ws.logout().await;
    sipp.wait_success(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn forbidden_after_the_challenge_is_sip_auth_failed() {
    auth_fails("403-after-challenge.xml", "", 403, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn interval_too_brief_is_retried_with_min_expires() {
    let (mut sipp, _gw, mut ws) = sipp_gateway_ws(
        "423-min-expires.xml",
        "register_expires = 1\nsip_transaction_timeout_ms = 5000",
    )
    .await;
    login_crm1(&mut ws, &sipp).await;
    let v = ws.expect("registered").await;
    assert_eq!(v["expires"], 2, "{v}");
    // The refresh (after 1.1–1.7 s) asks for Min-Expires again; sipp checks the header.
    let v = ws.recv_within(Duration::from_secs(4)).await;
    assert_eq!(v["type"], "registered", "{v}");
    ws.logout().await;
    sipp.wait_success(Duration::from_secs(5));
    // Every REGISTER of the registration (423 retry, refresh, unregister) keeps the Call-ID and
    // From tag and increases the CSeq; each transaction has a fresh branch.
    let log = sipp.log();
    let registers: Vec<&str> = log
        .split("REGISTER sip:sip.test SIP/2.0")
        .skip(1)
        .map(|m| m.split("\r\n\r\n").next().unwrap_or(m))
        .collect();
    assert_eq!(registers.len(), 4, "{log}");
    let header = |m: &str, name: &str| {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {m}"))
            .trim()
            .to_owned()
    };
    let call_ids: Vec<_> = registers.iter().map(|m| header(m, "Call-ID:")).collect();
    assert!(call_ids.iter().all(|c| *c == call_ids[0]), "{call_ids:?}");
    let cseqs: Vec<u32> = registers
        .iter()
        .map(|m| {
            header(m, "CSeq:")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(cseqs.windows(2).all(|w| w[1] > w[0]), "{cseqs:?}");
    let branches: std::collections::HashSet<_> = registers
        .iter()
        .map(|m| {
            header(m, "Via:")
                .split("branch=")
                .nth(1)
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(branches.len(), 4, "{branches:?}");
    let expires: Vec<_> = registers.iter().map(|m| header(m, "Expires:")).collect();
    assert_eq!(expires, ["1", "2", "2", "0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn service_unavailable_with_retry_after_backs_off_and_retries() {
    let (mut sipp, _gw, mut ws) =
        sipp_gateway_ws("503-retry-after.xml", "sip_transaction_timeout_ms = 5000").await;
    let t0 = Instant::now();
    ws.login_registered(&crm1_token(&sipp)).await;
    assert!(
        t0.elapsed() >= Duration::from_secs(1),
        "did not wait for Retry-After"
    );
    ws.logout().await;
    sipp.wait_success(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn answers_the_sha256_challenge_when_offered_beside_md5() {
    registers_and_unregisters_against("sha256-challenge.xml", "").await;
}

/// Logs in against `scenario_file` (the gateway configured with `config` on top of a 5 s
/// transaction timeout), expects `sip_auth_failed` with `sip_status` and a message naming `why`
/// (when given), checks that sipp saw its whole scenario and that the gateway stays healthy.
async fn auth_fails(scenario_file: &str, config: &str, sip_status: u16, why: Option<&str>) {
    let config = format!("sip_transaction_timeout_ms = 5000\n{config}");
    let (mut sipp, gw, mut ws) = sipp_gateway_ws(scenario_file, &config).await;
    login_crm1(&mut ws, &sipp).await;
    let v = ws.expect_error("sip_auth_failed").await;
    assert_eq!(v["sipStatus"], sip_status, "{v}");
    if let Some(why) = why {
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(why), "{v}");
    }
    sipp.wait_success(Duration::from_secs(5));
    ws.ping().await;
    assert_eq!(gw.get("/healthz").0, 200);
}

/// A registrar whose challenge the gateway must refuse: `sip_auth_failed` (401) naming `why`,
/// and no answer (a second REGISTER would fail sipp's scenario).
async fn challenge_is_refused(scenario_file: &str, config: &str, why: &str) {
    auth_fails(scenario_file, config, 401, Some(why)).await;
}

/// Issue 14, item 11: a hostile registrar (or anyone on the path) strips qop from the challenge
/// so that the answer, bound to nothing but its nonce, can be replayed. Refused by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn a_challenge_without_qop_is_refused_by_default() {
    challenge_is_refused("rfc2069-challenge.xml", "", "allow_rfc2069_digest").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn a_challenge_without_qop_is_answered_when_allowed() {
    registers_and_unregisters_against("rfc2069-answered.xml", "allow_rfc2069_digest = true").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn an_md5_challenge_is_refused_under_min_digest_algorithm_sha256() {
    challenge_is_refused(
        "md5-only-challenge.xml",
        "min_digest_algorithm = \"SHA-256\"",
        "min_digest_algorithm",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn the_sha256_challenge_beside_md5_passes_min_digest_algorithm_sha256() {
    registers_and_unregisters_against("sha256-challenge.xml", "min_digest_algorithm = \"SHA-256\"")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn proxy_and_registrar_challenges_then_a_stale_nonce_still_register() {
    registers_and_unregisters_against("407-401-stale.xml", "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs sipp (scripts/ci/40-gateway.sh)"]
async fn no_answer_is_sip_timeout_after_retransmissions() {
    let (mut sipp, gw, mut ws) = sipp_gateway_ws(
        "no-answer.xml",
        "sip_t1_ms = 100\nsip_transaction_timeout_ms = 1500",
    )
    .await;
    let t0 = Instant::now();
    login_crm1(&mut ws, &sipp).await;
    ws.expect_error("sip_timeout").await;
    let waited = t0.elapsed();
    assert!(
        (Duration::from_millis(1400)..Duration::from_millis(3000)).contains(&waited),
        "{waited:?}"
    );
    assert!(gw.metric("siptoken_gateway_sip_retransmissions_total") >= 3.0);
    sipp.wait_success(Duration::from_secs(5));
    ws.ping().await;
}
