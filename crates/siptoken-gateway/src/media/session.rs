//! [`MediaEngine`] (one per gateway: the shared WebRTC socket, the RTP port pool) and
//! [`MediaSession`] (one per call: the call layer's handle), and the task that does each call's
//! I/O.
//!
//! The call layer's side is synchronous where it can be: SDP is negotiated in the handle
//! ([`MediaSession::sip_offer`], [`MediaSession::apply_sip_answer`],
//! [`MediaSession::answer_sip_offer`]) and the outcome (like hold, DTMF, the call's
//! establishment) is applied to the call's media state at once, under its lock: the next
//! datagram sees it, whichever thread handles it.
//!
//! A call's media state (its str0m `Rtc`, relay and SIP leg) sits behind a mutex shared by the
//! handle (for those changes) and two parties, each holding it only while it handles one input
//! and drains str0m's output:
//! - the shared socket's reader, which handles the browser's datagrams on arrival (no copy, no
//!   queue, no task switch per packet: see `demux`);
//! - the call's task, which waits for whichever comes first — the far end's RTP or RTCP, the
//!   handle's drop, or the earliest of str0m's timeout, the next DTMF packet, the next RTCP
//!   report and the media timeout. When a browser datagram brings that deadline earlier, the
//!   reader wakes the task to move its timer (rare: str0m's next timeout seldom moves between
//!   packets); the handle wakes it after every change.
//!
//! One task per call spreads the far ends' packets over the runtime's threads. A str0m panic on
//! a browser datagram is caught in the reader and ends that call alone (`BrowserFailed`).
//!
//! A session ends when [`MediaSession::close`] is called or the handle is dropped: the task sends
//! an RTCP BYE to the far end, closes DTLS towards the browser, and frees its ports.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, Notify};

use super::buffers;
use super::counters::{CallTotals, MediaCounters};
use super::delay::Delays;
use super::demux::{self, Shared};
use super::dtmf;
use super::g711::Law;
use super::packet;
use super::ports::{PortAllocator, PortPair};
use super::relay::{LegCodecs, Relay};
use super::rtp::SipLeg;
use super::sdp::{self, LocalMedia, MediaDirection, Negotiated, SdpWriter, TELEPHONE_EVENT_PT};
use super::stamped::{self, Datagram};
use super::webrtc::{self, BrowserEvent, BrowserLeg, BrowserOutput, WebRtcContext};
use super::{BrowserFailure, MediaError, MediaEvent, MediaSettings};

/// How long a browser leg may take to connect when no media timeout is configured.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a call adds its counts to the shared counters.
const COUNTERS_EVERY: Duration = Duration::from_secs(1);

/// At most this many of the far end's RTP datagrams are relayed per wake-up of a call's task
/// (so a flooded SIP leg cannot starve its browser leg and timers).
const RTP_BATCH: usize = 16;

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The gateway's media side: the shared WebRTC socket (and the task reading it), the RTP port
/// pool, and the media counters. Cheap to clone.
#[derive(Debug, Clone)]
pub struct MediaEngine {
    inner: Arc<EngineInner>,
}

#[derive(Debug)]
struct EngineInner {
    shared: Arc<Shared>,
    ctx: WebRtcContext,
    ports: PortAllocator,
    rtp_address: IpAddr,
    timeout: Option<Duration>,
    _readers: Vec<AbortOnDrop>,
}

/// Per-call choices for [`MediaEngine::create_for_browser_offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOptions {
    /// The address the SIP leg's SDP advertises when `rtp_address` is unspecified (`0.0.0.0`
    /// or `::`): the local address of the SIP socket that carries the call.
    pub sip_address: IpAddr,
    /// For an incoming call, the law the far end's offer leads with (see
    /// [`sdp::RemoteMedia::laws`]): the browser is answered with it alone, so both legs use
    /// it. `None` (an outgoing call): the browser may use PCMU or PCMA.
    pub law: Option<Law>,
}

