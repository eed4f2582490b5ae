//! Memory after a burst: once green threads stop finishing, the hub gives
//! back what the finished ones left for reuse (stack pages, malloc's free
//! memory), and the process returns to about its memory before the burst.
//!
//! One test in this binary, so that nothing else in the process moves its
//! resident memory meanwhile.

use std::hint::black_box;
use std::rc::Rc;
use std::time::Duration;

use greenery::sync::Event;

/// This process's resident memory, in bytes (`/proc/self/statm`).
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|pages| pages.parse().ok()).expect("statm");
    // SAFETY: sysconf only reads the system's configuration.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    pages * page
}

/// Touches about `depth` bytes of this green thread's stack.
#[inline(never)]
fn use_stack(depth: usize) -> u8 {
    let mut frame = [0u8; 4096];
    for (i, byte) in frame.iter_mut().enumerate().step_by(512) {
        *byte = i as u8;
    }
    let frame = black_box(frame);
    if depth > frame.len() { frame[7] ^ use_stack(depth - frame.len()) } else { frame[7] }
}

#[test]
fn after_a_burst_of_green_threads_memory_returns_near_its_baseline() {
    const GREEN_THREADS: usize = 1000;
    // Quick, for the test; the default is ten seconds.
    greenery::stack::set_release_after(Some(Duration::from_millis(100)));
    // The hub and the main greenlet's own structures exist before the
    // baseline.
    greenery::spawn(|| ()).join().unwrap();
    greenery::sleep(Duration::from_millis(300));
    let baseline = resident_bytes();

    let go = Rc::new(Event::new());
    let burst: Vec<_> = (0..GREEN_THREADS)
        .map(|i| {
            let go = go.clone();
            greenery::spawn(move || {
                let heap = black_box(vec![i as u8; 8 * 1024]);
                let touched = use_stack(32 * 1024);
                go.wait().unwrap();
                heap[7].wrapping_add(touched)
            })
        })
        .collect();
    greenery::yield_now(); // every one of them runs and parks
    let during = resident_bytes();
    go.set();
    for green in burst {
        green.join().unwrap();
    }
    // No green thread finishes from here on: the hub gives the memory back
    // after 100 ms.
    greenery::sleep(Duration::from_secs(1));
    let after = resident_bytes();

    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let took = during.saturating_sub(baseline);
    let kept = after.saturating_sub(baseline);
    assert!(
        took > (GREEN_THREADS as u64) * 32 * 1024,
        "the burst should take memory: {:.1} MiB before, {:.1} MiB during",
        mib(baseline),
        mib(during)
    );
    assert!(
        kept < took / 8,
        "memory stayed after the burst: {:.1} MiB before, {:.1} MiB during, {:.1} MiB after",
        mib(baseline),
        mib(during),
        mib(after)
    );
}
