//! G.711 companding laws (ITU-T G.711): μ-law (PCMU, RTP payload type 0) and A-law (PCMA,
//! payload type 8), and the byte-for-byte conversion between them.
//!
//! The relay passes G.711 payloads through untouched whenever the receiving leg accepts the law
//! the sender used, which is the normal case. The one exception: an outgoing call where the
//! browser keeps sending the law it prefers while the far end answered with only the other one
//! (the browser cannot be asked to switch: the gateway is the answerer on that leg). Then each
//! byte is mapped through a 256-entry table — decode to linear PCM, encode in the other law —
//! which costs one table lookup per sample.
//!
//! Written here because the conversion is a few lines of arithmetic fixed by the standard; the
//! G.711 crates on crates.io are unmaintained or pull in general audio stacks.

/// A G.711 law, with its static RTP payload type (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// μ-law, `PCMU/8000`, payload type 0.
    Pcmu,
    /// A-law, `PCMA/8000`, payload type 8.
    Pcma,
}

impl Law {
    /// The static RTP payload type: 0 for PCMU, 8 for PCMA.
    pub const fn payload_type(self) -> u8 {
        match self {
            Law::Pcmu => 0,
            Law::Pcma => 8,
        }
    }

    /// The law of a static payload type (0 or 8).
    pub const fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Pcmu),
            8 => Some(Law::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`PCMU` / `PCMA`).
    pub const fn encoding_name(self) -> &'static str {
        match self {
            Law::Pcmu => "PCMU",
            Law::Pcma => "PCMA",
        }
    }

    /// The other law.
    pub const fn other(self) -> Law {
        match self {
            Law::Pcmu => Law::Pcma,
            Law::Pcma => Law::Pcmu,
        }
    }
}

/// Decodes one μ-law byte to a 16-bit linear sample.
pub const fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = ((u >> 4) & 0x07) as i32;
    let magnitude = ((((u & 0x0f) as i32) << 3) + 0x84) << exponent;
    if u & 0x80 != 0 {
        (0x84 - magnitude) as i16
    } else {
        (magnitude - 0x84) as i16
    }
}

/// Encodes a 16-bit linear sample in μ-law.
pub const fn linear_to_ulaw(sample: i16) -> u8 {
    // 14-bit magnitude, clipped, plus the bias that makes the segment the bit position.
    let mut x = (sample as i32) >> 2;
    let mask: u8 = if x < 0 {
        x = -x;
        0x7f
    } else {
        0xff
    };
    if x > 8159 {
        x = 8159;
    }
    x += 0x84 >> 2;
    let segment = segment_of(x, 0x3f);
    if segment >= 8 {
        return 0x7f ^ mask;
    }
    let code = ((segment << 4) as i32 | ((x >> (segment + 1)) & 0x0f)) as u8;
    code ^ mask
}

/// Decodes one A-law byte to a 16-bit linear sample.
pub const fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let segment = ((a & 0x70) >> 4) as i32;
    let mut t = ((a & 0x0f) as i32) << 4;
    t = match segment {
        0 => t + 8,
        1 => t + 0x108,
        s => (t + 0x108) << (s - 1),
    };
    if a & 0x80 != 0 {
        t as i16
    } else {
        -t as i16
    }
}

/// Encodes a 16-bit linear sample in A-law.
pub const fn linear_to_alaw(sample: i16) -> u8 {
    let mut x = (sample as i32) >> 3;
    let mask: u8 = if x >= 0 {
        0xd5
    } else {
        x = -x - 1;
        0x55
    };
    let segment = segment_of(x, 0x1f);
    if segment >= 8 {
        return 0x7f ^ mask;
    }
    let low = if segment < 2 {
        (x >> 1) & 0x0f
    } else {
        (x >> segment) & 0x0f
    };
    (((segment << 4) as i32 | low) as u8) ^ mask
}

/// The segment (0–7, or 8 when beyond the last) whose upper bound, starting at `first_end` and
/// doubling, is the first not below `x`.
const fn segment_of(x: i32, first_end: i32) -> u32 {
    let mut segment = 0;
    let mut end = first_end;
    while segment < 8 {
        if x <= end {
            return segment;
        }
        end = (end << 1) | 1;
        segment += 1;
    }
    8
}

const fn table(from: Law) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match from {
            Law::Pcmu => linear_to_alaw(ulaw_to_linear(i as u8)),
            Law::Pcma => linear_to_ulaw(alaw_to_linear(i as u8)),
        };
        i += 1;
    }
    t
}

static ULAW_TO_ALAW: [u8; 256] = table(Law::Pcmu);
static ALAW_TO_ULAW: [u8; 256] = table(Law::Pcma);

/// Re-encodes a G.711 payload from one law to the other, into `out` (cleared first).
///
/// ```
/// use siptoken_gateway::media::g711::{convert, linear_to_ulaw, alaw_to_linear, Law};
/// let mu = [linear_to_ulaw(1000), linear_to_ulaw(-1000)];
/// let mut a = Vec::new();
/// convert(Law::Pcmu, &mu, &mut a);
/// assert!((alaw_to_linear(a[0]) - 1000).abs() < 40);
/// ```
pub fn convert(from: Law, payload: &[u8], out: &mut Vec<u8>) {
    let t = match from {
        Law::Pcmu => &ULAW_TO_ALAW,
        Law::Pcma => &ALAW_TO_ULAW,
    };
    out.clear();
    out.extend(payload.iter().map(|&b| t[b as usize]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_decode_and_encode() {
        for b in 0..=255u8 {
            let u = linear_to_ulaw(ulaw_to_linear(b));
            // 0x7f is μ-law's negative zero: it decodes to 0, which encodes as positive zero.
            assert!(
                u == b || (b == 0x7f && u == 0xff),
                "μ-law {b:#04x} -> {u:#04x}"
            );
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#04x}");
        }
    }

    #[test]
    fn known_values() {
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }

    #[test]
    fn encoding_error_is_within_half_a_step() {
        // Quantisation error grows with the segment: at most half a step (1/32 of the value,
        // plus the smallest step near zero).
        for s in (-32000i32..=32000).step_by(7) {
            let s = s as i16;
            for (dec, enc) in [
                (ulaw_to_linear(linear_to_ulaw(s)), "μ"),
                (alaw_to_linear(linear_to_alaw(s)), "A"),
            ] {
                let err = (i32::from(dec) - i32::from(s)).abs();
                assert!(
                    err <= i32::from(s).abs() / 16 + 16,
                    "{enc}-law {s} -> {dec}"
                );
            }
        }
    }

    #[test]
    fn conversion_keeps_the_signal() {
        for b in 0..=255u8 {
            let mut out = Vec::new();
            convert(Law::Pcmu, &[b], &mut out);
            let (x, y) = (ulaw_to_linear(b) as i32, alaw_to_linear(out[0]) as i32);
            assert!((x - y).abs() <= x.abs() / 16 + 16, "{b:#04x}: {x} vs {y}");
            convert(Law::Pcma, &[b], &mut out);
            let (x, y) = (alaw_to_linear(b) as i32, ulaw_to_linear(out[0]) as i32);
            assert!((x - y).abs() <= x.abs() / 16 + 16, "{b:#04x}: {x} vs {y}");
        }
    }

    #[test]
    fn payload_types() {
        for law in [Law::Pcmu, Law::Pcma] {
            assert_eq!(Law::from_payload_type(law.payload_type()), Some(law));
            assert_eq!(law.other().other(), law);
        }
        assert_eq!(Law::from_payload_type(101), None);
    }
}
