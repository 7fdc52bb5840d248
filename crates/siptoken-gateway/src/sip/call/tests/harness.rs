//! A virtual clock and a scripted far end for driving one [`Call`]: every message the call sends
//! is parsed (so a malformed output fails the test), every event collected.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::sip::call::drive::{self, Driven};
use crate::sip::call::{Call, CallError, CallEvent, CallSettings, Local, Output};
use crate::sip::compose;
use crate::sip::message::{self, Message};
use crate::sip::transport::Kind;

pub const ROUTE: &str = "0a1b2c3d4e5f60718293a4b5";
pub const OFFER: &[u8] = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=sendrecv\r\n";
pub const ANSWER: &[u8] = b"v=0\r\no=- 7 7 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=sendrecv\r\n";
pub const HOLD: &[u8] = b"v=0\r\no=- 1 2 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 8 101\r\na=sendonly\r\n";
pub const HELD_ANSWER: &[u8] = b"v=0\r\no=- 7 8 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 101\r\na=recvonly\r\n";

pub fn local(transport: Kind) -> Arc<Local> {
    Arc::new(Local {
        aor: "sip:op@example.org".into(),
        display_name: Some("Operator".into()),
        contact: format!("sip:st-{ROUTE}@10.0.0.1:5070"),
        sent_by: "10.0.0.1:5070".into(),
        transport,
        route: ROUTE.into(),
        auth_name: "op".into(),
        password: Zeroizing::new("secret".into()),
    })
}

pub fn parse(bytes: &[u8]) -> Message {
    match message::parse(bytes, true) {
        Ok((m, used)) => {
            assert_eq!(used, bytes.len(), "one message per output");
            m
        }
        Err(e) => panic!(
            "the call sent invalid SIP ({e}): {}",
            String::from_utf8_lossy(bytes)
        ),
    }
}

impl Driven for Run {
    fn clock(&mut self) -> (&mut Call, &mut Instant) {
        (&mut self.call, &mut self.now)
    }

    fn pump(&mut self) {
        Run::pump(self);
    }
}

/// One call on a virtual clock. What it sent and told its owner is read with
/// [`Run::take_sent`] and [`Run::take_events`], so each test sees every output once.
pub struct Run {
    pub call: Call,
    pub now: Instant,
    t0: Instant,
    sent: Vec<Message>,
    events: Vec<CallEvent>,
}

impl Run {
    pub fn new(call: Call, t0: Instant) -> Run {
        let mut r = Run {
            call,
            t0,
            now: t0,
            sent: Vec::new(),
            events: Vec::new(),
        };
        r.pump();
        r
    }

    /// An outbound call over UDP to sip:bob@example.org.
    pub fn outgoing() -> Run {
        Run::outgoing_with(Kind::Udp)
    }

    pub fn outgoing_with(kind: Kind) -> Run {
        let t0 = Instant::now();
        let call = Call::outgoing(
            local(kind),
            CallSettings::default(),
            "sip:bob@example.org",
            OFFER.to_vec(),
            t0,
        )
        .unwrap();
        Run::new(call, t0)
    }

    /// An inbound call over UDP from `far` (its INVITE).
    pub fn incoming(far: &Far) -> Run {
        Run::incoming_with(far, Kind::Udp, Some(OFFER))
    }

    pub fn incoming_with(far: &Far, kind: Kind, offer: Option<&[u8]>) -> Run {
        let t0 = Instant::now();
        let invite = parse(far.invite(offer).as_bytes());
        let call = Call::incoming(local(kind), CallSettings::default(), &invite, t0).unwrap();
        Run::new(call, t0)
    }

    /// An outbound call over UDP whose INVITE was sent, and the far end that answers it.
    pub fn calling() -> (Run, Message, Far) {
        let mut run = Run::outgoing();
        let invite = run.one_sent();
        let far = Far::callee(&invite);
        (run, invite, far)
    }

    /// [`Run::calling`] after the far end's 180 (its event consumed).
    pub fn ringing_out() -> (Run, Message, Far) {
        let (mut run, invite, far) = Run::calling();
        run.input(&far.answer(&invite, 180, None));
        run.take_events();
        (run, invite, far)
    }

    /// An inbound call over UDP ringing: 100 and 180 sent, `Incoming` emitted (all consumed),
    /// and the caller knowing our tag.
    pub fn ringing_in() -> (Run, Far) {
        Run::ringing_in_with(Kind::Udp, Some(OFFER))
    }