impl MediaEngine {
    /// Binds the shared WebRTC socket and starts reading it. Must run inside a tokio runtime.
    pub async fn bind(settings: &MediaSettings) -> io::Result<MediaEngine> {
        let socket = UdpSocket::bind(settings.webrtc_listen).await?;
        let local = socket.local_addr()?;
        if let Err(e) = stamped::enable(&socket) {
            tracing::info!(
                "WebRTC socket {local}: no kernel receive timestamps ({e}): the relay's delay \
                 histogram leaves out the time packets wait in the receive buffer"
            );
        }
        let granted = buffers::enlarge(&socket)?;
        tracing::debug!(
            "WebRTC socket {local}: receive buffer {} bytes, send buffer {} bytes (asked {} and {})",
            granted.receive,
            granted.send,
            buffers::RECEIVE_BUFFER,
            buffers::SEND_BUFFER
        );
        if granted.receive_capped() {
            tracing::info!(
                "WebRTC socket {local}: receive buffer capped at {} bytes by net.core.rmem_max; \
                 raise it (docs/gateway-protocol.md, \"Media\") or packets are lost under load",
                granted.receive
            );
        }
        let ip = match settings.webrtc_public_ip {
            Some(ip) => ip,
            None if local.ip().is_unspecified() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "webrtc_listen binds every interface: set webrtc_public_ip",
                ))
            }
            None => local.ip(),
        };
        let advertised = SocketAddr::new(ip, local.port());
        let shared = Arc::new(Shared {
            socket,
            demux: Default::default(),
            counters: Arc::new(MediaCounters::default()),
        });
        let readers = (0..demux::readers())
            .map(|_| AbortOnDrop(tokio::spawn(demux::read_loop(shared.clone()))))
            .collect();
        Ok(MediaEngine {
            inner: Arc::new(EngineInner {
                shared,
                ctx: WebRtcContext::new(advertised).map_err(io::Error::other)?,
                ports: PortAllocator::new(settings.rtp_address, settings.rtp_ports),
                rtp_address: settings.rtp_address,
                timeout: settings.media_timeout,
                _readers: readers,
            }),
        })
    }

    /// The address browsers are told to send to (the host candidate).
    pub fn webrtc_address(&self) -> SocketAddr {
        self.inner.ctx.advertised
    }

    /// The media counters (for `/metrics`).
    pub fn counters(&self) -> &Arc<MediaCounters> {
        &self.inner.shared.counters
    }

    /// Answers a browser's WebRTC offer and starts the call's media: returns the SDP answer for
    /// the browser and the session handle. The SIP leg's port pair is bound now; its far end
    /// comes with [`MediaSession::apply_sip_answer`] or [`MediaSession::answer_sip_offer`].
    pub fn create_for_browser_offer(
        &self,
        offer: &str,
        options: SessionOptions,
    ) -> Result<(String, MediaSession), MediaError> {
        let now = Instant::now();
        let inner = &self.inner;
        let laws: Vec<Law> = match options.law {
            Some(l) => vec![l],
            None => vec![Law::Pcmu, Law::Pcma],
        };
        let (leg, answer) = BrowserLeg::answer(now, &inner.ctx, offer, &laws)?;
        let PortPair { rtp, rtcp } = inner.ports.allocate().map_err(MediaError::Ports)?;
        let port = rtp.local_addr().map_err(MediaError::Ports)?.port();
        let (ufrag, ice_key) = (leg.ufrag().to_owned(), leg.ice_key());
        let sip_address = if inner.rtp_address.is_unspecified() {
            options.sip_address
        } else {
            inner.rtp_address
        };
        let browser_laws = leg.codecs().laws.clone();
        let mut relay = Relay::new();
        relay.set_browser_codecs(leg.codecs().leg_codecs());
        // Nothing flows until the SIP leg's SDP says where and how (`update_sending`).
        relay.to_sip.set_sending(false);
        relay.to_browser.set_sending(false);
        let cname = format!("siptoken-{:08x}@gateway", rand::random::<u32>());
        let sip = SipLeg::new(now, rand::random(), cname, inner.timeout);
        let (closed_tx, closed) = oneshot::channel();
        let (event_tx, events) = mpsc::unbounded_channel();
        let connect_timeout = inner.timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let (rtp, rtcp) = (Arc::new(rtp), Arc::new(rtcp));
        let media = CallMedia {
            shared: inner.shared.clone(),
            leg,
            sip,
            relay,
            rtp: rtp.clone(),
            rtcp: rtcp.clone(),
            events: event_tx,
            armed: now,
            rtc_timeout: now,
            connect_by: Some(now + connect_timeout),
            local_hold: false,
            negotiated: None,
            out: Vec::with_capacity(1500),
            arrived: None,
            delay_to_sip: Delays::default(),
            delay_to_browser: Delays::default(),
            reported: CallTotals::default(),
            reported_at: now,
        };
        let cell = Arc::new(CallCell {
            media: Mutex::new(media),
            rearm: Notify::new(),
            panicked: AtomicBool::new(false),
        });
        let id = inner.shared.register(&ufrag, ice_key, cell.clone());
        inner
            .shared
            .counters
            .sessions
            .fetch_add(1, Ordering::Relaxed);
        tokio::spawn(run_call(cell.clone(), id, closed, rtp, rtcp));
        let session = MediaSession {
            call: cell,
            _closed: closed_tx,
            events,
            writer: SdpWriter::new(),
            address: sip_address,
            port,
            browser_laws,
            hold: false,
            offer: None,
            negotiated: None,
        };
        Ok((answer, session))
    }
}

