//! Shared harness for the gateway integration tests: starts real peers (Kamailio, sipp, the
//! gateway binary) on loopback with configs in temp dirs, and always kills them (Drop).
//! Included by `tests/gateway_*.rs` with `#[path = "gateway/harness.rs"] mod harness;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use siptoken::{Claims, Issuer, KeyRing, Transport};
use tokio_tungstenite::tungstenite::Message;

/// The v1 key every test uses (app CRM, kid k1) and a legacy key for app OLD.
pub const KEYS: &str = "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n\
                        OLD=8263D535FFFFFFFF7B0F60\n";
pub const DOMAIN: &str = "sip.test";

pub fn ring() -> KeyRing {
    KEYS.parse().unwrap()
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A token of app CRM (key k1) carrying `claims`.
pub fn crm_token(claims: &Claims) -> String {
    Issuer::new(&ring()).issue("CRM", claims).unwrap()
}

/// A token for `login`/`password` registering at 127.0.0.1:`port` over `transport`.
pub fn token(login: &str, password: &str, port: u16, transport: Transport) -> String {
    let claims = Claims::builder(login, password, DOMAIN)
        .outbound_proxy("127.0.0.1")
        .port(port)
        .transport(transport)
        .visible_name("Operator \"1\"")
        .build()
        .unwrap();
    crm_token(&claims)
}

/// A token for `crm1`/`pw` that authenticates without SIP (`registered="false"`): the gateway
/// answers `authenticated` and sends no REGISTER.
pub fn token_without_sip() -> String {
    let claims = Claims::builder("crm1", "pw", DOMAIN)
        .registered(false)
        .build()
        .unwrap();
    crm_token(&claims)
}

/// Whether this machine has an IPv6 loopback address.
pub fn ipv6_loopback() -> bool {
    UdpSocket::bind("[::1]:0").is_ok()
}

#[path = "loopback.rs"]
mod loopback;

#[path = "launch.rs"]
mod launch;
pub use loopback::free_port;

fn kill_group(child: &mut Child) {
    let pid = child.id() as i32;
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pid}")])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

/// Lifetimes for a test Kamailio.
pub struct KamailioOptions {
    /// Seconds a digest nonce stays valid (`auth` `nonce_expire`).
    pub nonce_expire: u32,
    /// Seconds an idle TCP connection stays open (`tcp_connection_lifetime`).
    pub tcp_lifetime: u32,
    /// Also listen for SIP over TLS (module `tls`, package kamailio-tls-modules) with a
    /// certificate for `sip.test` and 127.0.0.1 made by [`Certs::make`] in the Kamailio dir.
    pub tls: bool,
    /// Static call routes: (user, SIP URI), e.g. `("echo", "sip:127.0.0.1:16000")` sends calls
    /// for `echo@sip.test` that no registration answers to a callee the test started.
    pub routes: Vec<(String, String)>,
}

impl Default for KamailioOptions {
    fn default() -> KamailioOptions {
        KamailioOptions {
            nonce_expire: 300,
            tcp_lifetime: 120,
            tls: false,
            routes: Vec::new(),
        }
    }
}

impl KamailioOptions {
    /// The default options with static call routes from each user name to a sipp callee.
    pub fn routes_to(callees: &[(&str, &Sipp)]) -> KamailioOptions {
        KamailioOptions {
            routes: callees
                .iter()
                .map(|(user, sipp)| (user.to_string(), format!("sip:127.0.0.1:{}", sipp.port)))
                .collect(),
            ..Default::default()
        }
    }
}

/// A Kamailio registrar on 127.0.0.1:`port` (UDP and TCP).
pub struct Kamailio {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// The TLS port (0 without `KamailioOptions::tls`).
    pub tls_port: u16,
    /// The certificates Kamailio serves TLS with (`KamailioOptions::tls`).
    pub certs: Option<Certs>,
    child: Child,
}

impl Kamailio {
    /// Starts Kamailio with digest `algorithm` (MD5 or SHA-256) and these users.
    pub fn start(algorithm: &str, users: &[(&str, &str)]) -> Kamailio {
        Kamailio::start_with(algorithm, users, KamailioOptions::default())
    }

    /// [`Kamailio::start`] with other nonce and TCP lifetimes.
    pub fn start_with(
        algorithm: &str,
        users: &[(&str, &str)],
        options: KamailioOptions,
    ) -> Kamailio {
        let dir = tempfile::tempdir().unwrap();
        let users: String = users
            .iter()
            .map(|(u, p)| {
                let p = p.replace('\\', "\\\\").replace('"', "\\\"");
                format!("\t$sht(users=>{u}) = \"{p}\";\n")
            })
            .collect();
        let routes: String = options
            .routes
            .iter()
            .map(|(u, uri)| format!("\t$sht(routes=>{u}) = \"{uri}\";\n"))
            .collect();
        let certs = options.tls.then(|| Certs::make(dir.path(), "sip.test"));
        for _attempt in 0..5 {
            let port = free_port();
            let tls_port = if options.tls { free_port() } else { 0 };
            let cfg = include_str!("kamailio.cfg")
                .replace("@PORT@", &port.to_string())
                .replace("@DIR@", dir.path().to_str().unwrap())
                .replace("@DOMAIN@", DOMAIN)
                .replace("@MIN_EXPIRES@", "1")
                .replace("@NONCE_EXPIRE@", &options.nonce_expire.to_string())
                .replace("@TCP_LIFETIME@", &options.tcp_lifetime.to_string())
                .replace("@ALGORITHM@", algorithm)
                .replace("@PING_INTERVAL@", "1")
                .replace("@USERS@", &users)
                .replace("@ROUTES@", &routes);
            // Some containers have no IPv6 loopback: listen on IPv4 only there.
            let cfg = if ipv6_loopback() {
                cfg
            } else {
                cfg.lines()
                    .filter(|l| !l.contains("[::1]"))
                    .map(|l| format!("{l}\n"))
                    .collect()
            };
            let cfg = match &certs {
                None => cfg,
                Some(c) => {
                    let tls_cfg = dir.path().join("tls.cfg");
                    std::fs::write(
                        &tls_cfg,
                        format!(
                            "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\n\
                             require_certificate = no\nprivate_key = {}\ncertificate = {}\n",
                            c.key.display(),
                            c.cert.display()
                        ),
                    )
                    .unwrap();
                    let tcp = format!("listen=tcp:127.0.0.1:{port}\n");
                    assert!(cfg.contains(&tcp) && cfg.contains("loadmodule \"ctl.so\"\n"));
                    cfg.replace(
                        &tcp,
                        &format!("{tcp}enable_tls=yes\nlisten=tls:127.0.0.1:{tls_port}\n"),
                    )
                    .replace(
                        "loadmodule \"ctl.so\"\n",
                        &format!(
                            "loadmodule \"ctl.so\"\nloadmodule \"tls.so\"\n\
                             modparam(\"tls\", \"config\", \"{}\")\n",
                            tls_cfg.display()
                        ),
                    )
                }
            };
            let cfg_path = dir.path().join("kamailio.cfg");
            std::fs::write(&cfg_path, cfg).unwrap();
            let log = std::fs::File::create(dir.path().join("kamailio.log")).unwrap();
            let mut child = Command::new("kamailio")
                .arg("-f")
                .arg(&cfg_path)
                .arg("-w")
                .arg(dir.path())
                .arg("-Y")
                .arg(dir.path())
                .arg("-P")
                .arg(dir.path().join("kamailio.pid"))
                .args(["-m", "64", "-M", "8", "-E", "-DD"])
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .process_group(0)
                .spawn()
                .expect("kamailio is installed (Debian package kamailio)");
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut k = None;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                let ready = Command::new("kamcmd")
                    .arg("-s")
                    .arg(format!("unix:{}/ctl.sock", dir.path().display()))
                    .arg("core.version")
                    .output()
                    .is_ok_and(|o| o.status.success());
                if ready {
                    k = Some(());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if k.is_some() {
                return Kamailio {
                    dir,
                    port,
                    tls_port,
                    certs,
                    child,
                };
            }
            kill_group(&mut child);
            eprintln!(
                "kamailio did not start on port {port}:\n{}",
                std::fs::read_to_string(dir.path().join("kamailio.log")).unwrap_or_default()
            );
        }
        panic!("kamailio did not start");
    }

    /// `kamcmd ul.dump` output.
    pub fn dump(&self) -> String {
        let out = Command::new("kamcmd")
            .arg("-s")
            .arg(format!("unix:{}/ctl.sock", self.dir.path().display()))
            .arg("ul.dump")
            .output()
            .unwrap();
        assert!(out.status.success(), "kamcmd ul.dump failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The Contact addresses Kamailio holds for `user`.
    pub fn bindings(&self, user: &str) -> Vec<String> {
        let dump = self.dump();
        let mut out = Vec::new();
        let mut in_aor = false;
        for line in dump.lines() {
            let l = line.trim();
            if let Some(a) = l.strip_prefix("AoR:") {
                in_aor = a.trim() == user || a.trim() == format!("{user}@{DOMAIN}");
            } else if let Some(addr) = l.strip_prefix("Address:") {
                if in_aor {
                    out.push(addr.trim().to_owned());
                }
            }
        }
        out
    }

    /// Waits until `user` has exactly `n` bindings.
    pub fn wait_bindings(&self, user: &str, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let b = self.bindings(user);
            if b.len() == n {
                return b;
            }
            if Instant::now() > deadline {
                panic!(
                    "expected {n} bindings for {user}, have {b:?}\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kamailio.log")).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// Where a gateway that carries calls takes its media on loopback: the browser leg's port and a
/// window of 100 RTP ports of its own (tests run in parallel). Kept to restart a gateway in the
/// same place.
#[derive(Debug, Clone, Copy)]
pub struct CallPorts {
    pub webrtc: u16,
    pub rtp_base: u16,
}

impl CallPorts {
    pub fn free() -> CallPorts {
        CallPorts {
            webrtc: free_port(),
            rtp_base: 20_000 + (free_port() % 200) * 100,
        }
    }

    /// The gateway config lines for these ports.
    pub fn config(&self) -> String {
        format!(
            "webrtc_listen = \"127.0.0.1:{}\"\nrtp_address = \"127.0.0.1\"\n\
             rtp_ports = \"{}-{}\"\n",
            self.webrtc,
            self.rtp_base,
            self.rtp_base + 99
        )
    }
}

/// A running `siptoken-gateway` binary.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    child: Child,
}

impl Gateway {
    /// Starts the gateway with `extra` TOML lines appended to a test config (listen on a free
    /// port, SIP on loopback, the test key ring).
    pub fn start(extra: &str) -> Gateway {
        Gateway::start_with_args(extra, &[])
    }

    pub fn start_with_args(extra: &str, args: &[&str]) -> Gateway {
        Gateway::start_with_env(extra, args, &[])
    }

    /// Like [`Gateway::start_with_args`], with `env` variables set for the gateway.
    pub fn start_with_env(extra: &str, args: &[&str], env: &[(&str, &str)]) -> Gateway {
        Gateway::start_listening("127.0.0.1:0", extra, args, env)
    }

    /// Like [`Gateway::start_with_env`], listening on `listen` (e.g. the address of a gateway
    /// that was just killed, to restart it where its clients reconnect).
    pub fn start_listening(
        listen: &str,
        extra: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "listen = \"{listen}\"\nkeys = \"keys.conf\"\nsip_bind = \"127.0.0.1\"\n{extra}\n"
        );
        // SIPTOKEN_GATEWAY_BIN runs another build (e.g. target/release) under the same tests.
        let bin = std::env::var("SIPTOKEN_GATEWAY_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_siptoken-gateway").to_owned());
        let log_filter =
            std::env::var("SIPTOKEN_TEST_GATEWAY_LOG").unwrap_or_else(|_| "trace".into());
        let mut child = launch::command(Path::new(&bin), dir.path(), KEYS, &config)
            .args(args)
            .envs(env.iter().copied())
            .env("SIPTOKEN_GATEWAY_LOG", log_filter)
            .spawn()
            .unwrap();
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).unwrap();
        let addr = launch::listening_address(&line)
            .unwrap_or_else(|| {
                panic!(
                    "gateway did not start: {line:?}\n{}",
                    std::fs::read_to_string(dir.path().join("gateway.log")).unwrap_or_default()
                )
            })
            .parse()
            .unwrap();
        // Keep draining stdout (into stdout.log) so the gateway never blocks on a full pipe.
        let mut out = std::fs::File::create(dir.path().join("stdout.log")).unwrap();
        let _ = out.write_all(line.as_bytes());
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut reader, &mut out);
        });
        Gateway { dir, addr, child }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.log")).unwrap_or_default()
    }

    /// Everything the gateway wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open file descriptors of the gateway process (sockets included).
    pub fn open_fds(&self) -> usize {
        open_fds(self.pid())
    }

    /// Sends SIGTERM and waits (bounded) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        self.signal("TERM", within)
    }

    /// Sends a signal (`TERM`, `INT`) and waits (bounded) for the exit status.
    pub fn signal(&mut self, signal: &str, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "gateway did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A plain HTTP GET; returns (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path, &[])
    }

    /// The value of a metric line (exact series name including labels), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, body) = self.get("/metrics");
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// How many connections the gateway closed for `reason` (the label of
    /// `siptoken_gateway_connections_closed_total`), 0 when none.
    pub fn closed_total(&self, reason: &str) -> f64 {
        self.metric(&closed_series(reason))
    }

    /// Waits (at most 5 s) until the gateway has closed `count` connections for `reason`.
    pub async fn wait_closed_total(&self, reason: &str, count: f64) {
        self.wait_metric(&closed_series(reason), Duration::from_secs(5), |n| {
            n == count
        })
        .await;
    }

    /// Waits (bounded, polling every 50 ms) until the metric `series` satisfies `done`, and
    /// returns its value; panics with the last value and the gateway log after `within`.
    pub async fn wait_metric(
        &self,
        series: &str,
        within: Duration,
        done: impl Fn(f64) -> bool,
    ) -> f64 {
        let deadline = Instant::now() + within;
        loop {
            let v = self.metric(series);
            if done(v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is still {v} after {within:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the gateway has no sessions left.
    pub async fn wait_no_sessions(&self, within: Duration) {
        self.wait_metric("siptoken_gateway_sessions", within, |v| v == 0.0)
            .await;
    }

    pub async fn ws(&self) -> Ws {
        Ws::connect(self.addr, None).await
    }
}

/// Open file descriptors of a process (sockets included), counted in `/proc/PID/fd`.
pub fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

impl Drop for Gateway {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// HTTP/1.1 GET with extra headers; returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        req.push_str("Connection: close\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
        // Stop after the head for a 101 (the connection stays open), after Content-Length bytes
        // of body otherwise (the server may keep the connection alive).
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            if head.starts_with("http/1.1 101") {
                break;
            }
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|n| raw.len() >= end + 4 + n) {
                break;
            }
        }
    }
    let resp = String::from_utf8_lossy(&raw).into_owned();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

type PlainStream = tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>;

/// A WebSocket client speaking the gateway protocol.
pub struct Ws<S = PlainStream> {
    pub stream: tokio_tungstenite::WebSocketStream<S>,
}

impl Ws {
    pub async fn connect(addr: SocketAddr, origin: Option<&str>) -> Ws {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{addr}/ws").into_client_request().unwrap();
        if let Some(o) = origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        let (stream, _) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(req),
        )
        .await
        .expect("WebSocket connect timed out")
        .expect("WebSocket connect failed");
        Ws { stream }
    }
}

