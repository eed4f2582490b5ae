//! `sync::Group`: members of any types that leave as they finish, `add`,
//! `join` (timeouts, kills, deadlock), `kill`, mapping and `apply`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use greenery::JoinHandle;
use greenery::hub::{Deadlock, TimedOut};
use greenery::sync::Group;

mod reports;

/// Guards against hangs only; nothing here is timed.
const LONG: Duration = Duration::from_secs(30);

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

/// Logs its death when dropped (a member unwound by a kill drops it).
struct Dying(Log, String);

impl Drop for Dying {
    fn drop(&mut self) {
        self.0.push(format!("{} dies", self.1));
    }
}

fn yields(turns: usize) {
    for _ in 0..turns {
        greenery::yield_now();
    }
}

/// Counts the green threads inside a stretch of code, and the most at once.
#[derive(Default)]
struct Gauge {
    running: Cell<usize>,
    most: Cell<usize>,
}

impl Gauge {
    fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        self.running.set(self.running.get() + 1);
        self.most.set(self.most.get().max(self.running.get()));
        let result = f();
        self.running.set(self.running.get() - 1);
        result
    }
}

#[test]
fn members_leave_when_they_finish() {
    let group = Group::new();
    assert!(group.is_empty());
    let quick = group.spawn(|| 1u8);
    let slow = group.spawn(|| {
        yields(3);
        "slow"
    });
    assert_eq!(group.len(), 2);
    assert!(group.contains(&quick) && group.contains(&slow));
    assert_eq!(format!("{group:?}"), "Group { members: 2 }");
    greenery::yield_now();
    assert!(quick.is_ready());
    assert!(!group.contains(&quick) && group.contains(&slow));
    assert_eq!(group.len(), 1);
    group.join().unwrap();
    assert!(group.is_empty());
    assert_eq!((quick.get().unwrap(), slow.get().unwrap()), (1, "slow"));
    let clone = group.clone();
    let shared = clone.spawn(|| ());
    assert!(group.contains(&shared), "clones share the group");
    group.join().unwrap();
}

#[test]
fn add_tracks_green_threads_spawned_elsewhere() {
    let group = Group::default();
    let text = greenery::spawn(|| String::from("text"));
    let number = greenery::spawn(|| {
        yields(2);
        7u64
    });
    assert!(group.add(&text));
    assert!(group.add(&number));
    assert!(!group.add(&number), "a member already");
    assert_eq!(group.len(), 2);
    group.join().unwrap();
    assert!(group.is_empty());
    assert!(!group.add(&text), "finished already");
    assert_eq!((text.get().unwrap(), number.get().unwrap()), ("text".to_owned(), 7));
}

#[test]
fn members_that_panic_or_are_killed_leave_too() {
    let reports = reports::capture();
    let group = Group::new();
    let panicking = group.spawn(|| -> u8 { panic!("member failed") });
    let sleeper = group.spawn(|| greenery::sleep(LONG));
    let unstarted = group.spawn(|| ());
    unstarted.kill().unwrap(); // before it ran
    assert!(!group.contains(&unstarted));
    greenery::yield_now();
    assert!(!group.contains(&panicking));
    sleeper.kill().unwrap();
    assert!(group.is_empty());
    assert_eq!(panicking.get().unwrap_err().to_string(), "the green thread panicked: member failed");
    assert!(sleeper.get().unwrap_err().is_killed());
    assert!(unstarted.get().unwrap_err().is_killed());
    reports.assert_one(&["failed: member failed"]);
}

#[test]
fn join_waits_until_the_group_is_empty() {
    let group = Group::new();
    group.join().unwrap(); // empty: at once
    let handles: Vec<_> = (0..4).map(|n| group.spawn(move || yields(n))).collect();
    group.join().unwrap();
    assert!(handles.iter().all(JoinHandle::is_ready));
}

#[test]
fn join_returns_once_the_group_was_empty_even_if_refilled() {
    let group = Group::new();
    let log = Log::default();
    group.spawn(|| yields(2));
    let (refill, refill_log) = (group.clone(), log.clone());
    // Joins, then as soon as the group empties, spawns a new member.
    let refiller = greenery::spawn(move || {
        refill.join().unwrap();
        refill.spawn(move || {
            greenery::sleep(Duration::from_millis(5));
            refill_log.push("late member done");
        });
    });
    let joiner = {
        let (group, log) = (group.clone(), log.clone());
        greenery::spawn(move || {
            group.join().unwrap();
            log.push("joiner done");
        })
    };
    joiner.join().unwrap();
    refiller.join().unwrap();
    assert_eq!(log.take(), ["joiner done"]);
    group.join().unwrap();
    assert_eq!(log.take(), ["late member done"]);
}

