//! Load test for `siptoken-gateway` against a real Kamailio on loopback (issue 6, "Gateway under
//! load"). Run through `benches/gateway_load.sh` (full size) or `scripts/ci/70-load.sh` (short).
//!
//! One run:
//! 1. writes N gateway accounts and N sipp accounts into a db_text htable file and starts Kamailio
//!    (the integration tests' `tests/gateway/kamailio.cfg`, with the users loaded from that file);
//! 2. sipp registers its N accounts directly (REGISTER, 401, REGISTER with digest, 200) as fast as
//!    it can: the registrar's own ceiling on this machine;
//! 3. starts the gateway, opens N WebSocket sessions with a fresh v1 token each, as fast as
//!    possible with bounded concurrency: logins/s, latency (login sent -> `registered`), and the
//!    gateway's RSS per registered session (VmRSS after minus before);
//! 4. holds them with a short `register_expires`, so refreshes happen, then counts the bindings in
//!    Kamailio's location table (`ul.dump` through jsonrpcs): every session must still be registered;
//! 5. logs every session out and checks that the table holds none of their bindings;
//! 6. logs N sessions in again at half the measured maximum rate (latency at half rate), logs
//!    them out, checks the table again.
//!
//! Exits non-zero on any error, lost registration or leftover binding; never on speed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use siptoken::{Issuer, KeyRing};
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

#[path = "../tests/gateway/loopback.rs"]
mod loopback;

#[path = "../tests/gateway/h2_client.rs"]
mod h2_client;

#[path = "load_support/mod.rs"]
mod load_support;
use load_support::accounts::{gw_user, token, users, write_sipp_users};
use load_support::gateway::{Gateway, KEYS};
use load_support::kamailio::{Kamailio, KamailioSpec};
use load_support::procs::{
    children_cpu_secs, cpu_secs, exit_with_verdict, group_cpu_secs, loadavg, percentile,
};
use load_support::sipp;
use load_support::ws_client::{login, next_json, Dialer, Ws};
use loopback::free_port;

/// Bound on any single wait for a gateway message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

struct Options {
    gateway: PathBuf,
    sessions: usize,
    concurrency: usize,
    hold: Duration,
    register_expires: u32,
    children: u32,
    shm_mb: u32,
    sipp: bool,
    half_rate: bool,
    /// Sessions per HTTP/2 connection (RFC 8441); `None`: one HTTP/1.1 connection per session.
    http2: Option<usize>,
}

fn usage() -> ! {
    eprintln!(
        "usage: gateway_load --gateway PATH [--sessions N] [--concurrency C] [--hold SECS]\n\
         \x20      [--register-expires SECS] [--kamailio-children K] [--kamailio-shm MB]\n\
         \x20      [--no-sipp] [--no-half-rate] [--http2 SESSIONS_PER_CONNECTION]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        gateway: PathBuf::new(),
        sessions: 2000,
        concurrency: 256,
        hold: Duration::from_secs(30),
        register_expires: 10,
        children: 2,
        shm_mb: 512,
        sipp: true,
        half_rate: true,
        http2: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match a.as_str() {
            "--gateway" => o.gateway = value().into(),
            "--sessions" => o.sessions = value().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => o.concurrency = value().parse().unwrap_or_else(|_| usage()),
            "--hold" => o.hold = Duration::from_secs(value().parse().unwrap_or_else(|_| usage())),
            "--register-expires" => {
                o.register_expires = value().parse().unwrap_or_else(|_| usage())
            }
            "--kamailio-children" => o.children = value().parse().unwrap_or_else(|_| usage()),
            "--kamailio-shm" => o.shm_mb = value().parse().unwrap_or_else(|_| usage()),
            "--no-sipp" => o.sipp = false,
            "--no-half-rate" => o.half_rate = false,
            "--http2" => o.http2 = Some(value().parse().unwrap_or_else(|_| usage())),
            _ => usage(),
        }
    }
    if o.gateway.as_os_str().is_empty()
        || o.sessions == 0
        || o.concurrency == 0
        || o.http2 == Some(0)
    {
        usage();
    }
    o
}
/// sipp registers `n` accounts directly with Kamailio as fast as it can; returns (successful
/// registrations, seconds).
fn sipp_ceiling(dir: &Path, k: &Kamailio, n: usize) -> (usize, f64) {
    let inf = write_sipp_users(dir, n);
    let sipp_dir = dir.join("sipp");
    let mut command = sipp::command(&sipp_dir, "register.xml", sipp::REGISTER);
    let (kam0, sipp0) = (group_cpu_secs(k.pid()), children_cpu_secs());
    let t0 = Instant::now();
    command
        .arg(format!("127.0.0.1:{}", k.port))
        .arg("-inf")
        .arg(inf)
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args([
            "-m",
            &n.to_string(),
            "-r",
            "100000",
            "-rp",
            "1000",
            "-l",
            "1000",
        ])
        .args(["-buff_size", "4194304", "-nostdin", "-timeout", "120s"])
        .args(["-trace_err", "-trace_stat", "-fd", "1"]);
    let mut proc = sipp::start(&mut command, &sipp_dir);
    let status = sipp::wait(&mut proc, Duration::from_secs(150));
    let secs = t0.elapsed().as_secs_f64();
    drop(proc);
    let (kam1, sipp1) = (group_cpu_secs(k.pid()), children_cpu_secs());
    println!(
        "CPU per direct registration: sipp {:.0} µs, Kamailio {:.0} µs",
        (sipp1 - sipp0) / n as f64 * 1e6,
        (kam1 - kam0) / n as f64 * 1e6
    );
    let registered = k.registered("sp").len();
    match status {
        Some(s) if s.success() => {}
        other => eprintln!(
            "sipp: exit {other:?}, {registered} of {n} registered (logs in {})",
            sipp_dir.display()
        ),
    }
    (registered, secs)
}