#[path = "h2_client.rs"]
pub mod h2_client;
pub use h2_client::H2Stream;

/// One HTTP/2 connection to the gateway, carrying any number of WebSocket sessions (RFC 8441).
pub struct H2 {
    addr: SocketAddr,
    send: h2_client::H2Sender,
}

impl H2 {
    /// Connects with HTTP/2 prior knowledge (h2c).
    pub async fn connect(addr: SocketAddr) -> H2 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let send = h2_client::handshake(tcp).await.unwrap();
        H2 { addr, send }
    }

    /// Sends an extended CONNECT for `/ws` (with `origin`, if any): the response status and,
    /// when it is 200, the WebSocket.
    pub async fn try_open(&self, origin: Option<&str>) -> (u16, Option<Ws<H2Stream>>) {
        use tokio_tungstenite::tungstenite::protocol::Role;
        let authority = self.addr.to_string();
        let (status, io) = h2_client::extended_connect(&self.send, &authority, origin)
            .await
            .unwrap();
        let Some(io) = io else {
            return (status, None);
        };
        let stream =
            tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Client, None).await;
        (status, Some(Ws { stream }))
    }

    /// Opens a WebSocket session on this connection (panics unless the gateway accepts it).
    pub async fn open(&self) -> Ws<H2Stream> {
        match tokio::time::timeout(Duration::from_secs(10), self.try_open(None)).await {
            Ok((200, Some(ws))) => ws,
            Ok((status, _)) => panic!("extended CONNECT answered {status}"),
            Err(_) => panic!("extended CONNECT timed out"),
        }
    }
}

