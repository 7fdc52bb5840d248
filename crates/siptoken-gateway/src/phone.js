// The gateway's demo softphone (GET /, this file is /phone.js): a CRM-style widget written on the
// browser SDK `siptoken-phone` (served as /siptoken-phone.js, the npm package's own file), so the
// page shows what an integrator's front end does with it. Settings come from /config.json
// (`screenPopUrl`, from `screen_pop_url` in the gateway configuration).
//
// The token field stands in for the CRM backend: getToken() takes the token pasted there (once:
// tokens are single use), so a reconnection after a dropped socket needs a fresh one pasted.

import { Phone } from './siptoken-phone.js';

const $ = (id) => document.getElementById(id);
let config = {};
const configLoaded = fetch('config.json')
  .then((r) => (r.ok ? r.json() : {}))
  .then((c) => (config = c || {}))
  .catch(() => {});

const STATE_TEXT = { offline: 'Unregistered', connecting: 'Connecting…', registered: 'Registered', reconnecting: 'Reconnecting…' };
const REASON_TEXT = {
  hangup: 'Hung up', remote_hangup: 'The other party hung up', busy: 'Busy', declined: 'Declined',
  no_answer: 'No answer', not_found: 'Number not found', cancelled: 'Caller hung up', unsupported_media: 'No common audio codec',
  transferred: 'Transferred', media_timeout: 'Audio stopped (media timeout)', logged_out: 'Connection lost', failed: 'Call failed',
};
const ERROR_TEXT = {
  microphone_denied: 'Microphone access was denied: allow it in the browser’s site settings.',
  microphone_not_found: 'No microphone found.',
  microphone_unavailable: 'The microphone is in use or unavailable.',
  media_unsupported: 'This page needs https:// (or localhost) for the microphone.',
  token_unavailable: 'Paste a fresh token, then press Login.',
  autoplay_blocked: 'The browser blocked the call audio: click anywhere on the page.',
};

// --- tones (the SDK's ringtone/ringback hooks), generated with WebAudio -------------------------
let audioContext = null;
const ctx = () => (audioContext ||= new AudioContext());
function toneHook(freqs, onMs, offMs) {
  const calls = new Set();
  let timer = null;
  let sounding = [];
  const beep = () => {
    const c = ctx();
    const gain = c.createGain();
    gain.gain.value = 0.06;
    gain.connect(c.destination);
    sounding = freqs.map((f) => {
      const o = c.createOscillator();
      o.frequency.value = f;
      o.connect(gain);
      o.start();
      o.stop(c.currentTime + onMs / 1000);
      return o;
    });
  };
  return {
    start(call) {
      calls.add(call);
      if (!timer) {
        beep();
        timer = setInterval(beep, onMs + offMs);
      }
    },
    stop(call) {
      calls.delete(call);
      if (calls.size || !timer) return;
      clearInterval(timer);
      timer = null;
      for (const o of sounding) o.stop();
      sounding = [];
    },
  };
}

// --- the phone ----------------------------------------------------------------------------------
const wsUrl = new URL('ws', location.href);
wsUrl.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
const phone = new Phone({
  url: wsUrl.href,
  getToken: () => {
    const token = $('token').value.trim();
    if (!token) throw new Error('no token: paste a fresh one');
    $('token').value = '';
    return token;
  },
  ringtone: toneHook([440, 480], 2000, 4000),
  ringback: toneHook([425], 1000, 4000),
});
window.softphone = { phone }; // for the browser tests and the console

