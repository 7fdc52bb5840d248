// Drives the gateway's softphone page (GET /: demo.html + phone.js on the browser SDK) in a real
// headless Chromium (Debian's /usr/bin/chromium) with playwright-core. Chromium's fake microphone
// and camera (--use-fake-device-for-media-stream) stand in for the operator's; a WAV file can
// replace the microphone's sound (SIPTOKEN_FAKE_AUDIO=FILE.wav).
//
//   node softphone.cjs scripted URL PROFILE_DIR [SCREENSHOT.png]
//       The page against a scripted gateway: playwright takes over the page's WebSocket and plays
//       the gateway's side of docs/gateway-protocol.md and issue 13, while every browser part is
//       real (SDK, getUserMedia, RTCPeerConnection, ICE gathering). A call's far end is a second
//       RTCPeerConnection in the page that answers the SDK's offer and plays a 1 kHz tone, so the
//       audio path is checked too (inbound RTP packets, the tone's frequency in the remote
//       stream). Walks through login, an outgoing call (hold, DTMF from the keypad and the
//       keyboard, mute, transfer), a missed call, an incoming call with the screen-pop link
//       answered from the keyboard, a reject, a dropped socket with reconnection on a fresh
//       token, and logout; prints one `ok …` line per step. Run by tests/softphone_browser.rs.
//
//   node softphone.cjs drive URL PROFILE_DIR
//       The page against the real gateway, one command per line on stdin, one answer line on
//       stdout (`OK …` or `ERR …`), for the end-to-end tests of calls:
//         login TOKEN | token TOKEN (paste one for the next reconnection) | state TEXT (wait)
//         call NUMBER | callstate STATE (wait for the newest call card) | incoming (wait: FROM NAME HREF)
//         status TEXT (wait for the newest call card's status line, e.g. `On hold`)
//         answer | reject | hangup | hold | unhold | mute | dtmf DIGITS | transfer TO
//         rtp (inbound RTP packets of the newest call) | tone (dominant frequency of its audio, Hz)
//         history (newest call-log entry: REASON missed|-) | logout | screenshot FILE | quit
"use strict";
const readline = require("readline");
const assert = require("node:assert/strict");
const chromium = require("./chromium.cjs");

const TIMEOUT = 15000;

async function launch(profile) {
  const args = [...chromium.MEDIA_ARGS];
  if (process.env.SIPTOKEN_FAKE_AUDIO) args.push(chromium.fakeAudio(process.env.SIPTOKEN_FAKE_AUDIO));
  return chromium.launch(profile, args, { viewport: { width: 520, height: 1100 } });
}

// --- page actions (shared by both modes) --------------------------------------------------------
const newest = ".call:last-of-type";

const ui = (page) => ({
  text: (sel) => page.textContent(sel),
  async waitText(sel, text) {
    await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent === t, [sel, text], { timeout: TIMEOUT });
  },
  state: (text) => ui(page).waitText("#state", text),
  async login(token) {
    await page.fill("#token", token);
    await page.click("#login");
  },
  async callState(state) {
    await page.waitForSelector(`${newest}[data-state="${state}"]`, { timeout: TIMEOUT });
  },
  async dial(number) {
    await page.fill("#dial", number);
    await page.press("#dial", "Enter");
  },
  async keypad(digits) {
    for (const d of digits) await page.click(`#keypad button[data-key="${d}"]`);
  },
  click: (sel) => page.click(`${newest} ${sel}`),
  async transfer(to) {
    await page.click(`${newest} .transfer`);
    await page.fill(`${newest} .transfer-to`, to);
    await page.press(`${newest} .transfer-to`, "Enter");
  },
  async incoming() {
    const card = '.call[data-state="incoming"]';
    await page.waitForSelector(card, { timeout: TIMEOUT });
    const from = await page.textContent(`${card} .peer`);
    const name = await page.textContent(`${card} .name`);
    const href = await page.$eval(`${card} .screen-pop`, (a) => (a.hidden ? "" : a.href));
    return { from, name, href };
  },
  /** Inbound RTP packets of the newest call, from getStats(). */
  rtp: () =>
    page.evaluate(async () => {
      const call = window.softphone.phone.calls.at(-1);
      let packets = 0;
      (await call.peerConnection.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "audio") packets += s.packetsReceived;
      });
      return packets;
    }),
  /** The dominant frequency (Hz) of the newest call's remote audio, over about a second. */
  tone: () =>
    page.evaluate(async () => {
      const call = window.softphone.phone.calls.at(-1);
      const ctx = new AudioContext();
      await ctx.resume();
      const analyser = ctx.createAnalyser();
      analyser.fftSize = 8192;
      ctx.createMediaStreamSource(call.remoteStream).connect(analyser);
      const sum = new Float32Array(analyser.frequencyBinCount);
      for (let i = 0; i < 10; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const data = new Float32Array(analyser.frequencyBinCount);
        analyser.getFloatFrequencyData(data);
        data.forEach((v, k) => (sum[k] += Number.isFinite(v) ? v : -200));
      }
      let best = 1;
      for (let k = 2; k < sum.length; k++) if (sum[k] > sum[best]) best = k;
      await ctx.close();
      return { hz: Math.round((best * ctx.sampleRate) / analyser.fftSize), db: Math.round(sum[best] / 10) };
    }),
  async history() {
    return page.$eval("#history li:first-child", (li) => `${li.dataset.reason} ${li.classList.contains("missed") ? "missed" : "-"}`);
  },
});

