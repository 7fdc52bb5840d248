//! CPU per relayed packet in the media layer, without sockets (what the gateway adds on top of
//! the two UDP syscalls every relayed packet costs anyway): `cargo bench -p siptoken-gateway
//! --bench media_relay`. Prints nanoseconds per packet for each stage; a benchmark, not a test.
//!
//! - `relay`: the relay alone (renumbering, payload-type mapping) for a 20 ms PCMU packet;
//! - `sip in`: SIP-leg checks (source, RTP parse, reception statistics) + relay + RTP write;
//! - `browser in`: an SRTP packet from a browser (a str0m client, connected in memory with
//!   DTLS-SRTP) through str0m (SRTP decrypt, RTP mode) + relay + RTP write for the far end;
//! - `browser out`: relayed RTP into str0m (SRTP encrypt) until its datagram comes out.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use siptoken_gateway::media::g711::Law;
use siptoken_gateway::media::packet::{self, RtpHeader};
use siptoken_gateway::media::relay::{Inbound, LegCodecs, Outbound, Relay};
use siptoken_gateway::media::rtp::SipLeg;
use siptoken_gateway::media::webrtc::{self, BrowserLeg, BrowserOutput, WebRtcContext};
use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};

const PACKETS: u64 = 200_000;

fn report(name: &str, start: Instant, n: u64) {
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!("{name:<12} {ns:>8.0} ns/packet ({n} packets)");
}

fn relay() -> Relay {
    let mut r = Relay::new();
    let codecs = LegCodecs {
        laws: vec![Law::Pcmu],
        telephone_event_send: Some(101),
        telephone_event_receive: vec![101],
    };
    r.set_browser_codecs(codecs.clone());
    r.set_sip_codecs(codecs);
    r
}

fn bench_relay() {
    let mut r = relay();
    let payload = [0xffu8; 160];
    let t = Instant::now();
    let start = Instant::now();
    for i in 0..PACKETS {
        let p = Inbound {
            ssrc: 1,
            seq: 1000 + i,
            timestamp: (160 * i) as u32,
            marker: false,
            payload_type: 0,
            payload: &payload,
        };
        black_box(r.to_sip.forward(t, p));
    }
    report("relay", start, PACKETS);
}

fn bench_sip_in() {
    let now = Instant::now();
    let far: SocketAddr = "192.0.2.7:4000".parse().unwrap();
    let mut leg = SipLeg::new(now, 9, "bench".into(), None);
    leg.set_remote(Some(far), None);
    let mut r = relay();
    let packets: Vec<Vec<u8>> = (0..1024u16)
        .map(|i| {
            let h = RtpHeader {
                marker: false,
                payload_type: 0,
                seq: i,
                timestamp: u32::from(i) * 160,
                ssrc: 5,
            };
            let mut b = Vec::new();
            packet::write_rtp(&mut b, &h, &[0xffu8; 160]);
            b
        })
        .collect();
    let mut out = Vec::with_capacity(200);
    let start = Instant::now();
    for i in 0..PACKETS {
        let data = &packets[(i % 1024) as usize];
        let a = leg.on_rtp(now, far, data).unwrap();
        if let Some(o) = r.to_browser.forward(now, a.inbound(data)) {
            packet::write_rtp(&mut out, &o.header(9), o.payload);
            black_box(&out);
        }
    }
    report("sip in", start, PACKETS);
}

/// A str0m client and the gateway's browser leg, connected in memory.
struct Pair {
    client: Rtc,
    mid: Mid,
    leg: BrowserLeg,
    client_addr: SocketAddr,
    gateway_addr: SocketAddr,
    now: Instant,
}

impl Pair {
    fn connect() -> Pair {
        let client_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let gateway_addr: SocketAddr = "10.0.0.2:30000".parse().unwrap();
        let mut now = Instant::now();
        let mut config = RtcConfig::new()
            .set_rtp_mode(true)
            .set_crypto_provider(Arc::new(siptoken_gateway::media::dtls::crypto_provider()))
            .clear_codecs();
        config.codec_config().enable_pcmu(true, false);
        let mut client = config.build(now);
        client.add_local_candidate(Candidate::host(client_addr, "udp").unwrap());
        let mut change = client.sdp_api();
        let mid = change.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let (offer, pending) = change.apply().unwrap();
        let ctx = WebRtcContext::new(gateway_addr).unwrap();
        let (leg, answer) =
            BrowserLeg::answer(now, &ctx, &offer.to_sdp_string(), &[Law::Pcmu]).unwrap();
        client
            .sdp_api()
            .accept_answer(pending, SdpAnswer::from_sdp_string(&answer).unwrap())
            .unwrap();
        let mut pair = Pair {
            client,
            mid,
            leg,
            client_addr,
            gateway_addr,
            now,
        };
        let mut client_up = false;
        for _ in 0..20_000 {
            client_up |= pair.step();
            if client_up && pair.leg.is_connected() {
                return pair;
            }
            now += Duration::from_millis(1);
            pair.now = now;
            let _ = pair.client.handle_input(Input::Timeout(now));
            pair.leg.handle_timeout(now);
        }
        panic!("no connection");
    }

