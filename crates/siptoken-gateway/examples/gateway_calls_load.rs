//! Call benchmark for `siptoken-gateway` (issue 13, "Performance"): simulated browsers calling an
//! RTP echo through the gateway and a real Kamailio (registrar and proxy) on loopback. Run through
//! `benches/calls_load.sh` (full size, release) or `scripts/ci/70-load.sh` (short smoke).
//!
//! One run:
//! 1. starts the RTP echo (two threads in this process sending every datagram back to where it
//!    came from, with a large receive buffer: see [`Echo`]), sipp as the callee (UAS answering
//!    with PCMU, its SDP pointing at the echo) and Kamailio with N gateway accounts, N sipp
//!    accounts and a static route `echo` → that sipp (digest with 407 on every INVITE from an
//!    account);
//! 2. **sipp direct**: a sipp UAC places N calls to `echo` through Kamailio (INVITE, 407, ACK,
//!    INVITE with digest, 180, 200, ACK, BYE), at most C at a time: calls/s and setup latency
//!    (first INVITE → 200, sipp's response-time trace) — the ceiling of Kamailio and the callee;
//! 3. starts the gateway, logs N WebSocket sessions in with fresh v1 tokens;
//! 4. **ramp**: every session places one call to `echo` with a simulated browser (str0m as the
//!    client: full ICE, DTLS-SRTP, rtcp-mux; `tests/gateway/sim_browser.rs`), at most C calls in
//!    setup at a time: calls/s and setup latency (`call` sent → `answered`); once answered, each
//!    browser sends a 160-byte PCMU frame every 20 ms carrying its call number, a sequence number
//!    and the time it was sent;
//! 5. **hold**: with all N calls up, plus a few plain-RTP probes sending the same frames straight
//!    to the echo, measures for the hold window: the gateway's CPU time (`/proc/PID/stat`) and the
//!    packets it relayed (its `/metrics`, both directions), the round trip of every frame through
//!    the gateway and of every probe frame straight to the echo; then stops sending, waits for the
//!    last echoes, and hangs every call up (`hangup` → `ended`);
//! 6. **floor**: N plain-RTP streams of the same frames at the same rate through a bare UDP
//!    forwarder in this process (two threads, `recv_from`/`send_to`, no parsing beyond the call
//!    number) to the same echo: its CPU time per forwarded packet;
//! 7. prints every figure against its target, as a ratio; the gateway's own measure of its
//!    added latency comes from its `siptoken_gateway_media_relay_delay_seconds` histogram (kernel
//!    receive timestamp of each datagram to the send of its relayed copy), read at the start and
//!    the end of the hold window.
//!
//! Loss: every frame a browser sent must come back to it (per-call sent vs echoed counts). Exits
//! non-zero on any failed login or call, a frame echoed to the wrong call, or lost frames above
//! `--max-loss` (a fraction of all frames sent); never on speed.

use std::net::{SocketAddr, UdpSocket as StdUdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use siptoken::{Issuer, KeyRing};
use tokio::sync::{watch, Semaphore};

#[path = "../tests/gateway/loopback.rs"]
mod loopback;

#[path = "../tests/gateway/h2_client.rs"]
mod h2_client;

#[path = "../tests/gateway/sim_browser.rs"]
mod sim_browser;

#[path = "load_support/mod.rs"]
mod load_support;
use load_support::accounts::{token, users, write_sipp_users};
use load_support::gateway::{Gateway, KEYS};
use load_support::kamailio::{Kamailio, KamailioSpec};
use load_support::procs::{
    children_cpu_secs, cpu_secs, current_tid, exit_with_verdict, group_cpu_secs, loadavg,
    percentile, thread_cpu_secs, Proc,
};
use load_support::sipp;
use load_support::ws_client::{login, next_json, send_json, Dialer, Ws};
use loopback::free_port;
use sim_browser::{SimBrowser, Sink, Source};

/// Bound on any single wait for a gateway message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);
/// One G.711 frame: 20 ms at 8 kHz.
const FRAME: Duration = Duration::from_millis(20);
const FRAME_BYTES: usize = 160;
/// First bytes of every frame this tool sends.
const MAGIC: &[u8; 4] = b"SLT1";
/// The callee's user name (Kamailio's static route to sipp).
const CALLEE: &str = "echo";

// Targets (issue 13).
const TARGET_CALLS: f64 = 500.0;
const TARGET_ADDED_P99_MS: f64 = 2.0;
const TARGET_CPU_RATIO: f64 = 3.0;
const TARGET_SETUP_RATIO: f64 = 0.5;

struct Options {
    gateway: PathBuf,
    calls: usize,
    setup_concurrency: usize,
    hold: Duration,
    probes: usize,
    floor: Duration,
    max_loss: f64,
    children: u32,
    shm_mb: u32,
    sipp_direct: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: gateway_calls_load --gateway PATH [--calls N] [--setup-concurrency C]\n\
         \x20      [--hold SECS] [--probes K] [--floor SECS] [--max-loss FRACTION]\n\
         \x20      [--kamailio-children K] [--kamailio-shm MB] [--no-sipp-direct]"
    );
    std::process::exit(2);
}

fn options() -> Options {
    let mut o = Options {
        gateway: PathBuf::new(),
        calls: 500,
        setup_concurrency: 50,
        hold: Duration::from_secs(60),
        probes: 20,
        floor: Duration::from_secs(30),
        max_loss: 0.001,
        children: 2,
        shm_mb: 256,
        sipp_direct: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        let secs = |v: String| Duration::from_secs(v.parse().unwrap_or_else(|_| usage()));
        match a.as_str() {
            "--gateway" => o.gateway = value().into(),
            "--calls" => o.calls = value().parse().unwrap_or_else(|_| usage()),
            "--setup-concurrency" => {
                o.setup_concurrency = value().parse().unwrap_or_else(|_| usage())
            }
            "--hold" => o.hold = secs(value()),
            "--probes" => o.probes = value().parse().unwrap_or_else(|_| usage()),
            "--floor" => o.floor = secs(value()),
            "--max-loss" => o.max_loss = value().parse().unwrap_or_else(|_| usage()),
            "--kamailio-children" => o.children = value().parse().unwrap_or_else(|_| usage()),
            "--kamailio-shm" => o.shm_mb = value().parse().unwrap_or_else(|_| usage()),
            "--no-sipp-direct" => o.sipp_direct = false,
            _ => usage(),
        }
    }
    if o.gateway.as_os_str().is_empty()
        || o.calls == 0
        || o.setup_concurrency == 0
        || o.hold.is_zero()
        || o.probes == 0
        || !(0.0..=1.0).contains(&o.max_loss)
    {
        usage();
    }
    o
}

