//! The two examples of the document greenery grew from (a post on Python
//! coroutines), in Rust. Shared by the `echo`, `pipeline` and `tour`
//! examples and by `tests/seed.rs`, which checks what they print; each of
//! them uses only part of it.

#![allow(dead_code)]

use std::cell::RefCell;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use greenery::{Builder, CoroutineResult, Generator};

/// Where the examples print: lines go to stdout (when `echo` is on) and are
/// kept for inspection.
#[derive(Clone, Default)]
pub struct Printer {
    lines: Rc<RefCell<Vec<String>>>,
    echo: bool,
}

impl Printer {
    /// A printer that writes to stdout as well as keeping the lines.
    pub fn stdout() -> Self {
        Printer { lines: Rc::default(), echo: true }
    }

    /// A printer that only keeps the lines.
    pub fn quiet() -> Self {
        Printer::default()
    }

    pub fn print(&self, line: impl Into<String>) {
        let line = line.into();
        if self.echo {
            println!("{line}");
        }
        self.lines.borrow_mut().push(line);
    }

    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }
}

/// Python's `TypeError('spam')`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeError(pub String);

impl fmt::Display for TypeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TypeError('{}')", self.0)
    }
}

/// What `echo` passes around: Python's ints and caught exceptions.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Error(TypeError),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Error(e) => write!(f, "{e}"),
        }
    }
}

/// Python's `repr` of an optional value, as the REPL prints it.
fn repr(value: &Option<Value>) -> String {
    match value {
        Some(value) => value.to_string(),
        None => "None".into(),
    }
}

/// ```python
/// def echo(value=None):
///     print "execution starts when 'next()' is called "
///     try:
///         while True:
///             try:
///                 value = (yield value)
///             except Exception, e:
///                 value = e
///     finally:
///         print "Don't forget to clean up when 'closed()' is called"
/// ```
pub fn echo(
    value: Option<Value>,
    printer: Printer,
) -> Generator<Option<Value>, Option<Value>, (), TypeError> {
    Builder::new()
        .name("echo")
        .generator(move |co, _first| {
            printer.print("execution starts when 'next()' is called");
            // Python's `finally`: runs when the body returns or unwinds.
            let _finally = Finally(|| printer.print("Don't forget to clean up when 'closed()' is called"));
            let mut value = value;
            loop {
                value = match co.try_yield(value) {
                    Ok(sent) => sent,
                    Err(error) => Some(Value::Error(error)),
                };
            }
        })
        .expect("a coroutine stack")
}

/// Runs a closure when dropped: Python's `finally`.
struct Finally<F: FnMut()>(F);

impl<F: FnMut()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// The seed's REPL session with `echo`, each Python line followed by the
/// Rust call that does the same.
pub fn echo_session(printer: &Printer) {
    let prompt = |python: &str, rust: &str| printer.print(format!(">>> {python:<28}  # {rust}"));
    // Python prints what an expression evaluates to, except None; `print x`
    // prints None too.
    let show = |step: Result<CoroutineResult<Option<Value>, ()>, _>, print_none: bool| match step {
        Ok(CoroutineResult::Yield(value)) => {
            if value.is_some() || print_none {
                printer.print(repr(&value));
            }
        }
        Ok(CoroutineResult::Return(())) => printer.print("StopIteration"),
        Err(err) => printer.print(format!("StopIteration   ({err})")),
    };

    prompt("a = echo(2)", "let mut a = echo(Some(Value::Int(2)))");
    let mut a = echo(Some(Value::Int(2)), printer.clone());
    prompt("a.next()", "a.resume(None)");
    show(a.resume(None), false);
    prompt("a.next()", "a.resume(None)");
    show(a.resume(None), false);
    prompt("print a.next()", "a.resume(None)");
    show(a.resume(None), true);
    prompt("print a.next()", "a.resume(None)");
    show(a.resume(None), true);
    prompt("print a.send(3)", "a.resume(Some(Value::Int(3)))");
    show(a.resume(Some(Value::Int(3))), true);
    prompt("print a.send(4)", "a.resume(Some(Value::Int(4)))");
    show(a.resume(Some(Value::Int(4))), true);
    prompt("a.throw(TypeError, 'spam')", "a.throw(TypeError(\"spam\".into()))");
    match a.throw(TypeError("spam".into())) {
        Ok(step) => show(Ok(step), false),
        Err(error) => printer.print(format!("raised {error}")),
    }
    prompt("print a.next()", "a.resume(None)");
    show(a.resume(None), true);
    prompt("a.close()", "a.close()");
    if let Err(err) = a.close() {
        printer.print(format!("RuntimeError: {err}"));
    }
    prompt("a.next()", "a.resume(None)");
    show(a.resume(None), false);
}