impl<S> Ws<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    pub async fn send(&mut self, v: Value) {
        self.stream
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    pub async fn login(&mut self, token: &str) {
        self.send(json!({"type": "login", "token": token})).await;
    }

    /// Logs in with `token` and expects `registering`, then `registered` (returned).
    pub async fn login_registered(&mut self, token: &str) -> Value {
        self.login(token).await;
        self.expect_registration().await
    }

    /// After a login already sent: expects `registering`, then `registered` (returned).
    pub async fn expect_registration(&mut self) -> Value {
        self.expect("registering").await;
        self.expect("registered").await
    }

    /// Sends `logout` and expects `unregistered` as the very next message (returned).
    pub async fn logout(&mut self) -> Value {
        self.send(json!({"type": "logout"})).await;
        self.expect("unregistered").await
    }

    /// Sends `logout` and waits for `unregistered` (returned), allowing only `registered`
    /// (refreshes already on their way) before it.
    pub async fn logout_after_refreshes(&mut self) -> Value {
        self.send(json!({"type": "logout"})).await;
        loop {
            let v = self.recv().await;
            if v["type"] == "unregistered" {
                return v;
            }
            assert_eq!(v["type"], "registered", "{v}");
        }
    }

    /// The next JSON message, waiting at most `within`; panics on timeout or close.
    pub async fn recv_within(&mut self, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let m = tokio::time::timeout_at(deadline, self.stream.next())
                .await
                .expect("timed out waiting for a gateway message")
                .expect("socket closed")
                .expect("WebSocket error");
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Close(c) => panic!("socket closed by the gateway: {c:?}"),
                _ => continue,
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.recv_within(Duration::from_secs(10)).await
    }