/// What the handle changes in the call's media. Applied at once under the call's lock
/// ([`MediaSession::command`]), not queued for the call's task: a datagram handled right after
/// (by a socket reader, on another thread) must already see it — e.g. the far end's SDP before
/// the browser, told `answered`, sends its first packet.
#[derive(Debug)]
enum Command {
    /// A completed offer/answer on the SIP leg.
    Negotiated(Box<Negotiated>),
    /// Local hold on or off (takes effect at once; the SDP exchange follows).
    LocalHold(bool),
    /// Play DTMF towards the far end.
    Dtmf(String),
    /// The call is established: arm the media timeout.
    Established,
}

/// One call's media, for the call layer. Dropping it ends the media (like [`Self::close`]).
#[derive(Debug)]
pub struct MediaSession {
    call: Arc<CallCell>,
    /// Dropped with the session: the call's task then ends the media.
    _closed: oneshot::Sender<()>,
    events: mpsc::UnboundedReceiver<MediaEvent>,
    writer: SdpWriter,
    address: IpAddr,
    port: u16,
    browser_laws: Vec<Law>,
    hold: bool,
    offer: Option<LocalMedia>,
    negotiated: Option<Negotiated>,
}

impl MediaSession {
    /// The SIP leg's RTP address as advertised in our SDP.
    pub fn sip_rtp_address(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }

    /// The laws the browser leg negotiated, the one it sends first.
    pub fn browser_laws(&self) -> &[Law] {
        &self.browser_laws
    }

