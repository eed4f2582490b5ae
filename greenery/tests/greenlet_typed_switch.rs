//! The typed switch, `Greenlet::switch_as::<T>`, and `Value::cast::<T>`:
//! Python programs that pass values between greenlets, each with the
//! transcript greenlet 3 prints for it, and what greenery does instead.
//!
//! Python's `switch` hands over any object, and a greenlet that gets an
//! object of the wrong type fails where it uses it (`TypeError`), in the
//! greenlet that received it. `switch_as::<T>` makes the same check at the
//! switch: it returns `Err(SwitchError::WrongType)`, which names the type
//! expected and the type that arrived and holds the value. Raised with `?`,
//! the error becomes the body's return value, which goes to the parent (the
//! way a Python exception goes to the parent); raised with `unwrap`, it is a
//! panic, which continues in the parent.

use std::panic::{self, AssertUnwindSafe};

use greenery::greenlet::{self, Greenlet, SwitchError, Thrown, Value, WrongType};

/// The message of a panic payload.
fn message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(message) => *message,
        Err(payload) => payload.downcast::<&str>().map(|message| message.to_string()).unwrap_or_default(),
    }
}

// Python:
//     main = getcurrent()
//     def pong(ball):
//         while True:
//             ball = main.switch(ball + 1)
//     g = greenlet(pong)
//     g.switch(1)    # 2
//     g.switch(41)   # 42
#[test]
fn ping_pong_with_typed_switches() -> Result<(), SwitchError> {
    let main = greenlet::getcurrent();
    let pong = Greenlet::new(move |ball: Value| -> Result<(), SwitchError> {
        let mut ball: u32 = ball.cast()?;
        loop {
            ball = main.switch_as(ball + 1)?;
        }
    });
    assert_eq!(pong.switch_as::<u32>(1u32)?, 2);
    assert_eq!(pong.switch_as::<u32>(41u32)?, 42);
    Ok(())
}

// Python:
//     def adder(n):
//         while True:
//             n += main.switch(n)
//     g = greenlet(adder)
//     g.switch(1)       # 1
//     g.switch(2)       # 3
//     g.switch("two")   # TypeError: unsupported operand type(s) for +=: 'int' and 'str'
//                       # (raised in g, which dies; the exception goes on to main)
//     g.dead            # True
//
// With `?`, the body returns the error, and its parent receives it.
#[test]
fn a_value_of_the_wrong_type_ends_the_receiver_and_its_error_goes_to_the_parent() {
    let main = greenlet::getcurrent();
    let adder = Greenlet::new(move |first: Value| -> Result<(), SwitchError> {
        let mut n: u32 = first.cast()?;
        loop {
            n += main.switch_as::<u32>(n)?;
        }
    });
    assert_eq!(adder.switch_as::<u32>(1u32).unwrap(), 1);
    assert_eq!(adder.switch_as::<u32>(2u32).unwrap(), 3);
    // The adder's return value, not a u32, comes back: main's typed switch
    // says so, naming both types.
    let returned = adder.switch_as::<u32>("two").unwrap_err();
    let SwitchError::WrongType(wrong) = returned else { panic!("not a type error") };
    assert_eq!(wrong.expected(), "u32");
    assert!(wrong.found().starts_with("core::result::Result<"), "{}", wrong.found());
    assert!(adder.is_dead());
    // What the adder returned: its own switch's error, naming both types.
    let ended = wrong.into_value().downcast::<Result<(), SwitchError>>().unwrap();
    let Err(SwitchError::WrongType(wrong)) = ended else { panic!("not a type error") };
    assert_eq!((wrong.expected(), wrong.found()), ("u32", "&str"));
    assert_eq!(
        wrong.to_string(),
        "expected a value of type `u32`, found one of type `&str`",
        "the error of `Value::cast`"
    );
    assert_eq!(wrong.into_value().downcast::<&str>().ok(), Some("two"), "the value is handed back");
}

// The same program with `unwrap` in the adder: the panic continues in the
// parent, as the TypeError does in Python, and its message names both types.
#[test]
fn a_wrong_type_unwrapped_panics_in_the_receiver_and_continues_in_the_parent() {
    let main = greenlet::getcurrent();
    let adder = Greenlet::new(move |first: Value| {
        let mut n: u32 = first.cast().unwrap();
        loop {
            n += main.switch_as::<u32>(n).unwrap();
        }
    });
    assert_eq!(adder.switch_as::<u32>(1u32).unwrap(), 1);
    let payload = panic::catch_unwind(AssertUnwindSafe(|| adder.switch_as::<u32>("two"))).unwrap_err();
    assert_eq!(
        message(payload),
        r#"called `Result::unwrap()` on an `Err` value: WrongType(WrongType { expected: "u32", found: "&str" })"#
    );
    assert!(adder.is_dead());
}

// The error's text, through `Display` (for `?` in `main` and logs).
#[test]
fn the_switch_error_names_the_expected_type_and_the_type_that_arrived() {
    let main = greenlet::getcurrent();
    let replier = Greenlet::new(move |_| main.switch(String::from("a string")).map(|_| ()));
    let err = replier.switch_as::<u64>(()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the switch expected a value of type `u64`, but the greenlet was resumed with one of type \
         `alloc::string::String`"
    );
    assert_eq!(
        format!("{err:?}"),
        r#"WrongType(WrongType { expected: "u64", found: "alloc::string::String" })"#
    );
    // The value is not lost.
    assert_eq!(err.into_value().downcast::<String>().unwrap(), "a string");
}

