//! The calls' media layer end to end on loopback, with no external servers: a simulated browser
//! (str0m as a WebRTC client: ICE, DTLS-SRTP, SRTP) on one side of the gateway's media engine,
//! a plain UDP RTP peer (the "far end", as a PBX or sipp would be) on the other. Audio is
//! checked as audio: G.711 is decoded and tones are found with a Goertzel filter.

#[path = "gateway/audio.rs"]
mod audio;
#[path = "gateway/sim_browser.rs"]
mod sim_browser;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use audio::{alaw_decode, tone_presence, ulaw_decode, Tone};
use sim_browser::{SimBrowser, Source};
use siptoken_gateway::media::sdp::Negotiated;
use siptoken_gateway::media::session::SessionOptions;
use siptoken_gateway::media::{
    BrowserFailure, MediaEngine, MediaEvent, MediaSession, MediaSettings,
};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// Media settings for a test engine: WebRTC on `webrtc_listen`, RTP on loopback.
fn settings(
    webrtc_listen: &str,
    webrtc_public_ip: Option<IpAddr>,
    media_timeout: Option<Duration>,
) -> MediaSettings {
    MediaSettings {
        webrtc_listen: webrtc_listen.parse().unwrap(),
        webrtc_public_ip,
        rtp_ports: "20000-29999".parse().unwrap(),
        rtp_address: LOOPBACK,
        media_timeout,
    }
}

async fn engine(timeout: Option<Duration>) -> MediaEngine {
    MediaEngine::bind(&settings("127.0.0.1:0", None, timeout))
        .await
        .unwrap()
}

fn options() -> SessionOptions {
    SessionOptions {
        sip_address: LOOPBACK,
        law: None,
    }
}

/// The RTP address in an SDP body (`c=` and `m=audio`), read without the gateway's parser.
fn sdp_rtp_address(sdp: &str) -> SocketAddr {
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 "))
        .expect("c= line")
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|l| l.split(' ').next())
        .expect("m=audio line");
    format!("{ip}:{port}").parse().unwrap()
}

/// A far end's answer or offer: `m=audio PORT RTP/AVP <formats>` with telephone-event on 101 when
/// listed, and a direction.
fn far_sdp(addr: SocketAddr, formats: &str, direction: &str) -> String {
    let mut s = format!(
        "v=0\r\no=far 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP {formats}\r\n",
        ip = addr.ip(),
        port = addr.port()
    );
    if formats.split(' ').any(|f| f == "101") {
        s.push_str("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n");
    }
    s.push_str(&format!("a={direction}\r\n"));
    s
}

/// One RTP packet as the far end saw it.
#[derive(Debug, Clone)]
struct FarPacket {
    at: Instant,
    from: SocketAddr,
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

/// What the far end sends at tick `i` (every 20 ms): (payload type, marker, timestamp, payload).
type FarSource = Box<dyn FnMut(u64) -> Vec<(u8, bool, u32, Vec<u8>)> + Send>;

/// Runs a plain RTP peer on `socket` for `duration`: sends what `source` makes to `to` every
/// 20 ms (seq and SSRC its own), records everything it receives.
async fn far_end(
    socket: UdpSocket,
    to: SocketAddr,
    duration: Duration,
    mut source: FarSource,
) -> Vec<FarPacket> {
    let end = Instant::now() + duration;
    let mut next = Instant::now();
    let mut tick = 0u64;
    let mut seq: u16 = 30_000;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= end {
            return got;
        }
        if now >= next {
            for (pt, marker, ts, payload) in source(tick) {
                let mut p = vec![0x80, (u8::from(marker) << 7) | pt];
                p.extend_from_slice(&seq.to_be_bytes());
                p.extend_from_slice(&ts.to_be_bytes());
                p.extend_from_slice(&0x5151_5151u32.to_be_bytes());
                p.extend_from_slice(&payload);
                socket.send_to(&p, to).await.unwrap();
                seq = seq.wrapping_add(1);
            }
            tick += 1;
            next += Duration::from_millis(20);
            continue;
        }
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, from) = r.unwrap();
                let b = &buf[..n];
                if n >= 12 && !(192..=223).contains(&b[1]) {
                    got.push(FarPacket {
                        at: Instant::now(),
                        from,
                        marker: b[1] & 0x80 != 0,
                        pt: b[1] & 0x7f,
                        seq: u16::from_be_bytes([b[2], b[3]]),
                        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
                        payload: b[12..].to_vec(),
                    });
                }
            }
            _ = tokio::time::sleep_until(next.min(end).into()) => {}
        }
    }
}