    /// Receives the next message and checks its type.
    pub async fn expect(&mut self, ty: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], ty, "unexpected message {v}");
        v
    }

    /// Receives an `error` with this code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let v = self.recv().await;
        assert_eq!(v["type"], "error", "unexpected message {v}");
        assert_eq!(v["code"], code, "unexpected error {v}");
        v
    }

    /// Spends a login budget of `burst` on malformed tokens (each refused `token_rejected`),
    /// then expects the next login to be refused `rate_limited` (that error returned).
    pub async fn use_up_login_burst(&mut self, burst: usize) -> Value {
        for _ in 0..burst {
            self.login("CRM:zz").await;
            self.expect_error("token_rejected").await;
        }
        self.login("CRM:zz").await;
        self.expect_error("rate_limited").await
    }

    /// Whether the socket still answers a ping.
    pub async fn ping(&mut self) {
        self.send(json!({"type": "ping"})).await;
        self.expect("pong").await;
    }
}

/// A UDP socket that records what arrives and never answers (a silent "registrar").
pub struct Silent {
    pub socket: UdpSocket,
    pub port: u16,
}

impl Silent {
    pub fn new() -> Silent {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        Silent { socket, port }
    }

    /// Datagrams received within `within`.
    pub fn received(&self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut out = Vec::new();
        let mut buf = [0u8; 65536];
        while Instant::now() < deadline {
            if let Ok(n) = self.socket.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        }
        out
    }
}

