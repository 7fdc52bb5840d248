// Headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) for the browser tests' drivers
// (demo-page.cjs, browser-phone.cjs), launched by playwright-core with one set of flags: no
// sandbox, GPU, QUIC or background traffic. softphone.cjs launches it with the same flags through
// puppeteer-core (browsers.cjs).
"use strict";
const { chromium } = require("playwright-core");

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const BASE_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// For the pages that make calls: a fake microphone granted without asking, audio played without a
// gesture, and WebRTC over loopback (the only interface where the call tests run: a network
// namespace of their own).
const MEDIA_ARGS = [
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
  "--allow-loopback-in-peer-connection",
  "--autoplay-policy=no-user-gesture-required",
];

// The fake microphone plays this WAV file.
const fakeAudio = (wav) => `--use-file-for-fake-audio-capture=${wav}`;

// A persistent context in `profile` with BASE_ARGS and `args`; `options` go to playwright.
function launch(profile, args = [], options = {}) {
  return chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: 30000,
    args: [...BASE_ARGS, ...args],
    ...options,
  });
}

module.exports = { launch, executablePath, BASE_ARGS, MEDIA_ARGS, fakeAudio };