function status(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function errorText(e) {
  const known = ERROR_TEXT[e.code] || REASON_TEXT[e.code];
  return `${known || e.message || e} (${e.code}${e.detail ? `: ${e.detail}` : ''})`;
}

function logEvent(m) {
  const shown = { ...m };
  if (typeof shown.sdp === 'string') shown.sdp = `(${shown.sdp.length} bytes of SDP)`;
  const line = `${new Date().toLocaleTimeString()} ← ${JSON.stringify(shown)}\n`;
  const el = $('events');
  el.textContent = (line + el.textContent).slice(0, 20000);
}

phone.on('message', logEvent);
phone.on('state', (s) => {
  $('state').textContent = STATE_TEXT[s];
  $('state').dataset.state = s;
  $('logout').disabled = s === 'offline';
  $('login').disabled = s === 'registered' || s === 'connecting';
  $('call').disabled = s !== 'registered';
  if (s === 'offline') $('aor').textContent = '';
  if (s === 'registered') status('');
  updateKeypadMode();
});
phone.on('registering', ({ aor }) => ($('aor').textContent = aor));
phone.on('registered', ({ aor, expires }) => ($('aor').textContent = `${aor} (expires ${expires} s)`));
phone.on('authenticated', ({ aor }) => ($('aor').textContent = `${aor} (authenticated, not registered)`));
phone.on('registrationLost', ({ code }) => status(`Registration lost (${code}): reconnecting`, true));
phone.on('reconnecting', ({ attempt, delayMs }) =>
  status(`Connection lost: reconnecting in ${Math.ceil(delayMs / 1000)} s (attempt ${attempt})${$('token').value.trim() ? '' : ' — paste a fresh token'}`, true));
phone.on('error', (e) => status(errorText(e), true));
phone.on('call', (call) => {
  new CallView(call);
  call.on('answered', () => status(`Connected to ${peerOf(call)}`));
});
phone.on('incomingCall', (call) => status(`Incoming call from ${peerOf(call)}`));

$('login').addEventListener('click', async () => {
  if (!$('token').value.trim()) return status('Paste a token first', true);
  ctx().resume?.(); // a user gesture: tones may play from now on
  try {
    if (phone.state === 'reconnecting') await phone.disconnect(); // start over with this token
    status('Logging in…');
    await phone.connect();
    refreshDevices();
  } catch (e) {
    status(`Login failed: ${errorText(e)}`, true);
  }
});
$('logout').addEventListener('click', async () => {
  await phone.disconnect();
  status('Logged out');
});

// --- dialling and the keypad ---------------------------------------------------------------------
$('dial-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const to = $('dial').value.trim();
  if (!to) return status('Enter a number', true);
  ctx().resume?.();
  try {
    status(`Calling ${to}…`);
    await phone.call(to);
    refreshDevices();
  } catch (e) {
    status(`Call failed: ${errorText(e)}`, true);
  }
});

/** The call the keypad sends DTMF to: answered (or in early media) and not on hold. */
function dtmfTarget() {
  return phone.calls.find((c) => (c.state === 'answered' && !c.held) || c.state === 'early');
}

function updateKeypadMode() {
  const target = dtmfTarget();
  $('keypad-mode').textContent = target ? `Keypad sends DTMF to ${peerOf(target)}` : '';
}

function press(key) {
  const target = dtmfTarget();
  if (target) {
    try {
      target.sendDtmf(key);
      status(`DTMF ${key} sent`);
    } catch (e) {
      status(errorText(e), true);
    }
  } else {
    $('dial').value += key;
  }
}

for (const key of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = key;
  b.dataset.key = key;
  b.setAttribute('aria-label', key === '*' ? 'star' : key === '#' ? 'hash' : key);
  b.addEventListener('click', () => press(key));
  $('keypad').append(b);
}

// Typing digits sends DTMF during a call, unless the focus is in a text field.
document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || !/^[0-9*#]$/.test(ev.key)) return;
  if (ev.target.closest && ev.target.closest('input, textarea, select')) return;
  if (!dtmfTarget()) return;
  ev.preventDefault();
  press(ev.key);
});

// --- calls --------------------------------------------------------------------------------------
function userOf(uri) {
  const m = /^(?:sips?:|tel:)?([^@;]+)/.exec(uri || '');
  return m ? decodeURIComponent(m[1]) : uri || '';
}

function peerOf(call) {
  return call.direction === 'incoming' ? userOf(call.from) : call.to;
}

