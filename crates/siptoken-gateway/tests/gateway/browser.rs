#![allow(dead_code)]

//! A browser phone for the call tests: headless Chromium (Debian `chromium`, driven by npm
//! `playwright-core` from `target/gateway-node`, installed by scripts/ci/40-gateway.sh) running
//! `browser-phone.cjs`, whose fake microphone plays a sine of a known frequency. The test sends
//! it commands and reads the gateway's messages as the page received them.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where playwright-core is installed (`SIPTOKEN_NODE_MODULES`, else the CI stage's directory).
pub fn node_modules() -> String {
    let modules = std::env::var("SIPTOKEN_NODE_MODULES").unwrap_or_else(|_| {
        format!(
            "{}/../../target/gateway-node/node_modules",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        Path::new(&modules).join("playwright-core").is_dir(),
        "playwright-core is not installed in {modules} (scripts/ci/40-gateway.sh installs it)"
    );
    modules
}

/// A browser the softphone driver (tests/gateway/softphone.cjs, through npm `puppeteer-core`)
/// runs the page in: the same steps in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Browser {
    /// Debian `chromium` (or `$CHROMIUM`), over CDP.
    Chromium,
    /// Debian `firefox-esr` (or `$FIREFOX`), over WebDriver BiDi.
    Firefox,
}

impl Browser {
    /// The name softphone.cjs takes.
    pub fn name(self) -> &'static str {
        match self {
            Browser::Chromium => "chromium",
            Browser::Firefox => "firefox",
        }
    }

    /// Panics (before any server starts) unless the browser and the driver's npm packages
    /// (`puppeteer-core`, `ws`) are installed.
    pub fn assert_installed(self) {
        let modules = node_modules();
        for package in ["puppeteer-core", "ws"] {
            assert!(
                Path::new(&modules).join(package).is_dir(),
                "{package} is not installed in {modules} (scripts/ci/40-gateway.sh installs it)"
            );
        }
        let (var, default) = match self {
            Browser::Chromium => ("CHROMIUM", "/usr/bin/chromium"),
            Browser::Firefox => ("FIREFOX", "/usr/bin/firefox-esr"),
        };
        let binary = std::env::var(var).unwrap_or_else(|_| default.to_owned());
        assert!(
            Path::new(&binary).is_file(),
            "{binary} is not installed (scripts/ci/40-gateway.sh installs it; ${var} names another)"
        );
    }
}

/// `node tests/gateway/<script>` with the test-local npm packages (playwright-core, puppeteer-core,
/// ws) on its `NODE_PATH`, in a process group of its own (so that the browser it starts goes with
/// it: see [`Reaper`]); stdin and stdout piped, stderr inherited. The caller adds the script's
/// arguments.
pub fn node(script: &str) -> Command {
    let mut cmd = Command::new("node");
    cmd.arg(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/gateway")
            .join(script),
    )
    .env("NODE_PATH", node_modules())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::inherit())
    .process_group(0);
    cmd
}

/// Starts `cmd` (a [`node`] script) and reads its stdout in a thread, line by line: each line
/// that `parse` keeps is sent on the channel. Returns the child, its stdin and the channel.
pub fn spawn_reading<T: Send + 'static>(
    cmd: &mut Command,
    parse: impl Fn(String) -> Option<T> + Send + 'static,
) -> (Child, ChildStdin, mpsc::Receiver<T>) {
    let mut child = cmd.spawn().expect("node is installed");
    let stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let Some(msg) = parse(line) else { continue };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    (child, stdin, rx)
}

/// Kills the process group it names (a [`node`] and its Chromium) when dropped, whatever
/// happened in the test.
pub struct Reaper(pub u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}

/// Chromium offers a host candidate on every interface and the gateway (ICE-lite) answers
/// whichever checks arrive: on a machine with a LAN address, media would flow to it. These
/// tests run only where loopback is the only interface — a network namespace of their own
/// (scripts/ci/40-gateway.sh runs them under `unshare -n`).
pub fn assert_loopback_only() {
    // /proc/self/net is this network namespace's view (sysfs may show another's).
    let dev = std::fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let others: Vec<String> = dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|n| n.trim().to_owned())
        .filter(|n| n != "lo")
        .collect();
    assert!(
        others.is_empty(),
        "the browser call tests must run where loopback is the only network interface \
         (e.g. `unshare -n sh -c 'ip link set lo up; cargo test …'`); found {others:?}"
    );
}