/// sipp running a UAS scenario on 127.0.0.1:`port` (UDP).
pub struct Sipp {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// Where its RTP is (`-mp`).
    pub media_port: u16,
    child: Child,
}

impl Sipp {
    pub fn start(scenario: &Path) -> Sipp {
        Sipp::start_with(scenario, &[])
    }

    /// [`Sipp::start`] with more sipp arguments (`-rtp_echo`, `-key status 486`, …). The media
    /// port (`-mp`) is a free one, in [`Sipp::media_port`].
    pub fn start_with(scenario: &Path, extra: &[&str]) -> Sipp {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // sipp's RTP echo takes the media port and the one above it (RTCP).
        // (Linux hands out odd ports for bind(0): take the even one below and check both.)
        let media_port = loop {
            let p = free_port() & !1;
            let free = |port: u16| std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
            if p > 1024 && free(p) && free(p + 1) {
                break p;
            }
        };
        let log = std::fs::File::create(dir.path().join("sipp.log")).unwrap();
        let child = Command::new("sipp")
            .args(["-sf"])
            .arg(scenario)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-m",
                "1",
                "-nostdin",
                "-mi",
                "127.0.0.1",
                "-mp",
                &media_port.to_string(),
            ])
            .args(["-trace_err", "-trace_msg", "-trace_logs"])
            .args(extra)
            .current_dir(dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("sipp is installed (Debian package sip-tester)");
        std::thread::sleep(Duration::from_millis(300));
        Sipp {
            dir,
            port,
            media_port,
            child,
        }
    }

    /// Waits (bounded) for sipp to finish its one call and checks that it succeeded.
    pub fn wait_success(&mut self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "sipp failed ({status}):\n{}", self.log());
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sipp did not finish:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts that sipp logged `what` (a message it received, a scenario's log line).
    pub fn assert_logged(&self, what: &str) {
        let log = self.log();
        assert!(log.contains(what), "{what} missing:\n{log}");
    }

    /// Everything sipp logged (messages and errors).
    pub fn log(&self) -> String {
        let mut out = String::new();
        for e in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
        }
        out
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A scenario file in tests/gateway/sipp/.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/gateway/sipp")
        .join(name)
}

