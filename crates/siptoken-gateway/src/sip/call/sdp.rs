//! The little the signalling reads from SDP, which is otherwise an opaque body built and parsed
//! by the media layer: whether a body is SDP, and whether an offer puts the call on hold (asked
//! of the media layer's parser).

use crate::sip::message::Message;

/// The body of `m` when it is a non-empty `application/sdp` body.
pub fn body(m: &Message) -> Option<Vec<u8>> {
    if m.body.is_empty() {
        return None;
    }
    is_sdp_type(m.header("content-type")?).then(|| m.body.clone())
}

/// Whether a Content-Type value is `application/sdp` (parameters and case ignored).
pub fn is_sdp_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
}

/// Whether an SDP offer holds the call (RFC 3264 §8.4): its audio stream is `sendonly` or
/// `inactive` (the media-level attribute, else the session-level one), or its connection
/// address is `0.0.0.0` (the RFC 2543 way, still sent by some phones). Read by the media
/// layer's parser, so that what the client is told and what the relay does cannot disagree; an
/// SDP the media layer cannot use holds nothing (it is refused with 488 anyway).
pub fn offers_hold(sdp: &[u8]) -> bool {
    std::str::from_utf8(sdp)
        .ok()
        .and_then(|text| crate::media::sdp::parse(text).ok())
        .is_some_and(|far| far.is_hold())
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "v=0\r\no=- 1 1 IN IP4 10.0.0.8\r\ns=-\r\nc=IN IP4 10.0.0.8\r\nt=0 0\r\n\
        m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

    #[test]
    fn direction_attributes_decide_hold() {
        assert!(!offers_hold(BASE.as_bytes()));
        assert!(offers_hold(format!("{BASE}a=sendonly\r\n").as_bytes()));
        assert!(offers_hold(format!("{BASE}a=inactive\r\n").as_bytes()));
        assert!(!offers_hold(format!("{BASE}a=sendrecv\r\n").as_bytes()));
        assert!(!offers_hold(format!("{BASE}a=recvonly\r\n").as_bytes()));
        let session = BASE.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n");
        assert!(offers_hold(session.as_bytes()));
        let overridden = format!("{session}a=sendrecv\r\n");
        assert!(!offers_hold(overridden.as_bytes()), "media level wins");
    }

    #[test]
    fn zero_connection_address_is_hold() {
        assert!(offers_hold(
            BASE.replace("c=IN IP4 10.0.0.8", "c=IN IP4 0.0.0.0")
                .as_bytes()
        ));
        let media_c = format!("{BASE}c=IN IP4 0.0.0.0\r\n");
        assert!(offers_hold(media_c.as_bytes()));
        let session_zero_media_real =
            BASE.replace("c=IN IP4 10.0.0.8", "c=IN IP4 0.0.0.0") + "c=IN IP4 10.0.0.9\r\n";
        assert!(!offers_hold(session_zero_media_real.as_bytes()));
    }

    #[test]
    fn only_the_first_audio_stream_counts() {
        let video_first = BASE.replace(
            "m=audio",
            "m=video 5000 RTP/AVP 96\r\na=inactive\r\nm=audio",
        );
        assert!(!offers_hold(video_first.as_bytes()));
        let second = format!("{BASE}m=audio 4002 RTP/AVP 0\r\na=inactive\r\n");
        assert!(!offers_hold(second.as_bytes()));
        assert!(!offers_hold(b"v=0\r\n"));
        assert!(!offers_hold(b"\xff\xfe"));
    }

    #[test]
    fn content_type_match() {
        assert!(is_sdp_type("application/sdp"));
        assert!(is_sdp_type("Application/SDP; charset=utf-8"));
        assert!(!is_sdp_type("application/sdpx"));
        assert!(!is_sdp_type("text/plain"));
    }
}
