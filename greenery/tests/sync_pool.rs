//! `sync::Pool`: bounded concurrency, slots handed out first come first
//! served, waiting for slots (timeouts, kills, deadlock), mapping, `apply`,
//! `join` and `kill`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenery::hub::{Deadlock, TimedOut};
use greenery::sync::{Group, Imap, ImapUnordered, Pool, SpawnError};
use greenery::{JoinError, JoinHandle};

mod reports;

/// Guards against hangs only; nothing here is timed.
const LONG: Duration = Duration::from_secs(30);

/// Counts the green threads inside a stretch of code, and the most at once.
#[derive(Default)]
struct Gauge {
    running: Cell<usize>,
    most: Cell<usize>,
}

impl Gauge {
    fn new() -> Rc<Gauge> {
        Rc::new(Gauge::default())
    }

    /// Runs `f` counted.
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.running.set(self.running.get() + 1);
        self.most.set(self.most.get().max(self.running.get()));
        let result = f();
        self.running.set(self.running.get() - 1);
        result
    }
}

/// A log of events, shared by green threads.
#[derive(Clone, Default)]
struct Log(Rc<RefCell<Vec<String>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.borrow_mut().push(event.into());
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.borrow_mut())
    }
}

fn yields(turns: usize) {
    for _ in 0..turns {
        greenery::yield_now();
    }
}

/// A member that never finishes by itself: it waits for its own pool to be
/// empty.
fn stuck_member(pool: &Pool) -> JoinHandle<Result<(), Deadlock>> {
    let own = pool.clone();
    pool.spawn(move || own.join()).unwrap()
}