    /// [`Run::ringing_in`] over `kind`, the INVITE carrying `offer`.
    pub fn ringing_in_with(kind: Kind, offer: Option<&[u8]>) -> (Run, Far) {
        let mut far = Far::caller();
        let mut run = Run::incoming_with(&far, kind, offer);
        far.learn(&run.take_sent()[1]);
        run.take_events();
        (run, far)
    }

    /// Runs a client command at the current time (it must be accepted) and takes the output.
    pub fn command(&mut self, command: impl FnOnce(&mut Call, Instant) -> Result<(), CallError>) {
        command(&mut self.call, self.now).unwrap();
        self.pump();
    }

    /// The status codes of the responses sent since the last take, in ascending order.
    pub fn sorted_codes(&mut self) -> Vec<u16> {
        let mut codes: Vec<u16> = self.take_sent().iter().map(|m| m.code().unwrap()).collect();
        codes.sort();
        codes
    }

    pub fn pump(&mut self) {
        while let Some(o) = self.call.poll_output() {
            match o {
                Output::Transmit(b) => self.sent.push(parse(&b)),
                Output::Event(e) => self.events.push(e),
            }
        }
    }

    pub fn take_sent(&mut self) -> Vec<Message> {
        std::mem::take(&mut self.sent)
    }

    pub fn take_events(&mut self) -> Vec<CallEvent> {
        std::mem::take(&mut self.events)
    }

    /// The one message sent since the last take (fails otherwise).
    pub fn one_sent(&mut self) -> Message {
        let mut s = self.take_sent();
        assert_eq!(
            s.len(),
            1,
            "expected one message, got {:?}",
            s.iter().map(|m| m.start.clone()).collect::<Vec<_>>()
        );
        s.pop().unwrap()
    }

    pub fn input(&mut self, text: &str) {
        let m = parse(text.as_bytes());
        assert!(self.call.matches(&m), "the call should claim {:?}", m.start);
        self.call.handle_message(&m, self.now);
        self.pump();
    }

    /// Feeds `far`'s re-INVITE offering `sdp` and takes what it caused: the offer is pending.
    pub fn reinvited(&mut self, far: &mut Far, sdp: &[u8]) {
        self.input(&far.reinvite(Some(sdp)));
        self.take_sent();
        self.take_events();
    }

    /// Sends `digits` as DTMF and feeds `far`'s `code` answer to the (one) INFO.
    pub fn dtmf_answered(&mut self, far: &Far, digits: &str, code: u16) {
        self.command(|c, now| c.send_dtmf(digits, now));
        let info = self.one_sent();
        self.input(&far.answer(&info, code, None));
    }

    /// Feeds `text` without the `matches` check (broken input) and returns the status of the
    /// one response sent.
    pub fn answer_code(&mut self, text: &str) -> Option<u16> {
        self.input_unchecked(&parse(text.as_bytes()));
        self.one_sent().code()
    }

    /// Feeds a message without the `matches` check (strays, malformed input).
    pub fn input_unchecked(&mut self, m: &Message) {
        self.call.handle_message(m, self.now);
        self.pump();
    }

    /// Moves the clock forward by `d`, firing every timer due on the way at its time.
    pub fn advance(&mut self, d: Duration) {
        drive::advance(self, d);
    }

    /// Checks that the client heard exactly `event` (a failure it is told about) and that the
    /// call goes on.
    pub fn goes_on_after(&mut self, event: CallEvent) {
        assert_eq!(self.take_events(), [event]);
        assert!(!self.call.is_ended());
    }

    /// Takes a final failure to an INVITE that no longer matters (the call has ended, or it is
    /// a retransmission): only an ACK goes out, the client hears nothing more (no second
    /// Ended), and the call winds down within 40 s.
    pub fn only_acked(&mut self, failure: &str) {
        self.input(failure);
        assert_eq!(starts(&self.take_sent()), ["ACK"]);
        assert!(self.take_events().is_empty(), "no second Ended");
        self.finish(Duration::from_secs(40));
    }

