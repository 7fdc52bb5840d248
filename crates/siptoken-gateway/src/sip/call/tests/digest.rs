//! Digest challenges on the requests of a call: INVITE (401 and 407, and both), stale nonces,
//! refused credentials, and BYE, re-INVITE, REFER and INFO challenged in the dialog. The
//! credentials are checked by recomputing the digest, not just by their presence.

use std::time::{Duration, Instant};

use super::confirmed_outbound;
use super::harness::{respond, starts, Run, ANSWER, HOLD, OFFER};
use crate::sip::call::{Call, CallError, CallEvent};
use crate::sip::digest::{self, Challenge};
use crate::sip::message::{Message, StartLine};

const PROXY: &str = "Proxy-Authenticate: Digest realm=\"example.org\", nonce=\"pn1\", qop=\"auth\", algorithm=MD5\r\n";
const WWW: &str =
    "WWW-Authenticate: Digest realm=\"example.org\", nonce=\"wn1\", algorithm=SHA-256\r\n";

/// Runs `command` in a confirmed outbound call and challenges the one request it sends with
/// `code` and `challenge_line`; returns the request and the one sent again.
fn challenged_in_the_dialog(
    run: &mut Run,
    command: impl FnOnce(&mut Call, Instant) -> Result<(), CallError>,
    code: u16,
    challenge_line: &str,
) -> (Message, Message) {
    run.command(command);
    let first = run.one_sent();
    run.input(&respond(&first, code, "", challenge_line, None));
    let again = run.one_sent();
    (first, again)
}

/// An outbound call whose INVITE was answered `code` (To tag `to_tag`) with `challenge_line`;
/// returns the run and the INVITE sent again.
fn invite_challenged(code: u16, to_tag: &str, challenge_line: &str) -> (Run, Message) {
    let mut run = Run::outgoing();
    let inv = run.one_sent();
    run.input(&respond(&inv, code, to_tag, challenge_line, None));
    let again = run.take_sent().pop().unwrap();
    (run, again)
}

/// Checks the `header` credentials of `req` against the challenge `challenge_line` and the
/// account's password (`secret`), recomputing the response with the request's own method and
/// Request-URI.
fn assert_answers(req: &Message, header: &str, challenge_line: &str) {
    let value = req
        .header(header)
        .unwrap_or_else(|| panic!("{header} missing in {:?}", req.start));
    let ch = Challenge::parse(challenge_line.split_once(": ").unwrap().1.trim()).unwrap();
    let params = digest::parse_params(value.strip_prefix("Digest ").unwrap()).unwrap();
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let StartLine::Request { method, uri } = &req.start else {
        panic!()
    };
    assert_eq!(
        get("uri").as_deref(),
        Some(uri.as_str()),
        "digest-uri is the Request-URI"
    );
    assert_eq!(get("username").as_deref(), Some("op"));
    let nc = get("nc").map_or(1, |n| u32::from_str_radix(&n, 16).unwrap());
    let expected = digest::response(
        &ch,
        &digest::Answer {
            username: "op",
            password: "secret",
            method,
            uri,
            cnonce: &get("cnonce").unwrap_or_default(),
            nc,
        },
    );
    assert_eq!(get("response"), Some(expected), "{method} digest");
}

#[test]
fn invite_challenged_by_the_proxy_is_sent_again_with_credentials() {
    let (mut run, inv, far) = Run::calling();
    run.input(&respond(&inv, 407, "proxytag", PROXY, None));
    let sent = run.take_sent();
    assert_eq!(starts(&sent), ["ACK", "INVITE"]);
    let (ack, inv2) = (&sent[0], &sent[1]);
    assert_eq!(ack.top_via_branch(), inv.top_via_branch());
    assert_eq!(inv2.cseq(), Some((2, "INVITE")));
    assert_ne!(inv2.top_via_branch(), inv.top_via_branch());
    assert_eq!(inv2.header("call-id"), inv.header("call-id"));
    assert_eq!(inv2.header("from"), inv.header("from"));
    assert_eq!(inv2.header("to"), inv.header("to"));
    assert_eq!(inv2.body, OFFER);
    assert_answers(inv2, "proxy-authorization", PROXY);
    assert!(run.take_events().is_empty());
    run.input(&far.answer(inv2, 200, Some(ANSWER)));
    let ack = run.one_sent();
    assert!(
        ack.header("proxy-authorization").is_some(),
        "the 2xx ACK carries the INVITE's credentials"
    );
    assert_eq!(ack.cseq(), Some((2, "ACK")));
    assert!(matches!(
        run.take_events()[..],
        [CallEvent::Answered { .. }]
    ));
}

