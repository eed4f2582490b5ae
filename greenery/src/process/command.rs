//! A builder for child processes.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::path::Path;
use std::process::{ExitStatus, Output, Stdio};
use std::time::Duration;

use super::child::{Child, timed_out_after};
use crate::net::socket::deadline;

/// A process builder whose [`output`](Self::output) and
/// [`status`](Self::status) park the green thread instead of the OS thread
/// (std's [`Command`](std::process::Command), cooperative; gevent's
/// `subprocess.run`), with an optional [`timeout`](Self::timeout).
///
/// ```
/// use greenery::process::Command;
///
/// // Two children run at once; each wait parks only its green thread.
/// let a = greenery::spawn(|| Command::new("echo").arg("one").output());
/// let b = greenery::spawn(|| Command::new("echo").arg("two").output());
/// assert_eq!(a.get().unwrap().unwrap().stdout, b"one\n");
/// assert_eq!(b.get().unwrap().unwrap().stdout, b"two\n");
/// ```
///
/// The builder methods are std's; anything else std's builder offers
/// (`uid`, `pre_exec`, `process_group`, …) is reachable through
/// [`as_std_mut`](Self::as_std_mut). Starting the child (`fork`/`exec`) is a
/// short blocking call, as in std; everything after it is cooperative.
pub struct Command {
    command: std::process::Command,
    /// Whether the caller chose each stream: `output` captures only the ones
    /// they did not.
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
    timeout: Option<Duration>,
}

impl Command {
    /// A command that runs `program`, found on `PATH` if it has no slash
    /// (std's [`Command::new`](std::process::Command::new)).
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        self.command.env(key, value);
        self
    }

    /// Sets environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.command.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.command.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what `env` adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.command.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.command.current_dir(dir);
        self
    }

    /// Sets the child's standard input. Use [`Stdio::piped`] to write to it
    /// through [`Child::stdin`].
    pub fn stdin(&mut self, stdin: impl Into<Stdio>) -> &mut Command {
        self.command.stdin(stdin);
        self.stdin_set = true;
        self
    }

    /// Sets the child's standard output. Use [`Stdio::piped`] to read it
    /// through [`Child::stdout`].
    pub fn stdout(&mut self, stdout: impl Into<Stdio>) -> &mut Command {
        self.command.stdout(stdout);
        self.stdout_set = true;
        self
    }

    /// Sets the child's standard error. Use [`Stdio::piped`] to read it
    /// through [`Child::stderr`].
    pub fn stderr(&mut self, stderr: impl Into<Stdio>) -> &mut Command {
        self.command.stderr(stderr);
        self.stderr_set = true;
        self
    }

    /// Limits how long [`output`](Self::output) and [`status`](Self::status)
    /// wait: a child still running then is killed and reaped, and they fail
    /// with [`TimedOut`](io::ErrorKind::TimedOut). `None` (the default)
    /// waits for ever. [`spawn`](Self::spawn) ignores it; see
    /// [`Child::wait_timeout`].
    pub fn timeout(&mut self, timeout: Option<Duration>) -> &mut Command {
        self.timeout = timeout;
        self
    }

    /// Starts the child (std's [`spawn`](std::process::Command::spawn)):
    /// streams not set are inherited.
    ///
    /// # Errors
    ///
    /// What std's `spawn` returns (say, `NotFound` for a missing program),
    /// or what registering the pipes with the hub returns.
    pub fn spawn(&mut self) -> io::Result<Child> {
        Child::new(self.command.spawn()?)
    }

    /// Runs the child to completion and collects its output (std's
    /// [`output`](std::process::Command::output)): unless set, standard
    /// output and error are captured and standard input is empty. Both
    /// outputs are read at once, so a child that fills one pipe while the
    /// other is read cannot hang.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn); `TimedOut` past the
    /// [`timeout`](Self::timeout) (the child is then killed); what reading
    /// the pipes returns.
    pub fn output(&mut self) -> io::Result<Output> {
        let child = self.spawn_defaulting(Stdio::null, Stdio::piped)?;
        self.finish(child)
    }

    /// Runs the child to completion and returns its exit status (std's
    /// [`status`](std::process::Command::status)): streams not set are
    /// inherited.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn); `TimedOut` past the
    /// [`timeout`](Self::timeout) (the child is then killed).
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        let child = self.spawn()?;
        self.finish(child).map(|output| output.status)
    }

    /// std's builder, to read what is set.
    pub fn as_std(&self) -> &std::process::Command {
        &self.command
    }

    /// std's builder, for what this type does not wrap (say,
    /// `std::os::unix::process::CommandExt`). Streams set through it are
    /// not known to [`output`](Self::output), which captures standard output
    /// and error unless they were set through this type.
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.command
    }

    /// Spawns with `stdin` and `output` for the streams the caller did not
    /// set, then puts std's default (inherit) back for a later `spawn`.
    fn spawn_defaulting(&mut self, stdin: fn() -> Stdio, output: fn() -> Stdio) -> io::Result<Child> {
        let defaults = [!self.stdin_set, !self.stdout_set, !self.stderr_set];
        if defaults[0] {
            self.command.stdin(stdin());
        }
        if defaults[1] {
            self.command.stdout(output());
        }
        if defaults[2] {
            self.command.stderr(output());
        }
        let spawned = self.command.spawn();
        if defaults[0] {
            self.command.stdin(Stdio::inherit());
        }
        if defaults[1] {
            self.command.stdout(Stdio::inherit());
        }
        if defaults[2] {
            self.command.stderr(Stdio::inherit());
        }
        Child::new(spawned?)
    }

    fn finish(&self, child: Child) -> io::Result<Output> {
        match self.timeout {
            Some(timeout) => {
                child.finish(deadline(Some(timeout))).map_err(|err| timed_out_after(err, timeout))
            }
            None => child.finish(None),
        }
    }
}

impl From<std::process::Command> for Command {
    /// Wraps std's builder. Streams already set on it are not known to
    /// [`output`](Command::output), which captures standard output and error
    /// unless they are set again through this type.
    fn from(command: std::process::Command) -> Command {
        Command { command, stdin_set: false, stdout_set: false, stderr_set: false, timeout: None }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command").field("command", &self.command).field("timeout", &self.timeout).finish()
    }
}
