//! The gateway under test, started from its binary with a config written for the load run, and
//! what can be read from outside it: VmRSS, descriptors, `/metrics`, its log. Shared by the load
//! tools (`#[path]` module).
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::launch::{self, listening_address};
use super::procs::{loadavg, Proc};

/// The load runs' key ring (the tools issue tokens with it).
pub const KEYS: &str = "CRM.k1=6df47ad8f2f90da985fbf76635e800cf0d3ba883ad8b7d592f8f9c30e0b62ac2\n";

/// A running gateway (killed with its process group on drop).
pub struct Gateway {
    pub addr: String,
    pub proc: Proc,
    dir: PathBuf,
}

impl Gateway {
    /// Starts `binary` in `dir` with the load key ring, listening on a free loopback port, SIP
    /// on 127.0.0.1, no SRV lookups, login rate limits out of the way, plus `extra` TOML lines.
    pub fn start(dir: &Path, binary: &Path, extra: &str) -> Gateway {
        let config = format!(
            "listen = \"127.0.0.1:0\"\nkeys = \"keys.conf\"\nsip_bind = \"127.0.0.1\"\n\
             login_rate_per_minute = 1000000000\nlogin_burst = 1000000000\n\
             srv_lookup = false\n{extra}"
        );
        let log_filter =
            std::env::var("SIPTOKEN_LOAD_GATEWAY_LOG").unwrap_or_else(|_| "warn".into());
        let mut child = launch::command(binary, dir, KEYS, &config)
            .env("SIPTOKEN_GATEWAY_LOG", log_filter)
            .spawn()
            .expect("the gateway binary runs");
        let stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining stdout so the gateway never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
        let addr = listening_address(&line)
            .unwrap_or_else(|| {
                panic!(
                    "gateway did not start: {line:?}\n{}",
                    std::fs::read_to_string(dir.join("gateway.log")).unwrap_or_default()
                )
            })
            .to_owned();
        Gateway {
            addr,
            proc,
            dir: dir.to_owned(),
        }
    }

    /// How many file descriptors the gateway has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.proc.pid()))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// VmRSS in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.proc.pid()))
            .expect("the gateway is running");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// `/metrics` as text (empty when the gateway does not answer).
    fn metrics_text(&self) -> String {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(&self.addr) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body
    }

    /// One metric series from `/metrics` (0 when absent).
    pub fn metric(&self, series: &str) -> f64 {
        self.metrics_text()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// The cumulative buckets `(le, count)` of histogram `name` for `labels` (written as in
    /// the exposition, `direction="to_sip"`), `+Inf` as infinity, in order.
    pub fn histogram(&self, name: &str, labels: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{{labels},le=\"");
        self.metrics_text()
            .lines()
            .filter_map(|l| {
                let (le, count) = l.strip_prefix(&prefix)?.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.parse().ok()?))
            })
            .collect()
    }

    /// (lines in the gateway's log, lines of them at DEBUG or TRACE).
    pub fn log_lines(&self) -> (usize, usize) {
        let log = std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default();
        let verbose = log
            .lines()
            .filter(|l| l.contains(" DEBUG ") || l.contains(" TRACE "))
            .count();
        (log.lines().count(), verbose)
    }

    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The end of `tool`'s report: the size of the gateway's log (its tail when the run
    /// failed), the load directory `tmp` kept (not deleted) when `keep`, and the verdict line.
    pub fn report_end(&self, tool: &str, ok: bool, tmp: tempfile::TempDir, keep: bool) {
        let (lines, verbose) = self.log_lines();
        println!("gateway log: {lines} lines, {verbose} of them at DEBUG or TRACE");
        if !ok {
            println!("gateway log (tail):\n{}", self.log_tail());
        }
        if keep {
            println!("load directory kept: {}", tmp.keep().display());
        }
        println!(
            "{tool}: {} (load average {})",
            if ok { "ok" } else { "FAILED" },
            loadavg()
        );
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }
}