/// Writes `seconds` of a `freq` Hz sine (half scale) as a 48 kHz mono 16-bit WAV file.
pub fn write_tone_wav(path: &Path, freq: f64, seconds: u32) {
    let rate = 48_000u32;
    let samples = rate * seconds;
    let mut data = Vec::with_capacity(44 + samples as usize * 2);
    data.extend_from_slice(b"RIFF");
    data.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    data.extend_from_slice(b"WAVEfmt ");
    data.extend_from_slice(&16u32.to_le_bytes());
    data.extend_from_slice(&1u16.to_le_bytes()); // PCM
    data.extend_from_slice(&1u16.to_le_bytes()); // mono
    data.extend_from_slice(&rate.to_le_bytes());
    data.extend_from_slice(&(rate * 2).to_le_bytes());
    data.extend_from_slice(&2u16.to_le_bytes());
    data.extend_from_slice(&16u16.to_le_bytes());
    data.extend_from_slice(b"data");
    data.extend_from_slice(&(samples * 2).to_le_bytes());
    for n in 0..samples {
        let v = (2.0 * std::f64::consts::PI * freq * n as f64 / rate as f64).sin();
        data.extend_from_slice(&((v * 16_000.0) as i16).to_le_bytes());
    }
    std::fs::write(path, data).unwrap();
}

/// A line the phone printed.
enum Line {
    Reply(u64, Value),
    Event(Value),
}

impl Line {
    /// A reply or an event (a closed socket is the event `__closed`); other lines are logged.
    fn parse(line: String) -> Option<Line> {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            eprintln!("browser phone: {line}");
            return None;
        };
        if let Some(id) = v.get("reply").and_then(Value::as_u64) {
            Some(Line::Reply(id, v))
        } else if let Some(e) = v.get("event") {
            Some(Line::Event(e.clone()))
        } else {
            eprintln!("browser phone: {v}");
            v.get("closed")
                .map(|code| Line::Event(json!({"type": "__closed", "code": code})))
        }
    }
}

/// One headless Chromium with the phone page open on the gateway's origin.
pub struct BrowserPhone {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<Line>,
    /// Gateway messages received but not yet taken by [`BrowserPhone::event`].
    pending: Vec<Value>,
    next_id: u64,
    _dir: tempfile::TempDir,
    /// The gateway's `ws://…/ws` URL.
    pub ws_url: String,
}

impl BrowserPhone {
    /// Starts Chromium on `http://GATEWAY/` with a microphone playing a `tone_hz` sine.
    pub fn start(gateway: std::net::SocketAddr, tone_hz: f64) -> BrowserPhone {
        assert_loopback_only();
        let dir = tempfile::tempdir().unwrap();
        let wav: PathBuf = dir.path().join("tone.wav");
        write_tone_wav(&wav, tone_hz, 120);
        let (child, stdin, rx) = spawn_reading(
            node("browser-phone.cjs")
                .arg(format!("http://{gateway}/"))
                .arg(dir.path().join("profile"))
                .arg(&wav),
            Line::parse,
        );
        let mut phone = BrowserPhone {
            child,
            stdin,
            lines: rx,
            pending: Vec::new(),
            next_id: 1,
            _dir: dir,
            ws_url: format!("ws://{gateway}/ws"),
        };
        let url = phone.ws_url.clone();
        phone.cmd(json!({"cmd": "connect", "url": url}));
        phone
    }

