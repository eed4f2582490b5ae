//! Stackful generators: a plain function called from a generator's body, at
//! any depth, yields through the `&Co` it is handed, and every row of the
//! protocol (send, throw, close) reaches it there.

use std::cell::RefCell;
use std::rc::Rc;

use greenery::{Co, CoroutineResult, Generator, GeneratorState};

/// A binary tree: `Leaf(n)` or `Node(left, right)`.
enum Tree {
    Leaf(u32),
    Node(Box<Tree>, Box<Tree>),
}

/// A tree `depth` levels deep whose leaves, left to right, are `first..`.
fn build(depth: u32, first: &mut u32) -> Tree {
    if depth == 0 {
        *first += 1;
        Tree::Leaf(*first - 1)
    } else {
        let left = build(depth - 1, first);
        let right = build(depth - 1, first);
        Tree::Node(Box::new(left), Box::new(right))
    }
}

/// Yields every leaf, left to right, from whatever depth it is at; returns
/// how many leaves there were.
fn walk(tree: &Tree, co: &Co<(), u32>) -> usize {
    match tree {
        Tree::Leaf(n) => {
            co.yield_(*n);
            1
        }
        Tree::Node(left, right) => walk(left, co) + walk(right, co),
    }
}

#[test]
fn a_recursive_plain_function_yields_from_every_level() {
    let tree = build(10, &mut 0);
    let mut leaves = Generator::new(move |co, ()| walk(&tree, co));
    let seen: Vec<u32> = leaves.by_ref().collect();
    assert_eq!(seen, (0..1024).collect::<Vec<_>>());
    assert_eq!(leaves.return_value(), Some(1024));
}

/// Yields `depth` at the bottom of `depth` nested calls and returns what was
/// sent in, plus one per level on the way back up.
fn descend(depth: u32, co: &Co<u32, u32>) -> u32 {
    if depth == 0 { co.yield_(0) } else { descend(depth - 1, co) + 1 }
}

#[test]
fn a_value_sent_in_arrives_at_the_yield_deep_in_the_call_stack() {
    let mut generator = Generator::new(|co, first: u32| {
        let mut total = first;
        for depth in [3, 50, 500] {
            total += descend(depth, co);
        }
        total
    });
    assert_eq!(generator.resume(1), Ok(CoroutineResult::Yield(0)));
    assert_eq!(generator.resume(10), Ok(CoroutineResult::Yield(0))); // 10 + 3 levels
    assert_eq!(generator.resume(20), Ok(CoroutineResult::Yield(0))); // 20 + 50 levels
    // 1 + (10 + 3) + (20 + 50) + (30 + 500)
    assert_eq!(generator.resume(30), Ok(CoroutineResult::Return(614)));
}

/// Yields at the bottom of `depth` calls; a thrown error comes back up
/// through `?` at every level.
fn fallible(depth: u32, co: &Co<(), u32, String>, path: &RefCell<Vec<u32>>) -> Result<u32, String> {
    if depth == 0 {
        co.try_yield(7)?;
        return Ok(0);
    }
    let below = fallible(depth - 1, co, path);
    path.borrow_mut().push(depth);
    Ok(below? + 1)
}

#[test]
fn a_thrown_error_propagates_with_question_marks_through_every_level() {
    let path = Rc::new(RefCell::new(Vec::new()));
    let seen = path.clone();
    let mut generator = Generator::new(move |co, ()| fallible(4, co, &seen));
    assert_eq!(generator.resume(()), Ok(CoroutineResult::Yield(7)));
    let outcome = generator.throw("spam".to_owned());
    assert_eq!(outcome, Ok(CoroutineResult::Return(Err("spam".to_owned()))));
    assert_eq!(*path.borrow(), [1, 2, 3, 4], "every level saw the error on its way up");
    assert_eq!(generator.state(), GeneratorState::Completed);
}

/// Pushes its depth to `log` when dropped.
struct Frame(u32, Rc<RefCell<Vec<u32>>>);

impl Drop for Frame {
    fn drop(&mut self) {
        self.1.borrow_mut().push(self.0);
    }
}

fn nested(depth: u32, co: &Co<(), u32>, log: &Rc<RefCell<Vec<u32>>>) {
    let _frame = Frame(depth, log.clone());
    if depth == 0 {
        loop {
            co.yield_(depth);
        }
    }
    nested(depth - 1, co, log);
}

#[test]
fn close_unwinds_every_nested_frame_innermost_first() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let frames = log.clone();
    let mut generator = Generator::new(move |co, ()| nested(5, co, &frames));
    assert_eq!(generator.next(), Some(0));
    assert!(log.borrow().is_empty());
    assert_eq!(generator.close(), Ok(None));
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn dropping_a_generator_suspended_deep_down_runs_every_destructor() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let frames = log.clone();
    let mut generator = Generator::new(move |co, ()| nested(100, co, &frames));
    assert_eq!(generator.next(), Some(0));
    drop(generator);
    assert_eq!(*log.borrow(), (0..=100).collect::<Vec<_>>());
}

#[test]
fn yield_from_delegates_to_a_generator_whose_yields_are_nested_too() {
    let tree = build(4, &mut 100);
    let mut outer = Generator::new(move |co, ()| {
        co.yield_(1);
        let inner = Generator::new(move |co, ()| walk(&tree, co));
        let count = co.yield_from(inner);
        co.yield_(2);
        count
    });
    let seen: Vec<u32> = outer.by_ref().collect();
    let mut expected = vec![1];
    expected.extend(100..116);
    expected.push(2);
    assert_eq!(seen, expected);
    assert_eq!(outer.return_value(), Some(16));
}