    /// Runs timers until the call is done (at most `limit` of virtual time).
    pub fn finish(&mut self, limit: Duration) {
        let end = self.now + limit;
        while !self.call.is_done() {
            let Some(t) = self.call.poll_timeout() else {
                break;
            };
            assert!(t <= end, "still not done at the limit");
            self.now = self.now.max(t);
            self.call.handle_timeout(self.now);
            self.pump();
        }
        assert!(self.call.is_done(), "no timer left but not done");
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.t0
    }

    /// The single `Ended` among the events so far (consumed with the others).
    pub fn ended(&mut self) -> (&'static str, Option<u16>) {
        let ended: Vec<_> = self
            .take_events()
            .into_iter()
            .filter_map(|e| match e {
                CallEvent::Ended { reason, sip_status } => Some((reason.as_str(), sip_status)),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1, "exactly one Ended: {ended:?}");
        ended[0]
    }
}

fn body_headers(body: Option<&[u8]>, content_type: &str) -> (String, String) {
    match body {
        Some(b) => (
            format!(
                "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                b.len()
            ),
            String::from_utf8(b.to_vec()).unwrap(),
        ),
        None => ("Content-Length: 0\r\n".into(), String::new()),
    }
}

/// A response to `req` as the far end sends it: Via, From, Call-ID, CSeq copied, To with
/// `to_tag` added (not for 100), `extra` header lines, an SDP body.
pub fn respond(req: &Message, code: u16, to_tag: &str, extra: &str, body: Option<&[u8]>) -> String {
    let mut out = format!("SIP/2.0 {code} Whatever\r\n");
    for v in req.headers_named("via") {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    let to = req.header("to").unwrap();
    let to = if compose::has_tag(to) || code == 100 {
        to.to_owned()
    } else {
        format!("{to};tag={to_tag}")
    };
    out.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {}\r\n",
        req.header("from").unwrap(),
        req.header("call-id").unwrap(),
        req.header("cseq").unwrap()
    ));
    out.push_str(extra);
    let (h, b) = body_headers(body, "application/sdp");
    out.push_str(&h);
    out.push_str("\r\n");
    out.push_str(&b);
    out
}

/// The far end of a dialog: its tag, Contact, CSeq counter and the dialog's identity as it
/// sees it.
pub struct Far {
    pub tag: String,
    pub contact: String,
    pub call_id: String,
    pub cseq: u32,
    /// Its From/To value (without tag) and ours.
    pub party: String,
    pub our_party: String,
    pub our_tag: Option<String>,
    pub record_route: &'static str,
    branch_n: u32,
}

impl Far {
    /// The far end of an outbound call, learning the dialog from our INVITE.
    pub fn callee(invite: &Message) -> Far {
        Far {
            tag: "callee1".into(),
            contact: "sip:bob@10.0.0.2:5062".into(),
            call_id: invite.header("call-id").unwrap().into(),
            cseq: 100,
            party: compose::without_tag(invite.header("to").unwrap()),
            our_party: compose::without_tag(invite.header("from").unwrap()),
            our_tag: compose::tag_of(invite.header("from").unwrap()).map(str::to_owned),
            record_route: "Record-Route: <sip:proxy.example.org;lr>\r\n",
            branch_n: 0,
        }
    }

    /// A caller calling the operator.
    pub fn caller() -> Far {
        Far {
            tag: "caller1".into(),
            contact: "sip:+15551234@10.0.0.8:5060".into(),
            call_id: "in-call-1@10.0.0.8".into(),
            cseq: 20,
            party: "\"Jane Doe\" <sip:+15551234@example.org>".into(),
            our_party: "<sip:op@example.org>".into(),
            our_tag: None,
            record_route: "Record-Route: <sip:proxy.example.org;lr>\r\n",
            branch_n: 0,
        }
    }

    pub fn branch(&mut self) -> String {
        self.branch_n += 1;
        format!("z9hG4bKfar{}", self.branch_n)
    }

    /// Our 2xx/1xx to an inbound INVITE tells the far end our tag.
    pub fn learn(&mut self, response: &Message) {
        if let Some(t) = response.header("to").and_then(compose::tag_of) {
            self.our_tag = Some(t.to_owned());
        }
    }

    /// The caller's initial INVITE (CSeq `self.cseq`, branch z9hG4bKinv).
    pub fn invite(&self, body: Option<&[u8]>) -> String {
        let (h, b) = body_headers(body, "application/sdp");
        format!(
            "INVITE sip:st-{ROUTE}@10.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy1\r\n\
             Via: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bKinv\r\n\
             {}From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} INVITE\r\n\
             Contact: <{}>\r\nMax-Forwards: 69\r\n{h}\r\n{b}",
            self.record_route,
            self.party,
            self.tag,
            self.our_party,
            self.call_id,
            self.cseq,
            self.contact
        )
    }

