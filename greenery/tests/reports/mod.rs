//! Capturing the hub's error reports in a test, to check them and to keep
//! them out of a passing run's output.

// Each test binary uses part of this.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;

use greenery::hub::{self, ErrorHandler, ErrorReport};

/// The reports made on this thread while it lives (tests run on threads of
/// their own, and error handlers are per thread); the previous handler is
/// put back when it is dropped.
pub struct Reports {
    lines: Rc<RefCell<Vec<String>>>,
    previous: Option<Option<ErrorHandler>>,
}

/// Starts capturing this thread's reports.
pub fn capture() -> Reports {
    let lines = Rc::new(RefCell::new(Vec::new()));
    let sink = lines.clone();
    let previous =
        hub::set_error_handler(move |report: &ErrorReport<'_>| sink.borrow_mut().push(report.to_string()));
    Reports { lines, previous: Some(previous) }
}

impl Reports {
    /// The report lines so far, as the default handler would print them.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// Asserts that exactly one report was made and that it contains each
    /// of `parts`.
    #[track_caller]
    pub fn assert_one(&self, parts: &[&str]) {
        let lines = self.lines();
        assert_eq!(lines.len(), 1, "expected one report, got {lines:?}");
        for part in parts {
            assert!(lines[0].contains(part), "the report {:?} lacks {part:?}", lines[0]);
        }
    }
}

impl Drop for Reports {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            hub::reset_error_handler(previous);
        }
    }
}