/// Nanoseconds since the first call (the time base of the frames' send times).
fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// A 160-byte frame: magic, stream number, sequence number, send time (ns), then PCMU silence.
fn frame(stream: u32, seq: u64) -> Vec<u8> {
    let mut f = vec![0xffu8; FRAME_BYTES];
    f[..4].copy_from_slice(MAGIC);
    f[4..8].copy_from_slice(&stream.to_be_bytes());
    f[8..16].copy_from_slice(&seq.to_be_bytes());
    f[16..24].copy_from_slice(&now_ns().to_be_bytes());
    f
}

/// (stream number, send time) of a frame this tool made.
fn parse_frame(p: &[u8]) -> Option<(u32, u64)> {
    if p.len() < 24 || &p[..4] != MAGIC {
        return None;
    }
    Some((
        u32::from_be_bytes(p[4..8].try_into().ok()?),
        u64::from_be_bytes(p[16..24].try_into().ok()?),
    ))
}

/// When streams send and which frames' round trips count.
#[derive(Default)]
struct Clock {
    /// Frames are sent while this is true.
    sending: AtomicBool,
    /// Streams stop (and calls hang up) when this turns true.
    ended: AtomicBool,
    /// Round trips of frames sent in [window_start, window_end) ns are recorded.
    window_start: AtomicU64,
    window_end: AtomicU64,
}

impl Clock {
    fn new() -> Arc<Clock> {
        let c = Clock::default();
        c.sending.store(true, Ordering::Relaxed);
        c.window_start.store(u64::MAX, Ordering::Relaxed);
        c.window_end.store(u64::MAX, Ordering::Relaxed);
        Arc::new(c)
    }

    fn in_window(&self, sent_ns: u64) -> bool {
        sent_ns >= self.window_start.load(Ordering::Relaxed)
            && sent_ns < self.window_end.load(Ordering::Relaxed)
    }
}

/// What one stream (a call's browser, a probe, a floor stream) sent and got back.
#[derive(Default)]
struct StreamStats {
    sent: AtomicU64,
    echoed: AtomicU64,
    /// Frames that came back to the wrong stream (or unreadable).
    foreign: AtomicU64,
    /// Round trips (µs) of frames sent in the clock's window.
    rtts: Mutex<Vec<u32>>,
}