// Python:
//     def waiter(_):
//         try:
//             main.switch("waiting")
//         except ValueError as e:
//             return "caught %s" % e
//     g = greenlet(waiter)
//     g.switch(None)               # 'waiting'
//     g.throw(ValueError("stop"))  # 'caught stop'
#[test]
fn a_throw_arrives_as_switch_error_thrown() {
    let main = greenlet::getcurrent();
    let waiter = Greenlet::new(move |_| match main.switch_as::<u32>("waiting") {
        Ok(n) => format!("got {n}"),
        Err(SwitchError::Thrown(error)) => format!("caught {}", error.cast::<&str>().unwrap()),
        Err(SwitchError::WrongType(wrong)) => format!("wrong type: {wrong}"),
    });
    assert_eq!(waiter.switch_as::<&str>(()).unwrap(), "waiting");
    assert_eq!(waiter.throw("stop").unwrap().cast::<String>().unwrap(), "caught stop");
    assert!(waiter.is_dead());
}

// A thrown value read as an error: its text names its type.
#[test]
fn a_thrown_value_names_its_type() {
    let main = greenlet::getcurrent();
    let waiter = Greenlet::new(move |_| main.switch_as::<u32>(()).map_err(|err| err.to_string()));
    waiter.switch(()).unwrap();
    let ended = waiter.throw(7i64).unwrap().cast::<Result<u32, String>>().unwrap();
    assert_eq!(ended, Err("a value of type `i64` was thrown into this greenlet".to_string()));
    assert_eq!(
        Thrown(Value::new("stop")).to_string(),
        "a value of type `&str` was thrown into this greenlet"
    );
}

// `?` converts what each of the three calls can fail with.
#[test]
fn question_mark_takes_thrown_wrong_type_and_switch_errors() {
    fn exchange(partner: &Greenlet) -> Result<(u32, String, bool), SwitchError> {
        let number: u32 = partner.switch(())?.cast()?; // Thrown, then WrongType
        let text: String = partner.switch_as(())?; // SwitchError
        let flag: bool = partner.switch(())?.cast()?;
        Ok((number, text, flag))
    }
    let main = greenlet::getcurrent();
    let partner = Greenlet::new(move |_| {
        main.switch(7u32).unwrap();
        main.switch(String::from("seven")).unwrap();
        main.switch("not a bool").unwrap();
    });
    let Err(SwitchError::WrongType(wrong)) = exchange(&partner) else { panic!("not a type error") };
    assert_eq!((wrong.expected(), wrong.found()), ("bool", "&str"));

    let main = greenlet::getcurrent();
    let partner = Greenlet::new(move |_| {
        main.switch(7u32).unwrap();
        main.switch(String::from("seven")).unwrap();
        main.switch(true).unwrap();
    });
    assert_eq!(exchange(&partner).unwrap(), (7, "seven".to_string(), true));
}

// Python:
//     def f(_):
//         main.switch()
//     g = greenlet(f)
//     g.switch()   # ()
//
// A bare switch carries `()`.
#[test]
fn a_bare_switch_is_a_unit() {
    let main = greenlet::getcurrent();
    let g = Greenlet::new(move |_| main.switch(()).map(drop));
    g.switch_as::<()>(()).unwrap();
    assert!(g.is_active());
    let err = g.switch_as::<u8>(()).unwrap_err(); // g returns `Ok(())`
    assert!(matches!(&err, SwitchError::WrongType(w) if w.found().starts_with("core::result::Result<()")));
}

// Python:
//     g = greenlet(lambda _: None)
//     g.switch(None)
//     g.switch(5)     # 5: a dead greenlet's switch goes to its parent, here the caller
#[test]
fn a_typed_switch_to_a_dead_greenlet_comes_back_from_its_parent() {
    let g = Greenlet::new(|_| ());
    g.switch_as::<()>(()).unwrap();
    assert!(g.is_dead());
    assert_eq!(g.switch_as::<u32>(5u32).unwrap(), 5);
    let err = g.switch_as::<u32>(-5i32).unwrap_err();
    assert!(matches!(&err, SwitchError::WrongType(w) if (w.expected(), w.found()) == ("u32", "i32")));
}

// A large value travels boxed; the check and the names are the same.
#[test]
fn boxed_values_are_checked_and_named_too() {
    let main = greenlet::getcurrent();
    let g = Greenlet::new(move |_| {
        let _ = main.switch(vec![1u64, 2, 3]);
    });
    let err: WrongType = match g.switch_as::<[u64; 3]>(()) {
        Err(SwitchError::WrongType(wrong)) => wrong,
        other => panic!("not a type error: {other:?}"),
    };
    assert_eq!((err.expected(), err.found()), ("[u64; 3]", "alloc::vec::Vec<u64>"));
    assert_eq!(err.into_value().cast::<Vec<u64>>().unwrap(), [1, 2, 3]);
}
