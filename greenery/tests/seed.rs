//! The examples of the document greenery grew from, run as tests: the `echo`
//! session prints the seed's transcript, and the pipeline prints each line
//! upper-cased with the producer's progress in between.

use std::io::Write;

#[path = "../examples/seed/mod.rs"]
mod seed;

use greenery::{CoroutineResult, GeneratorState};
use seed::{Printer, TypeError, Value};

#[test]
fn echo_session_prints_the_seed_transcript() {
    let printer = Printer::quiet();
    seed::echo_session(&printer);
    // What Python prints in the seed's session, minus the prompts.
    let printed: Vec<String> = printer.lines().into_iter().filter(|line| !line.starts_with(">>> ")).collect();
    assert_eq!(
        printed,
        [
            "execution starts when 'next()' is called",
            "2",
            "None",
            "None",
            "3",
            "4",
            "TypeError('spam')",
            "None",
            "Don't forget to clean up when 'closed()' is called",
            "StopIteration   (cannot resume a generator that has completed)",
        ]
    );
}

#[test]
fn echo_step_by_step() {
    let printer = Printer::quiet();
    let mut a = seed::echo(Some(Value::Int(2)), printer.clone());
    assert_eq!(a.state(), GeneratorState::Created);
    assert!(printer.lines().is_empty(), "nothing runs before the first resume");
    assert_eq!(a.resume(None), Ok(CoroutineResult::Yield(Some(Value::Int(2)))));
    assert_eq!(printer.lines(), ["execution starts when 'next()' is called"]);
    assert_eq!(a.resume(None), Ok(CoroutineResult::Yield(None)));
    assert_eq!(a.resume(Some(Value::Int(3))), Ok(CoroutineResult::Yield(Some(Value::Int(3)))));
    let spam = TypeError("spam".into());
    assert_eq!(a.throw(spam.clone()), Ok(CoroutineResult::Yield(Some(Value::Error(spam)))));
    assert_eq!(a.state(), GeneratorState::Suspended);
    assert_eq!(a.close(), Ok(None));
    assert_eq!(printer.lines().last().unwrap(), "Don't forget to clean up when 'closed()' is called");
    assert_eq!(a.state(), GeneratorState::Completed);
    assert_eq!(a.resume(None).unwrap_err().into_inner(), None);
    // Closing again runs nothing.
    assert_eq!(a.close(), Ok(None));
    assert_eq!(printer.lines().len(), 2);
}

#[test]
fn dropping_echo_runs_its_clean_up() {
    let printer = Printer::quiet();
    let mut a = seed::echo(None, printer.clone());
    a.resume(None).unwrap();
    drop(a);
    assert_eq!(printer.lines().last().unwrap(), "Don't forget to clean up when 'closed()' is called");
}

#[test]
fn pipeline_upper_cases_every_line_of_a_file() {
    let path = std::env::temp_dir().join(format!("greenery-seed-pipeline-{}.txt", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "first line\nSecond Line\n\nlast").unwrap();
    drop(file);
    let printer = Printer::quiet();
    let outcome = seed::pipeline(&path, &printer);
    std::fs::remove_file(&path).unwrap();
    outcome.unwrap();
    assert_eq!(
        printer.lines(),
        [
            "FIRST LINE",
            "processed line 0",
            "SECOND LINE",
            "processed line 1",
            "",
            "processed line 2",
            "LAST",
            "processed line 3"
        ]
    );
}

#[test]
fn pipeline_reports_a_missing_file() {
    let printer = Printer::quiet();
    let err = seed::pipeline(std::path::Path::new("/nonexistent/greenery-seed"), &printer).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(printer.lines().is_empty());
}

#[test]
fn pipeline_reads_the_sample_file() {
    let printer = Printer::quiet();
    seed::pipeline(&seed::sample_file(), &printer).unwrap();
    let lines = printer.lines();
    assert_eq!(lines[0], "CLASS TEMPERATURE(OBJECT):");
    assert_eq!(lines[1], "processed line 0");
    assert_eq!(lines.len(), 14);
}

#[test]
fn green_pipeline_hands_every_line_to_the_consumer_in_order() {
    let path = std::env::temp_dir().join(format!("greenery-seed-green-pipeline-{}.txt", std::process::id()));
    let mut file = std::fs::File::create(&path).unwrap();
    writeln!(file, "first line\nSecond Line\n\nlast").unwrap();
    drop(file);
    let printer = Printer::quiet();
    let outcome = seed::green_pipeline(&path, &printer);
    std::fs::remove_file(&path).unwrap();
    outcome.unwrap();
    let lines = printer.lines();
    let upper: Vec<_> = lines.iter().filter(|line| !line.starts_with("processed")).cloned().collect();
    let processed: Vec<_> = lines.iter().filter(|line| line.starts_with("processed")).cloned().collect();
    assert_eq!(upper, ["FIRST LINE", "SECOND LINE", "", "LAST"]);
    assert_eq!(processed, ["processed line 0", "processed line 1", "processed line 2", "processed line 3"]);
}

#[test]
fn green_pipeline_reports_a_missing_file_and_the_consumer_ends() {
    let printer = Printer::quiet();
    let err = seed::green_pipeline(std::path::Path::new("/nonexistent/greenery-seed"), &printer).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    assert!(printer.lines().is_empty());
}
