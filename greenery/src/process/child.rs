//! A running child process.

use std::io;
use std::os::fd::OwnedFd;
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

use super::pipes::{ChildStderr, ChildStdin, ChildStdout, ReadToEndBy};
use crate::net::socket::{Socket, deadline};

/// A child process whose waits park the green thread instead of the OS
/// thread (std's [`Child`](std::process::Child), cooperative; gevent's
/// `subprocess.Popen`). Made by [`Command::spawn`](super::Command::spawn).
///
/// Like std's, dropping a `Child` neither kills nor waits for the process;
/// call [`kill`](Self::kill) and [`wait`](Self::wait) to be sure it is gone
/// and reaped.
#[derive(Debug)]
pub struct Child {
    /// The child's standard input, if it was set to
    /// [`Stdio::piped`](std::process::Stdio::piped).
    pub stdin: Option<ChildStdin>,
    /// The child's standard output, if piped.
    pub stdout: Option<ChildStdout>,
    /// The child's standard error, if piped.
    pub stderr: Option<ChildStderr>,
    child: std::process::Child,
    exit: ExitWatch,
}

/// How the hub learns that the child has exited.
#[derive(Debug)]
enum ExitWatch {
    /// A pidfd registered with the poller: it turns readable at the exit.
    Pidfd(Socket<OwnedFd>),
    /// No pidfd (a kernel older than 5.3, or a sandbox that forbids the
    /// call): ask `waitpid` now and then, backing off up to
    /// [`POLL_BACKOFF_MAX`].
    Polling,
}

/// The longest pause between two `waitpid` calls without a pidfd.
const POLL_BACKOFF_MAX: Duration = Duration::from_millis(50);

impl Child {
    /// Takes over a child std just spawned: its pipes become cooperative.
    pub(crate) fn new(child: std::process::Child) -> io::Result<Child> {
        let exit = match crate::sys::pidfd_open(child.id()).and_then(Socket::new) {
            Ok(pidfd) => ExitWatch::Pidfd(pidfd),
            Err(_) => ExitWatch::Polling,
        };
        Child::with_exit_watch(child, exit)
    }

