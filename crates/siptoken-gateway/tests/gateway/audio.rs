//! Audio helpers for tests and the load tool: G.711 encode/decode, tone generation, and tone
//! detection with a Goertzel filter. Independent of the gateway's own G.711 code on purpose (a
//! test of the relay should not share its arithmetic). Include with
//! `#[path = "gateway/audio.rs"] mod audio;`.
#![allow(dead_code)]

/// The sample rate of G.711.
pub const RATE: f64 = 8000.0;

/// μ-law encoding of a 16-bit sample (G.711 §3, via the biased-magnitude formulation).
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    let mut v = i32::from(sample);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(32_635) + BIAS;
    // Exponent: position of the highest set bit above bit 7.
    let exponent = (0..8).rev().find(|e| v & (0x80 << e) != 0).unwrap_or(0);
    let mantissa = (v >> (exponent + 3)) & 0x0f;
    !(sign | (exponent << 4) | mantissa) as u8
}

/// μ-law decoding.
pub fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let exponent = (c >> 4) & 0x07;
    let mantissa = i32::from(c & 0x0f);
    let magnitude = ((mantissa << 3) + 0x84) << exponent;
    let v = magnitude - 0x84;
    (if c & 0x80 != 0 { -v } else { v }) as i16
}

/// A-law encoding of a 16-bit sample.
pub fn alaw_encode(sample: i16) -> u8 {
    let v = i32::from(sample);
    let (sign, mag) = if v >= 0 { (0x80, v) } else { (0x00, -v - 1) };
    let mag = (mag >> 3).min(0x0fff);
    let code = if mag < 32 {
        mag >> 1
    } else {
        let exponent = (1..8).rev().find(|e| mag >= 16 << e).unwrap_or(1);
        (exponent << 4) | ((mag >> exponent) & 0x0f)
    };
    ((sign | code) ^ 0x55) as u8
}

/// A-law decoding.
pub fn alaw_decode(code: u8) -> i16 {
    let c = code ^ 0x55;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    (if c & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

/// A sine tone generator at 8 kHz.
#[derive(Debug, Clone)]
pub struct Tone {
    freq: f64,
    amplitude: f64,
    n: u64,
}

impl Tone {
    /// A tone of `freq` Hz at `amplitude` (of full scale 32767).
    pub fn new(freq: f64, amplitude: f64) -> Tone {
        Tone {
            freq,
            amplitude,
            n: 0,
        }
    }

    /// The next `count` samples.
    pub fn samples(&mut self, count: usize) -> Vec<i16> {
        (0..count)
            .map(|_| {
                let t = self.n as f64 / RATE;
                self.n += 1;
                (self.amplitude * 32767.0 * (2.0 * std::f64::consts::PI * self.freq * t).sin())
                    as i16
            })
            .collect()
    }

    /// The next 20 ms as a PCMU payload.
    pub fn pcmu_frame(&mut self) -> Vec<u8> {
        self.samples(160).into_iter().map(ulaw_encode).collect()
    }

    /// The next 20 ms as a PCMA payload.
    pub fn pcma_frame(&mut self) -> Vec<u8> {
        self.samples(160).into_iter().map(alaw_encode).collect()
    }
}

/// Goertzel power of `samples` at `freq`, normalised by the signal's energy: close to 1 for a
/// pure tone at `freq` (when the window holds a whole number of its periods), close to 0 when
/// the energy is elsewhere, 0 for silence.
pub fn tone_ratio(samples: &[i16], freq: f64) -> f64 {
    let n = samples.len() as f64;
    let energy: f64 = samples.iter().map(|&s| f64::from(s).powi(2)).sum();
    if energy == 0.0 {
        return 0.0;
    }
    let coeff = 2.0 * (2.0 * std::f64::consts::PI * freq / RATE).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    power / (energy * n / 2.0)
}

/// The share of 100 ms windows (whole periods of 400 Hz, 1 kHz, 2 kHz…) in which `freq`
/// dominates (ratio above 0.8).
pub fn tone_presence(samples: &[i16], freq: f64) -> f64 {
    let windows: Vec<&[i16]> = samples.chunks_exact(800).collect();
    if windows.is_empty() {
        return 0.0;
    }
    let hits = windows.iter().filter(|w| tone_ratio(w, freq) > 0.8).count();
    hits as f64 / windows.len() as f64
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn codecs_round_trip_and_detector_discriminates() {
        for s in [-32000i16, -1000, -1, 0, 1, 1000, 32000] {
            assert!(
                (i32::from(ulaw_decode(ulaw_encode(s))) - i32::from(s)).abs()
                    <= i32::from(s).abs() / 16 + 8
            );
            assert!(
                (i32::from(alaw_decode(alaw_encode(s))) - i32::from(s)).abs()
                    <= i32::from(s).abs() / 16 + 16
            );
        }
        let mut t = Tone::new(1000.0, 0.5);
        let pcm: Vec<i16> = (0..10)
            .flat_map(|_| t.pcmu_frame())
            .map(ulaw_decode)
            .collect();
        assert!(tone_ratio(&pcm[..800], 1000.0) > 0.9);
        assert!(tone_ratio(&pcm[..800], 400.0) < 0.05);
        assert_eq!(tone_presence(&pcm, 1000.0), 1.0);
        assert_eq!(tone_presence(&vec![0; 1600], 1000.0), 0.0);
    }
}
