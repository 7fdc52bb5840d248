//! The softphone page (demo.html + phone.js on the browser SDK, all served by the gateway) in a
//! real headless Chromium and a real headless Firefox (Debian `chromium` and `firefox-esr`, driven
//! by npm `puppeteer-core` from a test-local directory), against a scripted gateway side of the
//! WebSocket protocol: the page, the SDK, the WebSocket, getUserMedia, RTCPeerConnection and ICE
//! are real, the far end of each call is a second RTCPeerConnection in the page playing a tone.
//! The same steps in both browsers: see tests/gateway/softphone.cjs. (The same driver's `drive`
//! mode is for the end-to-end call tests against the real gateway.)

#[path = "gateway/harness.rs"]
mod harness;

#[path = "gateway/browser.rs"]
mod browser;

use std::process::Stdio;

use browser::{Browser, Reaper};
use harness::*;

#[test]
#[ignore = "needs headless Chromium and puppeteer-core (scripts/ci/40-gateway.sh)"]
fn softphone_page_against_a_scripted_gateway_in_headless_chromium() {
    scripted_softphone(Browser::Chromium);
}

#[test]
#[ignore = "needs headless Firefox and puppeteer-core (scripts/ci/40-gateway.sh)"]
fn softphone_page_against_a_scripted_gateway_in_headless_firefox() {
    scripted_softphone(Browser::Firefox);
}

/// Walks softphone.cjs's scripted steps through the page served by a real gateway in `browser`.
fn scripted_softphone(browser: Browser) {
    let started = std::time::Instant::now();
    // Fails before any server starts when the browser or puppeteer-core is missing.
    browser.assert_installed();
    let gw = Gateway::start(
        "screen_pop_url = \"https://crm.example.org/clients?phone={from}&name={name}\"",
    );
    // The page's files are served with the right types, the SDK as the npm package has it.
    let (status, config) = gw.get("/config.json");
    assert_eq!(status, 200);
    assert_eq!(
        config,
        r#"{"screenPopUrl":"https://crm.example.org/clients?phone={from}&name={name}"}"#
    );
    let (status, sdk) = gw.get("/siptoken-phone.js");
    assert_eq!(status, 200);
    assert_eq!(
        sdk,
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../bindings/browser/src/siptoken-phone.js"
        ))
        .unwrap()
    );
    assert_eq!(gw.get("/phone.js").0, 200);

    let profile = tempfile::tempdir().unwrap();
    // SIPTOKEN_SOFTPHONE_SCREENSHOT=FILE.png keeps pictures of the page, one per browser
    // (FILE-chromium.png, FILE-chromium-call.png…).
    let screenshot = std::env::var("SIPTOKEN_SOFTPHONE_SCREENSHOT")
        .map(|f| f.replace(".png", &format!("-{}.png", browser.name())))
        .unwrap_or_default();
    let mut node = browser::node("softphone.cjs");
    node.arg("scripted")
        .arg(browser.name())
        .arg(format!("http://{}/", gw.addr))
        .arg(profile.path());
    if !screenshot.is_empty() {
        node.arg(&screenshot);
    }
    let child = node
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node is installed");
    // Whatever happens, node and the browser it started go away with the test.
    let _reaper = Reaper(child.id());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("scripted: all steps passed"),
        "{}\nstdout:\n{stdout}\nstderr:\n{stderr}\ngateway log:\n{}",
        out.status,
        gw.log()
    );
    print!("{stdout}");
    println!("{browser:?}: {:?}", started.elapsed());
}
