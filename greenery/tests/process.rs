//! `greenery::process`: cooperative waits and pipes, output capture, timeouts.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::time::Duration;

use greenery::process::{Command, Stdio};

const GENEROUS: Duration = Duration::from_secs(30);

#[test]
fn output_captures_stdout_stderr_and_the_exit_code() {
    let output = Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]).output().unwrap();
    assert_eq!(output.stdout, b"out\n");
    assert_eq!(output.stderr, b"err\n");
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn output_gives_the_child_an_empty_stdin_and_leaves_later_spawns_inheriting() {
    let mut cat = Command::new("cat");
    let output = cat.timeout(Some(GENEROUS)).output().unwrap();
    assert!(output.status.success());
    assert!(output.stdout.is_empty(), "stdin was empty, so cat printed nothing");
    // A spawn after `output` inherits again (std's default): nothing piped.
    let mut child = Command::new("true").spawn().unwrap();
    assert!(child.stdout.is_none() && child.stderr.is_none() && child.stdin.is_none());
    assert!(child.wait().unwrap().success());
}

#[test]
fn a_child_filling_stderr_while_stdout_is_read_does_not_hang() {
    // 300 kB to stderr first: more than a pipe holds, so the child blocks
    // until someone reads stderr, while `output` reads stdout.
    let output = Command::new("sh")
        .args(["-c", "head -c 300000 /dev/zero >&2; echo done"])
        .timeout(Some(GENEROUS))
        .output()
        .unwrap();
    assert_eq!(output.stderr.len(), 300_000);
    assert_eq!(output.stdout, b"done\n");
}

#[test]
fn a_wait_parks_only_its_green_thread() {
    // The child waits for a line that another green thread writes only after
    // the first is parked in `wait`: a wait that blocked the OS thread would
    // never let it. (`timeout 30` bounds the child if that regressed.)
    let mut child = Command::new("timeout")
        .args(["30", "sh", "-c", "read line; echo got $line"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let waiting = Rc::new(RefCell::new(false));
    let parked = waiting.clone();
    let waiter = greenery::spawn(move || {
        *parked.borrow_mut() = true;
        child.wait()
    });
    let writer = greenery::spawn(move || {
        assert!(*waiting.borrow(), "the waiter ran first and is parked");
        (&stdin).write_all(b"hello\n").unwrap();
    });
    writer.get().unwrap();
    let status = waiter.get().unwrap().unwrap();
    assert!(status.success());
    let mut said = String::new();
    stdout.read_to_string(&mut said).unwrap();
    assert_eq!(said, "got hello\n");
}

#[test]
fn a_megabyte_goes_through_cat_and_back() {
    let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let stdin = child.stdin.take().unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let writer = greenery::spawn(move || {
        // Odd-sized writes against a 64 kB pipe: many would block.
        for chunk in sent.chunks(7_777) {
            (&stdin).write_all(chunk).unwrap();
        }
        // Dropping stdin closes it: cat sees the end.
    });
    let mut echoed = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut echoed).unwrap();
    writer.get().unwrap();
    assert!(echoed == data, "{} bytes came back of {}", echoed.len(), data.len());
    assert!(child.wait().unwrap().success());
}

#[test]
fn children_run_at_once() {
    // Child i waits for the file of child i + 1 and then writes its own; the
    // last waits for a file the test writes. Run one after another, the
    // first would wait for ever (30 s, then fail): they finish only if all
    // four run, and are waited for, at the same time.
    let dir = std::env::temp_dir().join(format!("greenery-process-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let waits: Vec<_> = (1..=4)
        .map(|i| {
            let script = format!(
                "n=0; while [ ! -e {dir}/{next} ] && [ $n -lt 3000 ]; do sleep 0.01; n=$((n+1)); done; \
                 touch {dir}/{i}; [ -e {dir}/{next} ]",
                dir = dir.display(),
                next = i + 1
            );
            greenery::spawn(move || Command::new("sh").args(["-c", &script]).status())
        })
        .collect();
    std::fs::write(dir.join("5"), b"").unwrap();
    for wait in waits {
        assert!(wait.get().unwrap().unwrap().success());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_command_timeout_kills_and_reaps_the_child() {
    let err = Command::new("sleep").arg("30").timeout(Some(Duration::from_millis(100))).status().unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(err.to_string().contains("killed"), "{err}");

    let child = Command::new("sleep").arg("30").stdout(Stdio::piped()).spawn().unwrap();
    let pid = child.id();
    let err = child.wait_with_output_timeout(Duration::from_millis(100)).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "the child was reaped");
}

#[test]
fn wait_timeout_leaves_a_slow_child_running() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    assert_eq!(child.wait_timeout(Duration::from_millis(50)).unwrap(), None);
    assert_eq!(child.try_wait().unwrap(), None, "still running");
    child.kill().unwrap();
    let status = child.wait_timeout(GENEROUS).unwrap().expect("it was killed");
    assert!(!status.success());
    // The status is kept: waiting again returns it.
    assert_eq!(child.wait().unwrap(), status);
}

#[test]
fn a_timeout_around_wait_interrupts_it() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let waited = greenery::with_timeout(Duration::from_millis(50), || child.wait());
    assert!(waited.is_err(), "the Timeout fired");
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
}

#[test]
fn pipe_timeouts_give_timed_out() {
    let mut child = Command::new("sleep").arg("30").stdout(Stdio::piped()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    stdout.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    assert_eq!(stdout.read_timeout().unwrap(), Some(Duration::from_millis(50)));
    let err = (&stdout).read(&mut [0; 8]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        stdout.set_read_timeout(Some(Duration::ZERO)).unwrap_err().kind(),
        io::ErrorKind::InvalidInput
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_missing_program_is_not_found() {
    match Command::new("/nonexistent/greenery-no-such-program").output() {
        Err(err) => assert_eq!(err.kind(), io::ErrorKind::NotFound),
        // qemu-user emulates the spawn with a plain fork, so the exec fails
        // in the child, which exits with 127 (as a shell would).
        Ok(output) if std::env::var_os("GREENERY_TEST_RUNNER").is_some() => {
            assert_eq!(output.status.code(), Some(127));
        }
        Ok(output) => panic!("a missing program ran: {output:?}"),
    }
}

#[test]
fn a_std_command_converts_and_keeps_what_was_set() {
    let mut std_command = std::process::Command::new("sh");
    std_command.args(["-c", "echo $GREENERY_TEST_VALUE"]).env("GREENERY_TEST_VALUE", "kept");
    let output = Command::from(std_command).output().unwrap();
    assert_eq!(output.stdout, b"kept\n");
}