/// ```python
/// def consumer():
///     while True:
///         line = yield
///         print line.upper()
/// ```
///
/// Python primes the consumer with `next()` before sending it lines; a greenery
/// generator receives its first input as an argument, so no priming is needed.
pub fn consumer(printer: Printer) -> Generator<String, (), ()> {
    Builder::new()
        .name("consumer")
        .generator(move |co, mut line: String| {
            loop {
                printer.print(line.to_uppercase());
                line = co.yield_(());
            }
        })
        .expect("a coroutine stack")
}

/// ```python
/// def producter(filename):
///     with open(filename, 'r') as f:
///         for i, line in enumerate(f):
///             yield line
///             print 'processed line %d' % i
/// ```
///
/// An I/O error ends the generator: it is its return value.
pub fn producer(path: PathBuf, printer: Printer) -> Generator<(), String, io::Result<()>> {
    Builder::new()
        .name("producer")
        .generator(move |co, ()| {
            let file = BufReader::new(File::open(&path)?);
            for (i, line) in file.lines().enumerate() {
                co.yield_(line?);
                printer.print(format!("processed line {i}"));
            }
            Ok(())
        })
        .expect("a coroutine stack")
}

/// ```python
/// c = consumer()
/// c.next()
/// for line in producter(filename):
///     c.send(line)
/// ```
pub fn pipeline(path: &Path, printer: &Printer) -> io::Result<()> {
    let mut lines = producer(path.to_owned(), printer.clone());
    let mut c = consumer(printer.clone());
    for line in lines.by_ref() {
        c.resume(line).expect("the consumer never finishes");
    }
    lines.return_value().unwrap_or(Ok(()))
}

/// The same pipeline with green threads instead of generators, the way the
/// seed's last paragraph suggests (coroutines plus a scheduler): a producer
/// green thread reads the file and hands each line over a rendezvous
/// [`Channel`](greenery::sync::Channel) to a consumer green thread, which
/// prints it upper-cased. Neither calls the other; each is plain blocking
/// code, and the hub switches between them whenever one waits for the other.
pub fn green_pipeline(path: &Path, printer: &Printer) -> io::Result<()> {
    use greenery::sync::Channel;

    let lines = Rc::new(Channel::<String>::new());
    let consumer = {
        let (lines, printer) = (lines.clone(), printer.clone());
        Builder::new().name("consumer").spawn(move || {
            for line in lines.iter() {
                printer.print(line.to_uppercase());
            }
        })
    };
    let producer = {
        let (path, printer) = (path.to_owned(), printer.clone());
        Builder::new().name("producer").spawn(move || {
            // Whatever happens, the consumer is told that nothing more comes.
            let _done = Finally(|| lines.shutdown());
            let file = BufReader::new(File::open(&path)?);
            for (i, line) in file.lines().enumerate() {
                if lines.put(line?).is_err() {
                    break; // the consumer is gone
                }
                printer.print(format!("processed line {i}"));
            }
            Ok(())
        })
    };
    let outcome = producer.get().unwrap_or_else(|err| Err(io::Error::other(err.to_string())));
    consumer.get().map_err(|err| io::Error::other(err.to_string()))?;
    outcome
}

/// The file the tour's pipeline reads: in greenery's `examples/data`, seen from
/// greenery or from the tour's crate beside it.
pub fn sample_file() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let here = manifest.join("examples/data/property1.py");
    if here.exists() {
        return here;
    }
    manifest.join("../greenery/examples/data/property1.py")
}