    /// The SIP leg's current negotiation, if any.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    fn direction(&self) -> MediaDirection {
        if self.hold {
            MediaDirection::SendOnly
        } else {
            MediaDirection::SendRecv
        }
    }

    /// Our SDP offer for the SIP leg (INVITE or re-INVITE): PCMU and PCMA in the browser's
    /// order of preference, telephone-event/8000 on 101, `sendrecv` (`sendonly` on hold).
    pub fn sip_offer(&mut self) -> String {
        let mut laws = self.browser_laws.clone();
        for law in [Law::Pcmu, Law::Pcma] {
            if !laws.contains(&law) {
                laws.push(law);
            }
        }
        let local = LocalMedia {
            address: self.address,
            port: self.port,
            laws,
            telephone_event: Some(TELEPHONE_EVENT_PT),
            direction: self.direction(),
        };
        let text = self.writer.offer(&local);
        self.offer = Some(local);
        text
    }

    /// Applies the far end's answer to our last offer (a 183 or 200 body, or an ACK's for a
    /// delayed offer). Another answer to the same offer (183, then 200) replaces the first.
    pub fn apply_sip_answer(&mut self, answer: &str) -> Result<&Negotiated, MediaError> {
        let offer = self.offer.as_ref().ok_or(MediaError::NoOffer)?;
        let n = sdp::accept_answer(offer, answer)?;
        Ok(self.commit(n))
    }

    /// Answers the far end's offer (an INVITE's or re-INVITE's body): returns our answer. The
    /// browser's law is kept when the far end offers it; a hold offer is answered `recvonly`
    /// (or `inactive` when we hold too).
    pub fn answer_sip_offer(&mut self, offer: &str) -> Result<String, MediaError> {
        let n = sdp::answer_offer(
            offer,
            self.address,
            self.port,
            self.browser_laws.first().copied(),
            self.direction(),
        )?;
        let text = self.writer.answer(&n);
        self.commit(n);
        Ok(text)
    }

    /// Applies `c` to the call's media now, and has the call's task look at its timer again
    /// (a command can move the deadline: DTMF to play, the media timeout armed).
    fn command(&self, c: Command) {
        self.call.lock().command(c);
        self.call.rearm.notify_one();
    }

    fn commit(&mut self, n: Negotiated) -> &Negotiated {
        self.command(Command::Negotiated(Box::new(n.clone())));
        self.negotiated.insert(n)
    }

    /// Puts the call on hold: stops sending the browser's audio at once and returns the
    /// re-INVITE offer (`sendonly`).
    pub fn hold(&mut self) -> String {
        self.set_hold(true)
    }

    /// Takes the call off hold: returns the re-INVITE offer (`sendrecv`). The browser's audio
    /// resumes at once (the far end accepted it before the hold, and still does); the far end's
    /// reaches the browser again once the answer is applied.
    pub fn unhold(&mut self) -> String {
        self.set_hold(false)
    }

    fn set_hold(&mut self, hold: bool) -> String {
        self.hold = hold;
        if hold {
            self.command(Command::LocalHold(true));
        }
        let offer = self.sip_offer();
        if !hold {
            self.command(Command::LocalHold(false));
        }
        offer
    }

    /// The re-INVITE with our last offer failed (not 491-retried): back to the state of the
    /// last completed exchange.
    pub fn rollback_offer(&mut self) {
        let held = self.negotiated.as_ref().is_some_and(|n| {
            n.local.direction == MediaDirection::SendOnly
                || n.local.direction == MediaDirection::Inactive
        });
        if held != self.hold {
            self.hold = held;
            self.command(Command::LocalHold(held));
        }
        self.offer = self.negotiated.as_ref().map(|n| n.local.clone());
    }

    /// Sends DTMF digits (`0-9 * # A-D`, at most 32) to the far end as RFC 4733 events, in
    /// order, 180 ms per digit. [`dtmf::DtmfError::NotNegotiated`] when the far end has no
    /// telephone-event (use SIP INFO then) or the call is on hold.
    pub fn send_dtmf(&self, digits: &str) -> Result<(), MediaError> {
        dtmf::parse_digits(digits)?;
        let negotiated = self
            .negotiated
            .as_ref()
            .filter(|n| n.telephone_event.is_some() && n.direction.sends() && !self.hold);
        if negotiated.is_none() {
            return Err(dtmf::DtmfError::NotNegotiated.into());
        }
        self.command(Command::Dtmf(digits.to_owned()));
        Ok(())
    }

    /// The call is established (200 OK sent or received): from now a silent far end ends it
    /// after `media_timeout_seconds`.
    pub fn call_established(&self) {
        self.command(Command::Established);
    }

    /// The next media event; `None` once the session has ended.
    pub async fn next_event(&mut self) -> Option<MediaEvent> {
        self.events.recv().await
    }

    /// Ends the media: RTCP BYE to the far end, DTLS close to the browser, ports freed.
    pub fn close(self) {}
}