impl StreamStats {
    fn received(&self, clock: &Clock, stream: u32, at_ns: u64, payload: &[u8]) {
        match parse_frame(payload) {
            Some((s, sent)) if s == stream => {
                self.echoed.fetch_add(1, Ordering::Relaxed);
                if clock.in_window(sent) {
                    let rtt = at_ns.saturating_sub(sent) / 1000;
                    self.rtts
                        .lock()
                        .unwrap()
                        .push(rtt.min(u32::MAX as u64) as u32);
                }
            }
            _ => {
                self.foreign.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// What one call saw.
#[derive(Default)]
struct CallReport {
    /// `call` sent → `answered`.
    setup: Option<Duration>,
    /// When `answered` came, since the ramp started.
    answered_at: Option<Duration>,
    connected: bool,
    error: Option<String>,
}

/// Everything a call task shares with the coordinator.
struct CallContext {
    clock: Arc<Clock>,
    setup_permits: Arc<Semaphore>,
    /// Told when a call is answered or has failed (the ramp is over when all have).
    settled: tokio::sync::mpsc::UnboundedSender<()>,
    /// Turns true when the calls are to be hung up.
    hangup: watch::Receiver<bool>,
    ramp_start: Instant,
}

/// Reads messages until `want` arrives (ringing and pongs skipped).
async fn wait_for(ws: &mut Ws, want: &str) -> Result<Value, String> {
    loop {
        let m = next_json(ws, MESSAGE_TIMEOUT).await?;
        match m["type"].as_str() {
            Some(t) if t == want => return Ok(m),
            Some("ringing" | "pong") => {}
            _ => return Err(format!("waiting for {want}: {m}")),
        }
    }
}

/// Places call `i` on session `ws`, sends frames once it is answered, holds it until the
/// coordinator says hang up, hangs up.
async fn call(i: usize, mut ws: Ws, ctx: CallContext, stats: Arc<StreamStats>) -> CallReport {
    let mut report = CallReport::default();
    let permit = ctx.setup_permits.clone().acquire_owned().await.unwrap();
    let (mut browser, offer) = SimBrowser::offer().await;
    let t0 = Instant::now();
    let setup = async {
        send_json(
            &mut ws,
            json!({"type": "call", "call": "c1", "to": CALLEE, "sdp": offer}),
        )
        .await?;
        let media = wait_for(&mut ws, "media").await?;
        let answer = media["sdp"].as_str().ok_or("media without sdp")?;
        browser.accept_answer(answer);
        Ok::<_, String>(())
    }
    .await;
    if let Err(e) = setup {
        drop(permit);
        let _ = ctx.settled.send(());
        report.error = Some(e);
        return report;
    }

    let answered = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicBool::new(false));
    let stream = i as u32;
    let sink: Sink = {
        let (stats, clock) = (stats.clone(), ctx.clock.clone());
        Box::new(move |_, p| stats.received(&clock, stream, now_ns(), &p.payload))
    };
    browser.sink = Some(sink);
    let mut source: Source = {
        let (stats, clock, answered) = (stats.clone(), ctx.clock.clone(), answered.clone());
        let mut seq = 0u64;
        Box::new(move || {
            if !answered.load(Ordering::Relaxed) || !clock.sending.load(Ordering::Relaxed) {
                return (0, Vec::new());
            }
            seq += 1;
            stats.sent.fetch_add(1, Ordering::Relaxed);
            (0, frame(stream, seq))
        })
    };
    let mut hangup = ctx.hangup.clone();
    let signalling = async {
        let result = wait_for(&mut ws, "answered").await;
        report.setup = Some(t0.elapsed());
        report.answered_at = Some(ctx.ramp_start.elapsed());
        drop(permit);
        let _ = ctx.settled.send(());
        if let Err(e) = result {
            report.setup = None;
            failed.store(true, Ordering::Relaxed);
            return Err(e);
        }
        answered.store(true, Ordering::Relaxed);
        // The gateway closes sockets that say nothing for ws_idle_timeout_seconds (90 s).
        let mut keepalive = tokio::time::interval(Duration::from_secs(30));
        keepalive.tick().await;
        let result = loop {
            tokio::select! {
                _ = async { let _ = hangup.wait_for(|h| *h).await; } => break Ok(()),
                _ = keepalive.tick() => {
                    if let Err(e) = send_json(&mut ws, json!({"type": "ping"})).await {
                        break Err(e);
                    }
                }
                m = next_json(&mut ws, Duration::from_secs(3600)) => match m {
                    Ok(v) if v["type"] == "pong" => {}
                    Ok(v) => break Err(format!("during the call: {v}")),
                    Err(e) => break Err(format!("during the call: {e}")),
                },
            }
        };
        failed.store(result.is_err(), Ordering::Relaxed);
        result
    };
    let clock = ctx.clock.clone();
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let go_on = |_| !clock.ended.load(Ordering::Relaxed) && !failed.load(Ordering::Relaxed);
    let (result, ()) = tokio::join!(signalling, browser.run_while(go_on, far, &mut source));
    report.connected = browser.connected_at.is_some();
    if let Err(e) = result {
        report.error = Some(e);
        return report;
    }
    let hung_up = async {
        send_json(&mut ws, json!({"type": "hangup", "call": "c1"})).await?;
        let ended = wait_for(&mut ws, "ended").await?;
        if ended["reason"] != "hangup" {
            return Err(format!("hangup ended as {ended}"));
        }
        Ok(())
    }
    .await;
    if let Err(e) = hung_up {
        report.error = Some(format!("hangup: {e}"));
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), ws.close(None)).await;
    report
}

/// A plain RTP stream (no SRTP) of the same frames to `target`, every 20 ms while the clock
/// says so: the probes straight to the echo, and the floor streams through the bare forwarder.
async fn plain_stream(stream: u32, target: SocketAddr, clock: Arc<Clock>, stats: Arc<StreamStats>) {
    let socket = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let receiver = {
        let (socket, clock, stats) = (socket.clone(), clock.clone(), stats.clone());
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, _)) = socket.recv_from(&mut buf).await {
                if n > 12 {
                    stats.received(&clock, stream, now_ns(), &buf[12..n]);
                }
            }
        })
    };
    let mut tick = tokio::time::interval(FRAME);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let ssrc = 0x5000_0000 | stream;
    let mut seq = 0u64;
    while !clock.ended.load(Ordering::Relaxed) {
        tick.tick().await;
        if !clock.sending.load(Ordering::Relaxed) {
            continue;
        }
        seq += 1;
        let mut packet = Vec::with_capacity(12 + FRAME_BYTES);
        packet.extend_from_slice(&[0x80, 0]);
        packet.extend_from_slice(&(seq as u16).to_be_bytes());
        packet.extend_from_slice(&((seq as u32).wrapping_mul(160)).to_be_bytes());
        packet.extend_from_slice(&ssrc.to_be_bytes());
        packet.extend_from_slice(&frame(stream, seq));
        if socket.send_to(&packet, target).await.is_ok() {
            stats.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    receiver.abort();
}

/// Threads of this process whose CPU time is measured (`/proc/self/task/TID/stat`), told to
/// stop and joined when dropped. Each runs its body until the stop flag it is given is set (its
/// socket reads time out, so it looks at the flag often enough).
struct Workers {
    stop: Arc<AtomicBool>,
    tids: Vec<u32>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    fn new() -> Workers {
        Workers {
            stop: Arc::new(AtomicBool::new(false)),
            tids: Vec::new(),
            threads: Vec::new(),
        }
    }

    fn spawn(&mut self, body: impl FnOnce(&AtomicBool) + Send + 'static) {
        let stop = self.stop.clone();
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        self.threads.push(std::thread::spawn(move || {
            let _ = tid_tx.send(current_tid());
            body(&stop);
        }));
        self.tids.push(tid_rx.recv().unwrap());
    }

    fn cpu_secs(&self) -> f64 {
        self.tids.iter().map(|&t| thread_cpu_secs(t)).sum()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The floor: a bare UDP forwarder between plain-RTP clients and the echo, two threads doing
/// nothing but `recv_from` and `send_to` (and reading the stream number to know the way back).
struct Forwarder {
    /// Where clients send.
    addr: SocketAddr,
    /// Packets forwarded (both directions).
    packets: Arc<AtomicU64>,
    workers: Workers,
}

impl Forwarder {
    fn start(echo: SocketAddr, streams: usize) -> Forwarder {
        let clients = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let far = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = clients.local_addr().unwrap();
        let packets = Arc::new(AtomicU64::new(0));
        // Client ports by stream number (every client is on 127.0.0.1).
        let ports: Arc<Vec<AtomicU32>> =
            Arc::new((0..streams).map(|_| AtomicU32::new(0)).collect());
        let mut workers = Workers::new();
        for towards_echo in [true, false] {
            let (recv, send) = if towards_echo {
                (clients.try_clone().unwrap(), far.try_clone().unwrap())
            } else {
                (far.try_clone().unwrap(), clients.try_clone().unwrap())
            };
            recv.set_read_timeout(Some(Duration::from_millis(200)))
                .unwrap();
            let (packets, ports) = (packets.clone(), ports.clone());
            workers.spawn(move |stop| {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = recv.recv_from(&mut buf) else {
                        continue;
                    };
                    let Some((stream, _)) = parse_frame(buf.get(12..n).unwrap_or(&[])) else {
                        continue;
                    };
                    let Some(port) = ports.get(stream as usize) else {
                        continue;
                    };
                    let to = if towards_echo {
                        port.store(from.port() as u32, Ordering::Relaxed);
                        echo
                    } else {
                        SocketAddr::from(([127, 0, 0, 1], port.load(Ordering::Relaxed) as u16))
                    };
                    if send.send_to(&buf[..n], to).is_ok() {
                        packets.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        Forwarder {
            addr,
            packets,
            workers,
        }
    }
}

/// The RTP echo every call and probe reaches: one socket, two threads sending each datagram
/// back to its source. Not sipp's `-rtp_echo`: that is one thread on a socket with the
/// default 208 KiB receive buffer (sipp's `-buff_size` does not reach its media sockets), which
/// overflowed whenever the shared cores left it unscheduled for a few milliseconds at a few
/// hundred calls — the loss measured was sipp's, not the gateway's. This echo asks for the same
/// buffers as the gateway's media sockets, so both ends of the measured path get the same.
struct Echo {
    addr: SocketAddr,
    workers: Workers,
}

impl Echo {
    fn start() -> Echo {
        // Outside the gateway's RTP ports, so that drops are told apart by port.
        let socket = loop {
            let s = StdUdpSocket::bind("127.0.0.1:0").unwrap();
            let port = s.local_addr().unwrap().port();
            if !(RTP_PORTS.0..=RTP_PORTS.1).contains(&port) {
                break s;
            }
        };
        let s = socket2::SockRef::from(&socket);
        let _ = s.set_recv_buffer_size(siptoken_gateway::media::buffers::RECEIVE_BUFFER);
        let _ = s.set_send_buffer_size(siptoken_gateway::media::buffers::SEND_BUFFER);
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let mut workers = Workers::new();
        for _ in 0..2 {
            let socket = socket.try_clone().unwrap();
            workers.spawn(move |stop| {
                let mut buf = [0u8; 2048];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(&buf[..n], from);
                    }
                }
            });
        }
        Echo { addr, workers }
    }
}

/// sipp, the callee: answers every INVITE with PCMU and the [`Echo`]'s address as its media,
/// waits for BYE.
struct Callee {
    port: u16,
    /// Stopped when dropped.
    _proc: Proc,
}

impl Callee {
    fn start(dir: &Path, echo: SocketAddr) -> Callee {
        let dir = dir.join("callee");
        let port = free_port();
        let scenario =
            sipp::ECHO_UAS.replace("m=audio [media_port]", &format!("m=audio {}", echo.port()));
        assert!(scenario != sipp::ECHO_UAS, "the scenario has an m= line");
        let mut command = sipp::command(&dir, "uas.xml", &scenario);
        command
            .args(["-i", "127.0.0.1", "-p", &port.to_string()])
            .args(["-mi", "127.0.0.1", "-mp", &even_port_pair().to_string()])
            .args(["-buff_size", "4194304", "-nostdin", "-trace_err"]);
        let proc = sipp::start(&mut command, &dir);
        std::thread::sleep(Duration::from_millis(300));
        Callee { port, _proc: proc }
    }
}

/// A free even port whose odd neighbour is free too (sipp's media port and the one above).
fn even_port_pair() -> u16 {
    loop {
        let p = free_port() & !1;
        let free = |port: u16| StdUdpSocket::bind(("127.0.0.1", port)).is_ok();
        if p > 1024 && free(p) && free(p + 1) {
            return p;
        }
    }
}

/// What the direct calls measured.
struct Direct {
    calls: usize,
    rate: f64,
    setup: Vec<Duration>,
}

/// sipp places `n` calls to the echo through Kamailio directly, at most `limit` at a time.
fn sipp_direct(dir: &Path, kam: &Kamailio, n: usize, limit: usize) -> Result<Direct, String> {
    let dir = dir.join("direct");
    let mut command = sipp::command(&dir, "uac.xml", sipp::ECHO_UAC);
    let inf = write_sipp_users(&dir, n);
    let t0 = Instant::now();
    command
        .arg(format!("127.0.0.1:{}", kam.port))
        .arg("-inf")
        .arg(inf)
        .args(["-i", "127.0.0.1", "-p", &free_port().to_string()])
        .args(["-mi", "127.0.0.1", "-mp", &even_port_pair().to_string()])
        .args(["-m", &n.to_string(), "-l", &limit.to_string()])
        .args(["-r", "100000", "-rp", "1000"])
        .args(["-buff_size", "4194304", "-nostdin", "-timeout", "300s"])
        .args(["-trace_err", "-trace_rtt", "-rtt_freq", "1"]);
    let mut proc = sipp::start(&mut command, &dir);
    let status = sipp::wait(&mut proc, Duration::from_secs(320));
    let wall = t0.elapsed();
    drop(proc);
    // uac_<pid>_rtt.csv: "Date_ms;response_time_ms;rtd_no" per answered call.
    let rtt_file = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("_rtt.csv"))
        .ok_or_else(|| format!("sipp wrote no response-time trace (exit {status:?})"))?;
    let text = std::fs::read_to_string(rtt_file).unwrap_or_default();
    let mut setup = Vec::new();
    let mut dates = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(';').collect();
        if let (Some(date), Some(ms)) = (f.first(), f.get(1)) {
            if let (Ok(date), Ok(ms)) = (date.trim().parse::<f64>(), ms.trim().parse::<f64>()) {
                dates.push(date);
                setup.push(Duration::from_secs_f64(ms / 1e3));
            }
        }
    }
    if !status.is_some_and(|s| s.success()) || setup.len() != n {
        return Err(format!(
            "sipp direct calls: exit {status:?}, {} of {n} answered (logs in {})",
            setup.len(),
            dir.display()
        ));
    }
    // From sipp's start to the last 200: the first answer's date minus its setup time is about
    // when the first INVITE left.
    let first = dates.iter().cloned().fold(f64::MAX, f64::min);
    let last = dates.iter().cloned().fold(f64::MIN, f64::max);
    let first_invite =
        first - setup[dates.iter().position(|&d| d == first).unwrap()].as_secs_f64() * 1e3;
    let span = ((last - first_invite) / 1e3).max(1e-3);
    let rate = n as f64 / span;
    println!(
        "sipp direct: {n} calls answered in {span:.2} s (sipp ran {:.2} s with the BYEs) = \
         {rate:.0} calls/s",
        wall.as_secs_f64()
    );
    setup.sort();
    Ok(Direct {
        calls: n,
        rate,
        setup,
    })
}

/// All round trips (µs) of `streams`, sorted, as durations.
fn round_trips(streams: &[Arc<StreamStats>]) -> Vec<Duration> {
    let mut all: Vec<Duration> = streams
        .iter()
        .flat_map(|s| {
            s.rtts
                .lock()
                .unwrap()
                .iter()
                .map(|&us| Duration::from_micros(us as u64))
                .collect::<Vec<_>>()
        })
        .collect();
    all.sort();
    all
}

/// (sent, echoed, foreign) over `streams`.
fn totals(streams: &[Arc<StreamStats>]) -> (u64, u64, u64) {
    streams.iter().fold((0, 0, 0), |(s, e, f), x| {
        (
            s + x.sent.load(Ordering::Relaxed),
            e + x.echoed.load(Ordering::Relaxed),
            f + x.foreign.load(Ordering::Relaxed),
        )
    })
}

/// Datagrams the kernel dropped because a socket's receive buffer was full, from
/// `/proc/net/udp` (the `drops` column), for the sockets `pick(local port, inode)` selects.
fn udp_drops(pick: impl Fn(u16, u64) -> bool) -> u64 {
    let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
            let inode: u64 = f.get(9)?.parse().ok()?;
            let drops: u64 = f.get(12)?.parse().ok()?;
            pick(port, inode).then_some(drops)
        })
        .sum()
}

/// Inodes of this process's sockets.
fn own_socket_inodes() -> std::collections::HashSet<u64> {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(|e| {
                let link = std::fs::read_link(e.ok()?.path()).ok()?;
                let l = link.to_str()?;
                l.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default()
}

/// The gateway's RTP ports in the load runs (outside the windows the tests use).
const RTP_PORTS: (u16, u16) = (40000, 44999);

/// The gateway's relay delay histogram (kernel arrival → send of the relayed copy).
const DELAY_HISTOGRAM: &str = "siptoken_gateway_media_relay_delay_seconds";

/// What the gateway's delay histogram says about one direction over a window: the bucket
/// bounds (ms) that hold the p50 and the p99, the share within 2 ms, and the packets counted,
/// from the cumulative buckets at its start and at its end.
struct HeldDelay {
    p50_ms: f64,
    p99_ms: f64,
    within_2ms: f64,
    packets: f64,
}

fn held_delay(start: &[(f64, f64)], end: &[(f64, f64)]) -> Option<HeldDelay> {
    if start.len() != end.len() || end.is_empty() {
        return None;
    }
    let delta: Vec<(f64, f64)> = start
        .iter()
        .zip(end)
        .map(|(a, b)| (b.0, b.1 - a.1))
        .collect();
    let total = delta.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let bound = |q: f64| {
        delta
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or(f64::INFINITY, |(le, _)| le * 1e3)
    };
    let within = delta
        .iter()
        .find(|(le, _)| (*le - 0.002).abs() < 1e-12)
        .map_or(f64::NAN, |(_, c)| c / total);
    Some(HeldDelay {
        p50_ms: bound(0.5),
        p99_ms: bound(0.99),
        within_2ms: within,
        packets: total,
    })
}

/// One line of the summary: a figure, its target and the ratio.
fn against(name: &str, value: &str, target: &str, ratio: f64) {
    println!("  {name:<48} {value:>26}   target {target:<10} ratio {ratio:.2}");
}

fn main() {
    let o = options();
    exit_with_verdict("gateway_calls_load", run(&o));
}

async fn run(o: &Options) -> bool {
    let mut ok = true;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let n = o.calls;
    now_ns();
    println!(
        "gateway_calls_load: {n} calls, setup concurrency {}, hold {} s, {} probes, floor {} s, \
         {} CPUs, load average {}",
        o.setup_concurrency,
        o.hold.as_secs(),
        o.probes,
        o.floor.as_secs(),
        std::thread::available_parallelism().map_or(0, |p| p.get()),
        loadavg()
    );
    let echo = Echo::start();
    let callee = Callee::start(dir, echo.addr);
    let kam = Kamailio::start(
        dir,
        &KamailioSpec {
            users: users(n),
            routes: vec![(CALLEE.to_owned(), format!("sip:127.0.0.1:{}", callee.port))],
            children: o.children,
            shm_mb: o.shm_mb,
        },
    );

    // sipp's calls straight through Kamailio: the ceiling for the setup rate.
    let direct = if o.sipp_direct {
        let (kam0, sipp0) = (group_cpu_secs(kam.pid()), children_cpu_secs());
        let d = sipp_direct(dir, &kam, n, o.setup_concurrency);
        let (kam1, sipp1) = (group_cpu_secs(kam.pid()), children_cpu_secs());
        println!(
            "CPU per direct call: sipp caller {:.0} µs, Kamailio {:.0} µs",
            (sipp1 - sipp0) / n as f64 * 1e6,
            (kam1 - kam0) / n as f64 * 1e6
        );
        match d {
            Ok(d) => Some(d),
            Err(e) => {
                println!("FAIL: {e}");
                ok = false;
                None
            }
        }
    } else {
        None
    };

    let webrtc_port = free_port();
    let gw = Gateway::start(
        dir,
        &o.gateway,
        &format!(
            "register_expires = 600\nmax_sessions = {sessions}\nmax_sessions_per_ip = {sessions}\n\
             max_connections = {sessions}\nmax_connections_per_ip = {sessions}\n\
             max_calls = {sessions}\nwebrtc_listen = \"127.0.0.1:{webrtc}\"\n\
             rtp_address = \"127.0.0.1\"\nrtp_ports = \"{}-{}\"\n",
            RTP_PORTS.0,
            RTP_PORTS.1,
            sessions = n + 100,
            webrtc = webrtc_port,
        ),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = gw.rss_kib();

    // Logins.
    let ring: KeyRing = KEYS.parse().unwrap();
    let issuer = Issuer::new(&ring).ttl(Duration::from_secs(3600));
    let dialer = Dialer::new(&gw.addr, n, None).await.unwrap();
    let logins = Arc::new(Semaphore::new(128));
    let t_login = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (dialer, logins, token) = (dialer.clone(), logins.clone(), token(&issuer, i, kam.port));
        tasks.push(tokio::spawn(async move {
            let _permit = logins.acquire_owned().await.unwrap();
            login(&dialer, i, &token, MESSAGE_TIMEOUT).await
        }));
    }
    let mut sockets = Vec::with_capacity(n);
    let mut login_errors = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok((ws, _)) => sockets.push(ws),
            Err(e) => login_errors.push(e),
        }
    }
    let rss_sessions = gw.rss_kib();
    println!(
        "logins: {} of {n} in {:.2} s; gateway RSS {rss_idle} KiB idle, {rss_sessions} KiB with \
         the sessions",
        sockets.len(),
        t_login.elapsed().as_secs_f64()
    );
    if !login_errors.is_empty() {
        println!(
            "FAIL: {} logins failed, e.g. {}",
            login_errors.len(),
            login_errors[0]
        );
        println!("gateway log (tail):\n{}", gw.log_tail());
        println!("load directory kept: {}", tmp.keep().display());
        return false;
    }

    // Ramp: every session places its call, at most C in setup at a time.
    let clock = Clock::new();
    let (hangup_tx, hangup_rx) = watch::channel(false);
    let (settled_tx, mut settled_rx) = tokio::sync::mpsc::unbounded_channel();
    let setup_permits = Arc::new(Semaphore::new(o.setup_concurrency));
    let (cpu_gw0, cpu_kam0) = (cpu_secs(gw.pid()), group_cpu_secs(kam.pid()));
    let ramp_start = Instant::now();
    let mut stats = Vec::with_capacity(n);
    let mut calls = Vec::with_capacity(n);
    for (i, ws) in sockets.into_iter().enumerate() {
        let s = Arc::new(StreamStats::default());
        stats.push(s.clone());
        let ctx = CallContext {
            clock: clock.clone(),
            setup_permits: setup_permits.clone(),
            settled: settled_tx.clone(),
            hangup: hangup_rx.clone(),
            ramp_start,
        };
        calls.push(tokio::spawn(call(i, ws, ctx, s)));
    }
    drop(settled_tx);
    for _ in 0..n {
        if settled_rx.recv().await.is_none() {
            break;
        }
    }
    let ramp_secs = ramp_start.elapsed().as_secs_f64();
    let (cpu_gw1, cpu_kam1) = (cpu_secs(gw.pid()), group_cpu_secs(kam.pid()));
    let up = gw.metric("siptoken_gateway_calls");
    println!(
        "ramp: {n} calls placed in {ramp_secs:.2} s, {up} calls up at the gateway; CPU per call \
         setup: gateway {:.0} µs, Kamailio {:.0} µs; load average {}",
        (cpu_gw1 - cpu_gw0) / n as f64 * 1e6,
        (cpu_kam1 - cpu_kam0) / n as f64 * 1e6,
        loadavg()
    );

    // Let every browser connect and the counters settle, then the hold window.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_calls = gw.rss_kib();
    let probe_clock = Clock::new();
    let probe_stats: Vec<Arc<StreamStats>> = (0..o.probes)
        .map(|_| Arc::new(StreamStats::default()))
        .collect();
    let probes: Vec<_> = probe_stats
        .iter()
        .enumerate()
        .map(|(k, s)| {
            tokio::spawn(plain_stream(
                (n + k) as u32,
                echo.addr,
                probe_clock.clone(),
                s.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let relayed = || {
        gw.metric("siptoken_gateway_media_rtp_packets_to_sip_total")
            + gw.metric("siptoken_gateway_media_rtp_packets_to_browser_total")
    };
    let me = std::process::id();
    let hold_start = now_ns();
    for c in [&clock, &probe_clock] {
        c.window_start.store(hold_start, Ordering::Relaxed);
    }
    let (cpu_gw0, cpu_me0, cpu_kids0) = (cpu_secs(gw.pid()), cpu_secs(me), children_cpu_secs());
    let cpu_echo0 = echo.workers.cpu_secs();
    let relayed0 = relayed();
    let directions = ["to_sip", "to_browser"];
    let delays0 = directions.map(|d| gw.histogram(DELAY_HISTOGRAM, &format!("direction=\"{d}\"")));
    let t_hold = Instant::now();
    tokio::time::sleep(o.hold).await;
    let hold_secs = t_hold.elapsed().as_secs_f64();
    let relayed1 = relayed();
    let delays1 = directions.map(|d| gw.histogram(DELAY_HISTOGRAM, &format!("direction=\"{d}\"")));
    let held: Vec<Option<HeldDelay>> = delays0
        .iter()
        .zip(&delays1)
        .map(|(start, end)| held_delay(start, end))
        .collect();
    for (d, h) in directions.iter().zip(&held) {
        match h {
            Some(h) => println!(
                "gateway-held delay {d} (its histogram: kernel arrival to send), hold window: \
                 {:.0} packets, p50 ≤ {} ms, p99 ≤ {} ms, {:.3} % within 2 ms",
                h.packets,
                h.p50_ms,
                h.p99_ms,
                h.within_2ms * 100.0
            ),
            None => {
                println!(
                    "FAIL: the gateway's delay histogram counted no packet {d} in the hold window"
                );
                ok = false;
            }
        }
    }
    let (cpu_gw1, cpu_me1) = (cpu_secs(gw.pid()), cpu_secs(me));
    let cpu_echo1 = echo.workers.cpu_secs();
    let hold_end = now_ns();
    for c in [&clock, &probe_clock] {
        c.window_end.store(hold_end, Ordering::Relaxed);
    }
    let _ = cpu_kids0;
    let gw_packets = relayed1 - relayed0;
    let gw_cpu_per_packet = (cpu_gw1 - cpu_gw0) / gw_packets.max(1.0) * 1e6;
    println!(
        "hold: {hold_secs:.1} s, gateway relayed {gw_packets:.0} packets ({:.0}/s), CPU {:.2} s \
         = {gw_cpu_per_packet:.2} µs per packet; load tool CPU {:.2} s (of which the echo {:.2} s); \
         load average {}",
        gw_packets / hold_secs,
        cpu_gw1 - cpu_gw0,
        cpu_me1 - cpu_me0,
        cpu_echo1 - cpu_echo0,
        loadavg()
    );

    // Stop sending, let the last echoes arrive, hang up.
    clock.sending.store(false, Ordering::Relaxed);
    probe_clock.sending.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Where frames were lost: full receive buffers (every socket still open here).
    let mine = own_socket_inodes();
    let drops_gw =
        udp_drops(|port, _| port == webrtc_port || (RTP_PORTS.0..=RTP_PORTS.1).contains(&port));
    let drops_echo = udp_drops(|port, _| port == echo.addr.port());
    let drops_me = udp_drops(|port, inode| mine.contains(&inode) && port != echo.addr.port());
    println!(
        "UDP receive-buffer drops (sockets' lifetime): gateway {drops_gw}, load tool {drops_me}, \
         echo {drops_echo}"
    );
    clock.ended.store(true, Ordering::Relaxed);
    probe_clock.ended.store(true, Ordering::Relaxed);
    let _ = hangup_tx.send(true);
    let mut reports = Vec::with_capacity(n);
    for c in calls {
        reports.push(c.await.unwrap_or_else(|e| CallReport {
            error: Some(format!("task: {e}")),
            ..Default::default()
        }));
    }
    for p in probes {
        let _ = p.await;
    }
    let drops_by_reason: Vec<(&str, f64)> = ["not_sending", "codec", "dtmf", "late"]
        .into_iter()
        .map(|reason| {
            let series =
                format!("siptoken_gateway_media_rtp_packets_dropped_total{{reason=\"{reason}\"}}");
            (reason, gw.metric(&series))
        })
        .collect();
    let drops: f64 = drops_by_reason.iter().map(|(_, n)| n).sum();
    let drops_by_reason = drops_by_reason
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect::<Vec<_>>()
        .join(", ");

    // Calls and loss.
    let errors: Vec<&String> = reports.iter().filter_map(|r| r.error.as_ref()).collect();
    let answered = reports.iter().filter(|r| r.setup.is_some()).count();
    let not_connected = reports
        .iter()
        .filter(|r| r.setup.is_some() && !r.connected)
        .count();
    let (sent, echoed, foreign) = totals(&stats);
    let lossy_calls = stats
        .iter()
        .filter(|s| s.echoed.load(Ordering::Relaxed) < s.sent.load(Ordering::Relaxed))
        .count();
    let lost = sent.saturating_sub(echoed);
    let loss = lost as f64 / sent.max(1) as f64;
    let held_no_loss = stats
        .iter()
        .zip(&reports)
        .filter(|(s, r)| {
            r.error.is_none()
                && s.sent.load(Ordering::Relaxed) > 0
                && s.echoed.load(Ordering::Relaxed) == s.sent.load(Ordering::Relaxed)
        })
        .count();
    println!(
        "calls: {answered} of {n} answered, {} failed, {not_connected} browsers never connected; \
         frames sent {sent}, echoed {echoed}, lost {lost} ({:.4} %) in {lossy_calls} calls, \
         {foreign} to the wrong call; gateway drops {drops} ({drops_by_reason})",
        errors.len(),
        loss * 100.0
    );
    if !errors.is_empty() {
        let mut kinds = std::collections::BTreeMap::<String, usize>::new();
        for e in &errors {
            *kinds.entry(e.chars().take(100).collect()).or_default() += 1;
        }
        println!("FAIL: {} calls failed:", errors.len());
        for (kind, count) in kinds {
            println!("  {count} x {kind}");
        }
        ok = false;
    }
    // A relay fault loses whole calls or stretches of them; scheduling hiccups on a loaded
    // machine lose a few frames spread over many calls.
    let broken = stats
        .iter()
        .filter(|s| {
            let sent = s.sent.load(Ordering::Relaxed);
            sent == 0 || (s.echoed.load(Ordering::Relaxed) as f64) < 0.8 * sent as f64
        })
        .count();
    if broken > 0 {
        println!("FAIL: {broken} calls got back less than 80 % of their frames (or sent none)");
        ok = false;
    }
    if foreign > 0 || not_connected > 0 || answered != n {
        println!("FAIL: frames to the wrong call, unconnected browsers or unanswered calls");
        ok = false;
    }
    if loss > o.max_loss {
        println!(
            "FAIL: {:.4} % of the frames lost, more than the bound of {:.4} %",
            loss * 100.0,
            o.max_loss * 100.0
        );
        ok = false;
    }
    let (psent, pechoed, _) = totals(&probe_stats);
    let mut setup: Vec<Duration> = reports.iter().filter_map(|r| r.setup).collect();
    setup.sort();
    let last_answer = reports
        .iter()
        .filter_map(|r| r.answered_at)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let gw_rate = answered as f64 / last_answer.max(1e-3);
    let rtt_gw = round_trips(&stats);
    let rtt_direct = round_trips(&probe_stats);
    println!(
        "round trips in the hold window: through the gateway {} frames p50 {:.3} / p99 {:.3} / \
         max {:.3} ms; straight to the echo {} frames (probes lost {}) p50 {:.3} / p99 {:.3} / \
         max {:.3} ms",
        rtt_gw.len(),
        percentile(&rtt_gw, 0.5),
        percentile(&rtt_gw, 0.99),
        percentile(&rtt_gw, 1.0),
        rtt_direct.len(),
        psent.saturating_sub(pechoed),
        percentile(&rtt_direct, 0.5),
        percentile(&rtt_direct, 0.99),
        percentile(&rtt_direct, 1.0),
    );

    // The floor: the same frames at the same rate through a bare forwarder.
    let floor = if o.floor.is_zero() {
        None
    } else {
        let fwd = Forwarder::start(echo.addr, n);
        let fclock = Clock::new();
        let fstats: Vec<Arc<StreamStats>> =
            (0..n).map(|_| Arc::new(StreamStats::default())).collect();
        let streams: Vec<_> = fstats
            .iter()
            .enumerate()
            .map(|(i, s)| tokio::spawn(plain_stream(i as u32, fwd.addr, fclock.clone(), s.clone())))
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (cpu0, p0) = (fwd.workers.cpu_secs(), fwd.packets.load(Ordering::Relaxed));
        tokio::time::sleep(o.floor).await;
        let (cpu1, p1) = (fwd.workers.cpu_secs(), fwd.packets.load(Ordering::Relaxed));
        fclock.sending.store(false, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        fclock.ended.store(true, Ordering::Relaxed);
        for s in streams {
            let _ = s.await;
        }
        drop(fwd);
        let (fsent, fechoed, _) = totals(&fstats);
        let per = (cpu1 - cpu0) / (p1 - p0).max(1) as f64 * 1e6;
        println!(
            "floor: bare forwarder relayed {} packets in {} s ({:.0}/s), CPU {:.2} s = {per:.2} µs \
             per packet; frames sent {fsent}, echoed {fechoed}",
            p1 - p0,
            o.floor.as_secs(),
            (p1 - p0) as f64 / o.floor.as_secs_f64(),
            cpu1 - cpu0
        );
        Some(per)
    };

    // Against the targets.
    let added = |p: f64| (percentile(&rtt_gw, p) - percentile(&rtt_direct, p)) / 2.0;
    let rss_per_call = (rss_calls as f64 - rss_sessions as f64) / n as f64;
    println!(
        "figures (load average {}; ratio = figure / target: a ≥ target is met at 1 or more, a ≤ \
         target at 1 or less):",
        loadavg()
    );
    against(
        "concurrent calls held with no loss",
        &format!("{held_no_loss} of {n}"),
        "≥ 500",
        held_no_loss as f64 / TARGET_CALLS,
    );
    against(
        "frames lost",
        &format!("{lost} of {sent} ({:.4} %)", loss * 100.0),
        &format!("≤ {:.2} %", o.max_loss * 100.0),
        if o.max_loss > 0.0 {
            loss / o.max_loss
        } else {
            f64::NAN
        },
    );
    against(
        "added one-way latency p50 (round-trip diff / 2)",
        &format!("{:.3} ms", added(0.5)),
        "",
        f64::NAN,
    );
    against(
        "added one-way latency p99 (round-trip diff / 2)",
        &format!("{:.3} ms", added(0.99)),
        "≤ 2 ms",
        added(0.99) / TARGET_ADDED_P99_MS,
    );
    for (d, h) in directions.iter().zip(&held) {
        if let Some(h) = h {
            against(
                &format!("held p99 {d} (gateway histogram)"),
                &format!("≤ {} ms ({:.3} % ≤ 2 ms)", h.p99_ms, h.within_2ms * 100.0),
                "≤ 2 ms",
                h.p99_ms / TARGET_ADDED_P99_MS,
            );
        }
    }
    if let Some(floor) = floor {
        against(
            "CPU per relayed packet: gateway / bare forwarder",
            &format!("{gw_cpu_per_packet:.2} / {floor:.2} µs"),
            "≤ 3×",
            gw_cpu_per_packet / floor / TARGET_CPU_RATIO,
        );
        println!(
            "  {:<48} {:>22.2}×",
            "  (gateway / floor)",
            gw_cpu_per_packet / floor
        );
    }
    match &direct {
        Some(d) => {
            against(
                "setup rate: gateway / sipp direct",
                &format!("{gw_rate:.0} / {:.0} calls/s", d.rate),
                "≥ 0.5",
                gw_rate / d.rate / TARGET_SETUP_RATIO,
            );
            println!(
                "  {:<48} {:>22.2}",
                "  (gateway / sipp direct)",
                gw_rate / d.rate
            );
            for (name, p) in [("p50", 0.5), ("p99", 0.99)] {
                let (g, s) = (percentile(&setup, p), percentile(&d.setup, p));
                against(
                    &format!("setup latency {name}: gateway / direct (added)"),
                    &format!("{g:.1} / {s:.1} ms (+{:.1})", g - s),
                    "",
                    f64::NAN,
                );
            }
            let _ = d.calls;
        }
        None => against(
            "setup rate through the gateway",
            &format!("{gw_rate:.0} calls/s"),
            "",
            f64::NAN,
        ),
    }
    against(
        "gateway RSS per call",
        &format!("{rss_per_call:.1} KiB"),
        "",
        f64::NAN,
    );
    println!(
        "  (RSS: {rss_idle} KiB idle, {rss_sessions} KiB with {n} sessions, {rss_calls} KiB with \
         {n} calls)"
    );

    let keep = !ok || std::env::var_os("SIPTOKEN_LOAD_KEEP").is_some();
    gw.report_end("gateway_calls_load", ok, tmp, keep);
    drop(gw);
    drop(kam);
    drop(callee);
    drop(echo);
    ok
}
