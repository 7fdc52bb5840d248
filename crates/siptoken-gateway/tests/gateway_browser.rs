//! The demo page in a real headless Chromium (Debian `chromium`, driven by npm
//! `playwright-core` from a test-local directory): paste a token, press Login, see Registered —
//! checked in Kamailio — then Logout.

#[path = "gateway/harness.rs"]
mod harness;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use harness::*;
use siptoken::Transport;

#[test]
#[ignore = "needs headless Chromium, playwright-core and Kamailio (scripts/ci/40-gateway.sh)"]
fn demo_page_logs_in_and_out_in_headless_chromium() {
    let modules = std::env::var("SIPTOKEN_NODE_MODULES").unwrap_or_else(|_| {
        format!(
            "{}/../../target/gateway-node/node_modules",
            env!("CARGO_MANIFEST_DIR")
        )
    });
    assert!(
        std::path::Path::new(&modules)
            .join("playwright-core")
            .is_dir(),
        "playwright-core is not installed in {modules} (scripts/ci/40-gateway.sh installs it)"
    );
    let kam = Kamailio::start("MD5", &[("alice", "pa55")]);
    let gw = Gateway::start("");
    let profile = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/gateway/demo-page.cjs");
    let mut node = Command::new("node")
        .arg(script)
        .arg(format!("http://{}/", gw.addr))
        .arg(token("alice", "pa55", kam.port, Transport::Udp))
        .arg(profile.path())
        .env("NODE_PATH", &modules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0)
        .spawn()
        .expect("node is installed");
    let pid = node.id();
    // Whatever happens, node and the Chromium it started go away with the test.
    let _reaper = Reaper(pid);
    let mut stdin = node.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = node.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let next = || match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(l) => l,
        Err(_) => {
            panic!("the browser did not report in time\n{}", gw.log());
        }
    };
    let line = next();
    assert_eq!(line, "REGISTERED sip:alice@sip.test (expires 600 s)");
    kam.wait_bindings("alice", 1, Duration::from_secs(2));
    stdin.write_all(b"logout\n").unwrap();
    assert_eq!(next(), "UNREGISTERED");
    kam.wait_bindings("alice", 0, Duration::from_secs(2));
    let status = node.wait().unwrap();
    assert!(status.success(), "{status}");
}

struct Reaper(u32);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0)])
            .stderr(Stdio::null())
            .status();
    }
}