/// dnsmasq serving SRV records on 127.0.0.1:`port` (UDP), nothing else.
pub struct Dnsmasq {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl Dnsmasq {
    /// Starts dnsmasq with `--srv-host` records `(name, target, port)`.
    pub fn start(records: &[(&str, &str, u16)]) -> Dnsmasq {
        let options: Vec<String> = records
            .iter()
            .map(|(name, target, p)| format!("--srv-host={name},{target},{p},0,0"))
            .collect();
        Dnsmasq::start_with(&options)
    }

    /// Starts dnsmasq with these record options (`--srv-host=…`, `--naptr-record=…`,
    /// `--host-record=…`, `--local-ttl=…`), logging every query it receives (see
    /// [`Dnsmasq::queries`]).
    pub fn start_with(options: &[String]) -> Dnsmasq {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--no-daemon",
            "--conf-file=/dev/null",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--pid-file=",
            "--user=root",
        ])
        .arg(format!("--port={port}"))
        // Authoritative for *.test: unknown names are NXDOMAIN, not REFUSED (no upstream).
        .arg("--local=/test/")
        .arg("--log-queries")
        .arg(format!(
            "--log-facility={}",
            dir.path().join("queries.log").display()
        ))
        .args(options);
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("dnsmasq is installed (Debian package dnsmasq-base)");
        // Wait until it answers on UDP.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let query = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x04test\x00\x00\x01\x00\x01";
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 512];
        loop {
            let _ = probe.send_to(query, ("127.0.0.1", port));
            if probe.recv(&mut buf).is_ok() {
                break;
            }
            assert!(Instant::now() < deadline, "dnsmasq did not start");
        }
        Dnsmasq { port, dir, child }
    }

    /// How many queries of `qtype` (`NAPTR`, `SRV`, `A`, `AAAA`) for `name` dnsmasq received.
    pub fn queries(&self, qtype: &str, name: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("queries.log")).unwrap_or_default();
        let needle = format!("query[{qtype}] {name} from");
        log.lines().filter(|l| l.contains(&needle)).count()
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A `redis-server` (Debian package) on 127.0.0.1:`port`, in memory only (no RDB, no AOF).
pub struct Redis {
    pub dir: tempfile::TempDir,
    pub port: u16,
    password: Option<String>,
    /// More `redis.conf` lines (TLS, replication, cluster).
    extra: String,
    child: Option<Child>,
}

