//! Why a call ended: the `reason` of the WebSocket `ended` event (issue 13 names them; they are
//! a public contract), and the mapping from a final SIP status to a reason.

/// The reason a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndReason {
    /// This client hung up (or rejected an incoming call).
    Hangup,
    /// The far end hung up (BYE).
    RemoteHangup,
    /// 486 Busy Here or 600 Busy Everywhere.
    Busy,
    /// 603 Decline.
    Declined,
    /// 408, 480, or no answer within `ring_timeout_seconds`.
    NoAnswer,
    /// 404, 484 or 604.
    NotFound,
    /// The caller gave up before the answer (CANCEL, or BYE on the early dialog).
    Cancelled,
    /// 488 or 606 (or no common codec, decided by the media layer).
    UnsupportedMedia,
    /// A blind transfer succeeded (NOTIFY with `SIP/2.0 2xx`).
    Transferred,
    /// No RTP for `media_timeout_seconds` (decided by the media layer).
    MediaTimeout,
    /// Logout, socket closed, registration lost or gateway shutdown.
    LoggedOut,
    /// Anything else: other statuses, timeouts, protocol errors.
    Failed,
}

impl EndReason {
    /// The protocol name (`hangup`, `remote_hangup`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Hangup => "hangup",
            EndReason::RemoteHangup => "remote_hangup",
            EndReason::Busy => "busy",
            EndReason::Declined => "declined",
            EndReason::NoAnswer => "no_answer",
            EndReason::NotFound => "not_found",
            EndReason::Cancelled => "cancelled",
            EndReason::UnsupportedMedia => "unsupported_media",
            EndReason::Transferred => "transferred",
            EndReason::MediaTimeout => "media_timeout",
            EndReason::LoggedOut => "logged_out",
            EndReason::Failed => "failed",
        }
    }

    /// The reason a final failure status to our INVITE gives.
    pub fn for_status(code: u16) -> EndReason {
        match code {
            486 | 600 => EndReason::Busy,
            603 => EndReason::Declined,
            408 | 480 => EndReason::NoAnswer,
            404 | 484 | 604 => EndReason::NotFound,
            488 | 606 => EndReason::UnsupportedMedia,
            _ => EndReason::Failed,
        }
    }
}

/// Each final status of issue 13's list with the reason it ends a call as (the call tests use it
/// too, end to end).
#[cfg(test)]
pub(super) const STATUS_REASONS: &[(u16, &str)] = &[
    (486, "busy"),
    (600, "busy"),
    (603, "declined"),
    (408, "no_answer"),
    (480, "no_answer"),
    (404, "not_found"),
    (484, "not_found"),
    (604, "not_found"),
    (488, "unsupported_media"),
    (606, "unsupported_media"),
    (403, "failed"),
    (500, "failed"),
    (487, "failed"),
    (302, "failed"),
    (401, "failed"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_as_issue_13_lists_them() {
        for &(code, reason) in STATUS_REASONS {
            assert_eq!(EndReason::for_status(code).as_str(), reason, "{code}");
        }
    }
}