/// What one session saw.
#[derive(Default)]
struct SessionReport {
    /// Login sent -> `registered`, when the login succeeded.
    latency: Option<Duration>,
    /// The first failure, if any.
    error: Option<String>,
    /// `registered` messages after the first (refreshes).
    refreshes: u64,
    /// `unregistered` after `logout`.
    unregistered: bool,
}

/// Holds a logged-in session until `stop` turns true, counting refreshes, then logs out.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>, report: &mut SessionReport) {
    // The gateway closes sockets that send no message for ws_idle_timeout_seconds (90 s): say
    // something every 30 s, as the demo page does.
    let mut keepalive = tokio::time::interval(Duration::from_secs(30));
    keepalive.tick().await;
    loop {
        let ping_due = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = keepalive.tick() => true,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                    if v["type"] == "registered" {
                        report.refreshes += 1;
                    } else if v["type"] != "pong" && report.error.is_none() {
                        report.error = Some(format!("during hold: {v}"));
                    }
                    false
                }
                Some(Ok(_)) => false,
                other => {
                    report.error.get_or_insert(format!("during hold: socket ended: {other:?}"));
                    return;
                }
            }
        };
        if ping_due {
            let ping = Message::Text(json!({"type": "ping"}).to_string().into());
            if let Err(e) = ws.send(ping).await {
                report
                    .error
                    .get_or_insert(format!("during hold: ping: {e}"));
                return;
            }
        }
    }
    if let Err(e) = ws
        .send(Message::Text(json!({"type": "logout"}).to_string().into()))
        .await
    {
        report.error.get_or_insert(format!("logout send: {e}"));
        return;
    }
    loop {
        match next_json(&mut ws, MESSAGE_TIMEOUT).await {
            Ok(v) if v["type"] == "unregistered" => {
                report.unregistered = true;
                break;
            }
            Ok(v) if v["type"] == "registered" => report.refreshes += 1,
            Ok(v) if v["type"] == "pong" => {}
            Ok(v) => {
                report.error.get_or_insert(format!("after logout: {v}"));
                break;
            }
            Err(e) => {
                report.error.get_or_insert(format!("after logout: {e}"));
                break;
            }
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
}

struct Phase {
    reports: Vec<SessionReport>,
    /// First login started -> last login answered.
    login_secs: f64,
}

/// Logs in `tokens.len()` sessions (bounded concurrency, or paced at `rate` per second), waits
/// for all logins, calls `held` (the sessions stay registered meanwhile), then logs all out.
async fn phase(
    dialer: &Dialer,
    tokens: Vec<String>,
    concurrency: usize,
    rate: Option<f64>,
    held: impl AsyncFnOnce(),
) -> Phase {
    let n = tokens.len();
    let permits = Arc::new(Semaphore::new(concurrency));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<()>(n.max(1));
    let last_login = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, token) in tokens.into_iter().enumerate() {
        if let Some(rate) = rate {
            tokio::time::sleep_until((t0 + Duration::from_secs_f64(i as f64 / rate)).into()).await;
        }
        let permit = permits.clone().acquire_owned().await.unwrap();
        let dialer = dialer.clone();
        let stop = stop_rx.clone();
        let done = done_tx.clone();
        let last_login = last_login.clone();
        tasks.push(tokio::spawn(async move {
            let mut report = SessionReport::default();
            let result = login(&dialer, i, &token, MESSAGE_TIMEOUT).await;
            drop(permit);
            last_login.fetch_max(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            let _ = done.send(()).await;
            match result {
                Ok((ws, latency)) => {
                    report.latency = Some(latency);
                    hold(ws, stop, &mut report).await;
                }
                Err(e) => report.error = Some(format!("login: {e}")),
            }
            report
        }));
    }
    drop(done_tx);
    for _ in 0..n {
        if done_rx.recv().await.is_none() {
            break;
        }
    }
    let login_secs = last_login.load(Ordering::Relaxed) as f64 / 1e9;
    held().await;
    let _ = stop_tx.send(true);
    let mut reports = Vec::with_capacity(n);
    for t in tasks {
        reports.push(t.await.unwrap_or_else(|e| SessionReport {
            error: Some(format!("task: {e}")),
            ..Default::default()
        }));
    }
    Phase {
        reports,
        login_secs,
    }
}

/// Prints a phase's summary; returns (logins/s, number of failed sessions).
fn summarize(name: &str, p: &Phase) -> (f64, usize) {
    let mut lat: Vec<Duration> = p.reports.iter().filter_map(|r| r.latency).collect();
    lat.sort();
    let errors: Vec<&String> = p.reports.iter().filter_map(|r| r.error.as_ref()).collect();
    let not_unregistered = p
        .reports
        .iter()
        .filter(|r| r.latency.is_some() && !r.unregistered)
        .count();
    let rate = lat.len() as f64 / p.login_secs.max(1e-9);
    println!(
        "{name}: {} of {} logged in in {:.2} s = {rate:.0} logins/s; latency p50 {:.1} ms, \
         p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        p.reports.len(),
        p.login_secs,
        percentile(&lat, 0.50),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
    if !errors.is_empty() {
        println!(
            "{name}: {} sessions failed, e.g. {}",
            errors.len(),
            errors[0]
        );
    }
    if not_unregistered > 0 {
        println!("{name}: {not_unregistered} sessions got no `unregistered` after logout");
    }
    (rate, errors.len().max(not_unregistered))
}

fn main() {
    let o = options();
    exit_with_verdict("gateway_load", run(&o));
}

async fn run(o: &Options) -> bool {
    let mut ok = true;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = o.sessions;
    println!(
        "gateway_load: {n} sessions, concurrency {}, hold {} s, register_expires {} s, \
         Kamailio children {}, load average {}",
        o.concurrency,
        o.hold.as_secs(),
        o.register_expires,
        o.children,
        loadavg()
    );
    let kam = Kamailio::start(
        dir,
        &KamailioSpec {
            users: users(n),
            routes: Vec::new(),
            children: o.children,
            shm_mb: o.shm_mb,
        },
    );

    let mut sipp_rate = None;
    if o.sipp {
        let (registered, secs) = sipp_ceiling(dir, &kam, n);
        let rate = registered as f64 / secs;
        println!(
            "sipp: {registered} of {n} registered directly in {secs:.2} s = {rate:.0} \
             registrations/s"
        );
        if registered != n {
            println!("FAIL: sipp registered {registered} of {n}");
            ok = false;
        }
        sipp_rate = Some(rate);
    }

    let gw = Gateway::start(
        dir,
        &o.gateway,
        &format!(
            "register_expires = {}\nmax_sessions = {sessions}\nhttp2_max_streams = {}\n\
             max_sessions_per_ip = {sessions}\nmax_connections = {connections}\n\
             max_connections_per_ip = {connections}\n",
            o.register_expires,
            o.http2.unwrap_or(1000),
            // Over HTTP/2 every session comes from 127.0.0.1.
            sessions = o.sessions + 100,
            connections = o.sessions + 1000,
        ),
    );
    let ring: KeyRing = KEYS.parse().unwrap();
    let issuer = Issuer::new(&ring).ttl(Duration::from_secs(3600));
    let port = kam.port;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss0 = gw.rss_kib();

    // Maximum rate, then hold.
    let tokens: Vec<String> = (0..n).map(|i| token(&issuer, i, port)).collect();
    let mut rss1 = 0;
    let mut held_ok = true;
    let mut refreshes_metric = 0.0;
    let dialer = match Dialer::new(&gw.addr, n, o.http2).await {
        Ok(d) => d,
        Err(e) => {
            println!("FAIL: cannot reach the gateway: {e}");
            return false;
        }
    };
    if let Some(per) = o.http2 {
        println!(
            "sessions over HTTP/2 (RFC 8441): {} connections, up to {per} sessions each",
            n.div_ceil(per)
        );
    }
    let me = std::process::id();
    let cpu0 = (
        cpu_secs(gw.proc.pid()),
        group_cpu_secs(kam.pid()),
        cpu_secs(me),
    );
    let max = phase(&dialer, tokens, o.concurrency, None, async || {
        println!(
            "CPU per login: gateway {:.0} µs, Kamailio {:.0} µs, load tool {:.0} µs",
            (cpu_secs(gw.proc.pid()) - cpu0.0) / n as f64 * 1e6,
            (group_cpu_secs(kam.pid()) - cpu0.1) / n as f64 * 1e6,
            (cpu_secs(me) - cpu0.2) / n as f64 * 1e6,
        );
        rss1 = gw.rss_kib();
        println!(
            "gateway RSS: {rss0} KiB idle, {rss1} KiB with {n} sessions = {:.2} KiB per session; \
             {} open descriptors; load average {}",
            (rss1 as f64 - rss0 as f64) / n as f64,
            gw.open_fds(),
            loadavg()
        );
        let before = gw.metric("siptoken_gateway_refreshes_total");
        let hold_start = Instant::now();
        while hold_start.elapsed() < o.hold {
            tokio::time::sleep(Duration::from_secs(1).min(o.hold - hold_start.elapsed())).await;
        }
        refreshes_metric = gw.metric("siptoken_gateway_refreshes_total") - before;
        let registered = kam.registered("gw");
        let rss2 = gw.rss_kib();
        println!(
            "hold: {} s, {refreshes_metric} refreshes by the gateway, {} of {n} gateway accounts \
             in Kamailio's location table, RSS {rss2} KiB; load average {}",
            o.hold.as_secs(),
            registered.len(),
            loadavg()
        );
        if registered.len() != n {
            held_ok = false;
            let missing: Vec<String> = (0..n)
                .map(gw_user)
                .filter(|u| !registered.contains(u))
                .take(5)
                .collect();
            println!(
                "FAIL: {} registrations lost, e.g. {missing:?}",
                n - registered.len()
            );
        }
    })
    .await;
    let (max_rate, failed) = summarize("gateway, max rate", &max);
    let refreshes: u64 = max.reports.iter().map(|r| r.refreshes).sum();
    println!("refreshes seen by the clients: {refreshes}");
    if failed > 0 || !held_ok {
        ok = false;
    }
    if o.hold.as_secs() >= o.register_expires as u64 && (refreshes as usize) < n {
        println!("FAIL: fewer refreshes ({refreshes}) than sessions ({n}) during the hold");
        ok = false;
    }
    let left = kam.wait_registered("gw", 0, Duration::from_secs(15));
    if !left.is_empty() {
        println!("FAIL: {} gateway bindings left after logout", left.len());
        ok = false;
    }
    if let Some(s) = sipp_rate {
        println!(
            "ratio gateway logins/s / sipp registrations/s = {max_rate:.0} / {s:.0} = {:.2}",
            max_rate / s
        );
    }

    // Half the maximum rate: latency.
    if o.half_rate {
        let rate = (max_rate / 2.0).max(1.0);
        let tokens: Vec<String> = (0..n).map(|i| token(&issuer, i, port)).collect();
        let half = phase(&dialer, tokens, n, Some(rate), async || {}).await;
        let (_, failed) = summarize(&format!("gateway, paced at {rate:.0}/s"), &half);
        if failed > 0 {
            ok = false;
        }
        let left = kam.wait_registered("gw", 0, Duration::from_secs(15));
        if !left.is_empty() {
            println!("FAIL: {} gateway bindings left after logout", left.len());
            ok = false;
        }
    }

    let errors = gw.metric("siptoken_gateway_logins_total{outcome=\"error\",code=\"sip_timeout\"}");
    if errors > 0.0 {
        println!("gateway sip_timeout logins: {errors}");
    }
    gw.report_end("gateway_load", ok, tmp, !ok);
    drop(gw);
    drop(kam);
    ok
}
