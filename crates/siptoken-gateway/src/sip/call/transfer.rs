//! Following a blind transfer (RFC 3515): the `refer` event package's NOTIFYs, whose
//! `message/sipfrag` bodies (RFC 3420) carry the status line of the transferee's INVITE.

use crate::sip::message::Message;

/// Whether an `Event` header value is the `refer` package (`refer;id=7` included).
pub fn is_refer_event(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|e| e.trim().eq_ignore_ascii_case("refer"))
}

/// The status code of a sipfrag body's first line (`SIP/2.0 200 OK`).
pub fn sipfrag_status(body: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(body).ok()?;
    let first = text.trim_start().lines().next()?;
    let rest = first.strip_prefix("SIP/2.0 ")?;
    let code = rest.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || rest.get(3..4).is_some_and(|s| s != " ") {
        return None;
    }
    code.parse().ok().filter(|c| (100..=699).contains(c))
}

/// Whether the NOTIFY ends the subscription (`Subscription-State: terminated`).
pub fn subscription_terminated(notify: &Message) -> bool {
    notify.header("subscription-state").is_some_and(|s| {
        s.split(';')
            .next()
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("terminated"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message;

    #[test]
    fn sipfrag_status_lines() {
        assert_eq!(sipfrag_status(b"SIP/2.0 200 OK\r\n"), Some(200));
        assert_eq!(sipfrag_status(b"SIP/2.0 100 Trying"), Some(100));
        assert_eq!(
            sipfrag_status(b"\r\nSIP/2.0 486 Busy Here\r\nVia: x\r\n"),
            Some(486)
        );
        assert_eq!(sipfrag_status(b"SIP/2.0 2000 OK"), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 099 X"), None);
        assert_eq!(sipfrag_status(b"INVITE sip:x SIP/2.0"), None);
        assert_eq!(sipfrag_status(b""), None);
        assert_eq!(sipfrag_status(b"SIP/2.0 20"), None);
        assert_eq!(sipfrag_status(b"\xff"), None);
    }

    #[test]
    fn event_and_subscription_state() {
        assert!(is_refer_event("refer"));
        assert!(is_refer_event("Refer;id=93"));
        assert!(!is_refer_event("presence"));
        let n = message::parse(
            b"NOTIFY sip:x SIP/2.0\r\nSubscription-State: terminated;reason=noresource\r\n\r\n",
            false,
        )
        .unwrap()
        .0;
        assert!(subscription_terminated(&n));
        let n = message::parse(
            b"NOTIFY sip:x SIP/2.0\r\nSubscription-State: active;expires=60\r\n\r\n",
            false,
        )
        .unwrap()
        .0;
        assert!(!subscription_terminated(&n));
    }
}