/** The CRM's client card for an incoming call (`screen_pop_url`), or null. */
function screenPopHref(call) {
  const tpl = config.screenPopUrl;
  if (!tpl || call.direction !== 'incoming') return null;
  return tpl.replaceAll('{from}', encodeURIComponent(userOf(call.from))).replaceAll('{name}', encodeURIComponent(call.displayName || ''));
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

const views = new Set();
setInterval(() => views.forEach((v) => v.tick()), 1000);

class CallView {
  constructor(call) {
    this.call = call;
    this.declinedHere = false;
    this.el = $('call-card').content.firstElementChild.cloneNode(true);
    this.el.dataset.call = call.id;
    this.q = (sel) => this.el.querySelector(sel);
    this.q('.peer').textContent = peerOf(call) || '(unknown)';
    this.q('.peer').title = call.from || call.to || '';
    this.q('.name').textContent = call.displayName || '';
    this.el.setAttribute('aria-label', `${call.direction === 'incoming' ? 'Call from' : 'Call to'} ${peerOf(call)}`);
    this.wire();
    for (const e of ['state', 'held', 'resumed', 'mute', 'transferring']) call.on(e, () => this.update());
    call.on('ended', (info) => this.ended(info));
    $('calls').append(this.el);
    views.add(this);
    this.update();
    if (call.direction === 'incoming') configLoaded.then(() => this.screenPop());
  }

  screenPop() {
    const href = screenPopHref(this.call);
    if (!href || this.call.state === 'ended') return;
    const a = this.q('.screen-pop');
    a.href = href;
    a.hidden = false;
  }

  wire() {
    const call = this.call;
    const act = (sel, fn) =>
      this.q(sel).addEventListener('click', async () => {
        try {
          await fn();
        } catch (e) {
          status(errorText(e), true);
        }
        this.update();
      });
    act('.answer', async () => {
      ctx().resume?.();
      // Another call in progress goes on hold first.
      for (const other of phone.calls) if (other !== call && other.state === 'answered' && !other.held) await other.hold();
      status(`Answering ${peerOf(call)}…`);
      await call.answer();
      refreshDevices();
    });
    act('.reject', () => {
      this.declinedHere = true;
      return call.reject();
    });
    act('.hangup', () => {
      if (call.state === 'incoming') this.declinedHere = true;
      return call.hangup();
    });
    act('.hold', () => (call.held ? call.unhold() : call.hold()));
    act('.mute', () => call.mute(!call.muted));
    act('.transfer', () => {
      const form = this.q('.transfer-form');
      form.hidden = !form.hidden;
      this.q('.transfer').setAttribute('aria-expanded', String(!form.hidden));
      if (!form.hidden) this.q('.transfer-to').focus();
    });
    this.q('.transfer-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const to = this.q('.transfer-to').value.trim();
      if (!to) return;
      try {
        await call.transfer(to);
        status(`Transferring ${peerOf(call)} to ${to}…`);
        this.q('.transfer-form').hidden = true;
      } catch (e) {
        status(`Transfer failed: ${errorText(e)}`, true);
      }
    });
  }

  statusText() {
    const c = this.call;
    switch (c.state) {
      case 'incoming': return c.direction === 'incoming' ? 'Incoming call' : '';
      case 'connecting': return c.direction === 'incoming' ? 'Answering…' : 'Calling…';
      case 'ringing': return 'Ringing…';
      case 'early': return 'Early media';
      case 'answered': return c.held ? 'On hold' : c.remoteHeld ? 'Held by the other party' : c.muted ? 'Connected (muted)' : 'Connected';
      default: return REASON_TEXT[c.endInfo?.reason] || c.endInfo?.reason || '';
    }
  }

  update() {
    const c = this.call;
    const s = c.state;
    this.el.dataset.state = s;
    this.q('.status').textContent = this.statusText();
    const show = (sel, on) => (this.q(sel).hidden = !on);
    show('.answer', s === 'incoming');
    show('.reject', s === 'incoming');
    show('.hangup', s !== 'incoming' && s !== 'ended');
    show('.hold', s === 'answered');
    show('.mute', s === 'answered' || s === 'early');
    show('.transfer', s === 'answered');
    if (s !== 'answered') this.q('.transfer-form').hidden = true;
    const hold = this.q('.hold');
    hold.textContent = c.held ? 'Resume' : 'Hold';
    hold.setAttribute('aria-pressed', String(c.held));
    const mute = this.q('.mute');
    mute.textContent = c.muted ? 'Unmute' : 'Mute';
    mute.setAttribute('aria-pressed', String(c.muted));
    if (s === 'incoming' && (document.activeElement === document.body || this.el.closest('.widget').contains(document.activeElement))) {
      this.q('.answer').focus();
    }
    this.tick();
    updateKeypadMode();
  }

  tick() {
    const c = this.call;
    this.q('.timer').textContent = c.answeredAt ? clock((c.endedAt || new Date()) - c.answeredAt) : '';
  }

  ended(info) {
    views.delete(this);
    this.update();
    addToHistory(this.call, info, this.declinedHere);
    setTimeout(() => this.el.remove(), 2000);
  }
}