#[test]
fn joiners_are_woken_in_the_order_they_came() {
    let group = Group::new();
    group.spawn(|| greenery::sleep(Duration::from_millis(5)));
    let log = Log::default();
    let joiners: Vec<_> = (0..4)
        .map(|n| {
            let (group, log) = (group.clone(), log.clone());
            greenery::spawn(move || {
                group.join().unwrap();
                log.push(format!("joiner {n}"));
            })
        })
        .collect();
    greenery::hub::joinall(&joiners, None, false).unwrap();
    assert_eq!(log.take(), ["joiner 0", "joiner 1", "joiner 2", "joiner 3"]);
}

#[test]
fn join_timeout_and_a_timeout_around_join() {
    let group = Group::new();
    let sleeper = group.spawn(|| greenery::sleep(LONG));
    assert_eq!(group.join_timeout(Duration::from_millis(5)), Ok(false));
    let outcome = greenery::with_timeout(Duration::from_millis(5), || group.join());
    assert_eq!(outcome, Err(TimedOut::from(Duration::from_millis(5))));
    sleeper.kill().unwrap();
    assert_eq!(group.join_timeout(Duration::ZERO), Ok(true));
}

#[test]
fn a_joiner_killed_while_it_waits_leaves_the_others_waiting() {
    let group = Group::new();
    let sleeper = group.spawn(|| greenery::sleep(LONG));
    let log = Log::default();
    let joiners: Vec<_> = (0..3)
        .map(|n| {
            let (group, log) = (group.clone(), log.clone());
            greenery::spawn(move || {
                group.join().unwrap();
                log.push(format!("joiner {n}"));
            })
        })
        .collect();
    greenery::yield_now();
    joiners[1].kill().unwrap();
    sleeper.kill().unwrap();
    greenery::hub::joinall(&joiners, None, false).unwrap();
    assert_eq!(log.take(), ["joiner 0", "joiner 2"]);
    assert!(joiners[1].is_killed() && joiners[1].is_successful(), "a kill is a normal end, as in gevent");
}

#[test]
fn deadlock_from_the_main_greenlet() {
    let group = Group::new();
    // A member that waits for its own group to be empty: never.
    let own = group.clone();
    let stuck = group.spawn(move || own.join());
    assert_eq!(group.join(), Err(Deadlock));
    assert_eq!(group.join(), Err(Deadlock), "and again");
    assert!(group.contains(&stuck));
    group.kill().unwrap();
    assert!(stuck.get().unwrap_err().is_killed());
    assert!(group.is_empty());
}

#[test]
fn kill_kills_every_member_and_waits() {
    let group = Group::new();
    let log = Log::default();
    let handles: Vec<_> = (0..3)
        .map(|n| {
            let log = log.clone();
            group.spawn(move || {
                let _dying = Dying(log, format!("member {n}"));
                greenery::sleep(LONG);
            })
        })
        .collect();
    greenery::yield_now(); // they are asleep
    let unstarted = group.spawn(|| -> u8 { panic!("never runs") });
    group.kill().unwrap();
    assert!(group.is_empty());
    assert_eq!(log.take(), ["member 0 dies", "member 1 dies", "member 2 dies"]);
    assert!(handles.into_iter().all(|handle| handle.get().unwrap_err().is_killed()));
    assert!(unstarted.get().unwrap_err().is_killed());
    group.kill().unwrap(); // an empty group: nothing to do
}

#[test]
fn a_killer_killed_while_it_waits_in_kill() {
    let group = Group::new();
    let log = Log::default();
    // A member whose death takes time: its destructor blocks.
    struct SlowDeath(Log);
    impl Drop for SlowDeath {
        fn drop(&mut self) {
            greenery::sleep(Duration::from_millis(5));
            self.0.push("member died");
        }
    }
    let member_log = log.clone();
    let member = group.spawn(move || {
        let _slow = SlowDeath(member_log);
        greenery::sleep(LONG);
    });
    greenery::yield_now();
    let killer = {
        let group = group.clone();
        greenery::spawn(move || group.kill())
    };
    yields(2); // the member is dying, the killer waits
    assert!(!member.is_ready());
    killer.kill().unwrap();
    assert!(killer.get().unwrap_err().is_killed());
    group.join().unwrap();
    assert_eq!(log.take(), ["member died"]);
    assert!(member.get().unwrap_err().is_killed());
}