fn tone_source(freq: f64) -> FarSource {
    let mut tone = Tone::new(freq, 0.5);
    Box::new(move |i| vec![(0, i == 0, 1_000 + 160 * i as u32, tone.pcmu_frame())])
}

/// A PCMA tone, timestamps from 0.
fn pcma_tone_source(freq: f64) -> FarSource {
    let mut tone = Tone::new(freq, 0.5);
    Box::new(move |i| vec![(8, i == 0, 160 * i as u32, tone.pcma_frame())])
}

fn silent_source() -> FarSource {
    Box::new(|_| Vec::new())
}

fn browser_tone(freq: f64) -> Source {
    let mut tone = Tone::new(freq, 0.5);
    Box::new(move || (0, tone.pcmu_frame()))
}

/// A far end on its own loopback socket that answered a session's SIP offer.
struct FarEnd {
    socket: UdpSocket,
    addr: SocketAddr,
    /// The gateway's RTP address, from its offer.
    gw_rtp: SocketAddr,
    /// The session's SIP offer.
    offer: String,
    /// What the answer negotiated.
    negotiated: Negotiated,
}

impl FarEnd {
    /// Binds a far end and answers `session`'s SIP offer with `formats`, `sendrecv`.
    async fn answering(session: &mut MediaSession, formats: &str) -> FarEnd {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let offer = session.sip_offer();
        let negotiated = session
            .apply_sip_answer(&far_sdp(addr, formats, "sendrecv"))
            .unwrap()
            .clone();
        FarEnd {
            socket,
            addr,
            gw_rtp: sdp_rtp_address(&offer),
            offer,
            negotiated,
        }
    }

    /// Runs the far end (see [`far_end`]) for `secs` seconds in a task, sending to the gateway.
    fn spawn(self, secs: u64, source: FarSource) -> JoinHandle<Vec<FarPacket>> {
        tokio::spawn(far_end(
            self.socket,
            self.gw_rtp,
            Duration::from_secs(secs),
            source,
        ))
    }
}

/// Runs `browser` for `secs` seconds in a task, sending a 1 kHz tone; the task returns it.
fn spawn_browser(mut browser: SimBrowser, secs: u64) -> JoinHandle<SimBrowser> {
    tokio::spawn(async move {
        browser
            .run(Duration::from_secs(secs), &mut browser_tone(1000.0))
            .await;
        browser
    })
}

/// Waits until `done` holds, or 2 s have passed (the caller then asserts what it waited for).
async fn settle(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A browser connected through a new session.
async fn connect(engine: &MediaEngine, options: SessionOptions) -> (SimBrowser, MediaSession) {
    let (mut browser, offer) = SimBrowser::offer().await;
    let (answer, session) = engine.create_for_browser_offer(&offer, options).unwrap();
    assert!(answer.contains("a=ice-lite"), "{answer}");
    assert!(answer.contains("a=setup:passive"), "{answer}");
    assert!(answer.contains("a=rtcp-mux"), "{answer}");
    let m = answer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(!m.contains(" 111"), "Opus is not answered: {m}");
    browser.accept_answer(&answer);
    (browser, session)
}

async fn wait_event(session: &mut MediaSession, within: Duration) -> Option<MediaEvent> {
    tokio::time::timeout(within, session.next_event())
        .await
        .ok()
        .flatten()
}

/// Waits for `want`; returns the events seen before it. Panics if it does not come in time.
async fn wait_for(
    session: &mut MediaSession,
    want: MediaEvent,
    within: Duration,
) -> Vec<MediaEvent> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match wait_event(session, left).await {
            Some(e) if e == want => return seen,
            Some(e) => seen.push(e),
            None => panic!("no {want:?} within {within:?}; saw {seen:?}"),
        }
    }
}

fn decode(packets: &[&FarPacket]) -> Vec<i16> {
    packets
        .iter()
        .flat_map(|p| {
            p.payload.iter().map(move |&b| match p.pt {
                8 => alaw_decode(b),
                _ => ulaw_decode(b),
            })
        })
        .collect()
}