impl Redis {
    /// Starts Redis on a free port, requiring `password` (`requirepass`) when given.
    pub fn start(password: Option<&str>) -> Redis {
        Redis::start_with(password, "")
    }

    /// Like [`Redis::start`], with `extra` lines appended to its `redis.conf` (`tls-port …`,
    /// `replicaof …`, `cluster-enabled yes` …). A password is also `masterauth`, so a replica
    /// authenticates to its master with it.
    pub fn start_with(password: Option<&str>, extra: &str) -> Redis {
        let mut r = Redis {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            password: password.map(str::to_owned),
            extra: extra.to_owned(),
            child: None,
        };
        r.restart();
        r
    }

    /// Kills the server at once (SIGKILL, a crash: no shutdown, no last word to replicas).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The URL a gateway config names.
    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// Stops the server (bounded); its data is gone with it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            kill_group(&mut c);
        }
    }

    /// Starts the server again on the same port (after [`Redis::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        // The config goes in a file: a password never appears on a command line.
        let mut cfg = format!(
            "port {}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndaemonize no\ndir {}\n\
             logfile \"\"\nprotected-mode no\n",
            self.port,
            self.dir.path().display()
        );
        if let Some(p) = &self.password {
            cfg.push_str(&format!("requirepass \"{p}\"\nmasterauth \"{p}\"\n"));
        }
        cfg.push_str(&self.extra);
        self.child = Some(spawn_configured(
            "redis-server",
            self.dir.path(),
            "redis",
            &cfg,
        ));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut buf = [0u8; 64];
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n > 0) {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start:\n{}",
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Sends one inline command and returns the raw reply.
    pub fn command(&self, cmd: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        if let Some(p) = &self.password {
            s.write_all(format!("AUTH {p}\r\n").as_bytes()).unwrap();
            let mut buf = [0u8; 64];
            let _ = s.read(&mut buf).unwrap();
        }
        s.write_all(format!("{cmd}\r\n").as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `redis-sentinel` (Debian package) on 127.0.0.1:`port` watching the master group
/// [`RedisSentinel::MASTER`], failing over after one second without an answer.
pub struct RedisSentinel {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

impl RedisSentinel {
    /// The name of the watched group.
    pub const MASTER: &'static str = "mymaster";

    /// Starts a sentinel watching the master on `master_port` (authenticating with
    /// `password`), `quorum` sentinels agreeing it is down before a failover.
    pub fn start(master_port: u16, password: Option<&str>, quorum: u32) -> RedisSentinel {
        RedisSentinel::start_with(master_port, password, quorum, "")
    }

    /// Like [`RedisSentinel::start`], with `extra` lines in its config (`tls-port …`).
    pub fn start_with(
        master_port: u16,
        password: Option<&str>,
        quorum: u32,
        extra: &str,
    ) -> RedisSentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let m = RedisSentinel::MASTER;
        // A file the sentinel rewrites as it learns; the password never on a command line.
        let mut cfg = format!(
            "port {port}\nbind 127.0.0.1\ndaemonize no\nlogfile \"\"\nprotected-mode no\n\
             dir {}\nsentinel monitor {m} 127.0.0.1 {master_port} {quorum}\n\
             sentinel down-after-milliseconds {m} 1000\nsentinel failover-timeout {m} 10000\n\
             sentinel parallel-syncs {m} 1\n",
            dir.path().display()
        );
        if let Some(p) = password {
            cfg.push_str(&format!("sentinel auth-pass {m} \"{p}\"\n"));
        }
        cfg.push_str(extra);
        let child = spawn_configured("redis-sentinel", dir.path(), "sentinel", &cfg);
        let s = RedisSentinel { dir, port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s
            .try_command("PING")
            .is_some_and(|r| r.starts_with("+PONG"))
        {
            assert!(
                Instant::now() < deadline,
                "redis-sentinel did not start:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
        s
    }

    /// Sends one inline command and returns the raw reply.
    pub fn command(&self, cmd: &str) -> String {
        self.try_command(cmd)
            .unwrap_or_else(|| panic!("sentinel on port {} does not answer", self.port))
    }

    fn try_command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    }

    /// The port of the master this sentinel names now.
    pub fn master_port(&self) -> Option<u16> {
        let reply = self.try_command(&format!(
            "SENTINEL get-master-addr-by-name {}",
            RedisSentinel::MASTER
        ))?;
        reply.lines().nth(4)?.trim().parse().ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for RedisSentinel {
    fn drop(&mut self) {
        kill_group(&mut self.child);
    }
}

/// A test CA and a server certificate it signed (PEM files), made with the openssl CLI.
#[derive(Clone)]
pub struct Certs {
    /// The CA certificate (what clients trust).
    pub ca: PathBuf,
    /// The server certificate, for DNS `name` and IP 127.0.0.1.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

impl Certs {
    /// Makes a CA and a server certificate for `name` and 127.0.0.1 in `dir`, valid for 2 days.
    pub fn make(dir: &Path, name: &str) -> Certs {
        Certs::make_for(dir, name, "serverAuth")
    }

    /// Like [`Certs::make`], with the certificate's extended key usage (`serverAuth,clientAuth`
    /// for a Redis Cluster node, which also presents it as a client on the cluster bus).
    pub fn make_for(dir: &Path, name: &str, usage: &str) -> Certs {
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("openssl is installed");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut a = vec!["req", "-x509"];
        a.extend(ec);
        a.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"]);
        a.extend(["-subj", "/CN=siptoken test CA"]);
        run(&a);
        let mut a = vec!["req"];
        a.extend(ec);
        a.extend(["-keyout", "server.key", "-out", "server.csr"]);
        let subj = format!("/CN={name}");
        a.extend(["-subj", &subj]);
        run(&a);
        std::fs::write(
            dir.join("server.ext"),
            format!(
                "subjectAltName=DNS:{name},IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature\nextendedKeyUsage={usage}\n"
            ),
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Certs {
            ca: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        }
    }
}

/// The series of `siptoken_gateway_connections_closed_total` for one close `reason`.
pub fn closed_series(reason: &str) -> String {
    format!("siptoken_gateway_connections_closed_total{{reason=\"{reason}\"}}")
}

/// Starts `program` (a Redis server or sentinel, Debian packages of the same name) in its own
/// process group with the config file `dir/NAME.conf` holding `cfg` (a file, so that a password
/// never appears on a command line), its output going to `dir/NAME.log`.
fn spawn_configured(program: &str, dir: &Path, name: &str, cfg: &str) -> Child {
    let cfg_path = dir.join(format!("{name}.conf"));
    std::fs::write(&cfg_path, cfg).unwrap();
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    Command::new(program)
        .arg(&cfg_path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is installed (Debian package {program}): {e}"))
}