/// One call's media state: its str0m `Rtc` (in the browser leg), relay and SIP leg. Shared by
/// the handle (its changes), the call's task (the far end's RTP and RTCP, timers) and the
/// shared socket's reader (the browser's datagrams, handled on arrival: see `demux`), each
/// holding the lock only while it handles one input and drains str0m — never across an
/// `.await`.
struct CallMedia {
    shared: Arc<Shared>,
    leg: BrowserLeg,
    sip: SipLeg,
    relay: Relay,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    events: mpsc::UnboundedSender<MediaEvent>,
    /// The deadline the task's timer is set to: the reader wakes the task when a datagram
    /// brings the call's deadline earlier.
    armed: Instant,
    rtc_timeout: Instant,
    connect_by: Option<Instant>,
    local_hold: bool,
    negotiated: Option<Negotiated>,
    out: Vec<u8>,
    /// When the browser's datagram being handled reached the shared socket.
    arrived: Option<Instant>,
    /// How long relayed packets were held, each way.
    delay_to_sip: Delays,
    delay_to_browser: Delays,
    reported: CallTotals,
    reported_at: Instant,
}

/// A call's shared media state and how its task is told to look at its timer again.
struct CallCell {
    media: Mutex<CallMedia>,
    rearm: Notify,
    /// A str0m panic while the reader handled a datagram: the call's browser leg is gone.
    panicked: AtomicBool,
}

impl std::fmt::Debug for CallCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallCell")
            .field("panicked", &self.panicked.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl CallCell {
    fn lock(&self) -> MutexGuard<'_, CallMedia> {
        self.media.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl demux::Receiver for CallCell {
    fn receive(&self, at: Instant, arrived: Instant, source: SocketAddr, data: &[u8]) {
        if self.panicked.load(Ordering::Relaxed) {
            return;
        }
        // A panic here (str0m's, on a datagram) must end this call, not the reader that every
        // call shares.
        let handled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut m = self.lock();
            if m.leg.receive(at, source, data) {
                m.arrived = Some(arrived);
                m.drain(at);
                m.arrived = None;
            }
            let deadline = m.deadline();
            let earlier = deadline < m.armed;
            if earlier {
                m.armed = deadline;
            }
            earlier
        }));
        match handled {
            Ok(false) => {}
            Ok(true) => self.rearm.notify_one(),
            Err(_) => {
                self.panicked.store(true, Ordering::Relaxed);
                self.rearm.notify_one();
            }
        }
    }
}

/// A call's task: waits for whichever comes first — the handle's drop, the far end's RTP or
/// RTCP, the timer, or the word that the deadline moved — and handles it under the lock.
async fn run_call(
    cell: Arc<CallCell>,
    id: u64,
    mut closed: oneshot::Receiver<()>,
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
) {
    let mut rtp_buf = vec![0u8; 2048];
    let mut rtp_control = stamped::control_buffer();
    let mut rtcp_buf = vec![0u8; 2048];
    let first = {
        let mut m = cell.lock();
        m.drain(Instant::now());
        m.arm()
    };
    // One timer for the task's life, moved only when the deadline moves (it rarely does
    // between packets): a fresh `sleep_until` per wake-up would register and deregister a
    // timer for every packet.
    let timer = tokio::time::sleep_until(first.into());
    tokio::pin!(timer);
    loop {
        if cell.panicked.load(Ordering::Relaxed) {
            break;
        }
        let deadline = tokio::time::Instant::from_std(cell.lock().arm());
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        tokio::select! {
            _ = &mut closed => break,
            r = stamped::recv_from(&rtp, &mut rtp_buf, &mut rtp_control) => {
                if let Ok(d) = r {
                    cell.lock().on_sip_rtp(&mut rtp_buf, &mut rtp_control, d);
                }
            }
            r = rtcp.recv_from(&mut rtcp_buf) => {
                if let Ok((n, source)) = r {
                    let _ = cell.lock().sip.on_rtcp(Instant::now(), source, &rtcp_buf[..n]);
                }
            }
            _ = cell.rearm.notified() => {}
            _ = &mut timer => cell.lock().on_timer(),
        }
    }
    let mut m = cell.lock();
    // No more datagrams from the reader from here on.
    m.shared.unregister(id);
    if cell.panicked.load(Ordering::Relaxed) {
        // str0m's state may be half-updated: report the failure, touch nothing else.
        m.browser_failed(BrowserFailure::Error);
        m.shared.counters.sessions.fetch_sub(1, Ordering::Relaxed);
    } else {
        m.shutdown();
    }
}