// --- scripted mode --------------------------------------------------------------------------------
/** The gateway's side of the protocol, scripted: messages from the page queue up for next(). */
class ScriptedGateway {
  constructor(page) {
    this.page = page;
    this.queue = [];
    this.waiters = [];
    this.sockets = 0;
  }

  async attach() {
    await this.page.routeWebSocket(/\/ws$/, (ws) => {
      this.ws = ws;
      this.sockets++;
      ws.onMessage((text) => this.push(JSON.parse(text)));
    });
  }

  push(m) {
    const i = this.waiters.findIndex((w) => w.type === m.type);
    if (i >= 0) this.waiters.splice(i, 1)[0].resolve(m);
    else this.queue.push(m);
  }

  /** The next message of this type from the page. */
  next(type) {
    const i = this.queue.findIndex((m) => m.type === type);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { type, resolve };
      this.waiters.push(w);
      setTimeout(() => reject(new Error(`the page sent no ${type} in time`)), TIMEOUT);
    });
  }

  send(m) {
    this.ws.send(JSON.stringify(m));
  }

  /** Answers an offer as the far end: an RTCPeerConnection in the page playing a 1 kHz tone. */
  async media(call, offer) {
    const sdp = await this.page.evaluate(async (offerSdp) => {
      const pc = new RTCPeerConnection();
      (window.farEnds ||= []).push(pc);
      const ctx = new AudioContext();
      await ctx.resume();
      const osc = ctx.createOscillator();
      osc.frequency.value = 1000;
      const out = ctx.createMediaStreamDestination();
      osc.connect(out);
      osc.start();
      for (const t of out.stream.getAudioTracks()) pc.addTrack(t, out.stream);
      await pc.setRemoteDescription({ type: "offer", sdp: offerSdp });
      await pc.setLocalDescription(await pc.createAnswer());
      await new Promise((r) => {
        if (pc.iceGatheringState === "complete") return r();
        pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && r());
        setTimeout(r, 3000);
      });
      return pc.localDescription.sdp;
    }, offer);
    this.send({ type: "media", call, sdp });
  }
}