#[test]
fn invite_challenged_by_the_registrar_and_then_the_proxy() {
    let (mut run, inv2) = invite_challenged(401, "regtag", WWW);
    assert_answers(&inv2, "authorization", WWW);
    run.input(&respond(&inv2, 407, "proxytag", PROXY, None));
    let inv3 = run.take_sent().pop().unwrap();
    assert_eq!(inv3.cseq(), Some((3, "INVITE")));
    assert_answers(&inv3, "authorization", WWW);
    assert_answers(&inv3, "proxy-authorization", PROXY);
    assert!(!run.call.is_ended());
}

#[test]
fn refused_credentials_fail_the_call_with_the_status() {
    for (code, line) in [(407, PROXY), (401, WWW)] {
        let (mut run, inv2) = invite_challenged(code, "t", line);
        run.input(&respond(&inv2, code, "t", &line.replace("n1", "n2"), None));
        assert_eq!(starts(&run.take_sent()), ["ACK"], "no third INVITE");
        assert_eq!(run.ended(), ("failed", Some(code)));
    }
}

#[test]
fn a_stale_nonce_is_retried() {
    let (mut run, inv2) = invite_challenged(407, "t", PROXY);
    let stale = PROXY.replace("pn1\"", "pn2\", stale=true");
    run.input(&respond(&inv2, 407, "t", &stale, None));
    let inv3 = run.take_sent().pop().unwrap();
    assert_eq!(inv3.method(), Some("INVITE"));
    assert_answers(&inv3, "proxy-authorization", &stale);
    assert!(!run.call.is_ended());
}

#[test]
fn an_unanswerable_challenge_fails_the_call() {
    let mut run = Run::outgoing();
    let inv = run.one_sent();
    run.input(&respond(
        &inv,
        401,
        "t",
        "WWW-Authenticate: Basic realm=\"x\"\r\n",
        None,
    ));
    assert_eq!(starts(&run.take_sent()), ["ACK"]);
    assert_eq!(run.ended(), ("failed", Some(401)));
}

#[test]
fn bye_challenged_is_sent_again_with_credentials() {
    let (mut run, far) = confirmed_outbound();
    let (_, bye2) = challenged_in_the_dialog(&mut run, |c, now| c.hangup(now), 401, WWW);
    assert_eq!(bye2.method(), Some("BYE"));
    assert_eq!(bye2.cseq(), Some((3, "BYE")));
    assert_answers(&bye2, "authorization", WWW);
    run.input(&far.answer(&bye2, 200, None));
    assert_eq!(run.ended(), ("hangup", None));
    run.finish(Duration::from_secs(40));
}

#[test]
fn credentials_of_the_invite_are_reused_in_the_dialog() {
    let (mut run, inv, far) = Run::calling();
    run.input(&respond(&inv, 407, "t", PROXY, None));
    let inv2 = run.take_sent().pop().unwrap();
    run.input(&far.answer(&inv2, 200, Some(ANSWER)));
    run.take_sent();
    run.command(|c, now| c.hangup(now));
    let bye = run.one_sent();
    assert_answers(&bye, "proxy-authorization", PROXY);
    assert!(bye
        .header("proxy-authorization")
        .unwrap()
        .contains("nc=00000002"));
}

#[test]
fn re_invite_challenged_is_sent_again_with_credentials() {
    let (mut run, far) = confirmed_outbound();
    run.command(|c, now| c.hold(HOLD.to_vec(), now));
    let re = run.one_sent();
    run.input(&respond(&re, 407, "", PROXY, None));
    let sent = run.take_sent();
    assert_eq!(starts(&sent), ["ACK", "INVITE"]);
    let re2 = &sent[1];
    assert_eq!(re2.cseq(), Some((3, "INVITE")));
    assert_eq!(re2.body, HOLD);
    assert_answers(re2, "proxy-authorization", PROXY);
    run.input(&far.answer(re2, 200, Some(ANSWER)));
    let ack = run.one_sent();
    assert_eq!(ack.cseq(), Some((3, "ACK")));
    assert!(run.take_events().contains(&CallEvent::Held {
        by: crate::sip::call::Party::Local
    }));
}

#[test]
fn refer_challenged_is_sent_again_with_credentials() {
    let (mut run, far) = confirmed_outbound();
    let transfer = |c: &mut Call, now| c.transfer("sip:1003@example.org", now);
    let (_, refer2) = challenged_in_the_dialog(&mut run, transfer, 401, WWW);
    assert_eq!(refer2.method(), Some("REFER"));
    assert_answers(&refer2, "authorization", WWW);
    run.input(&far.answer(&refer2, 202, None));
    assert_eq!(run.take_events(), [CallEvent::Transferring]);
}

#[test]
fn info_challenged_is_sent_again_with_credentials() {
    let (mut run, far) = confirmed_outbound();
    let dtmf = |c: &mut Call, now| c.send_dtmf("5", now);
    let (info, info2) = challenged_in_the_dialog(&mut run, dtmf, 407, PROXY);
    assert_eq!(info2.body, info.body);
    assert_answers(&info2, "proxy-authorization", PROXY);
    run.input(&far.answer(&info2, 200, None));
    assert!(run.take_events().is_empty());
}
