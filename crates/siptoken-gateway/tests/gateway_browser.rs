//! The demo page in a real headless Chromium (Debian `chromium`, driven by npm
//! `playwright-core` from a test-local directory): paste a token, press Login, see Registered —
//! checked in Kamailio — then Logout.

#[path = "gateway/harness.rs"]
mod harness;

#[path = "gateway/browser.rs"]
mod browser;

use std::io::Write;
use std::time::Duration;

use browser::Reaper;
use harness::*;
use siptoken::Transport;

#[test]
#[ignore = "needs headless Chromium, playwright-core and Kamailio (scripts/ci/40-gateway.sh)"]
fn demo_page_logs_in_and_out_in_headless_chromium() {
    // Fails before any server starts when playwright-core is missing.
    browser::node_modules();
    let kam = Kamailio::start("MD5", &[("alice", "pa55")]);
    let gw = Gateway::start("");
    let profile = tempfile::tempdir().unwrap();
    let (mut node, mut stdin, rx) = browser::spawn_reading(
        browser::node("demo-page.cjs")
            .arg(format!("http://{}/", gw.addr))
            .arg(token("alice", "pa55", kam.port, Transport::Udp))
            .arg(profile.path()),
        Some,
    );
    // Whatever happens, node and the Chromium it started go away with the test.
    let _reaper = Reaper(node.id());
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
