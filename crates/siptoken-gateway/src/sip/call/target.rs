//! The target of a call or transfer as the client names it (issue 13: a `sip:`/`sips:`/`tel:`
//! URI, or a user part or number sent as `sip:TO@<account domain>`), checked so it cannot break
//! a request line or header.

use crate::sip::uri::escape_user;

/// Longest target accepted, bytes.
pub const MAX_TARGET_LEN: usize = 512;

/// Why a target is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTarget;

impl std::fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not a sip:, sips: or tel: URI, user or number")
    }
}

impl std::error::Error for InvalidTarget {}

/// Whether `uri` is a `sip:`/`sips:`/`tel:` URI that can go into a Request-URI and `<…>` as is:
/// something after the scheme, no whitespace, control characters, quotes or angle brackets.
pub fn is_safe_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    matches!(scheme.to_ascii_lowercase().as_str(), "sip" | "sips" | "tel")
        && !rest.is_empty()
        && uri.len() <= MAX_TARGET_LEN
        && !uri
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
}

/// The Request-URI for `to`: a safe URI as given, else `sip:<to, escaped>@<domain>` for a user
/// part or number (1–128 characters, no `@`, `:` or whitespace).
pub fn target_uri(to: &str, domain: &str) -> Result<String, InvalidTarget> {
    let to = to.trim();
    if to.contains(':') {
        return if is_safe_uri(to) {
            Ok(to.to_owned())
        } else {
            Err(InvalidTarget)
        };
    }
    let ok = !to.is_empty()
        && to.chars().count() <= 128
        && !to.contains('@')
        && !to.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        return Err(InvalidTarget);
    }
    Ok(format!("sip:{}@{domain}", escape_user(to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_users_and_numbers() {
        assert_eq!(
            target_uri("1002", "example.org").unwrap(),
            "sip:1002@example.org"
        );
        assert_eq!(target_uri("+1 555", "d").map_err(|_| ()), Err(()));
        assert_eq!(target_uri("+15551234", "d").unwrap(), "sip:+15551234@d");
        assert_eq!(target_uri("jo%e", "d").unwrap(), "sip:jo%25e@d");
        assert_eq!(
            target_uri("sip:bob@example.org;transport=tcp", "d").unwrap(),
            "sip:bob@example.org;transport=tcp"
        );
        assert_eq!(target_uri("tel:+15551234", "d").unwrap(), "tel:+15551234");
        assert_eq!(target_uri("SIPS:bob@x", "d").unwrap(), "SIPS:bob@x");
        for bad in [
            "",
            "http://x",
            "sip:",
            "sip:a b@c",
            "sip:a@b>\r\nVia: x",
            "sip:\"a\"@b",
            "bob@example.org",
            "a\u{0}b",
        ] {
            assert_eq!(target_uri(bad, "d"), Err(InvalidTarget), "{bad:?}");
        }
        assert!(!is_safe_uri(&format!("sip:{}", "a".repeat(600))));
    }
}
