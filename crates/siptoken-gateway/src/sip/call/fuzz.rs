//! A driver for fuzzing the call's handling of in-dialog input (the `call_in_dialog` fuzz
//! target): an established call (inbound or outbound) receives arbitrary datagrams, interleaved
//! with client commands and time passing. Invariants checked: no panic, every message the call
//! sends parses as exactly one SIP message, `Ended` at most once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::drive::{self, Driven};
use super::{Call, CallEvent, CallSettings, EndReason, Local, Output};
use crate::sip::message::{self, Message};
use crate::sip::transport::Kind;

const SDP: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0\r\n";

const CALLER_INVITE: &str = "INVITE sip:st-fuzz@10.0.0.1:5070 SIP/2.0\r\n\
    Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKfuzzinv\r\n\
    Record-Route: <sip:proxy.example.org;lr>\r\n\
    From: \"Caller\" <sip:+15551234@example.org>;tag=far\r\nTo: <sip:op@example.org>\r\n\
    Call-ID: fuzz-call@10.0.0.8\r\nCSeq: 20 INVITE\r\nContact: <sip:caller@10.0.0.8:5060>\r\n\
    Content-Type: application/sdp\r\n";

struct Driver {
    call: Call,
    now: Instant,
    ended: usize,
    /// Our tag, once known (for the scripted far end's requests).
    sent: Vec<Message>,
}

impl Driver {
    /// Starts driving `call` at `t0` (its first output taken).
    fn new(call: Call, t0: Instant) -> Driver {
        let mut d = Driver {
            call,
            now: t0,
            ended: 0,
            sent: Vec::new(),
        };
        d.pump();
        d
    }

    fn pump(&mut self) {
        while let Some(o) = self.call.poll_output() {
            match o {
                Output::Transmit(b) => {
                    let (m, used) = message::parse(&b, true).expect("the call sent invalid SIP");
                    assert_eq!(used, b.len(), "one message per output");
                    self.sent.push(m);
                }
                Output::Event(CallEvent::Ended { .. }) => {
                    self.ended += 1;
                    assert!(self.ended <= 1, "Ended twice");
                }
                Output::Event(_) => {}
            }
        }
        // Keep memory bounded across long inputs.
        if self.sent.len() > 64 {
            self.sent.drain(..32);
        }
    }

    /// `$TAG` and `$CID` in a datagram stand for our tag and the Call-ID (random, so a fuzzer
    /// could not guess them and would never get past the dialog match).
    fn substitute(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(bytes.len() + 64);
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"$TAG") {
                out.extend_from_slice(self.call.local_tag.as_bytes());
                i += 4;
            } else if bytes[i..].starts_with(b"$CID") {
                out.extend_from_slice(self.call.call_id.as_bytes());
                i += 4;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        out
    }

    fn feed(&mut self, bytes: &[u8]) {
        let bytes = self.substitute(bytes);
        if let Ok((m, _)) = message::parse(&bytes, false) {
            let _ = self.call.matches(&m);
            self.call.handle_message(&m, self.now);
            self.pump();
        }
    }

    fn advance(&mut self, d: Duration) {
        drive::advance(self, d);
    }
}

impl Driven for Driver {
    fn clock(&mut self) -> (&mut Call, &mut Instant) {
        (&mut self.call, &mut self.now)
    }

    fn pump(&mut self) {
        Driver::pump(self);
    }
}

fn local() -> Arc<Local> {
    Arc::new(Local {
        aor: "sip:op@example.org".into(),
        display_name: None,
        contact: "sip:st-fuzz@10.0.0.1:5070".into(),
        sent_by: "10.0.0.1:5070".into(),
        transport: Kind::Udp,
        route: "fuzz".into(),
        auth_name: "op".into(),
        password: Zeroizing::new("pw".into()),
    })
}

/// An inbound call, answered and acknowledged.
fn inbound(t0: Instant) -> Driver {
    let invite = format!(
        "{CALLER_INVITE}Content-Length: {}\r\n\r\n{}",
        SDP.len(),
        String::from_utf8_lossy(SDP)
    );
    let (m, _) = message::parse(invite.as_bytes(), true).expect("valid INVITE");
    let call = Call::incoming(local(), CallSettings::default(), &m, t0).expect("accepted");
    let mut d = Driver::new(call, t0);
    d.call.answer(SDP.to_vec(), t0).expect("answer");
    d.pump();
    d.feed(
        b"ACK sip:st-fuzz@10.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKfuzzack\r\n\
          From: \"Caller\" <sip:+15551234@example.org>;tag=far\r\nTo: <sip:op@example.org>;tag=$TAG\r\n\
          Call-ID: $CID\r\nCSeq: 20 ACK\r\nContent-Length: 0\r\n\r\n",
    );
    d
}