/// Asserts that `who` heard the `tone` (in over 90% of the windows) and hardly the `other`
/// (in under 5%).
fn assert_tone_not_other(pcm: &[i16], tone: f64, other: f64, who: &str) {
    let presence = tone_presence(pcm, tone);
    assert!(
        presence > 0.9,
        "{tone} Hz in {:.0}% of {who}'s windows",
        presence * 100.0
    );
    assert!(tone_presence(pcm, other) < 0.05);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tones_cross_both_ways_renumbered() {
    let engine = engine(Some(Duration::from_secs(30))).await;
    let (browser, mut session) = connect(&engine, options()).await;
    assert_eq!(session.browser_laws()[0].payload_type(), 0);
    let far = FarEnd::answering(&mut session, "0 101").await;
    let offer = &far.offer;
    assert!(
        offer.contains("m=audio ") && offer.contains(" RTP/AVP 0 8 101\r\n"),
        "{offer}"
    );
    let gw_rtp = far.gw_rtp;
    assert_eq!(gw_rtp, session.sip_rtp_address());
    assert_eq!(gw_rtp.port() % 2, 0);
    session.call_established();

    let far_task = far.spawn(3, tone_source(400.0));
    let browser_task = spawn_browser(browser, 3);
    let before = wait_for(
        &mut session,
        MediaEvent::BrowserConnected,
        Duration::from_secs(3),
    )
    .await;
    if !before.contains(&MediaEvent::SipMediaStarted) {
        wait_for(
            &mut session,
            MediaEvent::SipMediaStarted,
            Duration::from_secs(3),
        )
        .await;
    }
    let got = far_task.await.unwrap();
    let browser = browser_task.await.unwrap();

    // The far end got the browser's tone, as PCMU, from the gateway's RTP port, renumbered.
    let audio: Vec<&FarPacket> = got.iter().filter(|p| p.pt == 0).collect();
    assert!(audio.len() >= 50, "far end got {} packets", audio.len());
    assert!(audio.iter().all(|p| p.from == gw_rtp));
    let ssrc = audio[0].ssrc;
    assert!(audio.iter().all(|p| p.ssrc == ssrc));
    assert_ne!(
        Some(ssrc),
        browser.ssrc,
        "the far end sees the gateway's SSRC"
    );
    assert!(audio[0].marker, "the stream starts with a marker");
    for w in audio.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1));
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(160));
    }
    assert_tone_not_other(&decode(&audio), 1000.0, 400.0, "the far end");

    // The browser got the far end's tone.
    let heard = browser.received_with(0);
    assert!(heard.len() >= 50, "browser got {} packets", heard.len());
    assert!(
        heard.iter().all(|r| r.ssrc != 0x5151_5151),
        "the browser sees the gateway's SSRC"
    );
    let pcm: Vec<i16> = heard
        .iter()
        .flat_map(|r| r.payload.iter().map(|&b| ulaw_decode(b)))
        .collect();
    assert_tone_not_other(&pcm, 400.0, 1000.0, "the browser");

    drop(session);
    let counters = engine.counters().clone();
    settle(|| counters.sessions.load(Ordering::Relaxed) == 0).await;
    assert_eq!(counters.sessions.load(Ordering::Relaxed), 0);
    assert!(counters.packets_to_sip.load(Ordering::Relaxed) >= 50);
    assert!(counters.packets_to_browser.load(Ordering::Relaxed) >= 50);
    // The delay of every packet sent on was measured, from the kernel's stamp of its arrival
    // (a packet the relay passed before the browser leg could take it was not sent: at most a
    // few at the start).
    let mut text = String::new();
    counters.render(&mut text);
    let series = |name: &str, direction: &str| -> f64 {
        let prefix = format!(
            "siptoken_gateway_media_relay_delay_seconds_{name}{{direction=\"{direction}\"}} "
        );
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix}in\n{text}"));
        line.parse().unwrap()
    };
    for (direction, packets) in [
        ("to_sip", &counters.packets_to_sip),
        ("to_browser", &counters.packets_to_browser),
    ] {
        let (count, packets) = (series("count", direction), packets.load(Ordering::Relaxed));
        assert!(
            count >= 50.0 && count <= packets as f64 && count + 5.0 >= packets as f64,
            "{direction}: {count} delays for {packets} packets"
        );
        assert!(series("sum", direction) > 0.0, "{direction}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_from_an_unexpected_source_is_not_relayed() {
    let engine = engine(None).await;
    let (mut browser, mut session) = connect(&engine, options()).await;
    let far = FarEnd::answering(&mut session, "0").await;
    let gw_rtp = far.gw_rtp;
    // Two intruders aim a 2 kHz tone at the gateway's RTP port: another port on the far end's
    // host, and another host.
    let far_task = far.spawn(2, silent_source());
    let [t1, t2] = ["127.0.0.1:0", "127.0.0.2:0"].map(|intruder| {
        tokio::spawn(async move {
            let socket = UdpSocket::bind(intruder).await.unwrap();
            far_end(socket, gw_rtp, Duration::from_secs(2), tone_source(2000.0)).await
        })
    });
    browser
        .run(Duration::from_secs(2), &mut browser_tone(1000.0))
        .await;
    let (legit, i1, i2) = (
        far_task.await.unwrap(),
        t1.await.unwrap(),
        t2.await.unwrap(),
    );
    assert_eq!(
        wait_event(&mut session, Duration::from_millis(100)).await,
        Some(MediaEvent::BrowserConnected)
    );
    // Nothing reached the browser, and the legitimate far end still got the browser's audio.
    assert!(
        browser.received.is_empty(),
        "{} packets reached the browser",
        browser.received.len()
    );
    assert!(legit.len() >= 25);
    // The gateway never sent to the intruders.
    assert!(i1.is_empty() && i2.is_empty());
    assert_ne!(
        wait_event(&mut session, Duration::from_millis(200)).await,
        Some(MediaEvent::SipMediaStarted)
    );
    drop(session);
    let counters = engine.counters().clone();
    settle(|| counters.unexpected_source.load(Ordering::Relaxed) >= 150).await;
    assert!(counters.unexpected_source.load(Ordering::Relaxed) >= 150);
    assert_eq!(counters.packets_to_browser.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_both_ways_as_telephone_events() {
    let engine = engine(None).await;
    let (browser, mut session) = connect(&engine, options()).await;
    let far = FarEnd::answering(&mut session, "0 101").await;
    assert!(far.negotiated.telephone_event.is_some());
    // The far end sends digit 5 at tick 40 (7 packets), audio otherwise.
    let mut tone = Tone::new(400.0, 0.5);
    let source: FarSource = Box::new(move |i| {
        let ts = 1_000 + 160 * i as u32;
        match i {
            40..=44 => {
                let d = (i - 39) as u16 * 160;
                let end = i == 44;
                let payload = vec![5, if end { 0x8a } else { 0x0a }, (d >> 8) as u8, d as u8];
                let p = (101, i == 40, 1_000 + 160 * 40, payload);
                if end {
                    vec![p.clone(), p.clone(), p]
                } else {
                    vec![p]
                }
            }
            _ => vec![(0, false, ts, tone.pcmu_frame())],
        }
    });
    let far_task = far.spawn(3, source);
    let browser_task = spawn_browser(browser, 3);
    wait_for(
        &mut session,
        MediaEvent::BrowserConnected,
        Duration::from_secs(3),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    session.send_dtmf("1#").unwrap();
    assert!(session.send_dtmf("12x").is_err());
    let got = far_task.await.unwrap();
    let browser = browser_task.await.unwrap();

    // At the far end: two events on 101, 7 packets each, the first of each with the marker,
    // the last three with the end bit; sequence numbers continuous with the audio around them.
    let events: Vec<&FarPacket> = got.iter().filter(|p| p.pt == 101).collect();
    assert_eq!(events.len(), 14, "{events:?}");
    assert_eq!((events[0].payload[0], events[7].payload[0]), (1, 11));
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.marker, i % 7 == 0);
        assert_eq!(e.payload[1] & 0x80 != 0, i % 7 >= 4);
        assert_eq!(e.ts, events[i / 7 * 7].ts);
    }
    let first = got.iter().position(|p| p.pt == 101).unwrap();
    let last = got.iter().rposition(|p| p.pt == 101).unwrap();
    for w in got[first.saturating_sub(1)..(last + 2).min(got.len())].windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "no gap around the events"
        );
    }
    assert!(got[last + 1].marker, "audio resumes as a new talkspurt");
    assert!(
        got[first..last].iter().all(|p| p.pt == 101),
        "no audio during the events"
    );

    // At the browser: the far end's event on Chrome's type 126, payload untouched.
    let heard: Vec<_> = browser.received_with(126);
    assert_eq!(heard.len(), 7, "{heard:?}");
    assert!(heard[0].marker);
    assert!(heard
        .iter()
        .all(|r| r.payload[0] == 5 && r.timestamp == heard[0].timestamp));
    assert_eq!(heard[6].payload[1], 0x8a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pcma_only_far_end_gets_pcma() {
    let engine = engine(None).await;
    let (mut browser, mut session) = connect(&engine, options()).await;
    let far = FarEnd::answering(&mut session, "8").await;
    let far_task = far.spawn(2, pcma_tone_source(400.0));
    browser
        .run(Duration::from_secs(2), &mut browser_tone(1000.0))
        .await;
    let got = far_task.await.unwrap();
    let _ = wait_event(&mut session, Duration::from_millis(10)).await;
    // The browser sent PCMU; the far end only hears PCMA, still the 1 kHz tone.
    let audio: Vec<&FarPacket> = got.iter().collect();
    assert!(audio.len() >= 50);
    assert!(audio.iter().all(|p| p.pt == 8));
    assert!(tone_presence(&decode(&audio), 1000.0) > 0.9);
    // The far end's PCMA reaches the browser untouched (it negotiated both laws).
    let heard = browser.received_with(8);
    assert!(heard.len() >= 50);
    let pcm: Vec<i16> = heard
        .iter()
        .flat_map(|r| r.payload.iter().map(|&b| alaw_decode(b)))
        .collect();
    assert!(tone_presence(&pcm, 400.0) > 0.9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_call_uses_the_far_ends_law_on_both_legs() {
    let engine = engine(None).await;
    let far = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let far_addr = far.local_addr().unwrap();
    // The far end's INVITE offers PCMA first.
    let invite = far_sdp(far_addr, "8 0 101", "sendrecv");
    let law = siptoken_gateway::media::sdp::parse(&invite).unwrap().laws[0];
    let (mut browser, offer) = SimBrowser::offer().await;
    let (answer, mut session) = engine
        .create_for_browser_offer(
            &offer,
            SessionOptions {
                law: Some(law),
                ..options()
            },
        )
        .unwrap();
    let m = answer.lines().find(|l| l.starts_with("m=audio")).unwrap();
    assert!(
        m.ends_with(" 8 126"),
        "the browser is answered with PCMA only: {m}"
    );
    browser.accept_answer(&answer);
    let ok = session.answer_sip_offer(&invite).unwrap();
    assert!(ok.contains(" RTP/AVP 8 101\r\n"), "{ok}");
    let gw_rtp = sdp_rtp_address(&ok);
    let far_task = tokio::spawn(far_end(
        far,
        gw_rtp,
        Duration::from_secs(2),
        pcma_tone_source(400.0),
    ));
    let mut tone = Tone::new(1000.0, 0.5);
    let mut pcma: Source = Box::new(move || (8, tone.pcma_frame()));
    browser.run(Duration::from_secs(2), &mut pcma).await;
    let got = far_task.await.unwrap();
    assert!(got.len() >= 50 && got.iter().all(|p| p.pt == 8));
    assert!(tone_presence(&decode(&got.iter().collect::<Vec<_>>()), 1000.0) > 0.9);
    let heard = browser.received_with(8);
    assert!(heard.len() >= 50);
    drop(session);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        engine.counters().packets_converted.load(Ordering::Relaxed),
        0,
        "no conversion"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stops_the_audio_and_unhold_resumes_it() {
    let engine = engine(None).await;
    let (browser, mut session) = connect(&engine, options()).await;
    let far = FarEnd::answering(&mut session, "0 101").await;
    let far_addr = far.addr;
    let far_task = far.spawn(4, silent_source());
    let browser_task = spawn_browser(browser, 4);
    assert_eq!(
        wait_event(&mut session, Duration::from_secs(3)).await,
        Some(MediaEvent::BrowserConnected)
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let held_at = Instant::now();
    let reinvite = session.hold();
    assert!(reinvite.contains("a=sendonly\r\n"), "{reinvite}");
    let n = session
        .apply_sip_answer(&far_sdp(far_addr, "0 101", "recvonly"))
        .unwrap();
    assert!(!n.direction.receives());
    assert!(session.send_dtmf("1").is_err(), "no DTMF on hold");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let resumed_at = Instant::now();
    let reinvite = session.unhold();
    assert!(reinvite.contains("a=sendrecv\r\n"));
    session
        .apply_sip_answer(&far_sdp(far_addr, "0 101", "sendrecv"))
        .unwrap();
    let got = far_task.await.unwrap();
    drop(browser_task.await.unwrap());

    let before: Vec<&FarPacket> = got.iter().filter(|p| p.at < held_at).collect();
    let during = got
        .iter()
        .filter(|p| p.at > held_at + Duration::from_millis(50) && p.at < resumed_at)
        .count();
    let after: Vec<&FarPacket> = got.iter().filter(|p| p.at > resumed_at).collect();
    assert!(
        before.len() >= 20 && after.len() >= 20,
        "{} before, {} after",
        before.len(),
        after.len()
    );
    assert_eq!(during, 0, "audio sent while on hold");
    let (last, first) = (before.last().unwrap(), after[0]);
    assert_eq!(
        first.seq,
        last.seq.wrapping_add(1),
        "numbering continues after the hold"
    );
    assert!(first.marker);
    // The timestamp advanced by the hold's length (as the far end saw it, within 100 ms).
    let gap = f64::from(first.ts.wrapping_sub(last.ts));
    let expected = (first.at - last.at).as_secs_f64() * 8000.0;
    assert!(
        (gap - expected).abs() < 800.0,
        "timestamp gap {gap}, time gap {expected} samples"
    );
    assert!(gap > 6000.0, "the hold lasted about a second: {gap}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_timeout_once_established_and_only_then() {
    let engine = engine(Some(Duration::from_millis(800))).await;
    let (browser, mut session) = connect(&engine, options()).await;
    let far = FarEnd::answering(&mut session, "0").await;
    // The far end never sends.
    let far_task = far.spawn(3, silent_source());
    let browser_task = spawn_browser(browser, 3);
    assert_eq!(
        wait_event(&mut session, Duration::from_secs(2)).await,
        Some(MediaEvent::BrowserConnected)
    );
    // Ringing (not established): no timeout.
    assert_eq!(
        wait_event(&mut session, Duration::from_millis(1200)).await,
        None
    );
    let established = Instant::now();
    session.call_established();
    assert_eq!(
        wait_event(&mut session, Duration::from_secs(2)).await,
        Some(MediaEvent::MediaTimeout)
    );
    let after = established.elapsed();
    assert!(
        after >= Duration::from_millis(750),
        "timed out after {after:?}"
    );
    assert_eq!(
        wait_event(&mut session, Duration::from_millis(500)).await,
        None,
        "reported once"
    );
    assert_eq!(engine.counters().media_timeouts.load(Ordering::Relaxed), 1);
    far_task.await.unwrap();
    browser_task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dtls_fingerprint_mismatch_is_reported() {
    let engine = engine(None).await;
    let (mut browser, offer) = SimBrowser::offer().await;
    // Tamper with the browser's certificate fingerprint in the offer.
    let line = offer
        .lines()
        .find(|l| l.starts_with("a=fingerprint:sha-256 "))
        .unwrap();
    let hex = line.trim_start_matches("a=fingerprint:sha-256 ");
    // Flip the first hex digit of the fingerprint.
    let first = if hex.starts_with('0') { "1" } else { "0" };
    let flipped = format!("{first}{}", &hex[1..]);
    let offer = offer.replace(hex, &flipped);
    let (answer, mut session) = engine.create_for_browser_offer(&offer, options()).unwrap();
    browser.accept_answer(&answer);
    let run = spawn_browser(browser, 3);
    let event = wait_event(&mut session, Duration::from_secs(3)).await;
    assert_eq!(event, Some(MediaEvent::BrowserFailed(BrowserFailure::Dtls)));
    assert_eq!(
        engine.counters().browser_failures.load(Ordering::Relaxed),
        1
    );
    run.abort();
}

#[tokio::test]
async fn bad_offers_and_settings_are_errors() {
    let engine = engine(None).await;
    assert!(engine
        .create_for_browser_offer("not sdp", options())
        .is_err());
    // An Opus-only browser.
    let (_b, offer) = SimBrowser::offer().await;
    let opus_only = offer
        .replace(" 111 0 8 126", " 111")
        .replace("RTP/SAVPF 111 0 8 126", "RTP/SAVPF 111");
    assert_ne!(opus_only, offer);
    let e = engine
        .create_for_browser_offer(&opus_only, options())
        .unwrap_err();
    assert!(e.to_string().contains("no common codec"), "{e}");
    // Every interface without a public address to advertise.
    let e = MediaEngine::bind(&settings("0.0.0.0:0", None, None))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("webrtc_public_ip"));
    // With one, it is advertised.
    let public_ip = Some("198.51.100.10".parse().unwrap());
    let e = MediaEngine::bind(&settings("0.0.0.0:0", public_ip, None))
        .await
        .unwrap();
    assert_eq!(e.webrtc_address().ip().to_string(), "198.51.100.10");
    let (_b, offer) = SimBrowser::offer().await;
    let (answer, _s) = e.create_for_browser_offer(&offer, options()).unwrap();
    assert!(
        answer.contains(&format!(
            "198.51.100.10 {} typ host",
            e.webrtc_address().port()
        )),
        "{answer}"
    );
}
