//! Running into an OS limit while allocating stacks gives an error that names
//! the limit and says how to raise it; nothing hangs or crashes.
//!
//! The scenarios exhaust limits of their whole process, so this test binary
//! (built without the libtest harness) runs each in a child process, which
//! prints what it saw on stdout for the parent to check.

use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use greenery::{Builder, Generator, StackError};
use support::this_binary;

mod support;

const SCENARIO: &str = "GREENERY_LIMIT_SCENARIO";

/// Creates suspended generators until stack allocation fails; returns how
/// many it made and the error.
fn exhaust(stack_size: usize) -> (usize, StackError, Vec<Generator<(), ()>>) {
    let mut alive = Vec::new();
    loop {
        match Builder::new().stack_size(stack_size).generator(|co, ()| co.yield_(())) {
            Ok(mut generator) => {
                generator.next(); // suspended, holding its stack
                alive.push(generator);
            }
            Err(err) => return (alive.len(), err, alive),
        }
        assert!(alive.len() < 10_000_000, "no limit was hit");
    }
}

/// Maps single pages, alternately readable and not (so that neighbours do not
/// merge), until the process has `leave` mappings fewer than
/// `vm.max_map_count` allows: a program that already uses most of them.
/// Returns the pages.
fn use_up_mappings(leave: usize) -> Vec<usize> {
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap().trim().parse().unwrap();
    let count = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
    (0..max.saturating_sub(leave + count))
        .map(|i| {
            let prot = if i % 2 == 0 { libc::PROT_READ } else { libc::PROT_NONE };
            // SAFETY: a fresh anonymous mapping touches no existing memory.
            unsafe {
                libc::mmap(std::ptr::null_mut(), 4096, prot, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
            }
        })
        .take_while(|&page| page != libc::MAP_FAILED)
        .map(|page| page as usize)
        .collect()
}

/// Whether stacks here are slots in slabs guarded by guard regions (Linux
/// 6.13+, not under qemu-user): one mapping holds many stacks.
fn stacks_in_slabs() -> bool {
    let before = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
    let generators: Vec<_> = (0..64)
        .map(|_| {
            let mut generator =
                Builder::new().stack_size(16 * 1024).generator(|co, ()| co.yield_(())).unwrap();
            generator.next();
            generator
        })
        .collect();
    let after = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
    drop(generators);
    after - before < 64
}

fn run_scenario(name: &str) {
    match name {
        "many-stacks" => {
            if !stacks_in_slabs() {
                println!("guard regions are not available here");
                return;
            }
            // More stacks than two mappings each would allow by default.
            let (alive, _) = (0..100_000).fold((Vec::new(), ()), |(mut alive, ()), _| {
                let mut generator = Generator::<(), ()>::new(|co, ()| co.yield_(()));
                generator.next();
                alive.push(generator);
                (alive, ())
            });
            let maps = std::fs::read_to_string("/proc/self/maps").unwrap().lines().count();
            println!("suspended {} with {maps} mappings", alive.len());
        }
        "map-count" => {
            if std::env::var_os("GREENERY_TEST_RUNNER").is_some_and(|runner| !runner.is_empty()) {
                // qemu-user's /proc/self/maps lists the guest's mappings, not
                // the host process's, which is what the limit counts.
                println!("an exact mapping count is not available here");
                return;
            }
            // Fewer mappings left than greenery keeps for the rest of the
            // program.
            let mut pages = use_up_mappings(1000);
            let err = Builder::new().stack_size(16 * 1024).generator(|co, ()| co.yield_(())).unwrap_err();
            println!("error: {err}");
            println!("os limit: {}", err.is_os_limit());
            println!("io kind: {:?}", std::io::Error::from(err).kind());
            // `new` reports the same error as a panic, not a crash (and the
            // panic hook still has mappings left to print it with).
            let payload =
                panic::catch_unwind(AssertUnwindSafe(|| Generator::<(), ()>::new(|_, ()| ()))).unwrap_err();
            let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
            println!("panic: {message}");
            // Unmapping some makes room again.
            for page in pages.drain(..2000) {
                // SAFETY: one of the pages mapped above, unused.
                unsafe { libc::munmap(page as *mut libc::c_void, 4096) };
            }
            let mut again = Generator::<(), u32>::new(|co, ()| co.yield_(7));
            println!("after freeing: {:?}", again.next());
        }
        "address-space" => {
            let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            // SAFETY: plain getrlimit/setrlimit on this (child) process.
            unsafe {
                libc::getrlimit(libc::RLIMIT_AS, &mut limit);
                // Room for the program itself plus about 64 MiB of stacks.
                let status = std::fs::read_to_string("/proc/self/status").unwrap();
                let vm_size_kib: u64 = status
                    .lines()
                    .find_map(|line| line.strip_prefix("VmSize:"))
                    .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap();
                limit.rlim_cur = (vm_size_kib + 64 * 1024) * 1024;
                assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &limit), 0);
                // Emulators (qemu-user) accept the limit but do not enforce
                // it: a 1 GiB mapping must now fail.
                let probe = libc::mmap(
                    std::ptr::null_mut(),
                    1 << 30,
                    libc::PROT_NONE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                );
                if probe != libc::MAP_FAILED {
                    println!("RLIMIT_AS is not enforced here");
                    return;
                }
            }
            let (made, err, _alive) = exhaust(1024 * 1024);
            println!("made {made}");
            println!("error: {err}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

fn main() {
    if let Ok(scenario) = std::env::var(SCENARIO) {
        run_scenario(&scenario);
        return;
    }
    let mut failed = 0;
    let mut check = |name: &str, scenario: &str, guard: Option<&str>, expect: &[&str]| {
        let mut command = this_binary();
        command.env(SCENARIO, scenario);
        if let Some(guard) = guard {
            command.env("GREENERY_STACK_GUARD", guard);
        }
        let output = support::run(command, Duration::from_secs(300));
        let stdout = &output.stdout;
        if stdout.contains("is not enforced here") || stdout.contains("not available here") {
            println!("test {name} ... ignored ({})", stdout.trim());
            return;
        }
        let missing: Vec<_> = expect.iter().filter(|text| !stdout.contains(*text)).collect();
        if output.status.success() && missing.is_empty() {
            println!("test {name} ... ok");
        } else {
            failed += 1;
            println!("test {name} ... FAILED");
            println!("  status {:?}, missing {missing:?}", output.status);
            println!("  stdout:\n{stdout}\n  stderr:\n{}", output.stderr);
        }
    };
    check(
        "running_out_of_mappings_names_vm_max_map_count",
        "map-count",
        None,
        &[
            "vm.max_map_count allows",
            "sysctl -w vm.max_map_count=",
            "os limit: true",
            "io kind: OutOfMemory",
            "panic: cannot map a 256 KiB coroutine stack",
            "after freeing: Some(7)",
        ],
    );
    check(
        "running_out_of_mappings_with_mprotect_guards_says_each_stack_takes_two",
        "map-count",
        Some("mprotect"),
        &[
            "each guarded stack takes 2",
            "sysctl -w vm.max_map_count=",
            "panic: cannot map a 256 KiB coroutine stack",
            "after freeing: Some(7)",
        ],
    );
    check(
        "a_hundred_thousand_stacks_fit_in_the_default_map_count_with_guard_regions",
        "many-stacks",
        None,
        &["suspended 100000 with"],
    );
    check(
        "running_out_of_address_space_names_rlimit_as",
        "address-space",
        None,
        &["error: cannot map a 1 MiB coroutine stack: the address-space limit RLIMIT_AS (`ulimit -v`)"],
    );
    if failed == 0 {
        println!("\ntest result: ok");
    } else {
        println!("\ntest result: FAILED. {failed} failed");
        std::process::exit(1);
    }
}