#[test]
fn kill_async_returns_at_once() {
    let group = Group::new();
    let handles: Vec<_> = (0..2).map(|_| group.spawn(|| greenery::sleep(LONG))).collect();
    greenery::yield_now();
    group.kill_async();
    assert_eq!(group.len(), 2, "not dead yet");
    group.join().unwrap();
    assert!(handles.into_iter().all(|handle| handle.get().unwrap_err().is_killed()));
}

#[test]
fn kill_from_a_member_kills_it_last() {
    let group = Group::new();
    let log = Log::default();
    let others: Vec<_> = (0..2)
        .map(|n| {
            let log = log.clone();
            group.spawn(move || {
                let _dying = Dying(log, format!("other {n}"));
                greenery::sleep(LONG);
            })
        })
        .collect();
    let (own, killer_log) = (group.clone(), log.clone());
    let killer = group.spawn(move || {
        let _dying = Dying(killer_log.clone(), "killer".into());
        greenery::yield_now();
        let _ = own.kill();
        killer_log.push("kill returned");
    });
    group.join().unwrap();
    assert_eq!(log.take(), ["other 0 dies", "other 1 dies", "killer dies"]);
    assert!(killer.get().unwrap_err().is_killed());
    assert!(others.into_iter().all(|other| other.get().unwrap_err().is_killed()));
}

#[test]
fn map_starts_every_item_at_once_and_keeps_the_order() {
    let reports = reports::capture();
    let group = Group::new();
    let gauge = Rc::new(Gauge::default());
    let counted = gauge.clone();
    let results = group.map(
        move |n: usize| {
            counted.run(|| yields(10 - n));
            if n == 4 {
                panic!("four");
            }
            n * 2
        },
        0..10,
    );
    assert_eq!(gauge.most.get(), 10);
    for (n, result) in results.into_iter().enumerate() {
        match result {
            Ok(double) => assert_eq!(double, n * 2),
            Err(err) => {
                assert_eq!(n, 4);
                assert!(err.is_panic());
            }
        }
    }
    assert!(group.is_empty());
    reports.assert_one(&["failed: four"]);
}

#[test]
fn imap_and_imap_unordered() {
    let group = Group::new();
    let turns = [3, 0, 2, 1];
    let ordered: Vec<usize> = group
        .imap(
            |turns: usize| {
                yields(turns);
                turns
            },
            turns,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(ordered, [3, 0, 2, 1]);
    let unordered: Vec<usize> = group
        .imap_unordered(
            |turns: usize| {
                yields(turns);
                turns
            },
            turns,
        )
        .map(Result::unwrap)
        .collect();
    assert_eq!(unordered, [0, 1, 2, 3]);
    let mut empty = group.imap(|n: u8| n, []);
    assert!(empty.next().is_none());
    assert!(empty.next().is_none());
}

#[test]
fn apply_waits_for_a_new_member_or_runs_inline_in_one() {
    let reports = reports::capture();
    let group = Group::new();
    let (value, on_main) = group.apply(|| (5, greenery::getcurrent().is_main())).unwrap();
    assert_eq!(value, 5);
    assert!(!on_main);
    let err = group.apply(|| -> u8 { panic!("applied") }).unwrap_err();
    assert!(err.is_panic());

    let inner = group.clone();
    let member = group.spawn(move || {
        let me = greenery::getcurrent();
        let inline = inner.apply(move || greenery::getcurrent() == me).unwrap();
        (inline, inner.len())
    });
    let (inline, members) = member.get().unwrap();
    assert!(inline, "a member's apply runs on the member");
    assert_eq!(members, 1, "no new member for it");
    reports.assert_one(&["failed: applied"]);
}

#[test]
fn dropping_the_group_leaves_members_running() {
    let group = Group::new();
    let member = group.spawn(|| {
        yields(2);
        3
    });
    drop(group);
    assert_eq!(member.get().unwrap(), 3);
}
