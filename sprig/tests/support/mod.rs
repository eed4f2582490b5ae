//! Running a test binary again as a child process, for scenarios that crash
//! or exhaust their whole process.

use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// This test binary, to run again with a scenario set in its environment.
///
/// Under an emulator (the aarch64 run of `.ci/run` uses qemu-user, which
/// cannot execute a foreign binary by itself) `SPRIG_TEST_RUNNER` names the
/// command to run it with.
pub fn this_binary() -> Command {
    command(&std::env::current_exe().unwrap())
}

/// A command running the binary `exe`, under `SPRIG_TEST_RUNNER` if it is
/// set (see [`this_binary`]).
pub fn command(exe: &Path) -> Command {
    match std::env::var("SPRIG_TEST_RUNNER") {
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
pub fn run(mut command: Command, timeout: Duration) -> Outcome {
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
            let stderr = err.join().unwrap();
            panic!("child {command:?} still running after {timeout:?}; killed ({status}); stderr:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Outcome { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}
