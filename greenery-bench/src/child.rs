//! Servers in child processes: the benchmark runs this binary again with a
//! hidden command (`__echo_server greenery`, `__http_server hyper`), which
//! serves on one thread and prints the address it listens on; the
//! benchmark reads the child's memory and CPU time from /proc.
//!
//! A child has a process's open-file limit to itself, its memory and CPU
//! time can be read apart from the client's, and it can be pinned to a CPU
//! of its own. It exits when its stdin closes, which happens when the
//! benchmark that started it exits, whichever way.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};

/// Pins the calling thread to CPU `cpu` (if the machine has it), so that a
/// server and its client each have a core of their own: left to the
/// scheduler, the two sometimes share one, which makes a round several
/// times slower whichever server it measures. Threads started afterwards
/// by the pinned one inherit its CPU.
pub(crate) fn pin_to(cpu: usize) {
    if cpu >= cpus_online() {
        return;
    }
    // SAFETY: `set` is a plain bit mask, zeroed then filled through libc's
    // helpers; sched_setaffinity(0, ..) only affects the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Lets the calling thread run on every CPU again, undoing [`pin_to`] (which
/// an earlier case of `all` may have done to the main thread): the threads
/// and the child processes it starts afterwards inherit that.
pub(crate) fn unpin() {
    // SAFETY: as in [`pin_to`]; the kernel keeps only the CPUs that exist.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for cpu in 0..libc::CPU_SETSIZE as usize {
            libc::CPU_SET(cpu, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Reads the argument of a hidden server command, `NAME` or `NAME:THREADS`:
/// the name, and the thread count if one is given (`None` for the whole if
/// the count is not a number of threads, 1 or more).
pub(crate) fn server_arg(arg: &str) -> Option<(&str, Option<usize>)> {
    match arg.split_once(':') {
        None => Some((arg, None)),
        Some((name, threads)) => Some((name, Some(threads.parse::<usize>().ok().filter(|&t| t > 0)?))),
    }
}

/// Builds the Go program `source` (one `main` package, the standard library
/// only) with the machine's `go`, if it is installed, into a binary named
/// `name` in a directory of this process's under the system's temporary
/// one (the caller may remove it once the binary runs): the binary's path,
/// or why there is none. Such servers follow the
/// same protocol as the hidden commands (see [`ServerProcess::start_command`]).
pub(crate) fn build_go(name: &str, source: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("greenery-bench-go-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
    std::fs::write(dir.join("main.go"), source).map_err(|err| format!("main.go: {err}"))?;
    let binary = dir.join(name);
    let output = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg("main.go")
        .current_dir(&dir)
        .env("GO111MODULE", "off")
        .env("GOCACHE", dir.join("cache"))
        .output()
        .map_err(|err| format!("cannot run go ({err}): install it (`apt-get install golang-go`)"))?;
    // The build cache (some MiB) is of no more use.
    let _ = std::fs::remove_dir_all(dir.join("cache"));
    if !output.status.success() {
        return Err(format!("go build failed: {}", String::from_utf8_lossy(&output.stderr)));
    }
    Ok(binary)
}

/// The machine's CPUs online, whichever this thread may run on (unlike
/// `std::thread::available_parallelism`, which counts only those).
pub(crate) fn cpus_online() -> usize {
    // SAFETY: sysconf only reads the system's configuration.
    unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as usize
}

/// Raises this process's soft limit of open files to its hard limit;
/// returns the limit now in force.
pub(crate) fn raise_fd_limit() -> io::Result<libc::rlim_t> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit only writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: setrlimit only reads the struct we pass.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// What every hidden server command does first: `command` is its name, for
/// messages. Raises the open-file limit, and exits the process when the
/// benchmark (which holds our stdin) exits.
pub(crate) fn set_up_server(command: &str) {
    if let Err(err) = raise_fd_limit() {
        eprintln!("greenery-bench {command}: cannot raise RLIMIT_NOFILE: {err}");
    }
    std::thread::spawn(|| {
        let _ = io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
}

/// Tells the benchmark where the server listens: one line on stdout.
pub(crate) fn announce(addr: SocketAddr) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "{addr}")?;
    stdout.flush()
}

/// A server running in a child process; killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    /// Held open: the child exits when it closes.
    _stdin: ChildStdin,
    /// Where the server listens.
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    /// Runs `greenery-bench <command> <server>` and waits for the address it
    /// listens on.
    pub(crate) fn start(command: &str, server: &str) -> Result<ServerProcess, String> {
        let exe = std::env::current_exe().map_err(|err| format!("cannot find this binary: {err}"))?;
        let mut this = Command::new(exe);
        this.args([command, server]);
        ServerProcess::start_command(this)
    }

    /// Runs `command`, a server that follows the same protocol (it prints
    /// its address on stdout and exits when its stdin closes), and waits for
    /// the address.
    pub(crate) fn start_command(mut command: Command) -> Result<ServerProcess, String> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|err| format!("cannot start the server process: {err}"))?;
        let stdin = child.stdin.take().expect("piped");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().expect("piped")).read_line(&mut line);
        let mut process = ServerProcess { child, _stdin: stdin, addr: SocketAddr::from(([0, 0, 0, 0], 0)) };
        match read.map(|_| line.trim().parse()) {
            Ok(Ok(addr)) => {
                process.addr = addr;
                Ok(process)
            }
            _ => Err(format!("the server process did not say where it listens (it printed {line:?})")),
        }
    }

    /// A file of the child's in /proc.
    fn proc_file(&self, name: &str) -> String {
        format!("/proc/{}/{name}", self.child.id())
    }

    /// The child's resident memory, in bytes: `VmRSS` from its status.
    pub(crate) fn resident_bytes(&self) -> Result<u64, String> {
        kib_field(&self.proc_file("status"), "VmRSS:")
    }

    /// How many descriptors the child has open.
    pub(crate) fn open_fds(&self) -> Result<usize, String> {
        let dir = self.proc_file("fd");
        Ok(std::fs::read_dir(&dir).map_err(|err| format!("{dir}: {err}"))?.count())
    }

    /// The CPU time the child has used so far (with the resolution of a
    /// clock tick, usually 10 ms): `utime` and `stime` from its stat.
    pub(crate) fn cpu(&self) -> Result<CpuTime, String> {
        let path = self.proc_file("stat");
        let stat = std::fs::read_to_string(&path).map_err(|err| format!("{path}: {err}"))?;
        // The command name, in parentheses, may hold spaces: the fields
        // after it start with the third, `state`; utime and stime are the
        // 14th and 15th.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
        let ticks = |field: usize| fields.get(field - 3).and_then(|value| value.parse::<u64>().ok());
        let (Some(utime), Some(stime)) = (ticks(14), ticks(15)) else {
            return Err(format!("{path}: no utime and stime fields"));
        };
        // SAFETY: sysconf only reads the system's configuration.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Ok(CpuTime { user_ns: utime as f64 * 1e9 / per_second, system_ns: stime as f64 * 1e9 / per_second })
    }
}

