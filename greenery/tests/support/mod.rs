//! Running a test binary again as a child process, for scenarios that crash
//! or exhaust their whole process.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// This test binary, to run again with a scenario set in its environment.
///
/// Under an emulator (the aarch64 run of `.ci/run` uses qemu-user, which
/// cannot execute a foreign binary by itself) `GREENERY_TEST_RUNNER` names the
/// command to run it with.
pub fn this_binary() -> Command {
    command(&std::env::current_exe().unwrap())
}

/// A command running the binary `exe`, under `GREENERY_TEST_RUNNER` if it is
/// set (see [`this_binary`]).
pub fn command(exe: &Path) -> Command {
    match std::env::var("GREENERY_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut command = Command::new(words.next().unwrap());
            command.args(words).arg(exe);
            command
        }
        _ => Command::new(exe),
    }
}

/// What a child printed and how it ended.
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to completion, killing it if it runs longer than
/// `timeout` (a guard against hangs, not a measurement).
///
/// Under an emulator (`GREENERY_TEST_RUNNER`), a child that printed nothing at
/// all before the timeout is run once more: qemu-user can deadlock in a
/// child forked from a multi-threaded emulated process before the child
/// runs any of its own code (seen once in CI: no output, no progress). A
/// hang of greenery's own would happen again and fail the test.
pub fn run(mut command: Command, timeout: Duration) -> Outcome {
    let emulated = std::env::var("GREENERY_TEST_RUNNER").is_ok_and(|runner| !runner.trim().is_empty());
    match run_once(&mut command, timeout) {
        Ok(outcome) => outcome,
        Err(hung) if emulated && hung.stdout.is_empty() && hung.stderr.is_empty() => {
            eprintln!(
                "note: {command:?} printed nothing in {timeout:?} under the emulator; running it again"
            );
            run_once(&mut command, timeout).unwrap_or_else(|hung| hung.fail(&command, timeout))
        }
        Err(hung) => hung.fail(&command, timeout),
    }
}

/// A child killed at its timeout: what it printed.
struct Hung {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Hung {
    fn fail(self, command: &Command, timeout: Duration) -> ! {
        panic!(
            "child {command:?} still running after {timeout:?}; killed ({}); stdout:\n{}\nstderr:\n{}",
            self.status, self.stdout, self.stderr
        );
    }
}

fn run_once(command: &mut Command, timeout: Duration) -> Result<Outcome, Hung> {
    let mut child =
        command.env("RUST_BACKTRACE", "0").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            return Err(Hung { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() });
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok(Outcome { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() })
}
