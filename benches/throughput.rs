//! Tokens per second per core, measured in thread CPU time.
//!
//! `cargo bench --bench throughput`. Criterion (`--bench tokens`) measures wall time, which on a
//! shared machine counts the time other processes hold the core; this counts only the CPU time
//! this thread used, so the figures hold up while the machine is busy (caches and the sibling
//! hyperthread are still shared: treat a loaded machine's figures as a lower bound).
//! Prints each operation against the targets of the core issue; it does not fail.

use std::hint::black_box;
use std::time::Duration;

use cpu_time::ThreadTime;
mod common;

use common::{Fixture, RING};
use siptoken::KeyRing;

/// Runs `f` in batches until it has used `budget` of CPU time; returns CPU ns per call, the
/// median of the batches.
fn measure(budget: Duration, mut f: impl FnMut()) -> f64 {
    const BATCH: u32 = 20_000;
    for _ in 0..BATCH / 4 {
        f(); // warm-up
    }
    let mut samples = Vec::new();
    let start = ThreadTime::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = ThreadTime::now();
        for _ in 0..BATCH {
            f();
        }
        samples.push(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// An operation to measure: its name, its target in calls per second (0: none), the call.
type Row<'a> = (&'static str, f64, Box<dyn FnMut() + 'a>);

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` and test harness probes
    }
    let ring: KeyRing = RING.parse().unwrap();
    let f = Fixture::new(&ring);
    let budget = Duration::from_secs(2);
    println!(
        "{}; CPU time per call (median of 20k-call batches)",
        f.sizes()
    );
    let rows: [Row<'_>; 4] = [
        (
            "verify legacy",
            1_000_000.0,
            Box::new(|| drop(black_box(f.verifier.verify(black_box(&f.legacy)).unwrap()))),
        ),
        (
            "verify v1",
            500_000.0,
            Box::new(|| drop(black_box(f.verifier.verify(black_box(&f.v1)).unwrap()))),
        ),
        (
            "issue v1",
            500_000.0,
            Box::new(|| {
                drop(black_box(
                    f.v1_issuer.issue("CRM", black_box(&f.claims)).unwrap(),
                ))
            }),
        ),
        (
            "issue legacy",
            0.0,
            Box::new(|| {
                drop(black_box(
                    f.legacy_issuer.issue("CRM", black_box(&f.claims)).unwrap(),
                ))
            }),
        ),
    ];
    for (name, target, mut f) in rows {
        let ns = measure(budget, &mut f);
        let rate = 1e9 / ns;
        let verdict = if target == 0.0 {
            String::new()
        } else if rate >= target {
            format!("target {:.0}k/s: met", target / 1000.0)
        } else {
            format!("target {:.0}k/s: NOT met", target / 1000.0)
        };
        println!(
            "{name:<14} {ns:8.0} ns  {:>10.0} /s per core   {verdict}",
            rate
        );
    }
}