async function scripted(url, profile, screenshot) {
  const context = await launch(profile);
  const aor = "sip:crm1@sip.example.org";
  try {
    const page = context.pages()[0] || (await context.newPage());
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const gw = new ScriptedGateway(page);
    await gw.attach();
    const u = ui(page);
    await page.goto(url, { timeout: TIMEOUT });
    assert.equal(await u.text("#state"), "Unregistered");
    const step = (what) => console.log(`ok ${what}`);

    // Login: the pasted token goes out once, and the field is emptied (single use).
    await u.login("CRM:v1.k1.first");
    assert.deepEqual(await gw.next("login"), { type: "login", token: "CRM:v1.k1.first" });
    gw.send({ type: "registering", aor });
    gw.send({ type: "registered", aor, expires: 600 });
    await u.state("Registered");
    assert.equal(await u.text("#aor"), `${aor} (expires 600 s)`);
    assert.equal(await page.inputValue("#token"), "");
    step("login: one login message with the pasted token; Registered");

    // Outgoing call: the offer goes out whole (ICE gathered, G.711 offered).
    await u.dial("+15551234");
    const call = await gw.next("call");
    assert.equal(call.to, "+15551234");
    assert.match(call.call, /^[A-Za-z0-9_.-]{1,64}$/);
    assert.match(call.sdp, /^m=audio /m);
    assert.match(call.sdp, /a=rtpmap:0 PCMU\/8000/);
    assert.match(call.sdp, /a=rtpmap:8 PCMA\/8000/);
    assert.match(call.sdp, /^a=candidate:/m, "the offer carries its ICE candidates (no trickle)");
    await u.callState("connecting");
    gw.send({ type: "ringing", call: call.call });
    await u.callState("ringing");
    assert.equal(await u.text(`${newest} .status`), "Ringing…");
    await gw.media(call.call, call.sdp);
    gw.send({ type: "answered", call: call.call });
    await u.callState("answered");
    step("outgoing call: complete offer with PCMU/PCMA and candidates; ringing; answered");

    await page.waitForFunction(async () => {
      const pc = window.softphone.phone.calls.at(-1).peerConnection;
      let n = 0;
      (await pc.getStats()).forEach((s) => s.type === "inbound-rtp" && (n += s.packetsReceived));
      return n > 20;
    }, null, { timeout: TIMEOUT, polling: 200 });
    const tone = await u.tone();
    assert.ok(Math.abs(tone.hz - 1000) <= 15, `remote audio peaks at ${tone.hz} Hz, not 1000`);
    await u.waitText(`${newest} .timer`, "00:02");
    step(`outgoing call: audio flows (${await u.rtp()} RTP packets in, tone at ${tone.hz} Hz), timer runs`);

    await u.click(".hold");
    assert.deepEqual(await gw.next("hold"), { type: "hold", call: call.call });
    gw.send({ type: "held", call: call.call, by: "local" });
    await u.waitText(`${newest} .hold`, "Resume");
    assert.equal(await page.getAttribute(`${newest} .hold`, "aria-pressed"), "true");
    assert.equal(await u.text(`${newest} .status`), "On hold");
    await u.click(".hold");
    assert.deepEqual(await gw.next("unhold"), { type: "unhold", call: call.call });
    gw.send({ type: "resumed", call: call.call, by: "local" });
    await u.waitText(`${newest} .hold`, "Hold");
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, "-call.png"), fullPage: true });
    step("hold and resume");

    await u.keypad("12#");
    for (const d of "12#") assert.deepEqual(await gw.next("dtmf"), { type: "dtmf", call: call.call, digits: d });
    await page.focus("body");
    await page.keyboard.press("5");
    assert.deepEqual(await gw.next("dtmf"), { type: "dtmf", call: call.call, digits: "5" });
    step("DTMF from the keypad and from the keyboard");

    await u.click(".mute");
    assert.equal(await page.getAttribute(`${newest} .mute`, "aria-pressed"), "true");
    assert.equal(await page.evaluate(() => window.softphone.phone.calls.at(-1).localStream.getAudioTracks()[0].enabled), false);
    await u.click(".mute");
    step("mute and unmute (the microphone track, nothing sent)");

    await u.transfer("1003");
    assert.deepEqual(await gw.next("transfer"), { type: "transfer", call: call.call, to: "1003" });
    gw.send({ type: "transferring", call: call.call });
    gw.send({ type: "ended", call: call.call, reason: "transferred" });
    await page.waitForSelector(`#history li[data-call="${call.call}"][data-reason="transferred"]`, { timeout: TIMEOUT });
    step("blind transfer: transferring, then ended transferred in the call log");

    // A missed call: the caller gives up before anyone answers.
    gw.send({ type: "incomingCall", call: "in-1", aor, from: "sip:+4930555@pbx.example.org" });
    await u.incoming();
    gw.send({ type: "ended", call: "in-1", reason: "cancelled" });
    await page.waitForSelector('#history li.missed[data-call="in-1"]', { timeout: TIMEOUT });
    assert.equal(await u.text("#missed"), "1");
    assert.equal(await page.getAttribute('#history li[data-call="in-1"] a', "href"), "https://crm.example.org/clients?phone=%2B4930555&name=");
    await page.waitForSelector('.call[data-call="in-1"]', { state: "detached", timeout: TIMEOUT });
    step("missed call: stands out in the call log");

    // An incoming call: banner, screen pop, answered from the keyboard.
    gw.send({ type: "incomingCall", call: "in-2", aor, from: "sip:+4930123@pbx.example.org", displayName: "ACME Corp" });
    const banner = await u.incoming();
    assert.deepEqual(banner, {
      from: "+4930123", name: "ACME Corp",
      href: "https://crm.example.org/clients?phone=%2B4930123&name=ACME%20Corp",
    });
    assert.equal(await page.evaluate(() => document.activeElement.className), "answer go", "focus moves to Answer");
    if (screenshot) await page.screenshot({ path: screenshot, fullPage: true });
    await page.keyboard.press("Enter");
    const answer = await gw.next("answer");
    assert.equal(answer.call, "in-2");
    assert.match(answer.sdp, /^a=candidate:/m);
    await gw.media("in-2", answer.sdp);
    gw.send({ type: "answered", call: "in-2" });
    await u.callState("answered");
    gw.send({ type: "ended", call: "in-2", reason: "remote_hangup" });
    await page.waitForSelector('#history li[data-call="in-2"][data-reason="remote_hangup"]:not(.missed)', { timeout: TIMEOUT });
    step("incoming call: banner with number, name and screen-pop link; answered with Enter; remote hangup");

    gw.send({ type: "incomingCall", call: "in-3", aor, from: "sip:100@pbx.example.org" });
    await u.incoming();
    await page.click('.call[data-state="incoming"] .reject');
    assert.deepEqual(await gw.next("reject"), { type: "reject", call: "in-3" });
    gw.send({ type: "ended", call: "in-3", reason: "hangup" });
    await page.waitForSelector('#history li[data-call="in-3"]:not(.missed)', { timeout: TIMEOUT });
    step("incoming call rejected: reject sent, not counted as missed");

    // The socket drops: reconnecting, and the next attempt logs in with a fresh pasted token.
    await page.fill("#token", "CRM:v1.k1.second");
    await gw.ws.close({ code: 1001, reason: "going away" });
    await u.state("Reconnecting…");
    assert.deepEqual(await gw.next("login"), { type: "login", token: "CRM:v1.k1.second" });
    assert.equal(gw.sockets, 2);
    gw.send({ type: "registered", aor, expires: 600 });
    await u.state("Registered");
    step("dropped socket: Reconnecting…, then a new socket logs in with the fresh token");

    await page.click("#logout");
    await gw.next("logout");
    gw.send({ type: "unregistered", aor });
    await u.state("Unregistered");
    step("logout: Unregistered");
    assert.deepEqual(errors, [], "no uncaught page errors");
    console.log("scripted: all steps passed");
  } finally {
    await context.close();
  }
}

