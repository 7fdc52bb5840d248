// Drives the gateway's softphone page (GET /: demo.html + phone.js on the browser SDK) in a real
// headless Chromium or Firefox (Debian's /usr/bin/chromium or /usr/bin/firefox-esr), launched by
// puppeteer-core (browsers.cjs): the same steps in both browsers. Each browser's fake microphone
// stands in for the operator's: a sine of SIPTOKEN_FAKE_HZ Hz in Firefox, the WAV file
// SIPTOKEN_FAKE_AUDIO in Chromium (its own beep without one).
//
//   node softphone.cjs scripted chromium|firefox URL PROFILE_DIR [SCREENSHOT.png]
//       The page against a scripted gateway: the page is loaded through a loopback server of this
//       script that relays every GET to the gateway at URL and answers /ws itself, playing the
//       gateway's side of docs/gateway-protocol.md and issue 13 over a real WebSocket, while every
//       browser part is real (SDK, WebSocket, getUserMedia, RTCPeerConnection, ICE gathering). A
//       call's far end is a second RTCPeerConnection in the page that answers the SDK's offer and
//       plays a 1 kHz tone, so the audio path is checked too (inbound RTP packets, the tone's
//       frequency in the remote stream). Walks through login, an outgoing call (hold, DTMF from
//       the keypad and the keyboard, mute, transfer), a missed call, an incoming call with the
//       screen-pop link answered from the keyboard, a reject, a dropped socket with reconnection
//       on a fresh token, and logout; prints one `ok …` line per step. Run by
//       tests/softphone_browser.rs.
//
//   node softphone.cjs drive chromium|firefox URL PROFILE_DIR
//       The page against the real gateway, one command per line on stdin, one answer line on
//       stdout (`OK …` or `ERR …`), for the end-to-end tests of calls:
//         login TOKEN | token TOKEN (paste one for the next reconnection) | state TEXT (wait)
//         call NUMBER | callstate STATE (wait for the newest call card) | incoming (wait: FROM NAME HREF)
//         status TEXT (wait for the newest call card's status line, e.g. `On hold`)
//         answer | reject | hangup | hold | unhold | mute | dtmf DIGITS | transfer TO
//         rtp (inbound RTP packets of the newest call) | tone (dominant frequency of its audio, Hz)
//         history (newest call-log entry: REASON missed|-) | logout | screenshot FILE | quit
"use strict";
const http = require("http");
const readline = require("readline");
const assert = require("node:assert/strict");
const { WebSocketServer } = require("ws");
const browsers = require("./browsers.cjs");

const TIMEOUT = 15000;

async function launch(browser, profile) {
  const hz = Number(process.env.SIPTOKEN_FAKE_HZ) || undefined;
  const b = await browsers.launch(browser, profile, { hz, wav: process.env.SIPTOKEN_FAKE_AUDIO });
  const page = (await b.pages())[0] || (await b.newPage());
  return { browser: b, page };
}

// --- page actions (shared by both modes and both browsers) -------------------------------------
const newest = ".call:last-of-type";

