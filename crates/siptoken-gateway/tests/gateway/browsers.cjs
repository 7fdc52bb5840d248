// Headless Chromium or Firefox for the softphone driver (softphone.cjs), both launched by npm
// puppeteer-core (installed test-locally by scripts/ci/40-gateway.sh, never a browser download):
// Chromium over CDP (Debian's /usr/bin/chromium, or $CHROMIUM, with chromium.cjs's flags), Firefox
// over WebDriver BiDi (Debian's /usr/bin/firefox-esr, or $FIREFOX). Either way the page gets a fake
// microphone playing a sine of a known frequency, granted without asking, audio that plays without
// a gesture, and WebRTC host candidates on loopback (the call tests run where loopback is the only
// interface).
"use strict";
const puppeteer = require("puppeteer-core");
const chromium = require("./chromium.cjs");

const BROWSERS = ["chromium", "firefox"];

// Firefox's preferences for the same. Found by trying Firefox 153 ESR here (headless, no sound
// server, a network namespace with loopback only):
const firefoxPrefs = (hz) => ({
  // Fake microphone (and camera), no permission prompt. The fake microphone is a sine at
  // media.navigator.audio.fake_frequency Hz (default 1000; measured 1001 Hz, one 5.4 Hz bin off).
  "media.navigator.streams.fake": true,
  "media.navigator.permission.disabled": true,
  "media.navigator.audio.fake_frequency": hz,
  // Without an audio device (no PulseAudio/ALSA output here) an AudioContext never leaves
  // "suspended" (resume() hangs) and remote audio never plays; cubeb's mock context stands in.
  "media.cubeb.force_mock_context": true,
  // Let the SDK's <audio> play the far end without a user gesture.
  "media.autoplay.default": 0,
  // ICE on loopback, both needed. Firefox gathers no loopback candidates unless told to
  // (Chromium: --allow-loopback-in-peer-connection). And a page Firefox counts as neither
  // capturing nor permitted (its fake devices do not count, nor does permission.disabled) gets
  // only the default route's address, mDNS-obfuscated: where loopback is the only interface
  // there is none, gathering fails and the offer has no candidates. A remembered microphone
  // permission (what an operator's "Remember this decision" stores) lifts both, as capturing a
  // real microphone does.
  "media.peerconnection.ice.loopback": true,
  "permissions.default.microphone": 1,
  // No background traffic (updates, telemetry, remote settings, captive portal checks).
  "app.update.enabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "toolkit.telemetry.reportingpolicy.firstRun": false,
});

/**
 * Launches `browser` ("chromium" | "firefox") with its profile in `profile`; the fake microphone
 * plays `audio.hz` Hz (Firefox) or the WAV file `audio.wav` (Chromium; its own beep without one).
 * Resolves to a puppeteer Browser.
 */
function launch(browser, profile, audio = {}, viewport = { width: 520, height: 1100 }) {
  const common = { headless: true, userDataDir: profile, defaultViewport: viewport, timeout: 30000, protocolTimeout: 60000 };
  if (browser === "chromium") {
    const args = [...chromium.BASE_ARGS, ...chromium.MEDIA_ARGS];
    if (audio.wav) args.push(chromium.fakeAudio(audio.wav));
    return puppeteer.launch({ ...common, browser: "chrome", executablePath: chromium.executablePath, args });
  }
  if (browser === "firefox") {
    return puppeteer.launch({
      ...common,
      browser: "firefox",
      executablePath: process.env.FIREFOX || "/usr/bin/firefox-esr",
      extraPrefsFirefox: firefoxPrefs(audio.hz || 1000),
    });
  }
  return Promise.reject(new Error(`unknown browser ${browser} (one of ${BROWSERS.join(", ")})`));
}

module.exports = { launch, BROWSERS };
