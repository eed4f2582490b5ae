//! Timeouts around slow work: `with_timeout` around one call, the `Timeout`
//! guard around a stretch of code, and a per-item timeout in a pool map.
//!
//! ```text
//! cargo run --example timeouts
//! ```

use std::time::{Duration, Instant};

use greenery::hub::{Timeout, with_timeout};
use greenery::sync::Pool;

/// Work that takes `ms` milliseconds (a `sleep` standing in for I/O).
fn slow_work(ms: u64) -> u64 {
    greenery::sleep(Duration::from_millis(ms));
    ms
}

fn main() {
    // One call, bounded: the slow one is unwound at its sleep.
    for ms in [10, 200] {
        match with_timeout(Duration::from_millis(50), || slow_work(ms)) {
            Ok(value) => println!("{ms} ms of work finished: {value}"),
            Err(timed_out) => println!("{ms} ms of work: {timed_out}"),
        }
    }

    // The guard form: start it, do several things, cancel it.
    let mut deadline = Timeout::new(Duration::from_millis(100));
    let outcome = deadline.run(|| {
        let first = slow_work(30);
        let second = slow_work(30);
        first + second
    });
    println!("two steps within 100 ms: {outcome:?}");

    // Many slow calls at once, each with its own timeout, 4 at a time.
    let pool = Pool::new(4);
    let started = Instant::now();
    let results = pool.map(
        |ms: u64| with_timeout(Duration::from_millis(60), || slow_work(ms)).ok(),
        [20, 90, 40, 120, 10, 50, 80, 30],
    );
    let finished: Vec<_> = results.into_iter().map(|result| result.expect("no item panics")).collect();
    println!("pool map with a 60 ms timeout per item: {finished:?} in {:.0?}", started.elapsed());
}