// --- drive mode (the real gateway) ----------------------------------------------------------------
async function drive(url, profile) {
  const context = await launch(profile);
  try {
    const page = context.pages()[0] || (await context.newPage());
    await page.goto(url, { timeout: TIMEOUT });
    const u = ui(page);
    const commands = {
      login: (t) => u.login(t),
      token: (t) => page.fill("#token", t),
      state: (...words) => u.state(words.join(" ")),
      call: (n) => u.dial(n),
      callstate: (s) => u.callState(s),
      status: (...words) => u.waitText(`${newest} .status`, words.join(" ")),
      incoming: async () => Object.values(await u.incoming()).join(" "),
      answer: () => page.click('.call[data-state="incoming"] .answer'),
      reject: () => page.click('.call[data-state="incoming"] .reject'),
      hangup: () => u.click(".hangup"),
      hold: () => u.click(".hold"),
      unhold: () => u.click(".hold"),
      mute: () => u.click(".mute"),
      dtmf: (d) => u.keypad(d),
      transfer: (to) => u.transfer(to),
      rtp: () => u.rtp(),
      tone: async () => (await u.tone()).hz,
      history: () => u.history(),
      logout: () => page.click("#logout"),
      screenshot: (f) => page.screenshot({ path: f, fullPage: true }),
    };
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      const [cmd, ...args] = line.trim().split(/\s+/);
      if (!cmd) continue;
      if (cmd === "quit") break;
      const f = commands[cmd];
      try {
        if (!f) throw new Error(`unknown command ${cmd}`);
        const out = await f(...args);
        console.log(`OK${out === undefined ? "" : ` ${out}`}`);
      } catch (e) {
        console.log(`ERR ${String(e.message || e).split("\n")[0]}`);
      }
    }
    rl.close();
  } finally {
    await context.close();
  }
}

const [mode, url, profile, screenshot] = process.argv.slice(2);
const run = mode === "scripted" ? scripted(url, profile, screenshot) : mode === "drive" ? drive(url, profile) : Promise.reject(new Error(`unknown mode ${mode}`));
run.then(() => process.exit(0), (e) => { console.error(`softphone test failed: ${e.stack || e}`); process.exit(1); });