    fn with_exit_watch(mut child: std::process::Child, exit: ExitWatch) -> io::Result<Child> {
        let stdin = child.stdin.take().map(ChildStdin::new).transpose();
        let stdout = child.stdout.take().map(ChildStdout::new).transpose();
        let stderr = child.stderr.take().map(ChildStderr::new).transpose();
        match (stdin, stdout, stderr) {
            (Ok(stdin), Ok(stdout), Ok(stderr)) => Ok(Child { stdin, stdout, stderr, child, exit }),
            (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
                // Do not leave a process behind that nobody can wait for.
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends the child `SIGKILL` (std's [`kill`](std::process::Child::kill)).
    /// It still has to be waited for.
    ///
    /// # Errors
    ///
    /// What `kill(2)` returns; killing a child that has exited but not been
    /// waited for succeeds.
    pub fn kill(&mut self) -> io::Result<()> {
        self.child.kill()
    }

    /// The child's exit status if it has exited, without waiting.
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` returns.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    /// Waits for the child to exit, parking the green thread, and returns its
    /// status. Closes the child's standard input first, as std does, so that
    /// a child reading it to the end can finish.
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` returns.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match self.wait_by(None)? {
            Some(status) => Ok(status),
            None => unreachable!("a wait without a deadline cannot time out"),
        }
    }

    /// As [`wait`](Self::wait), but gives up after `timeout`: `Ok(None)`
    /// means the child is still running (it is left running).
    ///
    /// # Errors
    ///
    /// What `waitpid(2)` returns.
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        drop(self.stdin.take());
        self.wait_by(deadline(Some(timeout)))
    }

    /// Closes the child's standard input, reads its standard output and
    /// error (whichever are piped) to the end, both at once, and waits for it
    /// to exit (std's [`wait_with_output`](std::process::Child::wait_with_output)).
    ///
    /// # Errors
    ///
    /// What reading the pipes or `waitpid(2)` returns.
    pub fn wait_with_output(self) -> io::Result<Output> {
        self.finish(None)
    }

    /// As [`wait_with_output`](Self::wait_with_output), within `timeout`: a
    /// child that is not done by then is killed (and reaped), and the error
    /// is [`TimedOut`](io::ErrorKind::TimedOut) (Python's
    /// `subprocess.run(timeout=...)`).
    ///
    /// # Errors
    ///
    /// `TimedOut`, or what reading the pipes or `waitpid(2)` returns.
    pub fn wait_with_output_timeout(self, timeout: Duration) -> io::Result<Output> {
        self.finish(deadline(Some(timeout))).map_err(|err| timed_out_after(err, timeout))
    }

    /// Collects the output and the exit status by `deadline`, killing the
    /// child if it passes.
    pub(crate) fn finish(mut self, deadline: Option<Instant>) -> io::Result<Output> {
        drop(self.stdin.take());
        let outcome = self.collect(deadline);
        if outcome.is_err() {
            let _ = self.child.kill();
            // After SIGKILL the exit is prompt: wait for it without a deadline
            // so that no zombie is left.
            let _ = self.wait_by(None);
        }
        outcome
    }

    fn collect(&mut self, deadline: Option<Instant>) -> io::Result<Output> {
        // Standard error is drained by a green thread of its own, so that a
        // child blocked writing one pipe cannot deadlock with us reading the
        // other.
        let stderr = self
            .stderr
            .take()
            .map(|stderr| KillOnDrop(Some(crate::spawn(move || stderr.read_to_end_by(deadline)))));
        let stdout = match self.stdout.take() {
            Some(stdout) => stdout.read_to_end_by(deadline)?,
            None => Vec::new(),
        };
        let stderr = match stderr {
            Some(reader) => reader.get()?,
            None => Vec::new(),
        };
        match self.wait_by(deadline)? {
            Some(status) => Ok(Output { status, stdout, stderr }),
            None => Err(io::Error::from(io::ErrorKind::TimedOut)),
        }
    }

    /// Waits for the exit until `deadline`: `None` if it passes first.
    fn wait_by(&mut self, deadline: Option<Instant>) -> io::Result<Option<ExitStatus>> {
        let child = &mut self.child;
        match &self.exit {
            ExitWatch::Pidfd(pidfd) => {
                let exited = pidfd.read_by(deadline, |_| {
                    child.try_wait()?.ok_or_else(|| io::Error::from(io::ErrorKind::WouldBlock))
                });
                match exited {
                    Ok(status) => Ok(Some(status)),
                    Err(err) if err.kind() == io::ErrorKind::TimedOut => Ok(None),
                    Err(err) => Err(err),
                }
            }
            ExitWatch::Polling => {
                let mut pause = Duration::from_millis(1);
                loop {
                    if let Some(status) = child.try_wait()? {
                        return Ok(Some(status));
                    }
                    let now = Instant::now();
                    let pause_until = match deadline {
                        Some(deadline) if deadline <= now => return Ok(None),
                        Some(deadline) => deadline.min(now + pause),
                        None => now + pause,
                    };
                    crate::sleep(pause_until.saturating_duration_since(now));
                    pause = (pause * 2).min(POLL_BACKOFF_MAX);
                }
            }
        }
    }
}

/// The standard error reader of [`Child::collect`]: if the collecting green
/// thread is unwound (a kill, a [`Timeout`](crate::Timeout)), the reader
/// goes too rather than lingering until the pipe closes.
struct KillOnDrop(Option<crate::JoinHandle<io::Result<Vec<u8>>>>);

impl KillOnDrop {
    fn get(mut self) -> io::Result<Vec<u8>> {
        let reader = self.0.take().expect("the reader is taken only here");
        match reader.get() {
            Ok(bytes) => bytes,
            Err(err) => Err(io::Error::other(format!("reading the child's standard error failed: {err}"))),
        }
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(reader) = self.0.take() {
            reader.kill_async();
        }
    }
}

/// A `TimedOut` error that says how long was allowed; other errors unchanged.
pub(crate) fn timed_out_after(err: io::Error, timeout: Duration) -> io::Error {
    if err.kind() == io::ErrorKind::TimedOut {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the child process did not finish within {timeout:?}; it was killed"),
        )
    } else {
        err
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a pidfd (old kernels), waits poll `waitpid` with a back-off.
    #[test]
    fn waits_without_a_pidfd_poll_and_still_time_out_and_finish() {
        let spawned = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let mut child = Child::with_exit_watch(spawned, ExitWatch::Polling).unwrap();
        assert_eq!(child.wait_timeout(Duration::from_millis(30)).unwrap(), None);
        child.kill().unwrap();
        assert!(!child.wait().unwrap().success());

        let spawned = std::process::Command::new("sh")
            .args(["-c", "echo polled"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let child = Child::with_exit_watch(spawned, ExitWatch::Polling).unwrap();
        let output = child.wait_with_output_timeout(Duration::from_secs(30)).unwrap();
        assert_eq!(output.stdout, b"polled\n");
        assert!(output.status.success());
    }
}