impl CallMedia {
    /// Sets the timer's deadline to the call's next one, and returns it.
    fn arm(&mut self) -> Instant {
        self.armed = self.deadline();
        self.armed
    }

    fn deadline(&self) -> Instant {
        let mut d = self.rtc_timeout.min(self.sip.next_deadline());
        if let Some(t) = self.relay.to_sip.next_dtmf_at() {
            d = d.min(t);
        }
        if let Some(t) = self.connect_by {
            d = d.min(t);
        }
        d
    }

    fn event(&self, e: MediaEvent) {
        let _ = self.events.send(e);
    }

    fn command(&mut self, c: Command) {
        let now = Instant::now();
        match c {
            Command::Negotiated(n) => {
                let te = n.telephone_event;
                let mut receive: Vec<u8> = te.map(|t| t.receive).into_iter().collect();
                if let Some(t) = te.filter(|t| t.send != t.receive) {
                    receive.push(t.send);
                }
                self.relay.set_sip_codecs(LegCodecs {
                    laws: n.laws.clone(),
                    telephone_event_send: te.map(|t| t.send),
                    telephone_event_receive: receive,
                });
                self.sip.set_remote(n.remote.rtp, n.remote.rtcp);
                self.sip
                    .set_expect_media(now, n.direction == MediaDirection::SendRecv);
                self.negotiated = Some(*n);
                self.update_sending();
            }
            Command::LocalHold(h) => {
                self.local_hold = h;
                self.update_sending();
            }
            Command::Dtmf(digits) => {
                if let Err(e) = self.relay.to_sip.send_dtmf(now, &digits) {
                    tracing::debug!("DTMF not sent: {e}");
                }
            }
            Command::Established => self.sip.arm_timeout(now),
        }
    }

    fn update_sending(&mut self) {
        let (sends, receives) = match &self.negotiated {
            Some(n) => (
                n.direction.sends() && n.remote.rtp.is_some(),
                n.direction.receives(),
            ),
            None => (false, false),
        };
        self.relay.to_sip.set_sending(sends && !self.local_hold);
        self.relay.to_browser.set_sending(receives);
    }

    /// The far end's RTP datagram of `n` bytes in `buf` from `source`, and any others its socket
    /// holds already (a backlog after the task waited for a core; at most [`RTP_BATCH`]):
    /// relayed into str0m, then sent towards the browser together.
    ///
    /// str0m queues a written packet until time is handled (`handle_timeout` stamps it, the
    /// next `poll_output` encrypts and sends it), so a write always leaves str0m's timeout due:
    /// the timeout is handled once after the writes, not polled for first, and not once per
    /// packet of a backlog.
    ///
    /// Each packet's delay (its arrival to the send of its SRTP copy) is counted once the batch
    /// has gone out.
    fn on_sip_rtp(&mut self, buf: &mut [u8], control: &mut [u8], first: Datagram) {
        let now = Instant::now();
        let mut arrivals = [now; RTP_BATCH];
        let mut written = 0;
        let mut d = first;
        for read in 1..=RTP_BATCH {
            if self.relay_sip_rtp(now, d.source, &buf[..d.len]) {
                arrivals[written] = d.arrived;
                written += 1;
            }
            if read == RTP_BATCH {
                break;
            }
            match stamped::try_recv_from(&self.rtp, buf, control) {
                Ok(next) => d = next,
                Err(_) => break,
            }
        }
        if written > 0 {
            self.leg.handle_timeout(now);
            self.drain(now);
            let sent = Instant::now();
            for a in &arrivals[..written] {
                self.delay_to_browser
                    .record(sent.saturating_duration_since(*a));
            }
        }
    }

