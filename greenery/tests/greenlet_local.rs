//! Greenlet-local storage, in the spirit of python-greenlet's
//! `tests/test_contextvars.py`: greenlet gives each greenlet its own
//! `contextvars.Context` (`gr_context`), empty in a new greenlet; greenery's
//! [`GreenletLocal`] gives each greenlet its own copy of a value, made fresh
//! on first use.
//!
//! Not translated: propagating a context by assigning `gr_context`
//! (`test_context_propagated_by_setting_attribute`, `test_context_shared`,
//! `test_not_broken_if_using_attribute_instead_of_context_run`), or by
//! `Context.run` (`test_context_propagated_by_context_run`,
//! `test_break_ctxvars`), and clearing it (`test_context_assignment_while_running`'s
//! `gr.gr_context = None`): a greenlet's locals cannot be read or replaced
//! from outside it; a value to share is passed in explicitly (see
//! `propagation_is_explicit`). `test_context_assignment_different_thread`:
//! handles cannot cross threads.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use greenery::greenlet::{self, Greenlet, GreenletLocal, Thrown, Value};

fn parent_switch<T: 'static>(value: T) -> Result<Value, Thrown> {
    let parent = greenlet::getcurrent().parent().expect("not the main greenlet");
    parent.switch(value)
}

// From greenlet's tests/test_contextvars.py, ContextVarsTests.test_context_not_propagated.
#[test]
fn each_greenlet_starts_with_a_fresh_copy() {
    static ID: GreenletLocal<Cell<Option<usize>>> = GreenletLocal::new(|| Cell::new(None));
    ID.with(|id| id.set(Some(0)));
    let counts = Rc::new(RefCell::new([0u32; 5]));
    let lets: Vec<Greenlet> = (1..5)
        .map(|greenlet_id| {
            let counts = counts.clone();
            Greenlet::new(move |_| {
                assert_eq!(ID.with(Cell::get), None, "a new greenlet does not see its creator's value");
                ID.with(|id| id.set(Some(greenlet_id)));
                for _ in 0..2 {
                    counts.borrow_mut()[ID.with(Cell::get).unwrap()] += 1;
                    parent_switch(()).unwrap();
                }
            })
        })
        .collect();
    for _ in 0..2 {
        counts.borrow_mut()[ID.with(Cell::get).unwrap()] += 1;
        for g in &lets {
            g.switch(()).unwrap();
        }
    }
    for g in &lets {
        g.switch(()).unwrap();
    }
    assert!(lets.iter().all(Greenlet::is_dead));
    assert_eq!(*counts.borrow(), [2, 2, 2, 2, 2]);
    assert_eq!(ID.with(Cell::get), Some(0), "main's copy is untouched");
}

// From greenlet's tests/test_contextvars.py, ContextVarsTests.test_context_assignment_while_running (created on first use, kept across switches).
#[test]
fn copy_is_made_on_first_use_and_kept_across_switches() {
    thread_local! {
        static INITS: Cell<u32> = const { Cell::new(0) };
    }
    static VAR: GreenletLocal<RefCell<Vec<&'static str>>> = GreenletLocal::new(|| {
        INITS.with(|n| n.set(n.get() + 1));
        RefCell::new(Vec::new())
    });
    let g = Greenlet::new(|_| {
        parent_switch(()).unwrap(); // not used yet
        VAR.with(|v| v.borrow_mut().push("one"));
        parent_switch(()).unwrap();
        VAR.with(|v| v.borrow_mut().push("two"));
        VAR.with(|v| v.borrow().join(","))
    });
    g.switch(()).unwrap();
    assert_eq!(INITS.with(Cell::get), 0, "nothing is made before first use");
    g.switch(()).unwrap();
    assert_eq!(INITS.with(Cell::get), 1);
    // Main's copy is separate, and made now.
    VAR.with(|v| v.borrow_mut().push("main"));
    assert_eq!(INITS.with(Cell::get), 2);
    assert_eq!(g.switch(()).unwrap().downcast::<String>().unwrap(), "one,two");
    assert_eq!(INITS.with(Cell::get), 2);
    assert_eq!(VAR.with(|v| v.borrow().clone()), ["main"]);
}

// From greenlet's tests/test_contextvars.py, ContextVarsTests.test_context_assignment_while_running (the context goes with its greenlet).
#[test]
fn copies_are_dropped_with_their_greenlet() {
    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    thread_local! {
        static DROPS: Rc<Cell<u32>> = Rc::new(Cell::new(0));
    }
    static RES: GreenletLocal<Counted> = GreenletLocal::new(|| Counted(DROPS.with(Rc::clone)));
    let drops = DROPS.with(Rc::clone);

    // A greenlet that finishes: its copy lives as long as the greenlet.
    let finished = Greenlet::new(|_| RES.with(|_| ()));
    finished.switch(()).unwrap();
    assert!(finished.is_dead());
    assert_eq!(drops.get(), 0, "a dead greenlet's copy stays until the greenlet goes");
    drop(finished);
    assert_eq!(drops.get(), 1);

    // A greenlet killed on drop can still use its copy while it unwinds.
    let killed = Greenlet::new(|_| {
        struct UsesLocal;
        impl Drop for UsesLocal {
            fn drop(&mut self) {
                RES.with(|_| ());
            }
        }
        RES.with(|_| ());
        let _guard = UsesLocal;
        parent_switch(()).unwrap();
    });
    killed.switch(()).unwrap();
    drop(killed);
    assert_eq!(drops.get(), 2, "one copy, made before the kill and dropped with the greenlet");
}

// From greenlet's tests/test_contextvars.py, ContextVarsTests.test_context_propagated_by_setting_attribute (propagation is explicit in greenery).
#[test]
fn propagation_is_explicit() {
    static ID: GreenletLocal<Cell<u32>> = GreenletLocal::new(|| Cell::new(0));
    ID.with(|id| id.set(7));
    let inherited = ID.with(Cell::get);
    let child = Greenlet::new(move |_| {
        let fresh = ID.with(Cell::get);
        ID.with(|id| id.set(inherited));
        let copied = ID.with(Cell::get);
        ID.with(|id| id.set(99));
        (fresh, copied)
    });
    assert_eq!(child.switch(()).unwrap().downcast::<(u32, u32)>().unwrap(), (0, 7));
    assert_eq!(ID.with(Cell::get), 7, "the child changed its own copy only");
}

// From greenlet's tests/test_contextvars.py (several context variables: each GreenletLocal is independent).
#[test]
fn locals_are_independent_and_init_may_use_other_locals() {
    static BASE: GreenletLocal<Cell<u32>> = GreenletLocal::new(|| Cell::new(10));
    static DERIVED: GreenletLocal<Cell<u32>> = GreenletLocal::new(|| Cell::new(BASE.with(Cell::get) + 1));
    BASE.with(|b| b.set(20));
    assert_eq!(DERIVED.with(Cell::get), 21);
    BASE.with(|b| b.set(30));
    assert_eq!(DERIVED.with(Cell::get), 21, "made once per greenlet");
    let g = Greenlet::new(|_| (BASE.with(Cell::get), DERIVED.with(Cell::get)));
    assert_eq!(g.switch(()).unwrap().downcast::<(u32, u32)>().unwrap(), (10, 11));
    // Another thread's main greenlet has its own copies too.
    let other = std::thread::spawn(|| (BASE.with(Cell::get), DERIVED.with(Cell::get))).join().unwrap();
    assert_eq!(other, (10, 11));
    assert_eq!((BASE.with(Cell::get), DERIVED.with(Cell::get)), (30, 21));
}