/// An outbound call, answered (its 200 acknowledged).
fn outbound(t0: Instant) -> Driver {
    let call = Call::outgoing(
        local(),
        CallSettings::default(),
        "sip:bob@example.org",
        SDP.to_vec(),
        t0,
    )
    .expect("valid target");
    let mut d = Driver::new(call, t0);
    let invite = d.sent.pop().expect("INVITE sent");
    let mut ok = String::from("SIP/2.0 200 OK\r\n");
    for (name, value) in invite.headers() {
        if matches!(name.as_str(), "via" | "from" | "call-id" | "cseq") {
            ok.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    ok.push_str(&format!(
        "To: <sip:bob@example.org>;tag=far\r\nContact: <sip:bob@10.0.0.2>\r\n\
         Record-Route: <sip:proxy.example.org;lr>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{}",
        SDP.len(),
        String::from_utf8_lossy(SDP)
    ));
    d.feed(ok.as_bytes());
    d
}

/// What a run saw (for the driver's own tests).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// `Ended` events (never more than one).
    pub ended: usize,
    /// Messages the call sent after set-up.
    pub sent: usize,
}

/// Runs one fuzz input: byte 0 picks the direction (even: inbound, odd: outbound); the rest is
/// split at NUL bytes into chunks, each one a command (its first byte) and a datagram (the rest,
/// `$TAG`/`$CID` standing for our tag and the Call-ID; the far end's tag is `far`), followed by
/// time passing.
pub fn in_dialog(data: &[u8]) -> Seen {
    let Some((&first, rest)) = data.split_first() else {
        return Seen::default();
    };
    let t0 = Instant::now();
    let mut d = if first & 1 == 0 {
        inbound(t0)
    } else {
        outbound(t0)
    };
    d.sent.clear();
    let mut sent = 0;
    for chunk in rest.split(|&b| b == 0).take(16) {
        let Some((&cmd, datagram)) = chunk.split_first() else {
            continue;
        };
        let now = d.now;
        let _ = match cmd % 12 {
            0 => d.call.hold(SDP.to_vec(), now),
            1 => d.call.unhold(SDP.to_vec(), now),
            2 => d.call.send_dtmf("1#", now),
            3 => d.call.transfer("sip:1003@example.org", now),
            4 => d.call.accept_offer(SDP.to_vec(), now),
            5 => d.call.reject_offer(488, now),
            6 => d.call.hangup(now),
            7 => d.call.terminate(EndReason::MediaTimeout, now),
            _ => Ok(()),
        };
        d.pump();
        d.feed(datagram);
        d.advance(Duration::from_millis(u64::from(cmd) * 250));
        sent += d.sent.len();
        d.sent.clear();
    }
    d.advance(Duration::from_secs(120));
    Seen {
        ended: d.ended,
        sent: sent + d.sent.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BYE: &[u8] =
        b"BYE sip:st-fuzz@10.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKb\r\n\
        From: <sip:+15551234@example.org>;tag=far\r\nTo: <sip:op@example.org>;tag=$TAG\r\n\
        Call-ID: $CID\r\nCSeq: 21 BYE\r\n\r\n";

    #[test]
    fn the_driver_reaches_the_dialog_through_the_placeholders() {
        for direction in [0u8, 1] {
            let mut input = vec![direction, 0x0b];
            input.extend_from_slice(BYE);
            let seen = in_dialog(&input);
            assert_eq!(seen.ended, 1, "the BYE ended the call ({direction})");
            assert!(seen.sent >= 1, "and was answered");
        }
    }

    #[test]
    fn the_driver_survives_garbage_and_every_command() {
        assert_eq!(in_dialog(b""), Seen::default());
        in_dialog(b"\x00");
        in_dialog(b"\x01\x0bgarbage\x00\x06");
        let all = in_dialog(b"\x01\x00\x00\x01\x00\x02\x00\x03\x00\x04\x00\x05\x00\x06\x00\x07");
        assert_eq!(
            all.ended, 1,
            "hangup ended it, the later terminate did not again"
        );
    }

    #[test]
    fn the_committed_corpus_runs() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/corpus/call_in_dialog"
        );
        let mut n = 0;
        for entry in std::fs::read_dir(dir).expect("the corpus directory") {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            in_dialog(&bytes);
            n += 1;
        }
        assert!(n >= 6);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Sequences of corpus requests, mutated, in both directions: the driver's invariants
        /// hold (a cheap stand-in for the libFuzzer run, which needs nightly).
        #[test]
        fn mutated_sequences_keep_the_invariants(
            direction in 0u8..2,
            steps in proptest::collection::vec(
                (0u8..14, 0usize..6, proptest::collection::vec((0usize..400, proptest::prelude::any::<u8>()), 0..4)),
                1..6,
            ),
        ) {
            let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/corpus/call_in_dialog");
            let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect();
            seeds.sort();
            let mut input = vec![direction];
            for (cmd, which, edits) in steps {
                // A seed's first datagram: after its direction and command bytes.
                let seed = &seeds[which % seeds.len()];
                let mut datagram: Vec<u8> = seed[2..].split(|&b| b == 0).next().unwrap().to_vec();
                for (at, byte) in edits {
                    if !datagram.is_empty() {
                        let i = at % datagram.len();
                        datagram[i] = if byte == 0 { b' ' } else { byte };
                    }
                }
                input.push(if cmd == 0 { 12 } else { cmd });
                input.extend_from_slice(&datagram);
                input.push(0);
            }
            let seen = in_dialog(&input);
            proptest::prop_assert!(seen.ended <= 1);
        }
    }

    #[test]
    fn setup_reaches_an_established_call_both_ways() {
        let t0 = Instant::now();
        for mut d in [inbound(t0), outbound(t0)] {
            assert!(!d.call.is_ended());
            assert_eq!(d.call.phase, super::super::Phase::Confirmed);
            d.call.hangup(t0).unwrap();
            d.pump();
            assert_eq!(d.ended, 1);
            assert_eq!(d.sent.last().and_then(|m| m.method()), Some("BYE"));
        }
    }
}