    /// One RTP datagram from the far end into the relay and on into str0m: whether a packet
    /// was written towards the browser.
    fn relay_sip_rtp(&mut self, now: Instant, source: SocketAddr, data: &[u8]) -> bool {
        let a = match self.sip.on_rtp(now, source, data) {
            Ok(a) => a,
            Err(_) => return false,
        };
        if a.first {
            self.event(MediaEvent::SipMediaStarted);
        }
        match self.relay.to_browser.forward(now, a.inbound(data)) {
            Some(out) => self.leg.write(now, &out),
            None => false,
        }
    }

    fn on_timer(&mut self) {
        let now = Instant::now();
        if now >= self.rtc_timeout {
            self.leg.handle_timeout(now);
            self.drain(now);
        }
        while let Some(p) = self.relay.to_sip.poll_dtmf(now) {
            let h = p.header(self.sip.ssrc());
            let (timestamp, len) = (p.timestamp, p.payload.len());
            packet::write_rtp(&mut self.out, &h, p.payload);
            if let Some(to) = self.sip.rtp_destination() {
                let _ = self.rtp.try_send_to(&self.out, to);
                self.sip.on_sent(now, timestamp, len);
            }
        }
        if let Some(to) = self.sip.poll_report(now, SystemTime::now(), &mut self.out) {
            let _ = self.rtcp.try_send_to(&self.out, to);
        }
        if self.sip.poll_timeout(now) {
            self.shared
                .counters
                .media_timeouts
                .fetch_add(1, Ordering::Relaxed);
            self.event(MediaEvent::MediaTimeout);
        }
        if self.connect_by.is_some_and(|t| now >= t) {
            self.connect_by = None;
            self.browser_failed(BrowserFailure::ConnectTimeout);
        }
        if now.duration_since(self.reported_at) >= COUNTERS_EVERY {
            self.report_counters(now);
        }
    }

    fn browser_failed(&self, f: BrowserFailure) {
        self.shared
            .counters
            .browser_failures
            .fetch_add(1, Ordering::Relaxed);
        self.event(MediaEvent::BrowserFailed(f));
    }

    /// Polls str0m until its next timeout: datagrams to the shared socket, the browser's RTP to
    /// the relay and on to the far end, events to the call layer.
    fn drain(&mut self, now: Instant) {
        loop {
            match self.leg.poll() {
                BrowserOutput::Timeout(t) => {
                    self.rtc_timeout = t;
                    return;
                }
                BrowserOutput::Transmit(t) => {
                    let _ = self.shared.socket.try_send_to(&t.contents, t.destination);
                }
                BrowserOutput::Rtp(p) => {
                    if let Some(out) = self.relay.to_sip.forward(now, webrtc::inbound(&p)) {
                        let Some(to) = self.sip.rtp_destination() else {
                            continue;
                        };
                        let h = out.header(self.sip.ssrc());
                        packet::write_rtp(&mut self.out, &h, out.payload);
                        let _ = self.rtp.try_send_to(&self.out, to);
                        self.sip.on_sent(now, h.timestamp, out.payload.len());
                        if let Some(a) = self.arrived {
                            self.delay_to_sip
                                .record(Instant::now().saturating_duration_since(a));
                        }
                    }
                }
                BrowserOutput::Event(e) => match e {
                    BrowserEvent::Connected => {
                        self.connect_by = None;
                        self.event(MediaEvent::BrowserConnected);
                    }
                    BrowserEvent::Disconnected => self.browser_failed(BrowserFailure::Disconnected),
                    BrowserEvent::Closed => self.browser_failed(BrowserFailure::Closed),
                    BrowserEvent::DtlsFailed => {
                        self.connect_by = None;
                        self.browser_failed(BrowserFailure::Dtls);
                    }
                    BrowserEvent::Failed => {
                        self.connect_by = None;
                        self.browser_failed(BrowserFailure::Error);
                    }
                },
            }
        }
    }

