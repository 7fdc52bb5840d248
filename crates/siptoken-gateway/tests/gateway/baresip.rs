#![allow(dead_code)]

//! baresip (Debian `baresip-core`) as an independent SIP phone for the call tests: it registers
//! with the test Kamailio, answers every call by itself (`answermode=auto`), sends a sine from
//! the `ausine` module and records what it hears (`sndfile`) as WAV files the test analyses. It
//! is remote-controlled through its `ctrl_tcp` module (netstring-framed JSON: commands such as
//! `dial` and `hangup` in, responses and call events such as `CALL_ESTABLISHED`,
//! `CALL_CLOSED`, `CALL_DTMF_START` out).

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::free_port;

/// A running baresip with one account.
pub struct Baresip {
    dir: tempfile::TempDir,
    child: Child,
    ctrl: TcpStream,
    events: mpsc::Receiver<Value>,
    /// Events received but not yet taken by [`Baresip::event`].
    pending: Vec<Value>,
    /// The SIP user it registered.
    pub user: String,
}

impl Baresip {
    /// Starts baresip as `user` (display name `Test USER`, password `password`) registered at the Kamailio on
    /// 127.0.0.1:`registrar_port`, sending a `tone_hz` sine in every call. `extra` is appended
    /// to the account line (e.g. `;audio_codecs=PCMA`). Waits until it is registered.
    pub fn start(
        registrar_port: u16,
        user: &str,
        password: &str,
        tone_hz: u32,
        extra: &str,
    ) -> Baresip {
        let dir = tempfile::tempdir().unwrap();
        let rec = dir.path().join("rec");
        std::fs::create_dir(&rec).unwrap();
        let sip_port = free_port();
        let ctrl_port = free_port();
        // ausine makes 48 kHz stereo only; baresip resamples to G.711's 8 kHz mono. The player
        // is a bridge nobody reads (there is no sound card), sndfile dumps both directions.
        let config = format!(
            "sip_listen 127.0.0.1:{sip_port}\n\
             net_interface 127.0.0.1\n\
             audio_player aubridge,nil\n\
             audio_source ausine,{tone_hz}\n\
             audio_alert none\n\
             ausrc_srate 48000\n\
             auplay_srate 48000\n\
             ausrc_channels 2\n\
             auplay_channels 1\n\
             rtp_ports 30000-39999\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module aubridge.so\n\
             module sndfile.so\n\
             module account.so\n\
             module menu.so\n\
             module ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\n\
             snd_path {}\n",
            rec.display()
        );
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(
            dir.path().join("accounts"),
            format!(
                "\"Test {user}\" <sip:{user}@127.0.0.1:{registrar_port};transport=udp>;auth_pass={password};\
                 answermode=auto;regint=600{extra}\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("baresip is installed (Debian package baresip-core)");
        let deadline = Instant::now() + Duration::from_secs(10);
        let ctrl = loop {
            match TcpStream::connect(("127.0.0.1", ctrl_port)) {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => panic!(
                    "baresip's ctrl_tcp does not answer: {e}\n{}",
                    std::fs::read_to_string(dir.path().join("baresip.log")).unwrap_or_default()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let (tx, events) = mpsc::channel();
        let reader = ctrl.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut r = BufReader::new(reader);
            while let Some(frame) = read_netstring(&mut r) {
                let Ok(v) = serde_json::from_slice::<Value>(&frame) else {
                    break;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let b = Baresip {
            dir,
            child,
            ctrl,
            events,
            pending: Vec::new(),
            user: user.to_owned(),
        };
        b.wait_log("200 OK", Duration::from_secs(10));
        b
    }

    /// Runs a ctrl_tcp command (`dial`, `hangup`, `accept`, …) and returns its response.
    pub fn command(&mut self, command: &str, params: &str) -> Value {
        let body = json!({"command": command, "params": params, "token": command}).to_string();
        write!(self.ctrl, "{}:{body},", body.len()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["response"] == true => return v,
                Ok(v) => self.pending.push(v),
                Err(_) => panic!("baresip: no response to {command} {params}"),
            }
        }
    }

    /// The next event of `kind` (e.g. `CALL_ESTABLISHED`) within `timeout`.
    pub fn event(&mut self, kind: &str, timeout: Duration) -> Value {
        if let Some(i) = self.pending.iter().position(|e| e["type"] == kind) {
            return self.pending.remove(i);
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) if v["type"] == kind => return v,
                Ok(v) => self.pending.push(v),
                Err(_) => panic!(
                    "baresip: no {kind} event in {timeout:?}; got {:?}\n{}",
                    self.pending,
                    self.log()
                ),
            }
        }
    }

    /// Every event of `kind` received so far (without waiting).
    pub fn events_so_far(&mut self, kind: &str) -> Vec<Value> {
        while let Ok(v) = self.events.try_recv() {
            self.pending.push(v);
        }
        self.pending
            .iter()
            .filter(|e| e["type"] == kind)
            .cloned()
            .collect()
    }

    /// baresip's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("baresip.log")).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log after `timeout`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "baresip did not log {needle:?} in {timeout:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The WAV files of what baresip heard (`*-dec.wav`), oldest first.
    pub fn heard(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path().join("rec"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .collect();
        files.sort();
        files
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Baresip {
    /// Asserts that baresip's last recording holds at least `min_seconds` of audio and that a
    /// `freq` tone dominates more than half of its 100 ms windows; returns that share. (The
    /// including test crate also includes `gateway/audio.rs` as `audio`.)
    pub fn assert_heard(&self, freq: f64, min_seconds: f64) -> f64 {
        let file = self
            .heard()
            .pop()
            .unwrap_or_else(|| panic!("baresip recorded nothing:\n{}", self.log()));
        let (samples, rate) = read_wav(&file);
        assert_eq!(
            rate, 8000,
            "baresip records the decoded G.711 at 8 kHz: {file:?}"
        );
        let seconds = samples.len() as f64 / f64::from(rate);
        assert!(
            seconds >= min_seconds,
            "baresip heard only {seconds:.1} s ({file:?})"
        );
        let presence = crate::audio::tone_presence(&samples, freq);
        assert!(
            presence > 0.5,
            "baresip did not hear {freq} Hz: it dominates {presence:.2} of {seconds:.1} s ({file:?})"
        );
        presence
    }
}

/// One netstring (`LEN:BYTES,`), or `None` at the end of the stream.
fn read_netstring(r: &mut impl Read) -> Option<Vec<u8>> {
    let mut len = 0usize;
    let mut byte = [0u8; 1];
    loop {
        r.read_exact(&mut byte).ok()?;
        match byte[0] {
            b'0'..=b'9' => {
                len = len
                    .checked_mul(10)?
                    .checked_add((byte[0] - b'0') as usize)?
            }
            b':' => break,
            _ => return None,
        }
    }
    let mut body = vec![0u8; len + 1];
    r.read_exact(&mut body).ok()?;
    (body.pop() == Some(b',')).then_some(body)
}

/// The 16-bit PCM samples and sample rate of a WAV file (first channel), however much of it was
/// written so far (a file still being recorded has a stale length in its header).
pub fn read_wav(path: &Path) -> (Vec<i16>, u32) {
    let b = std::fs::read(path).unwrap();
    assert!(
        b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WAVE",
        "{path:?}: not a WAV file"
    );
    let (mut rate, mut channels, mut at) = (0u32, 1usize, 12usize);
    while at + 8 <= b.len() {
        let id = &b[at..at + 4];
        let len = u32::from_le_bytes(b[at + 4..at + 8].try_into().unwrap()) as usize;
        let body = at + 8;
        if id == b"fmt " {
            channels = u16::from_le_bytes([b[body + 2], b[body + 3]]) as usize;
            rate = u32::from_le_bytes(b[body + 4..body + 8].try_into().unwrap());
        } else if id == b"data" {
            let end = if len == 0 || body + len > b.len() {
                b.len()
            } else {
                body + len
            };
            let samples = b[body..end]
                .chunks_exact(2 * channels)
                .map(|f| i16::from_le_bytes([f[0], f[1]]))
                .collect();
            return (samples, rate);
        }
        at = body + len + (len & 1);
    }
    panic!("{path:?}: no data chunk");
}
