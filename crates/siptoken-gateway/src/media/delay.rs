//! The relay's delay histogram: how long the gateway held each relayed packet, from the
//! kernel's receive timestamp of its datagram ([`super::stamped`]) to the send of its relayed
//! copy, by direction. This is the gateway's added one-way latency, queueing in its receive
//! buffers included; `/metrics` shows it as `siptoken_gateway_media_relay_delay_seconds`.
//!
//! A call records into its own [`Delays`] per packet and adds the increments to the
//! process-wide [`SharedDelays`] with its other counters (about once a second), so the hot
//! path touches no shared cache line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in microseconds (the last bucket, above 1 s, is `+Inf`).
pub const BUCKETS_MICROS: [u64; 13] = [
    100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000,
];

/// One call's delays of one direction: packets per bucket (not cumulative; the last is
/// above every bound) and the sum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delays {
    counts: [u64; BUCKETS_MICROS.len() + 1],
    sum_micros: u64,
}

impl Delays {
    /// Counts one packet held for `d`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use siptoken_gateway::media::delay::Delays;
    /// let mut d = Delays::default();
    /// d.record(Duration::from_micros(700));
    /// d.record(Duration::from_secs(3));
    /// assert_eq!(d.count(), 2);
    /// assert_eq!(d.within(Duration::from_millis(1)), 1);
    /// ```
    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_MICROS.partition_point(|&b| b < micros);
        self.counts[i] += 1;
        self.sum_micros = self.sum_micros.saturating_add(micros);
    }

    /// Packets counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Packets held no longer than `bound`, counted in whole buckets (`bound` is rounded down
    /// to a bucket's upper bound).
    pub fn within(&self, bound: Duration) -> u64 {
        let micros = u64::try_from(bound.as_micros()).unwrap_or(u64::MAX);
        BUCKETS_MICROS
            .iter()
            .zip(self.counts)
            .take_while(|(b, _)| **b <= micros)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The process-wide delays of one direction.
#[derive(Debug, Default)]
pub struct SharedDelays {
    counts: [AtomicU64; BUCKETS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

impl SharedDelays {
    /// Adds what a call counted since `before`.
    pub fn add(&self, before: &Delays, now: &Delays) {
        for (i, c) in self.counts.iter().enumerate() {
            let n = now.counts[i].saturating_sub(before.counts[i]);
            if n > 0 {
                c.fetch_add(n, Ordering::Relaxed);
            }
        }
        let s = now.sum_micros.saturating_sub(before.sum_micros);
        if s > 0 {
            self.sum_micros.fetch_add(s, Ordering::Relaxed);
        }
    }

    /// Appends this direction's series (cumulative buckets, sum, count) of `name`.
    pub fn render(&self, out: &mut String, name: &str, direction: &str) {
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = match BUCKETS_MICROS.get(i) {
                Some(b) => format!("{}", *b as f64 / 1e6),
                None => "+Inf".to_owned(),
            };
            let _ = writeln!(
                out,
                "{name}_bucket{{direction=\"{direction}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{direction=\"{direction}\"}} {sum}");
        let _ = writeln!(
            out,
            "{name}_count{{direction=\"{direction}\"}} {cumulative}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_inclusive_and_the_last_bucket_is_open() {
        let mut d = Delays::default();
        for micros in [0, 100, 101, 2_000, 2_001, 1_000_000, 1_000_001, u64::MAX] {
            d.record(Duration::from_micros(micros));
        }
        assert_eq!(d.counts[0], 2, "0 and 100 µs");
        assert_eq!(d.counts[1], 1, "101 µs");
        assert_eq!(d.counts[4], 1, "2 ms");
        assert_eq!(d.counts[5], 1, "2.001 ms");
        assert_eq!(d.counts[12], 1, "1 s");
        assert_eq!(d.counts[13], 2, "above 1 s");
        assert_eq!(d.count(), 8);
        assert_eq!(d.within(Duration::from_millis(2)), 4);
        assert_eq!(
            d.within(Duration::from_micros(1_999)),
            3,
            "rounded down to 1 ms"
        );
        assert_eq!(d.within(Duration::from_secs(60)), 6);
    }

    #[test]
    fn calls_add_increments_and_the_histogram_renders_cumulatively() {
        let shared = SharedDelays::default();
        let mut a = Delays::default();
        a.record(Duration::from_micros(80));
        a.record(Duration::from_millis(3));
        shared.add(&Delays::default(), &a);
        let mut b = a;
        b.record(Duration::from_micros(400));
        shared.add(&a, &b);
        let mut text = String::new();
        shared.render(&mut text, "d", "to_sip");
        for line in [
            "d_bucket{direction=\"to_sip\",le=\"0.0001\"} 1\n",
            "d_bucket{direction=\"to_sip\",le=\"0.0005\"} 2\n",
            "d_bucket{direction=\"to_sip\",le=\"0.002\"} 2\n",
            "d_bucket{direction=\"to_sip\",le=\"0.005\"} 3\n",
            "d_bucket{direction=\"to_sip\",le=\"+Inf\"} 3\n",
            "d_sum{direction=\"to_sip\"} 0.00348\n",
            "d_count{direction=\"to_sip\"} 3\n",
        ] {
            assert!(text.contains(line), "{line}{text}");
        }
    }
}