    /// Moves every pending datagram between the two; true when the client reports connected.
    fn step(&mut self) -> bool {
        let mut connected = false;
        loop {
            let mut moved = false;
            while let Ok(o) = self.client.poll_output() {
                match o {
                    Output::Timeout(_) => break,
                    Output::Transmit(t) => {
                        self.leg.receive(self.now, self.client_addr, &t.contents);
                        moved = true;
                    }
                    Output::Event(Event::Connected) => connected = true,
                    Output::Event(_) => {}
                }
            }
            loop {
                match self.leg.poll() {
                    BrowserOutput::Timeout(_) => break,
                    BrowserOutput::Transmit(t) => {
                        let r = Receive::new(
                            Protocol::Udp,
                            self.gateway_addr,
                            self.client_addr,
                            &t.contents,
                        )
                        .unwrap();
                        let _ = self.client.handle_input(Input::Receive(self.now, r));
                        moved = true;
                    }
                    _ => {}
                }
            }
            if !moved {
                return connected;
            }
        }
    }
}

fn bench_browser_in() {
    let mut pair = Pair::connect();
    // The client's SRTP datagrams, made up front.
    let mut datagrams = Vec::new();
    let ssrc = pair
        .client
        .direct_api()
        .stream_tx_by_mid(pair.mid, None)
        .map(|s| s.ssrc())
        .expect("the client's send stream");
    let payload = vec![0xffu8; 160];
    for i in 0..1024u64 {
        pair.now += Duration::from_millis(20);
        let now = pair.now;
        pair.client
            .direct_api()
            .stream_tx(&ssrc)
            .unwrap()
            .write_rtp(RtpWrite::new(
                0.into(),
                (i + 1).into(),
                (160 * i) as u32,
                now,
                payload.clone(),
            ));
        let _ = pair.client.handle_input(Input::Timeout(now));
        while let Ok(o) = pair.client.poll_output() {
            match o {
                Output::Timeout(_) => break,
                // SRTP only: not STUN consent checks, not SRTCP (types 200-204 in the clear).
                Output::Transmit(t)
                    if t.contents[0] >> 6 == 2 && !(192..=223).contains(&t.contents[1]) =>
                {
                    datagrams.push(t.contents.to_vec())
                }
                _ => {}
            }
        }
    }
    assert!(datagrams.len() >= 1000, "{} datagrams", datagrams.len());
    // Feed them (each once: SRTP rejects replays).
    let mut r = relay();
    let mut out = Vec::with_capacity(200);
    let mut relayed = 0u64;
    let start = Instant::now();
    for d in &datagrams {
        pair.leg.receive(pair.now, pair.client_addr, d);
        loop {
            match pair.leg.poll() {
                BrowserOutput::Timeout(_) => break,
                BrowserOutput::Rtp(p) => {
                    if let Some(o) = r.to_sip.forward(pair.now, webrtc::inbound(&p)) {
                        packet::write_rtp(&mut out, &o.header(9), o.payload);
                        relayed += 1;
                    }
                }
                _ => {}
            }
        }
    }
    report("browser in", start, datagrams.len() as u64);
    assert_eq!(relayed, datagrams.len() as u64);
}

fn bench_browser_out() {
    let mut pair = Pair::connect();
    let payload = [0xffu8; 160];
    let mut sent = 0u64;
    let n = PACKETS / 4;
    let start = Instant::now();
    for i in 0..n {
        pair.now += Duration::from_millis(20);
        let now = pair.now;
        let o = Outbound {
            seq: 100 + i,
            timestamp: (160 * i) as u32,
            marker: i == 0,
            payload_type: 0,
            payload: &payload,
        };
        pair.leg.write(now, &o);
        pair.leg.handle_timeout(now);
        loop {
            match pair.leg.poll() {
                BrowserOutput::Timeout(_) => break,
                BrowserOutput::Transmit(t) => {
                    black_box(&t);
                    sent += 1;
                }
                _ => {}
            }
        }
    }
    report("browser out", start, n);
    assert!(sent >= n);
}

fn main() {
    bench_relay();
    bench_sip_in();
    bench_browser_in();
    bench_browser_out();
}
