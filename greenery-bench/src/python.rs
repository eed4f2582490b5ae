//! Python's originals, for the README's comparison: runs
//! `python/baseline.py` with the machine's `python3`, which prints its
//! figures in the same `name value unit` form.

use std::path::Path;
use std::process::Command;

/// Runs the Python baseline with `n` iterations per round. Without a
/// `python3`, says so on stderr and prints nothing.
pub(crate) fn baseline(n: u64) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/baseline.py");
    match Command::new("python3").arg(&script).arg(n.to_string()).status() {
        Ok(status) if status.success() => {}
        Ok(status) => {
            eprintln!("# {} failed: {status}", script.display());
            std::process::exit(1);
        }
        Err(err) => eprintln!("# python figures skipped: cannot run python3: {err}"),
    }
}
