//! DTMF over SIP INFO with `application/dtmf-relay` (the de facto format: `Signal=` and
//! `Duration=` lines), sent when the far end offers no telephone-event; received INFOs with
//! `application/dtmf-relay` or `application/dtmf` are decoded too.

/// Tone length written in `Duration=`, milliseconds.
pub const DURATION_MS: u32 = 160;

/// Digits per `dtmf` request at most (issue 13).
pub const MAX_DIGITS: usize = 32;

/// Whether `c` is a DTMF digit (`0-9 * # A-D`).
pub fn is_digit(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D')
}

/// Whether `digits` is 1–32 DTMF digits.
pub fn valid_digits(digits: &str) -> bool {
    !digits.is_empty() && digits.chars().count() <= MAX_DIGITS && digits.chars().all(is_digit)
}

/// The INFO body for one digit.
pub fn info_body(digit: char) -> Vec<u8> {
    format!("Signal={digit}\r\nDuration={DURATION_MS}\r\n").into_bytes()
}

/// A digit (and duration, ms) from an INFO body of `content_type`; `None` when the body is not
/// one we decode or names no digit.
pub fn parse_info(content_type: &str, body: &[u8]) -> Option<(char, Option<u32>)> {
    let ty = content_type.split(';').next()?.trim().to_ascii_lowercase();
    let text = std::str::from_utf8(body).ok()?;
    let digit = |s: &str| -> Option<char> {
        let s = s.trim();
        let c = match s {
            "10" => '*',
            "11" => '#',
            _ => {
                let mut chars = s.chars();
                let c = chars.next()?.to_ascii_uppercase();
                if chars.next().is_some() {
                    return None;
                }
                c
            }
        };
        is_digit(c).then_some(c)
    };
    match ty.as_str() {
        "application/dtmf" => Some((digit(text)?, None)),
        "application/dtmf-relay" => {
            let mut signal = None;
            let mut duration = None;
            for line in text.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                match k.trim().to_ascii_lowercase().as_str() {
                    "signal" => signal = digit(v),
                    "duration" => duration = v.trim().parse().ok(),
                    _ => {}
                }
            }
            Some((signal?, duration))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_validated() {
        assert!(valid_digits("0123456789*#ABCD"));
        assert!(!valid_digits(""));
        assert!(!valid_digits("12a"));
        assert!(!valid_digits("1 2"));
        assert!(valid_digits(&"1".repeat(32)));
        assert!(!valid_digits(&"1".repeat(33)));
    }

    #[test]
    fn bodies_round_trip_and_variants_decode() {
        assert_eq!(info_body('#'), b"Signal=#\r\nDuration=160\r\n");
        assert_eq!(
            parse_info("application/dtmf-relay", &info_body('5')),
            Some(('5', Some(160)))
        );
        assert_eq!(
            parse_info("Application/DTMF-Relay", b"signal= 11\nDuration=250"),
            Some(('#', Some(250)))
        );
        assert_eq!(parse_info("application/dtmf", b"10"), Some(('*', None)));
        assert_eq!(parse_info("application/dtmf", b"d"), Some(('D', None)));
        assert_eq!(parse_info("application/dtmf-relay", b"Duration=100"), None);
        assert_eq!(parse_info("application/dtmf-relay", b"Signal=X"), None);
        assert_eq!(parse_info("text/plain", b"Signal=1"), None);
        assert_eq!(parse_info("application/dtmf", b"\xff"), None);
    }
}