/// CPU time, in user space and in the kernel, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CpuTime {
    pub(crate) user_ns: f64,
    pub(crate) system_ns: f64,
}

impl CpuTime {
    /// Both together.
    pub(crate) fn total_ns(self) -> f64 {
        self.user_ns + self.system_ns
    }

    /// What this process's finished children have used, all together
    /// (`getrusage(RUSAGE_CHILDREN)`): the difference across one waited-for
    /// child is that child's time.
    pub(crate) fn of_children() -> CpuTime {
        // SAFETY: rusage is plain data, valid when zeroed.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable rusage.
        let done = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
        assert_eq!(done, 0, "getrusage(RUSAGE_CHILDREN) cannot fail with a valid pointer");
        let ns = |time: libc::timeval| time.tv_sec as f64 * 1e9 + time.tv_usec as f64 * 1e3;
        CpuTime { user_ns: ns(usage.ru_utime), system_ns: ns(usage.ru_stime) }
    }
}

impl std::ops::Sub for CpuTime {
    type Output = CpuTime;

    fn sub(self, earlier: CpuTime) -> CpuTime {
        CpuTime { user_ns: self.user_ns - earlier.user_ns, system_ns: self.system_ns - earlier.system_ns }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The field `name` of a /proc file (`VmRSS:  1234 kB`), in bytes.
fn kib_field(path: &str, name: &str) -> Result<u64, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("{path}: no {name} field"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_server_args() {
        assert_eq!(server_arg("tokio"), Some(("tokio", None)));
        assert_eq!(server_arg("may:2"), Some(("may", Some(2))));
        assert_eq!(server_arg("may:0"), None);
        assert_eq!(server_arg("may:two"), None);
    }
}