    fn report_counters(&mut self, now: Instant) {
        let totals = CallTotals {
            to_sip: self.relay.to_sip.stats(),
            to_browser: self.relay.to_browser.stats(),
            sip: self.sip.stats(),
            delay_to_sip: self.delay_to_sip,
            delay_to_browser: self.delay_to_browser,
        };
        self.shared.counters.add(&self.reported, &totals);
        self.reported = totals;
        self.reported_at = now;
    }

    fn shutdown(&mut self) {
        let now = Instant::now();
        if let Some(to) = self.sip.bye(&mut self.out) {
            let _ = self.rtcp.try_send_to(&self.out, to);
        }
        self.leg.close();
        self.leg.handle_timeout(now);
        self.drain(now);
        self.report_counters(now);
        self.shared
            .counters
            .sessions
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::relay::Inbound;

    async fn engine(rtp_ports: &str) -> MediaEngine {
        MediaEngine::bind(&MediaSettings {
            webrtc_listen: "127.0.0.1:0".parse().unwrap(),
            webrtc_public_ip: None,
            rtp_ports: rtp_ports.parse().unwrap(),
            rtp_address: "127.0.0.1".parse().unwrap(),
            media_timeout: None,
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn the_shared_webrtc_socket_gets_large_buffers() {
        let engine = engine("40000-40099").await;
        if let Some(expected) = buffers::expected_here() {
            let s = socket2::SockRef::from(&engine.inner.shared.socket);
            assert_eq!(s.recv_buffer_size().unwrap(), expected.receive);
            assert_eq!(s.send_buffer_size().unwrap(), expected.send);
        }
    }

    /// The far end's SDP holds for the very next browser datagram, although the call's task
    /// has not run: a reader on another thread may handle that datagram before the task wakes
    /// (the browser starts sending when told `answered`). (A current-thread runtime: the task
    /// cannot run before the first `.await`.)
    #[tokio::test]
    async fn the_far_ends_answer_applies_before_the_calls_task_runs() {
        let engine = engine("40100-40199").await;
        let mut client = str0m::RtcConfig::new()
            .enable_pcmu(true, false)
            .build(Instant::now());
        let mut change = client.sdp_api();
        change.add_media(
            str0m::media::MediaKind::Audio,
            str0m::media::Direction::SendRecv,
            None,
            None,
            None,
        );
        let (offer, _) = change.apply().unwrap();
        let options = SessionOptions {
            sip_address: "127.0.0.1".parse().unwrap(),
            law: None,
        };
        let (_, mut session) = engine
            .create_for_browser_offer(&offer.to_sdp_string(), options)
            .unwrap();
        let audio = [0xffu8; 160];
        let packet = Inbound {
            ssrc: 7,
            seq: 1,
            timestamp: 0,
            marker: false,
            payload_type: 0,
            payload: &audio,
        };
        // Before the far end's SDP, the browser's audio has nowhere to go.
        assert!(session
            .call
            .lock()
            .relay
            .to_sip
            .forward(Instant::now(), packet)
            .is_none());
        session.sip_offer();
        let answer = "v=0\r\no=far 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                      t=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        session.apply_sip_answer(answer).unwrap();
        let mut media = session.call.lock();
        let relayed = media.relay.to_sip.forward(Instant::now(), packet);
        assert_eq!(relayed.map(|o| o.payload_type), Some(0));
        let stats = media.relay.to_sip.stats();
        assert_eq!((stats.dropped_not_sending, stats.dropped_codec), (1, 0));
    }
}