// --- the session's call log ------------------------------------------------------------------------
let missed = 0;
function addToHistory(call, info, declinedHere) {
  const isMissed = call.direction === 'incoming' && !call.answeredAt && !declinedHere;
  const li = document.createElement('li');
  li.className = isMissed ? 'missed' : '';
  li.dataset.call = call.id;
  li.dataset.reason = info.reason;
  const icon = document.createElement('span');
  icon.textContent = isMissed ? '✕' : call.direction === 'incoming' ? '↙' : '↗';
  icon.setAttribute('aria-label', isMissed ? 'missed' : call.direction);
  const who = document.createElement('button');
  who.type = 'button';
  const peer = peerOf(call);
  who.textContent = call.displayName ? `${call.displayName} (${peer})` : peer;
  who.title = `Call ${peer} back`;
  who.addEventListener('click', () => {
    $('dial').value = peer;
    $('dial').focus();
  });
  const when = document.createElement('span');
  when.className = 'when';
  const time = call.startedAt.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  when.textContent = `${time} · ${isMissed ? 'Missed' : call.answeredAt ? clock(call.endedAt - call.answeredAt) : REASON_TEXT[info.reason] || info.reason}`;
  const card = document.createElement('span');
  const href = screenPopHref(call);
  if (href) card.append(Object.assign(document.createElement('a'), { href, target: '_blank', rel: 'noopener noreferrer', textContent: 'Card' }));
  li.append(icon, who, when, card);
  $('history').prepend(li);
  if (isMissed) $('missed').textContent = String(++missed);
}

// --- audio devices ---------------------------------------------------------------------------------
const sinkSupported = 'setSinkId' in HTMLMediaElement.prototype;
$('speaker').disabled = !sinkSupported;
if (!sinkSupported) $('speaker').title = 'This browser cannot choose the output device';

async function refreshDevices() {
  let devices;
  try {
    devices = await phone.devices();
  } catch {
    return;
  }
  const fill = (select, list) => {
    const current = select.value;
    select.replaceChildren(new Option('Default', ''), ...list.map((d, i) => new Option(d.label || `Device ${i + 1}`, d.deviceId)));
    select.value = list.some((d) => d.deviceId === current) ? current : '';
  };
  fill($('mic'), devices.inputs);
  fill($('speaker'), devices.outputs);
}

$('mic').addEventListener('change', () => {
  const id = $('mic').value;
  const { deviceId, ...rest } = phone.audioConstraints;
  phone.audioConstraints = id ? { ...rest, deviceId: { exact: id } } : rest;
  status('The microphone applies to the next call');
});
$('speaker').addEventListener('change', async () => {
  try {
    await phone.setSinkId($('speaker').value);
  } catch (e) {
    status(errorText(e), true);
  }
});
