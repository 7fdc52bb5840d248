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
use std::time::{Duration, Instant};

use siptoken_gateway::media::g711::Law;
use siptoken_gateway::media::packet::{self, RtpHeader};
use siptoken_gateway::media::relay::{Inbound, LegCodecs, Outbound, Relay};
use siptoken_gateway::media::rtp::SipLeg;
use siptoken_gateway::media::webrtc::loopback::Loopback;
use siptoken_gateway::media::webrtc::{self, BrowserOutput};
use str0m::rtp::RtpWrite;
use str0m::{Input, Output, RtcConfig};

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

/// A str0m client offering PCMU only, connected in memory to the gateway's browser leg.
fn connected_pair() -> Loopback {
    let mut config = RtcConfig::new().clear_codecs();
    config.codec_config().enable_pcmu(true, false);
    Loopback::connect(config, &[Law::Pcmu]).expect("the in-memory pair connects")
}

fn bench_browser_in() {
    let mut pair = connected_pair();
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
    let mut pair = connected_pair();
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