    /// Sends a command and waits (60 s at most) for its reply; panics on an error reply.
    pub fn cmd(&mut self, mut cmd: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        cmd["id"] = json!(id);
        writeln!(self.stdin, "{cmd}").expect("the browser phone is running");
        self.stdin.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Reply(got, v)) if got == id => {
                    if let Some(e) = v.get("error") {
                        panic!("browser phone: {cmd} failed: {e}");
                    }
                    return v;
                }
                Ok(Line::Reply(..)) => {}
                Ok(Line::Event(e)) => self.pending.push(e),
                Err(_) => panic!("browser phone: no reply to {cmd}"),
            }
        }
    }

    /// Sends a client message as it is.
    pub fn send(&mut self, msg: Value) {
        self.cmd(json!({"cmd": "send", "msg": msg}));
    }

    /// The next gateway message for which `want` holds, within `timeout`; earlier messages that
    /// do not match stay available to later calls.
    pub fn event_where(&mut self, timeout: Duration, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&want) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(Line::Event(e)) if want(&e) => return e,
                Ok(Line::Event(e)) => self.pending.push(e),
                Ok(Line::Reply(..)) => {}
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                // Without the SDPs, which would drown the rest.
                let tail: Vec<Value> = self.pending[self.pending.len().saturating_sub(20)..]
                    .iter()
                    .map(|e| {
                        let mut e = e.clone();
                        if let Some(o) = e.as_object_mut() {
                            o.remove("sdp");
                        }
                        e
                    })
                    .collect();
                panic!(
                    "browser phone: no matching gateway message in {timeout:?}; the last of {} received: {tail:?}",
                    self.pending.len()
                );
            }
        }
    }

    /// The next message of `kind` (its `type`) about `call` (any call when `None`).
    pub fn event(&mut self, kind: &str, call: Option<&str>, timeout: Duration) -> Value {
        self.event_where(timeout, |e| {
            e["type"] == kind && call.is_none_or(|c| e["call"] == c)
        })
    }

    /// Places `call` to `to` (the `call` command: the page makes the offer).
    pub fn call(&mut self, call: &str, to: &str) -> Value {
        self.cmd(json!({"cmd": "call", "call": call, "to": to}))
    }

    /// Places `call` to `to` and waits (`timeout`) until it is `answered` (returned).
    pub fn call_answered(&mut self, call: &str, to: &str, timeout: Duration) -> Value {
        self.call(call, to);
        self.event("answered", Some(call), timeout)
    }

    /// Waits (`timeout`) for `call` to end, asserts its `reason` and returns the `ended`.
    pub fn ended(&mut self, call: &str, reason: &str, timeout: Duration) -> Value {
        let ended = self.event("ended", Some(call), timeout);
        assert_eq!(ended["reason"], reason, "{ended}");
        ended
    }

    /// Sends `hangup` for `call`.
    pub fn hangup(&mut self, call: &str) {
        self.send(json!({"type": "hangup", "call": call}));
    }

    /// Logs in with `token` and waits for `registered`.
    pub fn login(&mut self, token: &str) -> Value {
        self.send(json!({"type": "login", "token": token}));
        self.event("registered", None, Duration::from_secs(20))
    }

    /// Listens to `call`'s far end for `ms` and reports the spectrum (see browser-phone.cjs).
    pub fn listen(&mut self, call: &str, freq: f64, ms: u64) -> Value {
        self.cmd(json!({"cmd": "listen", "call": call, "freq": freq, "ms": ms}))
    }

    /// Asserts that the far end of `call` is heard as a `freq` tone: the spectrum peak is
    /// within 30 Hz of `freq`, at least 20 dB above the median bin, and RTP packets arrived.
    pub fn assert_hears(&mut self, call: &str, freq: f64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = self.listen(call, freq, 1000);
            let peak = r["peakHz"].as_f64().unwrap_or(0.0);
            let level = r["levelAtFreq"].as_f64().unwrap_or(f64::NEG_INFINITY);
            let median = r["medianLevel"].as_f64().unwrap_or(0.0);
            let packets = r["inbound"]["packetsReceived"].as_u64().unwrap_or(0);
            if (peak - freq).abs() < 30.0 && level - median > 20.0 && packets > 0 {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "the browser does not hear {freq} Hz on call {call}: {r}"
            );
        }
    }
}

impl Drop for BrowserPhone {
    fn drop(&mut self) {
        // node, and the Chromium it started, are in their own process group.
        // playwright may wait for Chromium to close: TERM, a moment, then KILL.
        let pgid = self.child.id() as i32;
        let kill = |sig: &str| {
            let _ = Command::new("kill")
                .args([sig, "--", &format!("-{pgid}")])
                .stderr(Stdio::null())
                .status();
        };
        kill("-TERM");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        kill("-KILL");
        let _ = self.child.wait();
    }
}