/// Sets its flag when dropped: tells whether a closure was dropped unrun.
struct DropFlag(Rc<Cell<bool>>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn concurrency_never_exceeds_the_size() {
    let pool = Pool::new(3);
    let gauge = Gauge::new();
    let handles: Vec<_> = (0..10)
        .map(|n| {
            let gauge = gauge.clone();
            pool.spawn(move || gauge.run(|| yields(n % 4 + 1))).unwrap()
        })
        .collect();
    assert!(pool.len() <= 3);
    pool.join().unwrap();
    assert_eq!(gauge.most.get(), 3);
    assert!(handles.iter().all(JoinHandle::is_successful));
    assert_eq!((pool.len(), pool.free_count()), (0, 3));
}

#[test]
fn counts_members_and_free_slots() {
    let pool = Pool::new(2);
    assert_eq!((pool.size(), pool.free_count(), pool.len()), (2, 2, 0));
    assert!(pool.is_empty() && !pool.is_full());
    let a = pool.spawn(|| yields(2)).unwrap();
    assert_eq!((pool.free_count(), pool.len()), (1, 1));
    assert!(pool.contains(&a));
    let b = pool.spawn(|| yields(2)).unwrap();
    assert!(pool.is_full());
    assert_eq!(format!("{pool:?}"), "Pool { size: 2, members: 2, free: 0 }");
    pool.join().unwrap();
    assert!(!pool.contains(&a) && !pool.contains(&b));
    assert_eq!((pool.free_count(), pool.len()), (2, 0));
    let clone = pool.clone();
    clone.spawn(|| ()).unwrap();
    assert_eq!(pool.len(), 1, "clones share the pool");
    pool.join().unwrap();
}

#[test]
fn spawn_waits_for_a_member_to_finish() {
    let pool = Pool::new(1);
    let first = pool.spawn(|| yields(3)).unwrap();
    let second = pool.spawn(|| "second").unwrap();
    // The second could only be spawned once the first had finished.
    assert!(first.is_ready());
    assert_eq!(second.get().unwrap(), "second");
}

#[test]
fn slots_go_to_waiters_in_the_order_they_came() {
    let pool = Pool::new(1);
    let log = Log::default();
    let holder = pool.spawn(|| greenery::sleep(Duration::from_millis(5))).unwrap();
    let waiters: Vec<_> = (0..4)
        .map(|n| {
            let (pool, log) = (pool.clone(), log.clone());
            greenery::spawn(move || {
                let member = pool.spawn(move || log.push(format!("member {n}"))).unwrap();
                member.join().unwrap();
            })
        })
        .collect();
    greenery::yield_now(); // they all stand in line
    assert!(pool.try_spawn(|| ()).unwrap_err().is_full());
    holder.join().unwrap();
    // The slot was handed to the first waiter, which has not run yet: a
    // newcomer cannot take it.
    assert_eq!(pool.free_count(), 0);
    assert!(pool.try_spawn(|| ()).unwrap_err().is_full());
    greenery::hub::joinall(&waiters, None, false).unwrap();
    assert_eq!(log.take(), ["member 0", "member 1", "member 2", "member 3"]);
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn a_waiter_killed_in_line_loses_nothing() {
    let pool = Pool::new(1);
    let log = Log::default();
    let holder = pool.spawn(|| greenery::sleep(Duration::from_millis(5))).unwrap();
    let dropped = Rc::new(Cell::new(false));
    let waiters: Vec<_> = (0..3)
        .map(|n| {
            let (pool, log, flag) = (pool.clone(), log.clone(), DropFlag(dropped.clone()));
            greenery::spawn(move || {
                let member = pool
                    .spawn(move || {
                        let _flag = flag;
                        log.push(format!("member {n}"));
                    })
                    .unwrap();
                member.join().unwrap();
            })
        })
        .collect();
    greenery::yield_now();
    waiters[1].kill().unwrap();
    assert!(dropped.get(), "the killed waiter's closure was dropped");
    dropped.set(false);
    holder.join().unwrap();
    greenery::hub::joinall(&waiters, None, false).unwrap();
    assert_eq!(log.take(), ["member 0", "member 2"]);
    assert_eq!(pool.free_count(), 1);
    assert!(pool.try_spawn(|| ()).is_ok());
}

#[test]
fn a_waiter_killed_after_it_was_handed_a_slot_passes_it_on() {
    let pool = Pool::new(1);
    let log = Log::default();
    let victim: Rc<RefCell<Option<JoinHandle<()>>>> = Rc::default();
    let to_kill = victim.clone();
    let holder = pool
        .spawn(move || {
            greenery::yield_now(); // the waiters stand in line
            // The kill is queued on the hub before our leave link hands the
            // slot to the first waiter (and queues it to run): it dies
            // holding the slot, before it could use it.
            to_kill.borrow().as_ref().unwrap().kill_async();
        })
        .unwrap();
    let mut waiters: Vec<_> = (0..2)
        .map(|n| {
            let (pool, log) = (pool.clone(), log.clone());
            greenery::spawn(move || {
                pool.spawn(move || log.push(format!("member {n}"))).unwrap().join().unwrap();
            })
        })
        .collect();
    *victim.borrow_mut() = Some(waiters.remove(0));
    holder.join().unwrap();
    waiters[0].join().unwrap();
    let killed = victim.borrow_mut().take().unwrap();
    assert!(killed.get().unwrap_err().is_killed());
    assert_eq!(log.take(), ["member 1"]);
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn spawn_timeout_gives_up_and_hands_the_closure_back() {
    let pool = Pool::new(1);
    let holder = pool.spawn(|| greenery::sleep(LONG)).unwrap();
    let err = pool.spawn_timeout(|| 5, Duration::from_millis(5)).unwrap_err();
    assert!(err.is_timeout() && !err.is_full() && !err.is_deadlock());
    assert_eq!(err.to_string(), "timed out waiting for a free slot in the pool");
    assert_eq!(format!("{err:?}"), "SpawnError(timed out waiting for a free slot in the pool)");
    assert_eq!(err.into_inner()(), 5);
    // Time enough once the holder goes.
    let killer = greenery::spawn(move || holder.kill().unwrap());
    let spawned = pool.spawn_timeout(|| 6, LONG).unwrap();
    assert_eq!(spawned.get().unwrap(), 6);
    killer.join().unwrap();
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn a_timeout_around_spawn_unwinds_out_of_the_line() {
    let pool = Pool::new(1);
    let log = Log::default();
    let holder = pool.spawn(|| greenery::sleep(LONG)).unwrap();
    let dropped = Rc::new(Cell::new(false));
    let flag = DropFlag(dropped.clone());
    let waited = {
        let log = log.clone();
        greenery::with_timeout(Duration::from_millis(1), || {
            pool.spawn(move || {
                let _flag = flag;
                log.push("timed out member ran");
            })
            .unwrap()
        })
    };
    assert_eq!(waited.unwrap_err(), TimedOut::from(Duration::from_millis(1)));
    assert!(dropped.get());
    // The line is intact behind it.
    let next = {
        let (pool, log) = (pool.clone(), log.clone());
        greenery::spawn(move || pool.spawn(move || log.push("next")).unwrap().join().unwrap())
    };
    holder.kill().unwrap();
    next.join().unwrap();
    assert_eq!(log.take(), ["next"]);
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn try_spawn_never_waits() {
    let pool = Pool::new(1);
    let first = pool.try_spawn(|| 1).unwrap();
    let err = pool.try_spawn(|| 2).unwrap_err();
    assert!(err.is_full() && !err.is_timeout() && !err.is_deadlock());
    assert_eq!(err.to_string(), "the pool is full: no free slot to spawn in");
    assert_eq!(err.into_inner()(), 2);
    assert_eq!(first.get().unwrap(), 1);
    assert_eq!(pool.try_spawn(|| 3).unwrap().get().unwrap(), 3);
}

#[test]
fn a_member_that_panics_frees_its_slot() {
    let reports = reports::capture();
    let pool = Pool::new(1);
    let member = pool.spawn(|| -> u32 { panic!("boom") }).unwrap();
    pool.join().unwrap();
    assert_eq!(pool.free_count(), 1);
    let err = member.get().unwrap_err();
    assert!(err.is_panic());
    assert_eq!(err.to_string(), "the green thread panicked: boom");
    reports.assert_one(&["failed: boom"]);
}

#[test]
fn a_killed_member_frees_its_slot() {
    let pool = Pool::new(1);
    let member = pool.spawn(|| greenery::sleep(LONG)).unwrap();
    greenery::yield_now(); // it is asleep
    member.kill().unwrap();
    assert_eq!((pool.free_count(), pool.len()), (1, 0));
    assert!(member.get().unwrap_err().is_killed());
}

#[test]
fn a_member_killed_before_it_started_frees_its_slot() {
    let pool = Pool::new(1);
    let ran = Rc::new(Cell::new(false));
    let flag = ran.clone();
    let member = pool.spawn(move || flag.set(true)).unwrap();
    member.kill_async();
    assert_eq!((pool.free_count(), pool.len()), (1, 0));
    greenery::yield_now();
    assert!(!ran.get());
}

#[test]
fn wait_available_waits_for_a_slot_and_leaves_it_free() {
    let pool = Pool::new(1);
    pool.wait_available().unwrap(); // at once
    let member = pool.spawn(|| yields(3)).unwrap();
    assert_eq!(pool.wait_available_timeout(Duration::ZERO), Ok(false));
    pool.wait_available().unwrap();
    assert!(member.is_ready());
    assert_eq!(pool.free_count(), 1);
    // In line with spawners: its turn comes after theirs, and it passes the
    // slot on.
    let log = Log::default();
    let holder = pool.spawn(|| greenery::sleep(Duration::from_millis(5))).unwrap();
    let spawner = {
        let (pool, log) = (pool.clone(), log.clone());
        greenery::spawn(move || {
            pool.spawn(move || log.push("spawned")).unwrap();
        })
    };
    let watcher = {
        let (pool, log) = (pool.clone(), log.clone());
        greenery::spawn(move || {
            pool.wait_available().unwrap();
            log.push("available");
        })
    };
    let late = {
        let (pool, log) = (pool.clone(), log.clone());
        greenery::spawn(move || {
            pool.spawn(move || log.push("late")).unwrap();
        })
    };
    greenery::hub::joinall([&holder], None, false).unwrap();
    greenery::hub::joinall([&spawner, &watcher, &late], None, false).unwrap();
    pool.join().unwrap();
    assert_eq!(log.take(), ["spawned", "available", "late"]);
}

#[test]
fn a_killed_wait_available_passes_its_turn_on() {
    let pool = Pool::new(1);
    let holder = pool.spawn(|| greenery::sleep(Duration::from_millis(5))).unwrap();
    let watcher = {
        let pool = pool.clone();
        greenery::spawn(move || pool.wait_available())
    };
    let spawner = {
        let pool = pool.clone();
        greenery::spawn(move || pool.spawn(|| "spawned").unwrap().get().unwrap())
    };
    greenery::yield_now();
    holder.join().unwrap(); // the slot is handed to the watcher, not yet run
    watcher.kill().unwrap();
    assert_eq!(spawner.get().unwrap(), "spawned");
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn map_keeps_the_order_and_reports_each_item() {
    let reports = reports::capture();
    let pool = Pool::new(2);
    let gauge = Gauge::new();
    let counted = gauge.clone();
    let results = pool.map(
        move |n: usize| {
            counted.run(|| yields(5 - n % 5));
            if n == 3 {
                panic!("item {n} failed");
            }
            n * n
        },
        0..8,
    );
    assert_eq!(gauge.most.get(), 2);
    assert_eq!(results.len(), 8);
    for (n, result) in results.iter().enumerate() {
        match result {
            Ok(square) => assert_eq!(*square, n * n),
            Err(err) => {
                assert_eq!(n, 3);
                assert_eq!(err.to_string(), "the green thread panicked: item 3 failed");
            }
        }
    }
    assert!(results[3].is_err());
    assert_eq!(pool.free_count(), 2);
    reports.assert_one(&["failed: item 3 failed"]);
}

#[test]
fn imap_keeps_running_behind_a_slow_first_item() {
    let pool = Pool::new(3);
    let gauge = Gauge::new();
    let finished = Log::default();
    let (counted, log) = (gauge.clone(), finished.clone());
    let results: Vec<usize> = pool
        .imap(
            move |n: usize| {
                counted.run(|| yields(if n == 0 { 100 } else { 2 }));
                log.push(n.to_string());
                n
            },
            0..8,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(gauge.most.get(), 3);
    // Every later item ran (two at a time, beside the slow one) and finished
    // before the first did.
    assert_eq!(finished.take().last().map(String::as_str), Some("0"));
}

#[test]
fn imap_is_lazy() {
    let pool = Pool::new(2);
    let pulled = Rc::new(Cell::new(0));
    let started = Rc::new(Cell::new(0));
    let (count, starts) = (pulled.clone(), started.clone());
    let items = (0..100).inspect(move |_| count.set(count.get() + 1));
    let mut results = pool.imap(
        move |n: u32| {
            starts.set(starts.get() + 1);
            n
        },
        items,
    );
    assert_eq!((pulled.get(), started.get()), (0, 0));
    assert_eq!(results.size_hint(), (100, Some(100)));
    assert_eq!(results.next().unwrap().unwrap(), 0);
    // Items 0 and 1 were spawned (one per slot), and item 2 pulled to see
    // that there is one. Both ran in one turn of the hub, and their slots
    // went at once to items 2 and 3 (item 4 pulled), which have not run yet.
    assert_eq!((pulled.get(), started.get()), (5, 2));
    assert_eq!(results.size_hint(), (99, Some(99)));
    drop(results);
    pool.join().unwrap();
    yields(3);
    // Items 2 and 3 ran; nothing more was started after the drop.
    assert_eq!((pulled.get(), started.get()), (5, 4));
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn imap_unordered_yields_in_the_order_items_finish() {
    let pool = Pool::new(5);
    let turns = [4, 0, 3, 1, 2];
    let results: Vec<usize> = pool
        .imap_unordered(
            |turns: usize| {
                yields(turns);
                turns
            },
            turns,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(results, [0, 1, 2, 3, 4]);

    // Bounded: a slow item does not hold up the others' results.
    let pool = Pool::new(2);
    let gauge = Gauge::new();
    let counted = gauge.clone();
    let order: Vec<usize> = pool
        .imap_unordered(
            move |(index, turns): (usize, usize)| {
                counted.run(|| yields(turns));
                index
            },
            [(0, 40), (1, 1), (2, 1), (3, 1)],
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(order, [1, 2, 3, 0]);
    assert_eq!(gauge.most.get(), 2);
}

#[test]
fn imap_reports_panics_and_kills_in_place() {
    let reports = reports::capture();
    let pool = Pool::new(2);
    let results: Vec<Result<&str, JoinError>> = pool
        .imap(
            |n: u32| match n {
                1 => panic!("one"),
                2 => {
                    greenery::getcurrent().kill().unwrap();
                    unreachable!()
                }
                _ => "fine",
            },
            0..4,
        )
        .collect();
    assert_eq!(results.len(), 4);
    assert_eq!(*results[0].as_ref().unwrap(), "fine");
    assert!(results[1].as_ref().unwrap_err().is_panic());
    assert!(results[2].as_ref().unwrap_err().is_killed());
    assert_eq!(*results[3].as_ref().unwrap(), "fine");
    assert_eq!(pool.free_count(), 2);
    reports.assert_one(&["failed: one"]);
}

#[test]
fn a_consumer_killed_in_imap_loses_nothing() {
    let pool = Pool::new(2);
    let ran = Rc::new(Cell::new(0));
    // Another member holds a slot, so the consumer also stands in line.
    let other = pool.spawn(|| greenery::sleep(Duration::from_millis(5))).unwrap();
    let consumer = {
        let (pool, ran) = (pool.clone(), ran.clone());
        greenery::spawn(move || {
            let results = pool.imap(
                move |n: u32| {
                    ran.set(ran.get() + 1);
                    greenery::sleep(LONG);
                    n
                },
                0..10,
            );
            results.map(Result::unwrap).sum::<u32>()
        })
    };
    greenery::yield_now(); // item 0 started, the consumer waits for a slot
    assert_eq!(pool.len(), 2);
    consumer.kill().unwrap();
    assert!(consumer.get().unwrap_err().is_killed());
    // Its started item carries on in the pool; nothing more starts, and
    // the slot the other member frees stays free.
    other.join().unwrap();
    yields(2);
    assert_eq!(ran.get(), 1);
    assert_eq!((pool.len(), pool.free_count()), (1, 1));
    pool.kill().unwrap();
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn a_caller_killed_in_apply_leaves_the_member_running() {
    let pool = Pool::new(1);
    let done = Rc::new(Cell::new(false));
    let caller = {
        let (pool, done) = (pool.clone(), done.clone());
        greenery::spawn(move || {
            pool.apply(move || {
                yields(3);
                done.set(true);
            })
        })
    };
    greenery::yield_now();
    assert_eq!(pool.len(), 1);
    caller.kill().unwrap();
    pool.join().unwrap();
    assert!(done.get(), "the member carried on");
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn a_timeout_around_wait_available() {
    let pool = Pool::new(1);
    let holder = pool.spawn(|| greenery::sleep(LONG)).unwrap();
    let outcome = greenery::with_timeout(Duration::from_millis(1), || pool.wait_available());
    assert!(outcome.is_err());
    let watcher = {
        let pool = pool.clone();
        greenery::spawn(move || pool.wait_available())
    };
    holder.kill().unwrap();
    assert_eq!(watcher.get().unwrap(), Ok(()));
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn apply_runs_in_the_pool_and_waits() {
    let reports = reports::capture();
    let pool = Pool::new(1);
    let on_main = pool.apply(|| greenery::getcurrent().is_main()).unwrap();
    assert!(!on_main, "it ran in a green thread of the pool");
    let err = pool.apply(|| -> u8 { panic!("applied") }).unwrap_err();
    assert_eq!(err.to_string(), "the green thread panicked: applied");
    assert_eq!(pool.free_count(), 1);
    reports.assert_one(&["failed: applied"]);
}

#[test]
fn apply_from_a_member_runs_inline() {
    let pool = Pool::new(1);
    let inner = pool.clone();
    let member = pool
        .spawn(move || {
            let me = greenery::getcurrent();
            // With the only slot held by the caller, a new member could
            // never start: it runs here instead.
            let same = inner.apply(move || greenery::getcurrent() == me).unwrap();
            let panicked = inner.apply(|| -> u8 { panic!("inline") }).unwrap_err();
            (same, panicked.is_panic(), panicked.to_string())
        })
        .unwrap();
    let (same, is_panic, message) = member.get().unwrap();
    assert!(same);
    assert!(is_panic);
    assert_eq!(message, "the green thread panicked: inline");
}

#[test]
fn a_kill_goes_through_an_inline_apply() {
    let pool = Pool::new(1);
    let inner = pool.clone();
    let reached = Rc::new(Cell::new(false));
    let flag = reached.clone();
    let member = pool
        .spawn(move || {
            let _ = inner.apply(|| greenery::sleep(LONG));
            flag.set(true);
        })
        .unwrap();
    greenery::yield_now();
    member.kill().unwrap();
    assert!(!reached.get(), "the kill was not swallowed by apply");
    assert!(member.get().unwrap_err().is_killed());
}

#[test]
fn join_waits_for_every_member() {
    let pool = Pool::new(3);
    pool.join().unwrap(); // empty: at once
    let handles: Vec<_> = (0..3).map(|n| pool.spawn(move || yields(n)).unwrap()).collect();
    pool.join().unwrap();
    assert!(handles.iter().all(JoinHandle::is_ready));
    assert!(pool.is_empty());
}

#[test]
fn join_timeout_and_a_timeout_around_join() {
    let pool = Pool::new(2);
    let sleeper = pool.spawn(|| greenery::sleep(LONG)).unwrap();
    assert_eq!(pool.join_timeout(Duration::from_millis(5)), Ok(false));
    let outcome = greenery::with_timeout(Duration::from_millis(5), || pool.join());
    assert!(outcome.is_err());
    // A joiner killed while it waits does not disturb the others.
    let joiners: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            greenery::spawn(move || pool.join())
        })
        .collect();
    greenery::yield_now();
    joiners[1].kill().unwrap();
    sleeper.kill().unwrap();
    assert_eq!(pool.join_timeout(LONG), Ok(true));
    let outcomes: Vec<_> = joiners.into_iter().map(JoinHandle::get).collect();
    assert!(matches!(outcomes[0], Ok(Ok(()))));
    assert!(outcomes[1].as_ref().unwrap_err().is_killed());
    assert!(matches!(outcomes[2], Ok(Ok(()))));
}

#[test]
fn kill_kills_every_member() {
    let pool = Pool::new(3);
    let handles: Vec<_> = (0..3).map(|_| pool.spawn(|| greenery::sleep(LONG)).unwrap()).collect();
    greenery::yield_now();
    pool.kill().unwrap();
    assert!(pool.is_empty());
    assert_eq!(pool.free_count(), 3);
    assert!(handles.into_iter().all(|handle| handle.get().unwrap_err().is_killed()));

    // Asynchronously: they die when the hub runs next.
    let handles: Vec<_> = (0..2).map(|_| pool.spawn(|| greenery::sleep(LONG)).unwrap()).collect();
    greenery::yield_now();
    pool.kill_async();
    assert_eq!(pool.len(), 2);
    pool.join().unwrap();
    assert!(handles.iter().all(|handle| handle.is_ready() && handle.is_killed() && handle.is_successful()));
}

#[test]
fn kill_from_a_member_kills_it_last() {
    let pool = Pool::new(3);
    let log = Log::default();
    let others: Vec<_> = (0..2)
        .map(|n| {
            let log = log.clone();
            pool.spawn(move || {
                struct Dying(Log, usize);
                impl Drop for Dying {
                    fn drop(&mut self) {
                        self.0.push(format!("other {} dies", self.1));
                    }
                }
                let _dying = Dying(log, n);
                greenery::sleep(LONG);
            })
            .unwrap()
        })
        .collect();
    let (own, killer_log) = (pool.clone(), log.clone());
    let killer = pool
        .spawn(move || {
            greenery::yield_now();
            let outcome = own.kill();
            killer_log.push(format!("kill returned {outcome:?}"));
        })
        .unwrap();
    pool.join().unwrap();
    assert_eq!(log.take(), ["other 0 dies", "other 1 dies"]);
    assert!(killer.get().unwrap_err().is_killed());
    assert!(others.into_iter().all(|other| other.get().unwrap_err().is_killed()));
}

#[test]
fn deadlock_from_the_main_greenlet() {
    let pool = Pool::new(1);
    let stuck = stuck_member(&pool);
    greenery::yield_now();

    let err = pool.spawn(|| 1).unwrap_err();
    assert!(err.is_deadlock());
    assert_eq!(err.to_string(), format!("no slot of the pool can ever free up: {Deadlock}"));
    assert_eq!(err.into_inner()(), 1);
    assert_eq!(pool.join(), Err(Deadlock));
    assert_eq!(pool.wait_available(), Err(Deadlock));
    assert!(pool.apply(|| 1).unwrap_err().is_deadlock());
    let results = pool.map(|n: u32| n, 0..3);
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|result| result.as_ref().unwrap_err().is_deadlock()));
    assert_eq!(pool.len(), 1);

    pool.kill().unwrap();
    assert!(stuck.get().unwrap_err().is_killed());
    assert_eq!(pool.free_count(), 1);
    assert_eq!(pool.apply(|| 2).unwrap(), 2);
}

#[test]
fn imap_gives_up_an_item_that_can_never_finish() {
    let pool = Pool::new(2);
    let own = pool.clone();
    let results: Vec<_> = pool
        .imap(
            move |n: u32| {
                if n == 0 {
                    // A member waiting for its own pool to be empty: never.
                    own.join().unwrap();
                }
                n
            },
            0..3,
        )
        .collect();
    assert!(results[0].as_ref().unwrap_err().is_deadlock());
    assert_eq!(*results[1].as_ref().unwrap(), 1);
    assert_eq!(*results[2].as_ref().unwrap(), 2);
    assert_eq!(pool.len(), 1);
    pool.kill().unwrap();
    assert_eq!(pool.free_count(), 2);
}

#[test]
fn nested_pools_keep_both_bounds() {
    let outer = Pool::new(2);
    let inner = Pool::new(3);
    let (outer_gauge, inner_gauge) = (Gauge::new(), Gauge::new());
    let (counted, inner_counted) = (outer_gauge.clone(), inner_gauge.clone());
    let sums: Vec<u32> = outer
        .map(
            move |base: u32| {
                let inner_counted = inner_counted.clone();
                counted.run(|| {
                    inner
                        .map(
                            move |n: u32| {
                                inner_counted.run(|| yields(2));
                                base * 10 + n
                            },
                            0..4,
                        )
                        .into_iter()
                        .map(Result::unwrap)
                        .sum()
                })
            },
            0..5,
        )
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(sums, [6, 46, 86, 126, 166]);
    assert_eq!(outer_gauge.most.get(), 2);
    assert_eq!(inner_gauge.most.get(), 3);
}

#[test]
#[should_panic(expected = "a pool of size 0 could never run anything")]
fn a_pool_of_size_zero_is_refused() {
    let _ = Pool::new(0);
}

#[test]
fn dropping_the_pool_leaves_members_running() {
    let pool = Pool::new(1);
    let member = pool.spawn(|| yields(2)).unwrap();
    drop(pool);
    member.join().unwrap();
    assert!(member.is_successful());
}

/// `AmbiguousIfSend::<_>::some_item` resolves only if `T` is *not* `Send`
/// (as in `tests/auto_traits.rs`).
trait AmbiguousIfSend<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSend<()> for T {}
impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}

trait AmbiguousIfSync<A> {
    fn some_item() {}
}
impl<T: ?Sized> AmbiguousIfSync<()> for T {}
impl<T: ?Sized + Sync> AmbiguousIfSync<u8> for T {}

fn is_send<T: Send>() {}
fn is_sync<T: Sync>() {}

type Squares = fn(u32) -> u32;

#[test]
fn pools_stay_on_their_thread_and_errors_cross() {
    let _ = <Pool as AmbiguousIfSend<_>>::some_item;
    let _ = <Pool as AmbiguousIfSync<_>>::some_item;
    let _ = <Group as AmbiguousIfSend<_>>::some_item;
    let _ = <Group as AmbiguousIfSync<_>>::some_item;
    let _ = <Imap<u32, Squares, std::ops::Range<u32>> as AmbiguousIfSend<_>>::some_item;
    let _ = <Imap<u32, Squares, std::ops::Range<u32>> as AmbiguousIfSync<_>>::some_item;
    let _ = <ImapUnordered<u32, Squares, std::ops::Range<u32>> as AmbiguousIfSend<_>>::some_item;
    let _ = <ImapUnordered<u32, Squares, std::ops::Range<u32>> as AmbiguousIfSync<_>>::some_item;
    is_send::<SpawnError<Squares>>();
    is_sync::<SpawnError<Squares>>();
}
