// A browser phone in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core), remote-controlled by the call tests (tests/gateway/browser.rs).
//
//   node browser-phone.cjs PAGE_URL PROFILE_DIR TONE_WAV
//
// Chromium's fake microphone plays TONE_WAV (a sine the test wrote), so what the far end hears
// is known. The page speaks the gateway's WebSocket protocol (docs/gateway-protocol.md) itself,
// with one RTCPeerConnection per call: no SIP in the browser.
//
// stdin: one JSON command per line, {"id": N, "cmd": …}; stdout: one JSON object per line,
// either {"reply": N, …result} / {"reply": N, "error": "…"} or {"event": <gateway message>}
// for every message the gateway sends, or {"closed": CODE} when the WebSocket closes.
// Commands:
//   {"cmd": "connect", "url": "ws://…/ws"}
//   {"cmd": "send", "msg": {…}}                      any client message, verbatim
//   {"cmd": "call", "call": ID, "to": "…"[, "aor": …]} makes an offer, sends {"type":"call"}
//   {"cmd": "answer", "call": ID}                     makes an offer, sends {"type":"answer"}
//   {"cmd": "listen", "call": ID, "freq": HZ, "ms": N} the far end's audio: spectrum peak and
//                                                     the level at HZ (WebAudio analyser on the
//                                                     remote track), getStats inbound-rtp
//   {"cmd": "mute", "call": ID, "on": bool}            stops / restarts sending the microphone
"use strict";
const readline = require("readline");
const { launch, MEDIA_ARGS, fakeAudio } = require("./chromium.cjs");

const [pageUrl, profile, toneWav] = process.argv.slice(2);

// Runs inside the page.
function installPhone() {
  const calls = new Map();
  let ws = null;
  let mic = null;
  const emit = (o) => window.__emit(o);

  async function microphone() {
    if (!mic) {
      mic = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    }
    return mic;
  }

  async function offer(id) {
    if (calls.has(id)) throw new Error("call " + id + " exists");
    const pc = new RTCPeerConnection({ iceServers: [] });
    const stream = await microphone();
    for (const t of stream.getAudioTracks()) pc.addTrack(t.clone(), stream);
    const c = { pc, remote: null, element: null };
    pc.ontrack = (ev) => {
      c.remote = ev.streams[0] || new MediaStream([ev.track]);
      // Chromium routes remote WebRTC audio into WebAudio only while a media element plays it.
      const a = new Audio();
      a.muted = true;
      a.srcObject = c.remote;
      a.play().catch(() => {});
      c.element = a;
    };
    calls.set(id, c);
    await pc.setLocalDescription(await pc.createOffer());
    // No trickle: the gateway is ICE-lite and takes the offer with its candidates.
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
      setTimeout(resolve, 3000);
    });
    return pc.localDescription.sdp;
  }

  async function onMessage(m) {
    const c = m.call !== undefined ? calls.get(m.call) : undefined;
    try {
      if (m.type === "media" && c) {
        await c.pc.setRemoteDescription({ type: "answer", sdp: m.sdp });
      } else if (m.type === "ended" && c) {
        c.pc.close();
        calls.delete(m.call);
      }
    } catch (e) {
      emit({ pageError: String(e) });
    }
    emit({ event: m });
  }

  async function listen(id, freq, ms) {
    const c = calls.get(id);
    if (!c) throw new Error("no call " + id);
    const deadline = Date.now() + 5000;
    while (!c.remote && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (!c.remote) throw new Error("no remote track on call " + id);
    const ctx = new AudioContext();
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 8192;
    analyser.smoothingTimeConstant = 0.5;
    ctx.createMediaStreamSource(c.remote).connect(analyser);
    await new Promise((r) => setTimeout(r, ms));
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    const binHz = ctx.sampleRate / analyser.fftSize;
    let peak = 1;
    for (let i = 2; i < bins.length; i++) if (bins[i] > bins[peak]) peak = i;
    const at = Math.round(freq / binHz);
    let levelAtFreq = -Infinity;
    for (let i = Math.max(1, at - 2); i <= Math.min(bins.length - 1, at + 2); i++) {
      levelAtFreq = Math.max(levelAtFreq, bins[i]);
    }
    const sorted = Array.from(bins).filter(Number.isFinite).sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : -Infinity;
    await ctx.close();
    let inbound = null;
    (await c.pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") {
        inbound = {
          packetsReceived: s.packetsReceived,
          packetsLost: s.packetsLost,
          totalAudioEnergy: s.totalAudioEnergy,
          audioLevel: s.audioLevel,
        };
      }
    });
    return { peakHz: peak * binHz, peakLevel: bins[peak], levelAtFreq, medianLevel: median, inbound };
  }

  window.phone = async (cmd) => {
    switch (cmd.cmd) {
      case "connect":
        await new Promise((resolve, reject) => {
          ws = new WebSocket(cmd.url);
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error("WebSocket error"));
          ws.onmessage = (e) => onMessage(JSON.parse(e.data));
          ws.onclose = (e) => emit({ closed: e.code });
        });
        return {};
      case "send":
        ws.send(JSON.stringify(cmd.msg));
        return {};
      case "call": {
        const sdp = await offer(cmd.call);
        const msg = { type: "call", call: cmd.call, to: cmd.to, sdp };
        if (cmd.aor) msg.aor = cmd.aor;
        ws.send(JSON.stringify(msg));
        return {};
      }
      case "answer": {
        const sdp = await offer(cmd.call);
        ws.send(JSON.stringify({ type: "answer", call: cmd.call, sdp }));
        return {};
      }
      case "listen":
        return await listen(cmd.call, cmd.freq, cmd.ms || 1500);
      case "mute": {
        const c = calls.get(cmd.call);
        if (!c) throw new Error("no call " + cmd.call);
        for (const s of c.pc.getSenders()) if (s.track) s.track.enabled = !cmd.on;
        return {};
      }
      default:
        throw new Error("unknown command " + cmd.cmd);
    }
  };
}

async function main() {
  const context = await launch(profile, [
    ...MEDIA_ARGS,
    fakeAudio(toneWav),
    "--disable-features=WebRtcHideLocalIpsWithMdns",
  ]);
  const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
  try {
    const page = context.pages()[0] || (await context.newPage());
    page.on("pageerror", (e) => out({ pageError: String(e) }));
    await page.exposeFunction("__emit", (o) => out(o));
    await page.goto(pageUrl, { timeout: 15000 });
    await page.evaluate(installPhone);
    out({ ready: true });
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      if (!line.trim()) continue;
      const cmd = JSON.parse(line);
      try {
        const result = await page.evaluate((c) => window.phone(c), cmd);
        out({ reply: cmd.id, ...result });
      } catch (e) {
        out({ reply: cmd.id, error: String(e && e.message ? e.message : e) });
      }
    }
  } finally {
    await context.close();
  }
}

main().then(() => process.exit(0), (e) => { console.error("browser phone failed: " + e); process.exit(1); });
