//! Driving a [`Call`] on a virtual clock, what the fuzz driver ([`super::fuzz`]) and the unit
//! tests share: every timer fires at its own time, and the call's output is taken after each.

use std::time::{Duration, Instant};

use super::Call;

/// A call on a virtual clock, with a way to take its output.
pub trait Driven {
    /// The call and the current virtual time.
    fn clock(&mut self) -> (&mut Call, &mut Instant);

    /// Takes everything the call has output.
    fn pump(&mut self);
}

/// Moves the clock of `driven` forward by `d`, firing every timer due on the way at its time.
pub fn advance(driven: &mut impl Driven, d: Duration) {
    let end = *driven.clock().1 + d;
    loop {
        let (call, now) = driven.clock();
        match call.poll_timeout() {
            Some(t) if t <= end => {
                *now = (*now).max(t);
                call.handle_timeout(*now);
            }
            _ => break,
        }
        driven.pump();
    }
    *driven.clock().1 = end;
}