const ui = (page) => {
  const u = {
    text: (sel) => page.$eval(sel, (e) => e.textContent),
    attr: (sel, name) => page.$eval(sel, (e, n) => e.getAttribute(n), name),
    value: (sel) => page.$eval(sel, (e) => e.value),
    /** Sets an input's value as typing would end (one input event). */
    fill: (sel, value) =>
      page.$eval(sel, (e, v) => {
        e.value = v;
        e.dispatchEvent(new Event("input", { bubbles: true }));
      }, value),
    async press(sel, key) {
      await page.focus(sel);
      await page.keyboard.press(key);
    },
    async waitFor(sel) {
      await page.waitForSelector(sel, { timeout: TIMEOUT });
    },
    async gone(sel) {
      await page.waitForSelector(sel, { hidden: true, timeout: TIMEOUT });
    },
    async waitText(sel, text) {
      await page.waitForFunction((s, t) => document.querySelector(s)?.textContent === t, { timeout: TIMEOUT, polling: 100 }, sel, text);
    },
    state: (text) => u.waitText("#state", text),
    async login(token) {
      await u.fill("#token", token);
      await page.click("#login");
    },
    callState: (state) => u.waitFor(`${newest}[data-state="${state}"]`),
    async dial(number) {
      await u.fill("#dial", number);
      await u.press("#dial", "Enter");
    },
    async keypad(digits) {
      for (const d of digits) await page.click(`#keypad button[data-key="${d}"]`);
    },
    click: (sel) => page.click(`${newest} ${sel}`),
    async transfer(to) {
      await page.click(`${newest} .transfer`);
      await u.fill(`${newest} .transfer-to`, to);
      await u.press(`${newest} .transfer-to`, "Enter");
    },
    async incoming() {
      const card = '.call[data-state="incoming"]';
      await u.waitFor(card);
      const from = await u.text(`${card} .peer`);
      const name = await u.text(`${card} .name`);
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
    history: () => page.$eval("#history li:first-child", (li) => `${li.dataset.reason} ${li.classList.contains("missed") ? "missed" : "-"}`),
  };
  return u;
};

// --- scripted mode --------------------------------------------------------------------------------
/**
 * The gateway's side of the protocol, scripted, on a real WebSocket: a loopback HTTP server that
 * relays every GET to the gateway (so the page, its SDK and config are the gateway's) and takes
 * the page's /ws itself. Messages from the page queue up for next().
 */
class ScriptedGateway {
  constructor(page, gatewayUrl) {
    this.page = page;
    this.gatewayUrl = gatewayUrl;
    this.queue = [];
    this.waiters = [];
    this.sockets = 0;
  }

  /** Starts listening; resolves to the URL of the page. */
  async listen() {
    this.server = http.createServer(async (req, res) => {
      try {
        const r = await fetch(new URL(req.url, this.gatewayUrl));
        const headers = {};
        r.headers.forEach((v, k) => !["content-length", "content-encoding", "transfer-encoding", "connection"].includes(k) && (headers[k] = v));
        res.writeHead(r.status, headers);
        res.end(Buffer.from(await r.arrayBuffer()));
      } catch (e) {
        res.writeHead(502);
        res.end(String(e));
      }
    });
    this.wss = new WebSocketServer({ server: this.server, path: "/ws" });
    this.wss.on("connection", (ws) => {
      this.ws = ws;
      this.sockets++;
      ws.on("message", (data) => this.push(JSON.parse(String(data))));
    });
    await new Promise((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${this.server.address().port}/`;
  }

  close() {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    this.server.close();
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

async function scripted(browser, url, profile, screenshot) {
  const { browser: b, page } = await launch(browser, profile);
  const aor = "sip:crm1@sip.example.org";
  const gw = new ScriptedGateway(page, url);
  try {
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    const u = ui(page);
    await page.goto(await gw.listen(), { timeout: TIMEOUT });
    assert.equal(await u.text("#state"), "Unregistered");
    const step = (what) => console.log(`ok ${what}`);

    // Login: the pasted token goes out once, and the field is emptied (single use).
    await u.login("CRM:v1.k1.first");
    assert.deepEqual(await gw.next("login"), { type: "login", token: "CRM:v1.k1.first" });
    gw.send({ type: "registering", aor });
    gw.send({ type: "registered", aor, expires: 600 });
    await u.state("Registered");
    assert.equal(await u.text("#aor"), `${aor} (expires 600 s)`);
    assert.equal(await u.value("#token"), "");
    step("login: one login message with the pasted token; Registered");

    // Outgoing call: the offer goes out whole (ICE gathered, G.711 offered).
    await u.dial("+15551234");
    const call = await gw.next("call");
    assert.equal(call.to, "+15551234");
    assert.match(call.call, /^[A-Za-z0-9_.-]{1,64}$/);
    assert.match(call.sdp, /^m=audio /m);
    assert.match(call.sdp, /a=rtpmap:0 PCMU\/8000/);
    assert.match(call.sdp, /a=rtpmap:8 PCMA\/8000/);
    assert.match(call.sdp, /^a=candidate:/m, `the offer carries its ICE candidates (no trickle):\n${call.sdp}`);
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
    }, { timeout: TIMEOUT, polling: 200 });
    const tone = await u.tone();
    assert.ok(Math.abs(tone.hz - 1000) <= 15, `remote audio peaks at ${tone.hz} Hz, not 1000`);
    await u.waitText(`${newest} .timer`, "00:02");
    step(`outgoing call: audio flows (${await u.rtp()} RTP packets in, tone at ${tone.hz} Hz), timer runs`);

    await u.click(".hold");
    assert.deepEqual(await gw.next("hold"), { type: "hold", call: call.call });
    gw.send({ type: "held", call: call.call, by: "local" });
    await u.waitText(`${newest} .hold`, "Resume");
    assert.equal(await u.attr(`${newest} .hold`, "aria-pressed"), "true");
    assert.equal(await u.text(`${newest} .status`), "On hold");
    await u.click(".hold");
    assert.deepEqual(await gw.next("unhold"), { type: "unhold", call: call.call });
    gw.send({ type: "resumed", call: call.call, by: "local" });
    await u.waitText(`${newest} .hold`, "Hold");
    if (screenshot) await page.screenshot({ path: screenshot.replace(/\.png$/, "-call.png"), fullPage: true });
    step("hold and resume");

    await u.keypad("12#");
    for (const d of "12#") assert.deepEqual(await gw.next("dtmf"), { type: "dtmf", call: call.call, digits: d });
    await page.evaluate(() => document.activeElement?.blur());
    await page.keyboard.press("5");
    assert.deepEqual(await gw.next("dtmf"), { type: "dtmf", call: call.call, digits: "5" });
    step("DTMF from the keypad and from the keyboard");

    await u.click(".mute");
    assert.equal(await u.attr(`${newest} .mute`, "aria-pressed"), "true");
    assert.equal(await page.evaluate(() => window.softphone.phone.calls.at(-1).localStream.getAudioTracks()[0].enabled), false);
    await u.click(".mute");
    step("mute and unmute (the microphone track, nothing sent)");

    await u.transfer("1003");
    assert.deepEqual(await gw.next("transfer"), { type: "transfer", call: call.call, to: "1003" });
    gw.send({ type: "transferring", call: call.call });
    gw.send({ type: "ended", call: call.call, reason: "transferred" });
    await u.waitFor(`#history li[data-call="${call.call}"][data-reason="transferred"]`);
    step("blind transfer: transferring, then ended transferred in the call log");

    // A missed call: the caller gives up before anyone answers.
    gw.send({ type: "incomingCall", call: "in-1", aor, from: "sip:+4930555@pbx.example.org" });
    await u.incoming();
    gw.send({ type: "ended", call: "in-1", reason: "cancelled" });
    await u.waitFor('#history li.missed[data-call="in-1"]');
    assert.equal(await u.text("#missed"), "1");
    assert.equal(await u.attr('#history li[data-call="in-1"] a', "href"), "https://crm.example.org/clients?phone=%2B4930555&name=");
    await u.gone('.call[data-call="in-1"]');
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
    // Headless Firefox under WebDriver BiDi delivers a synthesized Enter (or Space) to a focused
    // button as trusted keydown/keypress/keyup but never activates it (a bare page with one button
    // does the same: the document never has focus there, nor matches :focus), so Firefox answers
    // with a click on the button the focus moved to (asserted above).
    if (browser === "firefox") await page.click('.call[data-state="incoming"] .answer');
    else await page.keyboard.press("Enter");
    const answer = await gw.next("answer");
    assert.equal(answer.call, "in-2");
    assert.match(answer.sdp, /^a=candidate:/m);
    await gw.media("in-2", answer.sdp);
    gw.send({ type: "answered", call: "in-2" });
    await u.callState("answered");
    gw.send({ type: "ended", call: "in-2", reason: "remote_hangup" });
    await u.waitFor('#history li[data-call="in-2"][data-reason="remote_hangup"]:not(.missed)');
    step(`incoming call: banner with number, name and screen-pop link; focus on Answer; answered with ${browser === "firefox" ? "a click" : "Enter"}; remote hangup`);

    gw.send({ type: "incomingCall", call: "in-3", aor, from: "sip:100@pbx.example.org" });
    await u.incoming();
    await page.click('.call[data-state="incoming"] .reject');
    assert.deepEqual(await gw.next("reject"), { type: "reject", call: "in-3" });
    gw.send({ type: "ended", call: "in-3", reason: "hangup" });
    await u.waitFor('#history li[data-call="in-3"]:not(.missed)');
    step("incoming call rejected: reject sent, not counted as missed");

    // The socket drops: reconnecting, and the next attempt logs in with a fresh pasted token.
    await u.fill("#token", "CRM:v1.k1.second");
    gw.ws.close(1001, "going away");
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
    console.log(`scripted: all steps passed in ${await b.version()}`);
  } catch (e) {
    // What the page showed, for the failure message.
    const shown = await page.evaluate(() => ({ status: document.querySelector("#status")?.textContent, focus: document.activeElement?.outerHTML?.slice(0, 200) })).catch(() => ({}));
    e.message += `\nthe page's status line: ${shown.status}\nfocused: ${shown.focus}`;
    throw e;
  } finally {
    gw.close();
    await b.close();
  }
}

// --- drive mode (the real gateway) ----------------------------------------------------------------
async function drive(browser, url, profile) {
  const { browser: b, page } = await launch(browser, profile);
  try {
    await page.goto(url, { timeout: TIMEOUT });
    const u = ui(page);
    const commands = {
      login: (t) => u.login(t),
      token: (t) => u.fill("#token", t),
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
    await b.close();
  }
}

const [mode, browser, url, profile, screenshot] = process.argv.slice(2);
const modes = { scripted, drive };
const run = modes[mode] ? modes[mode](browser, url, profile, screenshot) : Promise.reject(new Error(`unknown mode ${mode}`));
run.then(() => process.exit(0), (e) => { console.error(`softphone test failed: ${e.stack || e}`); process.exit(1); });
