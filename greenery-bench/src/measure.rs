//! Round-interleaved timing: every peer runs many short rounds, taking
//! turns, and each reports the median (and minimum) of its per-round times.
//!
//! On a shared, noisy machine a whole stretch of time can run several times
//! slower than the next one. Timing each peer in one long block lets such a
//! stretch land on one peer only, and the ratio between peers then measures
//! the machine rather than the code. Taking turns in short rounds spreads
//! every slow stretch over all peers alike, and the median of the rounds
//! ignores the slow ones as long as fewer than half of them are hit.

use std::time::Instant;

/// How many timed rounds each peer runs (odd, so that the median is one
/// round's figure).
pub(crate) const ROUNDS: usize = 25;

/// The fewest iterations in one round, so that a round stays well above the
/// clock's resolution and the cost of reading it, whatever the size asked.
pub(crate) const MIN_ROUND_ITERS: u64 = 100;

/// One contestant: how many iterations it should run in total, and a closure
/// that runs a given number of them.
///
/// The closure keeps its state (a suspended coroutine, a spare stack) from
/// one round to the next, so only the iterations themselves are timed.
pub(crate) struct Peer<'a> {
    round_iters: u64,
    run: Box<dyn FnMut(u64) + 'a>,
}

impl<'a> Peer<'a> {
    /// A peer that should run about `iters` iterations over [`ROUNDS`]
    /// rounds (an equal share in each, at least [`MIN_ROUND_ITERS`]); `run(k)`
    /// runs `k` of them.
    pub(crate) fn new(iters: u64, run: impl FnMut(u64) + 'a) -> Self {
        Self::per_round((iters / ROUNDS as u64).max(MIN_ROUND_ITERS), run)
    }

    /// A peer that runs exactly `round_iters` iterations in every round, for
    /// cases whose unit of work is a whole batch ("spawn N, then join N").
    pub(crate) fn per_round(round_iters: u64, run: impl FnMut(u64) + 'a) -> Self {
        Peer { round_iters, run: Box::new(run) }
    }

    fn round_iters(&self) -> u64 {
        self.round_iters
    }
}

/// What the rounds of one peer gave, in nanoseconds per iteration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// The median round: the headline figure.
    pub(crate) median: f64,
    /// The fastest round: the cost with the least interference.
    pub(crate) min: f64,
    /// The slowest round: how noisy the machine was.
    pub(crate) max: f64,
    /// Iterations in each round.
    pub(crate) round_iters: u64,
    /// How many rounds were timed.
    pub(crate) rounds: usize,
}

/// Runs one untimed warm-up round of every peer, then [`ROUNDS`] timed
/// rounds, the peers taking turns in the order given (first, second, ...,
/// first, second, ...). Returns each peer's [`Timing`], in the same order.
pub(crate) fn interleaved<const P: usize>(peers: [Peer<'_>; P]) -> [Timing; P] {
    interleaved_rounds(ROUNDS, peers)
}

/// [`interleaved`] with `rounds` timed rounds (odd, for a true median), for
/// cases whose rounds are long.
pub(crate) fn interleaved_rounds<const P: usize>(rounds: usize, mut peers: [Peer<'_>; P]) -> [Timing; P] {
    assert!(rounds > 0, "at least one round");
    for peer in &mut peers {
        let k = peer.round_iters();
        (peer.run)(k);
    }
    let mut samples: [Vec<f64>; P] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    for _ in 0..rounds {
        for (peer, samples) in peers.iter_mut().zip(&mut samples) {
            let k = peer.round_iters();
            let start = Instant::now();
            (peer.run)(k);
            let elapsed = start.elapsed();
            samples.push(elapsed.as_nanos() as f64 / k as f64);
        }
    }
    std::array::from_fn(|i| {
        let samples = &mut samples[i];
        samples.sort_by(f64::total_cmp);
        Timing {
            median: median(samples),
            min: samples[0],
            max: samples[samples.len() - 1],
            round_iters: peers[i].round_iters(),
            rounds,
        }
    })
}

/// The median of sorted, non-empty `samples`.
pub(crate) fn median(samples: &[f64]) -> f64 {
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 { samples[mid] } else { (samples[mid - 1] + samples[mid]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[1.0, 2.0, 10.0]), 2.0);
        assert_eq!(median(&[1.0, 2.0, 4.0, 10.0]), 3.0);
    }

    #[test]
    fn every_peer_runs_every_round_in_turn() {
        let order = std::cell::RefCell::new(Vec::new());
        let timings = interleaved([
            Peer::new(0, |k| order.borrow_mut().push(('a', k))),
            Peer::new(1_000 * ROUNDS as u64, |k| order.borrow_mut().push(('b', k))),
        ]);
        let order = order.into_inner();
        assert_eq!(order.len(), 2 * (ROUNDS + 1));
        for pair in order.chunks(2) {
            assert_eq!(pair, [('a', MIN_ROUND_ITERS), ('b', 1_000)]);
        }
        assert_eq!(timings[0].round_iters, MIN_ROUND_ITERS);
        assert_eq!(timings[1].round_iters, 1_000);
        assert!(timings[1].min <= timings[1].median && timings[1].median <= timings[1].max);
    }
}