    /// A CANCEL of the initial INVITE.
    pub fn cancel(&self) -> String {
        format!(
            "CANCEL sip:st-{ROUTE}@10.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKproxy1\r\n\
             Via: SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bKinv\r\n\
             From: {};tag={}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} CANCEL\r\nContent-Length: 0\r\n\r\n",
            self.party, self.tag, self.our_party, self.call_id, self.cseq
        )
    }

    /// The ACK of our 2xx to the INVITE with CSeq `cseq` (a new branch), with an optional body.
    pub fn ack(&mut self, cseq: u32, body: Option<&[u8]>) -> String {
        let branch = self.branch();
        self.in_dialog_with("ACK", cseq, &branch, "", body, "application/sdp")
    }

    /// The ACK of our 2xx to the far end's latest INVITE (CSeq `self.cseq`).
    pub fn ack_latest(&mut self, body: Option<&[u8]>) -> String {
        self.ack(self.cseq, body)
    }

    /// A re-INVITE in the dialog offering `sdp` (none: an offerless re-INVITE).
    pub fn reinvite(&mut self, sdp: Option<&[u8]>) -> String {
        let content_type = if sdp.is_some() { "application/sdp" } else { "" };
        self.request("INVITE", "", sdp, content_type)
    }

    /// A DTMF INFO (application/dtmf-relay) in the dialog.
    pub fn dtmf_info(&mut self, body: &[u8]) -> String {
        self.request("INFO", "", Some(body), "application/dtmf-relay")
    }

    /// A bodiless `method` request in the dialog with `part` replaced by `by` (broken input).
    pub fn altered(&mut self, method: &str, part: &str, by: &str) -> String {
        self.request(method, "", None, "").replace(part, by)
    }

    /// A new request in the dialog (next CSeq, new branch).
    pub fn request(
        &mut self,
        method: &str,
        extra: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> String {
        self.cseq += 1;
        let branch = self.branch();
        self.in_dialog_with(method, self.cseq, &branch, extra, body, content_type)
    }

    pub fn in_dialog_with(
        &self,
        method: &str,
        cseq: u32,
        branch: &str,
        extra: &str,
        body: Option<&[u8]>,
        content_type: &str,
    ) -> String {
        let (h, b) = body_headers(body, content_type);
        let our_tag = self.our_tag.as_deref().expect("the far end knows our tag");
        format!(
            "{method} sip:st-{ROUTE}@10.0.0.1:5070 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 10.0.0.9:5060;branch={branch}\r\n\
             From: {};tag={}\r\nTo: {};tag={our_tag}\r\nCall-ID: {}\r\nCSeq: {cseq} {method}\r\n\
             Contact: <{}>\r\nMax-Forwards: 70\r\n{extra}{h}\r\n{b}",
            self.party, self.tag, self.our_party, self.call_id, self.contact
        )
    }

    /// Our request's response from this far end (its tag and Contact, Record-Route on INVITE
    /// 1xx/2xx).
    pub fn answer(&self, req: &Message, code: u16, body: Option<&[u8]>) -> String {
        let mut extra = String::new();
        if req.method().is_none_or(|m| m == "INVITE") && (101..300).contains(&code) {
            extra.push_str(self.record_route);
            extra.push_str(&format!("Contact: <{}>\r\n", self.contact));
        }
        respond(req, code, &self.tag, &extra, body)
    }
}

/// Events without the ones a test does not care about.
pub fn names(events: &[CallEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            CallEvent::Ended { reason, .. } => format!("Ended({})", reason.as_str()),
            other => format!("{other:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap()
                .to_owned(),
        })
        .collect()
}

/// The methods (or status codes) of sent messages, e.g. `["ACK", "BYE"]`, `["200"]`.
pub fn starts(sent: &[Message]) -> Vec<String> {
    sent.iter()
        .map(|m| match (m.method(), m.code()) {
            (Some(meth), _) => meth.to_owned(),
            (_, Some(c)) => c.to_string(),
            _ => unreachable!(),
        })
        .collect()
}
