//! Concurrent workers over a queue: a producer puts jobs into a bounded
//! queue, a pool of worker green threads takes them, and the main green
//! thread waits until every job is done (gevent's `JoinableQueue` pattern).
//!
//! ```text
//! cargo run --example workers [-- JOBS WORKERS]
//! ```
//!
//! Each job "downloads" for a few milliseconds (a `sleep` standing in for
//! I/O), so the jobs overlap: the whole run takes about JOBS / WORKERS times
//! one job, not JOBS times.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use greenery::sync::{Pool, Queue};

fn main() {
    let mut args = std::env::args().skip(1).map(|arg| arg.parse::<usize>().expect("a number"));
    let jobs = args.next().unwrap_or(40);
    let workers = args.next().unwrap_or(8).max(1);

    let queue = Rc::new(Queue::<usize>::bounded(workers * 2));
    let done = Rc::new(RefCell::new(Vec::new()));
    let pool = Pool::new(workers);
    let started = Instant::now();

    for worker in 0..workers {
        let (queue, done) = (queue.clone(), done.clone());
        pool.spawn(move || {
            // Ends when the queue is shut down and drained.
            for job in queue.iter() {
                greenery::sleep(Duration::from_millis(5 + (job % 3) as u64)); // the "work"
                done.borrow_mut().push((job, worker));
                queue.task_done().expect("one task_done per job");
            }
        })
        .expect("the pool has a free slot for each worker");
    }

    // The producer: `put` waits while the queue is full (back-pressure).
    for job in 0..jobs {
        queue.put(job).expect("the queue is open");
    }
    queue.join().expect("the workers finish every job");
    queue.shutdown();
    pool.join().expect("the workers end");

    let done = done.borrow();
    let mut per_worker = vec![0; workers];
    for &(_, worker) in done.iter() {
        per_worker[worker] += 1;
    }
    println!("{} jobs done by {workers} workers in {:.0?}", done.len(), started.elapsed());
    println!("jobs per worker: {per_worker:?}");
}
